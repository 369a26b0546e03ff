using System;
using System.IO;
using System.Linq;
using FluentAssertions;
using Xunit;

namespace ResNetSharp.Tests;

/// <summary>torchvision's published ResNet weights are registered with torchvision 0.14's own URLs, hash prefixes, accuracies and transforms.</summary>
public class WeightsRegistryTests
{
    [Fact]
    public void All_TorchvisionEntries_CarryUrlHashPrefixAccuracyAndImageNetMetadata()
    {
        var tv = WeightsRegistry.All.Where(e => e.Source?.StartsWith("torchvision", StringComparison.Ordinal) == true).ToList();
        tv.Should().HaveCount(17, "torchvision 0.14 publishes 17 ResNet / ResNeXt / Wide ResNet ImageNet weights");
        foreach (var e in tv)
        {
            e.Validate();
            e.Url.Scheme.Should().Be("https");
            e.FileName.Should().Contain("-" + e.Sha256 + ".pth", "torchvision names each file after its SHA-256's first 8 hex digits");
            e.HasFullSha256.Should().BeFalse();
            e.Metadata.ClassNames.Should().HaveCount(1000);
        }

        WeightsRegistry.ImageNetClasses[0].Should().Be("tench");
        WeightsRegistry.ImageNetClasses[999].Should().Be("toilet tissue");
    }

    [Theory]
    [InlineData("resnet50.imagenet1k_v2")]
    [InlineData("ResNet50_Weights.IMAGENET1K_V2")]
    [InlineData("ResNet50_Weights.DEFAULT")]
    [InlineData("resnet50")]
    public void Get_AnySpelling_GivesTorchvisionsResNet50V2(string name)
    {
        var e = WeightsRegistry.Get(name);
        e.Name.Should().Be("resnet50.imagenet1k_v2");
        e.Url.ToString().Should().Be("https://download.pytorch.org/models/resnet50-11ad3fa6.pth");
        e.Sha256.Should().Be("11ad3fa6");
        e.Acc1.Should().Be(80.858);
        e.Acc5.Should().Be(95.434);
        e.NumParams.Should().Be(25_557_032);
        e.Metadata.ResizeSize.Should().Be(232, "the V2 recipe evaluates at resize 232, crop 224");
        e.Metadata.InputSize.Should().Be(224);
        e.Metadata.Interpolation.Should().Be(ResizeInterpolation.Bilinear);
    }

    [Fact]
    public void Get_V1Weights_UseResize256()
    {
        var e = WeightsRegistry.Get("resnet18.imagenet1k_v1");
        e.Url.ToString().Should().Be("https://download.pytorch.org/models/resnet18-f37072fd.pth");
        e.Metadata.ResizeSize.Should().Be(256);
        e.Acc1.Should().Be(69.758);
    }

    [Fact]
    public void Register_InvalidEntries_AreRefusedWithTheReason()
    {
        var good = new PretrainedWeights
        {
            Name = "mine.v1",
            Architecture = "resnet18",
            Url = new Uri("https://example.invalid/mine.pth"),
            Sha256 = new string('a', 64),
            Metadata = new ModelMetadata { NumClasses = 10 },
        };
        Action ftp = () => WeightsRegistry.Register(good with { Url = new Uri("ftp://example.invalid/x.pth") });
        ftp.Should().Throw<ArgumentException>().WithMessage("*https, http or file*");
        Action shortHash = () => WeightsRegistry.Register(good with { Sha256 = "abc" });
        shortHash.Should().Throw<ArgumentException>().WithMessage("*8 to 64 hex digits*");
        Action arch = () => WeightsRegistry.Register(good with { Architecture = "resnet9000" });
        arch.Should().Throw<ArgumentException>().WithMessage("*not a registered model*");
        Action taken = () => WeightsRegistry.Register(good with { Name = "resnet50.imagenet1k_v2" });
        taken.Should().Throw<ArgumentException>().WithMessage("*already registered*");
        Action unknown = () => WeightsRegistry.Get("nope");
        unknown.Should().Throw<ArgumentException>().WithMessage("*resnet50.imagenet1k_v2*");
    }

    [Fact]
    public void DefaultDirectory_FollowsResNetSharpCacheThenXdg()
    {
        string? own = Environment.GetEnvironmentVariable("RESNETSHARP_CACHE");
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        try
        {
            Environment.SetEnvironmentVariable("RESNETSHARP_CACHE", null);
            Environment.SetEnvironmentVariable("XDG_CACHE_HOME", "/tmp/xdg-test");
            WeightsCache.DefaultDirectory.Should().Be(Path.Combine("/tmp/xdg-test", "resnetsharp"));
            Environment.SetEnvironmentVariable("RESNETSHARP_CACHE", "/tmp/own-cache");
            WeightsCache.DefaultDirectory.Should().Be("/tmp/own-cache");
        }
        finally
        {
            Environment.SetEnvironmentVariable("RESNETSHARP_CACHE", own);
            Environment.SetEnvironmentVariable("XDG_CACHE_HOME", xdg);
        }
    }
}
