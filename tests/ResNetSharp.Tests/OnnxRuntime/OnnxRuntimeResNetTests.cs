using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.InteropServices;
using System.Threading.Tasks;
using FluentAssertions;
using ResNetSharp.OnnxRuntime;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;
using InferenceOptions = ResNetSharp.OnnxRuntime.InferenceOptions;

namespace ResNetSharp.Tests.OnnxRuntime;

/// <summary>
/// The ONNX Runtime inference path against the eval TorchSharp model (the independent figures): logits, pooled
/// features and stage maps to 1e-4 of their scale at odd batches and sizes; concurrency, bad input and memory.
/// </summary>
public class OnnxRuntimeResNetTests
{
    private readonly ITestOutputHelper output;

    public OnnxRuntimeResNetTests(ITestOutputHelper output) => this.output = output;

    internal static StageTable Cifar20 => new()
    {
        Block = BlockKind.Basic, Layers = new[] { 3, 3, 3 }, Widths = new[] { 16, 32, 64 }, Strides = new[] { 1, 2, 2 },
        Stem = StemKind.Cifar, StemWidth = 16, Shortcut = ShortcutOption.A,
    };

    internal static void AssertClose(Tensor actual, Tensor expected, string what, double relative = 1e-4)
    {
        actual.shape.Should().Equal(expected.shape, what);
        double scale = expected.abs().max().item<float>();
        double maxDiff = (actual - expected).abs().max().item<float>();
        maxDiff.Should().BeLessThanOrEqualTo(relative * scale, $"{what} must agree to {relative} of their scale {scale}");
    }

    /// <summary>Logits, pooled features and every stage map of the ORT copy equal the eval model's.</summary>
    private static void AssertMatchesEval(ResNet model, Tensor x)
    {
        model.eval();
        using var scope = torch.NewDisposeScope();
        using var fast = model.ForInference(new InferenceOptions { FeatureMaps = true, Device = TorchSharp.torch.CPU });
        fast.ExecutionProvider.Should().Be("CPUExecutionProvider");
        using (torch.no_grad())
        {
            AssertClose(fast.Forward(x), model.call(x), "logits");
            AssertClose(fast.ForwardFeatures(x), model.ForwardFeatures(x).mean(new long[] { 2, 3 }), "pooled features");
            var expected = model.ForwardFeatureMaps(x).Skip(1).ToList();
            var actual = fast.ForwardFeatureMaps(x);
            actual.Should().HaveCount(expected.Count);
            for (int i = 0; i < expected.Count; i++)
            {
                AssertClose(actual[i], expected[i], model.FeatureInfo[i + 1].Level);
            }
        }
    }

    [Theory]
    [InlineData("resnet18", 2, 67, 45)]
    [InlineData("resnet50", 3, 64, 64)]
    [InlineData("resnext50_32x4d", 1, 40, 33)]
    [InlineData("preact_resnet18", 2, 48, 48)]
    public void ForInference_NamedModel_MatchesEvalModel(string name, int batch, int height, int width)
    {
        using var model = ResNetFactory.Create(name, new ResNetOptions { NumClasses = 7 });
        InferenceResNetTests.RandomizeNorms(model, 7);
        using var x = torch.randn(batch, 3, height, width);
        AssertMatchesEval(model, x);
    }

    [Fact]
    public void ForInference_CifarOptionAShortcut_MatchesEvalModelAtAnyBatchAndSize()
    {
        using var model = new ResNet(Cifar20);
        InferenceResNetTests.RandomizeNorms(model, 3);
        foreach (var (batch, size) in new[] { (1, 32), (5, 17), (16, 8) })
        {
            using var x = torch.randn(batch, 3, size, size);
            AssertMatchesEval(model, x);
        }
    }

    [Fact]
    public void ForInference_FrozenNormsAndDilation_MatchEvalModel()
    {
        using var model = ResNetFactory.Create("resnet18", new ResNetOptions
        {
            NumClasses = 4, FrozenBatchNorm = true, ReplaceStrideWithDilation = new[] { false, true, true },
        });
        torch.manual_seed(5);
        using (torch.no_grad())
        {
            foreach (var frozen in model.modules().OfType<FrozenBatchNorm2d>())
            {
                long c = frozen.Channels;
                frozen.RunningMean.copy_(torch.randn(c) * 0.2);
                frozen.RunningVar.copy_(torch.rand(c) + 0.5);
                frozen.Weight.copy_(torch.rand(c) + 0.5);
                frozen.Bias.copy_(torch.randn(c) * 0.2);
            }
        }

        using var x = torch.randn(2, 3, 48, 48);
        AssertMatchesEval(model, x);
    }

    [Fact]
    public void SpanInput_EqualsTensorInput_WithoutLibTorch()
    {
        using var model = new ResNet(Cifar20);
        InferenceResNetTests.RandomizeNorms(model, 19);
        using var fast = model.ForInference();
        using var x = torch.randn(3, 3, 20, 24);
        float[] pixels = x.data<float>().ToArray();

        float[] logits = fast.Forward(pixels, 3, 20, 24);
        float[] features = fast.ForwardFeatures(pixels, 3, 20, 24);

        using var expectedLogits = fast.Forward(x);
        using var expectedFeatures = fast.ForwardFeatures(x);
        logits.Should().Equal(expectedLogits.data<float>().ToArray());
        features.Should().Equal(expectedFeatures.data<float>().ToArray());
        features.Should().HaveCount(3 * 64);
    }

