using System;
using System.Collections.Generic;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace ResNetSharp.Blocks;

/// <summary>
/// ResNet-D (He et al. 2019, "Bag of Tricks for Image Classification", §4.1; timm's <c>resnet50d</c>): the deep stem
/// (<see cref="StemKind.Deep"/>) and the average-pooling projection shortcut (<see cref="StageTable.AvgDown"/>).
/// Module names are timm's, so its checkpoints load by name.
/// </summary>
internal static class ResNetD
{
    /// <summary>
    /// The deep stem's <c>conv1</c>: <c>0</c> 3×3 conv stride 2, <c>1</c> BN, <c>2</c> ReLU, <c>3</c> 3×3 conv, <c>4</c> BN,
    /// <c>5</c> ReLU, <c>6</c> 3×3 conv to <paramref name="outChannels"/> (the network's <c>bn1</c> and ReLU follow it).
    /// Returns the sequential and its convolutions with the norm after each (null after the last: that is <c>bn1</c>).
    /// </summary>
    public static (Sequential Stem, IReadOnlyList<(string ConvName, Conv2d Conv, string NormName, nn.Module<Tensor, Tensor>? Norm)> Layers) DeepStem(
        long inChannels, long width, long outChannels, Func<long, nn.Module<Tensor, Tensor>> norm, Device? device, ScalarType? dtype)
    {
        var c0 = nn.Conv2d(inChannels, width, kernel_size: 3, stride: 2, padding: 1, bias: false, device: device, dtype: dtype);
        var n0 = norm(width);
        var c1 = nn.Conv2d(width, width, kernel_size: 3, stride: 1, padding: 1, bias: false, device: device, dtype: dtype);
        var n1 = norm(width);
        var c2 = nn.Conv2d(width, outChannels, kernel_size: 3, stride: 1, padding: 1, bias: false, device: device, dtype: dtype);
        var stem = nn.Sequential(
            ("0", c0), ("1", n0), ("2", nn.ReLU(inplace: true)),
            ("3", c1), ("4", n1), ("5", nn.ReLU(inplace: true)),
            ("6", c2));
        var layers = new (string ConvName, Conv2d Conv, string NormName, nn.Module<Tensor, Tensor>? Norm)[]
        {
            ("conv1.0", c0, "conv1.1", n0), ("conv1.3", c1, "conv1.4", n1), ("conv1.6", c2, "bn1", null),
        };
        return (stem, layers);
    }
}

/// <summary>
/// ResNet-D's projection shortcut (timm's <c>downsample_avg</c>): <c>0</c> a 2×2 average pool at the block's stride
/// (ceil mode, padding not counted; absent at stride 1), <c>1</c> a stride-1 1×1 conv, <c>2</c> BN. Unlike the strided
/// 1×1 projection it reads every input position.
/// </summary>
internal sealed class AvgDownShortcut : nn.Module<Tensor, Tensor>, ILowerable
{
    [ComponentName(Name = "0")]
    private readonly AvgPool2d? pool;
    [ComponentName(Name = "1")]
    private readonly Conv2d conv;
    [ComponentName(Name = "2")]
    private readonly nn.Module<Tensor, Tensor> norm;

    public AvgDownShortcut(long inChannels, long outChannels, long stride, nn.Module<Tensor, Tensor> norm, Device? device, ScalarType? dtype)
        : base(nameof(AvgDownShortcut))
    {
        pool = stride == 1 ? null : nn.AvgPool2d(kernel_size: 2, stride: stride, ceil_mode: true, count_include_pad: false);
        conv = Layers.Conv1x1(inChannels, outChannels, 1, device, dtype);
        this.norm = norm;
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var y = pool is null ? input : pool.call(input);
        return norm.call(Layers.Apply(conv, y)).MoveToOuterDisposeScope();
    }

    /// <summary>The pool (<c>name.0</c>), then the conv with its BN (<c>name.1</c>, <c>name.2</c>).</summary>
    public int Lower(LoweringBuilder b, string name, int x)
    {
        int y = pool is null ? x : b.AvgPool($"{name}.0", x, conv.in_channels, pool);
        return b.Conv($"{name}.1", y, conv, norm, relu: false, normName: $"{name}.2");
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            pool?.Dispose();
            conv.Dispose();
            norm.Dispose();
        }

        base.Dispose(disposing);
    }
}
