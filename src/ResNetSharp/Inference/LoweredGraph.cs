using System;
using System.Collections.Generic;
using System.Linq;
using static TorchSharp.torch;

namespace ResNetSharp.Inference;

/// <summary>
/// One op of a <see cref="LoweredGraph"/>: it reads the values <see cref="Inputs"/> and writes the value
/// <see cref="Output"/> (values are numbered; 0 is the network input). Every op produces an N×C×H×W map except
/// <see cref="GlobalAveragePoolOp"/> and <see cref="LinearOp"/>, which produce N×C matrices.
/// </summary>
internal abstract class LoweredOp
{
    protected LoweredOp(string name, int output, params int[] inputs)
    {
        Name = name;
        Output = output;
        Inputs = inputs;
    }

    /// <summary>Where it comes from, in the source model's module names (e.g. <c>layer1.0.conv1</c>).</summary>
    public string Name { get; }

    /// <summary>The values read, in order.</summary>
    public IReadOnlyList<int> Inputs { get; }

    /// <summary>The value written.</summary>
    public int Output { get; }

    /// <summary>Output channels (features for the N×C ops).</summary>
    public abstract long OutChannels { get; }

    /// <summary>Output height and width for an input of <paramref name="height"/> × <paramref name="width"/>.</summary>
    public virtual (long Height, long Width) OutputSize(long height, long width) => (height, width);
}

/// <summary>
/// A convolution with zero padding. In a folded graph <see cref="Weight"/> and <see cref="Bias"/> carry the BatchNorm
/// that followed it (w' = w·γ/√(σ²+ε), b' = β − μ·γ/√(σ²+ε)) and <see cref="Relu"/> the ReLU after that; in an
/// unfolded graph they are the conv's own (bias null when it has none) and the BN is the next op.
/// </summary>
internal sealed class ConvOp(string name, int output, int input, Tensor weight, Tensor? bias, long[] stride, long[] padding, long[] dilation,
    long groups, bool relu) : LoweredOp(name, output, input)
{
    public Tensor Weight { get; } = weight;

    public Tensor? Bias { get; } = bias;

    public long[] Stride { get; } = stride;

    public long[] Padding { get; } = padding;

    public long[] Dilation { get; } = dilation;

    public long Groups { get; } = groups;

    public bool Relu { get; } = relu;

    public long[] KernelSize => new[] { Weight.shape[2], Weight.shape[3] };

    public override long OutChannels => Weight.shape[0];

    public override (long Height, long Width) OutputSize(long height, long width) => (Out(height, 0), Out(width, 1));

    private long Out(long size, int axis) =>
        ((size + (2 * Padding[axis]) - (Dilation[axis] * (Weight.shape[2 + axis] - 1)) - 1) / Stride[axis]) + 1;
}

/// <summary>
/// y = x·scale + shift per channel, then ReLU when <see cref="Relu"/>: a BatchNorm in eval mode that no conv
/// precedes directly (the pre-activation BN on a block input, which the identity shortcut reads raw).
/// </summary>
internal sealed class AffineOp(string name, int output, int input, Tensor scale, Tensor shift, bool relu) : LoweredOp(name, output, input)
{
    public Tensor Scale { get; } = scale;

    public Tensor Shift { get; } = shift;

    public bool Relu { get; } = relu;

    public override long OutChannels => Scale.shape[0];
}

/// <summary>An unfolded eval-mode BatchNorm (only in graphs lowered with BN kept), then ReLU when <see cref="Relu"/>.</summary>
internal sealed class BatchNormOp(string name, int output, int input, Tensor gamma, Tensor beta, Tensor mean, Tensor variance, double eps, bool relu)
    : LoweredOp(name, output, input)
{
    public Tensor Gamma { get; } = gamma;

    public Tensor Beta { get; } = beta;

    public Tensor Mean { get; } = mean;

    public Tensor Variance { get; } = variance;

    public double Eps { get; } = eps;

    public bool Relu { get; } = relu;

    public override long OutChannels => Gamma.shape[0];
}

/// <summary>The residual add a + b, then ReLU when <see cref="Relu"/> (post-activation blocks). a is the residual branch.</summary>
internal sealed class AddOp(string name, int output, int branch, int shortcut, long channels, bool relu) : LoweredOp(name, output, branch, shortcut)
{
    public bool Relu { get; } = relu;

