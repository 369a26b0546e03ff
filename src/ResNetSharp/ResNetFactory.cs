using System;
using System.Collections.Generic;
using System.Linq;

namespace ResNetSharp;

/// <summary>A registered model: its torchvision-style name, family and stage table.</summary>
/// <param name="Name">Lower-case registry key, as in torchvision (e.g. <c>resnet50</c>).</param>
/// <param name="Family">Family for listings: ResNet, ResNeXt, Wide ResNet, …</param>
/// <param name="Table">The architecture.</param>
/// <param name="Description">One line for listings.</param>
/// <remarks>Internal: users register with <see cref="ResNetFactory.Register(string, StageTable, string?, string)"/> and read tables with <see cref="ResNetFactory.GetTable"/>.</remarks>
internal sealed record ModelDefinition(string Name, string Family, StageTable Table, string Description);

/// <summary>
/// Builds every named ResNet from one table of definitions (<see cref="Names"/>, <see cref="GetTable"/>): each name is a row, and
/// the typed shortcuts (<see cref="ResNet50"/>, …) read the same rows, so no builder can drift from the table.
/// </summary>
public static class ResNetFactory
{
    private static readonly int[] Layers18 = { 2, 2, 2, 2 };
    private static readonly int[] Layers34 = { 3, 4, 6, 3 };
    private static readonly int[] Layers101 = { 3, 4, 23, 3 };
    private static readonly int[] Layers152 = { 3, 8, 36, 3 };

    private static readonly StageTable R18 = new() { Block = BlockKind.Basic, Layers = Layers18 };
    private static readonly StageTable R34 = new() { Block = BlockKind.Basic, Layers = Layers34 };
    private static readonly StageTable R50 = new() { Block = BlockKind.Bottleneck, Layers = Layers34 };
    private static readonly StageTable R101 = new() { Block = BlockKind.Bottleneck, Layers = Layers101 };
    private static readonly StageTable R152 = new() { Block = BlockKind.Bottleneck, Layers = Layers152 };

