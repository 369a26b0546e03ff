using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Text;

namespace ResNetSharp.Weights;

/// <summary>
/// PyTorch's <c>torch.save</c> files (<c>.pth</c>, <c>.pt</c>), read without running any code: the zip format that
/// torch has written since 1.6 (and torchvision publishes its weights in: <c>NAME/data.pkl</c> plus one
/// <c>NAME/data/KEY</c> entry per storage) and the legacy pre-1.6 stream. The pickle is read by a restricted reader
/// that only materialises tensors and plain containers; a pickle naming any other global (<c>os.system</c>, a
/// training script's class, <c>argparse.Namespace</c>) is refused with <see cref="InvalidDataException"/>.
/// </summary>
/// <remarks>
/// <para>The file may hold a state dict (a dict of tensors) or a training checkpoint dict whose state dict sits under
/// <c>state_dict</c> or <c>model</c> (as torchvision's reference scripts and many others save); the checkpoint's other
/// plain entries (epoch, accuracy) become <see cref="WeightFile.Metadata"/> pairs prefixed <c>checkpoint.</c>.</para>
/// <para>Every size in the file (entry lengths, storage element counts, tensor views) is checked against the bytes that
/// are really there before anything is allocated; the zip's CRC-32 of each entry is verified as it is read.</para>
/// </remarks>
internal static class PyTorchFormat
{
    /// <summary>Largest pickle (<c>data.pkl</c>) accepted: 64 MB (torchvision's ResNet-152 pickle is about 60 KB).</summary>
    public const long MaxPickleBytes = 64L * 1024 * 1024;

    /// <summary>The keys under which a checkpoint dict may hold the state dict, tried in this order.</summary>
    public static IReadOnlyList<string> StateDictKeys { get; } = new[] { "state_dict", "model" };

    private static readonly byte[] LegacyMagic = { 0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19 };

    /// <summary>Reads a <c>torch.save</c> file.</summary>
    /// <exception cref="InvalidDataException">The file is malformed or holds objects other than tensors and plain containers; the message names the file and the problem.</exception>
    public static WeightFile Read(string path) => WeightStreams.ReadFile(path, (stream, name) => Read(stream, name));

    /// <summary>Reads <c>torch.save</c> bytes from the stream's position to its end.</summary>
    /// <param name="stream">The data; non-seekable streams are first copied into memory.</param>
    /// <param name="sourceName">Name used in messages. Default "stream".</param>
    /// <exception cref="InvalidDataException">The data is malformed or not allowed; the message names the source and the problem.</exception>
    public static WeightFile Read(Stream stream, string? sourceName = null) => WeightStreams.ReadStream(stream, sourceName, ReadSeekable);

    /// <summary>True when the bytes at the position start like a zip archive or a legacy torch.save stream. The position is restored.</summary>
    internal static bool LooksLikePyTorch(Stream stream) => IsZip(stream) || IsLegacy(stream);

    private static bool IsZip(Stream stream) => StartsWith(stream, "PK\x03\x04"u8);

    private static bool IsLegacy(Stream stream) => StartsWith(stream, LegacyMagic);

    private static bool StartsWith(Stream stream, ReadOnlySpan<byte> magic)
    {
        long start = stream.Position;
        try
        {
            Span<byte> head = stackalloc byte[magic.Length];
            int read = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            return read == head.Length && head.SequenceEqual(magic);
        }
        finally
        {
            stream.Position = start;
        }
    }

    private static WeightFile ReadSeekable(Stream s, string source)
    {
        if (IsLegacy(s))
        {
            return ReadLegacy(s, source);
        }

        if (!IsZip(s))
        {
            throw WeightStreams.Bad(source, "not a PyTorch file: torch.save files are zip archives (they start with 'PK\\x03\\x04').");
        }

        try
        {
            // A window from the current position, so a .pth inside a larger stream reads as its own archive.
            using var window = s.Position == 0 ? null : new MemoryStream();
            if (window is not null)
            {
                s.CopyTo(window);
                window.Position = 0;
            }

            using var zip = new ZipArchive(window ?? s, ZipArchiveMode.Read, leaveOpen: true);
            return ReadZip(zip, (window ?? s).Length, source);
        }
        catch (InvalidDataException ex) when (ex.Message.StartsWith(source, StringComparison.Ordinal))
        {
            throw; // already names the file and the problem
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException or ArgumentException or NotSupportedException)
        {
            throw WeightStreams.Bad(source, $"the zip archive is damaged or truncated ({ex.Message})", ex);
        }
    }

