using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;

namespace ResNetSharp.Weights;

/// <summary>A Python tuple read from a pickle.</summary>
internal sealed record PyTuple(object?[] Items);

/// <summary>A Python dict (or <c>collections.OrderedDict</c>) read from a pickle, in insertion order.</summary>
internal sealed class PyDict
{
    private readonly Dictionary<object, int> index = new();

    public List<KeyValuePair<object, object?>> Items { get; } = new();

    public void Set(object? key, object? value, string source)
    {
        if (key is not (string or long or bool or double))
        {
            throw WeightStreams.Bad(source, $"pickle uses a dict key of type {RestrictedUnpickler.TypeName(key)}; only str, int, float and bool keys are read.");
        }

        if (index.TryGetValue(key, out int i))
        {
            Items[i] = new(key, value);
        }
        else
        {
            index[key] = Items.Count;
            Items.Add(new(key, value));
        }
    }

    public object? Get(string key) => index.TryGetValue(key, out int i) ? Items[i].Value : null;
}

/// <summary>A callable the pickle names; only the allow-listed ones are ever created.</summary>
internal sealed record PyGlobal(string Module, string Name)
{
    public string FullName => $"{Module}.{Name}";
}

/// <summary>A storage a pickle refers to by persistent id: element type, element count and the key of its bytes.</summary>
internal sealed record TorchStorage(string Key, WeightDType DType, long Numel, string Location);

/// <summary>A tensor as torch's <c>_rebuild_tensor_v2</c> describes it: a strided view of a storage.</summary>
internal sealed record TorchTensorRef(TorchStorage Storage, long Offset, long[] Size, long[] Stride);

/// <summary>
/// A pickle reader that materialises only what a PyTorch state dict is made of: tensors (through an allow-list of
/// torch's own rebuild functions), storages (through persistent ids), and plain values and containers (None, bool,
/// int, float, str, bytes, tuple, list, dict, <c>collections.OrderedDict</c>). Any other global — <c>os.system</c>,
/// a class of the training script, <c>argparse.Namespace</c> — is refused with <see cref="InvalidDataException"/>
/// at the opcode that names it, and nothing is ever called or constructed: the "callables" are matched by name and
/// interpreted here. Every length is checked against the bytes that remain before anything is allocated.
/// </summary>
internal sealed class RestrictedUnpickler
{
    /// <summary>Globals a state-dict pickle may name; everything else is refused.</summary>
    internal static readonly IReadOnlyDictionary<string, WeightDType?> AllowedGlobals = new Dictionary<string, WeightDType?>(StringComparer.Ordinal)
    {
        ["collections.OrderedDict"] = null,
        ["torch._utils._rebuild_tensor"] = null,
        ["torch._utils._rebuild_tensor_v2"] = null,
        ["torch._utils._rebuild_parameter"] = null,
        ["torch._utils._rebuild_parameter_with_state"] = null,
        ["torch.FloatStorage"] = WeightDType.F32,
        ["torch.DoubleStorage"] = WeightDType.F64,
        ["torch.HalfStorage"] = WeightDType.F16,
        ["torch.BFloat16Storage"] = WeightDType.BF16,
        ["torch.LongStorage"] = WeightDType.I64,
        ["torch.IntStorage"] = WeightDType.I32,
        ["torch.ShortStorage"] = WeightDType.I16,
        ["torch.CharStorage"] = WeightDType.I8,
        ["torch.ByteStorage"] = WeightDType.U8,
        ["torch.BoolStorage"] = WeightDType.Bool,
    };

    private const int MaxRank = SafeTensorsFormat.MaxRank;

    private static readonly object Mark = new();

    private readonly Stream s;
    private readonly string source;
    private readonly Func<PyTuple, TorchStorage> persistentLoad;
    private readonly List<object?> stack = new();
    private readonly List<int> marks = new();
    private readonly Dictionary<long, object?> memo = new();

    private RestrictedUnpickler(Stream stream, string source, Func<PyTuple, TorchStorage> persistentLoad)
    {
        s = stream;
        this.source = source;
        this.persistentLoad = persistentLoad;
    }

    /// <summary>Reads one pickle from the stream's position up to and including its STOP opcode.</summary>
    /// <param name="stream">Seekable stream; its length bounds every read.</param>
    /// <param name="source">Name for messages.</param>
    /// <param name="persistentLoad">Turns a persistent id tuple into a storage (throws <see cref="InvalidDataException"/> for a bad one).</param>
    public static object? Load(Stream stream, string source, Func<PyTuple, TorchStorage> persistentLoad) =>
        new RestrictedUnpickler(stream, source, persistentLoad).Run();

