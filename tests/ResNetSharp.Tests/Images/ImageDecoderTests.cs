using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using FluentAssertions;
using ResNetSharp.Images;
using SkiaSharp;
using Xunit;
using Xunit.Abstractions;

namespace ResNetSharp.Tests.Images;

/// <summary>Decoding against PIL's <c>Image.open(f).convert(mode)</c>, and hostile files refused cleanly.</summary>
public class ImageDecoderTests
{
    private readonly ITestOutputHelper output;

    public ImageDecoderTests(ITestOutputHelper output) => this.output = output;

    public static IEnumerable<object[]> LosslessCases => ImageFixtures.Names(c => !c.File.EndsWith(".jpg", StringComparison.Ordinal));

    public static IEnumerable<object[]> JpegCases => ImageFixtures.Names(c => c.File.EndsWith(".jpg", StringComparison.Ordinal));

    [Theory]
    [MemberData(nameof(LosslessCases))]
    public void Decode_LosslessFiles_EqualPilBytes(string name)
    {
        // PNG (RGB, grey, RGBA, palette), WebP (lossless and lossy: both libwebp), BMP: bit-identical to PIL.
        var c = ImageFixtures.Get(name);
        var image = ImageDecoder.Decode(c.SourcePath, c.Channels);
        (image.Height, image.Width).Should().Be((c.Decoded[0], c.Decoded[1]));
        image.Pixels.ToArray().Should().Equal(c.DecodedBytes);
    }

    [Theory]
    [MemberData(nameof(JpegCases))]
    public void Decode_Jpeg_EqualsPilBytes(string name)
    {
        // SkiaSharp 2.88.9's bundled libjpeg-turbo and Debian's (under Pillow 9.4) both run the integer IDCT with fancy
        // upsampling: measured identical on every JPEG here (photo with an ICC profile, 4:2:0 files written by PIL).
        var c = ImageFixtures.Get(name);
        var image = ImageDecoder.Decode(c.SourcePath, c.Channels);
        (image.Height, image.Width).Should().Be((c.Decoded[0], c.Decoded[1]));
        var expected = c.DecodedBytes;
        var actual = image.Pixels.ToArray();
        int maxDiff = expected.Zip(actual, (a, b) => Math.Abs(a - b)).Max();
        double meanDiff = expected.Zip(actual, (a, b) => Math.Abs(a - b)).Average();
        output.WriteLine($"{name}: max |skia - PIL| = {maxDiff}, mean {meanDiff:F4} grey levels");
        maxDiff.Should().BeLessThanOrEqualTo(JpegTolerance);
    }

    /// <summary>Largest per-byte difference allowed between SkiaSharp's and PIL's JPEG decoding (measured: 0).</summary>
    internal const int JpegTolerance = 0;

    [Theory]
    [InlineData("chelsea_exif6_jpg")]
    [InlineData("chelsea_exif3_jpg")]
    [InlineData("chelsea_exif8_jpg")]
    public void Decode_ExifRotatedJpeg_IsUpright(string name)
    {
        // The file is stored sideways (or upside down); displayed it is chelsea.png. PIL's oracle applied exif_transpose.
        var c = ImageFixtures.Get(name);
        var upright = ImageDecoder.Decode(ImageFixtures.Get("chelsea_png").SourcePath);
        var decoded = ImageDecoder.Decode(c.SourcePath);
        (decoded.Width, decoded.Height).Should().Be((upright.Width, upright.Height));
        double meanDiff = decoded.Pixels.ToArray().Zip(upright.Pixels.ToArray(), (a, b) => Math.Abs(a - b)).Average();
        meanDiff.Should().BeLessThan(3, "the decoded JPEG shows the same cat, the same way up");

        var stored = ImageDecoder.Decode(c.SourcePath, options: new ImageDecodeOptions { ApplyExifOrientation = false });
        double storedDiff = name == "chelsea_exif3_jpg"
            ? stored.Pixels.ToArray().Zip(upright.Pixels.ToArray(), (a, b) => Math.Abs(a - b)).Average()
            : double.PositiveInfinity;
        if (name == "chelsea_exif3_jpg")
        {
            storedDiff.Should().BeGreaterThan(20, "without the EXIF orientation the cat is upside down");
        }
        else
        {
            (stored.Width, stored.Height).Should().Be((upright.Height, upright.Width));
        }

        ImageDecoder.Probe(c.SourcePath).Should().Be(("jpeg", upright.Width, upright.Height));
    }

