namespace ResNetSharp;

/// <summary>Memory layout of the activations inside <see cref="InferenceResNet"/>.</summary>
public enum ActivationLayout
{
    /// <summary>
    /// <see cref="Blocked"/> for float32 models on the CPU where libtorch has oneDNN (checked once per process), the
    /// fastest layout at every batch size measured. Otherwise channels-last for batches of at least
    /// <see cref="HandMadeOptions.ChannelsLastMinBatch"/> (default 4), channels-first below, and channels-first
    /// whenever <see cref="AllocatorTuning.Applied"/>. Measured on the
    /// project's 2-core machine (ResNet-50, 224²; docs/performance.md): NCHW 44 ms vs NHWC 57 ms at batch 1;
    /// NHWC 21.9 vs NCHW 17.5 images/s at batch 4 and 13.8 vs 9.1 at batch 16 with glibc's default allocator;
    /// but NCHW 27.4–29.0 vs NHWC 23.4–23.7 images/s at batch 16 once the allocator is tuned.
    /// </summary>
    Auto,

    /// <summary>Always N×C×H×W contiguous (PyTorch's default).</summary>
    ChannelsFirst,

    /// <summary>Always channels-last (NHWC memory, N×C×H×W shape).</summary>
    ChannelsLast,

    /// <summary>
    /// oneDNN's blocked layout (libtorch MKLDNN tensors, channels in blocks of 8 or 16 floats): convolutions (with
    /// their ReLU) and pools run on it, with weights reordered once at build time (1×1 convs with 512 or more outputs
    /// keep dense weights, which libtorch 2.10 needs to compute them right on some CPUs), and each block's residual
    /// add runs on a dense copy of its output (oneDNN's sum crashed on the project's machine; docs/performance.md).
    /// float32 on the CPU only; <see cref="HandMadeInference.ForHandMadeInference"/> throws where libtorch lacks it or where
    /// the blocked path fails its check against the channels-first one.
    /// </summary>
    Blocked,
}

/// <summary>How <see cref="HandMadeInference.ForHandMadeInference"/> builds the optimised, eval-only network.</summary>
public sealed record HandMadeOptions
{
    /// <summary>Activation layout; default <see cref="ActivationLayout.Auto"/>.</summary>
    public ActivationLayout Layout { get; init; } = ActivationLayout.Auto;

    /// <summary>Smallest batch that <see cref="ActivationLayout.Auto"/> runs channels-last. Default 4.</summary>
    public int ChannelsLastMinBatch { get; init; } = 4;

    /// <summary>
    /// Run forward under <c>torch.inference_mode()</c> (no autograd graph, no version counters). The outputs are
    /// then inference tensors: they can be read, copied and used in further inference, but not saved for a
    /// backward pass. False uses <c>torch.no_grad()</c> instead. Default true.
    /// </summary>
    public bool UseInferenceMode { get; init; } = true;

    /// <summary>
    /// Largest activation, in bytes, that one forward call may create; a batch whose largest activation would be
    /// bigger runs as consecutive, equal micro-batches that stay within it, and their outputs are concatenated
    /// (eval-mode blocks treat images independently, so the result is the same). 0 or less never splits a batch.
    /// Null (the default) picks by layout: <see cref="DefaultBlockedMicroBatchBytes"/> for
    /// <see cref="ActivationLayout.Blocked"/>, <see cref="DefaultMicroBatchBytes"/> otherwise.
    /// </summary>
    public long? MicroBatchBytes { get; init; }

    /// <summary>
    /// 32 MiB, the micro-batch budget of the dense layouts: glibc's largest dynamic mmap threshold. Buffers below it
    /// are recycled from malloc's heap after the first pass; above it glibc maps and unmaps them on every pass and
    /// the kernel faults in and zeroes their pages again. On the project's machine this took ResNet-50 batch 16
    /// channels-last from about 13 to about 18–23 images/s with the default allocator (docs/performance.md).
    /// </summary>
    public const long DefaultMicroBatchBytes = 32L << 20;

    /// <summary>
    /// 8 MiB, the micro-batch budget of <see cref="ActivationLayout.Blocked"/> (2 images of ResNet-50 at 224²):
    /// its blocks keep a dense copy of their output beside the blocked one, and on the project's machine ResNet-50
    /// batch 16 ran at 26 images/s in micro-batches of 2, 23–24 in micro-batches of 1 or 8 (docs/performance.md).
    /// </summary>
    public const long DefaultBlockedMicroBatchBytes = 8L << 20;

    /// <summary>
    /// True when a batch of <paramref name="batch"/> images runs channels-last under these options where the
    /// <see cref="ActivationLayout.Blocked"/> layout is not used (see <see cref="InferenceResNet.LayoutFor"/> for the
    /// layout a model actually runs).
    /// </summary>
    public bool UsesChannelsLast(long batch) => Layout switch
    {
        ActivationLayout.ChannelsLast => true,
        ActivationLayout.ChannelsFirst => false,
        _ => batch >= ChannelsLastMinBatch && !AllocatorTuning.Applied,
    };
}
