using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Runtime.InteropServices;
using ResNetSharp.Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNetSharp.Onnx;

/// <summary>What an imported ONNX graph ends in.</summary>
public enum OnnxHead
{
    /// <summary>Global average pooling, flatten and a fully connected layer (Gemm, or MatMul + Add): the model's <c>fc</c>.</summary>
    Classifier,

    /// <summary>Global average pooling only (a featurizer, e.g. ML.NET's ResNet-18): N × FeatureChannels (× 1 × 1).</summary>
    PooledFeatures,

    /// <summary>No pooling: the last feature map N × FeatureChannels × h × w.</summary>
    FeatureMap,
}

/// <summary>Options of <see cref="OnnxImporter.Import(string, OnnxImportOptions?)"/>.</summary>
public sealed record OnnxImportOptions
{
    /// <summary>
    /// Outputs of the classifier built for a graph that has none (<see cref="OnnxHead.PooledFeatures"/> or
    /// <see cref="OnnxHead.FeatureMap"/>): a <see cref="ResNet"/> always has an <c>fc</c>, which is then freshly
    /// initialised (He/PyTorch default) for fine-tuning. Ignored when the graph has a classifier. Default 1000.
    /// </summary>
    public int NumClassesIfNoHead { get; init; } = 1000;

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
    internal OnnxImportResult(ResNet model, string source, long opset, string producer, OnnxHead head, bool batchNormFolded, int? inputSize,
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

    /// <summary>What the graph ends in.</summary>
    public OnnxHead Head { get; }

    /// <summary>
    /// True when the graph's classifier was imported; false for featurizers, whose model gets a fresh
    /// <see cref="OnnxImportOptions.NumClassesIfNoHead"/>-way <c>fc</c> (use <see cref="ResNet.ForwardFeatures"/> and
    /// <see cref="ResNet.ForwardHead(Tensor, bool)"/> with preLogits for the graph's output).
    /// </summary>
    public bool HasClassifier => Head == OnnxHead.Classifier;

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
/// Builds a <see cref="ResNet"/> from an ONNX file: reads the graph (Conv, BatchNormalization, Relu, Add/Sum, MaxPool,
/// AveragePool/GlobalAveragePool/ReduceMean, Flatten/Reshape, Gemm or MatMul + Add, Slice/Pad for option-A shortcuts;
/// Identity, Dropout and Constant pass through), recognises its stage table by structure (never by initializer
/// names), builds the matching model and loads the weights strictly. Anything it cannot map exactly throws one
/// <see cref="OnnxImportException"/> naming the node; no half-built model is ever returned.
/// </summary>
public static class OnnxImporter
{
    /// <summary>Imports an ONNX ResNet.</summary>
    /// <param name="path">The .onnx file (weights inside the file, opset 7 or newer).</param>
    /// <param name="options">Head size for featurizers, device and dtype; default <see cref="OnnxImportOptions"/>.</param>
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
    /// <param name="options">Head size for featurizers, device and dtype.</param>
    /// <exception cref="OnnxImportException">As <see cref="Import(string, OnnxImportOptions?)"/>.</exception>
    public static OnnxImportResult Import(byte[] bytes, string sourceName = "memory", OnnxImportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        return Import(OnnxGraph.Parse(bytes, sourceName), options ?? new OnnxImportOptions());
    }

    private static OnnxImportResult Import(OnnxGraph graph, OnnxImportOptions options)
    {
        if (options.NumClassesIfNoHead < 1)
        {
            throw new ArgumentException($"OnnxImportOptions.NumClassesIfNoHead must be ≥ 1, got {options.NumClassesIfNoHead}.", nameof(options));
        }

        GraphMatcher.Result recognised;
        try
        {
            recognised = new GraphMatcher(graph).Match();
        }
        catch (Exception ex) when (ex is IndexOutOfRangeException or ArgumentOutOfRangeException or KeyNotFoundException or InvalidOperationException or OverflowException)
        {
            // A malformed node the patterns did not anticipate (a missing input, an empty attribute): still one clear error.
            throw new OnnxImportException(graph.Source, $"the graph is malformed where a ResNet was expected: {ex.Message}", inner: ex);
        }
        int numClasses = recognised.Head == OnnxHead.Classifier ? recognised.NumClasses : options.NumClassesIfNoHead;
        var table = recognised.Table;
        string? name = ResNetFactory.Definitions.FirstOrDefault(d => ModelMetadata.TableEquals(d.Table, table))?.Name;
        ResNet model;
        try
        {
            model = new ResNet(table, new ResNetOptions
            {
                NumClasses = numClasses,
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
            var tensors = recognised.Weights.Select(kv => ToWeight(kv.Key, kv.Value.Shape, kv.Value.Data)).ToList();
            var produced = recognised.Weights.Keys.ToHashSet(StringComparer.Ordinal);
            foreach (var (key, tensor) in model.state_dict())
            {
                // The counters BN keeps for training, and a featurizer's fresh classifier, come from the model itself.
                if (!produced.Contains(key) && (key.EndsWith("num_batches_tracked", StringComparison.Ordinal) ||
                                                (recognised.Head != OnnxHead.Classifier && key.StartsWith("fc.", StringComparison.Ordinal))))
                {
                    tensors.Add(WeightTensor.FromTensor(key, tensor));
                }
            }

            model.LoadWeights(new WeightFile(tensors, source: graph.Source));
            model.Metadata = BuildMetadata(graph, model, recognised, name);
            string producer = $"{graph.Model.ProducerName} {graph.Model.ProducerVersion}".Trim();
            return new OnnxImportResult(model, graph.Source, graph.Opset, producer, recognised.Head, recognised.BatchNormFolded, recognised.InputSize,
                recognised.Blocks, recognised.Projections);
        }
        catch (WeightMismatchException ex)
        {
            model.Dispose();
            throw new OnnxImportException(graph.Source, $"the recognised weights do not fit the recognised table {table}: {ex.Message}", inner: ex);
        }
        catch (ArgumentException ex)
        {
            model.Dispose();
            throw new OnnxImportException(graph.Source, $"the recognised weights cannot be loaded: {ex.Message}", inner: ex);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private static ModelMetadata BuildMetadata(OnnxGraph graph, ResNet model, GraphMatcher.Result recognised, string? name)
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
        extra["onnx.has_classifier"] = recognised.Head == OnnxHead.Classifier ? "true" : "false";
        extra["onnx.bn_folded"] = recognised.BatchNormFolded ? "true" : "false";
        // Preprocessing written by an exporter (ResNetSharp's, or any tool writing ModelMetadata's keys) is kept when it is
        // for the same input channels; class names only when they name this classifier's outputs.
        bool fileFits = fromFile is not null && fromFile.InChannels == model.Options.InChannels;
        bool namesFit = fileFits && recognised.Head == OnnxHead.Classifier && fromFile!.NumClasses == model.NumClasses;
        return baseline with
        {
            Architecture = name,
            InputSize = fileFits ? fromFile!.InputSize : recognised.InputSize ?? baseline.InputSize,
            CropPct = fileFits ? fromFile!.CropPct : baseline.CropPct,
            Interpolation = fileFits ? fromFile!.Interpolation : baseline.Interpolation,
            Mean = fileFits ? fromFile!.Mean : baseline.Mean,
            Std = fileFits ? fromFile!.Std : baseline.Std,
            ClassNames = namesFit ? fromFile!.ClassNames : null,
            Extra = extra,
        };
    }

    private static WeightTensor ToWeight(string name, long[] shape, float[] data) =>
        new(name, WeightDType.F32, shape, MemoryMarshal.AsBytes(data.AsSpan()).ToArray());
}
