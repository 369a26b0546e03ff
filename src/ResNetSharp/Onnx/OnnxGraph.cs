using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using Google.Protobuf;
using ResNetSharp.Onnx.Proto;

namespace ResNetSharp.Onnx;

/// <summary>A constant tensor of an ONNX graph (an initializer or a <c>Constant</c> node), as float32 or int64 values.</summary>
internal sealed class OnnxConstant
{
    public OnnxConstant(long[] dims, float[]? floats, long[]? ints)
    {
        Dims = dims;
        Floats = floats;
        Ints = ints;
    }

    public long[] Dims { get; }

    public float[]? Floats { get; }

    public long[]? Ints { get; }

    public long Count => Dims.Aggregate(1L, (a, b) => a * b);
}

/// <summary>One computing node of the graph (pass-throughs and constants removed), inputs resolved through aliases.</summary>
internal sealed class OnnxNode
{
    public OnnxNode(int index, NodeProto proto, string[] inputs)
    {
        Index = index;
        Proto = proto;
        Inputs = inputs;
    }

    public int Index { get; }

    public NodeProto Proto { get; }

    public string Op => Proto.OpType;

    public string Name => Proto.Name;

    public string[] Inputs { get; }

    public string Output => Proto.Output.Count > 0 ? Proto.Output[0] : "";

    public AttributeProto? Attribute(string name) => Proto.Attribute.FirstOrDefault(a => a.Name == name);

    public long Int(string name, long fallback) => Attribute(name) is { } a ? a.I : fallback;

    public float Float(string name, float fallback) => Attribute(name) is { } a ? a.F : fallback;

    public string Str(string name, string fallback) => Attribute(name) is { } a ? a.S.ToStringUtf8() : fallback;

    public long[]? Ints(string name) => Attribute(name) is { } a ? a.Ints.ToArray() : null;
}

/// <summary>
/// An ONNX model read with the protobuf types generated from onnx.proto: constants decoded (raw_data or typed
/// fields), Identity / Dropout / Constant folded away, producers and consumers indexed for pattern matching.
/// </summary>
internal sealed class OnnxGraph
{
    /// <summary>ONNX's TensorProto.DataType codes used here.</summary>
    private const int Float32 = 1, Int32 = 6, Int64 = 7, Float64 = 11;

    private readonly Dictionary<string, string> alias = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<OnnxNode>> consumers = new(StringComparer.Ordinal);

    private OnnxGraph(string source, ModelProto model)
    {
        Source = source;
        Model = model;
    }

    public string Source { get; }

    public ModelProto Model { get; }

    public long Opset { get; private set; }

    public Dictionary<string, OnnxConstant> Constants { get; } = new(StringComparer.Ordinal);

    public List<OnnxNode> Nodes { get; } = new();

    public string InputName { get; private set; } = "";

    /// <summary>Input dims; null where symbolic (e.g. a dynamic batch or size).</summary>
    public long?[] InputDims { get; private set; } = Array.Empty<long?>();

    public HashSet<string> Outputs { get; } = new(StringComparer.Ordinal);

