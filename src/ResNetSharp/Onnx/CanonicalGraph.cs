using System;
using System.Collections.Generic;
using System.Linq;

namespace ResNetSharp.Onnx;

/// <summary>What a <see cref="CanonicalOp"/> computes: one kind per thing a ResNet does, whatever form the exporter wrote it in.</summary>
internal enum CanonicalKind { Conv, Norm, Relu, Add, MaxPool, ZeroPad, GlobalPool, Linear }

/// <summary>
/// One op of a <see cref="CanonicalGraph"/>, named for errors by the ONNX node it starts at. Only its kind's fields are set:
/// Conv (<see cref="Dims"/> [out, in/groups, k, k], <see cref="Weight"/>, <see cref="Bias"/> or null, strides, pads before
/// each axis, dilation, groups), Norm (γ in <see cref="Weight"/>, β in <see cref="Bias"/>, running mean and variance for
/// ResNetSharp's ε), MaxPool (kernel, strides, pads), ZeroPad (row and column strides, appended channels), GlobalPool
/// (the AveragePool kernel, 0 when global by construction), Linear (<see cref="Dims"/> [classes, features]).
/// </summary>
internal sealed record CanonicalOp(CanonicalKind Kind, OnnxNode Node, string[] In, string Out)
{
    public long[] Dims { get; init; } = Array.Empty<long>();
    public float[] Weight { get; init; } = Array.Empty<float>();
    public float[]? Bias { get; init; }
    public float[] Mean { get; init; } = Array.Empty<float>();
    public float[] Var { get; init; } = Array.Empty<float>();
    /// <summary>A Norm written as BatchNormalization (false: as a per-channel Mul + Add, i.e. already folded).</summary>
    public bool FromBatchNorm { get; init; }
    public long Kernel { get; init; }
    public long Stride { get; init; } = 1;
    public long StrideW { get; init; } = 1;
    public long[] Pads { get; init; } = { 0, 0 };
    public long Dilation { get; init; } = 1;
    public long Groups { get; init; } = 1;
    public long Extra { get; init; }
}

/// <summary>
/// An ONNX graph rewritten into <see cref="CanonicalOp"/>s, one form per operation: BatchNormalization and per-channel
/// Mul + Add become Norm; Sum becomes Add; zero Pad nodes fold into the following Conv's (or, after a ReLU, MaxPool's)
/// pads, and auto_pad or asymmetric pads become the padding before each axis when they give the same output size;
/// Slice and channel Pad chains become one ZeroPad (option A); GlobalAveragePool, a whole-map AveragePool and
/// ReduceMean become GlobalPool; Flatten/Reshape/Squeeze after it disappear; Gemm (any transB, alpha, beta) and
/// MatMul (+ Add of a bias) become Linear [classes, features]. Shapes (channels, and height and width where the input
/// declares them) are followed through the graph. Anything else throws an <see cref="OnnxImportException"/> naming the node.
/// </summary>
internal sealed class CanonicalGraph
{
    /// <summary>The running variance that makes BatchNorm an exact identity in float32: (1 − 1e-5) + 1e-5 rounds to 1.</summary>
    internal const float IdentityVariance = 1f - TorchEps;

    /// <summary>The epsilon of every BatchNorm2d ResNetSharp builds (PyTorch's default; float32(1e-5) once in the kernel).</summary>
    private const float TorchEps = 1e-5f;

    private readonly Dictionary<string, (long? C, long? H, long? W)> shapes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> alias = new(StringComparer.Ordinal);
    private readonly Dictionary<string, CanonicalOp> producers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<CanonicalOp>> consumers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (OnnxNode Node, string Input, long[] Pads)> spatialPads = new(StringComparer.Ordinal);
    private readonly HashSet<OnnxNode> absorbed = new();

