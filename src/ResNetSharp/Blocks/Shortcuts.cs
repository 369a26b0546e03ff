using System;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace ResNetSharp.Blocks;

/// <summary>The one rule that decides what shortcut a block gets (paper §3.3, options A/B/C, or none).</summary>
internal static class Shortcuts
{
    /// <summary>
    /// True when the block's input and output shapes differ (stride ≠ 1 or channels change); only then do options
    /// A and B need anything but the identity.
    /// </summary>
    public static bool ShapeChanges(long inChannels, long outChannels, long stride) => stride != 1 || inChannels != outChannels;

    /// <summary>True when the block gets a 1×1 projection: option C always, option B exactly where the shape changes.</summary>
    public static bool NeedsProjection(ShortcutOption option, long inChannels, long outChannels, long stride) => option switch
    {
        ShortcutOption.C => true,
        ShortcutOption.B => ShapeChanges(inChannels, outChannels, stride),
        _ => false,
    };

}

/// <summary>
/// The projection shortcut of options B and C: a 1×1 convolution (stride s) and BN, registered as <c>0</c> and
/// <c>1</c> so its state-dict keys are torchvision's <c>downsample.0.weight</c>, <c>downsample.1.running_mean</c>, ….
/// In a pre-activation block it is the convolution alone (its input is already normalised, He et al. 2016).
/// </summary>
internal sealed class ProjectionShortcut : nn.Module<Tensor, Tensor>, ILowerable
{
    // Named "0" and "1" as in torchvision's nn.Sequential; RegisterComponents (also run by the parent block) uses these names.
    [ComponentName(Name = "0")]
    private readonly Conv2d conv;
    [ComponentName(Name = "1")]
    private readonly nn.Module<Tensor, Tensor>? norm;

    /// <summary>Creates a projection from <paramref name="inChannels"/> to <paramref name="outChannels"/> at the given stride.</summary>
    /// <param name="inChannels">Input channels.</param>
    /// <param name="outChannels">Output channels.</param>
    /// <param name="stride">Stride of the 1×1 convolution.</param>
    /// <param name="device">Device; default the CPU.</param>
    /// <param name="dtype">Dtype; default float32.</param>
    /// <param name="withNorm">Follow the convolution by a norm (false in pre-activation blocks). Default true.</param>
    /// <param name="frozenNorm">Make that norm a <see cref="FrozenBatchNorm2d"/>. Default false.</param>
    public ProjectionShortcut(long inChannels, long outChannels, long stride, Device? device = null, ScalarType? dtype = null,
        bool withNorm = true, bool frozenNorm = false)
        : base(nameof(ProjectionShortcut))
    {
        conv = Layers.Conv1x1(inChannels, outChannels, stride, device, dtype);
        norm = withNorm ? Layers.Norm(outChannels, device, dtype, frozenNorm) : null;
        RegisterComponents();
    }

    /// <summary>The 1×1 convolution (<c>downsample.0</c>).</summary>
    public Conv2d Conv => conv;

    /// <summary>The norm (<c>downsample.1</c>): a BatchNorm2d, a FrozenBatchNorm2d, or null in pre-activation blocks.</summary>
    public nn.Module<Tensor, Tensor>? Norm => norm;

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var y = Layers.Apply(conv, input);
        return (norm is null ? y : norm.call(y)).MoveToOuterDisposeScope();
    }

    /// <summary>One op: the conv with its BN folded in (or followed by it), named <c>name.0</c> (and <c>name.1</c>).</summary>
    int ILowerable.Lower(LoweringBuilder b, string name, int x) => b.Conv($"{name}.0", x, conv, norm, relu: false);

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            conv.Dispose();
            norm?.Dispose();
        }

        base.Dispose(disposing);
    }
}

/// <summary>
/// The paper's option A shortcut: subsample by the stride and append zero channels. It has no parameters and no
/// multiply-adds, which is why the paper's CIFAR networks are so small.
/// </summary>
internal sealed class ZeroPadShortcut : nn.Module<Tensor, Tensor>
{
    /// <summary>Creates the shortcut from <paramref name="inChannels"/> to <paramref name="outChannels"/> at the given stride.</summary>
    public ZeroPadShortcut(long inChannels, long outChannels, long stride)
        : base(nameof(ZeroPadShortcut))
    {
        if (outChannels < inChannels)
        {
            throw new ArgumentException($"Option A shortcut can only add channels: in={inChannels}, out={outChannels}.");
        }

        InChannels = inChannels;
        OutChannels = outChannels;
        Stride = stride;
    }

    /// <summary>Input channels.</summary>
    public long InChannels { get; }

    /// <summary>Output channels (the extra ones are zero).</summary>
    public long OutChannels { get; }

    /// <summary>Spatial subsampling factor.</summary>
    public long Stride { get; }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        Tensor y = Stride == 1 ? input.alias() : input[.., .., TensorIndex.Slice(null, null, Stride), TensorIndex.Slice(null, null, Stride)];
        if (OutChannels > InChannels)
        {
            y = nn.functional.pad(y, new long[] { 0, 0, 0, 0, 0, OutChannels - InChannels });
        }

        return y.MoveToOuterDisposeScope();
    }
}
