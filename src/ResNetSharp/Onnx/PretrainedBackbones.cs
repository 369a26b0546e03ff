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
    /// <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c> 0.23.1), imported as a headless <see cref="ResNet"/>. Its recognised
    /// table is not torchvision's resnet18: CNTK's network has three basic blocks in conv5_x, [2, 2, 2, 3] (1 + 18 + 1 = 20
    /// weighted layers), with option-B projections and the ImageNet stem. The file is a featurizer: it ends in 7×7 average
    /// pooling (512 features) and has no classifier, so the model has none either (<see cref="ResNet.IsHeadless"/>): its
    /// forward pass returns the file's output. <see cref="ResNet.ResetClassifier"/> adds one to train.
    /// </summary>
    /// <remarks>
    /// The preprocessing it expects is read from the package's <c>ResNetPreprocess.onnx</c>, which ML.NET runs before it,
    /// and recorded as typed <see cref="ResNet.Metadata"/>: a 224 × 224 image (the short side resized to 224, the centre
    /// cropped, as ML.NET's <c>ResizeImages</c> does by default), pixel values in 0 … 255
    /// (<see cref="ModelMetadata.PixelMax"/> 255), channels in <b>BGR</b> order (<see cref="ModelMetadata.ChannelOrder"/>),
    /// minus a per-pixel <b>mean image</b> (<see cref="ModelMetadata.MeanImage"/>, 3 × 224 × 224; its per-channel
    /// averages are B 103.06, G 115.90, R 123.15, and it varies by up to about 13 around them); no per-channel mean and
    /// no division by a standard deviation (<see cref="ModelMetadata.Mean"/> 0, <see cref="ModelMetadata.Std"/> 1). The
    /// resampling filter is ML.NET's caller's choice; bilinear is recorded.
    /// </remarks>
    /// <param name="onnxPath">The ResNet18.onnx file; null to look under <see cref="AppContext.BaseDirectory"/> at <see cref="MlNetResNet18RelativePath"/>.</param>
    /// <param name="device">Device, or null for the CPU.</param>
    /// <param name="preprocessPath">ResNetPreprocess.onnx; null to look under <see cref="AppContext.BaseDirectory"/> at <see cref="MlNetResNet18PreprocessRelativePath"/>.</param>
    /// <exception cref="FileNotFoundException">A file is not there: reference the NuGet package (its build props copy the files) or pass the paths.</exception>
    /// <exception cref="OnnxImportException">A file is not the expected graph.</exception>
    public static ResNet MlNetResNet18(string? onnxPath = null, Device? device = null, string? preprocessPath = null)
    {
        string path = Locate(onnxPath, MlNetResNet18RelativePath);
        string prep = Locate(preprocessPath, MlNetResNet18PreprocessRelativePath);
        var model = OnnxImporter.Import(path, new OnnxImportOptions { Device = device, PreprocessingGraph = prep }).Model;
        try
        {
            model.Metadata = model.Metadata with
            {
                Extra = new Dictionary<string, string>(model.Metadata.Extra!, StringComparer.Ordinal)
                {
                    ["source"] = "Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1 (CNTK 2.6, ImageNet)",
                },
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

    private static (float[] Mean, long[] Dims) ReadMeanImage(string? preprocessPath)
    {
        var graph = OnnxGraph.Read(Locate(preprocessPath, MlNetResNet18PreprocessRelativePath));
        var (mean, dims, bgr) = OnnxImporter.ReadPreprocessingGraph(graph);
        if (!bgr || dims[1] != 3)
        {
            throw graph.Error("expected ML.NET's ResNet preprocessing: Split into R, G, B → Concat(B, G, R) → Sub(constant mean image 1×3×H×W).");
        }

        return (mean!, dims);
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