    private static readonly object Gate = new();
    private static readonly List<ModelDefinition> Registry = new()
    {
        // The paper's Table 1 (ImageNet), stride on the 3×3 (v1.5) as torchvision; pass StridePlacement.V1 for the paper's.
        new("resnet18", "ResNet", R18, "ResNet-18 (basic, [2, 2, 2, 2])"),
        new("resnet34", "ResNet", R34, "ResNet-34 (basic, [3, 4, 6, 3])"),
        new("resnet50", "ResNet", R50, "ResNet-50 (bottleneck, [3, 4, 6, 3])"),
        new("resnet101", "ResNet", R101, "ResNet-101 (bottleneck, [3, 4, 23, 3])"),
        new("resnet152", "ResNet", R152, "ResNet-152 (bottleneck, [3, 8, 36, 3])"),

        // Same rows with grouped (ResNeXt) or widened (Wide ResNet) bottlenecks.
        new("resnext50_32x4d", "ResNeXt", new StageTable { Block = BlockKind.Bottleneck, Layers = Layers34, Groups = 32, WidthPerGroup = 4 }, "ResNeXt-50 32×4d"),
        new("resnext101_32x8d", "ResNeXt", new StageTable { Block = BlockKind.Bottleneck, Layers = Layers101, Groups = 32, WidthPerGroup = 8 }, "ResNeXt-101 32×8d"),
        new("resnext101_64x4d", "ResNeXt", new StageTable { Block = BlockKind.Bottleneck, Layers = Layers101, Groups = 64, WidthPerGroup = 4 }, "ResNeXt-101 64×4d"),
        new("wide_resnet50_2", "Wide ResNet", new StageTable { Block = BlockKind.Bottleneck, Layers = Layers34, WidthPerGroup = 128 }, "Wide ResNet-50-2"),
        new("wide_resnet101_2", "Wide ResNet", new StageTable { Block = BlockKind.Bottleneck, Layers = Layers101, WidthPerGroup = 128 }, "Wide ResNet-101-2"),

        // timm's ResNet-D (Bag of Tricks: deep 3×3 stem of width 32, average-pool projections), plain and ResNeXt.
        new("resnet50d", "ResNet-D", R50 with { Stem = StemKind.Deep, StemWidth = 32, AvgDown = true }, "ResNet-50-D (timm: deep stem, avg-down shortcuts)"),
        new("resnext50d_32x4d", "ResNet-D", R50 with { Stem = StemKind.Deep, StemWidth = 32, AvgDown = true, Groups = 32, WidthPerGroup = 4 },
            "ResNeXt-50-D 32×4d (timm: deep stem, avg-down shortcuts)"),

        // timm's SE-ResNet / SE-ResNeXt: squeeze-and-excitation (se.fc1, se.fc2) on every block's branch.
        new("seresnet50", "SE-ResNet", R50 with { Attention = BlockAttention.SqueezeExcite }, "SE-ResNet-50 (timm: squeeze-and-excitation, r = C/16)"),
        new("seresnext50_32x4d", "SE-ResNet", R50 with { Attention = BlockAttention.SqueezeExcite, Groups = 32, WidthPerGroup = 4 },
            "SE-ResNeXt-50 32×4d (timm: squeeze-and-excitation, r = C/16)"),

        // The paper's CIFAR-10 networks (§4.2, Table 6): 6n+2 layers, 16/32/64 filters, option A shortcuts.
        new("resnet20", "CIFAR ResNet", Cifar(3), "CIFAR ResNet-20 (n = 3, 0.27 M params)"),
        new("resnet32", "CIFAR ResNet", Cifar(5), "CIFAR ResNet-32 (n = 5, 0.46 M params)"),
        new("resnet44", "CIFAR ResNet", Cifar(7), "CIFAR ResNet-44 (n = 7, 0.66 M params)"),
        new("resnet56", "CIFAR ResNet", Cifar(9), "CIFAR ResNet-56 (n = 9, 0.85 M params)"),
        new("resnet110", "CIFAR ResNet", Cifar(18), "CIFAR ResNet-110 (n = 18, 1.7 M params)"),

        // The paper's plain baselines (Fig. 4, Fig. 6): the same tables with the shortcuts switched off.
        new("plain18", "Plain", R18 with { Shortcut = ShortcutOption.None }, "Plain-18: ResNet-18 without shortcuts"),
        new("plain34", "Plain", R34 with { Shortcut = ShortcutOption.None }, "Plain-34: ResNet-34 without shortcuts"),
        new("plain50", "Plain", R50 with { Shortcut = ShortcutOption.None }, "Plain-50: ResNet-50 without shortcuts"),
        new("plain20", "Plain", Cifar(3) with { Shortcut = ShortcutOption.None }, "CIFAR plain-20"),
        new("plain32", "Plain", Cifar(5) with { Shortcut = ShortcutOption.None }, "CIFAR plain-32"),
        new("plain44", "Plain", Cifar(7) with { Shortcut = ShortcutOption.None }, "CIFAR plain-44"),
        new("plain56", "Plain", Cifar(9) with { Shortcut = ShortcutOption.None }, "CIFAR plain-56"),
        new("plain110", "Plain", Cifar(18) with { Shortcut = ShortcutOption.None }, "CIFAR plain-110"),

        // He et al. 2016, "Identity Mappings in Deep Residual Networks": the same tables with pre-activation units.
        new("preact_resnet18", "Pre-activation ResNet", R18 with { PreActivation = true }, "Pre-activation ResNet-18"),
        new("preact_resnet34", "Pre-activation ResNet", R34 with { PreActivation = true }, "Pre-activation ResNet-34"),
        new("preact_resnet50", "Pre-activation ResNet", R50 with { PreActivation = true }, "Pre-activation ResNet-50"),
        new("preact_resnet101", "Pre-activation ResNet", R101 with { PreActivation = true }, "Pre-activation ResNet-101"),
        new("preact_resnet152", "Pre-activation ResNet", R152 with { PreActivation = true }, "Pre-activation ResNet-152"),
        new("preact_resnet20", "Pre-activation ResNet", Cifar(3) with { PreActivation = true }, "CIFAR pre-activation ResNet-20"),
        new("preact_resnet56", "Pre-activation ResNet", Cifar(9) with { PreActivation = true }, "CIFAR pre-activation ResNet-56"),
        new("preact_resnet110", "Pre-activation ResNet", Cifar(18) with { PreActivation = true }, "CIFAR pre-activation ResNet-110"),
    };

