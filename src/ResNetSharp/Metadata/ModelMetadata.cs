using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ResNetSharp.Metadata;

/// <summary>How an image is resized before the center crop (torchvision's <c>InterpolationMode</c>).</summary>
public enum ResizeInterpolation
{
    /// <summary>Bilinear with antialiasing when shrinking (torchvision's default for every ResNet weight).</summary>
    Bilinear,

    /// <summary>Bicubic with antialiasing when shrinking (timm's default for many weights).</summary>
    Bicubic,

    /// <summary>Nearest neighbour (what TorchSharp's TorchVision uses by default; costs accuracy on ImageNet weights).</summary>
    Nearest,
}

/// <summary>The order of the colour channels a model takes.</summary>
public enum ChannelOrder
{
    /// <summary>Red, green, blue (torchvision, timm, every PyTorch image model).</summary>
    Rgb,

    /// <summary>Blue, green, red (Caffe, CNTK and OpenCV-era models, e.g. ML.NET's ResNet-18 featurizer).</summary>
    Bgr,
}

/// <summary>
/// What a model expects and what it predicts, stored with its weights: the architecture (registry name and the
/// full stage table, so a file rebuilds its own model), the input (channels, crop size, resize ratio,
/// interpolation, per-channel mean and std) and the output (class count, class names, classifier key). The
/// counterpart of timm's <c>pretrained_cfg</c> and torchvision's <c>weights.meta</c>.
/// </summary>
/// <remarks>
/// <para>Saved as plain string pairs in the safetensors header's <c>__metadata__</c> (see <see cref="ToDictionary"/>),
/// so a PyTorch user reads it with <c>safetensors.safe_open(path, "pt").metadata()</c>: <c>architecture</c>,
/// <c>stage_table</c> (JSON), <c>num_classes</c>, <c>in_channels</c>, <c>input_size</c> (JSON <c>[C, H, W]</c>),
/// <c>crop_pct</c>, <c>interpolation</c>, <c>mean</c>, <c>std</c> (JSON arrays), <c>class_names</c> (JSON array),
/// <c>classifier</c>, <c>dilation</c> (JSON array, when used) and any <see cref="Extra"/> pairs.</para>
/// <para>The eval transform it describes is torchvision's, generalised to the conventions of older frameworks: resize the
/// short side to <see cref="ResizeSize"/> = ⌊<see cref="InputSize"/> / <see cref="CropPct"/>⌋ with
/// <see cref="Interpolation"/>, center-crop <see cref="InputSize"/>², scale pixels to [0, <see cref="PixelMax"/>]
/// (torchvision: 1), put the channels in <see cref="ChannelOrder"/>, subtract <see cref="Mean"/> and, when present, the
/// per-pixel <see cref="MeanImage"/>, and divide by <see cref="Std"/>. Written as <c>channel_order</c>,
/// <c>pixel_max</c> and <c>mean_image</c> (base64 of little-endian float32) when they differ from torchvision's.</para>
/// <para><b>Nothing is guessed.</b> A model imported from a file that does not say how its input was prepared has
/// <see cref="PreprocessingKnown"/> false (written as <c>preprocessing = unknown</c>), and everything that would turn an
/// image into input (the image transform, the classifier, <c>resnet predict</c>) refuses it until the caller states the
/// preprocessing. A model with <see cref="NumClasses"/> 0 is headless (timm's <c>num_classes=0</c>): its output is the
/// pooled features, and a classifier refuses it.</para>
/// </remarks>
public sealed record ModelMetadata
{
    /// <summary>Key written to every file so readers know the pairs are this schema.</summary>
    public const string SchemaKey = "resnetsharp.metadata";

    /// <summary>The schema version written by this library.</summary>
    public const string SchemaVersion = "1";

    /// <summary>ImageNet's per-channel mean (RGB), as torchvision normalises: 0.485, 0.456, 0.406.</summary>
    public static IReadOnlyList<double> ImageNetMean { get; } = new[] { 0.485, 0.456, 0.406 };

    /// <summary>ImageNet's per-channel standard deviation (RGB): 0.229, 0.224, 0.225.</summary>
    public static IReadOnlyList<double> ImageNetStd { get; } = new[] { 0.229, 0.224, 0.225 };

