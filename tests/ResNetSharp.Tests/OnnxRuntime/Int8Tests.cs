using System;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using FluentAssertions;
using ResNetSharp.Images;
using ResNetSharp.Onnx.Proto;
using ResNetSharp.OnnxRuntime;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;
using InferenceOptions = ResNetSharp.OnnxRuntime.InferenceOptions;

namespace ResNetSharp.Tests.OnnxRuntime;

/// <summary>
/// int8 (QDQ) inference against the float eval model on real photographs (python3-skimage's): ML.NET's pretrained
/// ResNet-18, calibrated on half the photographs, must give pooled features at cosine ≥ 0.98 to the float model's on
/// the other half; and the quantised graph has the standard QDQ form (int8 per-channel weights, uint8 activations).
/// </summary>
public class Int8Tests(ITestOutputHelper output)
{
    private const string PhotoFolder = "/usr/lib/python3/dist-packages/skimage/data";

    /// <summary>Every PNG/JPEG photograph of at least 64 × 64 in skimage's data folder, as 224² RGB batches in 0 … 255 (resize 256, centre crop).</summary>
    internal static Tensor Photos()
    {
        Directory.Exists(PhotoFolder).Should().BeTrue($"{PhotoFolder} (apt-get install python3-skimage) holds the real photographs this test needs");
        var transform = new ImageTransform(new ModelMetadata { NumClasses = 1, Mean = new[] { 0.0, 0, 0 }, Std = new[] { 1.0, 1, 1 } });
        var images = Directory.GetFiles(PhotoFolder).Where(f => f.EndsWith(".png", StringComparison.Ordinal) || f.EndsWith(".jpg", StringComparison.Ordinal))
            .Where(f => Path.GetFileName(f) != "truncated.jpg") // skimage's deliberately broken file
            .Order(StringComparer.Ordinal)
            .Select(f => ImageDecoder.Decode(f, 3))
            .Where(i => i.Width >= 64 && i.Height >= 64)
            .Select(i => transform.Apply(i))
            .ToList();
        images.Count.Should().BeGreaterThanOrEqualTo(16, "skimage ships a few dozen photographs");
        return torch.tensor(images.SelectMany(i => i).ToArray(), new long[] { images.Count, 3, 224, 224 }) * 255;
    }

    [Fact]
    public void MlNetResNet18_Int8PooledFeatures_CosineAtLeast098OnHeldOutPhotographs()
    {
        using var model = PretrainedBackbones.MlNetResNet18();
        model.eval();
        using var scope = torch.NewDisposeScope();
        var x = PretrainedBackbones.MlNetResNet18Preprocess(Photos());
        long n = x.shape[0];
        var calibrate = x.index_select(0, torch.arange(0, n, 2));
        var held = x.index_select(0, torch.arange(1, n, 2));

        using var int8 = model.ForInference(new InferenceOptions { Calibration = Calibration.FromTensor(calibrate) });
        Tensor expected;
        using (torch.no_grad())
        {
            expected = model.ForwardFeatures(held).mean(new long[] { 2, 3 });
        }

        var actual = int8.ForwardFeatures(held);
        var cosine = nn.functional.cosine_similarity(actual, expected, 1).data<float>().ToArray();
        output.WriteLine($"{held.shape[0]} held-out photographs, calibrated on {calibrate.shape[0]}: cosine min {cosine.Min():F4}, mean {cosine.Average():F4}");
        cosine.Should().OnlyContain(c => c >= 0.98f);
    }

    /// <summary>
    /// A linear probe on ML.NET's ImageNet features loses at most one point when the features come from the int8 copy:
    /// multinomial logistic regression trained on float32 pooled features of 1,000 Fashion-MNIST training images
    /// (grey repeated to RGB, 64², the backbone's own preprocessing), scored on the first 1,000 test images with float32
    /// and with int8 features (calibrated on 128 training images).
    /// </summary>
    [Fact]
    public void MlNetResNet18_LinearProbeOnInt8Features_LosesAtMostOnePoint()
    {
        using var backbone = PretrainedBackbones.MlNetResNet18();
        var transform = ResNetSharp.Training.Transforms.Pretrained(backbone.Metadata, 64);
        using var scope = torch.NewDisposeScope();
        (Tensor X, Tensor Y) Load(ResNetSharp.Training.ImageDataset set)
        {
            var rgb = set.RepeatChannels(3);
            var pixels = new float[rgb.Count * rgb.SampleSize];
            for (int i = 0; i < rgb.Count; i++)
            {
                rgb.ReadImage(i, pixels.AsSpan(i * rgb.SampleSize, rgb.SampleSize));
            }

            var x = torch.tensor(pixels, new long[] { rgb.Count, 3, rgb.Height, rgb.Width });
            var y = torch.tensor(Enumerable.Range(0, rgb.Count).Select(i => (long)rgb.GetLabel(i)).ToArray());
            return (transform.Apply(x, new Random(0)), y);
        }

        var (xTrain, yTrain) = Load(ResNetSharp.Training.FashionMnist.Train().Take(1000));
        var (xTest, yTest) = Load(ResNetSharp.Training.FashionMnist.Test().Take(1000));
        static Tensor Features(OnnxRuntimeResNet engine, Tensor x) =>
            torch.cat(Enumerable.Range(0, (int)((x.shape[0] + 249) / 250)).Select(b => engine.Forward(x.narrow(0, b * 250, Math.Min(250, x.shape[0] - (b * 250))))).ToArray(), 0);

        using var fp32 = backbone.ForInference(new InferenceOptions { IntraOpThreads = 2 });
        using var int8 = backbone.ForInference(new InferenceOptions
        {
            IntraOpThreads = 2, Calibration = Calibration.FromTensor(xTrain.narrow(0, 0, 128), source: "Fashion-MNIST train (first 128)"),
        });
        var fTrain = Features(fp32, xTrain);
        var fTest32 = Features(fp32, xTest);
        var fTest8 = Features(int8, xTest);
        fTrain.shape.Should().Equal(1000, 512);

        // The probe: standardised features, full-batch Adam on cross-entropy with a little L2, seeded.
        var mean = fTrain.mean(new long[] { 0 }, keepdim: true);
        var std = fTrain.std(0, keepdim: true) + 1e-6;
        torch.manual_seed(0);
        using var probe = nn.Linear(512, 10);
        using var optimizer = optim.Adam(probe.parameters(), 0.01, weight_decay: 1e-4);
        var trainIn = (fTrain - mean) / std;
        for (int step = 0; step < 300; step++)
        {
            optimizer.zero_grad();
            using var loss = nn.functional.cross_entropy(probe.call(trainIn), yTrain);
            loss.backward();
            optimizer.step();
        }

        double Accuracy(Tensor features)
        {
            using var noGrad = torch.no_grad();
            return probe.call((features - mean) / std).argmax(1).eq(yTest).to(ScalarType.Float64).mean().item<double>();
        }

        double acc32 = Accuracy(fTest32), acc8 = Accuracy(fTest8);
        double cosine = nn.functional.cosine_similarity(fTest8, fTest32, 1).mean().item<float>();
        output.WriteLine($"linear probe on ML.NET ResNet-18 features, Fashion-MNIST 64²: float32 {100 * acc32:F2} %, int8 {100 * acc8:F2} % " +
                         $"(1,000 test images; mean feature cosine {cosine:F4})");
        acc32.Should().BeGreaterThan(0.75, "ImageNet features separate Fashion-MNIST's classes well above chance (10 %)");
        (acc32 - acc8).Should().BeLessThanOrEqualTo(0.01);
    }