    /// <summary>The paper's CIFAR table for 6n+2 layers: n basic blocks per stage, 16/32/64 filters, option A.</summary>
    /// <param name="n">Blocks per stage (3 → ResNet-20, 18 → ResNet-110).</param>
    /// <exception cref="ArgumentException"><paramref name="n"/> is below 1.</exception>
    public static StageTable Cifar(int n) => n < 1
        ? throw new ArgumentException($"CIFAR ResNets need n ≥ 1 blocks per stage (depth 6n+2), got {n}.", nameof(n))
        : new StageTable
        {
            Block = BlockKind.Basic,
            Layers = new[] { n, n, n },
            Widths = new[] { 16, 32, 64 },
            Strides = new[] { 1, 2, 2 },
            Stem = StemKind.Cifar,
            StemWidth = 16,
            Shortcut = ShortcutOption.A,
        };

    /// <summary>Every registered name, in registration order.</summary>
    public static IReadOnlyList<string> Names
    {
        get
        {
            lock (Gate)
            {
                return Registry.Select(d => d.Name).ToArray();
            }
        }
    }

    /// <summary>Every registered definition, in registration order.</summary>
    internal static IReadOnlyList<ModelDefinition> Definitions
    {
        get
        {
            lock (Gate)
            {
                return Registry.ToArray();
            }
        }
    }

    /// <summary>Looks up a definition by name (case-insensitive).</summary>
    /// <exception cref="ArgumentException">The name is not registered; the message lists the registered names.</exception>
    internal static ModelDefinition GetDefinition(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        lock (Gate)
        {
            var def = Registry.FirstOrDefault(d => string.Equals(d.Name, name.Trim(), StringComparison.OrdinalIgnoreCase));
            return def ?? throw new ArgumentException(
                $"Unknown model '{name}'. Registered names: {string.Join(", ", Registry.Select(d => d.Name))}.", nameof(name));
        }
    }

    /// <summary>The stage table of a registered model.</summary>
    /// <exception cref="ArgumentException">The name is not registered.</exception>
    public static StageTable GetTable(string name) => GetDefinition(name).Table;

    /// <summary>True when <paramref name="name"/> is registered.</summary>
    public static bool IsRegistered(string name)
    {
        lock (Gate)
        {
            return name is not null && Registry.Any(d => string.Equals(d.Name, name.Trim(), StringComparison.OrdinalIgnoreCase));
        }
    }

    /// <summary>Adds a model to the registry so that <see cref="Create(string, ResNetOptions?, StridePlacement?)"/> finds it.</summary>
    /// <param name="name">Registry key (case-insensitive), e.g. <c>resnet26</c>.</param>
    /// <param name="table">The architecture.</param>
    /// <param name="description">One line for listings (<c>resnet list</c>); default the table itself.</param>
    /// <param name="family">Family for listings: ResNet, ResNeXt, Wide ResNet, …; default <c>Custom</c>.</param>
    /// <exception cref="ArgumentException">The name is empty or taken, or the table is invalid.</exception>
    public static void Register(string name, StageTable table, string? description = null, string family = "Custom")
    {
        ArgumentNullException.ThrowIfNull(table);
        Register(new ModelDefinition(name?.Trim() ?? string.Empty, family, table, description ?? table.ToString()));
    }

    /// <summary>Adds a definition (see the public overload).</summary>
    internal static void Register(ModelDefinition definition)
    {
        ArgumentNullException.ThrowIfNull(definition);
        if (string.IsNullOrWhiteSpace(definition.Name))
        {
            throw new ArgumentException("A model definition needs a non-empty name.", nameof(definition));
        }

        definition.Table.Validate();
        lock (Gate)
        {
            if (Registry.Any(d => string.Equals(d.Name, definition.Name, StringComparison.OrdinalIgnoreCase)))
            {
                throw new ArgumentException($"A model named '{definition.Name}' is already registered.", nameof(definition));
            }

            Registry.Add(definition);
        }
    }

    /// <summary>Builds a registered model by name.</summary>
    /// <param name="name">A registered name (see <see cref="Names"/>), e.g. <c>resnet50</c>.</param>
    /// <param name="options">Head size, input channels, init, device and dtype; default <see cref="ResNetOptions"/>.</param>
    /// <param name="stride">Override the table's stride placement (v1 = the paper, v1.5 = torchvision). Default: the table's.</param>
    /// <exception cref="ArgumentException">Unknown name (the message lists the registered ones) or invalid options.</exception>
    public static ResNet Create(string name, ResNetOptions? options = null, StridePlacement? stride = null)
    {
        var def = GetDefinition(name);
        var table = stride is { } s && s != def.Table.StridePlacement ? def.Table.WithStridePlacement(s) : def.Table;
        return new ResNet(table, options, def.Name);
    }

