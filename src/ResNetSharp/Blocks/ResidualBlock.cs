using System;
using System.Collections.Generic;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResNetSharp.Blocks;

/// <summary>
/// A residual block of a <see cref="ResNet"/> (the children of its <c>layerN</c> stages): the basic or bottleneck block that
/// <see cref="StageTable.Block"/> selects. What the two share: y = ReLU(F(x) + shortcut(x)), where F is the
/// residual branch and the shortcut is an identity, a zero-padded identity (option A) or a 1×1 projection
/// (options B/C), decided by one rule in <see cref="Shortcuts"/>. Pre-activation blocks (He et al. 2016) order
/// F as BN → ReLU → conv and return F(x) + shortcut(x) with no ReLU after the add, keeping the identity path clean.
/// In training, stochastic depth (<see cref="DropPathRate"/>) drops F for whole samples.
/// </summary>
public abstract class ResidualBlock : nn.Module<Tensor, Tensor>
{
    /// <summary>Creates the block and checks that the native backend loads.</summary>
    protected ResidualBlock(string name, long inChannels, long outChannels, long stride, ShortcutOption shortcut, bool preActivation = false)
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
        PreActivation = preActivation;
    }

    /// <summary>Channels the block expects.</summary>
    public long InChannels { get; }

    /// <summary>Channels the block produces (planes × expansion).</summary>
    public long OutChannels { get; }

    /// <summary>Spatial stride of the block (2 for the first block of a down-sampling stage).</summary>
    public long Stride { get; }

    /// <summary>The shortcut option the block was built with.</summary>
    public ShortcutOption Shortcut { get; }

    /// <summary>True for a pre-activation block (BN → ReLU → conv, no ReLU after the add).</summary>
    public bool PreActivation { get; }

    /// <summary>
    /// Stochastic depth (Huang et al. 2016): in training, the residual branch of each sample is dropped with this
    /// probability and kept ones are scaled by 1 / (1 − rate), so eval (where nothing is dropped) sees the same
    /// expectation. Default 0 (off). <see cref="ResNet"/> sets it from <see cref="ResNetOptions.DropPathRate"/>.
    /// </summary>
    /// <exception cref="ArgumentException">Set outside [0, 1), or above 0 on a block without a shortcut.</exception>
    public double DropPathRate
    {
        get => dropPathRate;
        set
        {
            if (!(value >= 0 && value < 1))
            {
                throw new ArgumentException($"{GetName()}: DropPathRate must be in [0, 1), got {value}.", nameof(value));
            }

            if (value > 0 && Shortcut == ShortcutOption.None)
            {
                throw new ArgumentException($"{GetName()}: stochastic depth needs a shortcut; a plain block (option None) would drop the whole path.", nameof(value));
            }

            dropPathRate = value;
        }
    }

    private double dropPathRate;

    /// <summary>True when the shortcut is a 1×1 projection (the <c>downsample</c> submodule exists).</summary>
    public abstract bool HasProjection { get; }

    /// <summary>The convolutions of the residual branch F, in order (the weighted layers the paper counts).</summary>
    public abstract IReadOnlyList<Conv2d> ResidualConvs { get; }

    /// <summary>
    /// The last norm of the residual branch (a <see cref="BatchNorm2d"/>, or a <see cref="FrozenBatchNorm2d"/> in a
    /// frozen part); in a post-activation block, zeroing its weight makes the block an identity map.
    /// </summary>
    public abstract nn.Module<Tensor, Tensor> LastNorm { get; }

    /// <summary>The norms of the residual branch, one per entry of <see cref="ResidualConvs"/> (for BN folding).</summary>
    internal abstract IReadOnlyList<nn.Module<Tensor, Tensor>> ResidualNorms { get; }

    /// <summary>The projection shortcut (<c>downsample</c>: conv 1×1 + BN, or ResNet-D's pool, conv, BN), or null.</summary>
    internal abstract nn.Module<Tensor, Tensor>? ProjectionModule { get; }

    /// <summary>The channel attention after the branch's last norm (<c>se</c>), or null.</summary>
    internal virtual nn.Module<Tensor, Tensor>? AttentionModule => null;

    /// <summary>The option-A zero-pad shortcut, or null.</summary>
    internal virtual ZeroPadShortcut? PadShortcut => null;

    /// <summary>
    /// Lowers the block in eval mode (stochastic depth is an identity there) into <paramref name="b"/>, reading the
    /// value <paramref name="x"/>; returns the value of its output. This and <see cref="Merge"/> are the only places
    /// that know the shortcut rules. Op order is the order the executors run and free things in: the first conv and
    /// the shortcut read the input first, so an input that only they read dies before the rest of the branch runs.
    /// Post-activation: conv–BN–ReLU … conv–BN, shortcut, add, ReLU (a plain block fuses the ReLU into its last conv).
    /// Pre-activation: BN–ReLU on the input (an affine op: no conv precedes it), then each conv with the next BN and
    /// ReLU folded in, the last conv bare; the projection reads the normalised input, identity and option A the raw
    /// one; the add has no ReLU.
    /// </summary>
    internal int Lower(LoweringBuilder b, string name, int x)
    {
        var convs = ResidualConvs;
        var norms = ResidualNorms;
        int n = convs.Count;
        bool hasShortcut = Shortcut != ShortcutOption.None;
        int shortcutInput = x;
        int y;
        if (PreActivation)
        {
            int pre = b.Norm($"{name}.bn1", x, norms[0], relu: true);
            y = b.Conv($"{name}.conv1", pre, convs[0], n > 1 ? norms[1] : null, relu: n > 1, normName: $"{name}.bn2");
            shortcutInput = ProjectionModule is null ? x : pre;
        }
        else
        {
            y = b.Conv($"{name}.conv1", x, convs[0], norms[0], relu: n > 1 || !hasShortcut);
        }

        int? identity = ProjectionModule is { } projection ? Lowerable(projection, $"{name}.downsample").Lower(b, $"{name}.downsample", shortcutInput)
            : PadShortcut is { } pad ? b.ZeroPad($"{name}.shortcut", shortcutInput, pad)
            : hasShortcut ? shortcutInput
            : null;
        for (int i = 1; i < n; i++)
        {
            bool last = i == n - 1;
            y = PreActivation
                ? b.Conv($"{name}.conv{i + 1}", y, convs[i], last ? null : norms[i + 1], relu: !last, normName: $"{name}.bn{i + 2}")
                : b.Conv($"{name}.conv{i + 1}", y, convs[i], norms[i], relu: !last || !hasShortcut);
        }

        if (AttentionModule is { } attention)
        {
            y = Lowerable(attention, $"{name}.se").Lower(b, $"{name}.se", y);
        }

        return identity is { } id ? b.Add($"{name}.add", y, id, OutChannels, relu: !PreActivation) : y;
    }

    private static ILowerable Lowerable(nn.Module module, string name) => module as ILowerable
        ?? throw new ArgumentException($"{name}: a {module.GetType().Name} cannot be lowered to eval-mode ops.");

    /// <summary>
    /// Makes the residual branch output zero so the block starts as the identity (plus ReLU): zeroes the weight of
    /// <see cref="LastNorm"/>, or of the last convolution in a pre-activation block (whose branch ends in a conv).
    /// </summary>
    public void ZeroInitResidual()
    {
        using var noGrad = torch.no_grad();
        if (PreActivation)
        {
            nn.init.zeros_(ResidualConvs[^1].weight);
            return;
        }

        switch (LastNorm)
        {
            case BatchNorm2d bn:
                nn.init.zeros_(bn.weight);
                break;
            case FrozenBatchNorm2d frozen:
                nn.init.zeros_(frozen.Weight);
                break;
        }
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

    /// <summary>
    /// Adds the shortcut to the residual branch output and, for post-activation blocks, applies the final ReLU.
    /// In training with <see cref="DropPathRate"/> &gt; 0 the branch is first dropped per sample.
    /// </summary>
    /// <param name="residual">F(x); may be modified in place.</param>
    /// <param name="x">The shortcut's input: the block input, or (pre-activation projections) BN-ReLU of it.</param>
    /// <param name="projection">The 1×1 projection, if the block has one.</param>
    /// <param name="padShortcut">The option-A shortcut, if the block has one.</param>
    protected Tensor Merge(Tensor residual, Tensor x, nn.Module<Tensor, Tensor>? projection, nn.Module<Tensor, Tensor>? padShortcut)
    {
        if (training && dropPathRate > 0)
        {
            // One Bernoulli(keep) draw per sample, broadcast over C×H×W: a dropped sample's block is its shortcut.
            double keep = 1 - dropPathRate;
            using var mask = torch.rand(new long[] { residual.shape[0], 1, 1, 1 }, dtype: residual.dtype, device: residual.device)
                .lt_(keep).div_(keep);
            residual = residual.mul(mask);
        }

        if (Shortcut != ShortcutOption.None)
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

        return PreActivation ? residual : residual.relu_();
    }
}
