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
    internal static ProjectionShortcut Projection(long inChannels, long outChannels, long stride, Device? device, ScalarType? dtype,
        bool preActivation = false, bool frozenNorm = false) =>
        new(Layers.Conv1x1(inChannels, outChannels, 1, device, dtype), stride, preActivation ? null : Layers.Norm(outChannels, device, dtype, frozenNorm));

    /// <summary>
    /// x[:, :, ::stride, ::stride]. A 1×1 convolution with stride s equals a stride-1 one on this subsampled input
    /// (same weights, same output); the blocks compute strided 1×1 convolutions this way because libtorch 2.10's
    /// oneDNN kernel for the input gradient of a strided 1×1 convolution divides by zero (SIGFPE, killing the
    /// process) on AVX-512 CPUs once the convolution has ≥ 512 input channels, e.g. ResNet-50's conv4_1 projection.
    /// </summary>
    internal static Tensor Subsample(Tensor x, long stride) =>
        stride == 1 ? x.alias() : x[.., .., TensorIndex.Slice(null, null, stride), TensorIndex.Slice(null, null, stride)];
}

/// <summary>
/// The projection shortcut (options B/C): a 1×1 convolution with stride s, then BN (no BN in pre-activation blocks).
/// Its children are named <c>0</c> and <c>1</c>, so its state-dict keys are torchvision's <c>downsample.0.weight</c>,
/// <c>downsample.1.*</c>. The stride is applied by subsampling the input before a stride-1 convolution (identical
/// result, see <see cref="Shortcuts.Subsample"/> for why).
/// </summary>
public sealed class ProjectionShortcut : nn.Module<Tensor, Tensor>
{
    // Held in an array, not in Module-typed fields: the parent block's RegisterComponents() also walks this
    // module's fields and would register them a second time under the field names (duplicate state-dict keys).
    private readonly nn.Module<Tensor, Tensor>[] parts;

    internal ProjectionShortcut(Conv2d conv, long stride, nn.Module<Tensor, Tensor>? norm)
        : base("downsample")
    {
        parts = norm is null ? new nn.Module<Tensor, Tensor>[] { conv } : new nn.Module<Tensor, Tensor>[] { conv, norm };
        Stride = stride;
        for (int i = 0; i < parts.Length; i++)
        {
            register_module(i.ToString(System.Globalization.CultureInfo.InvariantCulture), parts[i]);
        }
    }

    /// <summary>Spatial stride of the shortcut.</summary>
    public long Stride { get; }

    /// <summary>The 1×1 convolution.</summary>
    public Conv2d Conv => (Conv2d)parts[0];

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var y = parts[0].call(Shortcuts.Subsample(input, Stride));
        if (parts.Length > 1)
        {
            y = parts[1].call(y);
        }

        return y.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            foreach (var part in parts)
            {
                part.Dispose();
            }
        }

        base.Dispose(disposing);
    }
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
