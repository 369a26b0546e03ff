using System;
using System.IO;
using System.Linq;
using System.Text.Json;
using FluentAssertions;
using TorchSharp;
using Xunit;

namespace ResNetSharp.Tests;

public class ResNetFactoryTests
{
    private static readonly string[] TorchvisionNames =
    {
        "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
        "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2",
    };

    [Fact]
    public void Names_ContainEveryTorchvisionResNet()
    {
        ResNetFactory.Names.Should().Contain(TorchvisionNames);
        ResNetFactory.Names.Should().OnlyHaveUniqueItems();
    }

    [Theory]
    [InlineData("resnet18")]
    [InlineData("resnet34")]
    [InlineData("resnet50")]
    [InlineData("resnet101")]
    [InlineData("resnet152")]
    [InlineData("resnext50_32x4d")]
    [InlineData("resnext101_32x8d")]
    [InlineData("resnext101_64x4d")]
    [InlineData("wide_resnet50_2")]
    [InlineData("wide_resnet101_2")]
    public void Create_StateDictKeysAndShapes_EqualTorchvisions(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixtures.File_("torchvision_state_dicts.json")));
        var reference = doc.RootElement.GetProperty("models").GetProperty(name);
        string[] keys = reference.GetProperty("keys").EnumerateArray().Select(k => k.GetString()!).ToArray();
        long[][] shapes = reference.GetProperty("shapes").EnumerateArray().Select(s => s.EnumerateArray().Select(d => d.GetInt64()).ToArray()).ToArray();

        using var model = ResNetFactory.Create(name);
        var ours = model.state_dict();
        // TorchSharp lists parameters before buffers; checkpoints are matched by key, so the set and count must agree.
        ours.Keys.Should().BeEquivalentTo(keys, "the module names are torchvision's checkpoint format");
        ours.Count.Should().Be(keys.Length);
        for (int i = 0; i < keys.Length; i++)
        {
            ours[keys[i]].shape.Should().Equal(shapes[i], $"{keys[i]} must have torchvision's shape");
        }

        ModelInspector.CountParameters(model).Should().Be(reference.GetProperty("parameters").GetInt64());
    }

    [Fact]
    public void TypedShortcuts_ReadTheSameRowsAsCreateByName()
    {
        Func<ResNetOptions?, ResNet>[] shortcuts =
        {
            o => ResNetFactory.ResNet18(o), o => ResNetFactory.ResNet34(o), o => ResNetFactory.ResNet50(o),
            o => ResNetFactory.ResNet101(o), o => ResNetFactory.ResNet152(o), o => ResNetFactory.ResNeXt50_32x4d(o),
            o => ResNetFactory.ResNeXt101_32x8d(o), o => ResNetFactory.ResNeXt101_64x4d(o),
            o => ResNetFactory.WideResNet50_2(o), o => ResNetFactory.WideResNet101_2(o),
        };
        var small = new ResNetOptions { NumClasses = 2 };
        for (int i = 0; i < shortcuts.Length; i++)
        {
            using var model = shortcuts[i](small);
            model.ModelName.Should().Be(TorchvisionNames[i]);
            model.Table.Should().BeSameAs(ResNetFactory.GetTable(TorchvisionNames[i]));
        }
    }

    [Fact]
    public void Tables_ResNeXtAndWideAreResNetRowsWithGroupsOrWidth()
    {
        var r50 = ResNetFactory.GetTable("resnet50");
        var r101 = ResNetFactory.GetTable("resnet101");
        ResNetFactory.GetTable("resnext50_32x4d").Layers.Should().Equal(r50.Layers);
        ResNetFactory.GetTable("wide_resnet50_2").Layers.Should().Equal(r50.Layers);
        // TorchSharp's own zoo once gave ResNeXt-101 ResNet-50's [3, 4, 6, 3]; here both come from the one table.
        ResNetFactory.GetTable("resnext101_32x8d").Layers.Should().Equal(r101.Layers);
        ResNetFactory.GetTable("resnext101_64x4d").Layers.Should().Equal(r101.Layers);
        ResNetFactory.GetTable("wide_resnet101_2").Layers.Should().Equal(3, 4, 23, 3);
        ResNetFactory.GetTable("resnet152").Layers.Should().Equal(3, 8, 36, 3);
    }

    [Fact]
    public void Create_UnknownName_ThrowsListingTheRegisteredNames()
    {
        FluentActions.Invoking(() => ResNetFactory.Create("resnet51")).Should().Throw<ArgumentException>()
            .WithMessage("Unknown model 'resnet51'. Registered names: resnet18, resnet34, resnet50*");
    }

    [Fact]
    public void Create_NameIsCaseInsensitive()
    {
        using var model = ResNetFactory.Create("ResNet18", new ResNetOptions { NumClasses = 2 });
        model.ModelName.Should().Be("resnet18");
    }

    [Fact]
    public void Register_AddsARowThatCreateFinds_AndRefusesDuplicatesAndBadTables()
    {
        string name = "test_resnet10_" + Guid.NewGuid().ToString("N")[..8];
        var table = new StageTable { Block = BlockKind.Basic, Layers = new[] { 1, 1, 1, 1 } };
        ResNetFactory.Register(name, table, "ResNet-10", family: "Test");
        using var model = ResNetFactory.Create(name);
        ModelInspector.CountWeightedLayers(model).Should().Be(10);
        FluentActions.Invoking(() => ResNetFactory.Register(name, table, "again"))
            .Should().Throw<ArgumentException>().WithMessage("*already registered*");
        FluentActions.Invoking(() => ResNetFactory.Register(name + "x", table with { Layers = Array.Empty<int>() }, "bad"))
            .Should().Throw<ArgumentException>().WithMessage("*Layers*");
    }
}

