using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNetSharp.Weights;

/// <summary>
/// Element types a weight file may hold (the safetensors names; TorchSharp's format maps onto the same set). Internal:
/// the public API speaks TorchSharp's <see cref="ScalarType"/> (<see cref="SaveOptions.FloatType"/>).
/// </summary>
internal enum WeightDType
{
    /// <summary>64-bit IEEE float (safetensors <c>F64</c>).</summary>
    F64,

    /// <summary>32-bit IEEE float (safetensors <c>F32</c>), the usual weight type.</summary>
    F32,

    /// <summary>16-bit IEEE half float (safetensors <c>F16</c>).</summary>
    F16,

    /// <summary>bfloat16: float32's exponent with a 7-bit mantissa (safetensors <c>BF16</c>).</summary>
    BF16,

    /// <summary>64-bit signed integer (safetensors <c>I64</c>); torchvision stores BatchNorm's <c>num_batches_tracked</c> so.</summary>
    I64,

    /// <summary>32-bit signed integer (safetensors <c>I32</c>).</summary>
    I32,

    /// <summary>16-bit signed integer (safetensors <c>I16</c>).</summary>
    I16,

    /// <summary>8-bit signed integer (safetensors <c>I8</c>).</summary>
    I8,

    /// <summary>8-bit unsigned integer (safetensors <c>U8</c>).</summary>
    U8,

    /// <summary>Boolean, one byte each (safetensors <c>BOOL</c>).</summary>
    Bool,
}

/// <summary>Conversions between <see cref="WeightDType"/>, its file names and TorchSharp's <see cref="ScalarType"/>.</summary>
internal static class WeightDTypes
{
    private static readonly (WeightDType Type, string Name, ScalarType Scalar, int Size)[] Table =
    {
        (WeightDType.F64, "F64", ScalarType.Float64, 8),
        (WeightDType.F32, "F32", ScalarType.Float32, 4),
        (WeightDType.F16, "F16", ScalarType.Float16, 2),
        (WeightDType.BF16, "BF16", ScalarType.BFloat16, 2),
        (WeightDType.I64, "I64", ScalarType.Int64, 8),
        (WeightDType.I32, "I32", ScalarType.Int32, 4),
        (WeightDType.I16, "I16", ScalarType.Int16, 2),
        (WeightDType.I8, "I8", ScalarType.Int8, 1),
        (WeightDType.U8, "U8", ScalarType.Byte, 1),
        (WeightDType.Bool, "BOOL", ScalarType.Bool, 1),
    };

    /// <summary>The safetensors spellings this library reads and writes.</summary>
    public static IReadOnlyList<string> SafeTensorsNames { get; } = Table.Select(t => t.Name).ToArray();

    /// <summary>Bytes per element.</summary>
    public static int SizeOf(this WeightDType type) => Row(type).Size;

    /// <summary>The safetensors spelling (<c>F32</c>, <c>BF16</c>, …).</summary>
    public static string ToSafeTensorsName(this WeightDType type) => Row(type).Name;

    /// <summary>The matching TorchSharp element type.</summary>
    public static ScalarType ToScalarType(this WeightDType type) => Row(type).Scalar;

    /// <summary>True for F64, F32, F16 and BF16.</summary>
    public static bool IsFloatingPoint(this WeightDType type) => type is WeightDType.F64 or WeightDType.F32 or WeightDType.F16 or WeightDType.BF16;

    /// <summary>Parses a safetensors dtype name (case-sensitive, as the format defines them).</summary>
    /// <returns>False for names this library does not read (e.g. F8 or complex types).</returns>
    public static bool TryParseSafeTensorsName(string? name, out WeightDType type)
    {
        foreach (var row in Table)
        {
            if (string.Equals(row.Name, name, StringComparison.Ordinal))
            {
                type = row.Type;
                return true;
            }
        }

        type = default;
        return false;
    }

    /// <summary>The weight type for a TorchSharp element type.</summary>
    /// <returns>False for element types no weight file here stores (complex, quantised, …).</returns>
    public static bool TryFromScalarType(ScalarType scalar, out WeightDType type)
    {
        foreach (var row in Table)
        {
            if (row.Scalar == scalar)
            {
                type = row.Type;
                return true;
            }
        }

        type = default;
        return false;
    }

