using System;
using System.Collections.Generic;
using System.Linq;

namespace ResNetSharp;

/// <summary>Which residual block a stage table stacks.</summary>
public enum BlockKind
{
    /// <summary>Two 3×3 convolutions, expansion 1 (ResNet-18/34, CIFAR ResNets).</summary>
    Basic,

    /// <summary>1×1 reduce, 3×3, 1×1 restore; expansion 4 (ResNet-50/101/152, ResNeXt, Wide ResNet).</summary>
    Bottleneck,
}

/// <summary>Where a down-sampling bottleneck puts its stride of 2.</summary>
public enum StridePlacement
{
    /// <summary>ResNet v1.5 (torchvision's default): the stride sits on the 3×3 convolution.</summary>
    V1_5,

    /// <summary>ResNet v1 (the paper, Caffe): the stride sits on the first 1×1 convolution.</summary>
    V1,
}

/// <summary>The paper's shortcut options (§3.3) for where a block changes shape.</summary>
public enum ShortcutOption
{
    /// <summary>
    /// Option A: identity with zero-padded extra channels and stride-2 subsampling; parameter-free
    /// (the paper's CIFAR networks).
    /// </summary>
    A,

    /// <summary>Option B (the ImageNet default): a 1×1 projection + BN only where the shape changes, identity elsewhere.</summary>
    B,

    /// <summary>Option C: a 1×1 projection + BN on every shortcut.</summary>
    C,

    /// <summary>No shortcut at all: the paper's "plain" networks for the degradation experiment.</summary>
    None,
}

/// <summary>The stem that runs before the residual stages.</summary>
public enum StemKind
{
    /// <summary>7×7 convolution, stride 2, then 3×3 max pool, stride 2 (ImageNet; output stride 4).</summary>
    ImageNet,

    /// <summary>3×3 convolution, stride 1, no pooling (the paper's CIFAR networks; output stride 1).</summary>
    Cifar,

    /// <summary>
    /// ResNet-C/D's deep stem (He et al. 2019, "Bag of Tricks"; timm's <c>stem_type='deep'</c>): three 3×3 convolutions
    /// of <see cref="StageTable.StemWidth"/>, <see cref="StageTable.StemWidth"/> and 2 × <see cref="StageTable.StemWidth"/>
    /// channels (the first stride 2), each followed by BN + ReLU, then the 3×3 max pool, stride 2 (output stride 4).
    /// </summary>
    Deep,
}

/// <summary>Channel attention applied to every residual branch after its last BN, before the add.</summary>
public enum BlockAttention
{
    /// <summary>None (the paper's blocks).</summary>
    None,

    /// <summary>
    /// Squeeze-and-excitation (Hu et al. 2018), as timm's <c>se</c>: global average pool, 1×1 conv C → r, ReLU,
    /// 1×1 conv r → C, sigmoid, scale; r = C / 16 rounded to a multiple of 8.
    /// </summary>
    SqueezeExcite,
}

/// <summary>
/// The paper's Table 1 as data: everything that differs between ResNet depths and their ResNeXt / Wide variants.
/// Every named model in <see cref="ResNetFactory"/> is one such table; build a custom depth by writing your own.
/// </summary>
public sealed record StageTable
{
    /// <summary>The block every stage stacks.</summary>
    public required BlockKind Block { get; init; }

    /// <summary>Blocks per stage, e.g. [3, 4, 6, 3] for ResNet-50 (conv2_x … conv5_x).</summary>
    public required IReadOnlyList<int> Layers { get; init; }

    /// <summary>
    /// Base width (the paper's "planes") of each stage, e.g. [64, 128, 256, 512]. A block's output has
    /// width × expansion channels (1 for basic, 4 for bottleneck). Default: [64, 128, 256, 512].
    /// </summary>
    public IReadOnlyList<int> Widths { get; init; } = new[] { 64, 128, 256, 512 };

