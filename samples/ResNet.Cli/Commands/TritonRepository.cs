using System;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;

namespace ResNetSharp.Cli.Commands;

/// <summary>
/// Writes a Triton Inference Server model repository entry for <c>resnet export --triton DIR</c>:
/// <c>DIR/NAME/config.pbtxt</c> (ONNX Runtime backend, dynamic batching), <c>DIR/NAME/1/model.onnx</c> and, for the
/// logits, <c>DIR/NAME/labels.txt</c> (one class name per line, Triton's classification extension).
/// </summary>
internal static class TritonRepository
{
    /// <summary>The version folder written (Triton serves the numeric sub-folders of a model).</summary>
    public const string Version = "1";

    public const string LabelFile = "labels.txt";

    /// <summary>What was written: the model folder, the ONNX file, the export's result and the config text.</summary>
    internal sealed record Written(string ModelDirectory, string OnnxPath, OnnxExportResult Export, string Config);

    /// <summary>Exports <paramref name="model"/> into <c>root/name</c>.</summary>
    public static Written Write(ResNet model, string root, string name, int maxBatchSize, string instanceKind, OnnxExportOptions options)
    {
        CheckName(name);
        if (maxBatchSize < 1)
        {
            throw new ArgumentException($"--max-batch must be ≥ 1 (Triton batches requests up to it), got {maxBatchSize}.");
        }

        string kind = instanceKind.Trim().ToLowerInvariant() switch
        {
            "cpu" => "KIND_CPU",
            "gpu" => "KIND_GPU",
            "auto" => "KIND_AUTO",
            _ => throw new ArgumentException($"Unknown --instance '{instanceKind}': expected cpu, gpu or auto."),
        };
        if (options.Output == OnnxOutput.FeatureMaps)
        {
            throw new ArgumentException("--triton serves the logits or --features pooled, not --features maps.");
        }

        if (!Directory.Exists(root))
        {
            throw new DirectoryNotFoundException($"The --triton model repository '{root}' does not exist: create it first (model folders go inside it).");
        }

        bool logits = options.Output == OnnxOutput.Logits;
        string[]? labels = logits ? Labels(model) : null;
        string modelDir = Path.Combine(Path.GetFullPath(root), name);
        string versionDir = Path.Combine(modelDir, Version);
        Directory.CreateDirectory(versionDir);
        string onnx = Path.Combine(versionDir, "model.onnx");
        var export = model.ExportOnnx(onnx, options);
        long outputWidth = logits ? model.NumClasses : model.FeatureChannels;
        string config = Config(name, maxBatchSize, kind, model.Options.InChannels, export.Outputs.Single(), outputWidth, labels is not null);
        File.WriteAllText(Path.Combine(modelDir, "config.pbtxt"), config);
        if (labels is not null)
        {
            File.WriteAllText(Path.Combine(modelDir, LabelFile), string.Concat(labels.Select(l => l + "\n")));
        }

        return new Written(modelDir, onnx, export, config);
    }

    /// <summary>
    /// The config in protobuf text format (field names of Triton's ModelConfig): batch dimension left out of dims,
    /// height and width -1 (the export takes any size).
    /// </summary>
    internal static string Config(string name, int maxBatchSize, string kind, long channels, string output, long outputWidth, bool withLabels)
    {
        var inv = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        text.Append(inv, $"name: {Quote(name)}\n");
        text.Append("backend: \"onnxruntime\"\n");
        text.Append(inv, $"max_batch_size: {maxBatchSize}\n");
        text.Append("input [\n  {\n    name: \"input\"\n    data_type: TYPE_FP32\n    format: FORMAT_NCHW\n");
        text.Append(inv, $"    dims: [ {channels}, -1, -1 ]\n  }}\n]\n");
        text.Append(inv, $"output [\n  {{\n    name: {Quote(output)}\n    data_type: TYPE_FP32\n    dims: [ {outputWidth} ]\n");
        if (withLabels)
        {
            text.Append(inv, $"    label_filename: {Quote(LabelFile)}\n");
        }

        text.Append("  }\n]\n");
        text.Append(inv, $"instance_group [\n  {{\n    count: 1\n    kind: {kind}\n  }}\n]\n");
        text.Append("dynamic_batching { }\n");
        return text.ToString();
    }

    /// <summary>A model folder name: letters, digits, '_', '-', '.' (not only dots), so that it is one path segment and a plain string.</summary>
    private static void CheckName(string name)
    {
        if (name.Length == 0 || name.Trim('.').Length == 0 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.'))
        {
            throw new ArgumentException($"Triton model name '{name}' is not a plain folder name: use letters, digits, '_', '-' and '.' (e.g. resnet50).");
        }
    }

    /// <summary>The class names, one per class (the index when the metadata has none); names must fit on one line.</summary>
    private static string[] Labels(ResNet model)
    {
        var names = model.Metadata.ClassNames;
        var labels = Enumerable.Range(0, model.NumClasses)
            .Select(i => names is not null && i < names.Count ? names[i] : i.ToString(CultureInfo.InvariantCulture)).ToArray();
        foreach (var (label, i) in labels.Select((l, i) => (l, i)))
        {
            if (label.Contains('\n') || label.Contains('\r'))
            {
                throw new ArgumentException($"Class name {i} contains a line break: Triton's labels file holds one name per line.");
            }
        }

        return labels;
    }

    private static string Quote(string value) => "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";

    /// <summary>The default model name: the architecture's, lower case, with anything outside the allowed set as '_'.</summary>
    public static string DefaultName(ResNet model) =>
        new(model.ModelName.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.' ? c : '_').ToArray());

}