    private static WeightFile ReadZip(ZipArchive zip, long archiveLength, string source)
    {
        var entries = new Dictionary<string, ZipArchiveEntry>(StringComparer.Ordinal);
        foreach (var e in zip.Entries)
        {
            entries[e.FullName] = e;
        }

        var pickles = entries.Keys.Where(n => n.EndsWith("data.pkl", StringComparison.Ordinal) && n.Count(c => c == '/') == 1).ToList();
        if (pickles.Count != 1)
        {
            throw WeightStreams.Bad(source,
                pickles.Count == 0
                    ? "a zip archive without a 'NAME/data.pkl' entry is not a torch.save file (TorchScript archives and other zips are not read)."
                    : $"the archive has {pickles.Count} 'data.pkl' entries; a torch.save file has one.");
        }

        string prefix = pickles[0][..^"data.pkl".Length];
        if (entries.TryGetValue(prefix + "byteorder", out var byteOrder))
        {
            string order = Encoding.ASCII.GetString(ReadEntry(byteOrder, 16, archiveLength, source)).Trim();
            if (order != "little")
            {
                throw WeightStreams.Bad(source, $"byte order '{order}' is not supported (only little-endian files are read).");
            }
        }

        var pickleEntry = entries[pickles[0]];
        byte[] pickle = ReadEntry(pickleEntry, MaxPickleBytes, archiveLength, source);
        var storages = new Dictionary<string, TorchStorage>(StringComparer.Ordinal);
        object? root;
        using (var ps = new MemoryStream(pickle, writable: false))
        {
            root = RestrictedUnpickler.Load(ps, $"{source} ({pickles[0]})", pid => Storage(pid, storages, source, legacy: false));
        }

        var data = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        byte[] StorageBytes(TorchStorage st)
        {
            if (!data.TryGetValue(st.Key, out var bytes))
            {
                string name = prefix + "data/" + st.Key;
                if (!entries.TryGetValue(name, out var entry))
                {
                    throw WeightStreams.Bad(source, $"storage '{st.Key}' is missing: the archive has no entry '{name}'.");
                }

                long expected = st.Numel * st.DType.SizeOf();
                if (entry.Length != expected)
                {
                    throw WeightStreams.Bad(source, $"storage '{name}' has {entry.Length} bytes, but the pickle says {st.Numel} × {st.DType} = {expected}.");
                }

                bytes = ReadEntry(entry, expected, archiveLength, source);
                data[st.Key] = bytes;
            }

            return bytes;
        }

        return Build(root, StorageBytes, source);
    }

    /// <summary>Reads a whole zip entry, refusing sizes above <paramref name="limit"/> or beyond what the archive can hold (no zip bombs).</summary>
    private static byte[] ReadEntry(ZipArchiveEntry entry, long limit, long archiveLength, string source)
    {
        // Deflate expands at most ~1032:1; torch.save stores entries uncompressed, so length == compressed length there.
        if (entry.Length < 0 || entry.Length > limit || entry.CompressedLength > archiveLength || entry.Length > Array.MaxLength ||
            entry.Length > entry.CompressedLength * 1032 + 1024)
        {
            throw WeightStreams.Bad(source, $"zip entry '{entry.FullName}' claims {entry.Length} bytes ({entry.CompressedLength} stored) in a {archiveLength}-byte archive; limit {limit}.");
        }

        var bytes = new byte[entry.Length];
        using var stream = entry.Open();
        WeightStreams.ReadExactly(stream, bytes, source, $"zip entry '{entry.FullName}'");
        if (stream.ReadByte() >= 0)
        {
            throw WeightStreams.Bad(source, $"zip entry '{entry.FullName}' holds more bytes than its header says.");
        }

        uint crc = System.IO.Hashing.Crc32.HashToUInt32(bytes);
        if (crc != entry.Crc32)
        {
            throw WeightStreams.Bad(source, $"zip entry '{entry.FullName}' is damaged: CRC-32 {crc:x8}, the archive says {entry.Crc32:x8}.");
        }

        return bytes;
    }

