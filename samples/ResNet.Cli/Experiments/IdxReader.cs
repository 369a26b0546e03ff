using System;
using System.IO;
using System.IO.Compression;

namespace ResNetSharp.Cli.Experiments;

/// <summary>
/// A minimal reader of the IDX files MNIST and Fashion-MNIST ship (gzip or plain): magic 0x0801 (labels, uint8) or
/// 0x0803 (images, uint8, N × rows × cols), big-endian sizes. Kept in the CLI for the pointing-game experiment;
/// to be unified with the training branch's dataset reader when both are merged.
/// </summary>
internal static class IdxReader
{
    public static (byte[] Pixels, int Count, int Rows, int Cols) ReadImages(string path)
    {
        using var reader = Open(path, 0x0803, out int count);
        int rows = ReadInt(reader, path), cols = ReadInt(reader, path);
        if (count < 0 || rows < 1 || cols < 1 || (long)count * rows * cols > int.MaxValue)
        {
            throw new InvalidDataException($"{path}: implausible IDX image header {count} × {rows} × {cols}.");
        }

        var pixels = reader.ReadBytes(count * rows * cols);
        if (pixels.Length != count * rows * cols)
        {
            throw new InvalidDataException($"{path}: truncated: {pixels.Length} of {count * rows * cols} pixel bytes.");
        }

        return (pixels, count, rows, cols);
    }

    public static byte[] ReadLabels(string path)
    {
        using var reader = Open(path, 0x0801, out int count);
        var labels = reader.ReadBytes(count);
        if (labels.Length != count)
        {
            throw new InvalidDataException($"{path}: truncated: {labels.Length} of {count} labels.");
        }

        return labels;
    }

    private static BinaryReader Open(string path, int expectedMagic, out int count)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{path} does not exist (Fashion-MNIST: apt-get install dataset-fashion-mnist).", path);
        }

        Stream stream = File.OpenRead(path);
        if (path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase))
        {
            stream = new GZipStream(stream, CompressionMode.Decompress);
        }

        var reader = new BinaryReader(stream);
        int magic = ReadInt(reader, path);
        if (magic != expectedMagic)
        {
            reader.Dispose();
            throw new InvalidDataException($"{path}: IDX magic 0x{magic:X8}, expected 0x{expectedMagic:X8}.");
        }

        count = ReadInt(reader, path);
        return reader;
    }

    private static int ReadInt(BinaryReader reader, string path)
    {
        var b = reader.ReadBytes(4);
        if (b.Length != 4)
        {
            throw new InvalidDataException($"{path}: truncated IDX header.");
        }

        return (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
    }
}
