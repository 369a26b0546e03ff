using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNetSharp;

/// <summary>
/// An optimised, eval-only copy of a <see cref="ResNet"/> (made by <see cref="HandMadeInference.ForHandMadeInference"/>):
/// every BatchNorm is folded into the conv before it; on the CPU the convolutions run on oneDNN's blocked layout with
/// weights reordered once (<see cref="ActivationLayout.Blocked"/>, checked against the channels-first path when the
/// copy is built), else channels-last or channels-first (see <see cref="HandMadeOptions.Layout"/>); big batches run
/// as micro-batches (<see cref="MicroBatchSize"/>); ReLU and the residual add run in place, no autograd state is
/// kept, and each block's intermediates are freed as soon as they are dead. Outputs equal the source model's in
/// eval mode (to float32 rounding). The copy owns its own weights: later changes to the source model do not reach
/// it, and either can be disposed independently.
/// </summary>
public sealed class InferenceResNet : nn.Module<Tensor, Tensor>
{
    private readonly LoweredGraph graph;
    private readonly FusedConv2d?[] convsByOp;
    private readonly GraphExecutor executor;
    private readonly FusedConv2d conv1;
    private readonly List<InferenceBlock[]> stages = new();
    private readonly Tensor fcWeight;
    private readonly Tensor fcBias;
    private readonly OneDnnProgram? oneDnn;

    internal InferenceResNet(ResNet source, HandMadeOptions options)
        : base(source.ModelName + "_inference")
    {
        if (source.Table.PreActivation)
        {
            // BN → ReLU → conv: the norm precedes its conv with a ReLU in between, so it cannot be folded into it.
            throw new ArgumentException(
                $"ForHandMadeInference: {source.ModelName} is a pre-activation network, whose BatchNorms come before their convolutions " +
                "and cannot be folded; run the model itself in eval mode under torch.no_grad().", nameof(source));
        }

        Options = options;
        ModelName = source.ModelName;
        InChannels = source.Options.InChannels;
        MinInputSize = source.MinInputSize;
        NumClasses = source.NumClasses;
        FeatureChannels = source.FeatureChannels;

        // The one lowering: BN folded into every conv, shortcuts decided by the blocks. Everything below reads the graph.
        graph = Lowering.Lower(source);
        convsByOp = new FusedConv2d?[graph.Ops.Count];
        try
        {
            for (int i = 0; i < graph.Ops.Count; i++)
            {
                if (graph.Ops[i] is ConvOp op)
                {
                    convsByOp[i] = new FusedConv2d(op);
                }
            }

            var fc = graph.Ops.OfType<LinearOp>().Single();
            fcWeight = fc.Weight;
            fcBias = fc.Bias;
            graph.TakeTensors(); // the convs and this module own them from here on
        }
        catch
        {
            graph.Dispose();
            throw;
        }

        executor = new GraphExecutor(graph, convsByOp);
        conv1 = convsByOp[0] ?? throw new InvalidOperationException("The lowered graph must start with the stem convolution.");
        register_module("conv1", conv1);
        var channels = graph.Shapes(MinInputSize, MinInputSize);
        foreach (var group in graph.Blocks.GroupBy(b => b.Stage))
        {
            var blocks = group.Select(b => new InferenceBlock(b, graph, convsByOp, executor, channels[b.Input].Channels)).ToArray();
            register_module(source.Stages[group.Key].Name, nn.ModuleList(blocks));
            stages.Add(blocks);
        }

        register_buffer("fc_weight", fcWeight);
        register_buffer("fc_bias", fcBias);
        eval();
        try
        {
            oneDnn = CreateOneDnn(options.Layout);
        }
        catch
        {
            Dispose(); // no half-built copy holding native weights until a finalizer runs
            throw;
        }
    }

