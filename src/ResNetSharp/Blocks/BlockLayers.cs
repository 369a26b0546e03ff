using System;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNetSharp.Blocks;

/// <summary>
/// The layers a residual block is made of beyond its convolutions, injected as factories (timm's
/// <c>norm_layer</c> / <c>attn_layer</c> / downsample idea): a variant is a different factory, not a flag threaded
/// through every constructor. <see cref="ResNet"/> picks them from the <see cref="StageTable"/> once per stage.
/// </summary>
/// <param name="Device">Device of the block's parameters (null: the CPU).</param>
/// <param name="DType">Parameter dtype (null: float32).</param>
/// <param name="Norm">Makes the norm for a number of channels (BatchNorm2d, or FrozenBatchNorm2d in frozen parts).</param>
/// <param name="Projection">
/// Makes the projection shortcut (registered as <c>downsample</c>) from input channels, output channels, stride and
/// whether it ends in a norm (false in pre-activation blocks).
/// </param>
/// <param name="Attention">Makes the channel attention applied after the branch's last norm (registered as <c>se</c>), or null for none.</param>
internal sealed record BlockLayers(
    Device? Device,
    ScalarType? DType,
    Func<long, nn.Module<Tensor, Tensor>> Norm,
    Func<long, long, long, bool, nn.Module<Tensor, Tensor>> Projection,
    Func<long, nn.Module<Tensor, Tensor>?> Attention)
{
    /// <summary>torchvision's blocks: BatchNorm (or frozen BN), a strided 1×1 conv + BN projection, no attention.</summary>
    public static BlockLayers Default(Device? device, ScalarType? dtype, bool frozenNorm) => new(
        device,
        dtype,
        channels => Layers.Norm(channels, device, dtype, frozenNorm),
        (inChannels, outChannels, stride, withNorm) => new ProjectionShortcut(inChannels, outChannels, stride, device, dtype, withNorm, frozenNorm),
        _ => null);

    /// <summary>The layers a stage table asks for.</summary>
    public static BlockLayers For(StageTable table, Device? device, ScalarType? dtype, bool frozenNorm)
    {
        var layers = Default(device, dtype, frozenNorm);
        var norm = layers.Norm;
        if (table.AvgDown)
        {
            layers = layers with { Projection = (inChannels, outChannels, stride, _) => new AvgDownShortcut(inChannels, outChannels, stride, norm(outChannels), device, dtype) };
        }

        if (table.Attention == BlockAttention.SqueezeExcite)
        {
            layers = layers with { Attention = channels => new SqueezeExcite(channels, device, dtype) };
        }

        return layers;
    }
}

/// <summary>A module that appends its own eval-mode ops to a graph being lowered (shortcuts, attention).</summary>
internal interface ILowerable
{
    /// <summary>Lowers the module, registered under <paramref name="name"/>, reading value <paramref name="x"/>; returns its output value.</summary>
    int Lower(LoweringBuilder b, string name, int x);
}
