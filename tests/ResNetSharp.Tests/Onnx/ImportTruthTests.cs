using System;
using System.IO;
using System.Linq;
using FluentAssertions;
using Google.Protobuf;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ResNetSharp.Tests.Onnx;

/// <summary>
/// Imports never invent: a graph without a classifier imports headless (no fabricated <c>fc</c>), preprocessing a file
/// does not record is unknown and refused by everything that would turn images into input, and preprocessing that is
/// known (channel order, pixel range, mean image) travels as typed metadata through safetensors and ONNX.
/// </summary>
public class ImportTruthTests(ITestOutputHelper output)
{
    private static ResNet Seeded(string name, int numClasses, long seed = 3)
    {
        torch.manual_seed(seed);
        var model = ResNetFactory.Create(name, new ResNetOptions { NumClasses = numClasses });
        InferenceResNetTests.RandomizeNorms(model, seed);
        model.eval();
        return model;
    }

    [Fact]
    public void HeadlessModel_HasNoFc_OutputsPooledFeatures_AndExportsThem()
    {
        using var model = Seeded("resnet20", numClasses: 0);
        model.IsHeadless.Should().BeTrue();
        model.Classifier.Should().BeNull();
        model.NumClasses.Should().Be(0);
        model.Metadata.IsHeadless.Should().BeTrue();
        model.state_dict().Keys.Should().NotContain(k => k.StartsWith("fc.", StringComparison.Ordinal));

        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        torch.manual_seed(5);
        var x = torch.randn(2, 3, 32, 32);
        var y = model.call(x);
        y.shape.Should().Equal(2, 64);
        torch.allclose(y, model.ForwardFeatures(x).mean(new long[] { 2, 3 }), 1e-6, 1e-6).Should().BeTrue("the output of a headless network is its pooled features");

        // ONNX: the default output is the model's own (features); asking for logits names the problem.
        var proto = OnnxExport.ToModelProto(model, new OnnxExportOptions());
        proto.Graph.Output.Select(o => o.Name).Should().Equal("features");
        proto.Graph.Node.Should().NotContain(n => n.OpType == "Gemm");
        var logits = () => OnnxExport.ToModelProto(model, new OnnxExportOptions { Output = OnnxOutput.Logits });
        logits.Should().Throw<ArgumentException>().WithMessage("*headless*no logits*PooledFeatures*");

        // Re-import: headless again, the exporter's preprocessing kept, same outputs.
        using var imported = OnnxImporter.Import(proto.ToByteArray(), "headless.onnx");
        imported.HasClassifier.Should().BeFalse();
        imported.Head.Should().Be(OnnxOutput.PooledFeatures);
        imported.Model.IsHeadless.Should().BeTrue();
        imported.Model.state_dict().Keys.Should().NotContain(k => k.StartsWith("fc.", StringComparison.Ordinal));
        imported.Model.Metadata.PreprocessingKnown.Should().BeTrue("ResNetSharp's exporter writes the preprocessing");
        imported.Model.eval();
        OnnxTestSupport.RelativeError(imported.Model.call(x), y).Should().BeLessThan(1e-5);

        // ONNX Runtime runs it and returns the features.
        using var fast = model.ForInference();
        fast.NumClasses.Should().Be(0);
        OnnxTestSupport.RelativeError(fast.Forward(x), y).Should().BeLessThan(1e-4);
    }

