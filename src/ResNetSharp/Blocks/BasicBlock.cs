using System;
using System.Collections.Generic;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResNetSharp.Blocks;

/// <summary>
/// The paper's basic block (Fig. 2 left / Fig. 5 left): 3×3 conv – BN – ReLU – 3×3 conv – BN, plus the shortcut,
/// then ReLU. Expansion 1. Submodule names are torchvision's: <c>conv1, bn1, conv2, bn2, downsample</c>.
/// As a pre-activation block (He et al. 2016): BN – ReLU – conv1 – BN – ReLU – conv2, plus the shortcut, no ReLU;
/// <c>bn1</c> then normalises the block input. Unlike torchvision's, it supports dilation (both 3×3 convs).
/// </summary>
public sealed class BasicBlock : ResidualBlock
{
    /// <summary>Output channels over <c>planes</c>: 1.</summary>
    public const int Expansion = 1;

    private readonly Conv2d conv1;
    private readonly nn.Module<Tensor, Tensor> bn1;
    private readonly Conv2d conv2;
    private readonly nn.Module<Tensor, Tensor> bn2;
    private readonly nn.Module<Tensor, Tensor>? se;
    private readonly nn.Module<Tensor, Tensor>? downsample;
    private readonly ZeroPadShortcut? shortcut;

    /// <summary>Creates a basic block.</summary>
    /// <param name="inPlanes">Input channels.</param>
    /// <param name="planes">Width of both convolutions and of the output.</param>
    /// <param name="stride">Stride of the first 3×3 conv (and the shortcut): 1 or 2. Default 1.</param>
    /// <param name="shortcutOption">The paper's shortcut option; default B (projection only where shape changes).</param>
    /// <param name="dilation">Dilation of both 3×3 convs (padding follows it). Default 1.</param>
    /// <param name="device">Device for the parameters; default the CPU.</param>
    /// <param name="dtype">Parameter dtype; default float32.</param>
    /// <param name="preActivation">Pre-activation ordering (BN → ReLU → conv, no ReLU after the add). Default false.</param>
    /// <param name="frozenNorm">Use <see cref="FrozenBatchNorm2d"/> for every norm. Default false.</param>
    public BasicBlock(long inPlanes, long planes, long stride = 1, ShortcutOption shortcutOption = ShortcutOption.B,
        long dilation = 1, Device? device = null, ScalarType? dtype = null, bool preActivation = false, bool frozenNorm = false)
        : this(inPlanes, planes, stride, shortcutOption, dilation, preActivation, BlockLayers.Default(device, dtype, frozenNorm))
    {
    }

    /// <summary>Creates a basic block from injected layers (norm, projection, attention).</summary>
    internal BasicBlock(long inPlanes, long planes, long stride, ShortcutOption shortcutOption, long dilation, bool preActivation, BlockLayers layers)
        : base(nameof(BasicBlock), inPlanes, planes * Expansion, stride, shortcutOption, preActivation)
    {
        if (dilation < 1)
        {
            throw new ArgumentException($"BasicBlock: dilation must be ≥ 1, got {dilation}.", nameof(dilation));
        }

        var (device, dtype) = (layers.Device, layers.DType);
        conv1 = Layers.Conv3x3(inPlanes, planes, stride, 1, dilation, device, dtype);
        bn1 = layers.Norm(preActivation ? inPlanes : planes);
        conv2 = Layers.Conv3x3(planes, planes, 1, 1, dilation, device, dtype);
        bn2 = layers.Norm(planes);
        se = layers.Attention(OutChannels);
        Dilation = dilation;
        if (Shortcuts.NeedsProjection(shortcutOption, inPlanes, OutChannels, stride))
        {
            downsample = layers.Projection(inPlanes, OutChannels, stride, !preActivation);
        }
        else if (shortcutOption == ShortcutOption.A && Shortcuts.ShapeChanges(inPlanes, OutChannels, stride))
        {
            shortcut = new ZeroPadShortcut(inPlanes, OutChannels, stride);
        }

        RegisterComponents();
        Layers.InitializeWeights(this);
    }

    /// <summary>Dilation of the two 3×3 convolutions.</summary>
    public long Dilation { get; }

    /// <inheritdoc />
    public override bool HasProjection => downsample is not null;

    /// <inheritdoc />
    public override IReadOnlyList<Conv2d> ResidualConvs => new[] { conv1, conv2 };

    /// <inheritdoc />
    public override nn.Module<Tensor, Tensor> LastNorm => bn2;

    /// <inheritdoc />
    internal override IReadOnlyList<nn.Module<Tensor, Tensor>> ResidualNorms => new[] { bn1, bn2 };

    /// <inheritdoc />
    internal override nn.Module<Tensor, Tensor>? ProjectionModule => downsample;

    /// <inheritdoc />
    internal override nn.Module<Tensor, Tensor>? AttentionModule => se;

    /// <inheritdoc />
    internal override ZeroPadShortcut? PadShortcut => shortcut;

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        CheckInput(input);
        using var scope = torch.NewDisposeScope();
        if (PreActivation)
        {
            // The projection sees the normalised input (He et al. 2016); identity shortcuts see the raw input.
            var pre = bn1.call(input).relu_();
            var r = Layers.Apply(conv1, pre);
            r = conv2.call(bn2.call(r).relu_());
            return Merge(r, downsample is null ? input : pre, downsample, shortcut).MoveToOuterDisposeScope();
        }

        var y = bn1.call(Layers.Apply(conv1, input)).relu_();
        y = bn2.call(conv2.call(y));
        if (se is not null)
        {
            y = se.call(y);
        }

        return Merge(y, input, downsample, shortcut).MoveToOuterDisposeScope();
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
            se?.Dispose();
            downsample?.Dispose();
            shortcut?.Dispose();
        }

        base.Dispose(disposing);
    }
}
