using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using ResNetSharp.Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNetSharp.Onnx;

/// <summary>Options of <see cref="ResNetFactory.ImportOnnx(string, OnnxImportOptions?)"/>.</summary>
public sealed record OnnxImportOptions
{
    /// <summary>
    /// An ONNX graph that prepares the model's input, to be read into typed preprocessing instead of leaving it unknown:
    /// ML.NET's <c>ResNetPreprocess.onnx</c> (shipped with <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c>) and graphs of
    /// the same two forms: <c>Split</c> into three channels → <c>Concat</c> in reverse order (RGB → BGR) →
    /// <c>Sub</c>(a constant 1 × C × H × W mean image), or the <c>Sub</c> alone. Its input is taken to be what ML.NET's
    /// <c>ExtractPixels</c> feeds it by default: planar RGB pixel values in 0 … 255. The model's metadata then records
    /// H × W input, crop 1.0, <see cref="ModelMetadata.PixelMax"/> 255, the channel order and the mean image, with
    /// mean 0 and std 1. Anything else in the graph is refused. Default null.
    /// </summary>
    public string? PreprocessingGraph { get; init; }

    /// <summary>Device of the built model, or null for the CPU.</summary>
    public Device? Device { get; init; }

    /// <summary>Parameter dtype of the built model, or null for float32.</summary>
    public ScalarType? DType { get; init; }
}

/// <summary>
/// An imported model and what the importer recognised in the graph. Dispose it (or its <see cref="Model"/>) when done.
/// </summary>
public sealed class OnnxImportResult : IDisposable
{
    internal OnnxImportResult(ResNet model, string source, long opset, string producer, OnnxOutput head, bool batchNormFolded, int? inputSize,
        int blocks, int projections)
    {
        Model = model;
        Source = source;
        Opset = opset;
        Producer = producer;
        Head = head;
        BatchNormFolded = batchNormFolded;
        InputSize = inputSize;
        Blocks = blocks;
        Projections = projections;
    }

    /// <summary>The built model with the graph's weights loaded; its <see cref="ResNet.Metadata"/> says where it came from.</summary>
    public ResNet Model { get; }

    /// <summary>The recognised stage table.</summary>
    public StageTable Table => Model.Table;

    /// <summary>The registered name whose table this is (e.g. <c>resnet18</c>), or null for a custom table.</summary>
    public string? Architecture => Model.Metadata.Architecture;

    /// <summary>The file imported.</summary>
    public string Source { get; }

    /// <summary>The graph's default-domain opset.</summary>
    public long Opset { get; }

    /// <summary>The tool that wrote the file (<c>producer_name producer_version</c>), e.g. "CNTK 2.6" or "pytorch 1.13.1".</summary>
    public string Producer { get; }

    /// <summary>
    /// What the graph ends in, in the exporter's terms: <see cref="OnnxOutput.Logits"/> (global average pooling, flatten
    /// and a fully connected layer, Gemm or MatMul + Add: the model's <c>fc</c>); <see cref="OnnxOutput.PooledFeatures"/>
    /// (pooling only, a featurizer such as ML.NET's ResNet-18: N × FeatureChannels); or <see cref="OnnxOutput.FeatureMaps"/>
    /// (no pooling: the graph ends in the last stage's map, N × FeatureChannels × h × w).
    /// </summary>
    public OnnxOutput Head { get; }

    /// <summary>
    /// True when the graph's classifier was imported; false for featurizers, whose model is headless
    /// (<see cref="ResNet.IsHeadless"/>: nothing is invented, the forward pass returns the pooled features, and
    /// <see cref="ResNet.ResetClassifier"/> adds a classifier to fine-tune).
    /// </summary>
    public bool HasClassifier => Head == OnnxOutput.Logits;

    /// <summary>
    /// True when the graph's convolutions carry their BatchNorm folded in (conv with bias, no BatchNormalization, as an
    /// eval-mode export writes): each BN of the model is then an exact identity plus the conv bias.
    /// </summary>
    public bool BatchNormFolded { get; }

