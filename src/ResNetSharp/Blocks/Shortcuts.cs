using System;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResNetSharp;

/// <summary>The one rule that decides what shortcut a block gets (paper §3.3, options A/B/C, or none).</summary>
public static class Shortcuts
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

    /// <summary>
    /// Builds the projection shortcut <c>downsample = Sequential(conv 1×1 stride s, BN)</c>, torchvision's layout; a
    /// pre-activation block's projection is the conv alone (its input is already normalised), He et al. 2016.
    /// </summary>
    internal static Sequential Projection(long inChannels, long outChannels, long stride, Device? device, ScalarType? dtype,
        bool preActivation = false, bool frozenNorm = false) =>
        preActivation
            ? nn.Sequential(Layers.Conv1x1(inChannels, outChannels, stride, device, dtype))
            : nn.Sequential(Layers.Conv1x1(inChannels, outChannels, stride, device, dtype), Layers.Norm(outChannels, device, dtype, frozenNorm));
}

/// <summary>
/// The paper's option A shortcut: subsample by the stride and append zero channels. It has no parameters and no
/// multiply-adds, which is why the paper's CIFAR networks are so small.
/// </summary>
public sealed class ZeroPadShortcut : nn.Module<Tensor, Tensor>
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
