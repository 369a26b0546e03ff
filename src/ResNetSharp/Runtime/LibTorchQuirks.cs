using System;
using System.Linq;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResNetSharp.Runtime;

/// <summary>
/// Every libtorch bug or kernel choice this library works around, in one place: each with the libtorch version and
/// CPU condition under which it was seen, how that condition is detected (once per process), and one switch. The
/// model, the blocks and the trainer never name a bug; they call <see cref="Convolve"/> and
/// <see cref="TrainsChannelsLast"/>, and the native loader calls <see cref="ApplyOnLoad"/>.
/// </summary>
/// <remarks>
/// Seen with libtorch 2.10 (TorchSharp 0.107). A quirk that a later libtorch fixes is removed here and nowhere else.
/// The repro tests (<c>LibTorchQuirksTests</c>) run each bug's minimal case in a child process with the workaround
/// off, on every CPU, and check that where the bug shows, the detection says so.
/// </remarks>
internal static class LibTorchQuirks
{
    /// <summary>The libtorch the quirks below were observed with.</summary>
    public const string ObservedLibTorch = "2.10 (TorchSharp 0.107)";

    /// <summary>
    /// Where oneDNN's AVX-512 (brgemm) convolution kernels run: x86 CPUs with AVX-512F, detected from the processor
    /// (CPUID). The two 1×1-convolution bugs below were seen only there (AMD EPYC, CPUID families 25 and 26); on AVX2-only
    /// CPUs oneDNN takes other kernels.
    /// </summary>
    public static bool HasAvx512Kernels { get; } = Avx512F.IsSupported;

    /// <summary>
    /// Where oneDNN's AVX2 convolution kernels run instead: x86 CPUs with AVX2 and without AVX-512F, detected from the
    /// processor (CPUID). Quirk 2's narrow-input form was seen there (AMD EPYC Zen 1, CPUID family 23).
    /// </summary>
    public static bool HasAvx2Kernels { get; } = Avx2.IsSupported && !Avx512F.IsSupported;

    /// <summary>
    /// Quirk 1, NNPACK on unsupported hardware: libtorch asks NNPACK on every small convolution and, where NNPACK
    /// refuses the CPU, logs "Could not initialize NNPACK! Reason: Unsupported hardware." each time (hundreds of lines).
    /// Detected by asking NNPACK itself (<c>nnp_initialize</c>) once after load; the switch is libtorch's own
    /// <c>userEnabledNNPACK</c>, turned off only where NNPACK refuses. True once that happened.
    /// </summary>
    public static bool NnpackSwitchedOff => NnpackGuard.Disabled;

    /// <summary>
    /// Quirk 2, strided 1×1 backward. It has two forms, one per x86 kernel family:
    /// <list type="bullet">
    /// <item>AVX-512: oneDNN's backward for strided 1×1 convolutions (<c>brgemm_convolution_bwd_strided</c>) dies with
    /// SIGFPE for shapes such as 512→1024 and 1024→2048 (every bottleneck network's projections).</item>
    /// <item>AVX2: oneDNN's weight gradient of a strided 1×1 convolution (<c>jit_avx2_1x1_convolution_bwd_weights_t</c>)
    /// writes out of bounds when a channels-last input has fewer than 8 channels. glibc then aborts ("corrupted size vs.
    /// prev_size", "free(): invalid next size") or the process dies of SIGSEGV, sometimes much later. Seen for 1–7 → 8,
    /// 16 and 32 channels at 8–20 pixels; 8 or more input channels were fine.</item>
    /// </list>
    /// Workaround, exact: when gradients are recorded, subsample by the stride and convolve at stride 1 (same weights,
    /// same result). Default: on where <see cref="HasAvx512Kernels"/> or <see cref="HasAvx2Kernels"/>.
    /// </summary>
    public static bool SubsampleStridedPointwise { get; set; } = HasAvx512Kernels || HasAvx2Kernels;

    /// <summary>
    /// Quirk 3, channels-last 1×1 convolutions: libtorch's channels-last 1×1 kernels give wrong results (512 or more
    /// outputs) or die with SIGFPE. Workaround, exact: run 1×1 convolutions on a contiguous (NCHW) copy of a
    /// channels-last input. Default: on where <see cref="HasAvx512Kernels"/>.
    /// </summary>
    public static bool DensePointwiseInput { get; set; } = HasAvx512Kernels;

    /// <summary>
    /// Kernel choice, not a bug: libtorch 2.10's NCHW backward kernels on the CPU are slower than its channels-last
    /// ones for float32 basic-block networks (ResNet-18/34, the CIFAR nets), measured 1.1–1.5× per training step.
    /// On by default; off trains everything NCHW.
    /// </summary>
    public static bool ChannelsLastTraining { get; set; } = true;

    /// <summary>Applies the process-wide quirks once the native library is loaded (called by the native loader).</summary>
    public static void ApplyOnLoad() => NnpackGuard.Apply();

    /// <summary>
    /// True when a training forward pass of a network of <paramref name="block"/>s with parameters on
    /// <paramref name="device"/> in <paramref name="dtype"/> should run channels-last (see <see cref="ChannelsLastTraining"/>).
    /// </summary>
    public static bool TrainsChannelsLast(BlockKind block, DeviceType device, ScalarType dtype) =>
        ChannelsLastTraining && block == BlockKind.Basic && device == DeviceType.CPU && dtype == ScalarType.Float32;

    /// <summary>Runs <paramref name="conv"/> on <paramref name="input"/>, routing around quirks 2 and 3 where they apply.</summary>
    public static Tensor Convolve(Conv2d conv, Tensor input)
    {
        bool pointwise = conv.kernel_size.All(k => k == 1);
        if (!pointwise)
        {
            return conv.call(input);
        }

        var stride = conv.stride;
        if (SubsampleStridedPointwise && stride.Length == 2 && (stride[0] > 1 || stride[1] > 1) &&
            (conv.padding ?? new long[] { 0, 0 }).All(p => p == 0) && torch.is_grad_enabled() && (input.requires_grad || conv.weight.requires_grad))
        {
            using var sub = input[.., .., TensorIndex.Slice(null, null, stride[0]), TensorIndex.Slice(null, null, stride[1])];
            using var dense = DensePointwiseInput && Layers.IsChannelsLast(input) ? sub.contiguous() : sub.alias();
            return nn.functional.conv2d(dense, conv.weight, conv.bias, strides: new long[] { 1, 1 }, groups: conv.groups);
        }

        if (DensePointwiseInput && Layers.IsChannelsLast(input))
        {
            using var dense = input.contiguous();
            return conv.call(dense);
        }

        return conv.call(input);
    }
}