    public CanonicalGraph(OnnxGraph graph)
    {
        G = graph;
        if (graph.Model.Graph.Output.Count != 1)
        {
            throw graph.Error($"expected one graph output (logits or features), got {graph.Model.Graph.Output.Count}.");
        }

        Input = graph.InputName;
        shapes[Input] = (graph.InputDims[1], graph.InputDims[2], graph.InputDims[3]);
        foreach (var node in graph.Nodes.Where(n => !absorbed.Contains(n)))
        {
            Canonicalise(node);
        }

        Output = alias.GetValueOrDefault(graph.Outputs.Single(), graph.Outputs.Single());
        if (!shapes.ContainsKey(Output))
        {
            throw graph.Error($"the graph output '{Output}' is not a feature map, features or logits computed from the input.");
        }

        foreach (var op in Ops)
        {
            foreach (string v in op.In.Distinct())
            {
                (consumers.TryGetValue(v, out var list) ? list : consumers[v] = new List<CanonicalOp>()).Add(op);
            }
        }
    }

    public OnnxGraph G { get; }

    /// <summary>The ops in graph order (topological: every op's inputs are computed before it).</summary>
    public List<CanonicalOp> Ops { get; } = new();

    public string Input { get; }

    public string Output { get; }

    public (long? C, long? H, long? W) Shape(string value) => shapes[value];

    public CanonicalOp? Producer(string value) => producers.GetValueOrDefault(value);

    public IReadOnlyList<CanonicalOp> Consumers(string value) =>
        consumers.TryGetValue(value, out var list) ? list : (IReadOnlyList<CanonicalOp>)Array.Empty<CanonicalOp>();

