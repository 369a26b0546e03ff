using System.Collections.Generic;
using System.Linq;
using FluentAssertions;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ResNetSharp.Tests;

public class RegistryTheoryTests
{
    public RegistryTheoryTests() => NativeBackend.EnsureLoaded();

    public static IEnumerable<object[]> AllNames => ResNetFactory.Names.Select(n => new object[] { n });

    [Theory]
    [MemberData(nameof(AllNames))]
    public void EveryRegisteredModel_BuildsRunsAndGivesEveryParameterAGradient(string name)
    {
        torch.manual_seed(0);
        using var model = ResNetFactory.Create(name, new ResNetOptions { NumClasses = 5 });
        model.train();

        // The smallest input the network accepts (its output stride): the last map is 1×1, and a batch of 2 keeps
        // training-mode BatchNorm defined there.
        int size = model.MinInputSize;
        using var x = torch.randn(2, 3, size, size);
        using var logits = model.call(x);
        logits.shape.Should().Equal(2, 5);
        using var target = torch.tensor(new long[] { 1, 3 });
        using var loss = nn.functional.cross_entropy(logits, target);
        loss.backward();

        var missing = model.named_parameters().Where(p => p.parameter.grad is null).Select(p => p.name).ToList();
        missing.Should().BeEmpty($"{name}: every parameter must get a gradient");
        foreach (var (pname, p) in model.named_parameters())
        {
            using var finite = p.grad!.isfinite().all();
            finite.item<bool>().Should().BeTrue($"{name}.{pname} gradient is finite");
        }
    }

    [Fact]
    public void Registry_HasEveryFamily_AndNoDuplicateNames()
    {
        var defs = ResNetFactory.Definitions;
        defs.Select(d => d.Name).Should().OnlyHaveUniqueItems();
        defs.Select(d => d.Family).Distinct().Should().Contain(new[] { "ResNet", "ResNeXt", "Wide ResNet", "CIFAR ResNet", "Plain", "Pre-activation ResNet" });
        ResNetFactory.Names.Should().Contain(new[]
        {
            "resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "plain18", "plain34", "plain20", "plain56",
            "preact_resnet18", "preact_resnet34", "preact_resnet50", "preact_resnet101", "preact_resnet152",
        });
    }
}
