using System;
using System.IO;
using System.Linq;
using FluentAssertions;
using ResNetSharp.Metadata;
using ResNetSharp.Onnx;
using ResNetSharp.Pretrained;
using ResNetSharp.Weights;
using TorchSharp;
using Xunit;

namespace ResNetSharp.Tests;

/// <summary>
/// <see cref="ResNetFactory.Load"/>, the one way from "a name, a file or a URL" to a model: each kind of source, and
/// each wrong combination refused with a message that names the input and says what is expected.
/// </summary>
public sealed class ResNetFactoryLoadTests : IDisposable
{
    private static readonly string[] Classes = Enumerable.Range(0, 10).Select(i => $"class {i}").ToArray();
    private readonly string dir = Directory.CreateTempSubdirectory("factory-load").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void ArchitectureOnly_IsAFreshModelWithTheOptions()
    {
        using var model = ResNetFactory.Load(null, "resnet20", new ResNetOptions { InChannels = 1, NumClasses = 7 });

        model.ModelName.Should().Be("resnet20");
        model.NumClasses.Should().Be(7);
        model.Options.InChannels.Should().Be(1);
    }

    [Fact]
    public void FileWithMetadata_RebuildsTheModelWithItsWeightsAndMetadata()
    {
        string path = Saved("described.safetensors", withMetadata: true);

        using var loaded = ResNetFactory.Load(path);

        loaded.ModelName.Should().Be("resnet20");
        loaded.Options.InChannels.Should().Be(1);
        loaded.Metadata.ClassNames.Should().Equal(Classes);
        loaded.Metadata.Mean.Should().Equal(0.25);
        SameWeights(loaded, path).Should().BeTrue();
    }

    [Fact]
    public void FileWithoutMetadata_NeedsTheArchitecture_AndThenLoadsStrictly()
    {
        string path = Saved("bare.safetensors", withMetadata: false);

        var alone = () => ResNetFactory.Load(path);
        alone.Should().Throw<InvalidDataException>().Which.Message.Should().Contain(path).And.Contain("carries no model metadata").And.Contain("name the model's architecture");

        using var named = ResNetFactory.Load(path, "resnet20", new ResNetOptions { InChannels = 1, NumClasses = 10 });
        SameWeights(named, path).Should().BeTrue();
        named.Metadata.ClassNames.Should().BeNull("a bare file has no class names to give");

        var wrongHead = () => ResNetFactory.Load(path, "resnet20", new ResNetOptions { InChannels = 1, NumClasses = 5 });
        wrongHead.Should().Throw<WeightMismatchException>().Which.Message.Should().Contain("fc.weight");
    }

    [Fact]
    public void FileWithMetadata_AndAnArchitecture_TakesTheFilesPreprocessingAndClassNames()
    {
        string path = Saved("described-named.safetensors", withMetadata: true);

        using var named = ResNetFactory.Load(path, "resnet20", new ResNetOptions { InChannels = 1, NumClasses = 10 }, StridePlacement.V1);

        named.Metadata.ClassNames.Should().Equal(Classes);
        named.Metadata.Mean.Should().Equal(0.25);
        named.Metadata.Table.Should().BeSameAs(named.Table, "the structure is the model's own, built as named");
        SameWeights(named, path).Should().BeTrue();
    }

    [Fact]
    public void OptionsOrStrideForASelfDescribingFile_AreRefused()
    {
        string path = Saved("self.safetensors", withMetadata: true);

        var head = () => ResNetFactory.Load(path, options: new ResNetOptions { NumClasses = 10 });
        head.Should().Throw<ArgumentException>().Which.Message.Should().Contain(path).And.Contain("describes its own architecture");
        var stride = () => ResNetFactory.Load(path, stride: StridePlacement.V1);
        stride.Should().Throw<ArgumentException>().Which.Message.Should().Contain("Name the architecture");

        using var onDevice = ResNetFactory.Load(path, options: new ResNetOptions { Device = torch.CPU, DType = torch.float64 });
        onDevice.parameters().First().dtype.Should().Be(torch.float64, "device and dtype are the two choices a self-describing file leaves open");
    }