public class StageTableTests
{
    private static readonly StageTable Valid = new() { Block = BlockKind.Bottleneck, Layers = new[] { 3, 4, 6, 3 } };

    public static TheoryData<StageTable, string> InvalidTables() => new()
    {
        { Valid with { Layers = Array.Empty<int>() }, "*Layers must list at least one stage*" },
        { Valid with { Layers = new[] { 3, 0, 6, 3 } }, "*≥ 1 block per stage, got [3, 0, 6, 3]*" },
        { Valid with { Widths = new[] { 64, 128 } }, "*one width per stage (4), got 2*" },
        { Valid with { Widths = new[] { 64, 128, -1, 512 } }, "*Widths must be positive*" },
        { Valid with { Strides = new[] { 1, 3, 2, 2 } }, "*Strides must each be 1 or 2*" },
        { Valid with { Groups = 0 }, "*Groups and WidthPerGroup must be positive*" },
        { Valid with { StemWidth = 0 }, "*StemWidth must be positive*" },
        { Valid with { Block = BlockKind.Basic, Groups = 32 }, "*BasicBlock supports only Groups = 1*" },
        { Valid with { Shortcut = ShortcutOption.A }, "*option A*basic blocks only*" },
        { Valid with { Block = (BlockKind)7 }, "*not a BlockKind*" },
    };

    [Theory]
    [MemberData(nameof(InvalidTables))]
    public void Validate_InvalidTable_ThrowsArgumentExceptionSayingWhatIsAllowed(StageTable table, string message)
    {
        table.Invoking(t => t.Validate()).Should().Throw<ArgumentException>().WithMessage(message);
        FluentActions.Invoking(() => new ResNet(table)).Should().Throw<ArgumentException>().WithMessage(message);
    }

    [Fact]
    public void OutputStride_IsMeasuredAt32ForImageNetTables()
    {
        Valid.OutputStride.Should().Be(32);
        using var model = new ResNet(Valid with { Widths = new[] { 8, 8, 8, 8 } });
        model.eval();
        using var noGrad = torch.no_grad();
        using var x = torch.zeros(1, 3, 96, 160);
        using var f = model.ForwardFeatures(x);
        f.shape.Should().Equal(1, 32, 96 / 32, 160 / 32);
    }
}