    private void Canonicalise(OnnxNode node)
    {
        if (node.Op is "Relu" or "MaxPool" or "GlobalAveragePool" or "AveragePool" or "Flatten" && node.Inputs.Length != 1)
        {
            throw G.Error($"{node.Op} takes one input, got {node.Inputs.Length}.", node);
        }

        switch (node.Op)
        {
            case "Conv":
            {
                var (x, extra) = Padded(node);
                var w = FloatConst(node, 1, "the convolution weight");
                if (w.Dims.Length != 4 || w.Dims[2] != w.Dims[3] || w.Dims.Any(d => d < 1))
                {
                    throw G.Error($"convolution weight [{string.Join(", ", w.Dims)}]: expected a square 2-D kernel [out, in/groups, k, k].", node);
                }

                long outC = w.Dims[0], k = w.Dims[2], groups = node.Int("group", 1);
                if (groups < 1 || (shapes[x].C is { } ic && ic != w.Dims[1] * groups))
                {
                    throw G.Error($"convolution takes {w.Dims[1] * groups} channels ({w.Dims[1]} × {groups} groups); its input has {shapes[x].C}.", node);
                }

                if (node.Ints("kernel_shape") is { } ks && !ks.SequenceEqual(new[] { k, k }))
                {
                    throw G.Error($"kernel_shape [{string.Join(", ", ks)}] does not match the weight's {k}×{k}.", node);
                }

                long stride = Pair(node, "strides"), dilation = Pair(node, "dilations");
                float[]? bias = null;
                if (node.Inputs.Length > 2 && node.Inputs[2].Length > 0)
                {
                    var b = FloatConst(node, 2, "the convolution bias");
                    bias = b.Count == outC ? b.Floats : throw G.Error($"convolution bias has {b.Count} values for {outC} output channels.", node);
                }

                var (pads, h, wd) = Window(node, (k - 1) * dilation + 1, stride, shapes[x], extra);
                Add(new CanonicalOp(CanonicalKind.Conv, node, new[] { x }, node.Output)
                {
                    Dims = w.Dims, Weight = w.Floats!, Bias = bias, Stride = stride, StrideW = stride, Pads = pads, Dilation = dilation, Groups = groups,
                }, (outC, h, wd));
                break;
            }

            case "BatchNormalization":
            {
                string x = Data(node);
                if (node.Inputs.Length < 5)
                {
                    throw G.Error("expected BatchNormalization(X, scale, B, mean, var).", node);
                }

                if (node.Int("training_mode", 0) != 0 || node.Proto.Output.Skip(1).Any(o => o.Length > 0 && G.ConsumersOf(o).Count > 0))
                {
                    throw G.Error("BatchNormalization in training mode: export the model in eval (inference) mode.", node);
                }

                if (node.Attribute("spatial") is { } sp && sp.I != 1)
                {
                    throw G.Error("BatchNormalization with spatial = 0 (per-pixel statistics) is not a ResNet's BN.", node);
                }

                long channels = shapes[x].C ?? FloatConst(node, 1, "the BN scale").Count;
                float[] Param(int i, string what)
                {
                    var c = FloatConst(node, i, $"the BN {what}");
                    return c.Count == channels ? c.Floats! : throw G.Error($"BN {what} has {c.Count} values for {channels} channels.", node);
                }

                // BN divides by √(var + eps); ResNetSharp's BN has eps 1e-5, so the difference moves into the variance.
                float eps = node.Float("epsilon", 1e-5f);
                Add(new CanonicalOp(CanonicalKind.Norm, node, new[] { x }, node.Output)
                {
                    Weight = Param(1, "scale"), Bias = Param(2, "bias"), Mean = Param(3, "mean"),
                    Var = Param(4, "variance").Select(v => eps == TorchEps ? v : (float)(v + (double)eps - TorchEps)).ToArray(), FromBatchNorm = true,
                }, shapes[x]);
                break;
            }

            case "Mul":
            {
                // A BN an exporter wrote as scale and shift: Add(Mul(x, scale), shift), both per channel.
                string x = Data(node);
                float[] scale = PerChannel(node, "scale", shapes[x].C);
                var add = SingleConsumer(node.Output) is { Op: "Add" } a && a.Inputs[0] == node.Output
                    ? a
                    : throw G.Error("expected Add(scaled map, per-channel shift) after a per-channel Mul.", SingleConsumer(node.Output) ?? node);
                absorbed.Add(add);
                Add(new CanonicalOp(CanonicalKind.Norm, node, new[] { x }, add.Output)
                {
                    Weight = scale, Bias = PerChannel(add, "shift", scale.Length), Mean = new float[scale.Length],
                    Var = Enumerable.Repeat(IdentityVariance, scale.Length).ToArray(),
                }, shapes[x]);
                break;
            }

            case "Add" or "Sum":
            {
                var inputs = node.Inputs.Where(i => i.Length > 0).ToArray();
                if (inputs.Length != 2 || inputs.Any(i => G.Constant(i) is not null))
                {
                    throw G.Error("expected a residual Add of exactly two feature maps (the branch and the shortcut).", node);
                }

                string a = Data(node, 0), b = Data(node, 1);
                Add(new CanonicalOp(CanonicalKind.Add, node, new[] { a, b }, node.Output), shapes[a]);
                break;
            }

            case "Relu":
            {
                string x = Data(node);
                Add(new CanonicalOp(CanonicalKind.Relu, node, new[] { x }, node.Output), shapes[x]);
                break;
            }

            case "MaxPool":
            {
                var (x, extra) = Padded(node);
                long[] ks = node.Ints("kernel_shape") ?? Array.Empty<long>();
                if (ks.Length != 2 || ks[0] != ks[1] || ks[0] < 1 || (node.Ints("dilations") ?? new long[] { 1, 1 }).Any(d => d != 1))
                {
                    throw G.Error($"MaxPool kernel [{string.Join(", ", ks)}]: expected a square, undilated window.", node);
                }

                if (node.Proto.Output.Count > 1 && node.Proto.Output[1].Length > 0 && G.ConsumersOf(node.Proto.Output[1]).Count > 0)
                {
                    throw G.Error("MaxPool's indices output is used: not a ResNet stem.", node);
                }

                long stride = Pair(node, "strides");
                var (pads, h, w) = Window(node, ks[0], stride, shapes[x], extra);
                Add(new CanonicalOp(CanonicalKind.MaxPool, node, new[] { x }, node.Output) { Kernel = ks[0], Stride = stride, StrideW = stride, Pads = pads },
                    (shapes[x].C, h, w));
                break;
            }

            case "Slice":
            {
                string x = Data(node);
                long[] starts = node.Ints("starts") ?? IntsInput(node, 1, "starts");
                long[] ends = node.Ints("ends") ?? IntsInput(node, 2, "ends");
                long[] axes = node.Ints("axes") ?? (node.Inputs.Length > 3 && node.Inputs[3].Length > 0 ? IntsInput(node, 3, "axes") : Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray());
                long[] steps = node.Inputs.Length > 4 && node.Inputs[4].Length > 0 ? IntsInput(node, 4, "steps") : Enumerable.Repeat(1L, starts.Length).ToArray();
                long sh = 1, sw = 1;
                for (int i = 0; i < axes.Length; i++)
                {
                    long axis = axes[i] < 0 ? axes[i] + 4 : axes[i];
                    if (axis is not (2 or 3) || starts[i] != 0 || ends[i] < int.MaxValue || steps[i] < 1)
                    {
                        throw G.Error($"a shortcut Slice must take every s-th row/column from 0 to the end (axes 2, 3), got axis {axes[i]}, start {starts[i]}, " +
                                      $"end {ends[i]}, step {steps[i]}.", node);
                    }

                    (sh, sw) = axis == 2 ? (sh * steps[i], sw) : (sh, sw * steps[i]);
                }

                ZeroPad(node, x, sh, sw, 0);
                break;
            }

            case "Pad":
            {
                string x = Data(node);
                string mode = node.Str("mode", "constant");
                long[] pads = node.Ints("pads") ?? IntsInput(node, 1, "pads");
                float value = node.Inputs.Length > 2 && node.Inputs[2].Length > 0 ? FloatConst(node, 2, "the pad value").Floats!.FirstOrDefault() : node.Float("value", 0f);
                bool zero = mode == "constant" && value == 0f && pads.Length == 8 && pads.All(p => p >= 0) && pads[0] == 0 && pads[4] == 0;
                if (zero && pads[1] == 0 && pads[2] == 0 && pads[3] == 0 && pads[6] == 0 && pads[7] == 0)
                {
                    ZeroPad(node, x, 1, 1, pads[5]); // zero channels appended: option A's shortcut
                }
                else if (zero && pads[1] == 0 && pads[5] == 0)
                {
                    spatialPads[node.Output] = (node, x, new[] { pads[2], pads[3], pads[6], pads[7] }); // folded into the Conv/MaxPool after it
                }
                else
                {
                    throw G.Error($"a Pad must add zeros either as channels after the input's (pads [0, 0, 0, 0, 0, k, 0, 0], an option-A shortcut) or around " +
                                  $"the rows and columns before a Conv or MaxPool; got mode {mode}, value {value}, pads [{string.Join(", ", pads)}].", node);
                }

                break;
            }

            case "GlobalAveragePool" or "AveragePool" or "ReduceMean":
            {
                string x = Data(node);
                long kernel = 0;
                if (node.Op == "AveragePool")
                {
                    long[] k = node.Ints("kernel_shape") ?? Array.Empty<long>();
                    long[] pads = node.Ints("pads") ?? new long[4];
                    string autoPad = node.Str("auto_pad", "NOTSET");
                    if (k.Length != 2 || k[0] != k[1] || pads.Any(p => p != 0) || autoPad is not ("NOTSET" or "VALID") || node.Int("ceil_mode", 0) != 0)
                    {
                        throw G.Error($"an AveragePool head must be a square kernel over the whole map with no padding, got kernel [{string.Join(", ", k)}], " +
                                      $"pads [{string.Join(", ", pads)}], auto_pad {autoPad}.", node);
                    }

                    if (shapes[x].H is { } h && (h != k[0] || shapes[x].W != k[1]))
                    {
                        throw G.Error($"AveragePool kernel {k[0]}×{k[1]} does not cover the {h}×{shapes[x].W} feature map: expected global average pooling.", node);
                    }

                    kernel = k[0];
                }
                else if (node.Op == "ReduceMean")
                {
                    long[] axes = node.Ints("axes") ?? (node.Inputs.Length > 1 && node.Inputs[1].Length > 0 ? IntsInput(node, 1, "axes") : Array.Empty<long>());
                    if (!axes.Select(a => a < 0 ? a + 4 : a).Order().SequenceEqual(new long[] { 2, 3 }))
                    {
                        throw G.Error($"ReduceMean over axes [{string.Join(", ", axes)}]: expected [2, 3] (global average pooling).", node);
                    }
                }

                Add(new CanonicalOp(CanonicalKind.GlobalPool, node, new[] { x }, node.Output) { Kernel = kernel }, (shapes[x].C, 1, 1));
                break;
            }

            case "Flatten" or "Reshape" or "Squeeze":
            {
                string x = Data(node);
                if (Producer(x)?.Kind != CanonicalKind.GlobalPool)
                {
                    throw G.Error($"{node.Op} is only read as the head's flatten, right after global average pooling.", node);
                }

                if (node.Op == "Flatten" && node.Int("axis", 1) != 1)
                {
                    throw G.Error($"Flatten axis {node.Int("axis", 1)}: expected 1 (N × features).", node);
                }

                if (node.Op == "Reshape" && G.Constant(node.Inputs.ElementAtOrDefault(1) ?? "") is { Ints: { } shape } && !(shape.Length == 2 && (shape[1] == shapes[x].C || shape[1] == -1)))
                {
                    throw G.Error($"Reshape to [{string.Join(", ", shape)}]: expected [N, {shapes[x].C}].", node);
                }

                alias[node.Output] = x;
                break;
            }

            case "Gemm":
            {
                string x = Data(node);
                var b = FloatConst(node, 1, "the classifier weight");
                if (node.Int("transA", 0) != 0 || b.Dims.Length != 2 || b.Dims.Any(d => d < 1))
                {
                    throw G.Error("a Gemm classifier must have transA = 0 and a 2-D constant weight.", node);
                }

                bool transB = node.Int("transB", 0) != 0;
                float alpha = node.Float("alpha", 1f), beta = node.Float("beta", 1f);
                long inF = transB ? b.Dims[1] : b.Dims[0], classes = transB ? b.Dims[0] : b.Dims[1];
                if (shapes[x].C is { } c && inF != c)
                {
                    throw G.Error($"Gemm weight {string.Join("×", b.Dims)} takes {inF} features; the backbone gives {c}.", node);
                }

                float[] bias = new float[classes];
                if (node.Inputs.Length > 2 && node.Inputs[2].Length > 0)
                {
                    var bc = FloatConst(node, 2, "the classifier bias");
                    bias = bc.Count == classes ? bc.Floats!.Select(v => v * beta).ToArray()
                        : throw G.Error($"Gemm bias has {bc.Count} values for {classes} classes (only a per-class bias is a classifier).", node);
                }

                Linear(node, x, Rows(b.Floats!, b.Dims, !transB, alpha), bias, classes, inF, node.Output);
                break;
            }

            case "MatMul":
            {
                string x = Data(node);
                var b = FloatConst(node, 1, "the classifier weight");
                if (b.Dims.Length != 2 || b.Dims.Any(d => d < 1) || (shapes[x].C is { } c && b.Dims[0] != c))
                {
                    throw G.Error($"MatMul weight [{string.Join(", ", b.Dims)}]: expected [{shapes[x].C}, classes].", node);
                }

                long classes = b.Dims[1];
                float[] bias = new float[classes];
                string output = node.Output;
                if (SingleConsumer(output) is { Op: "Add" } add && add.Inputs.Length == 2 && G.Constant(add.Inputs.First(i => i != output)) is { Floats: { } bv } bc)
                {
                    bias = bc.Count == classes ? bv : throw G.Error($"expected Add of a constant {classes}-value bias after the MatMul classifier.", add);
                    absorbed.Add(add);
                    output = add.Output;
                }

                Linear(node, x, Rows(b.Floats!, b.Dims, true, 1f), bias, classes, b.Dims[0], output);
                break;
            }

            default:
                throw G.Error($"operator {node.Op} is not part of a ResNet: expected Conv, BatchNormalization (or per-channel Mul + Add), Relu, Add/Sum, MaxPool, " +
                              "Slice/Pad (option-A shortcuts, padding), GlobalAveragePool/AveragePool/ReduceMean, Flatten/Reshape/Squeeze, Gemm or MatMul (+ Add).", node);
        }
    }

