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
}