    /// <summary>Builds a model from a custom stage table.</summary>
    /// <exception cref="ArgumentException">The table or options are invalid.</exception>
    public static ResNet Create(StageTable table, ResNetOptions? options = null, string name = "custom") => new(table, options, name);

    /// <summary>
    /// Rebuilds a model from a weight file that carries its own <see cref="ModelMetadata"/> (every file ResNetSharp
    /// saves from a <see cref="ResNet"/>, trains or imports does), loads its weights strictly and sets
    /// <see cref="ResNet.Metadata"/> from the file, so its preprocessing and class names travel with it.
    /// </summary>
    /// <param name="path">A safetensors file written by ResNetSharp.</param>
    /// <param name="device">Device for the model, or null for the CPU.</param>
    /// <param name="dtype">Parameter dtype, or null for float32.</param>
    /// <exception cref="System.IO.InvalidDataException">The file is malformed, or carries no architecture metadata (then build the model by name and use <see cref="ResNet.LoadWeights(string, LoadOptions?)"/>).</exception>
    /// <exception cref="WeightMismatchException">The weights do not fit the architecture the metadata describes.</exception>
    public static ResNet FromWeights(string path, TorchSharp.torch.Device? device = null, TorchSharp.torch.ScalarType? dtype = null)
    {
        var file = WeightFile.Read(path);
        var metadata = ModelMetadata.FromDictionary(file.Metadata, path)
            ?? throw new System.IO.InvalidDataException(
                $"{path}: the file carries no ResNetSharp architecture metadata; build the model by name (ResNetFactory.Create) and call LoadWeights.");
        return Described(metadata, file, device, dtype);
    }

    /// <summary>
    /// Builds a model from an ONNX file (exported by ResNetSharp, PyTorch, CNTK or another tool): the stage table is
    /// recognised from the graph and the weights are loaded. For what was recognised (head, BN folding, opset) use
    /// <see cref="ImportOnnx(string, OnnxImportOptions?)"/>.
    /// </summary>
    /// <param name="path">The .onnx file.</param>
    /// <param name="options">Head size for featurizer graphs, device and dtype.</param>
    /// <exception cref="OnnxImportException">The file cannot be mapped onto a ResNet; the message names the node.</exception>
    public static ResNet FromOnnx(string path, OnnxImportOptions? options = null) => OnnxImporter.Import(path, options).Model;

    /// <summary>
    /// Imports an ONNX ResNet and reports what was recognised. The graph (Conv, BatchNormalization, Relu, Add/Sum, MaxPool,
    /// AveragePool/GlobalAveragePool/ReduceMean, Flatten/Reshape, Gemm or MatMul + Add, Slice/Pad for option-A shortcuts;
    /// Identity, Dropout and Constant pass through) is recognised by structure, never by initializer names; the matching
    /// model is built and the weights are loaded strictly. Nothing is invented: a graph without a classifier imports
    /// headless, and preprocessing comes only from the file's <c>metadata_props</c> (otherwise
    /// <see cref="Metadata.ModelMetadata.PreprocessingKnown"/> is false and the image pipeline refuses the model until the
    /// caller states it). No half-built model is ever returned.
    /// </summary>
    /// <param name="path">The .onnx file (weights inside the file, opset 7 or newer).</param>
    /// <param name="options">Device, dtype and an optional preprocessing graph; default <see cref="OnnxImportOptions"/>.</param>
    /// <returns>The model and what was recognised; disposing it disposes the model.</returns>
    /// <exception cref="OnnxImportException">The file is not ONNX, is truncated, uses an operator or pattern that is not a ResNet, or shapes do not fit; the message names the node.</exception>
    public static OnnxImportResult ImportOnnx(string path, OnnxImportOptions? options = null) => OnnxImporter.Import(path, options);

    /// <summary>Imports an ONNX ResNet held in memory, as <see cref="ImportOnnx(string, OnnxImportOptions?)"/> does a file.</summary>
    /// <param name="bytes">The serialized ModelProto.</param>
    /// <param name="sourceName">A name for messages.</param>
    /// <param name="options">Device, dtype and an optional preprocessing graph.</param>
    /// <exception cref="OnnxImportException">As <see cref="ImportOnnx(string, OnnxImportOptions?)"/>.</exception>
    public static OnnxImportResult ImportOnnx(byte[] bytes, string sourceName = "memory", OnnxImportOptions? options = null) =>
        OnnxImporter.Import(bytes, sourceName, options);