    private void Add(CanonicalOp op, (long? C, long? H, long? W) shape)
    {
        if (shapes.ContainsKey(op.Out) || op.Out.Length == 0)
        {
            throw G.Error($"output '{op.Out}' is empty or already written by another node: an ONNX value is written once.", op.Node);
        }

        Ops.Add(op);
        producers[op.Out] = op;
        shapes[op.Out] = shape;
    }

    private void Linear(OnnxNode node, string x, float[] weight, float[] bias, long classes, long features, string output) =>
        Add(new CanonicalOp(CanonicalKind.Linear, node, new[] { x }, output) { Dims = new[] { classes, features }, Weight = weight, Bias = bias }, (classes, 1, 1));

    /// <summary>Subsampling and appended zero channels (option A), merged with the Slice/Pad before it into one op.</summary>
    private void ZeroPad(OnnxNode node, string x, long strideH, long strideW, long extra)
    {
        var first = node;
        if (Producer(x) is { Kind: CanonicalKind.ZeroPad } before && G.ConsumersOf(x).Count == 1 && !G.Outputs.Contains(x))
        {
            Ops.Remove(before);
            producers.Remove(x);
            shapes.Remove(x);
            (x, strideH, strideW, extra, first) = (before.In[0], strideH * before.Stride, strideW * before.StrideW, extra + before.Extra, before.Node);
        }

        static long? Sub(long? size, long stride) => size is { } v ? (v + stride - 1) / stride : null;
        Add(new CanonicalOp(CanonicalKind.ZeroPad, first, new[] { x }, node.Output) { Stride = strideH, StrideW = strideW, Extra = extra },
            (shapes[x].C + extra, Sub(shapes[x].H, strideH), Sub(shapes[x].W, strideW)));
    }