    /// <summary>Validates a persistent id <c>('storage', torch.FloatStorage, key, location, numel[, view])</c> and returns its storage (one object per key).</summary>
    private static TorchStorage Storage(PyTuple pid, Dictionary<string, TorchStorage> storages, string source, bool legacy)
    {
        var items = pid.Items;
        if (items.Length < 5 || items[0] is not "storage" || items[1] is not PyGlobal type || items[2] is not string key ||
            items[3] is not string location || items[4] is not long numel || numel < 0)
        {
            throw WeightStreams.Bad(source, "a persistent id is not ('storage', type, key, location, size): only tensor storages are read.");
        }

        if (legacy && items.Length > 5 && items[5] is not null)
        {
            throw WeightStreams.Bad(source, "legacy storage views are not read; re-save with torch.save(obj, path) (zip format).");
        }

        if (!RestrictedUnpickler.AllowedGlobals.TryGetValue(type.FullName, out var dtype) || dtype is null)
        {
            throw WeightStreams.Bad(source, $"storage type '{type.FullName}' is not a tensor storage type this library reads.");
        }

        if (WeightTensor.ByteSize(dtype.Value, new[] { numel }) is null)
        {
            throw WeightStreams.Bad(source, $"storage '{key}' declares {numel} elements, which overflows.");
        }

        if (storages.TryGetValue(key, out var known))
        {
            if (known.DType != dtype.Value || known.Numel != numel)
            {
                throw WeightStreams.Bad(source, $"storage '{key}' is referenced as {known.DType}×{known.Numel} and as {dtype}×{numel}.");
            }

            return known;
        }

        var storage = new TorchStorage(key, dtype.Value, numel, location);
        storages[key] = storage;
        return storage;
    }

    /// <summary>Turns the unpickled root into named tensors: the root dict, or the state dict inside a checkpoint dict.</summary>
    private static WeightFile Build(object? root, Func<TorchStorage, byte[]> storageBytes, string source)
    {
        if (root is not PyDict dict)
        {
            throw WeightStreams.Bad(source, $"the file holds a {RestrictedUnpickler.TypeName(root)}, not a state dict (a dict of tensors).");
        }

        if (dict.Items.Count == 0)
        {
            throw WeightStreams.Bad(source, "the file holds an empty dict: no tensors to load.");
        }

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        PyDict stateDict = dict;
        if (!AllTensors(dict))
        {
            var inner = StateDictKeys.Select(k => (Key: k, Value: dict.Get(k))).FirstOrDefault(p => p.Value is PyDict d && AllTensors(d));
            if (inner.Value is not PyDict found)
            {
                var first = dict.Items.FirstOrDefault(kv => kv.Value is not TorchTensorRef);
                throw WeightStreams.Bad(source,
                    $"not a state dict: entry '{first.Key}' is a {RestrictedUnpickler.TypeName(first.Value)}, not a tensor, and there is no " +
                    $"'{string.Join("' or '", StateDictKeys)}' entry holding one (top-level keys: {string.Join(", ", dict.Items.Take(12).Select(kv => kv.Key))}).");
            }

            stateDict = found;
            foreach (var (k, v) in dict.Items)
            {
                if (v is string or long or double or bool)
                {
                    metadata[$"checkpoint.{k}"] = Convert.ToString(v, CultureInfo.InvariantCulture)!;
                }
            }

            metadata["checkpoint.state_dict_key"] = inner.Key;
        }

        var tensors = new List<WeightTensor>(stateDict.Items.Count);
        foreach (var (k, v) in stateDict.Items)
        {
            if (k is not string name || name.Length == 0)
            {
                throw WeightStreams.Bad(source, $"state-dict key {k} is not a non-empty string.");
            }

            var t = (TorchTensorRef)v!;
            tensors.Add(new WeightTensor(name, t.Storage.DType, t.Size, Gather(t, storageBytes(t.Storage))));
        }

        return new WeightFile(tensors, metadata, source, WeightFormat.PyTorch);
    }

    private static bool AllTensors(PyDict dict) => dict.Items.Count > 0 && dict.Items.All(kv => kv.Value is TorchTensorRef);