    [Fact]
    public void FeaturizerExport_ImportsHeadless_SavesNoFabricatedTensors_AndTakesAHeadLater()
    {
        using var model = Seeded("resnet20", numClasses: 10);
        var proto = OnnxExport.ToModelProto(model, new OnnxExportOptions { Output = OnnxOutput.PooledFeatures });
        using var imported = OnnxImporter.Import(proto.ToByteArray(), "featurizer.onnx");
        imported.Model.IsHeadless.Should().BeTrue("a graph without a classifier gets none: a random fc would only give confident nonsense");

        string dir = Directory.CreateTempSubdirectory("headless").FullName;
        try
        {
            string path = Path.Combine(dir, "featurizer.safetensors");
            imported.Model.SaveWeights(path);
            var file = WeightFile.Read(path);
            file.Tensors.Select(t => t.Name).Should().NotContain(k => k.StartsWith("fc.", StringComparison.Ordinal));
            file.Metadata["num_classes"].Should().Be("0");

            using var rebuilt = ResNetFactory.FromWeights(path);
            rebuilt.IsHeadless.Should().BeTrue();

            // A head is added on request, where a model built with one has it in the state dict (torchvision's order).
            rebuilt.ResetClassifier(4, new[] { "a", "b", "c", "d" });
            rebuilt.IsHeadless.Should().BeFalse();
            using var built = ResNetFactory.Create("resnet20", new ResNetOptions { NumClasses = 4 });
            rebuilt.state_dict().Keys.Should().Equal(built.state_dict().Keys);
            rebuilt.Metadata.ClassNames.Should().Equal("a", "b", "c", "d");
            using var x = torch.randn(1, 3, 32, 32);
            using var y = rebuilt.call(x);
            y.shape.Should().Equal(1, 4);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void GraphWithoutMetadata_PreprocessingUnknown_TransformAndClassifierRefuse_UntilStated()
    {
        // PyTorch's exporter writes no metadata_props: nothing says how the images were prepared.
        using var result = OnnxImporter.Import(OnnxTestSupport.File_("cifar_option_a.onnx"));
        var model = result.Model;
        model.Metadata.PreprocessingKnown.Should().BeFalse();
        model.Metadata.Extra!["onnx.preprocessing"].Should().Be("none in the file");
        model.Metadata.InputSize.Should().Be(32, "the graph's fixed input size is recorded; it is a fact of the file");

        var transform = () => new ImageTransform(model.Metadata);
        transform.Should().Throw<InvalidOperationException>().WithMessage("*ImageTransform*preprocessing is unknown*cifar_option_a.onnx*");
        var classifier = () => new ImageClassifier(model);
        classifier.Should().Throw<InvalidOperationException>().WithMessage("*preprocessing is unknown*");

        // Unknown survives a save and a reload.
        string dir = Directory.CreateTempSubdirectory("unknown").FullName;
        try
        {
            string path = Path.Combine(dir, "unknown.safetensors");
            model.SaveWeights(path);
            WeightFile.Read(path).Metadata["preprocessing"].Should().Be("unknown");
            using var reloaded = ResNetFactory.FromWeights(path);
            reloaded.Metadata.PreprocessingKnown.Should().BeFalse();
            var fromFile = () => ImageClassifier.FromWeights(path);
            fromFile.Should().Throw<InvalidOperationException>();
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }

        // Stated, it works.
        model.Metadata = model.Metadata with { Mean = new[] { 0.5, 0.5, 0.5 }, Std = new[] { 0.25, 0.25, 0.25 }, CropPct = 1.0, PreprocessingKnown = true };
        using var stated = new ImageClassifier(model);
        stated.Transform.InputSize.Should().Be(32);
    }

    [Fact]
    public void ImageClassifier_HeadlessModel_RefusesNamingTheMissingClassifier()
    {
        using var model = Seeded("resnet20", numClasses: 0);
        var act = () => new ImageClassifier(model);
        act.Should().Throw<ArgumentException>().WithMessage("*headless*no classifier*ResetClassifier*");
        var cam = () => ClassActivationMaps.Cam(model, torch.zeros(1, 3, 32, 32));
        cam.Should().Throw<ArgumentException>().WithMessage("*headless*");
    }

    [Fact]
    public void TypedPreprocessing_RoundTripsThroughSafetensorsAndOnnxMetadata()
    {
        using var model = Seeded("resnet20", numClasses: 3);
        var meanImage = Enumerable.Range(0, 3 * 32 * 32).Select(i => (float)Math.Sin(i) * 7.5f).ToArray();
        model.Metadata = model.Metadata with
        {
            ChannelOrder = ChannelOrder.Bgr, PixelMax = 255, Mean = new[] { 1.0, 2.0, 3.0 }, Std = new[] { 1.0, 1.0, 1.0 }, MeanImage = meanImage,
        };

        var pairs = model.Metadata.ToDictionary();
        pairs["channel_order"].Should().Be("bgr");
        pairs["pixel_max"].Should().Be("255");
        pairs.Should().NotContainKey("preprocessing", "known preprocessing writes no marker");
        var back = ModelMetadata.FromDictionary(pairs, "pairs")!;
        back.ChannelOrder.Should().Be(ChannelOrder.Bgr);
        back.PixelMax.Should().Be(255);
        back.MeanImage.Should().Equal(meanImage, "the mean image is stored as exact float32 bits");
        back.PreprocessingKnown.Should().BeTrue();

        var proto = OnnxExport.ToModelProto(model, new OnnxExportOptions());
        using var imported = OnnxImporter.Import(proto.ToByteArray(), "typed.onnx");
        imported.Model.Metadata.ChannelOrder.Should().Be(ChannelOrder.Bgr);
        imported.Model.Metadata.PixelMax.Should().Be(255);
        imported.Model.Metadata.MeanImage.Should().Equal(meanImage);
    }

    [Fact]
    public void TypedPreprocessing_BadValues_ThrowNamingTheField()
    {
        using var model = Seeded("resnet20", numClasses: 3);
        var m = model.Metadata;
        var shortImage = () => m with { MeanImage = new float[10] };
        shortImage().Invoking(x => x.Validate()).Should().Throw<ArgumentException>().WithMessage("*MeanImage has 10 values*3×32×32*3072*");
        (m with { PixelMax = 0 }).Invoking(x => x.Validate()).Should().Throw<ArgumentException>().WithMessage("*PixelMax*");
        (m with { ChannelOrder = ChannelOrder.Bgr, InChannels = 1, Mean = new[] { 0.5 }, Std = new[] { 0.5 } })
            .Invoking(x => x.Validate()).Should().Throw<ArgumentException>().WithMessage("*Bgr needs 3 input channels*");
        (m with { NumClasses = 0 }).Invoking(x => x.Validate()).Should().NotThrow();
        (m with { NumClasses = 0, ClassNames = new[] { "x" } }).Invoking(x => x.Validate()).Should().Throw<ArgumentException>().WithMessage("*headless*");

        var pairs = m.ToDictionary().ToDictionary(kv => kv.Key, kv => kv.Value);
        pairs["preprocessing"] = "guessed";
        var act = () => ModelMetadata.FromDictionary(pairs, "file.safetensors");
        act.Should().Throw<InvalidDataException>().WithMessage("*file.safetensors*'preprocessing'*");
        output.WriteLine("validated");
    }
}