    public override long OutChannels { get; } = channels;
}

/// <summary>The paper's option-A shortcut: keep every <see cref="Stride"/>-th row and column, append <see cref="PadChannels"/> zero channels.</summary>
internal sealed class ZeroPadShortcutOp(string name, int output, int input, long stride, long inChannels, long padChannels) : LoweredOp(name, output, input)
{
    public long Stride { get; } = stride;

    public long PadChannels { get; } = padChannels;

    public override long OutChannels { get; } = inChannels + padChannels;

    public override (long Height, long Width) OutputSize(long height, long width) =>
        (((height - 1) / Stride) + 1, ((width - 1) / Stride) + 1);
}

/// <summary>Max pooling (the ImageNet stem's), floor mode, padding with −∞.</summary>
internal sealed class MaxPoolOp(string name, int output, int input, long channels, long[] kernel, long[] stride, long[] padding) : LoweredOp(name, output, input)
{
    public long[] Kernel { get; } = kernel;

    public long[] Stride { get; } = stride;

    public long[] Padding { get; } = padding;

    public override long OutChannels { get; } = channels;

    public override (long Height, long Width) OutputSize(long height, long width) =>
        (((height + (2 * Padding[0]) - Kernel[0]) / Stride[0]) + 1, ((width + (2 * Padding[1]) - Kernel[1]) / Stride[1]) + 1);
}

/// <summary>
/// Average pooling without padding (ResNet-D's shortcut): <see cref="CeilMode"/> keeps a last partial window (as long
/// as it starts inside the input), which averages only the positions it covers (padding is never counted).
/// </summary>
internal sealed class AvgPoolOp(string name, int output, int input, long channels, long[] kernel, long[] stride, bool ceilMode) : LoweredOp(name, output, input)
{
    public long[] Kernel { get; } = kernel;

    public long[] Stride { get; } = stride;

    public bool CeilMode { get; } = ceilMode;

    public override long OutChannels { get; } = channels;

    public override (long Height, long Width) OutputSize(long height, long width) => (Out(height, 0), Out(width, 1));

    private long Out(long size, int axis)
    {
        long span = size - Kernel[axis], s = Stride[axis];
        long n = (CeilMode ? (span + s - 1) / s : span / s) + 1;
        return CeilMode && (n - 1) * s >= size ? n - 1 : n; // a window may not start past the input
    }
}

/// <summary>
/// Squeeze-and-excitation on an N×C×H×W map: s = sigmoid(W2·relu(W1·mean_hw(x) + b1) + b2), y = x·s per channel.
/// <see cref="Fc1Weight"/> is r×C×1×1 and <see cref="Fc2Weight"/> C×r×1×1, as the 1×1 convolutions they come from.
/// </summary>
internal sealed class SqueezeExciteOp(string name, int output, int input, Tensor fc1Weight, Tensor fc1Bias, Tensor fc2Weight, Tensor fc2Bias)
    : LoweredOp(name, output, input)
{
    public Tensor Fc1Weight { get; } = fc1Weight;

    public Tensor Fc1Bias { get; } = fc1Bias;

    public Tensor Fc2Weight { get; } = fc2Weight;

    public Tensor Fc2Bias { get; } = fc2Bias;

    public override long OutChannels => Fc2Weight.shape[0];
}

/// <summary>Global average pooling: N×C×H×W → N×C.</summary>
internal sealed class GlobalAveragePoolOp(string name, int output, int input, long channels) : LoweredOp(name, output, input)
{
    public override long OutChannels { get; } = channels;

    public override (long Height, long Width) OutputSize(long height, long width) => (1, 1);
}

/// <summary>The classifier: y = x·Wᵀ + b on N×C.</summary>
internal sealed class LinearOp(string name, int output, int input, Tensor weight, Tensor bias) : LoweredOp(name, output, input)
{
    public Tensor Weight { get; } = weight;

    public Tensor Bias { get; } = bias;

    public override long OutChannels => Weight.shape[0];

    public override (long Height, long Width) OutputSize(long height, long width) => (1, 1);
}