    private static readonly JsonSerializerOptions TableJson = new()
    {
        Converters = { new JsonStringEnumConverter() },
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    /// <summary>Registry name (<c>resnet50</c>, <c>resnet20</c>, …) or null for a custom stage table.</summary>
    public string? Architecture { get; init; }

    /// <summary>The full architecture; rebuilds the model even when <see cref="Architecture"/> is not registered.</summary>
    public StageTable? Table { get; init; }

    /// <summary>Per-stage "replace stride with dilation" flags the model was built with (null: none).</summary>
    public IReadOnlyList<bool>? ReplaceStrideWithDilation { get; init; }

    /// <summary>Outputs of the classifier; 0 for a headless model (no classifier: the output is the pooled features).</summary>
    public required int NumClasses { get; init; }

    /// <summary>Input channels (3 for RGB, 1 for grey images such as Fashion-MNIST).</summary>
    public int InChannels { get; init; } = 3;

    /// <summary>Side of the square crop the model sees (224 for ImageNet tables, 32 for CIFAR tables).</summary>
    public int InputSize { get; init; } = 224;

    /// <summary>Crop size over resize size (torchvision and timm: 0.875, i.e. 224 of 256). 1 means resize straight to <see cref="InputSize"/>.</summary>
    public double CropPct { get; init; } = 0.875;

    /// <summary>How the short side is resized.</summary>
    public ResizeInterpolation Interpolation { get; init; } = ResizeInterpolation.Bilinear;

    /// <summary>Per-channel mean subtracted after scaling to [0, <see cref="PixelMax"/>]; one value per input channel, in <see cref="ChannelOrder"/>.</summary>
    public IReadOnlyList<double> Mean { get; init; } = ImageNetMean;

    /// <summary>Per-channel standard deviation divided by; one value per input channel, in <see cref="ChannelOrder"/>.</summary>
    public IReadOnlyList<double> Std { get; init; } = ImageNetStd;

    /// <summary>The order of the three colour channels the model takes. Default <see cref="ResNetSharp.Metadata.ChannelOrder.Rgb"/>.</summary>
    public ChannelOrder ChannelOrder { get; init; } = ChannelOrder.Rgb;

    /// <summary>
    /// The value a full-intensity pixel is scaled to before <see cref="Mean"/> is subtracted: 1 for torchvision's
    /// <c>ToTensor</c> (pixels in [0, 1]), 255 for models fed raw 0 … 255 values (Caffe, CNTK). Default 1.
    /// </summary>
    public double PixelMax { get; init; } = 1;

    /// <summary>
    /// A per-pixel mean subtracted after <see cref="Mean"/> (older ImageNet models subtract a mean image rather than a
    /// per-channel mean): <see cref="InChannels"/> × <see cref="InputSize"/> × <see cref="InputSize"/> values, channel-major,
    /// in <see cref="ChannelOrder"/> and in [0, <see cref="PixelMax"/>] units. Null (the default) for none.
    /// </summary>
    public IReadOnlyList<float>? MeanImage { get; init; }

    /// <summary>
    /// False when nobody recorded how the model's input is prepared (an ONNX graph imported without metadata): then
    /// <see cref="Mean"/>, <see cref="Std"/> and the other input fields are placeholders, and whatever turns images into
    /// input refuses the model. Set it to true together with the real fields once they are known. Default true.
    /// </summary>
    public bool PreprocessingKnown { get; init; } = true;

    /// <summary>True when the model has no classifier (<see cref="NumClasses"/> 0): its output is the pooled features.</summary>
    public bool IsHeadless => NumClasses == 0;

    /// <summary>Class names, one per output (null when unknown).</summary>
    public IReadOnlyList<string>? ClassNames { get; init; }

    /// <summary>Module name of the classifier (<c>fc</c>): the keys a fine-tune replaces.</summary>
    public string ClassifierKey { get; init; } = "fc";

    /// <summary>Further string pairs kept as they are (training recipe, dataset, accuracy, source).</summary>
    public IReadOnlyDictionary<string, string>? Extra { get; init; }

    /// <summary>The short side before the center crop: ⌊<see cref="InputSize"/> / <see cref="CropPct"/>⌋ (256 for 224 at 0.875).</summary>
    public int ResizeSize => (int)Math.Floor(InputSize / CropPct + 1e-9);

    /// <summary>
    /// What a freshly built model expects: the ImageNet transform (224, 0.875, bilinear, ImageNet mean/std) for
    /// ImageNet tables, a 32² input with no resize for CIFAR tables; mean 0.5 / std 0.5 per channel when the channel
    /// count is not 3. No class names.
    /// </summary>
    /// <param name="model">The model.</param>
    public static ModelMetadata For(ResNet model)
    {
        ArgumentNullException.ThrowIfNull(model);
        bool cifar = model.Table.Stem == StemKind.Cifar;
        int channels = model.Options.InChannels;
        bool rgb = channels == 3;
        return new ModelMetadata
        {
            Architecture = ResNetFactory.Names.Contains(model.ModelName, StringComparer.Ordinal) &&
                           TableEquals(ResNetFactory.GetTable(model.ModelName), model.Table)
                ? model.ModelName
                : null,
            Table = model.Table,
            ReplaceStrideWithDilation = model.Options.ReplaceStrideWithDilation,
            NumClasses = model.NumClasses,
            InChannels = channels,
            InputSize = cifar ? 32 : 224,
            CropPct = cifar ? 1.0 : 0.875,
            Mean = rgb ? ImageNetMean : Enumerable.Repeat(0.5, channels).ToArray(),
            Std = rgb ? ImageNetStd : Enumerable.Repeat(0.5, channels).ToArray(),
        };
    }

    /// <summary>Checks the fields against each other and, when given, against a model.</summary>
    /// <param name="model">The model this metadata must describe, or null.</param>
    /// <exception cref="ArgumentException">A field is out of range or does not match the model; the message names it.</exception>
    public void Validate(ResNet? model = null)
    {
        if (NumClasses < 0)
        {
            throw new ArgumentException($"ModelMetadata.NumClasses must be ≥ 0 (0: headless, no classifier), got {NumClasses}.");
        }

        if (InChannels < 1)
        {
            throw new ArgumentException($"ModelMetadata.InChannels must be ≥ 1, got {InChannels}.");
        }

        if (InputSize < 1)
        {
            throw new ArgumentException($"ModelMetadata.InputSize must be ≥ 1, got {InputSize}.");
        }

        if (!(CropPct > 0 && CropPct <= 1))
        {
            throw new ArgumentException($"ModelMetadata.CropPct must be in (0, 1], got {CropPct}.");
        }

        if (!Enum.IsDefined(Interpolation))
        {
            throw new ArgumentException($"ModelMetadata.Interpolation {(int)Interpolation} is not a ResizeInterpolation.");
        }

        if (Mean is null || Std is null || Mean.Count != InChannels || Std.Count != InChannels)
        {
            throw new ArgumentException(
                $"ModelMetadata.Mean and Std must give one value per input channel ({InChannels}), got {Mean?.Count ?? 0} and {Std?.Count ?? 0}.");
        }

        if (Std.Any(s => !(s > 0)) || Mean.Any(m => !double.IsFinite(m)))
        {
            throw new ArgumentException($"ModelMetadata.Std must be positive and Mean finite, got mean [{Join(Mean)}], std [{Join(Std)}].");
        }

        if (ClassNames is { } names && names.Count != NumClasses)
        {
            throw new ArgumentException(NumClasses == 0
                ? $"ModelMetadata.ClassNames has {names.Count} names, but the model is headless (NumClasses 0): it has no classes."
                : $"ModelMetadata.ClassNames has {names.Count} names for {NumClasses} classes.");
        }

        if (!Enum.IsDefined(ChannelOrder))
        {
            throw new ArgumentException($"ModelMetadata.ChannelOrder {(int)ChannelOrder} is not a ChannelOrder.");
        }

        if (ChannelOrder == ChannelOrder.Bgr && InChannels != 3)
        {
            throw new ArgumentException($"ModelMetadata.ChannelOrder Bgr needs 3 input channels, got {InChannels}.");
        }

        if (!(PixelMax > 0) || !double.IsFinite(PixelMax))
        {
            throw new ArgumentException($"ModelMetadata.PixelMax must be a positive number (1 for pixels in [0, 1], 255 for 0 … 255), got {PixelMax}.");
        }

        if (MeanImage is { } image)
        {
            long expected = (long)InChannels * InputSize * InputSize;
            if (image.Count != expected)
            {
                throw new ArgumentException(
                    $"ModelMetadata.MeanImage has {image.Count} values; a {InChannels}×{InputSize}×{InputSize} mean image has {expected}.");
            }

            if (image.Any(v => !float.IsFinite(v)))
            {
                throw new ArgumentException("ModelMetadata.MeanImage holds a value that is not finite.");
            }
        }

        Table?.Validate();
        if (model is null)
        {
            return;
        }

        if (model.NumClasses != NumClasses)
        {
            throw new ArgumentException($"Metadata says {NumClasses} classes, the model '{model.ModelName}' has {model.NumClasses}.");
        }

        if (model.Options.InChannels != InChannels)
        {
            throw new ArgumentException($"Metadata says {InChannels} input channels, the model '{model.ModelName}' takes {model.Options.InChannels}.");
        }

        if (Table is not null && !TableEquals(Table, model.Table))
        {
            throw new ArgumentException($"Metadata describes a different architecture ({Table}) than the model '{model.ModelName}' ({model.Table}).");
        }
    }

    /// <summary>The pairs stored in a safetensors <c>__metadata__</c> (and ONNX <c>metadata_props</c>).</summary>
    public IReadOnlyDictionary<string, string> ToDictionary()
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        if (Extra is not null)
        {
            foreach (var (k, v) in Extra)
            {
                d[k] = v;
            }
        }

        d[SchemaKey] = SchemaVersion;
        if (Architecture is not null)
        {
            d["architecture"] = Architecture;
        }

        if (Table is not null)
        {
            d["stage_table"] = JsonSerializer.Serialize(Table, TableJson);
        }

        if (ReplaceStrideWithDilation is { } dil)
        {
            d["dilation"] = JsonSerializer.Serialize(dil);
        }

        d["num_classes"] = NumClasses.ToString(CultureInfo.InvariantCulture);
        d["in_channels"] = InChannels.ToString(CultureInfo.InvariantCulture);
        d["input_size"] = JsonSerializer.Serialize(new[] { InChannels, InputSize, InputSize });
        d["crop_pct"] = CropPct.ToString("R", CultureInfo.InvariantCulture);
        d["interpolation"] = Interpolation.ToString().ToLowerInvariant();
        d["mean"] = JsonSerializer.Serialize(Mean);
        d["std"] = JsonSerializer.Serialize(Std);
        d["classifier"] = ClassifierKey;
        if (ChannelOrder != ChannelOrder.Rgb)
        {
            d["channel_order"] = ChannelOrder.ToString().ToLowerInvariant();
        }

        if (PixelMax != 1)
        {
            d["pixel_max"] = PixelMax.ToString("R", CultureInfo.InvariantCulture);
        }

        if (MeanImage is { } meanImage)
        {
            var bytes = new byte[meanImage.Count * sizeof(float)];
            for (int i = 0; i < meanImage.Count; i++)
            {
                System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * sizeof(float)), meanImage[i]);
            }

