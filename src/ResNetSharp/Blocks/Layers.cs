using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResNetSharp.Blocks;

/// <summary>Small conv/BN builders shared by the blocks and the stem, with torchvision's defaults (no conv bias).</summary>
internal static class Layers
{
    public static Conv2d Conv3x3(long inPlanes, long outPlanes, long stride, long groups, long dilation, Device? device, ScalarType? dtype) =>
        nn.Conv2d(inPlanes, outPlanes, kernel_size: 3, stride: stride, padding: dilation, dilation: dilation,
            groups: groups, bias: false, device: device, dtype: dtype);

    public static Conv2d Conv1x1(long inPlanes, long outPlanes, long stride, Device? device, ScalarType? dtype) =>
        nn.Conv2d(inPlanes, outPlanes, kernel_size: 1, stride: stride, bias: false, device: device, dtype: dtype);

    /// <summary>A BatchNorm2d, or (<paramref name="frozen"/>) a <see cref="FrozenBatchNorm2d"/> with the same keys.</summary>
    public static nn.Module<Tensor, Tensor> Norm(long channels, Device? device, ScalarType? dtype, bool frozen) =>
        frozen ? new FrozenBatchNorm2d(channels, device: device, dtype: dtype) : Norm(channels, device, dtype);

    public static BatchNorm2d Norm(long channels, Device? device, ScalarType? dtype)
    {
        var bn = nn.BatchNorm2d(channels, device: device, dtype: dtype);
        if (dtype is not null && bn.num_batches_tracked is { } tracked && tracked.dtype != ScalarType.Int64)
        {
            // TorchSharp gives the counter the float dtype too; torchvision (and checkpoints) keep it int64.
            bn.num_batches_tracked = torch.zeros(System.Array.Empty<long>(), ScalarType.Int64, device);
            tracked.Dispose();
        }

        return bn;
    }

    /// <summary>Runs a convolution of a block or stem (libtorch's quirks are routed around in <see cref="LibTorchQuirks"/>).</summary>
    public static Tensor Apply(Conv2d conv, Tensor input) => LibTorchQuirks.Convolve(conv, input);

    /// <summary>
    /// True for a 4-D tensor laid out channels-last: NHWC memory, strides (H·W·C, 1, W·C, C) (any stride for a
    /// dimension of size 1, so a one-channel contiguous image counts too), what
    /// <see cref="ToChannelsLast"/> makes and convolutions, BatchNorm and element-wise ops carry on.
    /// </summary>
    public static bool IsChannelsLast(Tensor x)
    {
        if (x.dim() != 4)
        {
            return false;
        }

        // A dimension of size 1 can have any stride without changing the layout.
        long[] shape = x.shape, strides = x.stride(), expected = ChannelsLastStrides(shape);
        return Enumerable.Range(0, 4).All(d => shape[d] == 1 || strides[d] == expected[d]);
    }

    /// <summary>
    /// The same N×C×H×W values in channels-last memory (TorchSharp does not bind <c>memory_format</c>), differentiable;
    /// the input itself (an alias) when its strides already are exactly those. The strides are set explicitly rather than by
    /// permuting, because a permute-and-copy of a one-channel image is a no-op that leaves its NCHW strides, and libtorch
    /// then runs the whole network NCHW.
    /// </summary>
    public static Tensor ToChannelsLast(Tensor x)
    {
        if (x.stride().SequenceEqual(ChannelsLastStrides(x.shape)))
        {
            return x.alias();
        }

        var y = torch.empty_strided(x.shape, ChannelsLastStrides(x.shape), x.dtype, x.device);
        return y.copy_(x);
    }

    private static long[] ChannelsLastStrides(long[] shape)
    {
        long c = shape[1], h = shape[2], w = shape[3];
        return new[] { h * w * c, 1, w * c, c };
    }

    /// <summary>
    /// He (fan-out, ReLU) init for every conv and weight 1 / bias 0 for every BN, as in the paper and torchvision.
    /// </summary>
    public static void InitializeWeights(nn.Module module)
    {
        using var noGrad = torch.no_grad();
        foreach (var m in module.modules())
        {
            switch (m)
            {
                case Conv2d conv:
                    nn.init.kaiming_normal_(conv.weight, mode: nn.init.FanInOut.FanOut, nonlinearity: nn.init.NonlinearityType.ReLU);
                    break;
                case BatchNorm2d bn:
                    nn.init.ones_(bn.weight);
                    nn.init.zeros_(bn.bias);
                    break;
                case FrozenBatchNorm2d frozen:
                    nn.init.ones_(frozen.Weight);
                    nn.init.zeros_(frozen.Bias);
                    break;
            }
        }
    }
}
