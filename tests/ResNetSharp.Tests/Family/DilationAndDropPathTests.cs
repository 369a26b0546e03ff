using System;
using System.Linq;
using FluentAssertions;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace ResNetSharp.Tests.Family;

public class DilationAndDropPathTests
{
    public DilationAndDropPathTests() => NativeBackend.EnsureLoaded();

    [Theory]
    [InlineData("resnet50", false, 16, new[] { 2, 4, 8, 16, 16 }, new[] { 1, 1, 1, 1, 2 })]
    [InlineData("resnet50", true, 8, new[] { 2, 4, 8, 8, 8 }, new[] { 1, 1, 1, 2, 4 })]
    [InlineData("resnet18", true, 8, new[] { 2, 4, 8, 8, 8 }, new[] { 1, 1, 1, 2, 4 })]
    public void Dilation_ReplacesStrides_ForBothBlockKinds(string name, bool dilateStage4, int outputStride, int[] strides, int[] dilations)
    {
        var options = new ResNetOptions { ReplaceStrideWithDilation = new[] { false, dilateStage4, true } };
        using var model = ResNetFactory.Create(name, options);
        using var plain = ResNetFactory.Create(name);
        model.OutputStride.Should().Be(outputStride);
        model.FeatureInfo.Select(f => f.Stride).Should().Equal(strides);
        model.FeatureInfo.Select(f => f.Dilation).Should().Equal(dilations);
        ModelInspector.CountParameters(model).Should().Be(ModelInspector.CountParameters(plain), "dilation changes no weight");

        model.eval();
        using var noGrad = torch.no_grad();
        using var x = torch.randn(1, 3, 64, 64);
        using var features = model.ForwardFeatures(x);
        features.shape[2].Should().Be(64 / outputStride);

        // torchvision's convention: a dilated stage's first block keeps the previous dilation, the others use the new one.
        long[] Dil(ResidualBlock b) => b.ResidualConvs.Where(c => c.weight!.shape[2] == 3).Select(c => c.dilation[0]).ToArray();
        var last = model.Stages[3];
        Dil(last.Blocks[0]).Should().AllBeEquivalentTo(dilations[3]);
        Dil(last.Blocks[1]).Should().AllBeEquivalentTo(dilations[4]);
        last.Blocks[0].Stride.Should().Be(1);
        last.Blocks.SelectMany(b => b.ResidualConvs).Should().OnlyContain(c => c.padding![0] == c.dilation[0] * (c.weight!.shape[2] / 2), "padding keeps the size");
    }

    [Fact]
    public void Dilation_WrongListLength_IsRejected()
    {
        FluentActions.Invoking(() => ResNetFactory.Create("resnet20", new ResNetOptions { ReplaceStrideWithDilation = new[] { false, false, true } }))
            .Should().Throw<ArgumentException>().WithMessage("*one entry per stage after the first (2*");
    }

    [Fact]
    public void DropPath_FollowsALinearScheduleOverBlocks()
    {
        using var model = ResNetFactory.Create("resnet20", new ResNetOptions { DropPathRate = 0.2 });
        var rates = model.Stages.SelectMany(s => s.Blocks).Select(b => b.DropPathRate).ToArray();
        rates.Should().HaveCount(9);
        rates[0].Should().Be(0);
        rates[^1].Should().BeApproximately(0.2, 1e-12);
        for (int i = 0; i < rates.Length; i++)
        {
            rates[i].Should().BeApproximately(0.2 * i / 8, 1e-12);
        }
    }

    [Fact]
    public void DropPath_InEval_IsDeterministicAndInactive()
    {
        using var model = ResNetFactory.Create("resnet20", new ResNetOptions { DropPathRate = 0.5 });
        model.eval();
        using var x = torch.randn(4, 3, 16, 16);
        using var a = model.call(x);
        using var b = model.call(x);
        a.Same(b).Should().BeTrue();
        foreach (var block in model.Stages.SelectMany(s => s.Blocks))
        {
            block.DropPathRate = 0;
        }

        using var c = model.call(x);
        a.Same(c).Should().BeTrue("in eval, drop path is the identity");
    }

    [Fact]
    public void DropPath_InTraining_DropsWholeBranchesPerSample_AtTheSetRate()
    {
        const double rate = 0.3;
        const int samples = 4000;
        torch.manual_seed(7);
        using var block = new BasicBlock(4, 4);
        block.train();

        // Identical samples: every sample's branch F(x) is the same, so each output is either ReLU(x) (dropped) or
        // ReLU(x + F(x) / (1 − rate)) (kept), nothing in between.
        using var one = torch.randn(1, 4, 3, 3);
        using var x = one.expand(samples, 4, 3, 3).contiguous();
        block.DropPathRate = rate;
        using var y = block.call(x);
        using var fx = BranchOf(block, x); // F(x) in the same (training) mode: BN uses the batch statistics
        using var dropped = x.relu();
        using var kept = (x + (fx / (1 - rate))).relu();

        using var isDropped = (y - dropped).abs().amax(new long[] { 1, 2, 3 }).le(1e-6f);
        using var isKept = (y - kept).abs().amax(new long[] { 1, 2, 3 }).le(1e-4f);
        (isDropped | isKept).all().item<bool>().Should().BeTrue("a branch is dropped or kept whole, per sample");
        (isDropped & isKept).any().item<bool>().Should().BeFalse();

        // Binomial(4000, 0.3): σ = √(4000·0.3·0.7) ≈ 29; 4σ ≈ 116 samples, i.e. a fraction within ±0.029.
        double fraction = isDropped.sum().item<long>() / (double)samples;
        fraction.Should().BeApproximately(rate, 0.029);
    }

    private static Tensor BranchOf(BasicBlock block, Tensor x)
    {
        // BasicBlock post-activation: y = ReLU(F(x) + x). F itself: run conv1/bn1/relu/conv2/bn2 by name.
        var m = block.named_children().ToDictionary(t => t.Item1, t => (nn.Module<Tensor, Tensor>)t.Item2);
        using var scope = torch.NewDisposeScope();
        var f = m["bn2"].call(m["conv2"].call(m["bn1"].call(m["conv1"].call(x)).relu()));
        return f.MoveToOuterDisposeScope();
    }
}
