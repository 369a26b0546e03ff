using System;
using System.Linq;
using FluentAssertions;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace ResNetSharp.Tests;

public class InferenceResNetTests
{
    /// <summary>Gives every BatchNorm non-trivial statistics and affine parameters, so folding has something to get wrong.</summary>
    internal static void RandomizeNorms(nn.Module model, long seed)
    {
        torch.manual_seed(seed);
        using var noGrad = torch.no_grad();
        foreach (var bn in model.modules().OfType<BatchNorm2d>())
        {
            long c = bn.running_mean!.shape[0];
            bn.running_mean.copy_(torch.randn(c) * 0.2);
            bn.running_var!.copy_(torch.rand(c) + 0.5);
            bn.weight!.copy_(torch.rand(c) + 0.5);
            bn.bias!.copy_(torch.randn(c) * 0.2);
        }
    }

    [Fact]
    public void ForInference_FrozenNormsAndDilation_MatchEvalModel()
    {
        // Detection-style backbone: frozen BatchNorm everywhere, conv4/conv5 dilated (output stride 8).
        using var scope = torch.NewDisposeScope();
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

        AssertForInferenceMatchesEval(model, torch.randn(2, 3, 48, 48), new HandMadeOptions { UseInferenceMode = false, Layout = ActivationLayout.ChannelsLast });
        AssertForInferenceMatchesEval(model, torch.randn(2, 3, 48, 48), new HandMadeOptions { UseInferenceMode = false, Layout = ActivationLayout.Blocked });
    }

    [Fact]
    public void ForInference_PreActivationModel_ThrowsArgumentException()
    {
        using var model = ResNetFactory.Create("preact_resnet18");
        model.Invoking(m => m.ForHandMadeInference()).Should().Throw<ArgumentException>().WithMessage("*pre-activation*cannot be folded*");
    }

    /// <summary>The optimised copy's output equals the source model's eval output to 1e-4 of its scale.</summary>
    private static void AssertForInferenceMatchesEval(ResNet model, Tensor x, HandMadeOptions options)
    {
        model.eval();
        Tensor expected;
        using (torch.no_grad())
        {
            expected = model.call(x);
        }

        using var fast = model.ForHandMadeInference(options);
        AssertClose(fast.call(x), expected);
    }

    private static void AssertClose(Tensor actual, Tensor expected, double relative = 1e-4)
    {
        actual.shape.Should().Equal(expected.shape);
        double scale = expected.abs().max().item<float>();
        double maxDiff = (actual - expected).abs().max().item<float>();
        maxDiff.Should().BeLessThanOrEqualTo(relative * scale, $"outputs must agree to {relative} of their scale {scale}");
    }

    private static StageTable Cifar20 => new()
    {
        Block = BlockKind.Basic, Layers = new[] { 3, 3, 3 }, Widths = new[] { 16, 32, 64 }, Strides = new[] { 1, 2, 2 },
        Stem = StemKind.Cifar, StemWidth = 16, Shortcut = ShortcutOption.A,
    };

    [Theory]
    [InlineData("resnet18", ActivationLayout.ChannelsLast)]
    [InlineData("resnet50", ActivationLayout.ChannelsLast)]
    [InlineData("resnext50_32x4d", ActivationLayout.ChannelsLast)]
    [InlineData("resnet50", ActivationLayout.ChannelsFirst)]
    [InlineData("resnet18", ActivationLayout.Auto)]
    [InlineData("resnet18", ActivationLayout.Blocked)]
    [InlineData("resnet50", ActivationLayout.Blocked)]
    [InlineData("resnext50_32x4d", ActivationLayout.Blocked)]
    [InlineData("wide_resnet50_2", ActivationLayout.Blocked)]
    public void ForInference_NamedModel_MatchesEvalModel(string name, ActivationLayout layout)
    {
        using var scope = torch.NewDisposeScope();
        using var model = ResNetFactory.Create(name);
        RandomizeNorms(model, 7);
        model.eval();
        torch.manual_seed(1);
        var x = torch.randn(2, 3, 64, 64);
        Tensor expectedLogits, expectedFeatures;
        using (torch.no_grad())
        {
            expectedFeatures = model.ForwardFeatures(x);
            expectedLogits = model.call(x);
        }

        using var fast = model.ForHandMadeInference(new HandMadeOptions { Layout = layout, ChannelsLastMinBatch = 2 });
        var logits = fast.call(x);
        var features = fast.ForwardFeatures(x);

        AssertClose(logits, expectedLogits);
        AssertClose(features, expectedFeatures);
        var used = fast.LayoutFor(2);
        used.Should().NotBe(ActivationLayout.Auto);
        if (layout != ActivationLayout.Auto)
        {
            used.Should().Be(layout);
        }

        ChannelsLast.IsChannelsLast(features).Should().Be(used == ActivationLayout.ChannelsLast, "conv outputs keep the input's layout");
        features.is_contiguous().Should().Be(used != ActivationLayout.ChannelsLast, "blocked features come back as dense NCHW");
        logits.requires_grad.Should().BeFalse();
    }