    public static OnnxGraph Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new OnnxImportException(path, $"cannot read the file: {ex.Message}", inner: ex);
        }

        return Parse(bytes, path);
    }

    public static OnnxGraph Parse(byte[] bytes, string source)
    {
        ModelProto model;
        try
        {
            model = ModelProto.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new OnnxImportException(source, $"not a readable ONNX model (truncated or not ONNX protobuf): {ex.Message}", inner: ex);
        }

        if (model.IrVersion <= 0 || model.Graph is null || model.Graph.Node.Count == 0 || model.OpsetImport.Count == 0)
        {
            throw new OnnxImportException(source,
                $"not an ONNX model: expected a ModelProto with an ir_version, an opset_import and a graph of nodes " +
                $"(got ir_version {model.IrVersion}, {model.OpsetImport.Count} opset imports, {model.Graph?.Node.Count ?? 0} nodes).");
        }

        var graph = new OnnxGraph(source, model);
        graph.Index();
        return graph;
    }

    public OnnxImportException Error(string message, OnnxNode? node = null) =>
        node is null ? new OnnxImportException(Source, message) : new OnnxImportException(Source, message, node.Name, node.Op, node.Index);

    public string Resolve(string name)
    {
        while (alias.TryGetValue(name, out string? target))
        {
            name = target;
        }

        return name;
    }

    public IReadOnlyList<OnnxNode> ConsumersOf(string value) =>
        consumers.TryGetValue(value, out var list) ? list : (IReadOnlyList<OnnxNode>)Array.Empty<OnnxNode>();

    public OnnxConstant? Constant(string value) => Constants.GetValueOrDefault(value);

    private void Index()
    {
        var opset = Model.OpsetImport.FirstOrDefault(o => o.Domain is "" or "ai.onnx");
        if (opset is null)
        {
            throw Error("the model imports no version of the default ONNX operator set (domain \"\" or \"ai.onnx\").");
        }

        Opset = opset.Version;
        if (Opset < 7)
        {
            throw Error($"opset {Opset} is too old: the importer reads ONNX opset 7 or newer (re-export the model with a newer opset).");
        }

        var g = Model.Graph;
        foreach (var init in g.Initializer)
        {
            Constants[init.Name] = Decode(init, $"initializer '{init.Name}'");
        }

        for (int i = 0; i < g.Node.Count; i++)
        {
            var p = g.Node[i];
            if (p.Domain is not ("" or "ai.onnx"))
            {
                throw new OnnxImportException(Source, $"operator domain '{p.Domain}' is not supported: expected standard ONNX operators.", p.Name, p.OpType, i);
            }

            var inputs = p.Input.Select(n => n.Length == 0 ? "" : Resolve(n)).ToArray();
            switch (p.OpType)
            {
                case "Constant":
                {
                    var value = p.Attribute.FirstOrDefault(a => a.Name == "value")?.T
                        ?? throw new OnnxImportException(Source, "a Constant without a tensor 'value' is not supported.", p.Name, p.OpType, i);
                    Constants[p.Output[0]] = Decode(value, $"Constant '{p.Name}'", p, i);
                    continue;
                }

                case "Identity":
                case "Dropout": // inference: the identity; its optional mask output must be unused.
                    if (inputs.Length == 0 || p.Output.Count == 0)
                    {
                        throw new OnnxImportException(Source, $"{p.OpType} needs one input and one output.", p.Name, p.OpType, i);
                    }

                    if (Constants.TryGetValue(inputs[0], out var c))
                    {
                        Constants[p.Output[0]] = c;
                    }
                    else
                    {
                        alias[p.Output[0]] = inputs[0];
                    }

                    if (p.OpType == "Dropout" && p.Output.Count > 1 && p.Output[1].Length > 0)
                    {
                        DropoutMasks.Add(p.Output[1]);
                    }

                    continue;
            }

            if (Foldable.Contains(p.OpType) && p.Output.Count == 1 && inputs.All(n => n.Length == 0 || Constants.ContainsKey(n)))
            {
                // Shape arithmetic on constants (what PyTorch writes for F.pad's pads): evaluate it once here.
                try
                {
                    Constants[p.Output[0]] = Fold(p, inputs, i);
                }
                catch (Exception ex) when (ex is IndexOutOfRangeException or ArgumentException or InvalidOperationException or OverflowException or KeyNotFoundException)
                {
                    throw new OnnxImportException(Source, $"cannot evaluate this constant expression: {ex.Message}", p.Name, p.OpType, i, ex);
                }

                continue;
            }

            var node = new OnnxNode(i, p, inputs);
            Nodes.Add(node);
            foreach (string used in inputs.Where(n => n.Length > 0).Distinct())
            {
                if (!consumers.TryGetValue(used, out var list))
                {
                    consumers[used] = list = new List<OnnxNode>();
                }

                list.Add(node);
            }
        }

        foreach (var o in g.Output)
        {
            Outputs.Add(Resolve(o.Name));
        }

        var inputsLeft = g.Input.Where(v => !Constants.ContainsKey(v.Name)).ToList();
        if (inputsLeft.Count != 1)
        {
            throw Error($"expected exactly one graph input (the image batch) besides the initializers, got {inputsLeft.Count}" +
                        (inputsLeft.Count > 0 ? $": {string.Join(", ", inputsLeft.Select(v => v.Name))}." : "."));
        }

        var input = inputsLeft[0];
        InputName = input.Name;
        var tensorType = input.Type?.TensorType;
        if (tensorType is null || tensorType.ElemType != Float32)
        {
            throw Error($"graph input '{input.Name}' must be a float32 tensor N×C×H×W (got element type {tensorType?.ElemType.ToString() ?? "none"}).");
        }

        InputDims = tensorType.Shape is { } shape
            ? shape.Dim.Select(d => d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue && d.DimValue > 0 ? d.DimValue : (long?)null).ToArray()
            : new long?[] { null, null, null, null };
        if (InputDims.Length != 4)
        {
            throw Error($"graph input '{input.Name}' must have rank 4 (N×C×H×W), got rank {InputDims.Length}.");
        }
    }

    public HashSet<string> DropoutMasks { get; } = new(StringComparer.Ordinal);

    /// <summary>Largest constant the shape-arithmetic evaluator builds (a ResNet's shape computations hold a few values).</summary>
    private const int MaxFoldedElements = 1 << 20;

    private static readonly HashSet<string> Foldable = new(StringComparer.Ordinal)
    {
        "ConstantOfShape", "Concat", "Reshape", "Transpose", "Slice", "Cast", "Unsqueeze", "Squeeze",
    };

    /// <summary>
    /// Evaluates one shape-arithmetic node whose inputs are all constants (small int64 or float tensors). Written here
    /// because no maintained .NET package evaluates ONNX subgraphs short of running a session (ONNX Runtime, which the
    /// library does not depend on), and only the eight operators exporters use for pads and shapes are needed.
    /// </summary>
    private OnnxConstant Fold(NodeProto p, string[] inputs, int index)
    {
        OnnxImportException Bad(string message) => new(Source, $"cannot evaluate this constant expression: {message}", p.Name, p.OpType, index);
        OnnxConstant In(int k) => k < inputs.Length && inputs[k].Length > 0 ? Constants[inputs[k]] : throw Bad($"input {k} is missing.");
        static double[] Values(OnnxConstant c) => c.Ints is { } l ? l.Select(v => (double)v).ToArray()
            : c.Floats is { } f ? f.Select(v => (double)v).ToArray() : Array.Empty<double>();
        static OnnxConstant Make(long[] dims, double[] v, bool isInt) =>
            isInt ? new OnnxConstant(dims, null, v.Select(x => (long)x).ToArray()) : new OnnxConstant(dims, v.Select(x => (float)x).ToArray(), null);
        long[] Ints(int k) => In(k).Ints ?? throw Bad($"input {k} must be int64.");
        long[]? AttrInts(string name) => p.Attribute.FirstOrDefault(a => a.Name == name) is { } a ? a.Ints.ToArray() : null;
        long Attr(string name, long fallback) => p.Attribute.FirstOrDefault(a => a.Name == name) is { } a ? a.I : fallback;

        var x = p.OpType == "ConstantOfShape" ? null : In(0);
        if (x is not null && x.Ints is null && x.Floats is null)
        {
            throw Bad("only int64/int32/float constants are evaluated.");
        }

        bool isInt = x?.Ints is not null;
        double[] data = x is null ? Array.Empty<double>() : Values(x);
        switch (p.OpType)
        {
            case "ConstantOfShape":
            {
                long[] dims = Ints(0);
                if (dims.Any(d => d < 0) || dims.Aggregate(1.0, (a, b) => a * b) > MaxFoldedElements)
                {
                    throw Bad($"shape [{string.Join(", ", dims)}] is negative or larger than the {MaxFoldedElements} values a shape computation needs.");
                }

                var value = p.Attribute.FirstOrDefault(a => a.Name == "value")?.T;
                var v = value is null ? new OnnxConstant(new long[] { 1 }, new[] { 0f }, null) : Decode(value, "ConstantOfShape value", p, index);
                long n = dims.Aggregate(1L, (a, b) => a * b);
                return Make(dims, Enumerable.Repeat(Values(v).FirstOrDefault(), (int)n).ToArray(), v.Ints is not null);
            }

            case "Cast":
            {
                long to = Attr("to", Float32);
                return to switch
                {
                    Int64 or Int32 => Make(x!.Dims, data.Select(Math.Truncate).ToArray(), true),
                    Float32 or Float64 => Make(x!.Dims, data, false),
                    _ => throw Bad($"Cast to type {to} is not evaluated."),
                };
            }

            case "Reshape":
            {
                long[] shape = Ints(1).ToArray();
                for (int k = 0; k < shape.Length; k++)
                {
                    if (shape[k] == 0)
                    {
                        shape[k] = x!.Dims[k];
                    }
                }

                long known = shape.Where(d => d != -1).Aggregate(1L, (a, b) => a * b);
                int minus = Array.IndexOf(shape, -1L);
                if (minus >= 0)
                {
                    shape[minus] = known == 0 ? 0 : data.Length / known;
                }

                return shape.Aggregate(1L, (a, b) => a * b) == data.Length ? Make(shape, data, isInt) : throw Bad($"cannot reshape {data.Length} values to [{string.Join(", ", shape)}].");
            }

            case "Unsqueeze":
            case "Squeeze":
            {
                long[] axes = AttrInts("axes") ?? (inputs.Length > 1 && inputs[1].Length > 0 ? Ints(1) : Array.Empty<long>());
                var dims = x!.Dims.ToList();
                if (p.OpType == "Squeeze")
                {
                    var drop = axes.Length == 0 ? Enumerable.Range(0, dims.Count).Where(k => dims[k] == 1).ToHashSet()
                        : axes.Select(a => (int)(a < 0 ? a + dims.Count : a)).ToHashSet();
                    dims = dims.Where((_, k) => !drop.Contains(k)).ToList();
                }
                else
                {
                    int rank = dims.Count + axes.Length;
                    foreach (int a in axes.Select(a => (int)(a < 0 ? a + rank : a)).OrderBy(a => a))
                    {
                        dims.Insert(a, 1);
                    }
                }

                return Make(dims.ToArray(), data, isInt);
            }

            case "Concat":
            {
                var parts = inputs.Where(n => n.Length > 0).Select(n => Constants[n]).ToList();
                long axis = Attr("axis", 0);
                if (parts.Any(c => c.Dims.Length != 1) || axis is not (0 or -1))
                {
                    throw Bad("only 1-D Concat is evaluated.");
                }

                return Make(new[] { parts.Sum(c => c.Dims[0]) }, parts.SelectMany(Values).ToArray(), parts.All(c => c.Ints is not null));
            }

            case "Transpose":
            {
                if (x!.Dims.Length != 2 || (AttrInts("perm") is { } perm && !perm.SequenceEqual(new long[] { 1, 0 })))
                {
                    throw Bad("only 2-D Transpose is evaluated.");
                }

                long r = x.Dims[0], c = x.Dims[1];
                var t = new double[data.Length];
                for (long a = 0; a < r; a++)
                {
                    for (long b = 0; b < c; b++)
                    {
                        t[b * r + a] = data[a * c + b];
                    }
                }

                return Make(new[] { c, r }, t, isInt);
            }

            default: // Slice
            {
                long[] starts = AttrInts("starts") ?? Ints(1), ends = AttrInts("ends") ?? Ints(2);
                long[] axes = AttrInts("axes") ?? (inputs.Length > 3 && inputs[3].Length > 0 ? Ints(3) : Enumerable.Range(0, starts.Length).Select(k => (long)k).ToArray());
                long[] steps = inputs.Length > 4 && inputs[4].Length > 0 ? Ints(4) : Enumerable.Repeat(1L, starts.Length).ToArray();
                int rank = x!.Dims.Length;
                var picks = Enumerable.Range(0, rank).Select(k => Enumerable.Range(0, (int)x.Dims[k]).Select(v => (long)v).ToArray()).ToArray();
                for (int k = 0; k < axes.Length; k++)
                {
                    int axis = (int)(axes[k] < 0 ? axes[k] + rank : axes[k]);
                    long dim = x.Dims[axis], step = steps[k];
                    if (step == 0)
                    {
                        throw Bad("Slice step 0.");
                    }

                    long Clamp(long v, long lo, long hi) => Math.Max(lo, Math.Min(hi, v < 0 ? v + dim : v));
                    long start = step > 0 ? Clamp(starts[k], 0, dim) : Clamp(starts[k], -1, dim - 1);
                    long end = step > 0 ? Clamp(ends[k], 0, dim) : Clamp(ends[k], -1, dim - 1);
                    if (ends[k] < -dim && step < 0)
                    {
                        end = -1;
                    }

                    var picked = new List<long>();
                    for (long v = start; step > 0 ? v < end : v > end; v += step)
                    {
                        picked.Add(v);
                    }

                    picks[axis] = picked.ToArray();
                }

                long[] outDims = picks.Select(a => (long)a.Length).ToArray();
                long[] strides = new long[rank];
                for (int k = rank - 1, acc = 1; k >= 0; acc *= (int)x.Dims[k], k--)
                {
                    strides[k] = acc;
                }

                var result = new List<double>();
                void Walk(int k, long offset)
                {
                    if (k == rank)
                    {
                        result.Add(data[offset]);
                        return;
                    }

                    foreach (long v in picks[k])
                    {
                        Walk(k + 1, offset + v * strides[k]);
                    }
                }

                Walk(0, 0);
                return Make(outDims, result.ToArray(), isInt);
            }
        }
    }

    private OnnxConstant Decode(TensorProto t, string what, NodeProto? node = null, int index = -1)
    {
        OnnxImportException Bad(string message) => node is null
            ? new OnnxImportException(Source, $"{what}: {message}")
            : new OnnxImportException(Source, $"{what}: {message}", node.Name, node.OpType, index);

        if (t.DataLocation == TensorProto.Types.DataLocation.External)
        {
            throw Bad("its data is stored in an external file; save the model with all tensors inside the .onnx file.");
        }

        long[] dims = t.Dims.ToArray();
        if (dims.Any(d => d < 0))
        {
            throw Bad($"negative dimension in [{string.Join(", ", dims)}].");
        }

        long count;
        try
        {
            count = dims.Aggregate(1L, (a, b) => checked(a * b));
        }
        catch (OverflowException)
        {
            throw Bad($"shape [{string.Join(", ", dims)}] overflows.");
        }

        byte[] raw = t.RawData.ToByteArray();
        long Check(long got, int size)
        {
            if (got != count)
            {
                throw Bad($"holds {got} values ({(raw.Length > 0 ? $"{raw.Length} raw bytes" : "typed field")}) but its shape [{string.Join(", ", dims)}] needs {count} ({count * size} bytes).");
            }

            return got;
        }

        switch (t.DataType)
        {
            case Float32:
                if (raw.Length > 0)
                {
                    Check(raw.Length / 4, 4);
                    if (raw.Length % 4 != 0)
                    {
                        throw Bad($"raw_data has {raw.Length} bytes, not a multiple of 4.");
                    }

                    return new OnnxConstant(dims, MemoryMarshal.Cast<byte, float>(raw).ToArray(), null);
                }

                Check(t.FloatData.Count, 4);
                return new OnnxConstant(dims, t.FloatData.ToArray(), null);
            case Float64:
                if (raw.Length > 0)
                {
                    Check(raw.Length / 8, 8);
                    return new OnnxConstant(dims, MemoryMarshal.Cast<byte, double>(raw).ToArray().Select(v => (float)v).ToArray(), null);
                }

                Check(t.DoubleData.Count, 8);
                return new OnnxConstant(dims, t.DoubleData.Select(v => (float)v).ToArray(), null);
            case Int64:
                if (raw.Length > 0)
                {
                    Check(raw.Length / 8, 8);
                    return new OnnxConstant(dims, null, MemoryMarshal.Cast<byte, long>(raw).ToArray());
                }

                Check(t.Int64Data.Count, 8);
                return new OnnxConstant(dims, null, t.Int64Data.ToArray());
            case Int32:
                if (raw.Length > 0)
                {
                    Check(raw.Length / 4, 4);
                    return new OnnxConstant(dims, null, MemoryMarshal.Cast<byte, int>(raw).ToArray().Select(v => (long)v).ToArray());
                }

                Check(t.Int32Data.Count, 4);
                return new OnnxConstant(dims, null, t.Int32Data.Select(v => (long)v).ToArray());
            default:
                // Other types (float16, int8, …) never carry ResNet weights written by the exporters this reads; keep them opaque.
                return new OnnxConstant(dims, null, null);
        }
    }
}