    [Fact]
    public void ForInference_LaterChangesToSource_DoNotReachCopy()
    {
        using var model = new ResNet(Cifar20);
        InferenceResNetTests.RandomizeNorms(model, 23);
        model.eval();
        using var x = torch.randn(2, 3, 16, 16);
        using var fast = model.ForInference();
        using var before = fast.Forward(x);
        using (torch.no_grad())
        {
            foreach (var p in model.parameters())
            {
                p.mul_(0.5);
            }
        }

        using var after = fast.Forward(x);
        after.data<float>().ToArray().Should().Equal(before.data<float>().ToArray());
    }

    [Fact]
    public void ConcurrentCalls_ReturnWhatSequentialCallsReturn()
    {
        using var model = new ResNet(Cifar20);
        InferenceResNetTests.RandomizeNorms(model, 29);
        using var fast = model.ForInference(new InferenceOptions { IntraOpThreads = 1 });
        var inputs = Enumerable.Range(0, 8).Select(i =>
        {
            using var t = torch.randn(1 + (i % 3), 3, 16 + i, 16);
            return (Data: t.data<float>().ToArray(), Batch: 1 + (i % 3), Height: 16 + i);
        }).ToArray();
        var sequential = inputs.Select(p => fast.Forward(p.Data, p.Batch, p.Height, 16)).ToArray();

        var concurrent = new float[inputs.Length * 20][];
        Parallel.For(0, concurrent.Length, new ParallelOptions { MaxDegreeOfParallelism = 8 }, k =>
        {
            var p = inputs[k % inputs.Length];
            concurrent[k] = fast.Forward(p.Data, p.Batch, p.Height, 16);
        });

        for (int k = 0; k < concurrent.Length; k++)
        {
            concurrent[k].Should().Equal(sequential[k % inputs.Length], $"call {k} ran concurrently with others");
        }
    }

    [Fact]
    public void BadInput_ThrowsClearErrors()
    {
        using var model = new ResNet(Cifar20);
        using var fast = model.ForInference();
        using var scope = torch.NewDisposeScope();
        fast.Invoking(f => f.Forward(torch.randn(2, 1, 16, 16))).Should().Throw<ArgumentException>().WithMessage("*expected an input N×3×H×W, got shape [2, 1, 16, 16]*");
        fast.Invoking(f => f.Forward(torch.randn(3, 16, 16))).Should().Throw<ArgumentException>().WithMessage("*N×3×H×W*");
        fast.Invoking(f => f.Forward(torch.randn(new long[] { 1, 3, 16, 16 }, ScalarType.Float64))).Should().Throw<ArgumentException>().WithMessage("*float32*Float64*");
        fast.Invoking(f => f.Forward(torch.randn(1, 3, 2, 16))).Should().Throw<ArgumentException>().WithMessage("*2×16 is too small*at least 4×4*");
        fast.Invoking(f => f.Forward(torch.randn(0, 3, 16, 16))).Should().Throw<ArgumentException>().WithMessage("*at least one*");
        fast.Invoking(f => f.Forward(new float[10], 1, 16, 16)).Should().Throw<ArgumentException>().WithMessage("*needs 768 floats, got 10*");
        fast.Invoking(f => f.ForwardFeatureMaps(torch.randn(1, 3, 16, 16))).Should().Throw<InvalidOperationException>().WithMessage("*FeatureMaps = true*");
        model.Invoking(m => m.ForInference(new InferenceOptions { IntraOpThreads = -1 })).Should().Throw<ArgumentOutOfRangeException>().WithMessage("*IntraOpThreads*");
        fast.Dispose();
        fast.Invoking(f => f.Forward(new float[768], 1, 16, 16)).Should().Throw<ObjectDisposedException>();
    }

    [Fact]
    public void CudaRequested_WithoutTheGpuPackage_SaysWhatIsMissing()
    {
        // The tests reference the CPU package of ONNX Runtime, so the CUDA provider cannot be appended here: Auto falls
        // back to the CPU and says so; Cuda refuses with the reason.
        using var model = new ResNet(Cifar20);
        using var auto = model.ForInference();
        auto.ExecutionProvider.Should().Be("CPUExecutionProvider");
        model.Invoking(m => m.ForInference(new InferenceOptions { Device = new TorchSharp.torch.Device("cuda") }))
            .Should().Throw<NotSupportedException>().WithMessage("*CUDA execution provider is not available*Gpu*");
        model.Invoking(m => m.ForInference(new InferenceOptions { Device = new TorchSharp.torch.Device(TorchSharp.DeviceType.MPS) }))
            .Should().Throw<NotSupportedException>().WithMessage("*mps*expected torch.CPU, new Device(\"cuda\")*");
    }
}