            d["mean_image"] = Convert.ToBase64String(bytes);
        }

        if (!PreprocessingKnown)
        {
            d["preprocessing"] = "unknown";
        }

        if (ClassNames is not null)
        {
            d["class_names"] = JsonSerializer.Serialize(ClassNames);
        }

        return d;
    }

    /// <summary>Reads metadata written by <see cref="ToDictionary"/>; null when the pairs carry none (no <see cref="SchemaKey"/>).</summary>
    /// <param name="pairs">A file's string pairs.</param>
    /// <param name="source">File name for messages.</param>
    /// <exception cref="InvalidDataException">A field is missing or malformed; the message names the file and the key.</exception>
    public static ModelMetadata? FromDictionary(IReadOnlyDictionary<string, string>? pairs, string source = "metadata")
    {
        if (pairs is null || !pairs.TryGetValue(SchemaKey, out string? version))
        {
            return null;
        }

        if (version != SchemaVersion)
        {
            throw new InvalidDataException($"{source}: metadata schema '{version}' is not supported (this library reads '{SchemaVersion}').");
        }

        T Parse<T>(string key, Func<string, T> parse, bool required = true, T fallback = default!)
        {
            if (!pairs.TryGetValue(key, out string? text))
            {
                return required ? throw new InvalidDataException($"{source}: metadata key '{key}' is missing.") : fallback;
            }

            try
            {
                return parse(text);
            }
            catch (Exception ex) when (ex is JsonException or FormatException or OverflowException or ArgumentException or NotSupportedException)
            {
                throw new InvalidDataException($"{source}: metadata key '{key}' is malformed ('{Shorten(text)}'): {ex.Message}", ex);
            }
        }

        static int Int(string s) => int.Parse(s, NumberStyles.Integer, CultureInfo.InvariantCulture);
        static T Json<T>(string s) => JsonSerializer.Deserialize<T>(s, TableJson) ?? throw new FormatException("null");

        int numClasses = Parse("num_classes", Int);
        int inChannels = Parse("in_channels", Int);
        int[] inputSize = Parse("input_size", Json<int[]>)!;
        if (inputSize.Length != 3 || inputSize[0] != inChannels || inputSize[1] != inputSize[2])
        {
            throw new InvalidDataException($"{source}: metadata 'input_size' must be [in_channels, S, S], got [{string.Join(", ", inputSize)}].");
        }

        var known = new HashSet<string>(StringComparer.Ordinal)
        {
            SchemaKey, "architecture", "stage_table", "dilation", "num_classes", "in_channels", "input_size", "crop_pct",
            "interpolation", "mean", "std", "classifier", "class_names", "channel_order", "pixel_max", "mean_image", "preprocessing",
        };
        var extra = pairs.Where(kv => !known.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        var metadata = new ModelMetadata
        {
            Architecture = pairs.TryGetValue("architecture", out string? arch) ? arch : null,
            Table = Parse<StageTable?>("stage_table", Json<StageTable>, required: false, fallback: null),
            ReplaceStrideWithDilation = Parse<bool[]?>("dilation", Json<bool[]>, required: false, fallback: null),
            NumClasses = numClasses,
            InChannels = inChannels,
            InputSize = inputSize[1],
            CropPct = Parse("crop_pct", s => double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture), required: false, fallback: 0.875),
            Interpolation = Parse("interpolation", s => Enum.Parse<ResizeInterpolation>(s, ignoreCase: true), required: false),
            Mean = Parse("mean", Json<double[]>)!,
            Std = Parse("std", Json<double[]>)!,
            ClassifierKey = pairs.TryGetValue("classifier", out string? fc) ? fc : "fc",
            ClassNames = Parse<string[]?>("class_names", Json<string[]>, required: false, fallback: null),
            ChannelOrder = Parse("channel_order", s => Enum.Parse<ChannelOrder>(s, ignoreCase: true), required: false, fallback: ChannelOrder.Rgb),
            PixelMax = Parse("pixel_max", s => double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture), required: false, fallback: 1.0),
            MeanImage = Parse<float[]?>("mean_image", ParseMeanImage, required: false, fallback: null),
            PreprocessingKnown = Parse("preprocessing", s => s == "unknown" ? false : throw new FormatException("expected 'unknown' or no key"),
                required: false, fallback: true),
            Extra = extra.Count > 0 ? extra : null,
        };
        try
        {
            metadata.Validate();
        }
        catch (ArgumentException ex)
        {
            throw new InvalidDataException($"{source}: {ex.Message}", ex);
        }

        if (metadata.Table is null && metadata.Architecture is not null && !ResNetFactory.Names.Contains(metadata.Architecture, StringComparer.Ordinal))
        {
            throw new InvalidDataException(
                $"{source}: metadata names architecture '{metadata.Architecture}', which is not registered, and carries no 'stage_table'.");
        }

        return metadata;
    }

    /// <summary>The architecture this metadata describes: <see cref="Table"/>, else the registered <see cref="Architecture"/>'s table.</summary>
    /// <exception cref="InvalidOperationException">Neither is known.</exception>
    public StageTable ResolveTable() =>
        Table ?? (Architecture is not null ? ResNetFactory.GetTable(Architecture)
            : throw new InvalidOperationException("The metadata names no architecture and carries no stage table."));

    /// <summary>Builds the model this metadata describes (untrained; load the weights next).</summary>
    /// <param name="device">Device, or null for the CPU.</param>
    /// <param name="dtype">Parameter dtype, or null for float32.</param>
    public ResNet CreateModel(TorchSharp.torch.Device? device = null, TorchSharp.torch.ScalarType? dtype = null)
    {
        var table = ResolveTable();
        var options = new ResNetOptions
        {
            NumClasses = NumClasses,
            InChannels = InChannels,
            ReplaceStrideWithDilation = ReplaceStrideWithDilation,
            Device = device,
            DType = dtype,
        };
        var model = new ResNet(table, options, Architecture ?? "custom");
        model.Metadata = this;
        return model;
    }

    /// <summary>Structural equality of two stage tables (records compare lists by reference).</summary>
    internal static bool TableEquals(StageTable a, StageTable b) =>
        a.Block == b.Block && a.Layers.SequenceEqual(b.Layers) && a.Widths.SequenceEqual(b.Widths) && a.Strides.SequenceEqual(b.Strides) &&
        a.Stem == b.Stem && a.StemWidth == b.StemWidth && a.Groups == b.Groups && a.WidthPerGroup == b.WidthPerGroup &&
        a.StridePlacement == b.StridePlacement && a.Shortcut == b.Shortcut && a.PreActivation == b.PreActivation &&
        a.AvgDown == b.AvgDown && a.Attention == b.Attention;

    /// <summary>
    /// The same preprocessing for a network input of <paramref name="inputSize"/>²: <see cref="InputSize"/> changes, and a
    /// <see cref="MeanImage"/> is resized to it by area averaging (its value at each new pixel is the mean over the pixels
    /// it covers). Returns this instance when the size is already <see cref="InputSize"/>.
    /// </summary>
    /// <param name="inputSize">The new side (≥ 1).</param>
    /// <exception cref="ArgumentOutOfRangeException">The side is below 1.</exception>
    public ModelMetadata WithInputSize(int inputSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(inputSize, 1);
        if (inputSize == InputSize)
        {
            return this;
        }

        if (MeanImage is not { } image)
        {
            return this with { InputSize = inputSize };
        }

        using var scope = TorchSharp.torch.NewDisposeScope();
        var full = TorchSharp.torch.tensor(image.ToArray(), new long[] { 1, InChannels, InputSize, InputSize });
        var resized = TorchSharp.torch.nn.functional.interpolate(full, new long[] { inputSize, inputSize }, mode: TorchSharp.torch.InterpolationMode.Area);
        return this with { InputSize = inputSize, MeanImage = resized.data<float>().ToArray() };
    }

    private static float[] ParseMeanImage(string base64)
    {
        byte[] bytes = Convert.FromBase64String(base64);
        if (bytes.Length % sizeof(float) != 0)
        {
            throw new FormatException($"{bytes.Length} bytes is not a whole number of float32 values");
        }

        var values = new float[bytes.Length / sizeof(float)];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i * sizeof(float)));
        }

        return values;
    }

    /// <summary>
    /// Throws unless this metadata says how to turn an image into the model's input: <see cref="PreprocessingKnown"/>.
    /// </summary>
    /// <param name="user">What needs it, for the message (<c>"ImageTransform"</c>, <c>"resnet predict"</c>).</param>
    /// <exception cref="InvalidOperationException">The preprocessing is unknown; the message says how to state it.</exception>
    public void EnsurePreprocessingKnown(string user)
    {
        if (!PreprocessingKnown)
        {
            string source = Extra is { } extra && extra.TryGetValue("source", out var s) ? $" (source: {s}{(extra.TryGetValue("onnx.file", out var f) ? $", {f}" : "")})" : "";
            throw new InvalidOperationException(
                $"{user}: the model's preprocessing is unknown{source}: the file it came from does not say how images were turned into input " +
                "(input size, channel order, pixel range, mean and std), and guessing would give confident nonsense. State it: set " +
                "ResNet.Metadata to metadata with InputSize, CropPct, Mean, Std (and ChannelOrder, PixelMax, MeanImage where they differ " +
                "from torchvision's) and PreprocessingKnown = true, or import with 'resnet import --preprocessing imagenet' (or --mean/--std) " +
                "when you know it is torchvision's ImageNet transform.");
        }
    }

    private static string Join(IEnumerable<double> values) => string.Join(", ", values.Select(v => v.ToString(CultureInfo.InvariantCulture)));

    private static string Shorten(string s) => s.Length <= 60 ? s : s[..57] + "...";
}