    /// <summary>
    /// The program of the <see cref="ActivationLayout.Blocked"/> layout when it is asked for (or is the automatic
    /// choice) and usable: float32 weights on the CPU and a libtorch with oneDNN; null otherwise.
    /// </summary>
    private OneDnnProgram? CreateOneDnn(ActivationLayout layout)
    {
        if (layout is not (ActivationLayout.Auto or ActivationLayout.Blocked))
        {
            return null;
        }

        string? why = fcWeight.device_type != DeviceType.CPU ? $"the weights are on {fcWeight.device}, not the CPU"
            : fcWeight.dtype != ScalarType.Float32 ? $"the weights are {fcWeight.dtype}, not float32"
            : OneDnnProgram.WhyUnavailable;
        if (why is not null)
        {
            return layout == ActivationLayout.Blocked
                ? throw new NotSupportedException($"ForHandMadeInference: the Blocked (oneDNN) layout is not available: {why}. Use Auto, ChannelsFirst or ChannelsLast.")
                : null;
        }

        var convs = convsByOp.OfType<FusedConv2d>().ToList();
        var pools = graph.Ops.OfType<MaxPoolOp>()
            .Select(p => new OneDnnProgram.PoolConfig(p.Kernel[0], p.Kernel[1], p.Stride[0], p.Stride[1], p.Padding[0], p.Padding[1]))
            .ToList();
        var program = OneDnnProgram.Create(convs.Select(c => c.Config).ToList(), pools);
        foreach (var conv in convs)
        {
            conv.UseBlocked(program);
        }

        // libtorch's oneDNN path has had CPU-specific bugs (see OneDnnProgram.KeepsDenseWeight), so check this network
        // once, on a small random batch, against the channels-first path before trusting it.
        string? mismatch = VerifyBlocked(program);
        if (mismatch is null)
        {
            return program;
        }

        foreach (var conv in convs)
        {
            conv.DropBlocked();
        }

        program.Dispose();
        return layout == ActivationLayout.Blocked
            ? throw new NotSupportedException($"ForHandMadeInference: the Blocked (oneDNN) layout gives wrong results on this machine for {ModelName}: {mismatch}. Use Auto, ChannelsFirst or ChannelsLast.")
            : null;
    }

    /// <summary>
    /// Null when the blocked path's last feature map equals the channels-first path's (to 1e-4 of its scale) on a
    /// random batch of 2; else the error. Feature maps rather than logits, so that a zero classifier cannot hide a
    /// wrong convolution.
    /// </summary>
    private string? VerifyBlocked(OneDnnProgram program)
    {
        using var mode = torch.inference_mode();
        using var scope = torch.NewDisposeScope();
        long size = Math.Max(2L * MinInputSize, 64);
        var generator = new Generator(20261125);
        var x = torch.randn(new long[] { 2, InChannels, size, size }, generator: generator);
        var expected = Run(x, ActivationLayout.ChannelsFirst, graph.Features, program);
        var actual = Run(x, ActivationLayout.Blocked, graph.Features, program);
        double scale = expected.abs().max().item<float>();
        double error = (actual - expected).abs().max().item<float>();
        return error <= (1e-4 * scale) + 1e-6 ? null : $"feature maps differ by {error:G3} at scale {scale:G3}";
    }

    /// <summary>
    /// The layout a batch of <paramref name="batch"/> images (one micro-batch, see <see cref="MicroBatchSize"/>)
    /// runs in: never <see cref="ActivationLayout.Auto"/>.
    /// </summary>
    public ActivationLayout LayoutFor(long batch) =>
        oneDnn is not null ? ActivationLayout.Blocked
        : Options.Layout == ActivationLayout.Blocked ? throw new InvalidOperationException("The Blocked layout was not set up.")
        : Options.UsesChannelsLast(batch) ? ActivationLayout.ChannelsLast
        : ActivationLayout.ChannelsFirst;

    /// <summary>The options it was built with.</summary>
    public HandMadeOptions Options { get; }

    /// <summary>The source model's name.</summary>
    public string ModelName { get; }