    [Fact]
    public void Decode_Alpha_IsDroppedNotComposited()
    {
        // PIL's convert("RGB") discards alpha and keeps the colour under it, even where alpha is 0.
        var withAlpha = ImageDecoder.Decode(ImageFixtures.Get("chelsea_alpha_png").SourcePath);
        var opaque = ImageDecoder.Decode(ImageFixtures.Get("chelsea_png").SourcePath);
        withAlpha.Pixels.ToArray().Should().Equal(opaque.Pixels.ToArray());
    }

    [Fact]
    public void Decode_Orientations_MatchPilTransposes()
    {
        // A 3 × 2 image with distinct pixels; expected layouts written by hand from the EXIF specification.
        byte[] rgba = Enumerable.Range(0, 6).SelectMany(i => new byte[] { (byte)i, 0, 0, 255 }).ToArray(); // row 0: 0 1 2, row 1: 3 4 5
        int[] Red(SKEncodedOrigin o, out int w, out int h)
        {
            var r = ImageDecoder.Orient(rgba, 3, 2, o, out w, out h);
            return Enumerable.Range(0, w * h).Select(i => (int)r[4 * i]).ToArray();
        }

        Red(SKEncodedOrigin.TopRight, out _, out _).Should().Equal(2, 1, 0, 5, 4, 3);
        Red(SKEncodedOrigin.BottomRight, out _, out _).Should().Equal(5, 4, 3, 2, 1, 0);
        Red(SKEncodedOrigin.BottomLeft, out _, out _).Should().Equal(3, 4, 5, 0, 1, 2);
        Red(SKEncodedOrigin.LeftTop, out int w5, out _).Should().Equal(0, 3, 1, 4, 2, 5);
        w5.Should().Be(2);
        Red(SKEncodedOrigin.RightTop, out _, out _).Should().Equal(3, 0, 4, 1, 5, 2);      // rotated 90° clockwise
        Red(SKEncodedOrigin.RightBottom, out _, out _).Should().Equal(5, 2, 4, 1, 3, 0);
        Red(SKEncodedOrigin.LeftBottom, out _, out _).Should().Equal(2, 5, 1, 4, 0, 3);    // rotated 90° anticlockwise
    }