    [Theory]
    [InlineData(ShortcutOption.A, ActivationLayout.ChannelsLast)]
    [InlineData(ShortcutOption.C, ActivationLayout.ChannelsLast)]
    [InlineData(ShortcutOption.None, ActivationLayout.ChannelsLast)]
    [InlineData(ShortcutOption.A, ActivationLayout.Blocked)]
    [InlineData(ShortcutOption.C, ActivationLayout.Blocked)]
    [InlineData(ShortcutOption.None, ActivationLayout.Blocked)]
    public void ForInference_CifarTable_MatchesEvalModel(ShortcutOption shortcut, ActivationLayout layout)
    {
        using var scope = torch.NewDisposeScope();
        using var model = new ResNet(Cifar20 with { Shortcut = shortcut });
        RandomizeNorms(model, 3);
        AssertForInferenceMatchesEval(model, torch.randn(3, 3, 32, 32), new HandMadeOptions { Layout = layout });
    }

    [Fact]
    public void ForInference_BottleneckV1WithProjections_MatchesEvalModel()
    {
        using var scope = torch.NewDisposeScope();
        var table = new StageTable { Block = BlockKind.Bottleneck, Layers = new[] { 1, 2 }, Widths = new[] { 16, 32 }, Strides = new[] { 1, 2 }, StridePlacement = StridePlacement.V1, Shortcut = ShortcutOption.C, StemWidth = 16 };
        using var model = new ResNet(table, new ResNetOptions { NumClasses = 5 });
        RandomizeNorms(model, 11);
        AssertForInferenceMatchesEval(model, torch.randn(2, 3, 40, 48), new HandMadeOptions { UseInferenceMode = false, Layout = ActivationLayout.ChannelsLast });
        AssertForInferenceMatchesEval(model, torch.randn(2, 3, 40, 48), new HandMadeOptions { Layout = ActivationLayout.Blocked });
    }

    [Fact]
    public void ForInference_MirrorsStructureAndFoldsEveryNorm()
    {
        using var model = ResNetFactory.Create("resnet50");
        using var fast = model.ForHandMadeInference();
        fast.Stages.Select(s => s.Count).Should().Equal(3, 4, 6, 3);
        fast.Stages.SelectMany(s => s).Count(b => b.HasProjection).Should().Be(4, "ResNet-50 projects at the first block of each stage");
        fast.Stages[0][0].ResidualConvs.Should().HaveCount(3);
        // Folded: no BatchNorm modules remain; every conv carries a bias.
        fast.modules().OfType<BatchNorm2d>().Should().BeEmpty();
        fast.modules().OfType<FusedConv2d>().Should().HaveCount(1 + 16 * 3 + 4);
    }

    [Fact]
    public void ForInference_LaterChangesToSource_DoNotReachCopy()
    {
        using var scope = torch.NewDisposeScope();
        using var model = new ResNet(Cifar20);
        model.eval();
        using var fast = model.ForHandMadeInference();
        var x = torch.randn(1, 3, 32, 32);
        var before = fast.call(x);
        using (torch.no_grad())
        {
            model.Classifier.weight!.mul_(2);
        }

        AssertClose(fast.call(x), before, 1e-6);
    }