    public static string TypeName(object? value) => value switch
    {
        null => "None",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        byte[] => "bytes",
        PyTuple => "tuple",
        List<object?> => "list",
        PyDict => "dict",
        PyGlobal g => $"global {g.FullName}",
        TorchStorage => "storage",
        TorchTensorRef => "tensor",
        _ => value.GetType().Name,
    };

    private long Remaining => s.Length - s.Position;

    private InvalidDataException Bad(string problem) => WeightStreams.Bad(source, $"pickle at byte {s.Position}: {problem}");

    private object? Run()
    {
        while (true)
        {
            int op = s.ReadByte();
            if (op < 0)
            {
                throw Bad("unexpected end of data before the pickle's STOP opcode (truncated file?).");
            }

            switch (op)
            {
                case 0x80: // PROTO
                    int proto = ReadByte();
                    if (proto > 5)
                    {
                        throw Bad($"pickle protocol {proto} is not supported (0-5).");
                    }

                    break;
                case 0x95: // FRAME (protocol 4): an 8-byte length, frames are just a hint
                    ReadBytes(8);
                    break;
                case '.': // STOP
                    if (stack.Count != 1 || marks.Count != 0)
                    {
                        throw Bad($"STOP with {stack.Count} values on the stack (expected exactly one).");
                    }

                    return stack[0];
                case '(':
                    marks.Add(stack.Count);
                    stack.Add(Mark);
                    break;
                case '0':
                    Pop();
                    break;
                case '1':
                    PopMark();
                    break;
                case '2':
                    Push(Peek());
                    break;
                case 'N':
                    Push(null);
                    break;
                case 0x88:
                    Push(true);
                    break;
                case 0x89:
                    Push(false);
                    break;
                case 'J':
                    Push((long)BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4)));
                    break;
                case 'K':
                    Push((long)ReadByte());
                    break;
                case 'M':
                    Push((long)BinaryPrimitives.ReadUInt16LittleEndian(ReadBytes(2)));
                    break;
                case 0x8a: // LONG1
                    Push(ReadLong(ReadByte()));
                    break;
                case 0x8b: // LONG4
                    Push(ReadLong(ReadLength(4)));
                    break;
                case 'G':
                    Push(BinaryPrimitives.ReadDoubleBigEndian(ReadBytes(8)));
                    break;
                case 'X': // BINUNICODE
                    Push(ReadUtf8(ReadLength(4)));
                    break;
                case 0x8c: // SHORT_BINUNICODE
                    Push(ReadUtf8(ReadByte()));
                    break;
                case 0x8d: // BINUNICODE8
                    Push(ReadUtf8(ReadLength(8)));
                    break;
                case 'T': // BINSTRING (Python 2 str)
                    Push(Encoding.Latin1.GetString(ReadBytes(ReadLength(4))));
                    break;
                case 'U': // SHORT_BINSTRING
                    Push(Encoding.Latin1.GetString(ReadBytes(ReadByte())));
                    break;
                case 'B': // BINBYTES
                    Push(ReadBytes(ReadLength(4)));
                    break;
                case 'C': // SHORT_BINBYTES
                    Push(ReadBytes(ReadByte()));
                    break;
                case 0x8e: // BINBYTES8
                    Push(ReadBytes(ReadLength(8)));
                    break;
                case ')':
                    Push(new PyTuple(Array.Empty<object?>()));
                    break;
                case 't':
                    Push(new PyTuple(PopMark().ToArray()));
                    break;
                case 0x85:
                    Push(new PyTuple(new[] { Pop() }));
                    break;
                case 0x86:
                {
                    var b = Pop();
                    var a = Pop();
                    Push(new PyTuple(new[] { a, b }));
                    break;
                }

                case 0x87:
                {
                    var c = Pop();
                    var b = Pop();
                    var a = Pop();
                    Push(new PyTuple(new[] { a, b, c }));
                    break;
                }

                case ']':
                    Push(new List<object?>());
                    break;
                case 'l':
                    Push(PopMark());
                    break;
                case 'a':
                {
                    var value = Pop();
                    As<List<object?>>(Peek(), "APPEND").Add(value);
                    break;
                }

                case 'e':
                {
                    var items = PopMark();
                    As<List<object?>>(Peek(), "APPENDS").AddRange(items);
                    break;
                }

                case '}':
                    Push(new PyDict());
                    break;
                case 'd':
                {
                    var items = PopMark();
                    Push(FillDict(new PyDict(), items));
                    break;
                }

                case 's':
                {
                    var value = Pop();
                    var key = Pop();
                    As<PyDict>(Peek(), "SETITEM").Set(key, value, source);
                    break;
                }

                case 'u':
                {
                    var items = PopMark();
                    FillDict(As<PyDict>(Peek(), "SETITEMS"), items);
                    break;
                }

                case 'c': // GLOBAL "module\nname\n"
                {
                    string module = ReadLine();
                    string name = ReadLine();
                    Push(Global(module, name));
                    break;
                }