/// <summary>The ops of one residual block: <see cref="LoweredGraph.Ops"/>[<see cref="FirstOp"/> .. <see cref="EndOp"/>).</summary>
internal sealed record LoweredBlock(string Name, int Stage, int Index, int FirstOp, int EndOp, int Input, int Output);

/// <summary>
/// A <see cref="ResNet"/> lowered to a short list of fused eval-mode ops in execution order (made by
/// <see cref="Lowering.Lower"/>). BatchNorm is folded into the convs there, once, unless the graph was lowered with
/// BN kept; the shortcut rules are decided there (by the blocks), so the executors, the memory model and the ONNX
/// writer only read ops. The graph owns its tensors until <see cref="TakeTensors"/> hands them over.
/// </summary>
internal sealed class LoweredGraph : IDisposable
{
    private readonly List<Tensor> tensors;
    private bool owns = true;

    internal LoweredGraph(string modelName, long inChannels, int minInputSize, bool folded, IReadOnlyList<LoweredOp> ops, IReadOnlyList<LoweredBlock> blocks,
        IReadOnlyList<int> featureMaps, int pooled, int logits, List<Tensor> tensors)
    {
        ModelName = modelName;
        InChannels = inChannels;
        MinInputSize = minInputSize;
        Folded = folded;
        Ops = ops;
        Blocks = blocks;
        FeatureMaps = featureMaps;
        Pooled = pooled;
        Logits = logits;
        this.tensors = tensors;
        ValueCount = ops.Count == 0 ? 1 : ops.Max(o => o.Output) + 1;
    }

    /// <summary>The value id of the network input.</summary>
    public const int Input = 0;

    public string ModelName { get; }

    public long InChannels { get; }

    public int MinInputSize { get; }

    /// <summary>True when BN is folded into the convs (and into <see cref="AffineOp"/>s); false when kept as <see cref="BatchNormOp"/>s.</summary>
    public bool Folded { get; }

    public IReadOnlyList<LoweredOp> Ops { get; }

    public IReadOnlyList<LoweredBlock> Blocks { get; }

    /// <summary>Value ids of the maps ResNet.ForwardFeatureMaps returns: the stem's (C1) and each stage's output (C2 …).</summary>
    public IReadOnlyList<int> FeatureMaps { get; }

    /// <summary>Value id of the last feature map (the head's input).</summary>
    public int Features => FeatureMaps[^1];

    /// <summary>Value id of the globally pooled features (N × FeatureChannels).</summary>
    public int Pooled { get; }

    /// <summary>Value id of the logits.</summary>
    public int Logits { get; }

    /// <summary>Number of values (the input and every op's output).</summary>
    public int ValueCount { get; }

    /// <summary>
    /// Channels, height and width of every value for one image of <paramref name="height"/> × <paramref name="width"/>
    /// (N×C values have height and width 1).
    /// </summary>
    public (long Channels, long Height, long Width)[] Shapes(long height, long width)
    {
        var shapes = new (long, long, long)[ValueCount];
        shapes[Input] = (InChannels, height, width);
        foreach (var op in Ops)
        {
            var (_, h, w) = shapes[op.Inputs[0]];
            var (oh, ow) = op.OutputSize(h, w);
            shapes[op.Output] = (op.OutChannels, oh, ow);
        }

        return shapes;
    }

    /// <summary>
    /// For each value, the index of the last op in [<paramref name="firstOp"/>, <paramref name="endOp"/>) that reads it
    /// (−1 when none does); values in <paramref name="keep"/> count as read after the last op.
    /// </summary>
    public int[] LastUses(int firstOp, int endOp, params int[] keep)
    {
        var last = Enumerable.Repeat(-1, ValueCount).ToArray();
        for (int i = firstOp; i < endOp; i++)
        {
            foreach (int v in Ops[i].Inputs)
            {
                last[v] = i;
            }
        }

        foreach (int v in keep)
        {
            last[v] = int.MaxValue;
        }

        return last;
    }

    /// <summary>Hands every tensor of the graph to the caller, which disposes them from now on.</summary>
    public void TakeTensors() => owns = false;

    public void Dispose()
    {
        if (owns)
        {
            foreach (var t in tensors)
            {
                t.Dispose();
            }

            owns = false;
        }
    }
}