    /// <summary>Square input side the graph declares (224 for ML.NET's ResNet-18), or null when it is dynamic.</summary>
    public int? InputSize { get; }

    /// <summary>Residual blocks recognised.</summary>
    public int Blocks { get; }

    /// <summary>Projection shortcuts (1×1 conv + BN) recognised.</summary>
    public int Projections { get; }

    /// <inheritdoc />
    public void Dispose() => Model.Dispose();
}

/// <summary>
/// Builds a <see cref="ResNet"/> from an ONNX file: reads the graph (Conv, BatchNormalization or per-channel Mul + Add,
/// Relu, Add/Sum, MaxPool, AveragePool/GlobalAveragePool/ReduceMean, Flatten/Reshape/Squeeze, Gemm or MatMul + Add,
/// Slice/Pad for option-A shortcuts, zero Pad nodes before a Conv or MaxPool; Identity, Dropout and Constant pass
/// through), recognises its stage table by structure (never by initializer names), builds the matching model and
/// checks it op by op against the graph while loading the weights. Anything it cannot map exactly throws one
/// <see cref="OnnxImportException"/> naming the node; no half-built model is ever returned.
/// </summary>
/// <remarks>
/// Nothing is invented: a graph without a classifier imports headless (no <c>fc</c>, no fabricated tensors), and
/// preprocessing comes only from the file's <c>metadata_props</c> (ResNetSharp's exporter writes it). A file that does
/// not carry it imports with <see cref="ModelMetadata.PreprocessingKnown"/> false, which the image transform and the
/// classifier refuse until the caller states it.
/// </remarks>
internal static class OnnxImporter
{
    /// <summary>Imports an ONNX ResNet.</summary>
    /// <param name="path">The .onnx file (weights inside the file, opset 7 or newer).</param>
    /// <param name="options">Device and dtype; default <see cref="OnnxImportOptions"/>.</param>
    /// <returns>The model and what was recognised.</returns>
    /// <exception cref="OnnxImportException">The file is not ONNX, is truncated, uses an operator or pattern that is not a ResNet, or shapes do not fit.</exception>
    public static OnnxImportResult Import(string path, OnnxImportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Import(OnnxGraph.Read(path), options ?? new OnnxImportOptions());
    }

    /// <summary>Imports an ONNX ResNet held in memory.</summary>
    /// <param name="bytes">The serialized ModelProto.</param>
    /// <param name="sourceName">A name for messages.</param>
    /// <param name="options">Device and dtype.</param>
    /// <exception cref="OnnxImportException">As <see cref="Import(string, OnnxImportOptions?)"/>.</exception>
    public static OnnxImportResult Import(byte[] bytes, string sourceName = "memory", OnnxImportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        return Import(OnnxGraph.Parse(bytes, sourceName), options ?? new OnnxImportOptions());
    }

