using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using FluentAssertions;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ResNetSharp.Tests;

public class RegistryTheoryTests
{
    public RegistryTheoryTests() => NativeBackend.EnsureLoaded();

    public static IEnumerable<object[]> AllNames => ResNetFactory.Names.Select(n => new object[] { n });

    public static IEnumerable<object[]> TorchvisionNames => new[]
    {
        "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
        "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2",
    }.Select(n => new object[] { n });

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

    [Theory]
    [InlineData("resnet18", 1.8141)]
    [InlineData("resnet50", 4.0892)]
    public void StridedOneByOneConvs_RunAsSubsampleThenConv_KeepTorchvisionsMultiplyAdds(string name, double gigaMacs)
    {
        // REFERENCE.md §2, measured with torchvision at 224×224 (convs + fc, projections included). The projection's
        // stride is applied by subsampling (a libtorch SIGFPE workaround): the count must not change.
        using var model = ResNetFactory.Create(name);
        (model.Summarize(224).MultiplyAdds / 1e9).Should().BeApproximately(gigaMacs, 0.00005);
        ModelInspector.CountWeightedLayers(model).Should().Be(int.Parse(name[6..], System.Globalization.CultureInfo.InvariantCulture));
    }

    [Theory]
    [MemberData(nameof(TorchvisionNames))]
    public void TorchvisionModels_KeepTorchvisionsStateDictKeysAndShapes(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixtures.File_("torchvision_state_dicts.json")));
        var entry = doc.RootElement.GetProperty("models").GetProperty(name);
        var keys = entry.GetProperty("keys").EnumerateArray().Select(k => k.GetString()!).ToList();
        var shapes = entry.GetProperty("shapes").EnumerateArray().Select(s => s.EnumerateArray().Select(d => d.GetInt64()).ToArray()).ToList();
        using var model = ResNetFactory.Create(name);
        var ours = model.state_dict();
        ours.Count.Should().Be(keys.Count, "no duplicate or extra entries");
        ours.Keys.Should().BeEquivalentTo(keys);
        for (int i = 0; i < keys.Count; i++)
        {
            ours[keys[i]].shape.Should().Equal(shapes[i], keys[i]);
        }

        ModelInspector.CountParameters(model).Should().Be(entry.GetProperty("parameters").GetInt64());
    }
}
