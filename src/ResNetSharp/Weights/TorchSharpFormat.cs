using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using static TorchSharp.torch;

namespace ResNetSharp.Weights;

/// <summary>
/// TorchSharp's own state-dict format, as written by <c>Module.save</c> and read by <c>Module.load</c>: an unsigned
/// LEB128 tensor count, then per tensor a LEB128-length-prefixed UTF-8 name, the LEB128 element type (TorchSharp's
/// <see cref="ScalarType"/> code), the LEB128 rank and dimensions, and the raw little-endian data. Reading it here
/// gives the same checks and strict loading as safetensors instead of TorchSharp's own partial-load behaviour.
/// </summary>
internal static class TorchSharpFormat
{
    private const int MaxNameBytes = 64 * 1024;

    /// <summary>Reads a TorchSharp weight file.</summary>
    /// <exception cref="InvalidDataException">The file is malformed; the message names the file and the problem.</exception>
    public static WeightFile Read(string path) => WeightStreams.ReadFile(path, (stream, name) => Read(stream, name));

    /// <summary>Reads TorchSharp-format bytes from the stream's position to its end.</summary>
    /// <exception cref="InvalidDataException">The data is malformed; the message names the source and the problem.</exception>
    public static WeightFile Read(Stream stream, string? sourceName = null) => WeightStreams.ReadStream(stream, sourceName, ReadSeekable);