    /// <summary>Copies a (possibly strided) view out of its storage as contiguous row-major bytes (bounds were checked by the unpickler).</summary>
    private static byte[] Gather(TorchTensorRef t, byte[] storage)
    {
        int es = t.Storage.DType.SizeOf();
        long count = t.Size.Aggregate(1L, (a, b) => a * b);
        if (count == 0)
        {
            return Array.Empty<byte>();
        }

        var result = new byte[count * es];
        bool contiguous = true;
        long expectedStride = 1;
        for (int d = t.Size.Length - 1; d >= 0; d--)
        {
            if (t.Size[d] != 1 && t.Stride[d] != expectedStride)
            {
                contiguous = false;
                break;
            }

            expectedStride *= t.Size[d];
        }

        if (contiguous)
        {
            Array.Copy(storage, t.Offset * es, result, 0, result.Length);
            return result;
        }

        var index = new long[t.Size.Length];
        for (long i = 0; i < count; i++)
        {
            long element = t.Offset;
            for (int d = 0; d < index.Length; d++)
            {
                element += index[d] * t.Stride[d];
            }

            Array.Copy(storage, element * es, result, i * es, es);
            for (int d = index.Length - 1; d >= 0; d--)
            {
                if (++index[d] < t.Size[d])
                {
                    break;
                }

                index[d] = 0;
            }
        }

        return result;
    }

    /// <summary>
    /// The pre-1.6 format: pickles of the magic number, the protocol version (1001) and system info, then the object
    /// pickle, then a pickle of the storage keys, then each storage as an 8-byte element count and its raw bytes.
    /// </summary>
    private static WeightFile ReadLegacy(Stream s, string source)
    {
        var storages = new Dictionary<string, TorchStorage>(StringComparer.Ordinal);
        TorchStorage NoStorage(PyTuple _) => throw WeightStreams.Bad(source, "unexpected storage reference in the legacy header.");
        // The magic number pickle (an 80-bit integer, checked byte for byte by IsLegacy) ends with STOP.
        s.Position += LegacyMagic.Length;
        if (s.ReadByte() != '.')
        {
            throw WeightStreams.Bad(source, "the legacy torch.save magic number is not followed by STOP.");
        }

        var version = RestrictedUnpickler.Load(s, source, NoStorage);
        if (version is not 1001L)
        {
            throw WeightStreams.Bad(source, $"legacy torch.save protocol version {version} is not supported (1001 is).");
        }

        var sysInfo = RestrictedUnpickler.Load(s, source, NoStorage) as PyDict;
        if (sysInfo?.Get("little_endian") is not true)
        {
            throw WeightStreams.Bad(source, "the legacy file was written on a big-endian machine or lacks system info; re-save it with torch.save(obj, path).");
        }

        var root = RestrictedUnpickler.Load(s, source, pid => Storage(pid, storages, source, legacy: true));
        if (RestrictedUnpickler.Load(s, source, NoStorage) is not List<object?> keys || keys.Any(k => k is not string))
        {
            throw WeightStreams.Bad(source, "the legacy file's storage key list is missing or malformed.");
        }

        var data = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (string key in keys.Cast<string>())
        {
            if (!storages.TryGetValue(key, out var st))
            {
                throw WeightStreams.Bad(source, $"the legacy file stores data for '{key}', which no tensor uses.");
            }

            ulong numel = WeightStreams.ReadUInt64LittleEndian(s, source, $"the size of storage '{key}'");
            long bytes = st.Numel * st.DType.SizeOf();
            if (numel != (ulong)st.Numel || bytes > s.Length - s.Position)
            {
                throw WeightStreams.Bad(source, $"storage '{key}': {numel} elements stored, {st.Numel} expected, {s.Length - s.Position} bytes remain (truncated file?).");
            }

            var buffer = new byte[bytes];
            WeightStreams.ReadExactly(s, buffer, source, $"storage '{key}'");
            data[key] = buffer;
        }

        if (s.Position != s.Length)
        {
            throw WeightStreams.Bad(source, $"{s.Length - s.Position} trailing bytes after the last storage.");
        }

        return Build(root, st => data.TryGetValue(st.Key, out var b) ? b : throw WeightStreams.Bad(source, $"storage '{st.Key}' has no data in the file."), source);
    }
}
