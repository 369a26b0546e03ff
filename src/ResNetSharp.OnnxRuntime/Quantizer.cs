using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.InteropServices;
using Google.Protobuf;
using ResNetSharp.Onnx.Proto;
using DataType = ResNetSharp.Onnx.Proto.TensorProto.Types.DataType;

namespace ResNetSharp.OnnxRuntime;

/// <summary>
/// Post-training static quantisation of the exporter's float graph (BatchNorm already folded into the convolutions)
/// to standard ONNX QDQ: every activation a convolution or residual add reads is quantised once, after the op that
/// makes it (after its ReLU where it has one), as per-tensor uint8 with the calibrated range; convolution weights
/// become per-output-channel symmetric int8 in a 7-bit range (see <see cref="WeightLevels"/>) and biases int32 at the
/// input scale times the weight scale. A ReLU's output range starts at 0, so its zero point is 0 and ONNX Runtime
/// drops the ReLU into the quantised op before it; Conv and Add with DequantizeLinear on every input and QuantizeLinear
/// on the output become QLinearConv and QLinearAdd. Max pooling, slicing and zero padding keep their input's scale (ONNX Runtime then runs them on uint8
/// directly). Pooling, the classifier and every graph output stay float32.
/// </summary>
internal static class Quantizer
{
    private const string ScaleSuffix = ".q_scale";
    private const string ZeroSuffix = ".q_zero";

    /// <summary>Calibrates on <paramref name="calibration"/> and returns the QDQ model (the input is not changed).</summary>
    internal static ModelProto Quantize(ModelProto model, Calibration calibration, InferenceOptions options)
    {
        var graph = model.Graph;
        var inputDims = graph.Input[0].Type.TensorType.Shape.Dim;
        if (inputDims[1].DimValue != calibration.Channels)
        {
            throw new ArgumentException(
                $"Calibration images have {calibration.Channels} channels; the model takes {inputDims[1].DimValue}.", nameof(calibration));
        }

        var (own, sameAs) = Plan(graph);
        var ranges = calibration.Collect(model, own, options);
        var quantized = model.Clone();
        Rewrite(quantized.Graph, own, sameAs, ranges);
        quantized.DocString += " Quantised to int8 (QDQ): " + Scheme + "; calibration " + calibration.Recipe + ".";
        quantized.MetadataProps.Add(new StringStringEntryProto { Key = "quantization", Value = Scheme });
        quantized.MetadataProps.Add(new StringStringEntryProto { Key = "quantization_calibration", Value = calibration.Recipe });
        return quantized;
    }

    internal const string Scheme =
        "QDQ int8: weights per-channel symmetric int8 in ±63 (7-bit, no int16 saturation on CPUs without VNNI), biases int32, activations per-tensor asymmetric uint8; BatchNorm folded first";

    /// <summary>
    /// The largest weight level: ±63, not ±127. On x86 CPUs without VNNI (AVX2, and AVX-512 before Cascade Lake) ONNX
    /// Runtime multiplies uint8 activations by int8 weights with <c>vpmaddubsw</c>, which adds each pair of products into
    /// a saturating int16: 255 · 127 · 2 = 64,770 overflows, 255 · 63 · 2 = 32,130 does not. With ±127 the exported
    /// ResNet-18's pooled features lost their direction on an AMD EPYC Zen 1 (cosine to float32 down to 0.56 on
    /// photographs, a linear probe 7.9 points worse), while VNNI machines were fine; a file has to be right wherever it
    /// runs, so every export takes the 7-bit range (ONNX Runtime's own tool calls this <c>reduce_range</c>).
    /// </summary>
    internal const int WeightLevels = 63;