    [Fact]
    public void Decode_GreyFromRgb_IsPilsLuma()
    {
        using var bitmap = new SKBitmap(new SKImageInfo(2, 1, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        bitmap.SetPixel(0, 0, new SKColor(255, 0, 0));
        bitmap.SetPixel(1, 0, new SKColor(10, 200, 30));
        var grey = ImageDecoder.FromBitmap(bitmap, channels: 1);
        // PIL: L = (19595 R + 38470 G + 7471 B + 32768) >> 16.
        grey.Pixels.ToArray().Should().Equal((byte)76, (byte)((10 * 19595 + 200 * 38470 + 30 * 7471 + 32768) >> 16));
        ImageDecoder.FromBitmap(bitmap).Pixels.ToArray().Should().Equal(255, 0, 0, 10, 200, 30);
    }

    [Fact]
    public void Decode_EmptyFile_ThrowsNamingTheFile()
    {
        string path = TempFile("empty.png", Array.Empty<byte>());
        var act = () => ImageDecoder.Decode(path);
        act.Should().Throw<InvalidDataException>().Where(e => e.Message.Contains(path) && e.Message.Contains("empty"));
    }

    [Fact]
    public void Decode_NotAnImage_ThrowsNamingTheFile()
    {
        string path = TempFile("notes.jpg", Encoding.UTF8.GetBytes("root:x:0:0:root:/root:/bin/bash\n"));
        var act = () => ImageDecoder.Decode(path);
        act.Should().Throw<InvalidDataException>().Where(e => e.Message.Contains(path) && e.Message.Contains("not an image"));
    }

    [Theory]
    [InlineData("chelsea_png", 0.5)]
    [InlineData("chelsea_png", 0.05)]
    [InlineData("rocket_jpg", 0.5)]
    [InlineData("chelsea_lossy_webp", 0.5)]
    [InlineData("chelsea_bmp", 0.5)]
    public void Decode_TruncatedFile_Throws(string name, double keep)
    {
        byte[] all = File.ReadAllBytes(ImageFixtures.Get(name).SourcePath);
        string path = TempFile("cut_" + ImageFixtures.Get(name).File, all.AsSpan(0, (int)(all.Length * keep)).ToArray());
        var act = () => ImageDecoder.Decode(path);
        act.Should().Throw<InvalidDataException>().Where(e => e.Message.Contains(path)).Which.Message.Should().MatchRegex("truncated|corrupt|not an image");
    }

    [Fact]
    public void Decode_OverEncodedLimit_Throws()
    {
        byte[] all = File.ReadAllBytes(ImageFixtures.Get("chelsea_png").SourcePath);
        var options = new ImageDecodeOptions { MaxEncodedBytes = 1000 };
        var fromStream = () => ImageDecoder.Decode(new NonSeekable(all), "upload", options: options);
        fromStream.Should().Throw<InvalidDataException>().Where(e => e.Message.Contains("MaxEncodedBytes") && e.Message.StartsWith("upload: "));
        var small = new ImageDecodeOptions { MaxPixels = 1000 };
        var tooMany = () => ImageDecoder.Decode(all, "cat", options: small);
        tooMany.Should().Throw<InvalidDataException>().Where(e => e.Message.Contains("135,300"));
    }

    [Fact]
    public void Decode_BadChannels_Throws()
    {
        var act = () => ImageDecoder.Decode(ImageFixtures.Get("chelsea_png").SourcePath, channels: 4);
        act.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*3 (RGB) or 1 (grey)*");
    }

    internal static string TempFile(string name, byte[] bytes)
    {
        string dir = Directory.CreateTempSubdirectory("rns-img").FullName;
        string path = Path.Combine(dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    internal static byte[] Png(int width, int height)
    {
        var ms = new MemoryStream();
        ms.Write(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A });
        void Chunk(string type, byte[] data)
        {
            var lengthBytes = BitConverter.GetBytes(data.Length);
            Array.Reverse(lengthBytes);
            ms.Write(lengthBytes);
            byte[] typed = Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
            ms.Write(typed);
            var crc = BitConverter.GetBytes(Crc32(typed));
            Array.Reverse(crc);
            ms.Write(crc);
        }

        byte[] Be(int v) => new[] { (byte)(v >> 24), (byte)(v >> 16), (byte)(v >> 8), (byte)v };
        Chunk("IHDR", Be(width).Concat(Be(height)).Concat(new byte[] { 8, 2, 0, 0, 0 }).ToArray());
        Chunk("IDAT", new byte[] { 0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01 });
        Chunk("IEND", Array.Empty<byte>());
        return ms.ToArray();
    }

    internal static byte[] Bmp(int width, int height)
    {
        var b = new byte[54];
        b[0] = (byte)'B';
        b[1] = (byte)'M';
        BitConverter.GetBytes(54 + 16).CopyTo(b, 2);
        BitConverter.GetBytes(54).CopyTo(b, 10);
        BitConverter.GetBytes(40).CopyTo(b, 14);
        BitConverter.GetBytes(width).CopyTo(b, 18);
        BitConverter.GetBytes(height).CopyTo(b, 22);
        BitConverter.GetBytes((short)1).CopyTo(b, 26);
        BitConverter.GetBytes((short)24).CopyTo(b, 28);
        return b.Concat(new byte[16]).ToArray();
    }

    private static uint Crc32(byte[] data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte d in data)
        {
            crc ^= d;
            for (int k = 0; k < 8; k++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
            }
        }

        return ~crc;
    }

    private sealed class NonSeekable : MemoryStream
    {
        public NonSeekable(byte[] data)
            : base(data)
        {
        }

        public override bool CanSeek => false;
    }
}

/// <summary>A decompression bomb is refused before anything its size is allocated; alone, so the RSS reading is this test's.</summary>
[Collection(ProcessMemoryCollection.Name)]
public class ImageDecoderBombTests
{
    [Fact]
    public void Decode_50000x50000Header_ThrowsBeforeAllocating()
    {
        // A valid PNG signature and IHDR claiming 50,000 × 50,000 RGB (7.5 GB of pixels) and one empty IDAT.
        byte[] png = ImageDecoderTests.Png(50_000, 50_000);
        string path = ImageDecoderTests.TempFile("bomb.png", png);
        long before = GC.GetAllocatedBytesForCurrentThread();
        double rssBefore = MemoryTests.RssMiB();
        var act = () => ImageDecoder.Decode(path);
        act.Should().Throw<InvalidDataException>().Where(e => e.Message.Contains(path) && e.Message.Contains("50,000×50,000") && e.Message.Contains("MaxPixels"));
        (GC.GetAllocatedBytesForCurrentThread() - before).Should().BeLessThan(1 << 20, "nothing the size of the image was allocated");
        (MemoryTests.RssMiB() - rssBefore).Should().BeLessThan(64);

        // The same from a stream and a buffer, and a BMP header with the same claim.
        var fromBuffer = () => ImageDecoder.Decode(png, "bomb-buffer");
        fromBuffer.Should().Throw<InvalidDataException>().Where(e => e.Message.StartsWith("bomb-buffer: "));
        var bmp = () => ImageDecoder.Decode(new MemoryStream(ImageDecoderTests.Bmp(50_000, 50_000)), "bomb.bmp");
        bmp.Should().Throw<InvalidDataException>().Where(e => e.Message.Contains("MaxPixels"));
    }
}
