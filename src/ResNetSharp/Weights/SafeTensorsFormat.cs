using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;

namespace ResNetSharp.Weights;

/// <summary>
/// The safetensors format, written from its specification: an 8-byte little-endian unsigned header length N, N bytes
/// of UTF-8 JSON <c>{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}</c>,
/// then the data, where offsets are relative to the data's start and the tensors tile it exactly (no gaps, no overlaps).
/// Reading checks every size and offset against the real length of the file before allocating anything sized by it.
/// </summary>
internal static class SafeTensorsFormat
{
    /// <summary>Largest JSON header accepted: 100 MB (real headers are a few hundred bytes per tensor).</summary>
    public const long MaxHeaderBytes = 100L * 1024 * 1024;

    /// <summary>Most dimensions a tensor may declare.</summary>
    public const int MaxRank = 64;

    private const string MetadataKey = "__metadata__";

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Reads a safetensors file.</summary>
    /// <exception cref="InvalidDataException">The file is malformed; the message names the file and the problem.</exception>
    public static WeightFile Read(string path) => WeightStreams.ReadFile(path, (stream, name) => Read(stream, name));

    /// <summary>Reads safetensors bytes from the stream's current position to its end.</summary>
    /// <param name="stream">The data; non-seekable streams are first copied into memory.</param>
    /// <param name="sourceName">Name used in messages. Default "stream".</param>
    /// <exception cref="InvalidDataException">The data is malformed; the message names the source and the problem.</exception>
    public static WeightFile Read(Stream stream, string? sourceName = null) => WeightStreams.ReadStream(stream, sourceName, ReadSeekable);

    /// <summary>Writes tensors as safetensors to <paramref name="path"/>, atomically.</summary>
    /// <param name="path">Target file; replaced only once the new file is complete and flushed.</param>
    /// <param name="tensors">The tensors, written in this order.</param>
    /// <param name="metadata">Optional <c>__metadata__</c> string pairs.</param>
    public static void Write(string path, IEnumerable<WeightTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        var list = tensors.ToList();
        AtomicFile.Write(path, s => Write(s, list, metadata));
    }

    /// <summary>Writes tensors as safetensors to a stream (left open).</summary>
    /// <exception cref="ArgumentException">Two tensors share a name, or a name is the reserved <c>__metadata__</c>.</exception>
    public static void Write(Stream stream, IEnumerable<WeightTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(tensors);
        var list = tensors.ToList();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in list)
        {
            if (t.Name == MetadataKey || !names.Add(t.Name))
            {
                throw new ArgumentException($"Tensor name '{t.Name}' is reserved or used twice.", nameof(tensors));
            }
        }

        using var json = new MemoryStream();
        using (var writer = new Utf8JsonWriter(json))
        {
            writer.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                writer.WriteStartObject(MetadataKey);
                foreach (var (key, value) in metadata)
                {
                    writer.WriteString(key, value);
                }

                writer.WriteEndObject();
            }

            long offset = 0;
            foreach (var t in list)
            {
                writer.WriteStartObject(t.Name);
                writer.WriteString("dtype", t.DType.ToSafeTensorsName());
                writer.WriteStartArray("shape");
                foreach (long d in t.Shape)
                {
                    writer.WriteNumberValue(d);
                }

                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(offset);
                writer.WriteNumberValue(offset + t.ByteCount);
                writer.WriteEndArray();
                writer.WriteEndObject();
                offset += t.ByteCount;
            }

