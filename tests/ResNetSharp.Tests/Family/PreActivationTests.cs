using System.Linq;
using FluentAssertions;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace ResNetSharp.Tests.Family;

public class PreActivationTests
{
    public PreActivationTests() => NativeBackend.EnsureLoaded();

    [Fact]
    public void PreActBasicBlock_ComputesBnReluConvTwice_PlusIdentity_WithoutFinalRelu()
    {
        using var block = new BasicBlock(6, 6, preActivation: true);
        RandomiseNorms(block);
        block.eval();
        using var x = torch.randn(2, 6, 7, 7);
        using var y = block.call(x);

        // The same computation written out with functional ops from the block's own weights (He et al. 2016, Fig. 1b).
        var m = block.named_modules().ToDictionary(t => t.Item1, t => t.Item2);
        Tensor Bn(string n, Tensor t)
        {
            var bn = (BatchNorm2d)m[n];
            return nn.functional.batch_norm(t, bn.running_mean!, bn.running_var!, bn.weight, bn.bias, false, 0.1, 1e-5);
        }

        Tensor Conv(string n, Tensor t) => nn.functional.conv2d(t, ((Conv2d)m[n]).weight!, padding: new long[] { 1, 1 });
        using var scope = torch.NewDisposeScope();
        var branch = Conv("conv2", Bn("bn2", Conv("conv1", Bn("bn1", x).relu())).relu());
        var expected = branch + x;
        y.allclose(expected, rtol: 1e-5, atol: 1e-5).Should().BeTrue();
        y.min().item<float>().Should().BeLessThan(0, "no ReLU after the addition: the identity path is clean");
    }

    [Fact]
    public void PreActBlocks_WithZeroedBranch_AreExactIdentities()
    {
        // A clean identity path means x_{l+1} = x_l when F = 0, for both block kinds (post-activation gives ReLU(x)).
        using var basic = new BasicBlock(8, 8, preActivation: true);
        using var bottleneck = new Bottleneck(32, 8, preActivation: true);
        basic.ZeroInitResidual();
        bottleneck.ZeroInitResidual();
        using var x8 = torch.randn(2, 8, 5, 5);
        using var x32 = torch.randn(2, 32, 5, 5);
        using var y8 = basic.call(x8);
        using var y32 = bottleneck.call(x32);
        y8.Same(x8).Should().BeTrue();
        y32.Same(x32).Should().BeTrue();
    }

    [Fact]
    public void PreActResNet50_HasBareStem_FinalNorm_AndTorchvisionStyleNames()
    {
        using var model = ResNetFactory.PreActResNet50();
        var keys = model.state_dict().Keys.ToList();
        keys.Should().Contain(new[] { "conv1.weight", "layer1.0.bn1.weight", "layer1.0.downsample.0.weight", "norm.weight", "norm.running_var", "fc.weight" });
        keys.Should().NotContain("bn1.weight", "the pre-activation stem has no BN: the first block's bn1 normalises its output");
        keys.Should().NotContain("layer1.0.downsample.1.weight", "a pre-activation projection is the 1×1 conv alone");

        // bn1 of a pre-activation bottleneck normalises the block input (64 → 256 → 256 channels in conv2_x).
        model.state_dict()["layer1.0.bn1.weight"].shape.Should().Equal(64);
        model.state_dict()["layer1.1.bn1.weight"].shape.Should().Equal(256);
        model.state_dict()["layer1.0.bn3.weight"].shape.Should().Equal(64);
        model.state_dict()["norm.weight"].shape.Should().Equal(2048);

        var summary = model.Summarize(64);
        summary.WeightedLayers.Should().Be(50);
        summary.Parts[^1].Parameters.Should().Be((2048 * 1000) + 1000 + (2 * 2048), "the head holds fc and the final norm");
    }

    [Fact]
    public void PreActResNet_FinalNormAndRelu_RunBeforePooling()
    {
        using var model = ResNetFactory.Create("preact_resnet20");
        model.eval();
        using var x = torch.randn(2, 3, 16, 16);
        using var features = model.ForwardFeatures(x);
        features.min().item<float>().Should().BeGreaterThanOrEqualTo(0, "features end in BN + ReLU");
        using var logits = model.call(x);
        using var head = model.ForwardHead(features);
        // The same ops; pooling reads a channels-last map in one and its contiguous copy in the other (summation order).
        logits.allclose(head, 1e-5, 1e-6).Should().BeTrue();
    }

    private static void RandomiseNorms(nn.Module module)
    {
        using var noGrad = torch.no_grad();
        foreach (var bn in module.modules().OfType<BatchNorm2d>())
        {
            bn.weight!.uniform_(0.5, 1.5);
            bn.bias!.uniform_(-0.5, 0.5);
            bn.running_mean!.uniform_(-0.5, 0.5);
            bn.running_var!.uniform_(0.5, 2);
        }
    }
}
