namespace ResNetSharp;

/// <summary>How <see cref="InferenceExtensions.ForInference"/> builds the optimised, eval-only network.</summary>
public sealed record InferenceOptions
{
    /// <summary>
    /// Store weights and keep activations in channels-last (NHWC) layout, which oneDNN's CPU convolutions run
    /// fastest on. Inputs in NCHW are converted once at the start; the logits are unaffected. Default true.
    /// </summary>
    public bool ChannelsLast { get; init; } = true;

    /// <summary>
    /// Run forward under <c>torch.inference_mode()</c> (no autograd graph, no version counters). The outputs are
    /// then inference tensors: they can be read, copied and used in further inference, but not saved for a
    /// backward pass. False uses <c>torch.no_grad()</c> instead. Default true.
    /// </summary>
    public bool UseInferenceMode { get; init; } = true;
}