    /// <summary>Input <paramref name="i"/> of <paramref name="node"/>: a map computed earlier (through Flatten aliases).</summary>
    private string Data(OnnxNode node, int i = 0)
    {
        string v = node.Inputs.Length > i ? node.Inputs[i] : "";
        v = alias.GetValueOrDefault(v, v);
        if (spatialPads.TryGetValue(v, out var pad))
        {
            throw G.Error($"a zero Pad feeds {node.Op} '{node.Name}': only a Conv, or a MaxPool after a ReLU, can take its padding.", pad.Node);
        }

        return shapes.ContainsKey(v) ? v : throw G.Error($"input {i} ('{v}') is not a map computed from the graph input by an earlier node.", node);
    }

    /// <summary>The data input of a Conv/MaxPool and the padding of a zero Pad node before it (folded in), as [begin H, begin W, end H, end W].</summary>
    private (string X, long[] Pads) Padded(OnnxNode node)
    {
        string v = node.Inputs.Length > 0 ? node.Inputs[0] : "";
        if (!spatialPads.TryGetValue(v, out var pad))
        {
            return (Data(node), new long[4]);
        }

        // Zeros pad a max pool as −∞ would only where nothing is negative: after a ReLU.
        if (node.Op == "MaxPool" && Producer(pad.Input)?.Kind != CanonicalKind.Relu)
        {
            throw G.Error("a zero Pad before a MaxPool whose input is not a ReLU's: zeros would change the maximum.", pad.Node);
        }

        return (pad.Input, pad.Pads);
    }