    /// <summary>Stride of the first block of each stage. Default: [1, 2, 2, 2] (conv3_1, conv4_1, conv5_1 down-sample).</summary>
    public IReadOnlyList<int> Strides { get; init; } = new[] { 1, 2, 2, 2 };

    /// <summary>The stem. Default: <see cref="StemKind.ImageNet"/>.</summary>
    public StemKind Stem { get; init; } = StemKind.ImageNet;

    /// <summary>
    /// Output channels of the stem convolution. Default: 64. For a <see cref="StemKind.Deep"/> stem, the width of its
    /// first two convolutions; the stem then outputs twice as many (<see cref="StemChannels"/>), as in timm.
    /// </summary>
    public int StemWidth { get; init; } = 64;

    /// <summary>
    /// ResNet-D's shortcut (timm's <c>avg_down</c>): a projection first averages 2×2 windows at the block's stride
    /// (ceil mode, padding not counted), then applies a stride-1 1×1 conv + BN, so no input is skipped. Default false.
    /// </summary>
    public bool AvgDown { get; init; }

    /// <summary>Channel attention in every block (timm's <c>attn_layer</c>). Default <see cref="BlockAttention.None"/>.</summary>
    public BlockAttention Attention { get; init; }

    /// <summary>Groups of the 3×3 convolution (ResNeXt's cardinality). Default: 1. Bottleneck only.</summary>
    public int Groups { get; init; } = 1;

    /// <summary>
    /// Width per group of the bottleneck's 3×3 convolution; the inner width is
    /// floor(planes × WidthPerGroup / 64) × Groups. Default: 64 (128 for Wide ResNet-50-2). Bottleneck only.
    /// </summary>
    public int WidthPerGroup { get; init; } = 64;

    /// <summary>Where a down-sampling bottleneck puts its stride. Default: <see cref="StridePlacement.V1_5"/>.</summary>
    public StridePlacement StridePlacement { get; init; } = StridePlacement.V1_5;

    /// <summary>The shortcut option. Default: <see cref="ShortcutOption.B"/>.</summary>
    public ShortcutOption Shortcut { get; init; } = ShortcutOption.B;

    /// <summary>
    /// Pre-activation residual units (He et al. 2016, "Identity Mappings in Deep Residual Networks"): every block
    /// orders its branch BN → ReLU → conv and adds the shortcut with no ReLU after it, the stem is the bare
    /// convolution (+ max pool), and a final BN + ReLU (<c>norm</c>) runs before pooling. Default false (the 2015 paper).
    /// </summary>
    public bool PreActivation { get; init; }

    /// <summary>Channel multiplier of a block's output over its base width: 1 for basic, 4 for bottleneck blocks.</summary>
    public int Expansion => Block == BlockKind.Basic ? BasicBlock.Expansion : Bottleneck.Expansion;

    /// <summary>Number of residual stages (the length of <see cref="Layers"/>).</summary>
    public int StageCount => Layers.Count;

    /// <summary>Channels the stem outputs: <see cref="StemWidth"/>, or twice it for a deep stem.</summary>
    public int StemChannels => Stem == StemKind.Deep ? 2 * StemWidth : StemWidth;

    /// <summary>Channels of the last feature map (the input width of the classifier).</summary>
    public int FeatureChannels => Widths[^1] * Expansion;

    /// <summary>Total down-sampling factor from input to the last feature map (32 for ImageNet tables).</summary>
    public int OutputStride => (Stem == StemKind.Cifar ? 1 : 4) * Strides.Aggregate(1, (a, s) => a * s);

    /// <summary>Returns a copy with another stride placement (v1 or v1.5).</summary>
    public StageTable WithStridePlacement(StridePlacement placement) => this with { StridePlacement = placement };

