using System;
using System.Collections.Generic;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResNetSharp;

/// <summary>
/// What <see cref="BasicBlock"/> and <see cref="Bottleneck"/> share: y = ReLU(F(x) + shortcut(x)), where F is the
/// residual branch and the shortcut is an identity, a zero-padded identity (option A) or a 1×1 projection
/// (options B/C), decided by one rule in <see cref="Shortcuts"/>.
/// </summary>
public abstract class ResidualBlock : nn.Module<Tensor, Tensor>
{
    /// <summary>Creates the block and checks that the native backend loads.</summary>
    protected ResidualBlock(string name, long inChannels, long outChannels, long stride, ShortcutOption shortcut)
        : base(name)
    {
        NativeBackend.EnsureLoaded();
        if (inChannels < 1 || outChannels < 1)
        {
            throw new ArgumentException($"{name}: channel counts must be positive, got in={inChannels}, out={outChannels}.");
        }

        if (stride is not (1 or 2))
        {
            throw new ArgumentException($"{name}: stride must be 1 or 2, got {stride}.", nameof(stride));
        }

        if (!Enum.IsDefined(shortcut))
        {
            throw new ArgumentException($"{name}: unknown shortcut option {(int)shortcut}.", nameof(shortcut));
        }

        InChannels = inChannels;
        OutChannels = outChannels;
        Stride = stride;
        Shortcut = shortcut;
    }

    /// <summary>Channels the block expects.</summary>
    public long InChannels { get; }

    /// <summary>Channels the block produces (planes × expansion).</summary>
    public long OutChannels { get; }

    /// <summary>Spatial stride of the block (2 for the first block of a down-sampling stage).</summary>
    public long Stride { get; }

    /// <summary>The shortcut option the block was built with.</summary>
    public ShortcutOption Shortcut { get; }

    /// <summary>True when the shortcut is a 1×1 projection (the <c>downsample</c> submodule exists).</summary>
    public abstract bool HasProjection { get; }

    /// <summary>The convolutions of the residual branch F, in order (the weighted layers the paper counts).</summary>
    public abstract IReadOnlyList<Conv2d> ResidualConvs { get; }

    /// <summary>The last BatchNorm of the residual branch; zeroing its weight makes the block an identity map.</summary>
    public abstract BatchNorm2d LastNorm { get; }

    /// <summary>The BatchNorms of the residual branch, one per entry of <see cref="ResidualConvs"/> (for BN folding).</summary>
    internal abstract IReadOnlyList<BatchNorm2d> ResidualNorms { get; }

    /// <summary>The projection shortcut (<c>downsample</c> = conv 1×1, BN), or null.</summary>
    internal abstract Sequential? ProjectionModule { get; }

    /// <summary>The option-A zero-pad shortcut, or null.</summary>
    internal virtual ZeroPadShortcut? PadShortcut => null;

    /// <summary>Sets the weight of <see cref="LastNorm"/> to zero so the block starts as the identity (plus ReLU).</summary>
    public void ZeroInitResidual()
    {
        using var noGrad = torch.no_grad();
        nn.init.zeros_(LastNorm.weight);
    }

    /// <summary>Throws a clear <see cref="ArgumentException"/> unless <paramref name="x"/> is N×InChannels×H×W.</summary>
    protected void CheckInput(Tensor x)
    {
        if (x.dim() != 4)
        {
            throw new ArgumentException($"{GetName()}: expected a 4-D input N×{InChannels}×H×W, got shape [{string.Join(", ", x.shape)}].", nameof(x));
        }

        if (x.shape[1] != InChannels)
        {
            throw new ArgumentException($"{GetName()}: expected {InChannels} input channels, got {x.shape[1]} (shape [{string.Join(", ", x.shape)}]).", nameof(x));
        }
    }

    /// <summary>Adds the shortcut to the residual branch output (in place) and applies the final ReLU.</summary>
    protected static Tensor Merge(Tensor residual, Tensor x, nn.Module<Tensor, Tensor>? projection, nn.Module<Tensor, Tensor>? padShortcut, ShortcutOption option)
    {
        if (option != ShortcutOption.None)
        {
            if (projection is not null)
            {
                using var identity = projection.call(x);
                residual.add_(identity);
            }
            else if (padShortcut is not null)
            {
                using var identity = padShortcut.call(x);
                residual.add_(identity);
            }
            else
            {
                residual.add_(x);
            }
        }

        return residual.relu_();
    }
}
