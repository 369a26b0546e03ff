using System;
using System.Buffers.Binary;
using System.IO;
using System.IO.Compression;
using System.Linq;
using FluentAssertions;
using ResNetSharp.Training;
using Xunit;

namespace ResNetSharp.Tests.Training;

/// <summary>IDX parsing against files written here byte by byte from the format's description (LeCun's MNIST page).</summary>
public sealed class IdxFileTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("idx-tests").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    /// <summary>An IDX file: 00 00 type dims, big-endian sizes, the values.</summary>
    internal static byte[] Idx(int[] shape, byte[] values, byte type = 0x08)
    {
        var bytes = new byte[4 + 4 * shape.Length + values.Length];
        bytes[2] = type;
        bytes[3] = (byte)shape.Length;
        for (int d = 0; d < shape.Length; d++)
        {
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * d), shape[d]);
        }

        values.CopyTo(bytes, 4 + 4 * shape.Length);
        return bytes;
    }

    internal static byte[] Gzip(byte[] data)
    {
        using var memory = new MemoryStream();
        using (var gz = new GZipStream(memory, CompressionLevel.Fastest, leaveOpen: true))
        {
            gz.Write(data);
        }

        return memory.ToArray();
    }

    private string Write(string name, byte[] bytes)
    {
        string path = Path.Combine(dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Read_HandMadeImages_ShapeAndValuesInOrder(bool gzip)
    {
        var values = Enumerable.Range(0, 2 * 3 * 4).Select(i => (byte)(i * 7)).ToArray();
        var raw = Idx(new[] { 2, 3, 4 }, values);
        string path = Write(gzip ? "images.gz" : "images", gzip ? Gzip(raw) : raw);

        var (shape, data) = IdxFile.Read(path);

        shape.Should().Equal(2, 3, 4);
        data.Should().Equal(values);
    }

    [Fact]
    public void Read_WrongMagic_ThrowsNamingTheFile()
    {
        var raw = Idx(new[] { 3 }, new byte[] { 1, 2, 3 });
        raw[0] = 0x50; // e.g. a PNG or text file
        string path = Write("bad-magic", raw);

        var act = () => IdxFile.Read(path);

        act.Should().Throw<InvalidDataException>().WithMessage($"{path}: not an IDX file*");
    }

    [Fact]
    public void Read_FloatElementType_ThrowsSayingWhatIsSupported()
    {
        string path = Write("floats", Idx(new[] { 1 }, new byte[4], type: 0x0D));

        var act = () => IdxFile.Read(path);

        act.Should().Throw<InvalidDataException>().WithMessage($"{path}: IDX element type 0x0D is not supported*unsigned byte*");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Read_TruncatedValues_ThrowsNamingTheFile(bool gzip)
    {
        var raw = Idx(new[] { 10, 28, 28 }, new byte[10 * 28 * 28])[..^100];
        string path = Write("truncated", gzip ? Gzip(raw) : raw);

        var act = () => IdxFile.Read(path);

        act.Should().Throw<InvalidDataException>().WithMessage($"{path}: truncated*7,840 values of shape [10, 28, 28]*");
    }

    [Fact]
    public void Read_TruncatedGzip_ThrowsNamingTheFile()
    {
        var gz = Gzip(Idx(new[] { 1000 }, Enumerable.Range(0, 1000).Select(i => (byte)i).ToArray()));
        string path = Write("cut.gz", gz[..(gz.Length / 2)]);

        var act = () => IdxFile.Read(path);

        act.Should().Throw<InvalidDataException>().Which.Message.Should().StartWith(path + ":");
    }

    [Fact]
    public void Read_TrailingData_Throws()
    {
        var raw = Idx(new[] { 2 }, new byte[] { 1, 2 }).Concat(new byte[] { 9 }).ToArray();
        string path = Write("trailing", raw);

        var act = () => IdxFile.Read(path);

        act.Should().Throw<InvalidDataException>().WithMessage($"{path}: data continues after the 2 values*");
    }

    [Fact]
    public void FromIdx_CountMismatch_ThrowsNamingBothFiles()
    {
        string images = Write("imgs", Idx(new[] { 3, 2, 2 }, new byte[12]));
        string labels = Write("lbls", Idx(new[] { 2 }, new byte[] { 0, 1 }));

        var act = () => InMemoryImageDataset.FromIdx(images, labels);

        act.Should().Throw<InvalidDataException>().WithMessage($"{labels}: 2 labels for 3 images in {images}*");
    }

    [Fact]
    public void FromIdx_LabelWithoutClass_Throws()
    {
        string images = Write("imgs", Idx(new[] { 1, 2, 2 }, new byte[4]));
        string labels = Write("lbls", Idx(new[] { 1 }, new byte[] { 3 }));

        var act = () => InMemoryImageDataset.FromIdx(images, labels, new[] { "a", "b" });

        act.Should().Throw<InvalidDataException>().WithMessage($"{labels}: label 3 has no class name*");
    }

    [Fact]
    public void FromIdx_HandMadePair_PixelsScaledToUnitRange()
    {
        string images = Write("imgs.gz", Gzip(Idx(new[] { 2, 1, 2 }, new byte[] { 0, 255, 51, 102 })));
        string labels = Write("lbls", Idx(new[] { 2 }, new byte[] { 1, 0 }));

        var set = InMemoryImageDataset.FromIdx(images, labels, new[] { "zero", "one" });
        var pixels = new float[2];
        set.ReadImage(1, pixels);

        (set.Count, set.Channels, set.Height, set.Width).Should().Be((2, 1, 1, 2));
        set.GetLabel(0).Should().Be(1);
        pixels.Should().Equal(0.2f, 0.4f);
    }
}