    /// <summary>
    /// Builds the model for registered pretrained weights (<see cref="PretrainedWeights.Get"/>: <c>resnet50.imagenet1k_v2</c>,
    /// torchvision's <c>ResNet50_Weights.IMAGENET1K_V2</c>, or a bare architecture for torchvision's default), downloads
    /// the file into the cache unless it is there already (hash-checked), loads it strictly (.pth or safetensors) and
    /// sets <see cref="ResNet.Metadata"/> to the entry's (preprocessing, ImageNet class names).
    /// </summary>
    /// <param name="name">A registered weights name.</param>
    /// <param name="cacheDirectory">Cache folder; null for <see cref="PretrainedWeights.DefaultCacheDirectory"/>.</param>
    /// <param name="progress">Download progress (not called on a cache hit).</param>
    /// <param name="device">Device for the model, or null for the CPU.</param>
    /// <param name="dtype">Parameter dtype, or null for float32.</param>
    /// <exception cref="ArgumentException">No weights of that name.</exception>
    /// <exception cref="WeightsDownloadException">The download failed or the file's hash is wrong (nothing cached).</exception>
    /// <exception cref="System.IO.InvalidDataException">The file is not a readable weight file.</exception>
    /// <exception cref="WeightMismatchException">The file does not fit the architecture (all mismatched keys listed).</exception>
    public static ResNet FromPretrained(string name, string? cacheDirectory = null, System.IProgress<DownloadProgress>? progress = null,
        TorchSharp.torch.Device? device = null, TorchSharp.torch.ScalarType? dtype = null)
    {
        var entry = WeightsRegistry.Get(name);
        string path = WeightsCache.Download(entry, progress, cacheDirectory);
        return Described(entry.Metadata, WeightFile.Read(path), device, dtype);
    }

