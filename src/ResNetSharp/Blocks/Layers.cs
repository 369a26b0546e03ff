using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResNetSharp;

/// <summary>Small conv/BN builders shared by the blocks and the stem, with torchvision's defaults (no conv bias).</summary>
internal static class Layers
{
    public static Conv2d Conv3x3(long inPlanes, long outPlanes, long stride, long groups, long dilation, Device? device, ScalarType? dtype) =>
        nn.Conv2d(inPlanes, outPlanes, kernel_size: 3, stride: stride, padding: dilation, dilation: dilation,
            groups: groups, bias: false, device: device, dtype: dtype);

    public static Conv2d Conv1x1(long inPlanes, long outPlanes, long stride, Device? device, ScalarType? dtype) =>
        nn.Conv2d(inPlanes, outPlanes, kernel_size: 1, stride: stride, bias: false, device: device, dtype: dtype);

    public static nn.Module<Tensor, Tensor> Norm(long channels, Device? device, ScalarType? dtype, bool frozen = false) =>
        frozen ? new FrozenBatchNorm2d(channels, device: device, dtype: dtype) : nn.BatchNorm2d(channels, device: device, dtype: dtype);

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
