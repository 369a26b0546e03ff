using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using FluentAssertions;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ResNetSharp.Tests;

/// <summary>Metadata travels with the weights: defaults per stem, round trip through safetensors, rebuild without a name.</summary>
public class ModelMetadataTests
{
    [Fact]
    public void For_ImageNetModel_IsTorchvisionsEvalTransform()
    {
        using var model = ResNetFactory.ResNet18();
        var m = model.Metadata;
        m.Architecture.Should().Be("resnet18");
        m.InputSize.Should().Be(224);
        m.ResizeSize.Should().Be(256); // torchvision: Resize(256) then CenterCrop(224)
        m.Interpolation.Should().Be(ResizeInterpolation.Bilinear);
        m.Mean.Should().Equal(0.485, 0.456, 0.406);
        m.Std.Should().Equal(0.229, 0.224, 0.225);
        m.NumClasses.Should().Be(1000);
    }

    [Fact]
    public void For_CifarGreyModel_Is32PixelsNoResizeOneChannel()
    {
        using var model = ResNetFactory.ResNet20(new ResNetOptions { InChannels = 1 });
        var m = model.Metadata;
        m.InputSize.Should().Be(32);
        m.CropPct.Should().Be(1.0);
        m.ResizeSize.Should().Be(32);
        m.Mean.Should().HaveCount(1);
        m.Std.Should().HaveCount(1);
        m.NumClasses.Should().Be(10);
    }

    [Fact]
    public void SaveAndFromWeights_CustomTable_RebuildsSameModelWithClassNames()
    {
        var table = new StageTable { Block = BlockKind.Bottleneck, Layers = new[] { 1, 1 }, Widths = new[] { 8, 16 }, Strides = new[] { 1, 2 }, StemWidth = 8, Stem = StemKind.Cifar, StridePlacement = StridePlacement.V1 };
        using var model = ResNetFactory.Create(table, new ResNetOptions { NumClasses = 3, InChannels = 1 });
        model.Metadata = model.Metadata with { ClassNames = new[] { "a", "b", "c" }, Mean = new[] { 0.2860 }, Std = new[] { 0.3530 }, Extra = new Dictionary<string, string> { ["epoch"] = "7" } };
        string dir = Directory.CreateTempSubdirectory("meta").FullName;
        string path = Path.Combine(dir, "m.safetensors");
        model.SaveWeights(path);

        var pairs = WeightFile.Read(path).Metadata;
        pairs["num_classes"].Should().Be("3");
        pairs["input_size"].Should().Be("[1,32,32]");
        pairs["class_names"].Should().Be("[\"a\",\"b\",\"c\"]");
        pairs["epoch"].Should().Be("7");
        pairs.Should().NotContainKey("architecture"); // a custom table has no registry name

        using var back = ResNetFactory.FromWeights(path);
        ModelMetadata.TableEquals(back.Table, table).Should().BeTrue();
        back.Metadata.ClassNames.Should().Equal("a", "b", "c");
        back.Metadata.Mean.Should().Equal(0.2860);
        back.Metadata.Extra!["epoch"].Should().Be("7");
        model.eval();
        back.eval();
        using var x = torch.randn(2, 1, 32, 32);
        using var _ = torch.no_grad();
        using var a = model.call(x);
        using var b = back.call(x);
        ResNetSharp.Tests.Family.TensorAssert.Same(a, b).Should().BeTrue();
        Directory.Delete(dir, true);
    }

    [Fact]
    public void FromWeights_FileWithoutMetadata_SaysHowToLoadIt()
    {
        using var model = ResNetFactory.ResNet20();
        string path = Path.Combine(Path.GetTempPath(), $"nometa-{Guid.NewGuid():N}.safetensors");
        SafeTensorsFormat.Write(path, model.GetWeights().Tensors);
        var act = () => ResNetFactory.FromWeights(path);
        act.Should().Throw<InvalidDataException>().WithMessage("*no ResNetSharp architecture metadata*LoadWeights*");
        File.Delete(path);
    }

    [Theory]
    [InlineData("num_classes", "ten", "*'num_classes' is malformed*")]
    [InlineData("input_size", "[3,224,200]", "*'input_size' must be*")]
    [InlineData("mean", "[0.5]", "*one value per input channel*")]
    [InlineData("class_names", "[\"x\"]", "*1 names for 10 classes*")]
    [InlineData("resnetsharp.metadata", "99", "*schema '99' is not supported*")]
    public void FromDictionary_BadField_NamesTheKey(string key, string value, string message)
    {
        using var model = ResNetFactory.ResNet20();
        var pairs = new Dictionary<string, string>(model.Metadata.ToDictionary()) { [key] = value };
        var act = () => ModelMetadata.FromDictionary(pairs, "x.safetensors");
        act.Should().Throw<InvalidDataException>().WithMessage("x.safetensors: " + message);
    }

    [Fact]
    public void Metadata_ForOtherClassCount_IsRejected()
    {
        using var model = ResNetFactory.ResNet20();
        var act = () => model.Metadata = model.Metadata with { NumClasses = 5 };
        act.Should().Throw<ArgumentException>().WithMessage("*5 classes*10*");
    }
}
