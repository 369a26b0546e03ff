using System.Linq;
using FluentAssertions;
using Xunit;

namespace ResNetSharp.Tests;

/// <summary>
/// The paper's own numbers (He et al. 2015, Table 1 and §3.3), compared with what the built modules measure. The expected values
/// are typed from the paper and from torchvision's measurements, never derived from the stage table.
/// </summary>
public class PaperFiguresTests
{
    [Theory]
    [InlineData("resnet18", 18, 1, 16, 1)]
    [InlineData("resnet34", 34, 1, 32, 1)]
    [InlineData("resnet50", 50, 1, 48, 1)]
    [InlineData("resnet101", 101, 1, 99, 1)]
    [InlineData("resnet152", 152, 1, 150, 1)]
    public void Create_PaperDepths_HaveTheirWeightedLayerCount(string name, int depth, int stem, int body, int head)
    {
        using var model = ResNetFactory.Create(name);
        var summary = model.Summarize(64);

        summary.WeightedLayers.Should().Be(depth);
        ModelInspector.CountWeightedLayers(model).Should().Be(depth);
        summary.LayerFormula.Should().Be($"{stem} + {body} + {head} = {depth}");
    }

    [Fact]
    public void Create_ResNet101_Is1Plus99Plus1AndDiffersFromResNet50OnlyInConv4()
    {
        using var r50 = ResNetFactory.ResNet50();
        using var r101 = ResNetFactory.ResNet101();
        var s50 = r50.Summarize(64);
        var s101 = r101.Summarize(64);

        s101.LayerFormula.Should().Be("1 + 99 + 1 = 101");
        var differing = s50.Stages.Zip(s101.Stages).Where(p => p.First.WeightedLayers != p.Second.WeightedLayers).ToList();
        differing.Should().ContainSingle();
        differing[0].First.PaperName.Should().Be("conv4_x");
        (differing[0].Second.WeightedLayers - differing[0].First.WeightedLayers).Should().Be(51);
        differing[0].First.Blocks.Should().Be(6);
        differing[0].Second.Blocks.Should().Be(23);
    }

    [Fact]
    public void Bottleneck_256Channels_Has69632ConvWeights_16Point94TimesFewerThanTwo3x3()
    {
        // A real 256-d block with a 64-d bottleneck, and a basic block of two 3×3×256 convs, built as modules.
        using var bottleneck = new Bottleneck(256, 64);
        using var plain = new BasicBlock(256, 256);

        long bottleneckWeights = ModelInspector.ConvWeightCount(bottleneck);
        long plainWeights = ModelInspector.ConvWeightCount(plain);

        bottleneckWeights.Should().Be(69_632);
        plainWeights.Should().Be(1_179_648);
        bottleneck.HasProjection.Should().BeFalse();
        ((double)plainWeights / bottleneckWeights).Should().BeApproximately(16.94, 0.005);
    }

    [Fact]
    public void ResNet50_Conv2Blocks2And3_AreExactlyThe69632WeightBlocks()
    {
        using var model = ResNetFactory.ResNet50();
        var conv2 = model.Stages[0].Blocks;
        ModelInspector.ConvWeightCount(conv2[1]).Should().Be(69_632);
        ModelInspector.ConvWeightCount(conv2[2]).Should().Be(69_632);
        // The first block reads the 64-d stem output, so its 1×1 reduce is smaller, and it has a projection.
        ModelInspector.ConvWeightCount(conv2[0]).Should().Be((64 * 64) + (9 * 64 * 64) + (64 * 256));
        conv2[0].HasProjection.Should().BeTrue();
    }

    // torchvision 0.14's parameter counts (measured with torchvision 0.14 itself), BN weight and bias included.
    [Theory]
    [InlineData("resnet18", 11_689_512)]
    [InlineData("resnet34", 21_797_672)]
    [InlineData("resnet50", 25_557_032)]
    [InlineData("resnet101", 44_549_160)]
    [InlineData("resnet152", 60_192_808)]
    [InlineData("resnext50_32x4d", 25_028_904)]
    [InlineData("resnext101_32x8d", 88_791_336)]
    [InlineData("resnext101_64x4d", 83_455_272)]
    [InlineData("wide_resnet50_2", 68_883_240)]
    [InlineData("wide_resnet101_2", 126_886_696)]
    public void Create_EveryName_HasTorchvisionsParameterCount(string name, long expected)
    {
        using var model = ResNetFactory.Create(name);
        ModelInspector.CountParameters(model).Should().Be(expected);
        ModelInspector.CountParameters(model, trainableOnly: true).Should().Be(expected);
    }

