using System;
using System.Collections.Generic;
using System.Diagnostics.CodeAnalysis;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResNetSharp;

/// <summary>One residual stage of a built network: torchvision's <c>layerN</c>, the paper's <c>convN+1_x</c>.</summary>
internal sealed class ResNetStage
{
    internal ResNetStage(int index, Sequential module, IReadOnlyList<ResidualBlock> blocks)
    {
        Index = index;
        Module = module;
        Blocks = blocks;
    }

    /// <summary>Zero-based stage index.</summary>
    public int Index { get; }

    /// <summary>torchvision's (and the state dict's) name: <c>layer1</c> … <c>layer4</c>.</summary>
    public string Name => $"layer{Index + 1}";

    /// <summary>The paper's name: <c>conv2_x</c> … <c>conv5_x</c>.</summary>
    public string PaperName => $"conv{Index + 2}_x";

    /// <summary>The stage as a module (a <see cref="Sequential"/> of its blocks).</summary>
    public Sequential Module { get; }

    /// <summary>The blocks, in order.</summary>
    public IReadOnlyList<ResidualBlock> Blocks { get; }

    /// <summary>Channels the stage produces.</summary>
    public long OutChannels => Blocks[^1].OutChannels;
}

/// <summary>
/// A residual network built from a <see cref="StageTable"/>: stem (<c>conv1, bn1</c>, ReLU, max pool), residual stages
/// (<c>layer1</c> … <c>layerN</c>), (pre-activation only: the final <c>norm</c> + ReLU), global average pool and the
/// classifier <c>fc</c>. Module names, and therefore
/// state-dict keys, are torchvision's, so checkpoints move between the two.
/// </summary>
/// <remarks>
/// Forward is split as in timm: <see cref="ForwardFeatures"/> (the last feature map), <see cref="ForwardHead"/>
/// (pool + fc, or the pooled pre-logits) and <see cref="forward"/> (both). Intermediates are released inside forward
/// as soon as the next block has consumed them, so memory tracks one block's activations.
/// </remarks>
public sealed partial class ResNet : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> conv1; // the stem's convolution, or a deep stem's Sequential (registered as conv1)
    private Conv2d firstConv; // the stem's first convolution (conv1 itself unless the stem is deep)
    private nn.Module<Tensor, Tensor>? bn1;
    private MaxPool2d? maxpool;
    private nn.Module<Tensor, Tensor>? norm;
    private Linear? fc;
    private readonly List<StemLayer> stemLayers = new();
    private readonly List<ResNetStage> stages = new();
    private readonly List<FeatureInfo> featureInfo = new();
    private ModelMetadata? metadata;

    /// <summary>Builds a network from a stage table.</summary>
    /// <param name="table">The architecture; validated first.</param>
    /// <param name="options">Head size, input channels, init and device; default <see cref="ResNetOptions"/>.</param>
    /// <param name="name">A name for the model, e.g. its registry key. Default "resnet".</param>
    /// <exception cref="ArgumentException">The table or options are invalid; the message says what is expected.</exception>
    public ResNet(StageTable table, ResNetOptions? options = null, string name = "resnet")
        : base(name)
    {
        ArgumentNullException.ThrowIfNull(table);
        NativeBackend.EnsureLoaded();
        table.Validate();
        options ??= new ResNetOptions();
        options.Validate(table);
        Table = table;
        Options = options;
        ModelName = name;

        long channels = BuildStem();
        int totalStride = featureInfo[0].Stride * (maxpool is null ? 1 : 2);
        long dilation = 1;
        for (int s = 0; s < table.StageCount; s++)
        {
            var stage = BuildStage(s, channels, ref dilation, out long stride);
            register_module(stage.Name, stage.Module);
            stages.Add(stage);
            channels = stage.OutChannels;
            totalStride *= (int)stride;
            featureInfo.Add(new FeatureInfo(s + 1, stage.Name, $"C{s + 2}", channels, totalStride, (int)dilation));
        }

        OutputStride = totalStride;
        BuildHead(channels);
        InitializeStem(); // after the head, as before the split, so a seeded model draws the same weights
        if (options.ZeroInitResidual)
        {
            foreach (var block in stages.SelectMany(s => s.Blocks))
            {
                block.ZeroInitResidual();
            }
        }

        Freeze();
    }

    /// <summary>One convolution of the stem with the norm after it (null in a pre-activation stem) and their module names.</summary>
    internal sealed record StemLayer(string ConvName, Conv2d Conv, string NormName, nn.Module<Tensor, Tensor>? Norm);

    /// <summary>The norm every BN of the given part (0 = stem, 1 … N = the stages) is made by: frozen or not.</summary>
    private bool FrozenNorm(int part) => Options.FrozenBatchNorm || Options.FrozenStages >= part + 1;

    /// <summary>
    /// The stem, registered as torchvision and timm name it: <c>conv1</c> (one conv, or the deep stem's
    /// <c>conv1.0</c> … <c>conv1.6</c>), <c>bn1</c> (ReLU after it) and <c>maxpool</c>. Returns the channels it outputs.
    /// </summary>
    [MemberNotNull(nameof(conv1), nameof(firstConv))]
    private long BuildStem()
    {
        var (table, device, dtype) = (Table, Options.Device, Options.DType);
        bool frozen = FrozenNorm(0);
        long width = table.StemChannels;
        if (table.Stem == StemKind.Deep)
        {
            var (sequential, layers) = ResNetD.DeepStem(Options.InChannels, table.StemWidth, width, c => Layers.Norm(c, device, dtype, frozen), device, dtype);
            conv1 = sequential;
            firstConv = layers[0].Conv;
            stemLayers.AddRange(layers.Take(layers.Count - 1).Select(l => new StemLayer(l.ConvName, l.Conv, l.NormName, l.Norm)));
        }
        else
        {
            firstConv = table.Stem == StemKind.ImageNet
                ? nn.Conv2d(Options.InChannels, width, kernel_size: 7, stride: 2, padding: 3, bias: false, device: device, dtype: dtype)
                : nn.Conv2d(Options.InChannels, width, kernel_size: 3, stride: 1, padding: 1, bias: false, device: device, dtype: dtype);
            conv1 = firstConv;
        }

        register_module("conv1", conv1);
        if (!table.PreActivation)
        {
            // A pre-activation stem is the bare conv: the first block's bn1 normalises its output.
            bn1 = Layers.Norm(width, device, dtype, frozen);
            register_module("bn1", bn1);
        }

        // The last stem conv is followed by bn1 (and a ReLU): conv1 itself, or the deep stem's conv1.6.
        stemLayers.Add(conv1 is Sequential deep
            ? new StemLayer("conv1.6", (Conv2d)deep[6], "bn1", bn1)
            : new StemLayer("conv1", firstConv, "bn1", bn1));
        int stemStride = table.Stem == StemKind.Cifar ? 1 : 2;
        featureInfo.Add(new FeatureInfo(0, "stem", "C1", width, stemStride, 1));
        if (table.Stem != StemKind.Cifar)
        {
            maxpool = nn.MaxPool2d(kernel_size: 3, stride: 2, padding: 1);
            register_module("maxpool", maxpool);
        }

        return width;
    }

    /// <summary>
    /// Stage <paramref name="s"/> (torchvision's <c>_make_layer</c>): its blocks as <c>layer{s+1}.0</c> …, the first
    /// one changing stride and width. With stride replaced by dilation the stage keeps the resolution and dilates by
    /// the stride it gave up (torchvision's rule; its first block still uses the previous dilation).
    /// </summary>
    private ResNetStage BuildStage(int s, long inPlanes, ref long dilation, out long stride)
    {
        var table = Table;
        stride = table.Strides[s];
        long previousDilation = dilation;
        if (s > 0 && Options.ReplaceStrideWithDilation is { } dilate && dilate[s - 1])
        {
            dilation *= stride;
            stride = 1;
        }

        var parts = BlockLayers.For(table, Options.Device, Options.DType, FrozenNorm(s + 1));
        int blockCount = table.Layers.Sum(), firstIndex = table.Layers.Take(s).Sum();
        var blocks = new List<ResidualBlock>();
        for (int b = 0; b < table.Layers[s]; b++)
        {
            // Only the first block of a stage changes stride (and, usually, width).
            var block = CreateBlock(table, parts, inPlanes, table.Widths[s], b == 0 ? stride : 1, b == 0 ? previousDilation : dilation);
            if (Options.DropPathRate > 0)
            {
                // Linear schedule (Huang et al. 2016): 0 for the first block, the full rate for the last.
                block.DropPathRate = blockCount > 1 ? Options.DropPathRate * (firstIndex + b) / (blockCount - 1) : 0;
            }

            blocks.Add(block);
            inPlanes = block.OutChannels;
        }

        return new ResNetStage(s, nn.Sequential(blocks.Cast<nn.Module<Tensor, Tensor>>()), blocks);
    }

    /// <summary>
    /// The head: (pre-activation only) the final <c>norm</c> + ReLU, then global average pooling and <c>fc</c>; no
    /// <c>fc</c> when <see cref="ResNetOptions.NumClasses"/> is 0 (headless).
    /// </summary>
    private void BuildHead(long channels)
    {
        if (Table.PreActivation)
        {
            // Pre-activation units end in an add; one BN + ReLU normalises the last sum before pooling.
            norm = Layers.Norm(channels, Options.Device, Options.DType, FrozenNorm(Table.StageCount));
            register_module("norm", norm);
        }

        NumClasses = Options.ResolveNumClasses(Table);
        if (NumClasses > 0)
        {
            fc = nn.Linear(channels, NumClasses, device: Options.Device, dtype: Options.DType);
            register_module("fc", fc);
        }
    }

    /// <summary>He (fan-out) init for the stem's convolutions, weight 1 / bias 0 for its norms (torchvision's init).</summary>
    private void InitializeStem()
    {
        using var noGrad = torch.no_grad();
        foreach (var layer in stemLayers)
        {
            nn.init.kaiming_normal_(layer.Conv.weight, mode: nn.init.FanInOut.FanOut, nonlinearity: nn.init.NonlinearityType.ReLU);
            InitNorm(layer.Norm);
        }
    }

    private static void InitNorm(nn.Module<Tensor, Tensor>? n)
    {
        if (n is BatchNorm2d bn)
        {
            using var noGrad = torch.no_grad();
            nn.init.ones_(bn.weight);
            nn.init.zeros_(bn.bias);
        }
    }

    /// <summary>Detectron's FREEZE_AT: the stem's and the first FrozenStages − 1 stages' parameters stop requiring gradients.</summary>
    private void Freeze()
    {
        if (Options.FrozenStages < 1)
        {
            return;
        }

        var frozen = new List<nn.Module> { conv1 };
        frozen.AddRange(stages.Where(st => Options.FrozenStages >= st.Index + 2).Select(st => (nn.Module)st.Module));
        if (norm is not null && Options.FrozenStages >= Table.StageCount + 1)
        {
            frozen.Add(norm);
        }

        foreach (var p in frozen.SelectMany(m => m.parameters()))
        {
            p.requires_grad = false;
        }
    }

    /// <summary>The stage table the network was built from.</summary>
    public StageTable Table { get; }

    /// <summary>The options the network was built with (<see cref="ResetClassifier"/> and <see cref="AdaptInputChannels"/> update its class and channel counts).</summary>
    public ResNetOptions Options { get; private set; }

    /// <summary>Outputs of the classifier; 0 for a headless network (no classifier, see <see cref="IsHeadless"/>).</summary>
    public int NumClasses { get; private set; }

    /// <summary>
    /// True when the network has no classifier (built with <see cref="ResNetOptions.NumClasses"/> 0, or imported from a
    /// featurizer): <see cref="forward"/> returns the pooled N × <see cref="FeatureChannels"/> features.
    /// <see cref="ResetClassifier"/> gives it one.
    /// </summary>
    public bool IsHeadless => fc is null;

    /// <summary>The model's name (its registry key for named models).</summary>
    public string ModelName { get; }

    /// <summary>
    /// What the model expects and predicts (input size, channels, mean/std, interpolation, class names), saved with
    /// its weights by <see cref="SaveWeights(string, SaveOptions?)"/> and restored by
    /// <see cref="ResNetFactory.FromWeights"/>. Defaults to <see cref="ModelMetadata.For"/>.
    /// </summary>
    /// <exception cref="ArgumentException">Set to metadata whose class count, channels or architecture differ from the model's.</exception>
    public ModelMetadata Metadata
    {
        get => metadata ??= ModelMetadata.For(this);
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            value.Validate(this);
            metadata = value.Table is null ? value with { Table = Table } : value;
        }
    }

    /// <summary>The residual stages, in order.</summary>
    internal IReadOnlyList<ResNetStage> Stages => stages;

    /// <summary>The stem convolution (<c>conv1</c>); the first of them (<c>conv1.0</c>) in a deep stem.</summary>
    public Conv2d Stem => firstConv;

    /// <summary>The stem's convolutions in order, each with the norm that follows it (then a ReLU), for lowering.</summary>
    internal IReadOnlyList<StemLayer> StemLayers => stemLayers;

    /// <summary>The stem BatchNorm (<c>bn1</c>), for BN folding.</summary>
    internal nn.Module<Tensor, Tensor>? StemNorm => bn1;

    /// <summary>The stem max pool (ImageNet stem only), or null.</summary>
    internal MaxPool2d? StemPool => maxpool;

    /// <summary>The final BatchNorm of a pre-activation network (<c>norm</c>, followed by a ReLU), or null.</summary>
    internal nn.Module<Tensor, Tensor>? FinalNorm => norm;

    /// <summary>The classifier (<c>fc</c>), or null when the network is headless.</summary>
    public Linear? Classifier => fc;

    /// <summary>Channels of the last feature map (the classifier's input; 512 for ResNet-18/34, 2048 for bottleneck nets).</summary>
    public long FeatureChannels => stages[^1].OutChannels;

    /// <summary>
    /// Input pixels per cell of the last feature map: the table's output stride (32 for ImageNet tables), or less
    /// when strides were replaced by dilation (<see cref="ResNetOptions.ReplaceStrideWithDilation"/>).
    /// </summary>
    public int OutputStride { get; }

    /// <summary>Smallest input height/width accepted: the network's output stride (32 for ImageNet tables).</summary>
    public int MinInputSize => OutputStride;

    /// <summary>
    /// The maps <see cref="ForwardFeatureMaps"/> can return: the stem (C1, stride 2 for ImageNet stems, 1 for CIFAR)
    /// and every stage (C2 … C5, strides 4, 8, 16, 32, or less where dilation replaced a stride).
    /// </summary>
    public IReadOnlyList<FeatureInfo> FeatureInfo => featureInfo;

    /// <summary>Runs the stem and every stage; returns the last feature map (N × FeatureChannels × H/32 × W/32).</summary>
    /// <exception cref="ArgumentException">The input is not N × InChannels × H × W with H, W ≥ <see cref="MinInputSize"/>.</exception>
    public Tensor ForwardFeatures(Tensor input)
    {
        CheckInput(input);
        using var scope = torch.NewDisposeScope();
        bool channelsLast = UsesChannelsLast(input);
        Tensor y = RunFeatures(channelsLast ? Layers.ToChannelsLast(input) : input);
        return (channelsLast ? y.contiguous() : y).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The layout of the activations in forward passes that record gradients (see <see cref="Runtime.TrainingLayout"/>);
    /// passes under <c>no_grad</c> or inference mode always run channels-first. Default <see cref="TrainingLayout.Auto"/>.
    /// </summary>
    /// <exception cref="ArgumentException">Set to a value outside the enum.</exception>
    internal TrainingLayout TrainingLayout
    {
        get => trainingLayout;
        set => trainingLayout = Enum.IsDefined(value) ? value
            : throw new ArgumentException($"{ModelName}: unknown training layout {(int)value}; expected Auto, ChannelsFirst or ChannelsLast.", nameof(value));
    }

    private TrainingLayout trainingLayout;

    /// <summary>
    /// The layout <see cref="TrainingLayout"/> resolves to for this model's parameters (device and dtype):
    /// <see cref="TrainingLayout.Auto"/> asks <see cref="LibTorchQuirks.TrainsChannelsLast"/>.
    /// </summary>
    internal TrainingLayout ResolvedTrainingLayout => trainingLayout switch
    {
        TrainingLayout.Auto => LibTorchQuirks.TrainsChannelsLast(Table.Block, firstConv.weight.device_type, firstConv.weight.dtype)
            ? TrainingLayout.ChannelsLast
            : TrainingLayout.ChannelsFirst,
        var explicitLayout => explicitLayout,
    };

    /// <summary>True when this forward pass runs channels-last: gradients are recorded and the layout resolves to it.</summary>
    private bool UsesChannelsLast(Tensor input) =>
        ResolvedTrainingLayout == TrainingLayout.ChannelsLast && torch.is_grad_enabled() && !torch.is_inference_mode_enabled() && input.dim() == 4;

    /// <summary>Stem, stages and (pre-activation) the final norm, in whatever layout the input is in.</summary>
    private Tensor RunFeatures(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        Tensor y = ForwardStem(input);
        y = RunStages(y, 0, stages.Count);
        return FinishFeatures(y).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Feature extraction: runs the network only as far as needed and returns the requested maps, in index order.
    /// Index 0 is the stem output (after its BN-ReLU, if any, before the max pool), 1 … N the stage outputs; see
    /// <see cref="FeatureInfo"/> for their channels and strides. With no indices, every map is returned. In a
    /// pre-activation network the last stage's map includes the final BN + ReLU, so it equals <see cref="ForwardFeatures"/>.
    /// </summary>
    /// <param name="input">N × InChannels × H × W.</param>
    /// <param name="indices">Which maps (0 = stem, 1 … N = layer1 … layerN); duplicates are ignored. Default: all.</param>
    /// <returns>The maps in ascending index order (their descriptions are <c>FeatureInfo[index]</c>); the caller disposes the tensors.</returns>
    /// <exception cref="ArgumentException">The input does not fit, or an index is outside 0 … N.</exception>
    public IReadOnlyList<Tensor> ForwardFeatureMaps(Tensor input, params int[] indices)
    {
        CheckInput(input);
        indices ??= Array.Empty<int>();
        var wanted = indices.Length == 0 ? Enumerable.Range(0, featureInfo.Count).ToHashSet() : indices.ToHashSet();
        if (wanted.Any(i => i < 0 || i >= featureInfo.Count))
        {
            throw new ArgumentException(
                $"{ModelName}: feature indices must be in 0 … {featureInfo.Count - 1} (0 = stem, 1 … {stages.Count} = layer1 … layer{stages.Count}), " +
                $"got [{string.Join(", ", indices)}].", nameof(indices));
        }

        using var scope = torch.NewDisposeScope();
        var maps = new List<Tensor>();
        bool channelsLast = UsesChannelsLast(input);
        var y = conv1.call(channelsLast ? Layers.ToChannelsLast(input) : input);
        if (bn1 is not null)
        {
            y = bn1.call(y).relu_();
        }

        if (wanted.Contains(0))
        {
            maps.Add(channelsLast ? y.contiguous() : y.alias());
        }

        if (maxpool is not null)
        {
            y = maxpool.call(y);
        }

        int last = wanted.Max();
        for (int s = 0; s < last; s++)
        {
            y = RunStages(y, s, s + 1);
            if (s == stages.Count - 1)
            {
                y = FinishFeatures(y);
            }

            if (wanted.Contains(s + 1))
            {
                maps.Add(channelsLast ? y.contiguous() : y.alias());
            }
        }

        foreach (var m in maps)
        {
            m.MoveToOuterDisposeScope();
        }

        return maps;
    }

    /// <summary>
    /// Writes the network as an ONNX model (atomically: a failure leaves a previous file as it was), from the same
    /// lowered graph the inference executors run, in eval semantics (BatchNorm by its running statistics, no stochastic
    /// depth), with standard operators only. The input <c>input</c> is float32 N × InChannels × H × W with dynamic batch,
    /// height and width; weights are written as float32 whatever the model's dtype; <see cref="Metadata"/> goes into
    /// <c>metadata_props</c>.
    /// </summary>
    /// <param name="path">The .onnx file to write; its folder must exist.</param>
    /// <param name="options">Opset, BatchNorm folding and outputs; default <see cref="Onnx.OnnxExportOptions"/>.</param>
    /// <returns>What was written.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The opset is outside <see cref="Onnx.OnnxExportOptions.MinOpset"/> … <see cref="Onnx.OnnxExportOptions.MaxOpset"/>.</exception>
    /// <exception cref="ArgumentException">A headless model (<see cref="IsHeadless"/>) was asked for logits.</exception>
    /// <exception cref="System.IO.DirectoryNotFoundException">The folder of <paramref name="path"/> does not exist.</exception>
    /// <exception cref="NotSupportedException">The weights exceed protobuf's 2 GiB limit for one file.</exception>
    public Onnx.OnnxExportResult ExportOnnx(string path, Onnx.OnnxExportOptions? options = null) => Onnx.OnnxExport.ExportOnnx(this, path, options);

    /// <summary>
    /// Measures the network for a square input of <paramref name="inputSize"/> pixels: weighted layers and parameters
    /// from its modules (the paper's way of counting: 1×1 projections and SE gates left out of the depth), multiply-adds
    /// and output shapes per part from one real forward pass (one image, eval mode, no autograd).
    /// </summary>
    /// <param name="inputSize">Input height and width. Default 224 (the paper's ImageNet crop).</param>
    /// <returns>The summary; <see cref="Introspection.ModelSummary.ToTable"/> prints it as the paper's Table 1 rows.</returns>
    /// <exception cref="ArgumentException">The input size is smaller than <see cref="MinInputSize"/>.</exception>
    public Introspection.ModelSummary Summarize(int inputSize = 224) => Introspection.ModelInspector.Summarize(this, inputSize);

    /// <summary>Global average pool, flatten, and (unless <paramref name="preLogits"/>, or the network is headless) the classifier.</summary>
    /// <param name="features">The last feature map (N × FeatureChannels × h × w).</param>
    /// <param name="preLogits">True to return the pooled N × FeatureChannels vector instead of logits. Default false.</param>
    /// <exception cref="ArgumentException">The features do not have FeatureChannels channels.</exception>
    public Tensor ForwardHead(Tensor features, bool preLogits = false)
    {
        ArgumentNullException.ThrowIfNull(features);
        if (features.dim() != 4 || features.shape[1] != FeatureChannels)
        {
            throw new ArgumentException(
                $"ForwardHead expects features of shape N×{FeatureChannels}×h×w, got [{string.Join(", ", features.shape)}].", nameof(features));
        }

        using var scope = torch.NewDisposeScope();
        var pooled = features.mean(new long[] { 2, 3 });
        var result = preLogits || fc is null ? pooled : fc.call(pooled);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>The whole network: logits of shape N × NumClasses, or the pooled N × FeatureChannels features of a headless network.</summary>
    /// <exception cref="ArgumentException">The input is not N × InChannels × H × W with H, W ≥ <see cref="MinInputSize"/>.</exception>
    public override Tensor forward(Tensor input)
    {
        CheckInput(input);
        using var scope = torch.NewDisposeScope();
        // The pooled head gives an N×classes tensor in either layout, so channels-last features need no copy back.
        var features = RunFeatures(UsesChannelsLast(input) ? Layers.ToChannelsLast(input) : input);
        var logits = ForwardHead(features);
        return logits.MoveToOuterDisposeScope();
    }

    internal Tensor ForwardStem(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var y = conv1.call(input);
        if (bn1 is not null)
        {
            y = bn1.call(y).relu_();
        }

        if (maxpool is not null)
        {
            y = maxpool.call(y);
        }

        return y.MoveToOuterDisposeScope();
    }

    /// <summary>Runs stages [<paramref name="from"/>, <paramref name="to"/>); the input tensor is left to its owner.</summary>
    internal Tensor RunStages(Tensor x, int from, int to)
    {
        using var scope = torch.NewDisposeScope();
        Tensor y = x;
        for (int s = from; s < to; s++)
        {
            foreach (var block in stages[s].Blocks)
            {
                var next = block.call(y);
                if (!ReferenceEquals(y, x))
                {
                    y.Dispose(); // dead as soon as the next block has consumed it
                }

                y = next;
            }
        }

        return (ReferenceEquals(y, x) ? y.alias() : y).MoveToOuterDisposeScope();
    }

    /// <summary>The final BN + ReLU of a pre-activation network (identity otherwise).</summary>
    internal Tensor FinishFeatures(Tensor y) => norm is null ? y : norm.call(y).relu_();

    /// <summary>Throws a clear <see cref="ArgumentException"/> unless the input fits the network.</summary>
    internal void CheckInput(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.dim() != 4)
        {
            throw new ArgumentException(
                $"{ModelName}: expected a 4-D input N×{Options.InChannels}×H×W, got shape [{string.Join(", ", input.shape)}].", nameof(input));
        }

        if (input.shape[1] != Options.InChannels)
        {
            throw new ArgumentException(
                $"{ModelName}: expected {Options.InChannels} input channels, got {input.shape[1]} (shape [{string.Join(", ", input.shape)}]).", nameof(input));
        }

        if (input.shape[2] < MinInputSize || input.shape[3] < MinInputSize)
        {
            throw new ArgumentException(
                $"{ModelName}: input {input.shape[2]}×{input.shape[3]} is too small; expected at least {MinInputSize}×{MinInputSize} " +
                $"(the network's output stride).", nameof(input));
        }

        if (!input.is_floating_point())
        {
            throw new ArgumentException($"{ModelName}: expected a floating-point input, got {input.dtype}.", nameof(input));
        }
    }

    private static ResidualBlock CreateBlock(StageTable table, BlockLayers parts, long inPlanes, long planes, long stride, long dilation) =>
        table.Block switch
        {
            BlockKind.Basic => new BasicBlock(inPlanes, planes, stride, table.Shortcut, dilation, table.PreActivation, parts),
            _ => new Bottleneck(inPlanes, planes, stride, table.Groups, table.WidthPerGroup, table.StridePlacement, table.Shortcut, dilation,
                table.PreActivation, parts),
        };

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            conv1.Dispose();
            bn1?.Dispose();
            maxpool?.Dispose();
            norm?.Dispose();
            foreach (var stage in stages)
            {
                stage.Module.Dispose();
            }

            fc?.Dispose();
        }

        base.Dispose(disposing);
    }
}
