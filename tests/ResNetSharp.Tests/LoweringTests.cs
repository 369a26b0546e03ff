using System.Linq;
using FluentAssertions;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace ResNetSharp.Tests;

/// <summary>The one lowering every fast path reads: op counts by hand from the paper's tables, and the BN fold by hand.</summary>
public class LoweringTests
{
    [Fact]
    public void Lower_ResNet50_OneFoldedConvPerConvAndOneAddPerBlock()
    {
        using var model = ResNetFactory.Create("resnet50");
        using var graph = Lowering.Lower(model);
        var ops = graph.Ops;
        // 1 stem conv + 16 bottlenecks × 3 + 4 projections; BN folded, so no norm ops at all.
        ops.OfType<ConvOp>().Should().HaveCount(1 + (16 * 3) + 4);
        ops.OfType<AddOp>().Should().HaveCount(16).And.OnlyContain(a => a.Relu);
        ops.OfType<MaxPoolOp>().Single().Kernel.Should().Equal(3, 3);
        ops.Should().NotContain(o => o is BatchNormOp || o is AffineOp || o is ZeroPadShortcutOp);
        ops.OfType<GlobalAveragePoolOp>().Should().ContainSingle();
        ops.OfType<LinearOp>().Single().OutChannels.Should().Be(1000);
        graph.Blocks.Select(b => b.Name).Should().StartWith(new[] { "layer1.0", "layer1.1" }).And.HaveCount(16);
        graph.FeatureMaps.Should().HaveCount(5, "C1 (the stem) and C2 … C5");
        // ReLU fused into every branch conv but the last; projections have none.
        ops.OfType<ConvOp>().Where(c => c.Name.EndsWith("conv3") || c.Name.Contains("downsample")).Should().OnlyContain(c => !c.Relu);
        ops.OfType<ConvOp>().Where(c => c.Name.EndsWith("conv1") || c.Name.EndsWith("conv2")).Should().OnlyContain(c => c.Relu);

        var shapes = graph.Shapes(224, 224);
        shapes[graph.Features].Should().Be((2048L, 7L, 7L));
        shapes[graph.FeatureMaps[0]].Should().Be((64L, 112L, 112L));
        shapes[graph.Logits].Should().Be((1000L, 1L, 1L));
    }

    [Fact]
    public void Lower_Cifar20_OptionAIsSubsampleAndZeroChannels()
    {
        using var model = ResNetFactory.Create("resnet20");
        using var graph = Lowering.Lower(model);
        var pads = graph.Ops.OfType<ZeroPadShortcutOp>().ToList();
        pads.Select(p => (p.Stride, p.PadChannels)).Should().Equal((2L, 16L), (2L, 32L));
        graph.Ops.OfType<ConvOp>().Should().HaveCount(1 + (9 * 2), "option A has no projection");
        graph.Ops.OfType<MaxPoolOp>().Should().BeEmpty("the CIFAR stem has no pool");
        var shapes = graph.Shapes(32, 32);
        pads.Select(p => shapes[p.Output]).Should().Equal((32L, 16L, 16L), (64L, 8L, 8L));
    }

    [Fact]
    public void Lower_PlainNetwork_HasNoAddsAndEndsEachBlockWithReLU()
    {
        using var model = ResNetFactory.Create("plain20");
        using var graph = Lowering.Lower(model);
        graph.Ops.OfType<AddOp>().Should().BeEmpty();
        graph.Ops.OfType<ConvOp>().Should().HaveCount(19).And.OnlyContain(c => c.Relu);
    }

    [Fact]
    public void Lower_PreActivation_AffineOnlyWhereNoConvPrecedesTheNorm()
    {
        using var model = ResNetFactory.Create("preact_resnet18");
        using var graph = Lowering.Lower(model);
        // bn1 of each of the 8 blocks normalises the block input (which the identity also reads raw), plus the final norm.
        graph.Ops.OfType<AffineOp>().Select(a => a.Name).Should().HaveCount(9).And.Contain(new[] { "layer1.0.bn1", "norm" });
        graph.Ops.OfType<AffineOp>().Should().OnlyContain(a => a.Relu);
        // bn2 folds into conv1 (conv1 → bn2 → ReLU), so conv1 carries the ReLU; conv2 ends the branch bare.
        var convs = graph.Ops.OfType<ConvOp>().ToList();
        convs.Should().HaveCount(1 + 16 + 3);
        convs.Where(c => c.Name.EndsWith("conv1")).Skip(1).Should().OnlyContain(c => c.Relu);
        convs.Where(c => c.Name.EndsWith("conv2") || c.Name.Contains("downsample") || c.Name == "conv1").Should().OnlyContain(c => !c.Relu);
        graph.Ops.OfType<AddOp>().Should().HaveCount(8).And.OnlyContain(a => !a.Relu);
        // The projection reads the normalised input, the identity the raw one.
        var projection = convs.Single(c => c.Name == "layer2.0.downsample.0");
        graph.Ops[projection.Inputs[0] - 1].Should().BeOfType<AffineOp>().Which.Name.Should().Be("layer2.0.bn1");
        graph.Ops.OfType<AddOp>().Single(a => a.Name == "layer1.1.add").Inputs[1].Should().Be(graph.Blocks.Single(b => b.Name == "layer1.1").Input);
        graph.Features.Should().Be(graph.Ops.OfType<AffineOp>().Single(a => a.Name == "norm").Output, "C5 includes the final BN-ReLU");
    }

    [Fact]
    public void Lower_KeepBatchNorm_EmitsEveryNormOnceAndLeavesConvsBare()
    {
        using var model = ResNetFactory.Create("resnet18");
        using var graph = Lowering.Lower(model, foldBatchNorm: false);
        graph.Folded.Should().BeFalse();
        graph.Ops.OfType<BatchNormOp>().Should().HaveCount(model.modules().OfType<BatchNorm2d>().Count());
        graph.Ops.OfType<BatchNormOp>().Select(b => b.Name).Should().Contain(new[] { "bn1", "layer1.0.bn2", "layer2.0.downsample.1" });
        graph.Ops.OfType<ConvOp>().Should().OnlyContain(c => ReferenceEquals(c.Bias, null) && !c.Relu);
        graph.Ops.OfType<AffineOp>().Should().BeEmpty();
    }

    [Fact]
    public void Lower_FoldsTheStemNormByHand()
    {
        using var model = ResNetFactory.Create("resnet20");
        InferenceResNetTests.RandomizeNorms(model, 43);
        using var graph = Lowering.Lower(model);
        using var scope = torch.NewDisposeScope();
        var stem = (ConvOp)graph.Ops[0];
        var bn = (BatchNorm2d)model.StemNorm!;
        var scale = bn.weight! / (bn.running_var! + bn.eps).sqrt();
        var w = model.Stem.weight!.detach() * scale.reshape(-1, 1, 1, 1);
        var b = bn.bias! - (bn.running_mean! * scale);
        stem.Weight.allclose(w, rtol: 1e-5, atol: 1e-6).Should().BeTrue();
        stem.Bias!.allclose(b, rtol: 1e-5, atol: 1e-6).Should().BeTrue();
        stem.Relu.Should().BeTrue();
        // A copy: later changes to the model do not reach the graph.
        using (torch.no_grad())
        {
            model.Stem.weight!.mul_(2);
        }

        stem.Weight.allclose(w, rtol: 1e-5, atol: 1e-6).Should().BeTrue();
    }
}