    [Fact]
    public void OnnxGraph_IsImported_AndRefusedWithAnArchitecture()
    {
        string path = Path.Combine(dir, "model.onnx");
        using (var model = Trained())
        {
            model.ExportOnnx(path);
        }

        using var imported = ResNetFactory.Load(path);
        imported.Options.InChannels.Should().Be(1);
        imported.NumClasses.Should().Be(10);

        var named = () => ResNetFactory.Load(path, "resnet20");
        named.Should().Throw<ArgumentException>().Which.Message.Should().Contain(path).And.Contain("ONNX graph");
    }

    [Fact]
    public void FileUrl_NeedsItsHash_AndIsLoadedFromTheCache()
    {
        string path = Saved("remote.safetensors", withMetadata: true);
        string url = new Uri(path).AbsoluteUri;
        string cache = Path.Combine(dir, "cache");

        var noHash = () => ResNetFactory.Load(url, cacheDirectory: cache);
        noHash.Should().Throw<ArgumentException>().Which.Message.Should().Contain(url).And.Contain("SHA-256");

        using var loaded = ResNetFactory.Load(url, sha256: WeightsCache.ComputeSha256(path), cacheDirectory: cache);
        SameWeights(loaded, path).Should().BeTrue();
        Directory.GetFiles(cache, "remote.safetensors", SearchOption.AllDirectories).Should().ContainSingle();
    }

    [Fact]
    public void RegisteredWeights_AreDownloadedAndDescribedByTheirEntry()
    {
        string path = Saved("entry.safetensors", withMetadata: false);
        PretrainedWeights.Register(new PretrainedWeights
        {
            Name = "resnet20.factory_load_test",
            Architecture = "resnet20",
            Url = new Uri(path),
            Sha256 = WeightsCache.ComputeSha256(path),
            Metadata = new ModelMetadata { NumClasses = 10, InChannels = 1, InputSize = 28, CropPct = 1, Mean = new[] { 0.3 }, Std = new[] { 0.4 }, ClassNames = Classes },
        }, replace: true);
        string cache = Path.Combine(dir, "cache");

        using var described = ResNetFactory.Load("resnet20.factory_load_test", cacheDirectory: cache);
        using var named = ResNetFactory.Load("resnet20.factory_load_test", "resnet20", new ResNetOptions { InChannels = 1, NumClasses = 10 }, cacheDirectory: cache);

        foreach (var model in new[] { described, named })
        {
            model.Metadata.ClassNames.Should().Equal(Classes);
            model.Metadata.Mean.Should().Equal(0.3);
            SameWeights(model, path).Should().BeTrue();
        }
    }

    [Fact]
    public void NothingOrAnUnknownSource_IsRefusedNamingIt()
    {
        var nothing = () => ResNetFactory.Load(null);
        nothing.Should().Throw<ArgumentException>().WithMessage("*name the weights*an architecture*");

        string missing = Path.Combine(dir, "missing.safetensors");
        var absent = () => ResNetFactory.Load(missing, "resnet20");
        absent.Should().Throw<FileNotFoundException>().Which.Message.Should()
            .Contain($"Weight file '{missing}' does not exist").And.Contain("neither an http(s)/file URL nor registered pretrained weights");

        var unknownArchitecture = () => ResNetFactory.Load(null, "resnet9000");
        unknownArchitecture.Should().Throw<ArgumentException>().WithMessage("*resnet9000*");
    }

    private static ResNet Trained()
    {
        torch.manual_seed(3);
        var model = ResNetFactory.Create("resnet20", new ResNetOptions { InChannels = 1, NumClasses = 10 });
        model.Metadata = model.Metadata with { InputSize = 28, CropPct = 1, Mean = new[] { 0.25 }, Std = new[] { 0.5 }, ClassNames = Classes };
        return model;
    }

    /// <summary>A seeded resnet20 (1 channel, 10 classes) saved with or without its metadata.</summary>
    private string Saved(string name, bool withMetadata)
    {
        string path = Path.Combine(dir, name);
        using var model = Trained();
        if (withMetadata)
        {
            model.SaveWeights(path);
        }
        else
        {
            new WeightFile(model.GetWeights().Tensors, null, path).Write(path);
        }

        return path;
    }

    private static bool SameWeights(ResNet model, string path)
    {
        var expected = WeightFile.Read(path);
        var actual = model.GetWeights();
        return expected.Tensors.Count == actual.Tensors.Count &&
               expected.Tensors.All(t => actual.Find(t.Name) is { } a && a.Shape.SequenceEqual(t.Shape) && a.Data.Span.SequenceEqual(t.Data.Span));
    }
}
