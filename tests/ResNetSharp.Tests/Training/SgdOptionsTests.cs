using System;
using System.Linq;
using FluentAssertions;
using ResNetSharp.Training;
using TorchSharp.Modules;
using Xunit;

namespace ResNetSharp.Tests.Training;

public class SgdOptionsTests
{
    [Fact]
    public void Create_NoDecayOnNormAndBias_TwoGroups_BatchNormAndBiasesUndecayed()
    {
        using var model = TrainingTestData.TinyModel();
        var named = model.named_parameters().ToList();
        int matrices = named.Count(p => p.parameter.dim() > 1);   // conv and fc weights
        int vectors = named.Count - matrices;                     // BN weights and biases, fc bias

        using var optimizer = new SgdOptions { WeightDecay = 5e-4, NoDecayOnNormAndBias = true, Nesterov = true }.Create(model);
        var groups = optimizer.ParamGroups.Cast<ParamGroup>().ToList();

        groups.Should().HaveCount(2);
        groups[0].Parameters.Count().Should().Be(matrices);
        ((SGD.Options)groups[0].Options).weight_decay.Should().Be(5e-4);
        groups[1].Parameters.Count().Should().Be(vectors);
        ((SGD.Options)groups[1].Options).weight_decay.Should().Be(0);
        vectors.Should().Be(2 * 7 + 1); // 7 BatchNorms (stem + 2 per block) and the fc bias
    }

    [Fact]
    public void Create_Default_OneGroupOfEveryTrainableParameter()
    {
        using var model = TrainingTestData.TinyModel();

        using var optimizer = new SgdOptions().Create(model);

        optimizer.ParamGroups.Cast<ParamGroup>().Single().Parameters.Count().Should().Be(model.parameters().Count());
    }

    [Fact]
    public void Validate_NesterovWithoutMomentum_Throws()
    {
        var act = () => new SgdOptions { Momentum = 0, Nesterov = true }.Validate();

        act.Should().Throw<ArgumentException>();
    }

    [Fact]
    public void Create_LearningRateScales_EachPartGetsItsRate_OthersTheBase()
    {
        using var model = TrainingTestData.TinyModel();
        model.FreezeStages(1); // the stem is frozen: no group for it
        var scales = new System.Collections.Generic.Dictionary<string, double> { ["stem"] = 0.01, ["layer1"] = 0.25, ["layer3"] = 0.5 };

        using var optimizer = new SgdOptions { LearningRate = 0.2, WeightDecay = 1e-4, LearningRateScales = scales }.Create(model);
        var groups = optimizer.ParamGroups.Cast<ParamGroup>().ToList();

        var expected = model.ParameterGroups();
        expected.Select(g => g.Name).Should().Equal("layer1", "layer2", "layer3", "fc");
        groups.Select(g => g.Options.LearningRate!.Value).Should().Equal(0.05, 0.2, 0.1, 0.2);
        groups.Select(g => g.Parameters.Count()).Should().Equal(expected.Select(g => g.Parameters.Count));
        groups.Should().OnlyContain(g => ((SGD.Options)g.Options).weight_decay == 1e-4);
    }

    [Fact]
    public void Create_LearningRateScalesWithNoDecaySplit_BothHalvesOfAPartShareItsRate()
    {
        using var model = TrainingTestData.TinyModel();
        var scales = new System.Collections.Generic.Dictionary<string, double> { ["fc"] = 10 };

        using var optimizer = new SgdOptions { LearningRate = 0.01, WeightDecay = 5e-4, NoDecayOnNormAndBias = true, LearningRateScales = scales }.Create(model);
        var groups = optimizer.ParamGroups.Cast<ParamGroup>().ToList();

        var names = model.ParameterGroups(splitNoWeightDecay: true).Select(g => g.Name).ToList();
        names.TakeLast(2).Should().Equal("fc", "fc.no_decay");
        groups.TakeLast(2).Select(g => g.Options.LearningRate!.Value).Should().Equal(0.1, 0.1);
        groups.SkipLast(2).Should().OnlyContain(g => g.Options.LearningRate == 0.01);
        groups.TakeLast(2).Select(g => ((SGD.Options)g.Options).weight_decay).Should().Equal(5e-4, 0);
    }

    [Fact]
    public void Create_LearningRateScalesNamingAnUnknownPart_ThrowsListingTheParts()
    {
        using var model = TrainingTestData.TinyModel();
        var options = new SgdOptions { LearningRateScales = new System.Collections.Generic.Dictionary<string, double> { ["layer4"] = 0.5 } };

        var act = () => options.Create(model);

        act.Should().Throw<ArgumentException>().WithMessage("*'layer4'*stem, layer1, layer2, layer3, fc*");
    }

    [Fact]
    public void Validate_NonPositiveScale_Throws()
    {
        var options = new SgdOptions { LearningRateScales = new System.Collections.Generic.Dictionary<string, double> { ["fc"] = 0 } };

        var act = options.Validate;

        act.Should().Throw<ArgumentException>().WithMessage("*'fc'*> 0*");
    }
}
