using System;
using System.IO;
using System.Linq;
using FluentAssertions;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace ResNetSharp.Tests.Family;

/// <summary>
/// timm's ResNet-D and SE-ResNet variants. Independent figures: timm's published parameter counts, and an independent
/// PyTorch definition written from timm's source (tools/timm_variants.py, run by tools/make_fixtures.py) whose seeded
/// state dict must load by name and whose eval-mode stage outputs and logits must be reproduced.
/// </summary>
public class TimmVariantsTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-4;

    [Theory]
    [InlineData("resnet50d", 25_576_264)] // timm's model card
    [InlineData("seresnet50", 28_088_024)] // timm's model card
    [InlineData("resnext50d_32x4d", 25_048_136)] // tools/timm_variants.py
    [InlineData("seresnext50_32x4d", 27_559_896)] // tools/timm_variants.py; timm: 27.56 M
    public void ParameterCount_IsTimms(string name, long expected)
    {
        using var model = ResNetFactory.Create(name);
        model.parameters().Sum(p => p.numel()).Should().Be(expected);
    }

    [Fact]
    public void ResNet50d_HasTimmsModuleNames()
    {
        using var model = ResNetFactory.Create("resnet50d");
        var shapes = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        shapes["conv1.0.weight"].Should().Equal(32, 3, 3, 3);
        shapes["conv1.1.running_var"].Should().Equal(32);
        shapes["conv1.3.weight"].Should().Equal(32, 32, 3, 3);
        shapes["conv1.4.weight"].Should().Equal(32);
        shapes["conv1.6.weight"].Should().Equal(64, 32, 3, 3);
        shapes["bn1.weight"].Should().Equal(64);
        shapes["layer1.0.downsample.1.weight"].Should().Equal(256, 64, 1, 1); // stride 1: no pool, still index 1
        shapes["layer2.0.downsample.1.weight"].Should().Equal(512, 256, 1, 1);
        shapes["layer2.0.downsample.2.running_mean"].Should().Equal(512);
        shapes.Keys.Should().NotContain(k => k.Contains("downsample.0", StringComparison.Ordinal), "the pool has no state");
        model.Stem.stride.Should().Equal(2, 2);
        model.FeatureInfo[0].Channels.Should().Be(64);
        model.OutputStride.Should().Be(32);
    }

    [Fact]
    public void ResNet50d_FreezesAndExtractsFeaturesThroughTheDeepStem()
    {
        using var model = ResNetFactory.Create("resnet50d", new ResNetOptions { FrozenStages = 1, NumClasses = 3 });
        var stemParameters = model.named_parameters().Where(p => p.name.StartsWith("conv1.", StringComparison.Ordinal)).ToList();
        stemParameters.Select(p => p.name).Should().Equal("conv1.0.weight", "conv1.3.weight", "conv1.6.weight"); // its BNs are frozen (buffers)
        stemParameters.Should().OnlyContain(p => !p.parameter.requires_grad);
        model.named_buffers().Select(b => b.name).Should().Contain(new[] { "conv1.1.running_mean", "conv1.4.weight", "bn1.running_var" });
        model.named_parameters().Where(p => p.name.StartsWith("layer1.", StringComparison.Ordinal)).Should().OnlyContain(p => p.parameter.requires_grad);

        model.eval();
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(8);
        var x = torch.randn(1, 3, 64, 64);
        var maps = model.ForwardFeatureMaps(x, 0, 4);
        maps[0].shape.Should().Equal(1, 64, 32, 32);
        maps[1].shape.Should().Equal(1, 2048, 2, 2);
        WeightsTestSupport.RelativeError(maps[1], model.ForwardFeatures(x)).Should().BeLessThan(1e-6);
    }

    [Fact]
    public void ResNet50d_AdaptInputChannels_SaysTheDeepStemIsNotSupported()
    {
        using var model = ResNetFactory.Create("resnet50d");
        var act = () => model.AdaptInputChannels(1);
        act.Should().Throw<NotSupportedException>().WithMessage("*deep stem*");
        model.Options.InChannels.Should().Be(3);
    }

    [Fact]
    public void ResNet50d_WithDilation_IsRejectedRatherThanDivergingFromTimm()
    {
        var act = () => ResNetFactory.Create("resnet50d", new ResNetOptions { ReplaceStrideWithDilation = new[] { false, false, true } });
        act.Should().Throw<ArgumentException>().WithMessage("*ReplaceStrideWithDilation*AvgDown*");
        using var undilated = ResNetFactory.Create("resnet50d", new ResNetOptions { ReplaceStrideWithDilation = new[] { false, false, false } });
        undilated.OutputStride.Should().Be(32);
    }

    [Fact]
    public void SeResNet50_HasTimmsSqueezeWidths()
    {
        using var model = ResNetFactory.Create("seresnet50");
        var shapes = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        // r = make_divisible(C / 16, 8): 256 → 16, 512 → 32, 1024 → 64, 2048 → 128.
        shapes["layer1.0.se.fc1.weight"].Should().Equal(16, 256, 1, 1);
        shapes["layer1.0.se.fc1.bias"].Should().Equal(16);
        shapes["layer2.3.se.fc2.weight"].Should().Equal(512, 32, 1, 1);
        shapes["layer3.5.se.fc1.weight"].Should().Equal(64, 1024, 1, 1);
        shapes["layer4.2.se.fc2.bias"].Should().Equal(2048);
    }

    [Theory]
    [InlineData(256, 16)]
    [InlineData(64, 8)] // 4 rounds up to the divisor
    [InlineData(100, 8)] // 6.25 → 8
    [InlineData(200, 16)] // 12.5 → 16
    [InlineData(168, 8)] // 10.5 → int(14.5) // 8 * 8 = 8
    [InlineData(8, 8)] // never below the divisor
    public void MakeDivisible_RoundsAsTimm(int channels, long expected) =>
        SqueezeExcite.MakeDivisible(channels / 16.0, 8).Should().Be(expected);

    [Theory]
    [InlineData("resnet50d")]
    [InlineData("seresnet50")]
    public void LoadReferenceWeights_MatchesPyTorchStagesAndLogits(string name)
    {
        var io = SafeTensorsFormat.Read(Fixtures.File_($"weights_{name}_io.safetensors"));
        using var model = ResNetFactory.Create(name);
        model.eval();
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var x = io["input"].ToTensor();
        var reference = io["logits"].ToTensor();
        x.shape.Should().Equal(2, 3, 72, 72);

        // Control: the freshly initialised model is far from the reference, so the comparison below can fail.
        WeightsTestSupport.RelativeError(model.call(x), reference).Should().BeGreaterThan(0.05);

        var check = model.LoadWeights(Fixtures.File_($"weights_{name}.safetensors"));
        check.Missing.Should().BeEmpty();
        check.Unexpected.Should().BeEmpty();

        WeightsTestSupport.AssertStagesMatch(model, io, x, Tolerance, "the PyTorch reference", output.WriteLine);

        double fullErr = WeightsTestSupport.RelativeError(model.call(x), reference);
        output.WriteLine($"{name} logits: {fullErr:E2}");
        fullErr.Should().BeLessThanOrEqualTo(Tolerance);
    }

    /// <summary>
    /// ONNX Runtime (an independent implementation of AveragePool's ceil mode and of SE's GAP, Conv, Sigmoid, Mul) runs the
    /// export on a 72×88 input, whose 9×11 layer2 maps leave partial 2×2 windows in the avg-down pools, folded and with BN kept.
    /// </summary>
    [Theory]
    [InlineData("resnet50d", "AveragePool")]
    [InlineData("seresnet50", "Sigmoid")]
    public void ExportOnnx_OddSizedMaps_OnnxRuntimeMatchesEvalModel(string name, string op)
    {
        using var scope = torch.NewDisposeScope();
        using var model = ResNetFactory.Create(name, new ResNetOptions { NumClasses = 7 });
        InferenceResNetTests.RandomizeNorms(model, 31);
        model.eval();
        torch.manual_seed(4);
        var x = torch.randn(2, 3, 72, 88);
        using var noGrad = torch.no_grad();
        var expected = model.call(x);
        foreach (bool keep in new[] { false, true })
        {
            var proto = OnnxExport.ToModelProto(model, new OnnxExportOptions { KeepBatchNorm = keep });
            proto.Graph.Node.Select(n => n.OpType).Should().Contain(op);
            using var session = new InferenceSession(proto.ToByteArray(), new SessionOptions { IntraOpNumThreads = 2 });
            var input = new DenseTensor<float>(x.contiguous().data<float>().ToArray(), x.shape.Select(d => (int)d).ToArray());
            using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor("input", input) });
            var logits = results.Single(r => r.Name == "logits").AsTensor<float>();
            var actual = torch.tensor(logits.ToArray(), logits.Dimensions.ToArray().Select(d => (long)d).ToArray());
            actual.shape.Should().Equal(expected.shape);
            double err = WeightsTestSupport.RelativeError(actual, expected);
            output.WriteLine($"{name} (BN kept: {keep}): ONNX Runtime vs TorchSharp {err:E2}");
            err.Should().BeLessThanOrEqualTo(Tolerance);
        }
    }

    [Fact]
    public void Summarize_CountsTheDeepStemAndLeavesOutTheSeGates()
    {
        // Depth as the paper counts it: the deep stem is three 3×3 convs; SE's 1×1 gates, like projections, are not layers.
        // Stem parameters: 3·32·9 + 32·32·9 + 32·64·9 weights and BN 32, 32, 64, 64 = 28,768 (9,536 for the 7×7 stem).
        using var d = ResNetFactory.Create("resnet50d");
        var summary = d.Summarize(224);
        summary.LayerFormula.Should().Be("3 + 48 + 1 = 52");
        summary.Parts.Single(p => p.Name == "stem").Parameters.Should().Be(28_768);
        using var se = ResNetFactory.Create("seresnet50");
        se.Summarize(224).LayerFormula.Should().Be("1 + 48 + 1 = 50");
    }

    [Theory]
    [InlineData("resnet50d")]
    [InlineData("seresnext50_32x4d")]
    public void ForInference_RunsTheVariantsOnOnnxRuntime_LikeTheEvalModel(string name)
    {
        using var model = ResNetFactory.Create(name, new ResNetOptions { NumClasses = 7 });
        model.eval();
        torch.manual_seed(5);
        using var x = torch.randn(2, 3, 72, 88);
        using var noGrad = torch.no_grad();
        using var expected = model.call(x);
        using var fast = model.ForInference(new InferenceOptions { IntraOpThreads = 1 });
        using var got = fast.Forward(x);
        got.shape.Should().Equal(2, 7);
        ((got - expected).abs().max() / expected.abs().max()).item<float>().Should().BeLessThan(1e-4f);
    }

    [Fact]
    public void StageTable_RejectsVariantCombinationsItCannotBuild()
    {
        var r50 = ResNetFactory.GetTable("resnet50");
        ((Action)(() => (r50 with { PreActivation = true, Stem = StemKind.Deep }).Validate())).Should().Throw<ArgumentException>().WithMessage("*post-activation*");
        ((Action)(() => (ResNetFactory.Cifar(3) with { AvgDown = true }).Validate())).Should().Throw<ArgumentException>().WithMessage("*AvgDown*option A*");
        ((Action)(() => (r50 with { Shortcut = ShortcutOption.None, Attention = BlockAttention.SqueezeExcite }).Validate()))
            .Should().Throw<ArgumentException>().WithMessage("*Attention*plain*");
    }
}