    // Multiply-adds on 224×224 measured with torchvision (v1.5); tolerance 0.1 %.
    [Theory]
    [InlineData("resnet18", 1.8141)]
    [InlineData("resnet34", 3.6638)]
    [InlineData("resnet50", 4.0892)]
    [InlineData("resnet101", 7.8014)]
    [InlineData("resnet152", 11.5136)]
    [InlineData("resnext50_32x4d", 4.2305)]
    [InlineData("resnext101_32x8d", 16.4140)]
    [InlineData("resnext101_64x4d", 15.4603)]
    [InlineData("wide_resnet50_2", 11.3980)]
    [InlineData("wide_resnet101_2", 22.7531)]
    public void Summarize_224_MultiplyAddsMatchTorchvisionWithin0Point1Percent(string name, double expectedG)
    {
        using var model = ResNetFactory.Create(name);
        double measured = model.Summarize(224).MultiplyAdds / 1e9;
        measured.Should().BeApproximately(expectedG, expectedG * 0.001);
    }

    // The paper's Table 1 (v1: stride on the first 1×1), within 2 %.
    [Theory]
    [InlineData("resnet18", 1.8)]
    [InlineData("resnet34", 3.6)]
    [InlineData("resnet50", 3.8)]
    [InlineData("resnet101", 7.6)]
    [InlineData("resnet152", 11.3)]
    public void Summarize_V1_MultiplyAddsMatchPaperTable1Within2Percent(string name, double paperG)
    {
        using var model = ResNetFactory.Create(name, stride: StridePlacement.V1);
        double measured = model.Summarize(224).MultiplyAdds / 1e9;
        measured.Should().BeApproximately(paperG, paperG * 0.02);
    }

    [Theory]
    [InlineData("resnet50", 3.8580)]
    [InlineData("resnet101", 7.5702)]
    [InlineData("resnet152", 11.2824)]
    public void Summarize_V1_MultiplyAddsMatchTorchvisionV1Within0Point1Percent(string name, double expectedG)
    {
        using var model = ResNetFactory.Create(name, stride: StridePlacement.V1);
        (model.Summarize(224).MultiplyAdds / 1e9).Should().BeApproximately(expectedG, expectedG * 0.001);
    }

    [Theory]
    [InlineData("resnet18", 512)]
    [InlineData("resnet50", 2048)]
    [InlineData("resnext101_64x4d", 2048)]
    public void Summarize_224_StageOutputsAre112_56_28_14_7(string name, int lastChannels)
    {
        using var model = ResNetFactory.Create(name);
        var summary = model.Summarize(224);
        summary.Parts[0].OutputShape.Should().Equal(64, 56, 56); // conv1 gives 112×112, the max pool 56×56
        summary.Stages.Select(s => s.OutputShape[1]).Should().Equal(56, 28, 14, 7);
        summary.Stages[^1].OutputShape[0].Should().Be(lastChannels);
        summary.Parts[^1].OutputShape.Should().Equal(1000);
    }

    [Fact]
    public void Stem_224_Conv1Gives112()
    {
        using var model = ResNetFactory.ResNet18();
        model.eval();
        using var noGrad = TorchSharp.torch.no_grad();
        using var x = TorchSharp.torch.zeros(1, 3, 224, 224);
        using var y = model.Stem.call(x);
        y.shape.Should().Equal(1, 64, 112, 112);
    }

    [Theory]
    [InlineData("resnet18", new[] { 0, 1, 1, 1 })]
    [InlineData("resnet34", new[] { 0, 1, 1, 1 })]
    [InlineData("resnet50", new[] { 1, 1, 1, 1 })]
    [InlineData("resnet152", new[] { 1, 1, 1, 1 })]
    public void Create_ProjectionShortcuts_ExistExactlyWhereShapeChanges(string name, int[] projectionsPerStage)
    {
        using var model = ResNetFactory.Create(name);
        model.Stages.Select(s => s.Blocks.Count(b => b.HasProjection)).Should().Equal(projectionsPerStage);
        foreach (var block in model.Stages.SelectMany(s => s.Blocks))
        {
            bool shapeChanges = block.Stride != 1 || block.InChannels != block.OutChannels;
            block.HasProjection.Should().Be(shapeChanges);
        }

        // Only the first block of a stage carries a projection, and stages 2–4 start with stride 2.
        model.Stages.Select(s => s.Blocks[0].Stride).Should().Equal(1, 2, 2, 2);
        model.Stages.SelectMany(s => s.Blocks.Skip(1)).Should().OnlyContain(b => !b.HasProjection && b.Stride == 1);
    }

    [Fact]
    public void OptionC_ProjectsEveryShortcut_OptionB_OnlyWhereShapeChanges()
    {
        var tableB = ResNetFactory.GetTable("resnet34");
        using var b = new ResNet(tableB);
        using var c = new ResNet(tableB with { Shortcut = ShortcutOption.C });
        b.Stages.Sum(s => s.Blocks.Count(x => x.HasProjection)).Should().Be(3);
        c.Stages.Sum(s => s.Blocks.Count(x => x.HasProjection)).Should().Be(16);
        // Projections are not counted as layers (the paper's rule).
        ModelInspector.CountWeightedLayers(c).Should().Be(34);
    }
}
