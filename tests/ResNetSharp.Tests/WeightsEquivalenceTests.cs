using System;
using FluentAssertions;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ResNetSharp.Tests;

/// <summary>
/// torchvision 0.14 itself made these fixtures (tools/make_fixtures.py): seeded random weights, random BN affine,
/// BN running statistics from training-mode batches, then eval-mode outputs of every stage and the logits for a fixed
/// 2×3×64×64 batch. Loading the same state dict must make ResNetSharp compute the same numbers.
/// </summary>
public class WeightsEquivalenceTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-4;

    [Theory]
    [InlineData("resnet18")]
    [InlineData("resnet50")]
    [InlineData("resnext50_32x4d")]
    [InlineData("wide_resnet50_2")]
    public void LoadTorchvisionWeights_MatchesTorchvisionStagesAndLogits(string name)
    {
        var io = SafeTensorsFormat.Read(Fixtures.File_($"weights_{name}_io.safetensors"));
        using var model = ResNetFactory.Create(name);
        model.eval();
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var x = io["input"].ToTensor();
        var reference = io["logits"].ToTensor();

        // Control: the freshly initialised model is far from torchvision's numbers, so the comparison below can fail.
        WeightsTestSupport.RelativeError(model.call(x), reference).Should().BeGreaterThan(0.05);

        var check = model.LoadWeights(Fixtures.File_($"weights_{name}.safetensors"));
        check.Missing.Should().BeEmpty();
        check.Unexpected.Should().BeEmpty();
        check.Matched.Should().Contain(new[] { "bn1.running_var", "bn1.num_batches_tracked", "fc.weight" });

        var y = WeightsTestSupport.AssertStagesMatch(model, io, x, Tolerance, "torchvision", output.WriteLine);

        double headErr = WeightsTestSupport.RelativeError(model.ForwardHead(y), reference);
        double fullErr = WeightsTestSupport.RelativeError(model.call(x), reference);
        output.WriteLine($"{name} logits: {headErr:E2} (staged), {fullErr:E2} (forward)");
        headErr.Should().BeLessThanOrEqualTo(Tolerance);
        fullErr.Should().BeLessThanOrEqualTo(Tolerance);
    }

    [Theory]
    [InlineData("f16", 1e-3)]
    [InlineData("bf16", 8e-3)]
    public void HalfPrecisionFileFromTorchvision_LoadsAsRoundedFloat32Weights(string tag, double relative)
    {
        var full = SafeTensorsFormat.Read(Fixtures.File_("weights_resnet18.safetensors"));
        var half = SafeTensorsFormat.Read(Fixtures.File_($"weights_resnet18_{tag}.safetensors"));
        half["conv1.weight"].DType.Should().Be(tag == "f16" ? WeightDType.F16 : WeightDType.BF16);
        half["bn1.num_batches_tracked"].DType.Should().Be(WeightDType.I64, "integer buffers keep their type");

        using var model = ResNetFactory.ResNet18();
        model.LoadWeights(half);
        using var scope = torch.NewDisposeScope();
        var sd = model.state_dict();
        sd["conv1.weight"].dtype.Should().Be(ScalarType.Float32, "the file is converted to the model's dtype");
        foreach (var t in full.Tensors)
        {
            var expected = t.ToTensor();
            if (expected.is_floating_point())
            {
                // Half-precision storage rounds each value to 11 (F16) or 8 (BF16) significant bits.
                var tol = expected.abs() * relative + 1e-6;
                ((sd[t.Name] - expected).abs() <= tol).all().item<bool>().Should().BeTrue($"{t.Name} within {tag} rounding");
            }
            else
            {
                sd[t.Name].item<long>().Should().Be(expected.item<long>());
            }
        }
    }
}
