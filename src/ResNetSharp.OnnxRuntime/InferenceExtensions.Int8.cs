using System;
using System.IO;
using System.Linq;
using Google.Protobuf;

namespace ResNetSharp.OnnxRuntime;

/// <summary>The int8 ONNX export, next to <see cref="ForInference"/> (both need ONNX Runtime: the calibration runs in it).</summary>
public static partial class InferenceExtensions
{
    /// <summary>
    /// Writes <paramref name="model"/> as a statically quantised int8 ONNX model (QDQ: QuantizeLinear/DequantizeLinear
    /// around int8 per-channel weights and uint8 per-tensor activations calibrated on <paramref name="calibration"/>,
    /// BatchNorm folded first). The file carries the float export's <c>metadata_props</c> plus <c>quantization</c> and
    /// <c>quantization_calibration</c> (the recipe). Written atomically.
    /// </summary>
    /// <param name="model">The network; it is not changed.</param>
    /// <param name="path">The .onnx file to write; its folder must exist.</param>
    /// <param name="calibration">Calibration images and method.</param>
    /// <param name="options">Opset and outputs (BatchNorm is always folded). Default <see cref="OnnxExportOptions"/>.</param>
    /// <returns>What was written.</returns>
    /// <exception cref="ArgumentException"><see cref="OnnxExportOptions.KeepBatchNorm"/> is set, or the calibration images do not fit the model.</exception>
    /// <exception cref="DirectoryNotFoundException">The folder of <paramref name="path"/> does not exist.</exception>
    public static OnnxExportResult ExportOnnxInt8(this ResNet model, string path, Calibration calibration, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentNullException.ThrowIfNull(calibration);
        options ??= new OnnxExportOptions();
        if (options.KeepBatchNorm)
        {
            throw new ArgumentException("int8 export folds BatchNorm into the convolutions first; KeepBatchNorm must be false.", nameof(options));
        }

        string full = Path.GetFullPath(path);
        string? folder = Path.GetDirectoryName(full);
        if (folder is null || !Directory.Exists(folder))
        {
            throw new DirectoryNotFoundException($"Cannot write '{full}': folder '{folder}' does not exist.");
        }

        var proto = Quantizer.Quantize(OnnxExport.ToModelProto(model, options), calibration, new InferenceOptions());
        string temp = full + $".{Environment.ProcessId}.tmp";
        try
        {
            File.WriteAllBytes(temp, proto.ToByteArray());
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }

        return new OnnxExportResult(full, new FileInfo(full).Length, options.Opset, proto.Graph.Node.Count,
            proto.Graph.Node.Select(n => n.OpType).Distinct().Order(StringComparer.Ordinal).ToArray(),
            proto.Graph.Output.Select(o => o.Name).ToArray());
    }
}
