using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResNetSharp.Tests;

/// <summary>
/// Shared helper of the lowering, ONNX and ONNX Runtime tests. The hand-made inference engine these tests once covered
/// was replaced by ONNX Runtime (ResNetSharp.OnnxRuntime; its contract tests are OnnxRuntime/OnnxRuntimeResNetTests).
/// </summary>
internal static class InferenceResNetTests
{
    /// <summary>Gives every BatchNorm non-trivial statistics and affine parameters, so folding has something to get wrong.</summary>
    internal static void RandomizeNorms(nn.Module model, long seed)
    {
        torch.manual_seed(seed);
        using var noGrad = torch.no_grad();
        foreach (var bn in model.modules().OfType<BatchNorm2d>())
        {
            long c = bn.running_mean!.shape[0];
            bn.running_mean.copy_(torch.randn(c) * 0.2);
            bn.running_var!.copy_(torch.rand(c) + 0.5);
            bn.weight!.copy_(torch.rand(c) + 0.5);
            bn.bias!.copy_(torch.randn(c) * 0.2);
        }
    }
}
