using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using Google.Protobuf;
using ResNetSharp.Onnx.Proto;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNetSharp.Onnx;

/// <summary>What an exported ONNX model computes.</summary>
public enum OnnxOutput
{
    /// <summary>The classifier's logits, output <c>logits</c> (N × NumClasses).</summary>
    Logits,

    /// <summary>The globally pooled features before the classifier, output <c>features</c> (N × FeatureChannels: 512 or 2048 for ImageNet ResNets).</summary>
    PooledFeatures,

    /// <summary>
    /// The feature maps of every stage, one output each, named by their level (<c>C2</c> … <c>C5</c> for four stages;
    /// see <see cref="ResNet.FeatureInfo"/> for channels and strides), for detection and retrieval backbones.
    /// </summary>
    FeatureMaps,
}

/// <summary>How <see cref="ResNet.ExportOnnx"/> writes a model.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>Oldest ONNX opset written: 13.</summary>
    public const int MinOpset = 13;

    /// <summary>Newest ONNX opset written: 23 (ONNX 1.18); ONNX Runtime 1.31 runs it (tested).</summary>
    public const int MaxOpset = 23;

    /// <summary>The default opset, 17 (ONNX 1.12, the widest-supported recent one).</summary>
    public const int DefaultOpset = 17;

    /// <summary>ONNX opset of the default domain, <see cref="MinOpset"/> … <see cref="MaxOpset"/>. Default 17.</summary>
    public int Opset { get; init; } = DefaultOpset;

    /// <summary>
    /// Write every BatchNorm as a <c>BatchNormalization</c> node with its running statistics (for fine-tuning with
    /// another framework) instead of folding it into the convolution before it. Default false (folded).
    /// </summary>
    public bool KeepBatchNorm { get; init; }

    /// <summary>
    /// What the model outputs. Default null: what the model's forward pass returns, <see cref="OnnxOutput.Logits"/>, or
    /// <see cref="OnnxOutput.PooledFeatures"/> for a headless model (<see cref="ResNet.IsHeadless"/>).
    /// </summary>
    public OnnxOutput? Output { get; init; }

    /// <summary>The output written for <paramref name="model"/>: <see cref="Output"/>, or the model's own.</summary>
    internal OnnxOutput OutputFor(ResNet model) => Output ?? (model.IsHeadless ? OnnxOutput.PooledFeatures : OnnxOutput.Logits);
}

/// <summary>What <see cref="ResNet.ExportOnnx"/> wrote.</summary>
/// <param name="Path">The full path of the file.</param>
/// <param name="Bytes">Its size.</param>
/// <param name="Opset">The opset it declares.</param>
/// <param name="Nodes">Number of graph nodes.</param>
/// <param name="Operators">The operator types used, sorted.</param>
/// <param name="Outputs">The graph's output names, in order.</param>
public sealed record OnnxExportResult(string Path, long Bytes, int Opset, int Nodes, IReadOnlyList<string> Operators, IReadOnlyList<string> Outputs);

/// <summary>
/// ONNX export: a <see cref="ResNet"/> in eval semantics (BatchNorm by its running statistics, no stochastic depth),
/// as standard ONNX operators only (Conv, Relu, Add, Mul, MaxPool, AveragePool, GlobalAveragePool, Flatten, Gemm, Slice,
/// Pad, BatchNormalization, Sigmoid), written from the same lowered graph the inference executors run.
/// </summary>
internal static class OnnxExport
{
    private const string InputName = "input";

    /// <summary>
    /// Writes <paramref name="model"/> to <paramref name="path"/> as an ONNX model (atomically: a failure leaves a
    /// previous file as it was). The input <c>input</c> is float32 N × InChannels × H × W with a dynamic batch and
    /// dynamic height and width (global average pooling accepts any size of at least the output stride); weights are
    /// written as float32 whatever the model's dtype. The model's <see cref="ResNet.Metadata"/> (architecture, input
    /// size, mean/std, interpolation, class names) goes into <c>metadata_props</c>.
    /// </summary>
    /// <param name="model">The network; it is not changed.</param>
    /// <param name="path">The .onnx file to write; its folder must exist.</param>
    /// <param name="options">Opset, BatchNorm folding and outputs; default <see cref="OnnxExportOptions"/>.</param>
    /// <returns>What was written.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The opset is outside <see cref="OnnxExportOptions.MinOpset"/> … <see cref="OnnxExportOptions.MaxOpset"/>.</exception>
    /// <exception cref="DirectoryNotFoundException">The folder of <paramref name="path"/> does not exist.</exception>
    /// <exception cref="NotSupportedException">The weights exceed protobuf's 2 GiB limit for one file.</exception>
    public static OnnxExportResult ExportOnnx(ResNet model, string path, OnnxExportOptions? options = null) =>
        Export(model, path, options);

