using System;
using System.IO;
using System.Linq;
using FluentAssertions;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace ResNetSharp.Tests;

/// <summary>ResetClassifier, FreezeStages / Unfreeze, ParameterGroups and AdaptInputChannels on small models, checked against hand-computed cases.</summary>
public class ResNetTransferTests
{
    private static ResNet Tiny(int seed)
    {
        var model = WeightsTestSupport.Tiny();
        WeightsTestSupport.Randomise(model, seed);
        return model;
    }

    private static Tensor Bn(ResNet model, string key) => model.state_dict()[key];

    [Fact]
    public void ResetClassifier_NewHead_HasPyTorchLinearInitShapesAndMetadata()
    {
        using var model = Tiny(1);
        var before = WeightsTestSupport.Snapshot(model);
        string[] names = { "a", "b", "c", "d", "e", "f", "g" };

        model.ResetClassifier(7, names);

        model.NumClasses.Should().Be(7);
        model.Options.NumClasses.Should().Be(7);
        model.Metadata.NumClasses.Should().Be(7);
        model.Metadata.ClassNames.Should().Equal(names);
        var sd = model.state_dict();
        sd["fc.weight"].shape.Should().Equal(7, 16);
        sd["fc.bias"].shape.Should().Equal(7);
        double bound = 1 / Math.Sqrt(16); // nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias
        sd["fc.weight"].abs().max().item<float>().Should().BeLessThanOrEqualTo((float)bound);
        sd["fc.bias"].abs().max().item<float>().Should().BeLessThanOrEqualTo((float)bound);
        model.Classifier!.weight!.requires_grad.Should().BeTrue();
        model.state_dict().Keys.Should().Equal(before.Keys, "the classifier keeps its place in the state dict");
        foreach (var key in before.Keys.Where(k => !k.StartsWith("fc.", StringComparison.Ordinal)))
        {
            WeightsTestSupport.Snapshot(model)[key].Should().Equal(before[key], "only the head changes");
        }

        using var x = torch.randn(2, 3, 16, 16);
        using var y = model.call(x);
        y.shape.Should().Equal(2, 7);
        ResetClassifier_SavedModel_RebuildsWithItsNewHead(model);
    }

    private static void ResetClassifier_SavedModel_RebuildsWithItsNewHead(ResNet model)
    {
        string dir = WeightsTestSupport.TempDir();
        string path = Path.Combine(dir, "tuned.safetensors");
        model.SaveWeights(path);
        using var back = ResNetFactory.FromWeights(path);
        back.NumClasses.Should().Be(7);
        back.Metadata.ClassNames.Should().Equal("a", "b", "c", "d", "e", "f", "g");
        Directory.Delete(dir, true);
    }

    [Fact]
    public void ResetClassifier_NamesOfWrongCount_ThrowsAndChangesNothing()
    {
        using var model = Tiny(2);
        var before = WeightsTestSupport.Snapshot(model);
        var act = () => model.ResetClassifier(3, new[] { "only one" });
        act.Should().Throw<ArgumentException>().WithMessage("*1 class names for 3 classes*");
        model.NumClasses.Should().Be(5);
        WeightsTestSupport.Snapshot(model).ShouldEqual(before);
    }

    [Fact]
    public void FreezeStages_Two_FreezesStemAndConv2xParametersAndBatchNormStatistics()
    {
        using var model = Tiny(3);
        model.FreezeStages(2);
        model.train();
        var frozenStats = new[] { "bn1.running_mean", "bn1.running_var", "layer1.0.bn2.running_mean", "layer1.0.bn1.num_batches_tracked" };
        var liveStats = new[] { "layer2.0.bn1.running_mean", "layer2.0.downsample.1.running_var" };
        var before = WeightsTestSupport.Snapshot(model);

        using (var x = torch.randn(4, 3, 16, 16))
        using (var loss = model.call(x).sum())
        {
            loss.backward();
        }

        var after = WeightsTestSupport.Snapshot(model);
        foreach (var k in frozenStats)
        {
            after[k].Should().Equal(before[k], $"{k} belongs to a frozen part: eval-mode BatchNorm keeps its statistics");
        }

        foreach (var k in liveStats)
        {
            after[k].Should().NotEqual(before[k], $"{k} is in a trainable stage");
        }

        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var k in new[] { "conv1.weight", "bn1.weight", "layer1.0.conv2.weight", "layer1.0.bn1.bias" })
        {
            parameters[k].requires_grad.Should().BeFalse(k);
            parameters[k].grad.Should().BeNull(k);
        }

        foreach (var k in new[] { "layer2.0.conv1.weight", "layer2.0.bn2.weight", "fc.weight" })
        {
            parameters[k].requires_grad.Should().BeTrue(k);
            parameters[k].grad.Should().NotBeNull(k);
        }

        model.FrozenParts.Should().Be(2);
        model.Unfreeze();
        model.train();
        model.named_parameters().Should().OnlyContain(p => p.parameter.requires_grad);
        using (var x = torch.randn(4, 3, 16, 16))
        using (var y = model.call(x))
        {
        }