    /// <summary>
    /// The padding before each axis of a Conv/MaxPool window of <paramref name="span"/> pixels (ONNX pads or auto_pad, plus
    /// <paramref name="extra"/> from a folded Pad), and the output size. The padding after an axis may differ from the
    /// padding before it only where the output size at the declared input size is the same (ceil_mode likewise).
    /// </summary>
    private (long[] Pads, long? H, long? W) Window(OnnxNode node, long span, long stride, (long? C, long? H, long? W) input, long[] extra)
    {
        bool ceil = node.Int("ceil_mode", 0) != 0;
        long[] pads = node.Ints("pads") ?? new long[4];
        string auto = node.Str("auto_pad", "NOTSET");
        var begins = new long[2];
        long? Axis(int axis, long? size)
        {
            long begin, end;
            switch (auto)
            {
                case "NOTSET" or "":
                    (begin, end) = pads.Length == 4 ? (pads[axis], pads[axis + 2])
                        : throw G.Error($"pads [{string.Join(", ", pads)}]: expected 4 values (begin H, begin W, end H, end W).", node);
                    break;
                case "VALID":
                    (begin, end) = (0, 0);
                    break;
                case "SAME_UPPER" or "SAME_LOWER":
                    long total = size is { } sz ? Math.Max((sz + stride - 1) / stride * stride - stride + span - sz, 0)
                        : throw G.Error($"auto_pad {auto} with a dynamic input size: the importer needs the input's height and width to map it.", node);
                    begin = auto == "SAME_UPPER" ? total / 2 : total - total / 2;
                    end = total - begin;
                    break;
                default:
                    throw G.Error($"auto_pad '{auto}' is not an ONNX value.", node);
            }

            (begin, end) = (begin + extra[axis], end + extra[axis + 2]);
            long? Out(long b, long e, bool up) => size is { } s ? (s + b + e - span + (up ? stride - 1 : 0)) / stride + 1 : null;
            if (begin < 0 || end < 0 || Out(begin, begin, false) < 1)
            {
                throw G.Error($"padding {begin} before and {end} after axis {axis + 2} of a {span}-pixel window over {size} pixels: expected a non-negative padding and a non-empty output.", node);
            }

            if ((end != begin || ceil) && (size is null || Out(begin, end, ceil) != Out(begin, begin, false)))
            {
                throw G.Error(size is null
                    ? $"asymmetric padding (pads [{string.Join(", ", pads)}]) with a dynamic input size: it equals the symmetric padding {begin} only at some sizes."
                    : $"padding (pads [{string.Join(", ", pads)}], auto_pad {auto}, ceil_mode {(ceil ? 1 : 0)}) gives {Out(begin, end, ceil)} outputs at size {size}; " +
                      $"symmetric padding {begin} gives {Out(begin, begin, false)}.", node);
            }

            begins[axis] = begin;
            return Out(begin, begin, false);
        }

        var (h, w) = (Axis(0, input.H), Axis(1, input.W));
        return (begins, h, w);
    }

