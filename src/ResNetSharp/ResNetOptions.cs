using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;

namespace ResNetSharp;

/// <summary>Construction options that are not part of the stage table: head size, input channels, init, device.</summary>
public sealed record ResNetOptions
{
    /// <summary>
    /// Outputs of the classifier. Default: null, meaning the table's own: 1000 (the paper's ImageNet fc) for
    /// ImageNet stems, 10 for CIFAR stems. 0 builds a headless network (timm's <c>num_classes=0</c>): no <c>fc</c>, and
    /// the forward pass returns the pooled N × <see cref="ResNet.FeatureChannels"/> features.
    /// </summary>
    public int? NumClasses { get; init; }

    /// <summary>Channels of the input image. Default: 3 (RGB).</summary>
    public int InChannels { get; init; } = 3;

    /// <summary>
    /// Zero-initialise the last BN of every residual branch so that each block starts as an identity map
    /// (Goyal et al., 2017). Default: false, as in torchvision.
    /// </summary>
    public bool ZeroInitResidual { get; init; }

    /// <summary>Device to create the model on. Default: null, the CPU.</summary>
    public torch.Device? Device { get; init; }

    /// <summary>Floating-point type of parameters and buffers. Default: null, float32.</summary>
    public torch.ScalarType? DType { get; init; }

    /// <summary>
    /// For each stage after the first, whether to replace its stride by dilation (torchvision's
    /// <c>replace_stride_with_dilation</c>): [false, false, true] gives an ImageNet network output stride 16,
    /// [false, true, true] output stride 8. The first block of a dilated stage keeps the previous dilation, as in
    /// torchvision; unlike torchvision, basic blocks are supported. Default: null (no dilation).
    /// </summary>
    public IReadOnlyList<bool>? ReplaceStrideWithDilation { get; init; }

    /// <summary>
    /// Stochastic depth: the drop rate of the last block; block i of L gets rate × i / (L − 1) (a linear schedule,
    /// the first block 0). Active only in training. Default 0 (off). Must be in [0, 1); needs shortcuts.
    /// </summary>
    public double DropPathRate { get; init; }

    /// <summary>
    /// Freeze the first k parts as Detectron's <c>FREEZE_AT</c>: 1 freezes the stem, 2 the stem and the first stage
    /// (conv2_x), and so on. A frozen part uses <see cref="FrozenBatchNorm2d"/> and its convolutions do not require
    /// gradients. Default 0 (nothing frozen).
    /// </summary>
    public int FrozenStages { get; init; }

    /// <summary>
    /// Use <see cref="FrozenBatchNorm2d"/> (fixed statistics and affine) for every norm, as detection fine-tuning
    /// with small batches does; convolutions stay trainable. Default false.
    /// </summary>
    public bool FrozenBatchNorm { get; init; }

    /// <summary>The classifier size for a given table: <see cref="NumClasses"/> or the table's default.</summary>
    public int ResolveNumClasses(StageTable table) => NumClasses ?? (table?.Stem == StemKind.Cifar ? 10 : 1000);

    /// <summary>Checks the options.</summary>
    /// <exception cref="ArgumentException">A field is out of range; the message says what is allowed.</exception>
    public void Validate()
    {
        if (NumClasses is < 0)
        {
            throw new ArgumentException($"ResNetOptions.NumClasses must be ≥ 0 (0: headless, no classifier), got {NumClasses}.");
        }

        if (InChannels < 1)
        {
            throw new ArgumentException($"ResNetOptions.InChannels must be ≥ 1, got {InChannels}.");
        }

        if (!(DropPathRate >= 0 && DropPathRate < 1))
        {
            throw new ArgumentException($"ResNetOptions.DropPathRate must be in [0, 1), got {DropPathRate}.");
        }

        if (FrozenStages < 0)
        {
            throw new ArgumentException($"ResNetOptions.FrozenStages must be ≥ 0 (0 = nothing frozen, 1 = stem, 2 = stem + conv2_x, …), got {FrozenStages}.");
        }

        if (DType is { } t && t is not (torch.ScalarType.Float32 or torch.ScalarType.Float64 or torch.ScalarType.Float16 or torch.ScalarType.BFloat16))
        {
            throw new ArgumentException($"ResNetOptions.DType must be Float32, Float64, Float16 or BFloat16, got {t}.");
        }
    }

    /// <summary>Checks the options that depend on the architecture (dilation list length, frozen stages, drop path).</summary>
    /// <exception cref="ArgumentException">An option does not fit the table; the message says what is allowed.</exception>
    public void Validate(StageTable table)
    {
        ArgumentNullException.ThrowIfNull(table);
        Validate();
        if (ReplaceStrideWithDilation is { } dilate && dilate.Count != table.StageCount - 1)
        {
            throw new ArgumentException(
                $"ResNetOptions.ReplaceStrideWithDilation must have one entry per stage after the first ({table.StageCount - 1} for this " +
                $"{table.StageCount}-stage table, e.g. [{string.Join(", ", Enumerable.Repeat("false", table.StageCount - 1))}]), got {dilate.Count}.");
        }

        if (FrozenStages > table.StageCount + 1)
        {
            throw new ArgumentException($"ResNetOptions.FrozenStages must be ≤ {table.StageCount + 1} (stem + {table.StageCount} stages), got {FrozenStages}.");
        }

        if (table.AvgDown && ReplaceStrideWithDilation is { } dilated && dilated.Any(d => d))
        {
            throw new ArgumentException(
                "ResNetOptions.ReplaceStrideWithDilation cannot be combined with StageTable.AvgDown: in a dilated stage timm's ResNet-D " +
                "shortcut pools with a stride-1, 'same'-padded 2×2 average, which ResNetSharp does not implement.");
        }

        if (DropPathRate > 0 && table.Shortcut == ShortcutOption.None)
        {
            throw new ArgumentException("ResNetOptions.DropPathRate needs shortcuts: a plain network (Shortcut = None) has no identity path to fall back on.");
        }
    }
}
