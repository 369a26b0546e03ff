using System;
using System.Collections.Generic;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResNetSharp.Blocks;

/// <summary>
/// The paper's bottleneck block (Fig. 5 right): 1×1 reduce – 3×3 – 1×1 restore (each followed by BN, ReLU after
/// the first two), plus the shortcut, then ReLU. Expansion 4. With <c>groups</c> and <c>widthPerGroup</c> it is
/// also ResNeXt's and Wide ResNet's block. Submodule names are torchvision's:
/// <c>conv1, bn1, conv2, bn2, conv3, bn3, downsample</c>. As a pre-activation block (He et al. 2016) each conv is
/// preceded by BN – ReLU (so <c>bn1</c> normalises the block input) and nothing follows the add.
/// </summary>
public sealed class Bottleneck : ResidualBlock
{
    /// <summary>Output channels over <c>planes</c>: 4.</summary>
    public const int Expansion = 4;

    private readonly Conv2d conv1;
    private readonly nn.Module<Tensor, Tensor> bn1;
    private readonly Conv2d conv2;
    private readonly nn.Module<Tensor, Tensor> bn2;
    private readonly Conv2d conv3;
    private readonly nn.Module<Tensor, Tensor> bn3;
    private readonly nn.Module<Tensor, Tensor>? se;
    private readonly nn.Module<Tensor, Tensor>? downsample;

    /// <summary>Creates a bottleneck block.</summary>
    /// <param name="inPlanes">Input channels.</param>
    /// <param name="planes">Base width; the output has planes × 4 channels.</param>
    /// <param name="stride">Stride of the block: 1 or 2. Default 1.</param>
    /// <param name="groups">Groups of the 3×3 conv (ResNeXt cardinality). Default 1.</param>
    /// <param name="widthPerGroup">Width per group; inner width = floor(planes × widthPerGroup / 64) × groups. Default 64.</param>
    /// <param name="stridePlacement">v1.5 (default): stride on the 3×3; v1: stride on the first 1×1 (the paper).</param>
    /// <param name="shortcutOption">B (default) or C; option A is not defined for bottlenecks; None makes a plain block.</param>
    /// <param name="dilation">Dilation of the 3×3 conv. Default 1.</param>
    /// <param name="device">Device for the parameters; default the CPU.</param>
    /// <param name="dtype">Parameter dtype; default float32.</param>
    /// <param name="preActivation">Pre-activation ordering (BN → ReLU → conv, no ReLU after the add). Default false.</param>
    /// <param name="frozenNorm">Use <see cref="FrozenBatchNorm2d"/> for every norm. Default false.</param>
    public Bottleneck(long inPlanes, long planes, long stride = 1, long groups = 1, long widthPerGroup = 64,
        StridePlacement stridePlacement = StridePlacement.V1_5, ShortcutOption shortcutOption = ShortcutOption.B,
        long dilation = 1, Device? device = null, ScalarType? dtype = null, bool preActivation = false, bool frozenNorm = false)
        : this(inPlanes, planes, stride, groups, widthPerGroup, stridePlacement, shortcutOption, dilation, preActivation,
            BlockLayers.Default(device, dtype, frozenNorm))
    {
    }

    /// <summary>Creates a bottleneck block from injected layers (norm, projection, attention).</summary>
    internal Bottleneck(long inPlanes, long planes, long stride, long groups, long widthPerGroup, StridePlacement stridePlacement,
        ShortcutOption shortcutOption, long dilation, bool preActivation, BlockLayers layers)
        : base(nameof(Bottleneck), inPlanes, planes * Expansion, stride, shortcutOption, preActivation)
    {
        if (groups < 1 || widthPerGroup < 1 || dilation < 1)
        {
            throw new ArgumentException($"Bottleneck: groups, widthPerGroup and dilation must be ≥ 1, got {groups}, {widthPerGroup}, {dilation}.");
        }

        if (shortcutOption == ShortcutOption.A)
        {
            throw new ArgumentException("Bottleneck: shortcut option A (zero-padded identity) is defined for basic blocks only; use B or C.", nameof(shortcutOption));
        }

        long width = planes * widthPerGroup / 64 * groups;
        if (width < groups)
        {
            throw new ArgumentException($"Bottleneck: inner width {width} is smaller than groups {groups}; raise planes or widthPerGroup.");
        }

        StridePlacement = stridePlacement;
        Width = width;
        long s1 = stridePlacement == StridePlacement.V1 ? stride : 1;
        long s3 = stridePlacement == StridePlacement.V1 ? 1 : stride;
        var (device, dtype) = (layers.Device, layers.DType);
        conv1 = Layers.Conv1x1(inPlanes, width, s1, device, dtype);
        bn1 = layers.Norm(preActivation ? inPlanes : width);
        conv2 = Layers.Conv3x3(width, width, s3, groups, dilation, device, dtype);
        bn2 = layers.Norm(width);
        conv3 = Layers.Conv1x1(width, OutChannels, 1, device, dtype);
        bn3 = layers.Norm(preActivation ? width : OutChannels);
        se = layers.Attention(OutChannels);
        Dilation = dilation;
        if (Shortcuts.NeedsProjection(shortcutOption, inPlanes, OutChannels, stride))
        {
            downsample = layers.Projection(inPlanes, OutChannels, stride, !preActivation);
        }

        RegisterComponents();
        Layers.InitializeWeights(this);
    }

    /// <summary>Where this block puts its stride.</summary>
    public StridePlacement StridePlacement { get; }

    /// <summary>Inner (bottleneck) width of the 1×1 reduce and 3×3 convs.</summary>
    public long Width { get; }

    /// <summary>Dilation of the 3×3 convolution.</summary>
    public long Dilation { get; }

    /// <inheritdoc />
    public override bool HasProjection => downsample is not null;

    /// <inheritdoc />
    public override IReadOnlyList<Conv2d> ResidualConvs => new[] { conv1, conv2, conv3 };

    /// <inheritdoc />
    public override nn.Module<Tensor, Tensor> LastNorm => bn3;

    /// <inheritdoc />
    internal override IReadOnlyList<nn.Module<Tensor, Tensor>> ResidualNorms => new[] { bn1, bn2, bn3 };

    /// <inheritdoc />
    internal override nn.Module<Tensor, Tensor>? ProjectionModule => downsample;

    /// <inheritdoc />
    internal override nn.Module<Tensor, Tensor>? AttentionModule => se;

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        CheckInput(input);
        using var scope = torch.NewDisposeScope();
        if (PreActivation)
        {
            var pre = bn1.call(input).relu_();
            var r = Layers.Apply(conv1, pre);
            r = conv2.call(bn2.call(r).relu_());
            r = conv3.call(bn3.call(r).relu_());
            return Merge(r, downsample is null ? input : pre, downsample, null).MoveToOuterDisposeScope();
        }

        var y = bn1.call(Layers.Apply(conv1, input)).relu_();
        y = bn2.call(conv2.call(y)).relu_();
        y = bn3.call(conv3.call(y));
        if (se is not null)
        {
            y = se.call(y);
        }

        return Merge(y, input, downsample, null).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            conv1.Dispose();
            bn1.Dispose();
            conv2.Dispose();
            bn2.Dispose();
            conv3.Dispose();
            bn3.Dispose();
            se?.Dispose();
            downsample?.Dispose();
        }

        base.Dispose(disposing);
    }
}