    /// <summary>Checks that the table describes a network that can be built.</summary>
    /// <exception cref="ArgumentException">A field is out of range; the message names it and what is allowed.</exception>
    public void Validate()
    {
        if (!Enum.IsDefined(Block))
        {
            throw new ArgumentException($"StageTable.Block {(int)Block} is not a BlockKind: expected Basic or Bottleneck.");
        }

        if (Layers is null || Layers.Count == 0)
        {
            throw new ArgumentException("StageTable.Layers must list at least one stage, e.g. [3, 4, 6, 3].");
        }

        if (Layers.Any(n => n < 1))
        {
            throw new ArgumentException($"StageTable.Layers must be ≥ 1 block per stage, got [{string.Join(", ", Layers)}].");
        }

        if (Widths is null || Widths.Count != Layers.Count)
        {
            throw new ArgumentException($"StageTable.Widths must give one width per stage ({Layers.Count}), got {Widths?.Count ?? 0}.");
        }

        if (Widths.Any(w => w < 1))
        {
            throw new ArgumentException($"StageTable.Widths must be positive, got [{string.Join(", ", Widths)}].");
        }

        if (Strides is null || Strides.Count != Layers.Count)
        {
            throw new ArgumentException($"StageTable.Strides must give one stride per stage ({Layers.Count}), got {Strides?.Count ?? 0}.");
        }

        if (Strides.Any(s => s is not (1 or 2)))
        {
            throw new ArgumentException($"StageTable.Strides must each be 1 or 2, got [{string.Join(", ", Strides)}].");
        }

        if (StemWidth < 1)
        {
            throw new ArgumentException($"StageTable.StemWidth must be positive, got {StemWidth}.");
        }

        if (Groups < 1 || WidthPerGroup < 1)
        {
            throw new ArgumentException($"StageTable.Groups and WidthPerGroup must be positive, got {Groups} and {WidthPerGroup}.");
        }

        if (Block == BlockKind.Basic && (Groups != 1 || WidthPerGroup != 64))
        {
            throw new ArgumentException(
                $"BasicBlock supports only Groups = 1 and WidthPerGroup = 64 (got {Groups} and {WidthPerGroup}); use BlockKind.Bottleneck for ResNeXt / Wide ResNet.");
        }

        if (!Enum.IsDefined(StridePlacement) || !Enum.IsDefined(Shortcut) || !Enum.IsDefined(Stem) || !Enum.IsDefined(Attention))
        {
            throw new ArgumentException("StageTable.StridePlacement, Shortcut, Stem and Attention must be defined enum values.");
        }

        if (PreActivation && (Stem == StemKind.Deep || AvgDown || Attention != BlockAttention.None))
        {
            throw new ArgumentException("StageTable: the deep stem, AvgDown and Attention are defined for post-activation networks only; set PreActivation = false.");
        }

        if (AvgDown && Shortcut is not (ShortcutOption.B or ShortcutOption.C))
        {
            throw new ArgumentException($"StageTable.AvgDown changes projection shortcuts, which option {Shortcut} does not have; use option B or C.");
        }

        if (Attention != BlockAttention.None && Shortcut == ShortcutOption.None)
        {
            throw new ArgumentException("StageTable.Attention scales the residual branch before the add; a plain network (Shortcut = None) has no add.");
        }

        if (Shortcut == ShortcutOption.A && Block != BlockKind.Basic)
        {
            throw new ArgumentException("Shortcut option A (zero-padded identity) is defined for basic blocks only; use B or C with bottlenecks.");
        }
    }

    /// <summary>The table as one line, e.g. "Bottleneck [3, 4, 6, 3] × [64, 128, 256, 512], groups 1, width/group 64, v1.5, option B".</summary>
    public override string ToString() =>
        $"{Block} [{string.Join(", ", Layers)}] × [{string.Join(", ", Widths)}], {Stem} stem, groups {Groups}, " +
        $"width/group {WidthPerGroup}, {(StridePlacement == StridePlacement.V1 ? "v1" : "v1.5")}, option {Shortcut}" +
        (PreActivation ? ", pre-activation" : "") + (AvgDown ? ", avg-down" : "") +
        (Attention == BlockAttention.SqueezeExcite ? ", squeeze-excite" : "");
}