    private long Pair(OnnxNode node, string attribute)
    {
        long[] v = node.Ints(attribute) ?? new long[] { 1, 1 };
        return v.Length == 2 && v[0] == v[1] && v[0] >= 1 ? v[0]
            : throw G.Error($"{attribute} [{string.Join(", ", v)}]: expected one positive value for both axes.", node);
    }

    private OnnxConstant FloatConst(OnnxNode node, int input, string what)
    {
        if (node.Inputs.Length <= input || node.Inputs[input].Length == 0)
        {
            throw G.Error($"{what} (input {input}) is missing.", node);
        }

        return G.Constant(node.Inputs[input]) is { Floats: not null } c
            ? c
            : throw G.Error($"{what} (input {input}, '{node.Inputs[input]}') must be a float32 initializer or Constant.", node);
    }

    private long[] IntsInput(OnnxNode node, int input, string what) =>
        node.Inputs.Length > input && G.Constant(node.Inputs[input]) is { Ints: { } v }
            ? v
            : throw G.Error($"'{what}' (input {input}) must be a constant int64 tensor.", node);

    /// <summary>A C×1×1 (or 1×C×1×1) constant as input 1.</summary>
    private float[] PerChannel(OnnxNode n, string what, long? channels) =>
        n.Inputs.Length == 2 && G.Constant(n.Inputs[1]) is { Floats: { } v } c && (channels is null || c.Count == channels) &&
        (c.Dims.Length == 3 || (c.Dims.Length == 4 && c.Dims[0] == 1)) && c.Dims[^1] == 1 && c.Dims[^2] == 1
            ? v
            : throw G.Error($"expected a per-channel {what} ({channels}×1×1 constant) as the second input.", n);

    /// <summary>The one node reading <paramref name="value"/>, or null when none, several, or the value is also a graph output.</summary>
    private OnnxNode? SingleConsumer(string value) =>
        G.ConsumersOf(value) is { Count: 1 } one && !G.Outputs.Contains(value) ? one[0] : null;

    /// <summary>A 2-D weight [rows, cols] as [out, in] (transposed from [in, out] when asked), times <paramref name="scale"/>.</summary>
    private static float[] Rows(float[] data, long[] dims, bool transpose, float scale) =>
        Enumerable.Range(0, data.Length).Select(i => scale * (transpose ? data[(i % dims[0] * dims[1]) + (i / dims[0])] : data[i])).ToArray();
}