    private static (WeightDType Type, string Name, ScalarType Scalar, int Size) Row(WeightDType type)
    {
        foreach (var row in Table)
        {
            if (row.Type == type)
            {
                return row;
            }
        }

        throw new ArgumentOutOfRangeException(nameof(type), type, "Not a WeightDType.");
    }
}

/// <summary>
/// One named tensor of a weight file, held as raw little-endian bytes exactly as stored. The bytes have been checked
/// against <see cref="Shape"/> and <see cref="DType"/> by the reader, so <see cref="ToTensor"/> cannot misread them.
/// </summary>
internal sealed class WeightTensor
{
    private readonly byte[] data;

    /// <summary>Wraps raw bytes as a named tensor.</summary>
    /// <param name="name">State-dict key, e.g. <c>layer1.0.conv1.weight</c>.</param>
    /// <param name="dtype">Element type of <paramref name="data"/>.</param>
    /// <param name="shape">Dimensions (empty for a scalar); each ≥ 0.</param>
    /// <param name="data">Little-endian element bytes, row-major; length must be the element count × element size.</param>
    /// <exception cref="ArgumentException">The name is empty, a dimension is negative, or the byte count does not match.</exception>
    public WeightTensor(string name, WeightDType dtype, IReadOnlyList<long> shape, byte[] data)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(data);
        if (name.Length == 0)
        {
            throw new ArgumentException("A weight tensor needs a non-empty name.", nameof(name));
        }

        long? expected = ByteSize(dtype, shape);
        if (expected is null)
        {
            throw new ArgumentException($"Tensor '{name}': shape [{string.Join(", ", shape)}] has a negative dimension or overflows.", nameof(shape));
        }

        if (expected.Value != data.LongLength)
        {
            throw new ArgumentException(
                $"Tensor '{name}': {dtype} [{string.Join(", ", shape)}] needs {expected} bytes, got {data.LongLength}.", nameof(data));
        }

        Name = name;
        DType = dtype;
        Shape = shape.ToArray();
        this.data = data;
    }

    /// <summary>State-dict key.</summary>
    public string Name { get; }

    /// <summary>Element type as stored.</summary>
    public WeightDType DType { get; }

    /// <summary>Dimensions; empty for a scalar (such as <c>num_batches_tracked</c>).</summary>
    public IReadOnlyList<long> Shape { get; }

    /// <summary>Number of elements (1 for a scalar).</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Bytes of data.</summary>
    public long ByteCount => data.LongLength;

    /// <summary>The raw little-endian bytes (read-only view).</summary>
    public ReadOnlyMemory<byte> Data => data;

    /// <summary>A new CPU tensor holding these values, in the stored element type.</summary>
    public Tensor ToTensor()
    {
        var tensor = torch.empty(Shape.ToArray(), DType.ToScalarType());
        if (data.Length > 0)
        {
            data.AsSpan().CopyTo(tensor.bytes);
        }

        return tensor;
    }

    /// <summary>Copies a tensor's values (moved to the CPU, made contiguous, optionally converted) into a weight tensor.</summary>
    /// <param name="name">Key to store it under.</param>
    /// <param name="tensor">Any tensor whose element type is a <see cref="WeightDType"/>.</param>
    /// <param name="floatType">Convert floating-point tensors to this type (F32, F16, BF16, F64); null keeps the tensor's own. Integer tensors are never converted.</param>
    /// <exception cref="ArgumentException">The tensor's element type cannot be stored, or <paramref name="floatType"/> is not a float type.</exception>
    public static WeightTensor FromTensor(string name, Tensor tensor, WeightDType? floatType = null)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (floatType is { } ft && !ft.IsFloatingPoint())
        {
            throw new ArgumentException($"floatType must be F64, F32, F16 or BF16, got {ft}.", nameof(floatType));
        }

        if (!WeightDTypes.TryFromScalarType(tensor.dtype, out var dtype))
        {
            throw new ArgumentException($"Tensor '{name}' has element type {tensor.dtype}, which weight files do not store.", nameof(tensor));
        }

        using var scope = torch.NewDisposeScope();
        var cpu = tensor.detach().cpu();
        if (floatType is { } target && dtype.IsFloatingPoint() && target != dtype)
        {
            cpu = cpu.to(target.ToScalarType());
            dtype = target;
        }

        cpu = cpu.contiguous();
        byte[] bytes = cpu.numel() == 0 ? Array.Empty<byte>() : cpu.bytes.ToArray();
        return new WeightTensor(name, dtype, cpu.shape, bytes);
    }

    /// <summary>Bytes for <paramref name="shape"/> of <paramref name="dtype"/>; null when a dimension is negative or it overflows.</summary>
    internal static long? ByteSize(WeightDType dtype, IReadOnlyList<long> shape)
    {
        try
        {
            long count = 1;
            foreach (long d in shape)
            {
                if (d < 0)
                {
                    return null;
                }

                count = checked(count * d);
            }

            return checked(count * dtype.SizeOf());
        }
        catch (OverflowException)
        {
            return null;
        }
    }

    /// <summary>"F32 [64, 3, 7, 7]".</summary>
    public override string ToString() => $"{Name}: {DType.ToSafeTensorsName()} [{string.Join(", ", Shape)}]";
}