    [Fact]
    public void Forward_WrongInput_ThrowsClearError()
    {
        using var model = new ResNet(Cifar20);
        using var fast = model.ForHandMadeInference();
        using var wrongChannels = torch.randn(1, 1, 32, 32);
        using var tooSmall = torch.randn(1, 3, 2, 2);
        fast.Invoking(f => f.call(wrongChannels)).Should().Throw<ArgumentException>().WithMessage("*3×H×W*");
        fast.Invoking(f => f.call(tooSmall)).Should().Throw<ArgumentException>().WithMessage("*too small*");
    }

    [Theory]
    // ResNet-50 at 224²: stem 64×112² and stage-1 output 256×56² are both 802,816 floats = 3,211,264 bytes.
    [InlineData("resnet50", 224, 3_211_264L)]
    // At 225²: stem 64×113² = 817,216 floats, stage 1 (after a 3×3/2 pool to 57²) 256×57² = 831,744 floats.
    [InlineData("resnet50", 225, 3_326_976L)]
    // CIFAR ResNet-20 at 32²: stem and stage 1 are 16×32² = 16,384 floats.
    [InlineData("resnet20", 32, 65_536L)]
    public void LargestActivationBytes_MatchesHandCount(string name, int size, long expected)
    {
        using var model = ResNetFactory.Create(name);
        using var fast = model.ForHandMadeInference();
        fast.LargestActivationBytes(size, size).Should().Be(expected);
    }

    [Fact]
    public void LargestActivationBytes_CountsTheElementSize()
    {
        using var model = ResNetFactory.Create("resnet20", new ResNetOptions { DType = ScalarType.Float64 });
        using var fast = model.ForHandMadeInference();
        fast.LargestActivationBytes(32, 32).Should().Be(131_072L);
        fast.Invoking(f => f.LargestActivationBytes(2, 2)).Should().Throw<ArgumentOutOfRangeException>().WithMessage("*too small*");
    }

    [Fact]
    public void MicroBatchSize_KeepsTheLargestActivationWithinTheBudget()
    {
        using var model = ResNetFactory.Create("resnet50");
        using var fast = model.ForHandMadeInference(new HandMadeOptions { Layout = ActivationLayout.ChannelsLast });
        // 32 MiB / 3,211,264 bytes per image = 10 images per call at most; batches split into equal micro-batches.
        fast.MicroBatchSize(16, 224, 224).Should().Be(8);
        fast.MicroBatchSize(10, 224, 224).Should().Be(10);
        fast.MicroBatchSize(11, 224, 224).Should().Be(6);
        fast.MicroBatchSize(31, 224, 224).Should().Be(8);
        fast.MicroBatchSize(1, 224, 224).Should().Be(1);
        fast.Invoking(f => f.MicroBatchSize(0, 224, 224)).Should().Throw<ArgumentOutOfRangeException>();

        using var unsplit = model.ForHandMadeInference(new HandMadeOptions { MicroBatchBytes = 0 });
        unsplit.MicroBatchSize(64, 224, 224).Should().Be(64);
        using var tiny = model.ForHandMadeInference(new HandMadeOptions { MicroBatchBytes = 1 });
        tiny.MicroBatchSize(64, 224, 224).Should().Be(1, "one image is the least a call can hold");

        // The blocked layout's default budget, 8 MiB, holds 2 such images.
        using var blocked = model.ForHandMadeInference(new HandMadeOptions { Layout = ActivationLayout.Blocked });
        blocked.MicroBatchSize(16, 224, 224).Should().Be(2);
        blocked.MicroBatchSize(3, 224, 224).Should().Be(2, "3 images run as 2 + 1");
    }

    [Theory]
    [InlineData(ActivationLayout.Auto)]
    [InlineData(ActivationLayout.ChannelsLast)]
    [InlineData(ActivationLayout.ChannelsFirst)]
    public void MicroBatches_GiveTheSameOutputAsOneBatch(ActivationLayout layout)
    {
        using var scope = torch.NewDisposeScope();
        using var model = ResNetFactory.Create("resnet18");
        RandomizeNorms(model, 13);
        model.eval();
        torch.manual_seed(2);
        var x = torch.randn(5, 3, 64, 64);
        Tensor expected;
        using (torch.no_grad())
        {
            expected = model.call(x);
        }

        using var whole = model.ForHandMadeInference(new HandMadeOptions { Layout = layout, MicroBatchBytes = 0, ChannelsLastMinBatch = 2 });
        long perImage = whole.LargestActivationBytes(64, 64);
        using var split = model.ForHandMadeInference(new HandMadeOptions { Layout = layout, MicroBatchBytes = 2 * perImage, ChannelsLastMinBatch = 2 });
        split.MicroBatchSize(5, 64, 64).Should().Be(2, "5 images at 2 per call run as 2 + 2 + 1");
        whole.MicroBatchSize(5, 64, 64).Should().Be(5);

        var splitLogits = split.call(x);
        AssertClose(splitLogits, whole.call(x), 1e-5); // other batch sizes may pick other kernels: float32 rounding only
        AssertClose(splitLogits, expected);
        AssertClose(split.ForwardFeatures(x), whole.ForwardFeatures(x), 1e-5);
        x[4].unsqueeze(0).Invoking(one => split.call(one)).Should().NotThrow();
    }

