using System;
using System.Collections.Generic;
using System.Linq;
using FluentAssertions;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace ResNetSharp.Tests;

/// <summary>
/// The channels-last training path (<see cref="ResNet.TrainingLayout"/>) against the plain NCHW path on the same weights
/// and batch: the same loss and the same gradient for every parameter, within float rounding, for every block kind and
/// shortcut option, including the 1×1 convolutions that must not run channels-last on libtorch 2.10.
/// </summary>
public class TrainingLayoutTests
{
    public static IEnumerable<object[]> Models()
    {
        // name, table, input channels, input size, batch.
        var cifar = ResNetFactory.GetTable("resnet20");
        yield return new object[] { "resnet20 (basic, option A, 1 channel)", cifar, 1, 32, 4 };
        yield return new object[] { "plain20 (option None)", ResNetFactory.GetTable("plain20"), 1, 28, 3 };
        yield return new object[] { "preact_resnet20 (option A)", ResNetFactory.GetTable("preact_resnet20"), 3, 32, 2 };
        yield return new object[] { "resnet18 (option B, 1×1 256→512)", ResNetFactory.GetTable("resnet18"), 3, 64, 2 };
        yield return new object[] { "preact_resnet18", ResNetFactory.GetTable("preact_resnet18"), 3, 64, 2 };
        var bottleneck = new StageTable { Block = BlockKind.Bottleneck, Layers = new[] { 1, 1, 1, 1 } };
        yield return new object[] { "bottleneck v1.5, option B", bottleneck, 3, 64, 2 };
        yield return new object[] { "bottleneck v1 (strided 1×1), option C", bottleneck with { StridePlacement = StridePlacement.V1, Shortcut = ShortcutOption.C }, 3, 64, 2 };
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void ChannelsLast_SameLossAndGradientsAsChannelsFirst(string what, StageTable table, int channels, int size, int batch)
    {
        torch.manual_seed(11);
        using var model = ResNetFactory.Create(table, new ResNetOptions { InChannels = channels, NumClasses = 10 });
        model.train();
        using var x = torch.randn(batch, channels, size, size);
        using var labels = torch.randint(10, new long[] { batch });

        // float32, the kernels training uses. The two layouts sum in different orders, and the gradients that reach
        // the stem pass back through every BatchNorm, whose backward subtracts nearly equal terms: there even the NCHW
        // float32 gradient is off float64 by up to ~1 % on some batches (ResNet-20, batch 4: 0.7 %, measured). A layout
        // mistake (values in the wrong place, as libtorch 2.10's channels-last 1×1 kernels make) is off by O(1).
        var (lastLoss, lastGrads) = Step(model, TrainingLayout.ChannelsLast, x, labels);

        // float64: the same code path with rounding out of the way must agree with NCHW to float64 precision.
        model.to(ScalarType.Float64);
        using var x64 = x.to(ScalarType.Float64);
        var (exactLoss, exactGrads) = Step(model, TrainingLayout.ChannelsFirst, x64, labels);
        var (lastLoss64, lastGrads64) = Step(model, TrainingLayout.ChannelsLast, x64, labels);

        lastLoss64.Should().BeApproximately(exactLoss, 1e-12 * Math.Max(1, Math.Abs(exactLoss)), what);
        lastLoss.Should().BeApproximately(exactLoss, 1e-5 * Math.Max(1, Math.Abs(exactLoss)), what);
        lastGrads.Keys.Should().BeEquivalentTo(exactGrads.Keys);
        foreach (var (name, exact) in exactGrads)
        {
            using var reference = exact;
            using var last = lastGrads[name];
            using var last64 = lastGrads64[name];
            double norm = reference.norm().item<double>() + 1e-30;
            ((last64 - reference).norm().item<double>() / norm).Should().BeLessThan(1e-9, $"{what}: float64 gradient of {name}");
            ((last.to(ScalarType.Float64) - reference).norm().item<double>() / norm).Should().BeLessThan(2e-2, $"{what}: float32 gradient of {name}");
        }
    }

    [Fact]
    public void Auto_ChannelsLastForFloat32BasicNetsOnTheCpu_ChannelsFirstForBottlenecksAndFloat64()
    {
        using var basic = ResNetFactory.Create("resnet20");
        basic.TrainingLayout.Should().Be(TrainingLayout.Auto);
        basic.ResolvedTrainingLayout.Should().Be(TrainingLayout.ChannelsLast);
        using var wide = ResNetFactory.Create(new StageTable { Block = BlockKind.Bottleneck, Layers = new[] { 1, 1, 1, 1 } });
        wide.ResolvedTrainingLayout.Should().Be(TrainingLayout.ChannelsFirst);
        using var doubles = ResNetFactory.Create("resnet20", new ResNetOptions { DType = ScalarType.Float64 });
        doubles.ResolvedTrainingLayout.Should().Be(TrainingLayout.ChannelsFirst);
        basic.TrainingLayout = TrainingLayout.ChannelsFirst;
        basic.ResolvedTrainingLayout.Should().Be(TrainingLayout.ChannelsFirst);
        FluentActions.Invoking(() => basic.TrainingLayout = (TrainingLayout)7).Should().Throw<ArgumentException>().WithMessage("*unknown training layout 7*");
    }

    [Fact]
    public void ChannelsLast_CarriesThroughTheStages_AndFeatureMapsComeBackContiguous()
    {
        torch.manual_seed(3);
        using var model = ResNetFactory.Create("resnet20", new ResNetOptions { InChannels = 1 });
        model.train();
        var seen = new List<bool>();
        foreach (var stage in model.Stages)
        {
            stage.Blocks[^1].register_forward_hook((_, _, output) =>
            {
                seen.Add(Layers.IsChannelsLast(output) && output.stride(1) == 1);
                return null!;
            });
        }

        using var x = torch.randn(2, 1, 32, 32);
        using (var logits = model.call(x))
        {
            logits.shape.Should().Equal(2, 10);
        }

        seen.Should().Equal(true, true, true);
        seen.Clear();
        using (var features = model.ForwardFeatures(x))
        {
            features.is_contiguous().Should().BeTrue("callers get an ordinary NCHW tensor back");
        }

        foreach (var map in model.ForwardFeatureMaps(x, 0, 2))
        {
            map.is_contiguous().Should().BeTrue();
            map.Dispose();
        }

        seen.Clear();
        using (torch.no_grad())
        {
            model.call(x).Dispose();
        }

        seen.Should().Equal(new[] { false, false, false }, "passes without gradients stay NCHW");
    }

    [Fact]
    public void ToChannelsLast_OneChannelImage_GetsChannelsLastStrides()
    {
        using var x = torch.randn(2, 1, 5, 7);
        using var y = Layers.ToChannelsLast(x);
        y.stride().Should().Equal(35, 1, 7, 1);
        y.shape.Should().Equal(2, 1, 5, 7);
        using var same = (y - x).abs().max();
        same.item<float>().Should().Be(0);
        using var rgb = torch.randn(2, 3, 4, 4);
        using var z = Layers.ToChannelsLast(rgb);
        z.stride().Should().Equal(48, 1, 12, 3);
        Layers.IsChannelsLast(z).Should().BeTrue();
        Layers.IsChannelsLast(rgb).Should().BeFalse();
    }

    private static (double Loss, Dictionary<string, Tensor> Grads) Step(ResNet model, TrainingLayout layout, Tensor x, Tensor labels)
    {
        model.TrainingLayout = layout;
        model.zero_grad();
        using (var scope = torch.NewDisposeScope())
        {
            var loss = nn.functional.cross_entropy(model.call(x), labels);
            loss.backward();
            double value = loss.to(ScalarType.Float64).item<double>();
            var grads = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone().MoveToOuterDisposeScope());
            return (value, grads);
        }
    }
}