    /// <summary>Writes tensors in TorchSharp's format (readable by <c>Module.load</c>) to a stream (left open).</summary>
    public static void Write(Stream stream, IEnumerable<WeightTensor> tensors)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(tensors);
        var list = tensors.ToList();
        WriteLeb(stream, (ulong)list.Count);
        foreach (var t in list)
        {
            byte[] name = Encoding.UTF8.GetBytes(t.Name);
            WriteLeb(stream, (ulong)name.Length);
            stream.Write(name);
            WriteLeb(stream, (ulong)(int)t.DType.ToScalarType());
            WriteLeb(stream, (ulong)t.Shape.Count);
            foreach (long d in t.Shape)
            {
                WriteLeb(stream, (ulong)d);
            }

            stream.Write(t.Data.Span);
        }
    }

    /// <summary>
    /// True when the bytes at the position start like a TorchSharp file: a tensor count, then (unless the count is 0
    /// and nothing follows) a first record with a printable UTF-8 name of at most 1 KB, a known element type and a rank
    /// of at most 8 whose data fits in the file. The format has no magic number, so this is what tells a weight file
    /// from, say, a text file. The position is restored.
    /// </summary>
    internal static bool LooksLikeTorchSharp(Stream s)
    {
        long start = s.Position;
        try
        {
            long end = s.Length;
            if (!TryLeb(s, out ulong count) || count > (ulong)(end - s.Position))
            {
                return false;
            }

            if (count == 0)
            {
                return s.Position == end;
            }

            if (!TryLeb(s, out ulong nameLength) || nameLength == 0 || nameLength > 1024 || nameLength > (ulong)(end - s.Position))
            {
                return false;
            }

            var name = new byte[nameLength];
            if (s.ReadAtLeast(name, name.Length, throwOnEndOfStream: false) != name.Length || !IsPrintableUtf8(name))
            {
                return false;
            }

            if (!TryLeb(s, out ulong code) || code > int.MaxValue || !WeightDTypes.TryFromScalarType((ScalarType)(int)code, out var dtype) ||
                !TryLeb(s, out ulong rank) || rank > 8)
            {
                return false;
            }

            var shape = new long[rank];
            for (int d = 0; d < shape.Length; d++)
            {
                if (!TryLeb(s, out ulong dim) || dim > long.MaxValue)
                {
                    return false;
                }

                shape[d] = (long)dim;
            }

            return WeightTensor.ByteSize(dtype, shape) is { } size && size <= end - s.Position;
        }
        finally
        {
            s.Position = start;
        }
    }

    private static bool TryLeb(Stream s, out ulong value)
    {
        value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            int b = s.ReadByte();
            if (b < 0)
            {
                return false;
            }

            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Valid UTF-8 without control characters: what a state-dict key (<c>layer1.0.conv1.weight</c>) looks like.</summary>
    private static bool IsPrintableUtf8(byte[] bytes)
    {
        try
        {
            string text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
            return !text.Any(char.IsControl);
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }

    private static WeightFile ReadSeekable(Stream s, string source)
    {
        long end = s.Length;
        long Remaining() => end - s.Position;

        ulong count = ReadLeb(s, source, "the tensor count");
        // Each entry takes at least 3 bytes (name length, type, rank), so a count above that is a lie about the file.
        if (count > (ulong)Remaining() / 3)
        {
            throw WeightStreams.Bad(source, $"TorchSharp weight file declares {count} tensors but only {Remaining()} bytes follow (truncated or not a TorchSharp file?).");
        }

        var tensors = new List<WeightTensor>((int)Math.Min(count, 4096));
        var names = new HashSet<string>(StringComparer.Ordinal);
        var strict = new UTF8Encoding(false, throwOnInvalidBytes: true);
        for (ulong i = 0; i < count; i++)
        {
            ulong nameLength = ReadLeb(s, source, $"the name length of tensor #{i}");
            if (nameLength == 0 || nameLength > MaxNameBytes || nameLength > (ulong)Remaining())
            {
                throw WeightStreams.Bad(source, $"tensor #{i}: name length {nameLength} is invalid ({Remaining()} bytes remain, limit {MaxNameBytes}).");
            }

            var nameBytes = new byte[nameLength];
            WeightStreams.ReadExactly(s, nameBytes, source, $"the name of tensor #{i}");
            string name;
            try
            {
                name = strict.GetString(nameBytes);
            }
            catch (DecoderFallbackException ex)
            {
                throw WeightStreams.Bad(source, $"tensor #{i}: name is not valid UTF-8.", ex);
            }

            if (name.Any(char.IsControl))
            {
                throw WeightStreams.Bad(source, $"tensor #{i}: name contains control characters (not a TorchSharp weight file?).");
            }

            if (!names.Add(name))
            {
                throw WeightStreams.Bad(source, $"tensor '{name}' appears twice.");
            }

            ulong code = ReadLeb(s, source, $"the element type of '{name}'");
            if (code > int.MaxValue || !WeightDTypes.TryFromScalarType((ScalarType)(int)code, out var dtype))
            {
                throw WeightStreams.Bad(source, $"tensor '{name}': unknown or unsupported element type code {code}.");
            }

            ulong rank = ReadLeb(s, source, $"the rank of '{name}'");
            if (rank > SafeTensorsFormat.MaxRank)
            {
                throw WeightStreams.Bad(source, $"tensor '{name}': rank {rank} is absurd (limit {SafeTensorsFormat.MaxRank}).");
            }

            var shape = new long[rank];
            for (int d = 0; d < shape.Length; d++)
            {
                ulong dim = ReadLeb(s, source, $"dimension {d} of '{name}'");
                if (dim > long.MaxValue)
                {
                    throw WeightStreams.Bad(source, $"tensor '{name}': dimension {d} = {dim} is out of range.");
                }

                shape[d] = (long)dim;
            }

            long? size = WeightTensor.ByteSize(dtype, shape);
            if (size is null || size.Value > Remaining())
            {
                throw WeightStreams.Bad(source,
                    $"tensor '{name}': {dtype} [{string.Join(", ", shape)}] needs {(size is null ? "more than 2^63" : size.ToString())} bytes " +
                    $"but only {Remaining()} remain (truncated file?).");
            }

            if (size.Value > Array.MaxLength)
            {
                throw WeightStreams.Bad(source, $"tensor '{name}' has {size} bytes; tensors over {Array.MaxLength} bytes are not supported.");
            }

            var data = size.Value == 0 ? Array.Empty<byte>() : new byte[size.Value];
            WeightStreams.ReadExactly(s, data, source, $"the data of '{name}'");
            tensors.Add(new WeightTensor(name, dtype, shape, data));
        }

        if (Remaining() != 0)
        {
            throw WeightStreams.Bad(source, $"{Remaining()} trailing bytes after the last of {count} tensors (corrupt or not a TorchSharp weight file).");
        }

        return new WeightFile(tensors, null, source, WeightFormat.TorchSharp);
    }

    private static ulong ReadLeb(Stream s, string source, string what)
    {
        ulong value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            int b = s.ReadByte();
            if (b < 0)
            {
                throw WeightStreams.Bad(source, $"unexpected end of data while reading {what} (truncated file?).");
            }

            if (shift == 63 && (b & 0x7E) != 0)
            {
                break; // bits beyond 64
            }

            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return value;
            }
        }

        throw WeightStreams.Bad(source, $"{what} is not a valid LEB128 number (more than 64 bits).");
    }

    private static void WriteLeb(Stream s, ulong value)
    {
        do
        {
            byte b = (byte)(value & 0x7F);
            value >>= 7;
            if (value != 0)
            {
                b |= 0x80;
            }

            s.WriteByte(b);
        }
        while (value != 0);
    }
}
