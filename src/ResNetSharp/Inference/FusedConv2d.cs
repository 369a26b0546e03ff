using System;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResNetSharp.Inference;

/// <summary>
/// A convolution with its BatchNorm folded in (by <see cref="Lowering"/>: w' = w·γ/√(σ²+ε), b' = β − μ·γ/√(σ²+ε)),
/// optionally followed by an in-place ReLU. A channels-last input gives a channels-last output (1×1 convs then run as one matrix product over
/// the pixels); an NCHW input gives an NCHW output.
/// </summary>
internal sealed class FusedConv2d : nn.Module<Tensor, Tensor>
{
    private readonly Tensor weight;
    private readonly Tensor bias;
    private readonly long[] stride;
    private readonly long[] padding;
    private readonly long[] dilation;
    private readonly long groups;
    private readonly Tensor? pointwise;
    private OneDnnProgram? program;
    private Tensor? blockedWeight;
    private string? blockedFunction;

    /// <summary>The runtime of a folded <see cref="ConvOp"/>; takes over its weight and bias (disposes them).</summary>
    internal FusedConv2d(ConvOp op)
        : base(nameof(FusedConv2d))
    {
        ArgumentNullException.ThrowIfNull(op);
        weight = op.Weight;
        bias = op.Bias ?? throw new ArgumentException($"{op.Name}: a folded convolution always has a bias.", nameof(op));
        stride = op.Stride;
        padding = op.Padding;
        dilation = op.Dilation;
        groups = op.Groups;
        Relu = op.Relu;
        OutChannels = op.OutChannels;

        // A 1×1 conv on channels-last activations is a matrix product over the N·H·W pixel rows. Running it as
        // addmm is what oneDNN would do anyway, and it sidesteps a libtorch 2.10 CPU bug: channels-last 1×1
        // convolutions with 512 or more output channels and batch > 1 return wrong values (and can corrupt memory).
        if (weight.shape[2] == 1 && weight.shape[3] == 1 && groups == 1 && padding.All(p => p == 0))
        {
            pointwise = weight.reshape(weight.shape[0], weight.shape[1]).t().DetachFromDisposeScope();
        }

        register_buffer("weight", weight);
        register_buffer("bias", bias);
    }

    /// <summary>True when an in-place ReLU follows the convolution.</summary>
    public bool Relu { get; }

    /// <summary>Output channels.</summary>
    public long OutChannels { get; }

    /// <summary>The folded weight (out × in/groups × kh × kw, contiguous).</summary>
    public Tensor Weight => weight;

    /// <summary>The folded bias (out).</summary>
    public Tensor Bias => bias;

    /// <summary>This conv's padding, stride, dilation and groups, the key of its oneDNN functions.</summary>
    internal OneDnnProgram.ConvConfig Config => new(padding[0], padding[1], stride[0], stride[1], dilation[0], dilation[1], groups);

    /// <summary>Reorders the weight once into oneDNN's blocked layout, for <see cref="ForwardBlocked"/>.</summary>
    internal void UseBlocked(OneDnnProgram oneDnn)
    {
        using var noGrad = torch.no_grad();
        program = oneDnn;
        blockedFunction = oneDnn.ConvFunction(Config, Relu); // looked up once, not on every forward
        blockedWeight = OneDnnProgram.KeepsDenseWeight(weight)
            ? weight.alias().DetachFromDisposeScope()
            : oneDnn.ReorderWeight(Config, weight).DetachFromDisposeScope();
    }

    /// <summary>Forgets the blocked weight (when the blocked path failed its check).</summary>
    internal void DropBlocked()
    {
        blockedWeight?.Dispose();
        blockedWeight = null;
        blockedFunction = null;
        program = null;
    }

    /// <summary>The conv (and ReLU) on an MKLDNN tensor; the output is an MKLDNN tensor.</summary>
    internal Tensor ForwardBlocked(Tensor input) =>
        program!.Conv(blockedFunction!, input, blockedWeight ?? throw new InvalidOperationException("UseBlocked was not called."), bias);

    /// <summary>conv(x, w', b'), then ReLU in place when <see cref="Relu"/>.</summary>
    public override Tensor forward(Tensor input)
    {
        var y = pointwise is not null && ChannelsLast.IsChannelsLast(input)
            ? Pointwise(input)
            : nn.functional.conv2d(input, weight, bias, stride, padding, dilation, groups);
        return Relu ? y.relu_() : y;
    }

    private Tensor Pointwise(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var x = stride[0] == 1 && stride[1] == 1
            ? input
            : input[.., .., TensorIndex.Slice(null, null, stride[0]), TensorIndex.Slice(null, null, stride[1])];
        long n = x.shape[0], h = x.shape[2], w = x.shape[3];
        // N×C×H×W channels-last -> (N·H·W)×C rows: a view when the input is dense channels-last, else one copy.
        var rows = x.permute(0, 2, 3, 1).reshape(n * h * w, x.shape[1]);
        var y = torch.addmm(bias, rows, pointwise!, 1, 1);
        return y.view(n, h, w, OutChannels).permute(0, 3, 1, 2).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            pointwise?.Dispose();
            blockedWeight?.Dispose();
            weight.Dispose();
            bias.Dispose();
        }

        base.Dispose(disposing);
    }
}

/// <summary>Channels-last (NHWC) helpers: TorchSharp has no <c>memory_format</c> argument, so permute and copy.</summary>
internal static class ChannelsLast
{
    /// <summary>
    /// Returns an N×C×H×W view of <paramref name="x"/> whose memory is laid out N×H×W×C (strides C·H·W, 1, W·C, C).
    /// Returns a new handle to the same storage when it already is.
    /// </summary>
    /// <exception cref="ArgumentException">The tensor is not 4-D.</exception>
    public static Tensor ToChannelsLast(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.dim() != 4)
        {
            throw new ArgumentException($"Channels-last needs a 4-D tensor, got shape [{string.Join(", ", x.shape)}].", nameof(x));
        }

        if (IsChannelsLast(x))
        {
            return x.alias();
        }

        using var nhwc = x.permute(0, 2, 3, 1);
        using var packed = nhwc.contiguous();
        return packed.permute(0, 3, 1, 2);
    }

    /// <summary>True when the 4-D tensor's strides are those of a dense channels-last layout.</summary>
    public static bool IsChannelsLast(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.dim() != 4)
        {
            return false;
        }

        long c = x.shape[1], h = x.shape[2], w = x.shape[3];
        var s = x.stride();
        return (c == 1 || s[1] == 1) && (w == 1 || s[3] == c) && (h == 1 || s[2] == w * c) && (x.shape[0] == 1 || s[0] == h * w * c);
    }
}