        WeightsTestSupport.Snapshot(model)["bn1.running_mean"].Should().NotEqual(after["bn1.running_mean"], "after Unfreeze the stem's BatchNorm trains again");
    }

    [Fact]
    public void FreezeStages_OutOfRange_Throws()
    {
        using var model = Tiny(4);
        var act = () => model.FreezeStages(4); // stem + 2 stages = 3 parts
        act.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*0 … 3*");
    }

    [Fact]
    public void ParameterGroups_WithPerStageLearningRates_StepEachGroupByItsOwnRate()
    {
        using var model = Tiny(5);
        model.FreezeStages(1);
        var groups = model.ParameterGroups();
        groups.Select(g => g.Name).Should().Equal("layer1", "layer2", "fc");
        var rates = new[] { 0.5, 0.05, 1.0 };
        var before = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        var sgd = torch.optim.SGD(groups.Select((g, i) => new SGD.ParamGroup(g.Parameters, rates[i], 0, 0, 0, false, false)), 0.1);
        using (var x = torch.randn(3, 3, 16, 16))
        using (var loss = model.call(x).square().mean())
        {
            loss.backward();
        }

        var grads = model.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        sgd.step();

        var now = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach());
        for (int i = 0; i < groups.Count; i++)
        {
            foreach (string name in groups[i].ParameterNames)
            {
                // Plain SGD: p ← p − lr · grad, with this group's lr.
                var expected = before[name] - rates[i] * grads[name];
                (now[name] - expected).abs().max().item<float>().Should().BeLessThan(1e-6f, name);
            }
        }

        (now["conv1.weight"] == before["conv1.weight"]).all().item<bool>().Should().BeTrue("the frozen stem is in no group and does not move");
    }

    [Fact]
    public void ParameterGroups_SplitNoWeightDecay_PutsBatchNormAndBiasesApart()
    {
        using var model = Tiny(6);
        var groups = model.ParameterGroups(splitNoWeightDecay: true);
        groups.Select(g => g.Name).Should().Equal("stem", "stem.no_decay", "layer1", "layer1.no_decay", "layer2", "layer2.no_decay", "fc", "fc.no_decay");
        groups.Where(g => g.NoWeightDecay).SelectMany(g => g.ParameterNames)
            .Should().OnlyContain(n => n.EndsWith(".bias", StringComparison.Ordinal) || n.Contains("bn", StringComparison.Ordinal) || n.Contains("downsample.1", StringComparison.Ordinal));
        groups.Where(g => !g.NoWeightDecay).SelectMany(g => g.ParameterNames)
            .Should().OnlyContain(n => n.EndsWith("conv1.weight", StringComparison.Ordinal) || n.EndsWith("conv2.weight", StringComparison.Ordinal) ||
                                       n.EndsWith("downsample.0.weight", StringComparison.Ordinal) || n == "fc.weight");
        groups.Sum(g => g.Parameters.Count).Should().Be(model.parameters().Count(), "every parameter is in exactly one group");
    }

    [Fact]
    public void AdaptInputChannels_One_GreyImageGivesTheRgbModelsOutputForItsRgbCopy()
    {
        using var rgb = Tiny(7);
        using var grey = Tiny(7);
        rgb.eval();
        grey.eval();
        grey.AdaptInputChannels(1);
        grey.Options.InChannels.Should().Be(1);
        grey.Metadata.InChannels.Should().Be(1);
        grey.Metadata.Mean.Should().ContainSingle().Which.Should().BeApproximately((0.485 + 0.456 + 0.406) / 3, 1e-12);
        grey.state_dict()["conv1.weight"].shape.Should().Equal(8, 1, 3, 3);
        grey.state_dict().Keys.Should().Equal(rgb.state_dict().Keys, "conv1 keeps its place in the state dict");

        using var noGrad = torch.no_grad();
        using var x = torch.rand(2, 1, 16, 16);
        using var expected = rgb.call(x.expand(2, 3, 16, 16));
        using var actual = grey.call(x);
        WeightsTestSupport.RelativeError(actual, expected).Should().BeLessThan(1e-5);
    }

    [Fact]
    public void AdaptInputChannels_MoreThanThree_RepeatsRgbKernelsScaledByThreeOverChannels()
    {
        using var rgb = Tiny(8);
        using var four = Tiny(8);
        using var six = Tiny(8);
        rgb.eval();
        six.eval();
        four.AdaptInputChannels(4);
        six.AdaptInputChannels(6);
        var w = rgb.state_dict()["conv1.weight"];
        var w4 = four.state_dict()["conv1.weight"];
        w4.shape.Should().Equal(8, 4, 3, 3);
        // Hand-computed: channel k takes RGB kernel k mod 3, times 3/4.
        for (int k = 0; k < 4; k++)
        {
            (w4[.., k] - w[.., k % 3] * 0.75).abs().max().item<float>().Should().BeLessThan(1e-7f);
        }

        four.Metadata.Mean.Should().Equal(0.485, 0.456, 0.406, 0.485);

        // Six channels that repeat R, G, B: (2 · w · 3/6) · x = w · x, the RGB model's output.
        using var noGrad = torch.no_grad();
        using var x = torch.rand(2, 3, 16, 16);
        using var expected = rgb.call(x);
        using var actual = six.call(torch.cat(new[] { x, x }, 1));
        WeightsTestSupport.RelativeError(actual, expected).Should().BeLessThan(1e-5);
    }

    [Fact]
    public void AdaptInputChannels_FromNonRgbStem_ThrowsAndChangesNothing()
    {
        using var model = Tiny(9);
        model.AdaptInputChannels(1);
        var before = WeightsTestSupport.Snapshot(model);
        var act = () => model.AdaptInputChannels(4);
        act.Should().Throw<ArgumentException>().WithMessage("*RGB (3-channel)*takes 1 channels*");
        var zero = () => model.AdaptInputChannels(0);
        zero.Should().Throw<ArgumentException>();
        WeightsTestSupport.Snapshot(model).ShouldEqual(before);
        model.Options.InChannels.Should().Be(1);
    }
}
