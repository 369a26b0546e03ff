using System;
using System.Collections.Generic;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResNetSharp;

/// <summary>
/// The paper's basic block (Fig. 2 left / Fig. 5 left): 3×3 conv – BN – ReLU – 3×3 conv – BN, plus the shortcut,
/// then ReLU. Expansion 1. Submodule names are torchvision's: <c>conv1, bn1, conv2, bn2, downsample</c>.
/// </summary>
public sealed class BasicBlock : ResidualBlock
{
    /// <summary>Output channels over <c>planes</c>: 1.</summary>
    public const int Expansion = 1;

    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly Conv2d conv2;
    private readonly BatchNorm2d bn2;
    private readonly Sequential? downsample;
    private readonly ZeroPadShortcut? shortcut;

    /// <summary>Creates a basic block.</summary>
    /// <param name="inPlanes">Input channels.</param>
    /// <param name="planes">Width of both convolutions and of the output.</param>
    /// <param name="stride">Stride of the first 3×3 conv (and the shortcut): 1 or 2. Default 1.</param>
    /// <param name="shortcutOption">The paper's shortcut option; default B (projection only where shape changes).</param>
    /// <param name="dilation">Dilation of both 3×3 convs (padding follows it). Default 1.</param>
    /// <param name="device">Device for the parameters; default the CPU.</param>
    /// <param name="dtype">Parameter dtype; default float32.</param>
    public BasicBlock(long inPlanes, long planes, long stride = 1, ShortcutOption shortcutOption = ShortcutOption.B,
        long dilation = 1, Device? device = null, ScalarType? dtype = null)
        : base(nameof(BasicBlock), inPlanes, planes * Expansion, stride, shortcutOption)
    {
        if (dilation < 1)
        {
            throw new ArgumentException($"BasicBlock: dilation must be ≥ 1, got {dilation}.", nameof(dilation));
        }

        conv1 = Layers.Conv3x3(inPlanes, planes, stride, 1, dilation, device, dtype);
        bn1 = Layers.Norm(planes, device, dtype);
        conv2 = Layers.Conv3x3(planes, planes, 1, 1, dilation, device, dtype);
        bn2 = Layers.Norm(planes, device, dtype);
        if (Shortcuts.NeedsProjection(shortcutOption, inPlanes, OutChannels, stride))
        {
            downsample = Shortcuts.Projection(inPlanes, OutChannels, stride, device, dtype);
        }
        else if (shortcutOption == ShortcutOption.A && Shortcuts.ShapeChanges(inPlanes, OutChannels, stride))
        {
            shortcut = new ZeroPadShortcut(inPlanes, OutChannels, stride);
        }

        RegisterComponents();
        Layers.InitializeWeights(this);
    }

    /// <inheritdoc />
    public override bool HasProjection => downsample is not null;

    /// <inheritdoc />
    public override IReadOnlyList<Conv2d> ResidualConvs => new[] { conv1, conv2 };

    /// <inheritdoc />
    public override BatchNorm2d LastNorm => bn2;

    /// <inheritdoc />
    internal override IReadOnlyList<BatchNorm2d> ResidualNorms => new[] { bn1, bn2 };

    /// <inheritdoc />
    internal override Sequential? ProjectionModule => downsample;

    /// <inheritdoc />
    internal override ZeroPadShortcut? PadShortcut => shortcut;

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        CheckInput(input);
        using var scope = torch.NewDisposeScope();
        var y = bn1.call(conv1.call(input)).relu_();
        y = bn2.call(conv2.call(y));
        return Merge(y, input, downsample, shortcut, Shortcut).MoveToOuterDisposeScope();
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
            downsample?.Dispose();
            shortcut?.Dispose();
        }

        base.Dispose(disposing);
    }
}