    internal static OnnxExportResult Export(ResNet model, string path, OnnxExportOptions? options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        options ??= new OnnxExportOptions();
        CheckOptions(options, model);
        string full = Path.GetFullPath(path);
        string? folder = Path.GetDirectoryName(full);
        if (folder is null || !Directory.Exists(folder))
        {
            throw new DirectoryNotFoundException($"Cannot write '{full}': folder '{folder}' does not exist.");
        }

        var proto = ToModelProto(model, options);
        AtomicFile.Write(full, stream => proto.WriteTo(stream));
        return new OnnxExportResult(full, new FileInfo(full).Length, options.Opset, proto.Graph.Node.Count,
            proto.Graph.Node.Select(n => n.OpType).Distinct().Order(StringComparer.Ordinal).ToArray(),
            proto.Graph.Output.Select(o => o.Name).ToArray());
    }

    /// <summary>The ONNX model in memory (what <see cref="ExportOnnx(ResNet, string, OnnxExportOptions?)"/> writes).</summary>
    internal static ModelProto ToModelProto(ResNet model, OnnxExportOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        CheckOptions(options, model);
        long parameterBytes = model.parameters().Sum(p => p.numel()) * sizeof(float);
        if (parameterBytes > int.MaxValue - (64L << 20))
        {
            throw new NotSupportedException(
                $"{model.ModelName}: {parameterBytes:N0} bytes of weights do not fit one ONNX file (protobuf's 2 GiB limit); external data is not supported.");
        }

        using var graph = Lowering.Lower(model, foldBatchNorm: !options.KeepBatchNorm);
        var writer = new OnnxGraphWriter(graph, model, options);
        var onnx = new ModelProto
        {
            IrVersion = IrVersionFor(options.Opset),
            ProducerName = "ResNetSharp",
            ProducerVersion = typeof(OnnxExport).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion?.Split('+')[0] ?? "0",
            DocString = $"{model.ModelName} exported by ResNetSharp: eval mode, BatchNorm {(options.KeepBatchNorm ? "as BatchNormalization nodes" : "folded into the convolutions")}, output {options.OutputFor(model)}.",
            Graph = writer.Write(),
        };
        onnx.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = options.Opset });
        foreach (var (key, value) in model.Metadata.ToDictionary().OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            onnx.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        }

        return onnx;
    }

    private static void CheckOptions(OnnxExportOptions options, ResNet model)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Opset is < OnnxExportOptions.MinOpset or > OnnxExportOptions.MaxOpset)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.Opset,
                $"ONNX opset {options.Opset} is not supported: expected {OnnxExportOptions.MinOpset} … {OnnxExportOptions.MaxOpset}.");
        }

        if (options.Output is { } output && !Enum.IsDefined(output))
        {
            throw new ArgumentOutOfRangeException(nameof(options), output, "Unknown OnnxOutput.");
        }

        if (options.Output == OnnxOutput.Logits && model.IsHeadless)
        {
            throw new ArgumentException(
                $"{model.ModelName} is headless (no classifier), so it has no logits: export OnnxOutput.PooledFeatures or FeatureMaps " +
                "(or leave Output unset for the model's own output), or give it a classifier first with ResetClassifier.", nameof(options));
        }
    }

    /// <summary>The oldest IR version that carries the opset (ONNX's release table: opset 13–14 → IR 7, 15–18 → 8, 19–20 → 9, 21–22 → 10, 23 → 11).</summary>
    private static long IrVersionFor(int opset) => opset switch
    {
        <= 14 => 7,
        <= 18 => 8,
        <= 20 => 9,
        <= 22 => 10,
        _ => 11,
    };

    /// <summary>Turns the ops of a lowered graph into ONNX nodes and initializers.</summary>
    private sealed class OnnxGraphWriter(LoweredGraph graph, ResNet model, OnnxExportOptions options)
    {
        private readonly GraphProto onnx = new() { Name = model.ModelName };
        private readonly string[] names = new string[graph.ValueCount];

        public GraphProto Write()
        {
            var outputs = options.OutputFor(model) switch
            {
                OnnxOutput.Logits => new[] { (Value: graph.Logits, Name: "logits") },
                OnnxOutput.PooledFeatures => new[] { (Value: graph.Pooled, Name: "features") },
                _ => model.FeatureInfo.Skip(1).Select(f => (Value: graph.FeatureMaps[f.Index], Name: f.Level)).ToArray(),
            };
            names[LoweredGraph.Input] = InputName;
            foreach (var (value, name) in outputs)
            {
                names[value] = name;
            }

            int last = outputs.Max(o => graph.Ops.Select((op, i) => (op, i)).Single(p => p.op.Output == o.Value).i);
            for (int i = 0; i <= last; i++)
            {
                var op = graph.Ops[i];
                names[op.Output] ??= op.Name;
                Emit(op);
            }

            onnx.Input.Add(Value(InputName, new[] { "batch", $"{graph.InChannels}", "height", "width" }));
            foreach (var (value, name) in outputs)
            {
                var op = graph.Ops.Single(o => o.Output == value);
                onnx.Output.Add(op is GlobalAveragePoolOp or LinearOp
                    ? Value(name, new[] { "batch", $"{op.OutChannels}" })
                    : Value(name, new[] { "batch", $"{op.OutChannels}", $"{name}_height", $"{name}_width" }));
            }

            return onnx;
        }

        private void Emit(LoweredOp op)
        {
            string x = names[op.Inputs[0]]!;
            string y = names[op.Output]!;
            switch (op)
            {
                case ConvOp conv:
                {
                    var inputs = new List<string> { x, Initializer($"{op.Name}.weight", conv.Weight) };
                    if (conv.Bias is not null)
                    {
                        inputs.Add(Initializer($"{op.Name}.bias", conv.Bias));
                    }

                    var node = Node("Conv", op.Name, inputs, Relu(conv.Relu, y, op.Name));
                    node.Attribute.Add(Ints("kernel_shape", conv.KernelSize));
                    node.Attribute.Add(Ints("strides", conv.Stride));
                    node.Attribute.Add(Ints("pads", new[] { conv.Padding[0], conv.Padding[1], conv.Padding[0], conv.Padding[1] }));
                    node.Attribute.Add(Ints("dilations", conv.Dilation));
                    node.Attribute.Add(Int("group", conv.Groups));
                    break;
                }

                case AffineOp affine:
                {
                    long c = affine.OutChannels;
                    string scaled = $"{op.Name}.scaled";
                    Node("Mul", $"{op.Name}.mul", new[] { x, Initializer($"{op.Name}.scale", affine.Scale, new[] { 1, c, 1, 1 }) }, scaled);
                    Node("Add", $"{op.Name}.shift", new[] { scaled, Initializer($"{op.Name}.shift", affine.Shift, new[] { 1, c, 1, 1 }) }, Relu(affine.Relu, y, op.Name));
                    break;
                }

                case BatchNormOp bn:
                {
                    var node = Node("BatchNormalization", op.Name, new[]
                    {
                        x, Initializer($"{op.Name}.weight", bn.Gamma), Initializer($"{op.Name}.bias", bn.Beta),
                        Initializer($"{op.Name}.running_mean", bn.Mean), Initializer($"{op.Name}.running_var", bn.Variance),
                    }, Relu(bn.Relu, y, op.Name));
                    node.Attribute.Add(new AttributeProto { Name = "epsilon", Type = AttributeProto.Types.AttributeType.Float, F = (float)bn.Eps });
                    break;
                }

                case AddOp add:
                    Node("Add", op.Name, new[] { x, names[op.Inputs[1]]! }, Relu(add.Relu, y, op.Name));
                    break;

                case ZeroPadShortcutOp pad:
                {
                    string sub = x;
                    if (pad.Stride > 1)
                    {
                        sub = pad.PadChannels > 0 ? $"{op.Name}.subsampled" : y;
                        Node("Slice", $"{op.Name}.slice", new[]
                        {
                            x, Int64s($"{op.Name}.starts", 0, 0), Int64s($"{op.Name}.ends", long.MaxValue, long.MaxValue),
                            Int64s($"{op.Name}.axes", 2, 3), Int64s($"{op.Name}.steps", pad.Stride, pad.Stride),
                        }, sub);
                    }

                    if (pad.PadChannels > 0)
                    {
                        // pads = [begin of N, C, H, W, end of N, C, H, W]: zero channels appended after the input's.
                        Node("Pad", $"{op.Name}.pad", new[] { sub, Int64s($"{op.Name}.pads", 0, 0, 0, 0, 0, pad.PadChannels, 0, 0) }, y);
                    }
                    else if (pad.Stride == 1)
                    {
                        Node("Identity", op.Name, new[] { x }, y);
                    }

                    break;
                }

                case MaxPoolOp pool:
                {
                    var node = Node("MaxPool", op.Name, new[] { x }, y);
                    node.Attribute.Add(Ints("kernel_shape", pool.Kernel));
                    node.Attribute.Add(Ints("strides", pool.Stride));
                    node.Attribute.Add(Ints("pads", new[] { pool.Padding[0], pool.Padding[1], pool.Padding[0], pool.Padding[1] }));
                    break;
                }

                case AvgPoolOp pool:
                {
                    var node = Node("AveragePool", op.Name, new[] { x }, y);
                    node.Attribute.Add(Ints("kernel_shape", pool.Kernel));
                    node.Attribute.Add(Ints("strides", pool.Stride));
                    node.Attribute.Add(Ints("pads", new long[] { 0, 0, 0, 0 }));
                    node.Attribute.Add(Int("ceil_mode", pool.CeilMode ? 1 : 0));
                    node.Attribute.Add(Int("count_include_pad", 0));
                    break;
                }

                case SqueezeExciteOp se:
                {
                    // x · sigmoid(fc2(relu(fc1(GAP(x))))): the gate is N×C×1×1 and Mul broadcasts it over H×W.
                    string pooled = $"{op.Name}.pooled", hidden = $"{op.Name}.hidden", logit = $"{op.Name}.logit", gate = $"{op.Name}.gate";
                    Node("GlobalAveragePool", $"{op.Name}.pool", new[] { x }, pooled);
                    Node("Conv", $"{op.Name}.fc1", new[] { pooled, Initializer($"{op.Name}.fc1.weight", se.Fc1Weight), Initializer($"{op.Name}.fc1.bias", se.Fc1Bias) },
                        Relu(true, hidden, $"{op.Name}.fc1")).Attribute.Add(Ints("kernel_shape", new long[] { 1, 1 }));
                    Node("Conv", $"{op.Name}.fc2", new[] { hidden, Initializer($"{op.Name}.fc2.weight", se.Fc2Weight), Initializer($"{op.Name}.fc2.bias", se.Fc2Bias) },
                        logit).Attribute.Add(Ints("kernel_shape", new long[] { 1, 1 }));
                    Node("Sigmoid", $"{op.Name}.sigmoid", new[] { logit }, gate);
                    Node("Mul", $"{op.Name}.scale", new[] { x, gate }, y);
                    break;
                }

                case GlobalAveragePoolOp:
                {
                    string pooled = $"{op.Name}.map";
                    Node("GlobalAveragePool", op.Name, new[] { x }, pooled);
                    Node("Flatten", $"{op.Name}.flatten", new[] { pooled }, y).Attribute.Add(Int("axis", 1));
                    break;
                }

                case LinearOp fc:
                {
                    var node = Node("Gemm", op.Name, new[] { x, Initializer($"{op.Name}.weight", fc.Weight), Initializer($"{op.Name}.bias", fc.Bias) }, y);
                    node.Attribute.Add(Int("transB", 1));
                    break;
                }

                default:
                    throw new NotSupportedException($"{model.ModelName}: {op.Name} ({op.GetType().Name}) has no ONNX form.");
            }
        }

        /// <summary>With a ReLU: the op's node writes <c>name.pre_relu</c> and a Relu node writes <paramref name="y"/>; else the node writes y.</summary>
        private string Relu(bool relu, string y, string name)
        {
            if (!relu)
            {
                return y;
            }

            string pre = $"{name}.pre_relu";
            Node("Relu", $"{name}.relu", new[] { pre }, y);
            return pre;
        }

        private NodeProto Node(string type, string name, IEnumerable<string> inputs, string output)
        {
            var node = new NodeProto { OpType = type, Name = name };
            node.Input.AddRange(inputs);
            node.Output.Add(output);
            // Relu nodes are created before the node that feeds them (see Relu): keep the list topologically sorted.
            int at = onnx.Node.Count;
            while (at > 0 && onnx.Node[at - 1].OpType == "Relu" && onnx.Node[at - 1].Input[0] == output)
            {
                at--;
            }

            onnx.Node.Insert(at, node);
            return node;
        }

        private string Initializer(string name, Tensor t, long[]? shape = null)
        {
            using var scope = torch.NewDisposeScope();
            var data = t.detach().to(ScalarType.Float32).cpu().contiguous();
            var proto = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float, RawData = ByteString.CopyFrom(data.bytes) };
            proto.Dims.AddRange(shape ?? data.shape);
            onnx.Initializer.Add(proto);
            return name;
        }

        private string Int64s(string name, params long[] values)
        {
            var proto = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
            proto.Dims.Add(values.Length);
            proto.Int64Data.AddRange(values);
            onnx.Initializer.Add(proto);
            return name;
        }

        private static AttributeProto Ints(string name, IEnumerable<long> values)
        {
            var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
            a.Ints.AddRange(values);
            return a;
        }

        private static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

        private static ValueInfoProto Value(string name, string[] dims)
        {
            var shape = new TensorShapeProto();
            foreach (string d in dims)
            {
                shape.Dim.Add(long.TryParse(d, out long v) ? new TensorShapeProto.Types.Dimension { DimValue = v } : new TensorShapeProto.Types.Dimension { DimParam = d });
            }

            return new ValueInfoProto
            {
                Name = name,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
            };
        }
    }
}