    private static OnnxImportResult Import(OnnxGraph graph, OnnxImportOptions options)
    {
        // Read first, so that a bad preprocessing file fails before anything is built.
        var preprocessing = options.PreprocessingGraph is { } prepPath ? ReadPreprocessingGraph(OnnxGraph.Read(prepPath)) : default;
        CanonicalGraph canonical;
        ResNetRecognizer.Recognised recognised;
        try
        {
            canonical = new CanonicalGraph(graph);
            recognised = ResNetRecognizer.Recognise(canonical);
        }
        catch (Exception ex) when (IsMalformed(ex))
        {
            throw Malformed(graph, ex);
        }

        // A featurizer imports headless: a classifier nobody trained would only produce confident nonsense.
        var table = recognised.Table;
        string? name = ResNetFactory.Definitions.FirstOrDefault(d => ModelMetadata.TableEquals(d.Table, table))?.Name;
        ResNet model;
        try
        {
            model = ResNetFactory.Create(table, new ResNetOptions
            {
                NumClasses = recognised.Head == OnnxOutput.Logits ? recognised.NumClasses : 0,
                InChannels = recognised.InChannels,
                ReplaceStrideWithDilation = recognised.ReplaceStrideWithDilation,
                Device = options.Device,
                DType = options.DType,
            }, name ?? "custom");
        }
        catch (ArgumentException ex)
        {
            throw new OnnxImportException(graph.Source, $"the recognised model ({table}) cannot be built: {ex.Message}", inner: ex);
        }

        try
        {
            bool folded = ResNetRecognizer.Bind(canonical, model, recognised.Head);
            model.Metadata = BuildMetadata(graph, model, recognised, folded, name);
            if (preprocessing.MeanImage is not null)
            {
                if (preprocessing.Dims[1] != model.Options.InChannels || recognised.InputSize is { } fixedSize && fixedSize != preprocessing.Dims[2])
                {
                    throw new OnnxImportException(options.PreprocessingGraph!,
                        $"the preprocessing graph's mean image is [{string.Join(", ", preprocessing.Dims)}]; the model takes {model.Options.InChannels} channels" +
                        (recognised.InputSize is { } s ? $" at {s}×{s}." : "."));
                }

                var extra = new Dictionary<string, string>(model.Metadata.Extra!, StringComparer.Ordinal)
                {
                    ["onnx.preprocessing"] = System.IO.Path.GetFileName(options.PreprocessingGraph!),
                };
                int channels = model.Options.InChannels;
                model.Metadata = model.Metadata with
                {
                    InputSize = (int)preprocessing.Dims[2],
                    CropPct = 1.0,
                    Interpolation = ResizeInterpolation.Bilinear,
                    ChannelOrder = preprocessing.Bgr ? ChannelOrder.Bgr : ChannelOrder.Rgb,
                    PixelMax = 255,
                    Mean = new double[channels],
                    Std = Enumerable.Repeat(1.0, channels).ToArray(),
                    MeanImage = preprocessing.MeanImage,
                    PreprocessingKnown = true,
                    Extra = extra,
                };
            }

            string producer = $"{graph.Model.ProducerName} {graph.Model.ProducerVersion}".Trim();
            var blocks = model.Stages.SelectMany(s => s.Blocks).ToList();
            return new OnnxImportResult(model, graph.Source, graph.Opset, producer, recognised.Head, folded, recognised.InputSize,
                blocks.Count, blocks.Count(b => b.HasProjection));
        }
        catch (Exception ex) when (IsMalformed(ex))
        {
            model.Dispose();
            throw Malformed(graph, ex);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>A malformed node the patterns did not anticipate (a missing input, an empty attribute): still one clear error.</summary>
    private static bool IsMalformed(Exception ex) =>
        ex is IndexOutOfRangeException or ArgumentOutOfRangeException or KeyNotFoundException or InvalidOperationException or OverflowException;

    private static OnnxImportException Malformed(OnnxGraph graph, Exception ex) =>
        new(graph.Source, $"the graph is malformed where a ResNet was expected: {ex.Message}", inner: ex);

    private static ModelMetadata BuildMetadata(OnnxGraph graph, ResNet model, ResNetRecognizer.Recognised recognised, bool folded, string? name)
    {
        ModelMetadata? fromFile;
        try
        {
            fromFile = ModelMetadata.FromDictionary(
                graph.Model.MetadataProps.GroupBy(p => p.Key).ToDictionary(g => g.Key, g => g.Last().Value, StringComparer.Ordinal), graph.Source);
        }
        catch (System.IO.InvalidDataException ex)
        {
            throw new OnnxImportException(graph.Source, $"metadata_props: {ex.Message}", inner: ex);
        }

        var baseline = ModelMetadata.For(model);
        var extra = new Dictionary<string, string>(StringComparer.Ordinal);
        if (fromFile?.Extra is { } kept)
        {
            foreach (var (k, v) in kept)
            {
                extra[k] = v;
            }
        }

        extra["source"] = "onnx";
        extra["onnx.file"] = System.IO.Path.GetFileName(graph.Source);
        extra["onnx.producer"] = $"{graph.Model.ProducerName} {graph.Model.ProducerVersion}".Trim();
        extra["onnx.opset"] = graph.Opset.ToString(CultureInfo.InvariantCulture);
        extra["onnx.head"] = recognised.Head.ToString();
        extra["onnx.has_classifier"] = recognised.Head == OnnxOutput.Logits ? "true" : "false";
        extra["onnx.bn_folded"] = folded ? "true" : "false";
        // Preprocessing written by an exporter (ResNetSharp's, or any tool writing ModelMetadata's keys) is kept when it is
        // for the same input channels; class names only when they name this classifier's outputs. Without it the
        // preprocessing is recorded as unknown: the fields hold placeholders that nothing may use to prepare images.
        bool fileFits = fromFile is not null && fromFile.InChannels == model.Options.InChannels;
        bool namesFit = fileFits && recognised.Head == OnnxOutput.Logits && fromFile!.NumClasses == model.NumClasses;
        if (!fileFits)
        {
            extra["onnx.preprocessing"] = fromFile is null ? "none in the file" : $"the file's is for {fromFile.InChannels} channels, the graph takes {model.Options.InChannels}";
            return baseline with
            {
                Architecture = name,
                InputSize = recognised.InputSize ?? baseline.InputSize,
                PreprocessingKnown = false,
                Extra = extra,
            };
        }

        var file = fromFile!;
        return baseline with
        {
            Architecture = name,
            InputSize = file.InputSize,
            CropPct = file.CropPct,
            Interpolation = file.Interpolation,
            Mean = file.Mean,
            Std = file.Std,
            ChannelOrder = file.ChannelOrder,
            PixelMax = file.PixelMax,
            MeanImage = file.MeanImage,
            PreprocessingKnown = file.PreprocessingKnown,
            ClassNames = namesFit ? file.ClassNames : null,
            Extra = extra,
        };
    }

    /// <summary>
    /// Reads a preprocessing graph of the forms <see cref="OnnxImportOptions.PreprocessingGraph"/> names: its mean image
    /// (1 × C × H × W, square) and whether it swaps RGB to BGR.
    /// </summary>
    internal static (float[]? MeanImage, long[] Dims, bool Bgr) ReadPreprocessingGraph(OnnxGraph graph)
    {
        var nodes = graph.Nodes;
        var sub = nodes.Count > 0 ? nodes[^1] : null;
        bool bgr = nodes.Count == 3;
        bool shapeOk = nodes.Count is 1 or 3 && sub is { Op: "Sub" } &&
                       graph.Constant(sub.Inputs[1]) is { Floats: not null } c && c.Dims.Length == 4 && c.Dims[0] == 1 && c.Dims[2] == c.Dims[3];
        if (shapeOk && bgr)
        {
            var split = nodes[0];
            var concat = nodes[1];
            shapeOk = split.Op == "Split" && concat.Op == "Concat" && split.Proto.Output.Count == 3 &&
                      concat.Inputs.SequenceEqual(split.Proto.Output.Reverse()) && sub!.Inputs[0] == concat.Output;
        }

        if (!shapeOk)
        {
            throw graph.Error("expected a preprocessing graph of the form Split into R, G, B → Concat(B, G, R) → Sub(constant mean image 1×3×H×W), " +
                              "or Sub(constant mean image 1×C×H×W) alone, as ML.NET's ResNetPreprocess.onnx.");
        }

        var mean = graph.Constant(sub!.Inputs[1])!;
        if (bgr && mean.Dims[1] != 3)
        {
            throw graph.Error($"a channel swap needs a 3-channel mean image, got [{string.Join(", ", mean.Dims)}].");
        }

        return (mean.Floats, mean.Dims, bgr);
    }
}