            writer.WriteEndObject();
        }

        // Pad the header with spaces so the data starts 8-byte aligned, as the reference implementation does.
        long headerLength = json.Length;
        int padding = (int)((8 - (headerLength % 8)) % 8);
        Span<byte> lengthBytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(lengthBytes, (ulong)(headerLength + padding));
        stream.Write(lengthBytes);
        json.Position = 0;
        json.CopyTo(stream);
        for (int i = 0; i < padding; i++)
        {
            stream.WriteByte((byte)' ');
        }

        foreach (var t in list)
        {
            stream.Write(t.Data.Span);
        }
    }

    /// <summary>True when the bytes at the stream's position start like a safetensors file (a length, then '{'). The position is restored.</summary>
    internal static bool LooksLikeSafeTensors(Stream stream)
    {
        long start = stream.Position;
        try
        {
            Span<byte> head = stackalloc byte[9];
            int read = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            return read == head.Length && head[8] == (byte)'{';
        }
        finally
        {
            stream.Position = start;
        }
    }

    private sealed record Entry(string Name, WeightDType DType, long[] Shape, long Begin, long End);

    private static WeightFile ReadSeekable(Stream s, string source)
    {
        long available = s.Length - s.Position;
        if (available < 8)
        {
            throw WeightStreams.Bad(source, $"truncated safetensors file: {available} bytes, but the format starts with an 8-byte header length.");
        }

        ulong declared = WeightStreams.ReadUInt64LittleEndian(s, source, "the header length");
        if (declared == 0)
        {
            throw WeightStreams.Bad(source, "safetensors header length is 0; expected a JSON object.");
        }

        if (declared > (ulong)MaxHeaderBytes)
        {
            throw WeightStreams.Bad(source, $"safetensors header length {declared} bytes is absurd (limit {MaxHeaderBytes} bytes); the file is corrupt or not safetensors.");
        }

        long headerLength = (long)declared;
        if (headerLength > available - 8)
        {
            throw WeightStreams.Bad(source,
                $"safetensors header length {headerLength} bytes exceeds the file: only {available - 8} bytes follow the length field (truncated file?).");
        }

        var header = new byte[headerLength];
        WeightStreams.ReadExactly(s, header, source, "the JSON header");
        long dataLength = available - 8 - headerLength;
        var (entries, metadata) = ParseHeader(header, dataLength, source);

        var tensors = new WeightTensor[entries.Count];
        long dataStart = s.Position;
        foreach (var (entry, index) in entries.Select((e, i) => (e, i)).OrderBy(p => p.e.Begin))
        {
            long size = entry.End - entry.Begin;
            if (size > Array.MaxLength)
            {
                throw WeightStreams.Bad(source, $"tensor '{entry.Name}' has {size} bytes; tensors over {Array.MaxLength} bytes are not supported.");
            }

            if (s.Position != dataStart + entry.Begin)
            {
                s.Position = dataStart + entry.Begin;
            }

            var bytes = size == 0 ? Array.Empty<byte>() : new byte[size];
            WeightStreams.ReadExactly(s, bytes, source, $"tensor '{entry.Name}'");
            tensors[index] = new WeightTensor(entry.Name, entry.DType, entry.Shape, bytes);
        }

        return new WeightFile(tensors, metadata, source, WeightFormat.SafeTensors);
    }

    private static (List<Entry> Entries, Dictionary<string, string> Metadata) ParseHeader(byte[] header, long dataLength, string source)
    {
        if (header[0] != (byte)'{')
        {
            throw WeightStreams.Bad(source, $"safetensors header does not start with '{{' (first byte 0x{header[0]:X2}); expected a JSON object.");
        }

        try
        {
            _ = StrictUtf8.GetCharCount(header);
        }
        catch (DecoderFallbackException ex)
        {
            throw WeightStreams.Bad(source, $"safetensors header is not valid UTF-8 (at byte {ex.Index}).", ex);
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (Exception ex) when (ex is JsonException or ArgumentException or DecoderFallbackException)
        {
            throw WeightStreams.Bad(source, $"safetensors header is not valid JSON: {ex.Message}", ex);
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw WeightStreams.Bad(source, $"safetensors header must be a JSON object, got {doc.RootElement.ValueKind}.");
            }

            var entries = new List<Entry>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                string name = property.Name;
                if (!seen.Add(name))
                {
                    throw WeightStreams.Bad(source, $"safetensors header names '{name}' twice.");
                }

                if (name == MetadataKey)
                {
                    ReadMetadata(property.Value, metadata, source);
                    continue;
                }

                entries.Add(ParseEntry(name, property.Value, dataLength, source));
            }

            CheckCoverage(entries, dataLength, source);
            return (entries, metadata);
        }
    }

    private static void ReadMetadata(JsonElement value, Dictionary<string, string> metadata, string source)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw WeightStreams.Bad(source, $"safetensors '{MetadataKey}' must be an object of strings, got {value.ValueKind}.");
        }

        foreach (var item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
            {
                throw WeightStreams.Bad(source, $"safetensors '{MetadataKey}' value for '{item.Name}' must be a string, got {item.Value.ValueKind}.");
            }

            metadata[item.Name] = item.Value.GetString()!;
        }
    }

    private static Entry ParseEntry(string name, JsonElement value, long dataLength, string source)
    {
        if (name.Length == 0)
        {
            throw WeightStreams.Bad(source, "safetensors header has a tensor with an empty name.");
        }

        if (value.ValueKind != JsonValueKind.Object)
        {
            throw WeightStreams.Bad(source, $"tensor '{name}': expected an object with dtype, shape and data_offsets, got {value.ValueKind}.");
        }

        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
        {
            throw WeightStreams.Bad(source, $"tensor '{name}': missing or non-string 'dtype'.");
        }

        string dtypeName = dtypeElement.GetString()!;
        if (!WeightDTypes.TryParseSafeTensorsName(dtypeName, out var dtype))
        {
            throw WeightStreams.Bad(source,
                $"tensor '{name}': unknown or unsupported dtype '{dtypeName}' (supported: {string.Join(", ", WeightDTypes.SafeTensorsNames)}).");
        }

        long[] shape = ReadIntegers(value, "shape", name, source, maxCount: MaxRank);
        foreach (long d in shape)
        {
            if (d < 0)
            {
                throw WeightStreams.Bad(source, $"tensor '{name}': negative dimension {d} in shape [{string.Join(", ", shape)}].");
            }
        }

        long[] offsets = ReadIntegers(value, "data_offsets", name, source, maxCount: 2);
        if (offsets.Length != 2)
        {
            throw WeightStreams.Bad(source, $"tensor '{name}': 'data_offsets' must be [begin, end], got {offsets.Length} numbers.");
        }

        long begin = offsets[0];
        long end = offsets[1];
        if (begin < 0 || end < begin)
        {
            throw WeightStreams.Bad(source, $"tensor '{name}': invalid data_offsets [{begin}, {end}] (need 0 ≤ begin ≤ end).");
        }

        if (end > dataLength)
        {
            throw WeightStreams.Bad(source,
                $"tensor '{name}': data_offsets [{begin}, {end}] run past the end of the data ({dataLength} bytes; truncated file?).");
        }

        long? expected = WeightTensor.ByteSize(dtype, shape);
        if (expected is null || expected.Value != end - begin)
        {
            throw WeightStreams.Bad(source,
                $"tensor '{name}': {dtypeName} shape [{string.Join(", ", shape)}] needs {(expected is null ? "more than 2^63" : expected.ToString())} bytes, " +
                $"but data_offsets [{begin}, {end}] hold {end - begin}.");
        }

        return new Entry(name, dtype, shape, begin, end);
    }

    private static long[] ReadIntegers(JsonElement value, string field, string name, string source, int maxCount)
    {
        if (!value.TryGetProperty(field, out var array) || array.ValueKind != JsonValueKind.Array)
        {
            throw WeightStreams.Bad(source, $"tensor '{name}': missing or non-array '{field}'.");
        }

        int count = array.GetArrayLength();
        if (count > maxCount)
        {
            throw WeightStreams.Bad(source, $"tensor '{name}': '{field}' has {count} entries; at most {maxCount} allowed.");
        }

        var result = new long[count];
        int i = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out long v))
            {
                throw WeightStreams.Bad(source, $"tensor '{name}': '{field}' entry {item.GetRawText()} is not an integer.");
            }

            result[i++] = v;
        }

        return result;
    }

    private static void CheckCoverage(List<Entry> entries, long dataLength, string source)
    {
        // The specification requires the tensors to tile the data exactly: no holes, no overlaps, nothing left over.
        long position = 0;
        Entry? previous = null;
        foreach (var e in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (e.Begin < position)
            {
                throw WeightStreams.Bad(source,
                    $"tensors '{previous!.Name}' [{previous.Begin}, {previous.End}] and '{e.Name}' [{e.Begin}, {e.End}] overlap.");
            }

            if (e.Begin > position)
            {
                throw WeightStreams.Bad(source, $"{e.Begin - position} bytes of data before tensor '{e.Name}' belong to no tensor (gap at offset {position}).");
            }

            position = e.End;
            previous = e;
        }

        if (position != dataLength)
        {
            throw WeightStreams.Bad(source, $"the data section has {dataLength} bytes but the tensors cover {position}; {dataLength - position} trailing bytes belong to no tensor.");
        }
    }
}