    /// <summary>
    /// Which values are quantised with their own calibrated range, and which take another value's (max pool, slice,
    /// pad, identity keep their input's).
    /// </summary>
    private static (List<string> Own, Dictionary<string, string> SameAs) Plan(GraphProto graph)
    {
        var initializers = graph.Initializer.Select(i => i.Name).ToHashSet();
        var consumers = Consumers(graph);
        var graphOutputs = graph.Output.Select(o => o.Name).ToHashSet();
        var own = new List<string> { graph.Input[0].Name };
        var sameAs = new Dictionary<string, string>();
        bool OnlyIntoRelu(string value) =>
            !graphOutputs.Contains(value) && consumers.TryGetValue(value, out var list) && list.Count > 0 && list.All(c => c.OpType == "Relu");

        foreach (var node in graph.Node)
        {
            string y = node.Output[0];
            switch (node.OpType)
            {
                case "Conv":
                case "Relu":
                case "Add":
                    if (!OnlyIntoRelu(y))
                    {
                        own.Add(y);
                    }

                    break;
                case "MaxPool":
                case "Slice":
                case "Pad":
                case "Identity":
                    string x = node.Input[0];
                    if (own.Contains(x) || sameAs.ContainsKey(x))
                    {
                        sameAs[y] = sameAs.TryGetValue(x, out string? root) ? root : x;
                    }
                    else if (!initializers.Contains(x))
                    {
                        own.Add(y);
                    }

                    break;
            }
        }

        return (own, sameAs);
    }

    private static Dictionary<string, List<NodeProto>> Consumers(GraphProto graph)
    {
        var consumers = new Dictionary<string, List<NodeProto>>();
        foreach (var node in graph.Node)
        {
            foreach (string input in node.Input)
            {
                if (!consumers.TryGetValue(input, out var list))
                {
                    consumers[input] = list = new List<NodeProto>();
                }

                list.Add(node);
            }
        }

        return consumers;
    }

    /// <summary>uint8 scale and zero point of a range (widened to hold 0, so that zero padding and ReLU's floor are exact).</summary>
    internal static (float Scale, byte Zero) Params((float Min, float Max) range)
    {
        double lo = Math.Min(range.Min, 0), hi = Math.Max(range.Max, 0);
        double scale = (hi - lo) / 255;
        if (!(scale > 1e-12))
        {
            return (1f, 0);
        }

        return ((float)scale, (byte)Math.Clamp(Math.Round(-lo / scale), 0, 255));
    }

    private static void Rewrite(GraphProto graph, List<string> own, Dictionary<string, string> sameAs, Dictionary<string, (float Min, float Max)> ranges)
    {
        var qparams = new Dictionary<string, (float Scale, byte Zero)>();
        foreach (string v in own)
        {
            qparams[v] = Params(ranges[v]);
        }

        foreach (var (v, root) in sameAs)
        {
            qparams[v] = qparams[root];
        }

        var initializers = graph.Initializer.ToDictionary(i => i.Name);
        var consumers = Consumers(graph);
        var dequantized = new Dictionary<string, string>(); // value → the DequantizeLinear output that replaces it as a node input
        var nodes = new List<NodeProto>();

        void AddQdq(string value)
        {
            if (!qparams.TryGetValue(value, out var p) || !consumers.ContainsKey(value))
            {
                return;
            }

            string scale = Scalar(graph, value + ScaleSuffix, p.Scale);
            string zero = ScalarU8(graph, value + ZeroSuffix, p.Zero);
            nodes.Add(Node("QuantizeLinear", value + ".quantize", new[] { value, scale, zero }, value + ".q"));
            nodes.Add(Node("DequantizeLinear", value + ".dequantize", new[] { value + ".q", scale, zero }, value + ".dq"));
            dequantized[value] = value + ".dq";
        }

        AddQdq(graph.Input[0].Name);
        foreach (var node in graph.Node)
        {
            for (int i = 0; i < node.Input.Count; i++)
            {
                if (dequantized.TryGetValue(node.Input[i], out string? dq))
                {
                    node.Input[i] = dq;
                }
            }

            if (node.OpType == "Conv" && node.Input[0].EndsWith(".dq", StringComparison.Ordinal))
            {
                string activation = node.Input[0][..^3];
                QuantizeConvWeights(graph, node, initializers, qparams[activation].Scale, nodes);
            }

            nodes.Add(node);
            AddQdq(node.Output[0]);
        }

        graph.Node.Clear();
        graph.Node.AddRange(nodes);
    }

