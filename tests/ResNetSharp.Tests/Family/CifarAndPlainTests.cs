using System;
using System.Globalization;
using System.Linq;
using FluentAssertions;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ResNetSharp.Tests.Family;

public class CifarAndPlainTests
{
    public CifarAndPlainTests() => NativeBackend.EnsureLoaded();

    // The paper's Table 6 as printed: layers, n, parameters in millions with the printed number of decimals.
    [Theory]
    [InlineData("resnet20", 20, "0.27")]
    [InlineData("resnet32", 32, "0.46")]
    [InlineData("resnet44", 44, "0.66")]
    [InlineData("resnet56", 56, "0.85")]
    [InlineData("resnet110", 110, "1.7")]
    public void CifarResNet_ParametersAndDepth_MatchPaperTable6(string name, int depth, string printedMillions)
    {
        using var model = ResNetFactory.Create(name);
        var summary = model.Summarize(32);
        int decimals = printedMillions.Split('.')[1].Length;
        Math.Round(summary.Parameters / 1e6, decimals).ToString("F" + decimals, CultureInfo.InvariantCulture).Should().Be(printedMillions);
        summary.WeightedLayers.Should().Be(depth, "6n+2 weighted layers");
        model.NumClasses.Should().Be(10, "CIFAR-10 is the default head");
    }

    [Fact]
    public void CifarResNet20_HasThePapersMapsAndParameterFreeShortcuts()
    {
        using var model = ResNetFactory.ResNet20();
        var summary = model.Summarize(32);

        // Paper §4.2: 16, 32, 64 filters on 32×32, 16×16, 8×8 maps; a 3×3/16 stem with no pooling.
        summary.Stages.Select(s => string.Join("×", s.OutputShape)).Should().Equal("16×32×32", "32×16×16", "64×8×8");
        summary.Parts[0].OutputShape.Should().Equal(16, 32, 32);
        summary.Stages.Sum(s => s.Projections).Should().Be(0, "option A shortcuts are identities with zero padding");
        model.named_modules().Select(m => m.Item1).Should().NotContain(n => n.Contains("downsample") || n == "maxpool");

        // Two option-A blocks (conv3_1, conv4_1) add channels; their shortcut output is x subsampled plus zeros.
        var block = model.Stages[1].Blocks[0];
        block.InChannels.Should().Be(16);
        block.OutChannels.Should().Be(32);
        using var x = torch.randn(2, 16, 8, 8);
        using var pad = new ZeroPadShortcut(16, 32, 2);
        using var y = pad.call(x);
        y.shape.Should().Equal(2, 32, 4, 4);
        y[.., ..16].Same(x[.., .., TensorIndex.Slice(null, null, 2), TensorIndex.Slice(null, null, 2)]).Should().BeTrue();
        y[.., 16..].abs().max().item<float>().Should().Be(0);
    }

    [Fact]
    public void PlainNetworks_AreTheSameTablesWithoutShortcuts()
    {
        ResNetFactory.GetTable("plain18").Should().Be(ResNetFactory.GetTable("resnet18") with { Shortcut = ShortcutOption.None });
        ResNetFactory.GetTable("plain56").Should().BeEquivalentTo(ResNetFactory.GetTable("resnet56") with { Shortcut = ShortcutOption.None });
        using var plain20 = ResNetFactory.Create("plain20");
        using var res20 = ResNetFactory.Create("resnet20");

        // Option A costs no parameters, so plain-20 and ResNet-20 have exactly the same weights (paper Fig. 6).
        ModelInspector.CountParameters(plain20).Should().Be(ModelInspector.CountParameters(res20));
        ModelInspector.CountWeightedLayers(plain20).Should().Be(20);

        using var plain34 = ResNetFactory.Create("plain34");
        plain34.named_modules().Should().NotContain(m => m.Item1.Contains("downsample"));
        plain34.Summarize(64).WeightedLayers.Should().Be(34);
    }

    [Fact]
    public void PlainBlock_OutputIsReluOfTheBranch_ResidualBlockAddsTheInput()
    {
        using var plain = new BasicBlock(8, 8, shortcutOption: ShortcutOption.None);
        using var residual = new BasicBlock(8, 8, shortcutOption: ShortcutOption.A);
        plain.ZeroInitResidual();
        residual.ZeroInitResidual();
        plain.eval();
        residual.eval();
        using var x = torch.randn(2, 8, 5, 5);
        using var p = plain.call(x);
        using var r = residual.call(x);

        // With F ≡ 0 the residual block is ReLU(x); the plain block has nothing to fall back on: ReLU(0) = 0.
        p.abs().max().item<float>().Should().Be(0);
        using var relu = x.relu();
        r.allclose(relu).Should().BeTrue();
    }

    [Fact]
    public void DropPath_OnAPlainNetwork_IsRejected()
    {
        FluentActions.Invoking(() => ResNetFactory.Create("plain20", new ResNetOptions { DropPathRate = 0.1 }))
            .Should().Throw<ArgumentException>().WithMessage("*shortcut*");
    }
}