    /// <summary>
    /// Builds a model from what a user names on a command line or in a config (a model name, a file or a URL): the one entry
    /// point behind <see cref="Create(string, ResNetOptions?, StridePlacement?)"/>, <see cref="FromWeights"/>,
    /// <see cref="FromOnnx"/> and <see cref="FromPretrained"/>. Give <paramref name="weights"/>, <paramref name="architecture"/> or both:
    /// <list type="bullet">
    /// <item><description><b>weights only</b>: the source describes the model itself. <paramref name="weights"/> is tried as an
    /// existing file (a <c>.onnx</c> graph is imported; a safetensors file must carry ResNetSharp metadata), then as an
    /// <c>https</c>/<c>http</c>/<c>file</c> URL of such a file (downloaded into the weights cache once, checked against
    /// <paramref name="sha256"/>), then as registered pretrained weights (<see cref="PretrainedWeights.Get"/>:
    /// <c>resnet50.imagenet1k_v2</c>, <c>ResNet50_Weights.IMAGENET1K_V2</c>, or a bare architecture for torchvision's default).</description></item>
    /// <item><description><b>architecture only</b>: a registered architecture (<see cref="Names"/>) with fresh, untrained weights.</description></item>
    /// <item><description><b>both</b>: the architecture is built with <paramref name="options"/> and <paramref name="stride"/>,
    /// and the weights (a safetensors, PyTorch <c>.pth</c> or TorchSharp file, a URL, or registered weights) are loaded into it
    /// strictly: the way to load files without metadata, such as torchvision's. When the source carries metadata, the model
    /// takes its preprocessing and class names.</description></item>
    /// </list>
    /// </summary>
    /// <param name="weights">A weight file, URL or registered weights name; null for untrained weights (then <paramref name="architecture"/> is required).</param>
    /// <param name="architecture">A registered architecture name; null to let <paramref name="weights"/> describe the model.</param>
    /// <param name="options">
    /// Head size, input channels, init, device and dtype of a model built from <paramref name="architecture"/>. When the
    /// weights describe the model, only <see cref="ResNetOptions.Device"/> and <see cref="ResNetOptions.DType"/> may be set.
    /// </param>
    /// <param name="stride">Stride placement of a model built from <paramref name="architecture"/> (default: the table's); null otherwise.</param>
    /// <param name="sha256">SHA-256 of the weights (full, or at least its first 8 hex digits): required for a URL, checked when given.</param>
    /// <param name="cacheDirectory">Cache folder for URLs and registered weights; null for <see cref="PretrainedWeights.DefaultCacheDirectory"/>.</param>
    /// <param name="progress">Download progress (not called when nothing is downloaded).</param>
    /// <exception cref="ArgumentException">
    /// Neither argument is given; the architecture is not registered (the message lists the names); options or a stride are
    /// given for weights that describe the model; an ONNX graph is given together with an architecture; or a URL has no hash.
    /// </exception>
    /// <exception cref="System.IO.FileNotFoundException"><paramref name="weights"/> is no existing file, no URL and no registered weights name.</exception>
    /// <exception cref="System.IO.InvalidDataException">The file is malformed, or carries no metadata and no architecture is named.</exception>
    /// <exception cref="WeightMismatchException">The weights do not fit the architecture (all mismatched keys listed).</exception>
    /// <exception cref="OnnxImportException">An ONNX graph cannot be mapped onto a ResNet; the message names the node.</exception>
    /// <exception cref="WeightsDownloadException">A download failed or a hash is wrong (nothing cached).</exception>
    /// <example>
    /// <code>
    /// using var trained = ResNetFactory.Load("runs/r20/best.safetensors");                  // architecture and preprocessing from the file
    /// using var imported = ResNetFactory.Load("resnet18.onnx");                               // ONNX graph, recognised and imported
    /// using var pretrained = ResNetFactory.Load("resnet50.imagenet1k_v2");                   // registered weights, downloaded once
    /// using var torchvision = ResNetFactory.Load("resnet50-11ad3fa6.pth", "resnet50");      // a file without metadata: name the architecture
    /// using var untrained = ResNetFactory.Load(null, "resnet20");
    /// </code>
    /// </example>
    public static ResNet Load(string? weights, string? architecture = null, ResNetOptions? options = null, StridePlacement? stride = null,
        string? sha256 = null, string? cacheDirectory = null, System.IProgress<DownloadProgress>? progress = null)
    {
        if (string.IsNullOrWhiteSpace(weights))
        {
            return string.IsNullOrWhiteSpace(architecture)
                ? throw new ArgumentException("ResNetFactory.Load: name the weights (a file, an http(s)/file URL or registered weights), an architecture (see ResNetFactory.Names), or both.")
                : Create(architecture, options, stride);
        }

        if (!System.IO.File.Exists(weights) && !WeightsSource.IsUrl(weights, out _) && !WeightsRegistry.TryGet(weights, out _))
        {
            throw new System.IO.FileNotFoundException(
                $"Weight file '{weights}' does not exist, and it is neither an http(s)/file URL nor registered pretrained weights " +
                "(PretrainedWeights.All; 'resnet pretrained list'; e.g. resnet50.imagenet1k_v2).", weights);
        }

        bool described = string.IsNullOrWhiteSpace(architecture);
        if (described && (stride is not null || (options is not null && options with { Device = null, DType = null } != new ResNetOptions())))
        {
            throw new ArgumentException(
                $"'{weights}' describes its own architecture, head and input channels: only a device and a dtype can be chosen for it. " +
                "Name the architecture to build it with other options or another stride placement.");
        }

        bool onnx = weights.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase);
        if (onnx && !described)
        {
            throw new ArgumentException($"'{weights}' is an ONNX graph, which describes its own architecture: load it without naming one (got '{architecture}').");
        }