    /// <summary>Input channels expected.</summary>
    public int InChannels { get; }

    /// <summary>Smallest input height/width accepted (the output stride).</summary>
    public int MinInputSize { get; }

    /// <summary>Outputs of the classifier.</summary>
    public int NumClasses { get; }

    /// <summary>Channels of the last feature map.</summary>
    public long FeatureChannels { get; }

    /// <summary>The stem conv with its BN folded in.</summary>
    internal FusedConv2d Stem => conv1;

    /// <summary>The blocks of each stage, in order.</summary>
    internal IReadOnlyList<IReadOnlyList<InferenceBlock>> Stages => stages;

    /// <summary>Stem and all stages: the last feature map (channels-last strides when the batch runs channels-last).</summary>
    /// <exception cref="ArgumentException">The input is not N × InChannels × H × W (floating point, H, W ≥ <see cref="MinInputSize"/>).</exception>
    public Tensor ForwardFeatures(Tensor input)
    {
        CheckInput(input);
        using var mode = EnterMode();
        return RunInMicroBatches(input, x => Run(x, LayoutFor(x.shape[0]), graph.Features, oneDnn));
    }

    /// <summary>The logits, N × NumClasses.</summary>
    /// <exception cref="ArgumentException">The input is not N × InChannels × H × W (floating point, H, W ≥ <see cref="MinInputSize"/>).</exception>
    public override Tensor forward(Tensor input)
    {
        CheckInput(input);
        using var mode = EnterMode();
        return RunInMicroBatches(input, x => Run(x, LayoutFor(x.shape[0]), graph.Logits, oneDnn));
    }

    /// <summary>
    /// Bytes of the largest tensor one image creates on its way through the network (stem, pooling, every block's
    /// branch activations, shortcut and output) at an input of <paramref name="height"/> × <paramref name="width"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The size is below <see cref="MinInputSize"/>.</exception>
    public long LargestActivationBytes(long height, long width)
    {
        if (height < MinInputSize || width < MinInputSize)
        {
            throw new ArgumentOutOfRangeException(
                nameof(height), $"{ModelName}: input {height}×{width} is too small; expected at least {MinInputSize}×{MinInputSize}.");
        }

        // Every value of the lowered graph (input, stem, pool, each block's branch activations, shortcut and output, head).
        long largest = graph.Shapes(height, width).Max(v => v.Channels * v.Height * v.Width);
        return largest * fcWeight.ElementSize;
    }

    /// <summary>
    /// How many images one forward call processes at a time for a batch of <paramref name="batch"/> images of
    /// <paramref name="height"/> × <paramref name="width"/>: the whole batch, or the size of the equal micro-batches
    /// that keep the largest activation within <see cref="HandMadeOptions.MicroBatchBytes"/> (or its per-layout
    /// default; at least one image).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The batch is not positive or the size is below <see cref="MinInputSize"/>.</exception>
    public long MicroBatchSize(long batch, long height, long width)
    {
        if (batch < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(batch), batch, "The batch must hold at least one image.");
        }

        long perImage = LargestActivationBytes(height, width);
        long budget = Options.MicroBatchBytes
            ?? (oneDnn is not null ? HandMadeOptions.DefaultBlockedMicroBatchBytes : HandMadeOptions.DefaultMicroBatchBytes);
        if (budget <= 0 || perImage * batch <= budget)
        {
            return batch;
        }