    [Fact]
    public void Quantize_WritesStandardQdq_WithInt8PerChannelWeightsAndTheRecipe()
    {
        using var model = new ResNet(OnnxRuntimeResNetTests.Cifar20);
        InferenceResNetTests.RandomizeNorms(model, 5);
        using var calibrationImages = torch.randn(8, 3, 16, 16);
        var calibration = Calibration.FromTensor(calibrationImages, Calibration.MinMax, source: "random");
        string path = Path.Combine(Path.GetTempPath(), $"int8-{Guid.NewGuid():N}.onnx");
        try
        {
            var result = model.ExportOnnxInt8(path, calibration);
            result.Operators.Should().Contain(new[] { "QuantizeLinear", "DequantizeLinear", "Conv", "Add" });
            var proto = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
            var weights = proto.Graph.Initializer.Where(i => i.Name.EndsWith(".weight.int8", StringComparison.Ordinal)).ToList();
            weights.Should().HaveCount(19, "every convolution of ResNet-20 has int8 weights");
            weights.Should().OnlyContain(w => w.DataType == (int)TensorProto.Types.DataType.Int8);
            // 7-bit weights: every output channel's largest weight maps to exactly ±63, none beyond (no int16
            // saturation in ONNX Runtime's vpmaddubsw kernels on CPUs without VNNI).
            foreach (var w in weights)
            {
                var q = MemoryMarshal.Cast<byte, sbyte>(w.RawData.Span).ToArray();
                int perChannel = q.Length / (int)w.Dims[0];
                q.Chunk(perChannel).Select(c => c.Max(v => Math.Abs((int)v))).Should().OnlyContain(m => m == 63, $"{w.Name}: each channel's largest weight is ±63");
            }

            proto.Graph.Initializer.Should().NotContain(i => i.Name == "conv1.weight", "the float weight is replaced");
            var convInputs = proto.Graph.Node.Where(nd => nd.OpType == "Conv").SelectMany(nd => nd.Input.Take(2));
            convInputs.Should().OnlyContain(name => name.EndsWith(".dq", StringComparison.Ordinal), "every conv reads dequantised activations and weights");
            var adds = proto.Graph.Node.Where(nd => nd.OpType == "Add").ToList();
            adds.Should().HaveCount(9).And.OnlyContain(a => a.Input.All(i => i.EndsWith(".dq", StringComparison.Ordinal)), "residual adds read QDQ inputs so ONNX Runtime fuses them");
            var meta = proto.MetadataProps.ToDictionary(p => p.Key, p => p.Value);
            meta.Should().ContainKey(ModelMetadata.SchemaKey).And.ContainKey("quantization");
            meta["quantization_calibration"].Should().Be("min-max over 8 images (3×16×16) from random");
            model.Metadata.ToDictionary().Should().OnlyContain(kv => meta[kv.Key] == kv.Value, "the float export's metadata is kept");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Int8_WrongChannels_ThrowsClearly()
    {
        using var model = new ResNet(OnnxRuntimeResNetTests.Cifar20);
        using var grey = torch.randn(2, 1, 16, 16);
        model.Invoking(m => m.ForInference(new InferenceOptions { Calibration = Calibration.FromTensor(grey) }))
            .Should().Throw<ArgumentException>().WithMessage("*1 channels; the model takes 3*");
        using var wrong = torch.randn(2, 3, 16);
        FluentActions.Invoking(() => Calibration.FromTensor(wrong)).Should().Throw<ArgumentException>().WithMessage("*N×C×H×W*");
    }
}
