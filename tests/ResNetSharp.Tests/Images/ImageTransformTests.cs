using System;
using System.Collections.Generic;
using System.Linq;
using FluentAssertions;
using ResNetSharp.Images;
using Xunit;
using Xunit.Abstractions;

namespace ResNetSharp.Tests.Images;

/// <summary>torchvision's eval transform (Resize, CenterCrop, ToTensor, Normalize on a PIL image) reproduced exactly.</summary>
public class ImageTransformTests
{
    private readonly ITestOutputHelper output;

    public ImageTransformTests(ITestOutputHelper output) => this.output = output;

    public static IEnumerable<object[]> AllCases => ImageFixtures.CaseNames.Select(n => new object[] { n });

    [Theory]
    [MemberData(nameof(AllCases))]
    public void Resize_FromPilsDecodedImage_EqualsPilBytes(string name)
    {
        // Isolates the resize: the input is PIL's own decoded image, so any difference is the resampler's.
        var c = ImageFixtures.Get(name);
        var transform = new ImageTransform(c.Metadata());
        var pil = new PixelImage(c.Decoded[1], c.Decoded[0], c.Channels, c.DecodedBytes);
        var resized = transform.Resize(pil);
        (resized.Height, resized.Width).Should().Be((c.Resized[0], c.Resized[1]));
        resized.Pixels.ToArray().Should().Equal(c.ResizedBytes);
    }

    [Theory]
    [MemberData(nameof(AllCases))]
    public void Apply_FromPilsDecodedImage_EqualsTorchvisionTensor(string name)
    {
        var c = ImageFixtures.Get(name);
        var transform = new ImageTransform(c.Metadata());
        var pil = new PixelImage(c.Decoded[1], c.Decoded[0], c.Channels, c.DecodedBytes);
        var actual = transform.Apply(pil);
        actual.Should().Equal(c.Tensor, "crop offsets, ÷255 and (x - mean) / std in float32 are torchvision's, to the bit");
    }

    [Theory]
    [MemberData(nameof(AllCases))]
    public void Apply_FromFile_WithinDecoderToleranceOfTorchvision(string name)
    {
        // End to end (SkiaSharp decoding + this transform) against Image.open + torchvision. Lossless formats: exact.
        var c = ImageFixtures.Get(name);
        var transform = new ImageTransform(c.Metadata());
        var actual = transform.Apply(ImageDecoder.Decode(c.SourcePath, c.Channels));
        var expected = c.Tensor;
        double maxDiff = actual.Zip(expected, (a, b) => Math.Abs(a - b)).Max();
        double scale = 1 / (255 * c.Std.Min());
        output.WriteLine($"{name}: max |ours - torchvision| = {maxDiff:G4} = {maxDiff / scale:F3} grey levels after normalisation");
        if (c.File.EndsWith(".jpg", StringComparison.Ordinal))
        {
            maxDiff.Should().BeLessThanOrEqualTo(ImageDecoderTests.JpegTolerance * scale + 1e-6);
        }
        else
        {
            actual.Should().Equal(expected);
        }
    }

    [Theory]
    [InlineData(451, 300, 384, 256, 80, 16)]     // chelsea: landscape, int(256 · 451 / 300) = 384
    [InlineData(300, 451, 256, 384, 16, 80)]
    [InlineData(640, 427, 383, 256, 80, 16)]     // rocket: int(256 · 640 / 427) = 383, (383 - 224) / 2 = 79.5 → 80 (half to even)
    [InlineData(256, 257, 256, 257, 16, 16)]     // (257 - 224) / 2 = 16.5 → 16
    [InlineData(100, 100, 256, 256, 16, 16)]
    public void Geometry_IsTorchvisionsArithmetic(int w, int h, int rw, int rh, int left, int top)
    {
        var t = new ImageTransform(new ModelMetadata { NumClasses = 1 });
        t.Geometry(w, h).Should().Be(new TransformGeometry(rw, rh, left, top, 224));
    }

    [Fact]
    public void Apply_WrongChannels_ThrowsSayingWhatIsExpected()
    {
        var t = new ImageTransform(new ModelMetadata { NumClasses = 1, InChannels = 1, Mean = new[] { 0.5 }, Std = new[] { 0.5 } });
        var act = () => t.Apply(new PixelImage(2, 2, 3, new byte[12]));
        act.Should().Throw<ArgumentException>().WithMessage("*1-channel*");
    }
}
