using System;
using System.Buffers.Binary;
using System.IO;
using System.IO.Compression;
using System.Linq;

namespace ResNetSharp.Training;

/// <summary>
/// Reads the IDX format of LeCun's MNIST files (and Fashion-MNIST's, which copies it): a big-endian header
/// <c>00 00 TT DD</c> (type <c>TT</c> = 0x08 for unsigned bytes, <c>DD</c> dimensions), one 32-bit big-endian size per
/// dimension, then the values row-major. Files may be gzip-compressed (detected from the content, not the name).
/// </summary>
internal static class IdxFile
{
    /// <summary>Reads an unsigned-byte IDX file.</summary>
    /// <param name="path">The file (<c>.gz</c> or not).</param>
    /// <returns>The dimensions (e.g. [60000, 28, 28]) and the values.</returns>
    /// <exception cref="InvalidDataException">Wrong magic, an element type other than unsigned byte, absurd sizes, truncated
    /// or trailing data; the message names the file.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static (int[] Shape, byte[] Data) Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        return Read(stream, path);
    }

    /// <summary>Reads an unsigned-byte IDX stream (gzip or not).</summary>
    /// <param name="stream">The bytes; read to the end, left open.</param>
    /// <param name="source">Name used in messages.</param>
    /// <inheritdoc cref="Read(string)" path="/exception"/>
    public static (int[] Shape, byte[] Data) Read(Stream stream, string source = "stream")
    {
        ArgumentNullException.ThrowIfNull(stream);
        var buffered = new BufferedStream(stream, 1 << 16);
        Span<byte> first = stackalloc byte[2];
        int got = ReadAtMost(buffered, first);
        // Rewind by wrapping: a gzip stream starts 1F 8B, an IDX stream 00 00.
        Stream body = new PrefixStream(first[..got].ToArray(), buffered);
        if (got == 2 && first[0] == 0x1F && first[1] == 0x8B)
        {
            body = new GZipStream(body, CompressionMode.Decompress, leaveOpen: true);
        }

        try
        {
            return ReadIdx(body, source);
        }
        catch (InvalidDataException ex) when (!ex.Message.StartsWith(source, StringComparison.Ordinal))
        {
            // GZipStream's own complaints (corrupt or truncated gzip) do not name the file.
            throw new InvalidDataException($"{source}: {ex.Message}", ex);
        }
    }

    private static (int[] Shape, byte[] Data) ReadIdx(Stream s, string source)
    {
        Span<byte> header = stackalloc byte[4];
        Fill(s, header, source, "the 4-byte magic number");
        if (header[0] != 0 || header[1] != 0)
        {
            throw new InvalidDataException(
                $"{source}: not an IDX file (magic {Convert.ToHexString(header)}; expected 0000TTDD, e.g. 00000803 for MNIST images, 00000801 for labels).");
        }

        if (header[2] != 0x08)
        {
            throw new InvalidDataException(
                $"{source}: IDX element type 0x{header[2]:X2} is not supported (only 0x08, unsigned byte, as in MNIST and Fashion-MNIST).");
        }

        int dims = header[3];
        if (dims < 1 || dims > 4)
        {
            throw new InvalidDataException($"{source}: IDX file declares {dims} dimensions; expected 1 to 4.");
        }

        var shape = new int[dims];
        Span<byte> word = stackalloc byte[4];
        long total = 1;
        for (int d = 0; d < dims; d++)
        {
            Fill(s, word, source, $"the size of dimension {d}");
            uint size = BinaryPrimitives.ReadUInt32BigEndian(word);
            if (size > int.MaxValue)
            {
                throw new InvalidDataException($"{source}: dimension {d} has an absurd size {size}.");
            }

            shape[d] = (int)size;
            total *= size;
            if (total > Array.MaxLength)
            {
                throw new InvalidDataException($"{source}: shape [{string.Join(", ", shape.Take(d + 1))}] is too large for one array.");
            }
        }

        var data = new byte[total];
        Fill(s, data, source, $"{total:N0} values of shape [{string.Join(", ", shape)}]");
        if (ReadAtMost(s, word[..1]) != 0)
        {
            throw new InvalidDataException($"{source}: data continues after the {total:N0} values its header declares (shape [{string.Join(", ", shape)}]).");
        }

        return (shape, data);
    }

    private static void Fill(Stream s, Span<byte> buffer, string source, string what)
    {
        int read = ReadAtMost(s, buffer);
        if (read < buffer.Length)
        {
            throw new InvalidDataException($"{source}: truncated: got {read:N0} of {buffer.Length:N0} bytes while reading {what}.");
        }
    }

    private static int ReadAtMost(Stream s, Span<byte> buffer)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = s.Read(buffer[total..]);
            if (n == 0)
            {
                break;
            }

            total += n;
        }

        return total;
    }

    /// <summary>Replays a few already-read bytes before the rest of a stream (the sniffed magic).</summary>
    private sealed class PrefixStream : Stream
    {
        private readonly byte[] prefix;
        private readonly Stream rest;
        private int position;

        public PrefixStream(byte[] prefix, Stream rest)
        {
            this.prefix = prefix;
            this.rest = rest;
        }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (position < prefix.Length)
            {
                int n = Math.Min(buffer.Length, prefix.Length - position);
                prefix.AsSpan(position, n).CopyTo(buffer);
                position += n;
                return n;
            }

            return rest.Read(buffer);
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
