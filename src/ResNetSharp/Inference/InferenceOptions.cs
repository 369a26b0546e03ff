namespace ResNetSharp;

/// <summary>Memory layout of the activations inside <see cref="InferenceResNet"/>.</summary>
public enum ActivationLayout
{
    /// <summary>
    /// Channels-last for batches of at least <see cref="InferenceOptions.ChannelsLastMinBatch"/> (default 1, so
    /// always), channels-first below. oneDNN's NHWC kernels win clearly on large batches; at batch 1 they re-pack
    /// every weight on every call, so on machines where that dominates raise the threshold.
    /// </summary>
    Auto,

    /// <summary>Always N×C×H×W contiguous (PyTorch's default).</summary>
    ChannelsFirst,

    /// <summary>Always channels-last (NHWC memory, N×C×H×W shape).</summary>
    ChannelsLast,
}

/// <summary>How <see cref="InferenceExtensions.ForInference"/> builds the optimised, eval-only network.</summary>
public sealed record InferenceOptions
{
    /// <summary>Activation layout; default <see cref="ActivationLayout.Auto"/>.</summary>
    public ActivationLayout Layout { get; init; } = ActivationLayout.Auto;

    /// <summary>Smallest batch that <see cref="ActivationLayout.Auto"/> runs channels-last. Default 1 (every batch).</summary>
    public int ChannelsLastMinBatch { get; init; } = 1;

    /// <summary>
    /// Run forward under <c>torch.inference_mode()</c> (no autograd graph, no version counters). The outputs are
    /// then inference tensors: they can be read, copied and used in further inference, but not saved for a
    /// backward pass. False uses <c>torch.no_grad()</c> instead. Default true.
    /// </summary>
    public bool UseInferenceMode { get; init; } = true;

    /// <summary>True when a batch of <paramref name="batch"/> images runs channels-last under these options.</summary>
    public bool UsesChannelsLast(long batch) => Layout switch
    {
        ActivationLayout.ChannelsLast => true,
        ActivationLayout.ChannelsFirst => false,
        _ => batch >= ChannelsLastMinBatch,
    };
}