/// <summary>Which on-disk format a weight file uses.</summary>
public enum WeightFormat
{
    /// <summary>
    /// Decide from the content: a zip archive or legacy torch.save stream is <see cref="PyTorch"/>, 8 bytes then '{'
    /// is safetensors, a plausible first tensor record is TorchSharp's format; anything else is not a weight file.
    /// </summary>
    Auto,

    /// <summary>safetensors (Hugging Face): a JSON header and raw data, no code execution on load.</summary>
    SafeTensors,

    /// <summary>TorchSharp's own state-dict format, written by <c>Module.save</c> and read by <c>Module.load</c>.</summary>
    TorchSharp,

    /// <summary>PyTorch's <c>torch.save</c> (<c>.pth</c>/<c>.pt</c>: zip archive or legacy stream), read only: see <see cref="PyTorchFormat"/>.</summary>
    PyTorch,
}

/// <summary>The contents of a weight file: named tensors in file order, and the file's metadata.</summary>
internal sealed class WeightFile
{
    private readonly Dictionary<string, WeightTensor> byName;

    /// <summary>Creates a weight file in memory (to write it, or to load it into a model).</summary>
    /// <param name="tensors">Tensors; names must be unique.</param>
    /// <param name="metadata">Free-form string pairs (safetensors' <c>__metadata__</c>); null for none.</param>
    /// <param name="source">Where it came from, for messages. Default "memory".</param>
    /// <param name="format">The format it was read from. Default <see cref="WeightFormat.Auto"/> (not read from a file).</param>
    /// <exception cref="ArgumentException">Two tensors share a name.</exception>
    public WeightFile(IEnumerable<WeightTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null, string source = "memory",
        WeightFormat format = WeightFormat.Auto)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        Tensors = tensors.ToArray();
        byName = new Dictionary<string, WeightTensor>(StringComparer.Ordinal);
        foreach (var t in Tensors)
        {
            if (!byName.TryAdd(t.Name, t))
            {
                throw new ArgumentException($"Duplicate tensor name '{t.Name}'.", nameof(tensors));
            }
        }