    /// <summary>Replaces the conv's float weight and bias initializers by int8/int32 ones behind DequantizeLinear nodes.</summary>
    private static void QuantizeConvWeights(GraphProto graph, NodeProto conv, Dictionary<string, TensorProto> initializers, float inputScale, List<NodeProto> nodes)
    {
        var weight = initializers[conv.Input[1]];
        var w = MemoryMarshal.Cast<byte, float>(weight.RawData.Span).ToArray();
        int outChannels = (int)weight.Dims[0];
        int perChannel = w.Length / outChannels;
        var scales = new float[outChannels];
        var q = new sbyte[w.Length];
        for (int c = 0; c < outChannels; c++)
        {
            float max = 0;
            for (int i = c * perChannel; i < (c + 1) * perChannel; i++)
            {
                max = Math.Max(max, Math.Abs(w[i]));
            }

            scales[c] = max > 0 ? max / WeightLevels : 1f;
            for (int i = c * perChannel; i < (c + 1) * perChannel; i++)
            {
                q[i] = (sbyte)Math.Clamp(Math.Round(w[i] / scales[c]), -WeightLevels, WeightLevels);
            }
        }

        string name = conv.Input[1];
        graph.Initializer.Remove(weight);
        var qWeight = new TensorProto { Name = name + ".int8", DataType = (int)DataType.Int8, RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(q.AsSpan())) };
        qWeight.Dims.AddRange(weight.Dims);
        graph.Initializer.Add(qWeight);
        string wScale = Vector(graph, name + ScaleSuffix, scales);
        string wZero = Zeros(graph, name + ZeroSuffix, outChannels, DataType.Int8);
        nodes.Add(Axis0(Node("DequantizeLinear", name + ".dequantize", new[] { qWeight.Name, wScale, wZero }, name + ".dq")));
        conv.Input[1] = name + ".dq";

        if (conv.Input.Count > 2 && initializers.TryGetValue(conv.Input[2], out var bias))
        {
            var b = MemoryMarshal.Cast<byte, float>(bias.RawData.Span).ToArray();
            var bScales = scales.Select(s => s * inputScale).ToArray();
            var qb = b.Select((v, c) => (int)Math.Clamp(Math.Round(v / bScales[c]), int.MinValue + 1, int.MaxValue)).ToArray();
            string bName = conv.Input[2];
            graph.Initializer.Remove(bias);
            var qBias = new TensorProto { Name = bName + ".int32", DataType = (int)DataType.Int32, RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(qb.AsSpan())) };
            qBias.Dims.AddRange(bias.Dims);
            graph.Initializer.Add(qBias);
            string bScale = Vector(graph, bName + ScaleSuffix, bScales);
            string bZero = Zeros(graph, bName + ZeroSuffix, outChannels, DataType.Int32);
            nodes.Add(Axis0(Node("DequantizeLinear", bName + ".dequantize", new[] { qBias.Name, bScale, bZero }, bName + ".dq")));
            conv.Input[2] = bName + ".dq";
        }
    }

    private static NodeProto Node(string type, string name, IEnumerable<string> inputs, string output)
    {
        var node = new NodeProto { OpType = type, Name = name };
        node.Input.AddRange(inputs);
        node.Output.Add(output);
        return node;
    }

    private static NodeProto Axis0(NodeProto node)
    {
        node.Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 0 });
        return node;
    }

    private static string Scalar(GraphProto graph, string name, float value)
    {
        var t = new TensorProto { Name = name, DataType = (int)DataType.Float };
        t.FloatData.Add(value);
        graph.Initializer.Add(t);
        return name;
    }

    private static string ScalarU8(GraphProto graph, string name, byte value)
    {
        var t = new TensorProto { Name = name, DataType = (int)DataType.Uint8 };
        t.Int32Data.Add(value);
        graph.Initializer.Add(t);
        return name;
    }

    private static string Vector(GraphProto graph, string name, float[] values)
    {
        var t = new TensorProto { Name = name, DataType = (int)DataType.Float };
        t.Dims.Add(values.Length);
        t.FloatData.AddRange(values);
        graph.Initializer.Add(t);
        return name;
    }

    private static string Zeros(GraphProto graph, string name, int count, DataType type)
    {
        var t = new TensorProto { Name = name, DataType = (int)type };
        t.Dims.Add(count);
        t.Int32Data.AddRange(new int[count]);
        graph.Initializer.Add(t);
        return name;
    }
}