    [Fact]
    public void BlockedLayout_OddSizesAndEmptyBatches_MatchEvalModel()
    {
        using var scope = torch.NewDisposeScope();
        using var model = ResNetFactory.Create("resnet18");
        RandomizeNorms(model, 17);
        AssertForInferenceMatchesEval(model, torch.randn(1, 3, 97, 75), new HandMadeOptions { Layout = ActivationLayout.Blocked });
        using var fast = model.ForHandMadeInference(new HandMadeOptions { Layout = ActivationLayout.Blocked });
        fast.call(torch.randn(0, 3, 64, 64)).shape.Should().Equal(0, 1000);
        fast.ForwardFeatures(torch.randn(0, 3, 64, 64)).shape.Should().Equal(0, 512, 2, 2);
    }

    [Fact]
    public void AutoLayout_IsBlockedWhereOneDnnRuns()
    {
        using var model = new ResNet(Cifar20);
        using var fast = model.ForHandMadeInference();
        // libtorch's CPU builds for x64 carry oneDNN; the probe says whether this one runs it.
        var expected = OneDnnProgram.WhyUnavailable is null ? ActivationLayout.Blocked : ActivationLayout.ChannelsFirst;
        fast.LayoutFor(1).Should().Be(expected);
        fast.LayoutFor(64).Should().Be(OneDnnProgram.WhyUnavailable is null ? ActivationLayout.Blocked : ActivationLayout.ChannelsLast);
    }

    [Fact]
    public void BlockedLayout_NeedsFloat32_AndAutoFallsBack()
    {
        using var model = new ResNet(Cifar20, new ResNetOptions { DType = ScalarType.Float64 });
        model.Invoking(m => m.ForHandMadeInference(new HandMadeOptions { Layout = ActivationLayout.Blocked }))
            .Should().Throw<NotSupportedException>().WithMessage("*Blocked*Float64*not float32*");
        using var fast = model.ForHandMadeInference();
        fast.LayoutFor(1).Should().Be(ActivationLayout.ChannelsFirst);
        fast.LayoutFor(4).Should().Be(ActivationLayout.ChannelsLast);
    }

    [Fact]
    public void AutoLayout_SwitchesAtTheConfiguredBatch()
    {
        // float64: no oneDNN layout, so Auto chooses between channels-first and channels-last.
        using var scope = torch.NewDisposeScope();
        using var model = new ResNet(Cifar20, new ResNetOptions { DType = ScalarType.Float64 });
        using var fast = model.ForHandMadeInference(new HandMadeOptions { ChannelsLastMinBatch = 3 });
        ChannelsLast.IsChannelsLast(fast.ForwardFeatures(torch.randn(2, 3, 16, 16, dtype: ScalarType.Float64))).Should().BeFalse();
        ChannelsLast.IsChannelsLast(fast.ForwardFeatures(torch.randn(3, 3, 16, 16, dtype: ScalarType.Float64))).Should().BeTrue();
    }

    [Fact]
    public void ToChannelsLast_HasNhwcStridesAndSameValues()
    {
        using var scope = torch.NewDisposeScope();
        var x = torch.randn(2, 3, 4, 5);
        var y = ChannelsLast.ToChannelsLast(x);
        y.stride().Should().Equal(60, 1, 15, 3);
        ChannelsLast.IsChannelsLast(x).Should().BeFalse();
        x.allclose(y, 0, 0).Should().BeTrue();
    }
}