        Metadata = metadata is null ? new Dictionary<string, string>() : new Dictionary<string, string>(metadata);
        Source = source;
        Format = format;
    }

    /// <summary>The tensors, in file order.</summary>
    public IReadOnlyList<WeightTensor> Tensors { get; }

    /// <summary>Metadata pairs (empty when the file has none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The path (or "stream"/"memory") it was read from; used in messages.</summary>
    public string Source { get; }

    /// <summary>The format it was read from.</summary>
    public WeightFormat Format { get; }

    /// <summary>Total bytes of tensor data.</summary>
    public long TotalBytes => Tensors.Sum(t => t.ByteCount);

    /// <summary>Total elements over all tensors.</summary>
    public long TotalElements => Tensors.Sum(t => t.ElementCount);

    /// <summary>The tensor named <paramref name="name"/>, or null.</summary>
    public WeightTensor? Find(string name) => byName.GetValueOrDefault(name);

    /// <summary>The tensor named <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">No tensor has that name.</exception>
    public WeightTensor this[string name] => byName.TryGetValue(name, out var t)
        ? t
        : throw new KeyNotFoundException($"{Source}: no tensor named '{name}'.");

    /// <summary>Reads a weight file, detecting its format from the content.</summary>
    /// <exception cref="InvalidDataException">The file is malformed; the message names the file and the problem.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static WeightFile Read(string path, WeightFormat format = WeightFormat.Auto)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (format == WeightFormat.Auto && path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
        {
            format = WeightFormat.SafeTensors; // the name decides, so a truncated safetensors file gets safetensors' error messages
        }
        else if (format == WeightFormat.Auto && (path.EndsWith(".pth", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".pt", StringComparison.OrdinalIgnoreCase)))
        {
            format = WeightFormat.PyTorch; // likewise: a truncated .pth gets the zip reader's message, not "not a weight file"
        }

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        return Read(stream, format, path);
    }

    /// <summary>Reads weights from a stream (seekable or not), detecting the format from the content.</summary>
    /// <param name="stream">Positioned at the start of the file's bytes; read to its end.</param>
    /// <param name="format">The format, or <see cref="WeightFormat.Auto"/> to detect it.</param>
    /// <param name="sourceName">Name used in messages. Default "stream".</param>
    /// <exception cref="InvalidDataException">The data is malformed; the message names the source and the problem.</exception>
    public static WeightFile Read(Stream stream, WeightFormat format = WeightFormat.Auto, string? sourceName = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        string source = sourceName ?? "stream";
        var seekable = WeightStreams.EnsureSeekable(stream, out var owned);
        try
        {
            if (format == WeightFormat.Auto)
            {
                format = Detect(seekable, source);
            }

            return format switch
            {
                WeightFormat.SafeTensors => SafeTensorsFormat.Read(seekable, source),
                WeightFormat.PyTorch => PyTorchFormat.Read(seekable, source),
                _ => TorchSharpFormat.Read(seekable, source),
            };
        }
        finally
        {
            owned?.Dispose();
        }
    }

    /// <summary>Writes the tensors to <paramref name="path"/> atomically (temporary file in the same folder, flushed to disk, renamed over the target).</summary>
    /// <param name="path">Target file; an existing file is replaced only once the new one is complete.</param>
    /// <param name="format">SafeTensors (default) or TorchSharp; Auto means SafeTensors.</param>
    public void Write(string path, WeightFormat format = WeightFormat.SafeTensors)
    {
        ArgumentNullException.ThrowIfNull(path);
        AtomicFile.Write(path, stream => Write(stream, format));
    }

    /// <summary>Writes the tensors to a stream (not atomic: the caller owns the stream).</summary>
    /// <param name="stream">Writable stream; left open.</param>
    /// <param name="format">SafeTensors (default) or TorchSharp; Auto means SafeTensors.</param>
    /// <exception cref="ArgumentException"><paramref name="format"/> is <see cref="WeightFormat.PyTorch"/>, which is read only.</exception>
    public void Write(Stream stream, WeightFormat format = WeightFormat.SafeTensors)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (format == WeightFormat.PyTorch)
        {
            throw new ArgumentException("PyTorch .pth files are read, not written: save as safetensors (PyTorch reads them with safetensors.torch.load_file).", nameof(format));
        }

        if (format == WeightFormat.TorchSharp)
        {
            TorchSharpFormat.Write(stream, Tensors);
        }
        else
        {
            SafeTensorsFormat.Write(stream, Tensors, Metadata);
        }
    }

    /// <summary>Names the format of the bytes at the stream's position, or throws saying plainly that they are none of the weight formats.</summary>
    internal static WeightFormat Detect(Stream stream, string source)
    {
        if (PyTorchFormat.LooksLikePyTorch(stream))
        {
            return WeightFormat.PyTorch;
        }

        if (SafeTensorsFormat.LooksLikeSafeTensors(stream))
        {
            return WeightFormat.SafeTensors;
        }

        if (TorchSharpFormat.LooksLikeTorchSharp(stream))
        {
            return WeightFormat.TorchSharp;
        }

        long start = stream.Position;
        Span<byte> head = stackalloc byte[8];
        int read = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        stream.Position = start;
        throw WeightStreams.Bad(source,
            $"not a weight file: neither a PyTorch .pth (zip or legacy torch.save), safetensors nor TorchSharp (Module.save) file " +
            $"(first bytes: {(read == 0 ? "none, the file is empty" : Convert.ToHexString(head[..read]))}).");
    }
}
