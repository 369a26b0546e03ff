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
        // Nothing invented: no classifier (the file has none), and the package's own preprocessing as typed metadata.
        model.IsHeadless.Should().BeTrue();
        model.Classifier.Should().BeNull();
        model.NumClasses.Should().Be(0);
        model.state_dict().Keys.Should().NotContain(k => k.StartsWith("fc.", StringComparison.Ordinal));
        model.Metadata.ChannelOrder.Should().Be(ChannelOrder.Bgr);
        model.Metadata.PixelMax.Should().Be(255);
        model.Metadata.Mean.Should().Equal(0.0, 0.0, 0.0);
        model.Metadata.Std.Should().Equal(1.0, 1.0, 1.0);
        model.Metadata.MeanImage.Should().HaveCount(3 * 224 * 224);
        model.Metadata.PreprocessingKnown.Should().BeTrue();

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
        var features = model.call(ortPre); // a headless model's output is the file's output
        features.shape.Should().Equal(1, 512);
        double maxAbs = (features.reshape(-1) - ortFeatures.reshape(-1)).abs().max().item<float>();
        double rel = OnnxTestSupport.RelativeError(features, ortFeatures);
        output.WriteLine($"ML.NET ResNet-18: max|diff| {maxAbs:E2}, max|ref| {ortFeatures.abs().max().item<float>():F3}, max|diff|/max|ref| {rel:E2}");
        rel.Should().BeLessThanOrEqualTo(1e-4);
        ortFeatures.abs().max().item<float>().Should().BeGreaterThan(0.1f, "a real network gives non-trivial features");
    }

    [Fact]
    public void MlNetResNet18Metadata_InPretrainedTransformAt224_EqualsThePackagesPreprocessing()
    {
        using var model = PretrainedBackbones.MlNetResNet18();
        using var scope = torch.NewDisposeScope();
        var meanImage = torch.tensor(model.Metadata.MeanImage!.ToArray(), new long[] { 1, 3, 224, 224 });
        torch.manual_seed(7);
        var rgb = torch.rand(2, 3, 224, 224);                                 // RGB in [0, 1], as datasets give it

        // The transform reads channel order, pixel range, mean image and input size from the model's metadata.
        // MlNetResNet18Preprocess is checked against ONNX Runtime running the package's graph above.
        var ours = Transforms.Pretrained(model.Metadata).Apply(rgb, new Random(0));
        var reference = PretrainedBackbones.MlNetResNet18Preprocess(rgb * 255);

        ours.shape.Should().Equal(2, 3, 224, 224);
        OnnxTestSupport.RelativeError(ours, reference).Should().BeLessThan(1e-5);

        // At a smaller input the mean image is area-averaged: a 2 × 2 mean pool at 112.
        var small = Transforms.Pretrained(model.Metadata, 112).Apply(torch.zeros(1, 3, 112, 112), new Random(0));
        var pooled = torch.nn.functional.avg_pool2d(meanImage, 2) * -1;
        OnnxTestSupport.RelativeError(small, pooled).Should().BeLessThan(1e-5);
    }

    /// <summary>
    /// Given a head, ML.NET's model classifies real photographs with its own preprocessing, read from typed metadata
    /// (BGR, 0 … 255, mean image): the classifier's logits equal ONNX Runtime running the package's ResNetPreprocess.onnx
    /// and ResNet18.onnx on the same resized and cropped pixels, followed by the head. The CLI's predict, fed the saved
    /// weights file, says the same.
    /// </summary>
    [Fact]
    public void MlNetResNet18_WithAHead_ClassifiesPhotosWithItsOwnPreprocessing()
    {
        string modelPath = Path.Combine(AppContext.BaseDirectory, PretrainedBackbones.MlNetResNet18RelativePath);
        string prepPath = Path.Combine(AppContext.BaseDirectory, PretrainedBackbones.MlNetResNet18PreprocessRelativePath);
        using var model = PretrainedBackbones.MlNetResNet18();
        torch.manual_seed(11);
        model.ResetClassifier(4, new[] { "w", "x", "y", "z" });
        model.eval();
        using var classifier = new ImageClassifier(model, options: new ImageClassifierOptions { Inference = new InferenceOptions { IntraOpThreads = 1 } });
        classifier.Transform.ChannelOrder.Should().Be(ChannelOrder.Bgr);
        classifier.Transform.PixelMax.Should().Be(255);

        // The reference sees the same resize and crop in RGB 0 … 255 (the transform with every normalisation switched off).
        var plain = new ImageTransform(model.Metadata with
        {
            ChannelOrder = ChannelOrder.Rgb, PixelMax = 255, Mean = new[] { 0.0, 0.0, 0.0 }, Std = new[] { 1.0, 1.0, 1.0 }, MeanImage = null,
        });
        string dir = Directory.CreateTempSubdirectory("mlnet-head").FullName;
        try
        {
            string weights = Path.Combine(dir, "mlnet-head.safetensors");
            model.SaveWeights(weights);
            var photos = new[] { "chelsea_png", "coffee_png", "astronaut_png" }; // real photographs (python3-skimage), fixtures
            foreach (string name in photos)
            {
                string path = Images.ImageFixtures.Get(name).SourcePath;
                var prediction = classifier.Classify(path, topK: 4);
                using var scope = torch.NewDisposeScope();
                using var noGrad = torch.no_grad();
                var rgb255 = plain.ToTensor(classifier.Decode(path));
                var features = OnnxTestSupport.RunOnnxRuntime(modelPath, OnnxTestSupport.RunOnnxRuntime(prepPath, rgb255)).reshape(1, 512);
                var expected = model.Classifier!.call(features);
                var actual = torch.tensor(prediction.Logits.ToArray()).view(1, 4);
                double rel = OnnxTestSupport.RelativeError(actual, expected);
                output.WriteLine($"{name}: logits [{string.Join(", ", prediction.Logits.Select(v => v.ToString("F4")))}], rel. error to ML.NET's graphs {rel:E2}");
                rel.Should().BeLessThan(1e-4);

                var (code, stdout, stderr) = CliTests.Run("predict", path, "--weights", weights, "--top", "1", "--json");
                code.Should().Be(0, stderr);
                stdout.Should().Contain($"\"label\": \"{prediction.Best.Label}\"");
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
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