        var resolved = WeightsSource.Resolve(weights, sha256, cacheDirectory, progress);
        if (described)
        {
            if (onnx || resolved.Path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
            {
                return FromOnnx(resolved.Path, new OnnxImportOptions { Device = options?.Device, DType = options?.DType });
            }

            var file = WeightFile.Read(resolved.Path);
            var metadata = resolved.Metadata ?? ModelMetadata.FromDictionary(file.Metadata, resolved.Path)
                ?? throw new System.IO.InvalidDataException(
                    $"{weights}: the file carries no model metadata (architecture, head, preprocessing): name the model's architecture too " +
                    "(a registered name such as resnet50; see ResNetFactory.Names).");
            return Described(metadata, file, options?.Device, options?.DType);
        }

        var model = Create(architecture!, options, stride);
        try
        {
            var file = WeightFile.Read(resolved.Path);
            model.LoadWeights(file);
            if ((resolved.Metadata ?? ModelMetadata.FromDictionary(file.Metadata, resolved.Path)) is { } source)
            {
                // The source's preprocessing and class names; the structure is the model's own (strict loading checked the shapes).
                var own = ModelMetadata.For(model);
                model.Metadata = source with
                {
                    Architecture = own.Architecture, Table = own.Table, ReplaceStrideWithDilation = own.ReplaceStrideWithDilation,
                    NumClasses = own.NumClasses, InChannels = own.InChannels, ClassifierKey = own.ClassifierKey,
                };
            }

            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Builds the model <paramref name="metadata"/> describes and loads <paramref name="file"/> into it strictly.</summary>
    private static ResNet Described(ModelMetadata metadata, WeightFile file, TorchSharp.torch.Device? device, TorchSharp.torch.ScalarType? dtype)
    {
        var model = metadata.CreateModel(device, dtype);
        try
        {
            model.LoadWeights(file);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>ResNet-18: basic blocks [2, 2, 2, 2], 1.8 G multiply-adds (paper Table 1).</summary>
    public static ResNet ResNet18(ResNetOptions? options = null) => Create("resnet18", options);

    /// <summary>ResNet-34: basic blocks [3, 4, 6, 3], 3.6 G multiply-adds.</summary>
    public static ResNet ResNet34(ResNetOptions? options = null) => Create("resnet34", options);

    /// <summary>ResNet-50: bottlenecks [3, 4, 6, 3], 3.8 G (v1) / 4.1 G (v1.5) multiply-adds.</summary>
    public static ResNet ResNet50(ResNetOptions? options = null, StridePlacement stride = StridePlacement.V1_5) => Create("resnet50", options, stride);

    /// <summary>ResNet-101: bottlenecks [3, 4, 23, 3], 7.6 G (v1) multiply-adds; 1 + 99 + 1 = 101 layers.</summary>
    public static ResNet ResNet101(ResNetOptions? options = null, StridePlacement stride = StridePlacement.V1_5) => Create("resnet101", options, stride);

    /// <summary>ResNet-152: bottlenecks [3, 8, 36, 3], 11.3 G (v1) multiply-adds.</summary>
    public static ResNet ResNet152(ResNetOptions? options = null, StridePlacement stride = StridePlacement.V1_5) => Create("resnet152", options, stride);

    /// <summary>ResNeXt-50 32×4d: ResNet-50's table with 32 groups of width 4.</summary>
    public static ResNet ResNeXt50_32x4d(ResNetOptions? options = null) => Create("resnext50_32x4d", options);

    /// <summary>ResNeXt-101 32×8d: ResNet-101's table with 32 groups of width 8.</summary>
    public static ResNet ResNeXt101_32x8d(ResNetOptions? options = null) => Create("resnext101_32x8d", options);

    /// <summary>ResNeXt-101 64×4d: ResNet-101's table with 64 groups of width 4.</summary>
    public static ResNet ResNeXt101_64x4d(ResNetOptions? options = null) => Create("resnext101_64x4d", options);

    /// <summary>Wide ResNet-50-2: ResNet-50's table with twice the bottleneck width.</summary>
    public static ResNet WideResNet50_2(ResNetOptions? options = null) => Create("wide_resnet50_2", options);

    /// <summary>CIFAR ResNet-20 (paper Table 6): 3 blocks per stage, 0.27 M parameters, 10 classes by default.</summary>
    public static ResNet ResNet20(ResNetOptions? options = null) => Create("resnet20", options);

    /// <summary>CIFAR ResNet-56: 9 blocks per stage, 0.85 M parameters.</summary>
    public static ResNet ResNet56(ResNetOptions? options = null) => Create("resnet56", options);

    /// <summary>CIFAR ResNet-110: 18 blocks per stage, 1.7 M parameters.</summary>
    public static ResNet ResNet110(ResNetOptions? options = null) => Create("resnet110", options);

    /// <summary>Pre-activation ResNet-50 (He et al. 2016).</summary>
    public static ResNet PreActResNet50(ResNetOptions? options = null) => Create("preact_resnet50", options);

    /// <summary>Wide ResNet-101-2: ResNet-101's table with twice the bottleneck width.</summary>
    public static ResNet WideResNet101_2(ResNetOptions? options = null) => Create("wide_resnet101_2", options);
}
