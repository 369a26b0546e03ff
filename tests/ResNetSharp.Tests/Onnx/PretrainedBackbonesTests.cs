using System;
using System.IO;
using System.Linq;
using FluentAssertions;
using ResNetSharp.Training;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;

namespace ResNetSharp.Tests.Onnx;

/// <summary>
/// ML.NET's ImageNet ResNet-18 (NuGet Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1, CNTK-trained, opset 8), whose
/// package copies DnnImageModels/ into this test's output folder: imported, it must compute ONNX Runtime's 512 features.
/// </summary>
public class PretrainedBackbonesTests(ITestOutputHelper output)
{
    [Fact]
    public void MlNetResNet18_FeaturesMatchOnnxRuntimeOnThePackagesPreprocessing()
    {
        string modelPath = Path.Combine(AppContext.BaseDirectory, PretrainedBackbones.MlNetResNet18RelativePath);
        string prepPath = Path.Combine(AppContext.BaseDirectory, PretrainedBackbones.MlNetResNet18PreprocessRelativePath);
        using var model = PretrainedBackbones.MlNetResNet18();
        model.eval();
        // CNTK's "ResNet-18" is not torchvision's: conv5_x has three basic blocks (1 + 18 + 1 = 20 weighted layers).
        var expected = ResNetFactory.GetTable("resnet18") with { Layers = new[] { 2, 2, 2, 3 } };
        ModelMetadata.TableEquals(model.Table, expected).Should().BeTrue(model.Table.ToString());
        model.Metadata.Architecture.Should().BeNull();
        model.Metadata.Extra!["onnx.has_classifier"].Should().Be("false");
        model.Metadata.Extra["channel_order"].Should().Be("BGR");
        model.Metadata.Std.Should().Equal(1 / 255.0, 1 / 255.0, 1 / 255.0);

        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(18);
        var rgb = torch.rand(1, 3, 224, 224) * 255;                          // an RGB image in 0 … 255, as ML.NET extracts pixels

        // The preprocessing: ours (read from ResNetPreprocess.onnx) against ONNX Runtime running that file.
        var ortPre = OnnxTestSupport.RunOnnxRuntime(prepPath, rgb);
        var pre = PretrainedBackbones.MlNetResNet18Preprocess(rgb);
        OnnxTestSupport.RelativeError(pre, ortPre).Should().BeLessThan(1e-6);

        // The features: the imported model against ONNX Runtime running the original file, on the same input.
        var ortFeatures = OnnxTestSupport.RunOnnxRuntime(modelPath, ortPre);
        var features = model.ForwardHead(model.ForwardFeatures(ortPre), preLogits: true);
        features.shape.Should().Equal(1, 512);
        double maxAbs = (features.reshape(-1) - ortFeatures.reshape(-1)).abs().max().item<float>();
        double rel = OnnxTestSupport.RelativeError(features, ortFeatures);
        output.WriteLine($"ML.NET ResNet-18: max|diff| {maxAbs:E2}, max|ref| {ortFeatures.abs().max().item<float>():F3}, max|diff|/max|ref| {rel:E2}");
        rel.Should().BeLessThanOrEqualTo(1e-4);
        ortFeatures.abs().max().item<float>().Should().BeGreaterThan(0.1f, "a real network gives non-trivial features");
    }

    [Fact]
    public void MlNetResNet18MeanImage_InPretrainedTransformAt224_EqualsThePackagesPreprocessing()
    {
        using var model = PretrainedBackbones.MlNetResNet18(numClasses: 10);
        using var meanImage = PretrainedBackbones.MlNetResNet18MeanImage();
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(7);
        var rgb = torch.rand(2, 3, 224, 224);                                 // RGB in [0, 1], as datasets give it

        // The transform reads channel order, scale (std 1/255) and input size from the model's metadata; the mean image
        // is the file's. MlNetResNet18Preprocess is checked against ONNX Runtime running the package's graph above.
        var ours = Transforms.Pretrained(model.Metadata, null, meanImage).Apply(rgb, new Random(0));
        var reference = PretrainedBackbones.MlNetResNet18Preprocess(rgb * 255);

        meanImage.shape.Should().Equal(1, 3, 224, 224);
        ours.shape.Should().Equal(2, 3, 224, 224);
        OnnxTestSupport.RelativeError(ours, reference).Should().BeLessThan(1e-5);

        // At a smaller input the mean image is area-averaged: a 2 × 2 mean pool at 112.
        var small = Transforms.Pretrained(model.Metadata, 112, meanImage).Apply(torch.zeros(1, 3, 112, 112), new Random(0));
        var pooled = torch.nn.functional.avg_pool2d(meanImage, 2) * -255;
        OnnxTestSupport.RelativeError(small, pooled).Should().BeLessThan(1e-5);
    }

    [Fact]
    public void MlNetResNet18_MissingFile_SaysWhichPackageToReference()
    {
        var act = () => PretrainedBackbones.MlNetResNet18("/nonexistent/ResNet18.onnx");
        act.Should().Throw<FileNotFoundException>().WithMessage("*Microsoft.ML.DnnImageFeaturizer.ResNet18*");
    }

    [Fact]
    public void MlNetResNet18Preprocess_WrongSize_Throws()
    {
        using var x = torch.rand(1, 3, 64, 64);
        var act = () => PretrainedBackbones.MlNetResNet18Preprocess(x);
        act.Should().Throw<ArgumentException>().WithMessage("*224×224*");
    }
}