        long fits = Math.Max(1, budget / perImage);
        long chunks = (batch + fits - 1) / fits;
        return (batch + chunks - 1) / chunks; // equal micro-batches, e.g. 16 at 8 per call → 2 × 8, 10 → 2 × 5
    }

    private Tensor RunInMicroBatches(Tensor input, Func<Tensor, Tensor> run)
    {
        long batch = input.shape[0];
        long size = batch == 0 ? 0 : MicroBatchSize(batch, input.shape[2], input.shape[3]);
        if (size >= batch)
        {
            using var scope = torch.NewDisposeScope();
            return run(input).MoveToOuterDisposeScope();
        }

        using var outer = torch.NewDisposeScope();
        var parts = new List<Tensor>();
        for (long start = 0; start < batch; start += size)
        {
            using var scope = torch.NewDisposeScope();
            using var chunk = input.narrow(0, start, Math.Min(size, batch - start));
            parts.Add(run(chunk).MoveToOuterDisposeScope());
        }

        var result = torch.cat(parts, 0);
        foreach (var part in parts)
        {
            part.Dispose();
        }

        return result.MoveToOuterDisposeScope();
    }

    /// <summary>The graph up to <paramref name="output"/> in the given layout; returns a dense tensor (channels-last when the layout is).</summary>
    private Tensor Run(Tensor input, ActivationLayout layout, int output, OneDnnProgram? program) => layout switch
    {
        ActivationLayout.Blocked => executor.RunBlocked(input.contiguous(), output, program!),
        ActivationLayout.ChannelsLast => executor.RunDense(ChannelsLast.ToChannelsLast(input), LoweredGraph.Input, 0, output),
        _ => executor.RunDense(input.contiguous(), LoweredGraph.Input, 0, output),
    };

    private IDisposable EnterMode() => Options.UseInferenceMode ? torch.inference_mode() : torch.no_grad();

    private void CheckInput(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.dim() != 4 || input.shape[1] != InChannels)
        {
            throw new ArgumentException(
                $"{ModelName}: expected an input N×{InChannels}×H×W, got shape [{string.Join(", ", input.shape)}].", nameof(input));
        }

        if (input.shape[2] < MinInputSize || input.shape[3] < MinInputSize)
        {
            throw new ArgumentException(
                $"{ModelName}: input {input.shape[2]}×{input.shape[3]} is too small; expected at least {MinInputSize}×{MinInputSize}.", nameof(input));
        }

        if (input.dtype != fcWeight.dtype)
        {
            throw new ArgumentException($"{ModelName}: expected a {fcWeight.dtype} input (the weights' dtype), got {input.dtype}.", nameof(input));
        }

        if (input.device_type != fcWeight.device_type || input.device_index != fcWeight.device_index)
        {
            throw new ArgumentException($"{ModelName}: expected an input on {fcWeight.device} (the weights' device), got one on {input.device}.", nameof(input));
        }
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            foreach (var conv in convsByOp)
            {
                conv?.Dispose();
            }

            fcWeight.Dispose();
            fcBias.Dispose();
            oneDnn?.Dispose();
        }

        base.Dispose(disposing);
    }
}

/// <summary>Entry point of the inference mode.</summary>
public static class HandMadeInference
{
    /// <summary>
    /// Builds an optimised, eval-only copy of <paramref name="model"/>: BatchNorm folded into the convs (using the
    /// running statistics, i.e. eval semantics whatever the model's training flag), oneDNN blocked, channels-last or
    /// channels-first activations (see <see cref="HandMadeOptions.Layout"/>), micro-batches, in-place ReLU/add, no
    /// autograd. The source model is not changed.
    /// </summary>
    /// <param name="model">The network to copy.</param>
    /// <param name="options">Layout and grad mode; default <see cref="HandMadeOptions"/> (auto layout, inference mode).</param>
    /// <exception cref="ArgumentException">The model has a layer that cannot be folded (e.g. a BatchNorm without running stats).</exception>
    /// <exception cref="NotSupportedException">
    /// <see cref="ActivationLayout.Blocked"/> was asked for where it cannot run (not float32, not on the CPU, no oneDNN
    /// in libtorch) or where it failed its check against the channels-first path.
    /// </exception>
    public static InferenceResNet ForHandMadeInference(this ResNet model, HandMadeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return new InferenceResNet(model, options ?? new HandMadeOptions());
    }
}
