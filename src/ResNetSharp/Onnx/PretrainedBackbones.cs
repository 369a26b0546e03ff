using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using ResNetSharp.Onnx;
using static TorchSharp.torch;

namespace ResNetSharp.Onnx;

/// <summary>
/// Real pretrained backbones that arrive through NuGet as ONNX files and are imported by <see cref="OnnxImporter"/>.
/// Nothing is downloaded at run time: the package is restored like any other and copies its files into the app's output.
/// </summary>
internal static class PretrainedBackbones
{
    /// <summary>Where the package <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c> copies the model, relative to the app's output folder.</summary>
    public const string MlNetResNet18RelativePath = "DnnImageModels/ResNet18Onnx/ResNet18.onnx";

    /// <summary>Where the same package copies the model's preprocessing graph, relative to the app's output folder.</summary>
    public const string MlNetResNet18PreprocessRelativePath = "DnnImageModels/ResNetPrepOnnx/ResNetPreprocess.onnx";

    /// <summary>
    /// ML.NET's ImageNet-trained ResNet-18 (CNTK 2.6, shipped as ONNX opset 8 in the NuGet package
    /// <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c> 0.23.1), imported as a <see cref="ResNet"/>. Its recognised table is
    /// not torchvision's resnet18: CNTK's network has three basic blocks in conv5_x, [2, 2, 2, 3] (1 + 18 + 1 = 20 weighted
    /// layers), with option-B projections and the ImageNet stem. The file is a featurizer: it ends in 7×7 average pooling (512 features) and has no classifier, so the
    /// model's <c>fc</c> is freshly initialised for <paramref name="numClasses"/> classes for fine-tuning, and the
    /// file's own output is <c>model.ForwardHead(model.ForwardFeatures(x), preLogits: true)</c>.
    /// </summary>
    /// <remarks>
    /// <para>Preprocessing it expects (read from the package's <c>ResNetPreprocess.onnx</c>, which ML.NET runs before it):
    /// a 224 × 224 image, N × 3 × 224 × 224 planar, pixel values in 0 … 255 (not scaled to [0, 1]), channels in
    /// <b>BGR</b> order, minus a per-pixel <b>mean image</b> (3 × 224 × 224; its per-channel averages are
    /// B 103.06, G 115.90, R 123.15, and it varies by up to about 13 around them); no division by a standard deviation.
    /// ML.NET resizes images to 224 × 224 before that (its ResizeImages default: scale the short side, crop the centre).
    /// <see cref="MlNetResNet18Preprocess"/> applies exactly this to an RGB 0 … 255 batch.</para>
    /// <para><see cref="ResNet.Metadata"/> records it as far as per-channel fields can: mean = the per-channel averages / 255
    /// in BGR order, std = 1/255, crop 1.0, and in <see cref="ModelMetadata.Extra"/> <c>channel_order = BGR</c>,
    /// <c>pixel_range = 0-255</c> and <c>mean_image</c> (the exact per-pixel mean lives in the preprocessing graph).</para>
    /// </remarks>
    /// <param name="onnxPath">The ResNet18.onnx file; null to look under <see cref="AppContext.BaseDirectory"/> at <see cref="MlNetResNet18RelativePath"/>.</param>
    /// <param name="numClasses">Outputs of the fresh classifier. Default 1000.</param>
    /// <param name="device">Device, or null for the CPU.</param>
    /// <exception cref="FileNotFoundException">The file is not there: reference the NuGet package (its build props copy the file) or pass the path.</exception>
    /// <exception cref="OnnxImportException">The file is not the expected graph.</exception>
    public static ResNet MlNetResNet18(string? onnxPath = null, int numClasses = 1000, Device? device = null)
    {
        string path = Locate(onnxPath, MlNetResNet18RelativePath);
        var result = OnnxImporter.Import(path, new OnnxImportOptions { NumClassesIfNoHead = numClasses, Device = device });
        var model = result.Model;
        try
        {
            var channelMean = new[] { 103.06262, 115.902885, 123.15163 }; // B, G, R averages of ResNetPreprocess.onnx's MeanImage
            var extra = new Dictionary<string, string>(model.Metadata.Extra ?? new Dictionary<string, string>(), StringComparer.Ordinal)
            {
                ["source"] = "Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1 (CNTK 2.6, ImageNet)",
                ["channel_order"] = "BGR",
                ["pixel_range"] = "0-255",
                ["mean_image"] = "per-pixel 3x224x224 mean image subtracted (ResNetPreprocess.onnx); 'mean' holds its per-channel averages / 255",
            };
            model.Metadata = model.Metadata with
            {
                InputSize = 224,
                CropPct = 1.0,
                Interpolation = ResizeInterpolation.Bilinear,
                Mean = channelMean.Select(m => m / 255.0).ToArray(),
                Std = new[] { 1 / 255.0, 1 / 255.0, 1 / 255.0 },
                Extra = extra,
            };
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// ML.NET's preprocessing for <see cref="MlNetResNet18"/>, exactly as its <c>ResNetPreprocess.onnx</c> computes it:
    /// RGB → BGR, then subtract the per-pixel mean image (values stay in the 0 … 255 range).
    /// </summary>
    /// <param name="rgb">N × 3 × 224 × 224 float tensor, RGB, values 0 … 255.</param>
    /// <param name="preprocessPath">ResNetPreprocess.onnx; null to look under <see cref="AppContext.BaseDirectory"/> at <see cref="MlNetResNet18PreprocessRelativePath"/>.</param>
    /// <returns>The network's input (same shape and device as <paramref name="rgb"/>).</returns>
    /// <exception cref="ArgumentException">The input is not N × 3 × 224 × 224 floating point.</exception>
    /// <exception cref="FileNotFoundException">The preprocessing file is not there.</exception>
    /// <exception cref="OnnxImportException">The file is not the expected Split → Concat (B, G, R) → Sub(mean image) graph.</exception>
    public static Tensor MlNetResNet18Preprocess(Tensor rgb, string? preprocessPath = null)
    {
        ArgumentNullException.ThrowIfNull(rgb);
        if (rgb.dim() != 4 || rgb.shape[1] != 3 || !rgb.is_floating_point())
        {
            throw new ArgumentException($"Expected a float N×3×H×W RGB batch in 0 … 255, got {rgb.dtype} [{string.Join(", ", rgb.shape)}].", nameof(rgb));
        }

        var (mean, dims) = ReadMeanImage(preprocessPath);
        if (rgb.shape[2] != dims[2] || rgb.shape[3] != dims[3])
        {
            throw new ArgumentException(
                $"Expected {dims[2]}×{dims[3]} images (the mean image's size), got {rgb.shape[2]}×{rgb.shape[3]}.", nameof(rgb));
        }

        using var scope = NewDisposeScope();
        var meanImage = tensor(mean, dims, dtype: rgb.dtype, device: rgb.device);
        var bgr = rgb.flip(1);
        return (bgr - meanImage).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The per-pixel mean image of <see cref="MlNetResNet18"/>'s preprocessing (read from <c>ResNetPreprocess.onnx</c>),
    /// 1 × 3 × 224 × 224 float, in <b>BGR</b> order and in [0, 1] units (the file's 0 … 255 values / 255): what
    /// <c>Transforms.Pretrained</c> (ResNetSharp.Training) takes as its mean image, so that training and evaluation feed the
    /// backbone exactly what ML.NET feeds it (<c>Transforms.Pretrained(model.Metadata, 224, meanImage)</c> on an RGB
    /// batch in [0, 1] equals <see cref="MlNetResNet18Preprocess"/> on the same batch × 255).
    /// </summary>
    /// <param name="preprocessPath">ResNetPreprocess.onnx; null to look under <see cref="AppContext.BaseDirectory"/> at <see cref="MlNetResNet18PreprocessRelativePath"/>.</param>
    /// <exception cref="FileNotFoundException">The preprocessing file is not there.</exception>
    /// <exception cref="OnnxImportException">The file is not the expected Split → Concat (B, G, R) → Sub(mean image) graph.</exception>
    public static Tensor MlNetResNet18MeanImage(string? preprocessPath = null)
    {
        var (mean, dims) = ReadMeanImage(preprocessPath);
        using var scope = NewDisposeScope();
        return tensor(mean, dims, dtype: ScalarType.Float32).div_(255.0).MoveToOuterDisposeScope();
    }

    private static (float[] Mean, long[] Dims) ReadMeanImage(string? preprocessPath)
    {
        string path = Locate(preprocessPath, MlNetResNet18PreprocessRelativePath);
        var graph = OnnxGraph.Read(path);
        var split = graph.Nodes.FirstOrDefault(n => n.Op == "Split");
        var concat = graph.Nodes.FirstOrDefault(n => n.Op == "Concat");
        var sub = graph.Nodes.FirstOrDefault(n => n.Op == "Sub");
        if (graph.Nodes.Count != 3 || split is null || concat is null || sub is null || split.Proto.Output.Count != 3 ||
            !concat.Inputs.SequenceEqual(split.Proto.Output.Reverse()) || sub.Inputs[0] != concat.Output ||
            graph.Constant(sub.Inputs[1]) is not { Floats: { } mean } meanConst || meanConst.Dims.Length != 4 || meanConst.Dims[1] != 3)
        {
            throw graph.Error("expected ML.NET's ResNet preprocessing: Split into R, G, B → Concat(B, G, R) → Sub(constant mean image 1×3×H×W).");
        }

        return (mean, meanConst.Dims);
    }

    private static string Locate(string? path, string relative)
    {
        string full = path ?? Path.Combine(AppContext.BaseDirectory, relative);
        if (!File.Exists(full))
        {
            throw new FileNotFoundException(
                string.Create(CultureInfo.InvariantCulture,
                    $"'{full}' not found. Reference the NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18 (0.23.1), whose build props copy " +
                    $"{relative} into the app's output folder, or pass the file's path."), full);
        }

        return full;
    }
}