                case 0x93: // STACK_GLOBAL
                {
                    var name = Pop();
                    var module = Pop();
                    if (module is not string m || name is not string n)
                    {
                        throw Bad("STACK_GLOBAL needs two strings.");
                    }

                    Push(Global(m, n));
                    break;
                }

                case 'R':
                {
                    var args = Pop();
                    var callable = Pop();
                    Push(Reduce(callable, args));
                    break;
                }

                case 'b': // BUILD
                {
                    var state = Pop();
                    var target = Peek();
                    if (target is not (PyDict or TorchTensorRef))
                    {
                        throw Bad($"BUILD on a {TypeName(target)} is not allowed.");
                    }

                    // OrderedDict state (a state dict's _metadata attribute) and tensor state carry no weights: ignored.
                    _ = state;
                    break;
                }

                case 'Q': // BINPERSID
                {
                    var pid = Pop();
                    Push(persistentLoad(pid as PyTuple ?? throw Bad($"persistent id is a {TypeName(pid)}, expected a tuple.")));
                    break;
                }

                case 'q':
                    memo[ReadByte()] = Peek();
                    break;
                case 'r':
                    memo[BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4))] = Peek();
                    break;
                case 0x94: // MEMOIZE
                    memo[memo.Count] = Peek();
                    break;
                case 'h':
                    Push(GetMemo(ReadByte()));
                    break;
                case 'j':
                    Push(GetMemo(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4))));
                    break;
                default:
                    throw Bad($"opcode 0x{op:x2} ('{(op >= 0x20 && op < 0x7f ? (char)op : '?')}') is not allowed in a weight file " +
                              "(only the opcodes that build tensors and plain containers are read).");
            }
        }
    }

    private PyGlobal Global(string module, string name)
    {
        string full = $"{module}.{name}";
        if (!AllowedGlobals.ContainsKey(full))
        {
            throw Bad($"the pickle names the global '{full}', which is refused: only tensors and plain containers are read from a " +
                      $"weight file, never other objects (allowed globals: {string.Join(", ", AllowedGlobals.Keys)}).");
        }

        return new PyGlobal(module, name);
    }

    private object? Reduce(object? callable, object? argsObject)
    {
        if (callable is not PyGlobal g)
        {
            throw Bad($"REDUCE calls a {TypeName(callable)}; only allow-listed torch functions may be called.");
        }

        if (argsObject is not PyTuple { Items: var args })
        {
            throw Bad($"REDUCE arguments for {g.FullName} are a {TypeName(argsObject)}, expected a tuple.");
        }

        switch (g.FullName)
        {
            case "collections.OrderedDict":
                var dict = new PyDict();
                if (args.Length == 1 && args[0] is List<object?> pairs)
                {
                    foreach (var pair in pairs)
                    {
                        if (pair is not PyTuple { Items.Length: 2 } kv)
                        {
                            throw Bad("OrderedDict(...) expects (key, value) pairs.");
                        }

                        dict.Set(kv.Items[0], kv.Items[1], source);
                    }
                }
                else if (args.Length != 0)
                {
                    throw Bad($"OrderedDict called with {args.Length} arguments.");
                }

                return dict;
            case "torch._utils._rebuild_tensor":
            case "torch._utils._rebuild_tensor_v2":
                if (args.Length < 4)
                {
                    throw Bad($"{g.FullName} called with {args.Length} arguments, expected at least 4.");
                }

                return Tensor(args[0], args[1], args[2], args[3]);
            case "torch._utils._rebuild_parameter":
            case "torch._utils._rebuild_parameter_with_state":
                if (args.Length < 1 || args[0] is not TorchTensorRef data)
                {
                    throw Bad($"{g.FullName} expects a tensor as its first argument.");
                }

                return data;
            default:
                throw Bad($"'{g.FullName}' cannot be called (it is only valid inside a storage reference).");
        }
    }

    private TorchTensorRef Tensor(object? storage, object? offset, object? size, object? stride)
    {
        if (storage is not TorchStorage st)
        {
            throw Bad($"a tensor's storage is a {TypeName(storage)}.");
        }

        if (offset is not long off || off < 0 || off > st.Numel)
        {
            throw Bad($"tensor storage offset {offset} is outside its storage of {st.Numel} elements.");
        }

        long[] sizes = Longs(size, "size");
        long[] strides = Longs(stride, "stride");
        if (sizes.Length != strides.Length)
        {
            throw Bad($"tensor size [{string.Join(", ", sizes)}] and stride [{string.Join(", ", strides)}] differ in rank.");
        }

        bool empty = sizes.Any(d => d == 0);
        if (!empty)
        {
            try
            {
                long last = off;
                for (int i = 0; i < sizes.Length; i++)
                {
                    last = checked(last + checked((sizes[i] - 1) * strides[i]));
                }

                if (last >= st.Numel)
                {
                    throw Bad($"tensor view (offset {off}, size [{string.Join(", ", sizes)}], stride [{string.Join(", ", strides)}]) " +
                              $"reaches element {last} of a storage of {st.Numel}.");
                }
            }
            catch (OverflowException)
            {
                throw Bad($"tensor size [{string.Join(", ", sizes)}] with stride [{string.Join(", ", strides)}] overflows.");
            }
        }

        if (WeightTensor.ByteSize(st.DType, sizes) is null)
        {
            throw Bad($"tensor size [{string.Join(", ", sizes)}] overflows.");
        }

        return new TorchTensorRef(st, off, sizes, strides);
    }

    private long[] Longs(object? value, string what)
    {
        if (value is not PyTuple { Items: var items } || items.Length > MaxRank || items.Any(i => i is not long v || v < 0))
        {
            throw Bad($"tensor {what} must be a tuple of at most {MaxRank} non-negative ints, got {Describe(value)}.");
        }

        return items.Select(i => (long)i!).ToArray();
    }

    private static string Describe(object? value) => value is PyTuple t
        ? "(" + string.Join(", ", t.Items.Select(i => i is long l ? l.ToString(CultureInfo.InvariantCulture) : TypeName(i))) + ")"
        : TypeName(value);

    private PyDict FillDict(PyDict dict, List<object?> items)
    {
        if (items.Count % 2 != 0)
        {
            throw Bad("a dict needs key/value pairs, got an odd number of items.");
        }

        for (int i = 0; i < items.Count; i += 2)
        {
            dict.Set(items[i], items[i + 1], source);
        }

        return dict;
    }

    private T As<T>(object? value, string opcode)
        where T : class =>
        value as T ?? throw Bad($"{opcode} on a {TypeName(value)}.");

    private object? GetMemo(long key) =>
        memo.TryGetValue(key, out var value) ? value : throw Bad($"memo key {key} was never stored.");

    private void Push(object? value) => stack.Add(value);

    private object? Peek()
    {
        if (stack.Count == 0 || (marks.Count > 0 && marks[^1] == stack.Count - 1))
        {
            throw Bad("stack underflow.");
        }

        return stack[^1];
    }

    private object? Pop()
    {
        var value = Peek();
        stack.RemoveAt(stack.Count - 1);
        return value;
    }

    private List<object?> PopMark()
    {
        if (marks.Count == 0)
        {
            throw Bad("no MARK on the stack.");
        }

        int at = marks[^1];
        marks.RemoveAt(marks.Count - 1);
        var items = stack.GetRange(at + 1, stack.Count - at - 1);
        stack.RemoveRange(at, stack.Count - at);
        return items;
    }

    private int ReadByte()
    {
        int b = s.ReadByte();
        return b >= 0 ? b : throw Bad("unexpected end of data (truncated file?).");
    }

    private byte[] ReadBytes(long count)
    {
        if (count < 0 || count > Remaining)
        {
            throw Bad($"a length of {count} bytes runs past the end of the data ({Remaining} bytes remain).");
        }

        var bytes = new byte[count];
        WeightStreams.ReadExactly(s, bytes, source, "the pickle");
        return bytes;
    }

    private long ReadLength(int width)
    {
        var bytes = ReadBytes(width);
        ulong v = width == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(bytes) : BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        return v > (ulong)Remaining ? throw Bad($"a length of {v} runs past the end of the data ({Remaining} bytes remain).") : (long)v;
    }

    private long ReadLong(long length)
    {
        if (length > 8)
        {
            throw Bad($"an integer of {length} bytes is too large for a weight file.");
        }

        var bytes = ReadBytes(length);
        long v = 0;
        for (int i = (int)length - 1; i >= 0; i--)
        {
            v = (v << 8) | bytes[i];
        }

        if (length is > 0 and < 8 && (bytes[length - 1] & 0x80) != 0)
        {
            v -= 1L << (int)(8 * length); // two's complement sign
        }

        return v;
    }

    private string ReadUtf8(long length)
    {
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(ReadBytes(length));
        }
        catch (DecoderFallbackException ex)
        {
            throw Bad($"a string is not valid UTF-8 ({ex.Message}).");
        }
    }

    private string ReadLine()
    {
        var bytes = new List<byte>();
        while (true)
        {
            int b = ReadByte();
            if (b == '\n')
            {
                break;
            }

            if (bytes.Count >= 256 || b < 0x20 || b >= 0x7f)
            {
                throw Bad("a GLOBAL opcode's name is not a printable line.");
            }

            bytes.Add((byte)b);
        }

        return Encoding.ASCII.GetString(bytes.ToArray());
    }
}
