using System;
using System.Collections.Generic;
using System.Linq;
using FluentAssertions;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace ResNetSharp.Tests.Family;

public class FeatureAndFreezeTests
{
    public FeatureAndFreezeTests() => NativeBackend.EnsureLoaded();

    [Fact]
    public void ForwardFeatureMaps_ResNet50_GivesStemAndC2ToC5_WithChannelsAndStrides()
    {
        using var model = ResNetFactory.ResNet50();
        model.eval();
        model.FeatureInfo.Select(f => f.Level).Should().Equal("C1", "C2", "C3", "C4", "C5");
        model.FeatureInfo.Select(f => f.Channels).Should().Equal(64L, 256L, 512L, 1024L, 2048L);
        model.FeatureInfo.Select(f => f.Stride).Should().Equal(2, 4, 8, 16, 32);

        using var noGrad = torch.no_grad();
        using var x = torch.randn(2, 3, 64, 96);
        var maps = model.ForwardFeatureMaps(x);
        try
        {
            maps.Should().HaveCount(5);
            for (int i = 0; i < maps.Count; i++)
            {
                var info = model.FeatureInfo[i];
                maps[i].shape.Should().Equal(2, info.Channels, 64 / info.Stride, 96 / info.Stride);
            }

            using var last = model.ForwardFeatures(x);
            maps[^1].Same(last).Should().BeTrue("C5 is what the classifier pools");
        }
        finally
        {
            maps.ToList().ForEach(m => m.Dispose());
        }
    }

    [Fact]
    public void ForwardFeatureMaps_Subset_ReturnsOnlyThoseInOrder_AndRejectsBadIndices()
    {
        using var model = ResNetFactory.ResNet20();
        model.eval();
        using var x = torch.randn(1, 3, 32, 32);
        var maps = model.ForwardFeatureMaps(x, 3, 1);
        maps.Select(m => m.shape).Should().BeEquivalentTo(new[] { new long[] { 1, 16, 32, 32 }, new long[] { 1, 64, 8, 8 } },
            o => o.WithStrictOrdering(), "layer1 (stride 1) then layer3 (stride 4), in index order whatever order they were asked in");
        maps.ToList().ForEach(m => m.Dispose());
        FluentActions.Invoking(() => model.ForwardFeatureMaps(x, 4)).Should().Throw<ArgumentException>().WithMessage("*0 … 3*");
    }

    [Fact]
    public void FrozenBatchNorm_MatchesBatchNormInEval_NeverUpdates_AndKeepsTheStateDictKeys()
    {
        using var bn = nn.BatchNorm2d(5);
        using (torch.no_grad())
        {
            bn.weight!.uniform_(0.5, 1.5);
            bn.bias!.uniform_(-1, 1);
            bn.running_mean!.uniform_(-1, 1);
            bn.running_var!.uniform_(0.5, 2);
        }

        using var frozen = FrozenBatchNorm2d.From(bn);
        frozen.state_dict().Keys.Should().BeEquivalentTo(bn.state_dict().Keys);
        frozen.parameters().Should().BeEmpty("nothing in a frozen norm is trainable");

        bn.eval();
        frozen.train(); // training mode must make no difference
        using var x = torch.randn(4, 5, 3, 3).requires_grad_(true);
        using var expected = bn.call(x);
        using var y = frozen.call(x);
        y.allclose(expected, rtol: 1e-5, atol: 1e-6).Should().BeTrue();
        using var mean = frozen.RunningMean.clone();
        using var again = frozen.call(x * 3 + 1);
        frozen.RunningMean.Same(mean).Should().BeTrue();
        using var loss = y.sum();
        loss.backward();
        x.grad.Should().NotBeNull("gradients still flow through a frozen norm to the layers below");
    }

    [Fact]
    public void FrozenStages_NeitherChangeNorGetGradients_InAnSgdStep_WhileTheRestTrains()
    {
        torch.manual_seed(3);
        using var model = ResNetFactory.ResNet18(new ResNetOptions { FrozenStages = 2, NumClasses = 4 }); // stem + conv2_x
        model.train();
        static bool IsFrozenPart(string key) => key.StartsWith("conv1.", StringComparison.Ordinal) ||
            key.StartsWith("bn1.", StringComparison.Ordinal) || key.StartsWith("layer1.", StringComparison.Ordinal);

        model.named_modules().Where(m => IsFrozenPart(m.Item1 + ".")).Select(m => m.Item2).OfType<BatchNorm2d>().Should().BeEmpty();
        model.named_modules().Where(m => m.Item1.StartsWith("layer2", StringComparison.Ordinal)).Select(m => m.Item2).OfType<BatchNorm2d>().Should().NotBeEmpty();

        var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        using var optimizer = torch.optim.SGD(model.parameters(), 0.1, momentum: 0.9, weight_decay: 1e-4);
        using var x = torch.randn(4, 3, 64, 64);
        using var target = torch.tensor(new long[] { 0, 1, 2, 3 });
        optimizer.zero_grad();
        using var loss = nn.functional.cross_entropy(model.call(x), target);
        loss.backward();
        var grads = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad is not null);
        optimizer.step();

        var after = model.state_dict();
        var frozenKeys = before.Keys.Where(IsFrozenPart).ToList();
        frozenKeys.Should().Contain(new[] { "conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer1.1.bn2.weight" });
        foreach (var key in frozenKeys)
        {
            after[key].Same(before[key]).Should().BeTrue($"{key} is frozen");
        }

        grads.Where(g => IsFrozenPart(g.Key)).Should().OnlyContain(g => !g.Value, "frozen parameters get no gradient");
        grads.Where(g => !IsFrozenPart(g.Key)).Should().OnlyContain(g => g.Value, "the rest trains");
        after["layer2.0.conv1.weight"].Same(before["layer2.0.conv1.weight"]).Should().BeFalse();
        after["layer2.0.bn1.running_mean"].Same(before["layer2.0.bn1.running_mean"]).Should().BeFalse("unfrozen BN keeps tracking statistics");
        after["fc.weight"].Same(before["fc.weight"]).Should().BeFalse();
        foreach (var t in before.Values)
        {
            t.Dispose();
        }

        using var summaryModel = ResNetFactory.ResNet18(new ResNetOptions { FrozenStages = 2 });
        var summary = summaryModel.Summarize(64);
        summary.TrainableParameters.Should().BeLessThan(summary.Parameters);
    }

    [Fact]
    public void FrozenModel_HasTheSameStateDictKeysAsTheNormalOne()
    {
        using var normal = ResNetFactory.ResNet50();
        using var frozen = ResNetFactory.ResNet50(new ResNetOptions { FrozenStages = 5, FrozenBatchNorm = true });
        frozen.state_dict().Keys.Should().BeEquivalentTo(normal.state_dict().Keys, "same keys (buffers are listed after parameters, so the order differs)");
        foreach (var (key, value) in normal.state_dict())
        {
            frozen.state_dict()[key].shape.Should().Equal(value.shape, key);
        }
        FluentActions.Invoking(() => ResNetFactory.ResNet50(new ResNetOptions { FrozenStages = 6 })).Should().Throw<ArgumentException>();
    }
}
