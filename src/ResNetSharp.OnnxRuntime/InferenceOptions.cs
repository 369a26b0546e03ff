namespace ResNetSharp.OnnxRuntime;

/// <summary>
/// The arithmetic of the network that <see cref="InferenceExtensions.ForInference"/> runs; internal, since it follows
/// from <see cref="InferenceOptions.Calibration"/> (set: int8; null: float32).
/// </summary>
internal enum InferencePrecision
{
    /// <summary>float32 weights and activations: outputs equal the eval model's to float32 rounding.</summary>
    Float32,

    /// <summary>
    /// Static int8 quantisation (ONNX QDQ): per-channel symmetric int8 weights in ±63 (7 bits, so that CPUs without
    /// VNNI do not saturate), per-tensor uint8 activations whose ranges come from <see cref="InferenceOptions.Calibration"/>, which is then required.
    /// </summary>
    Int8,
}

/// <summary>How <see cref="InferenceExtensions.ForInference"/> builds the ONNX Runtime session.</summary>
public sealed record InferenceOptions
{
    /// <summary>
    /// Threads of ONNX Runtime's intra-op pool (one session-wide pool; concurrent calls share it). 0, the default, lets
    /// ONNX Runtime choose (one per physical core).
    /// </summary>
    public int IntraOpThreads { get; init; }

    /// <summary>
    /// Where the network runs, as TorchSharp names devices. Null (the default): ONNX Runtime's CUDA execution provider
    /// when the app references ONNX Runtime's GPU package and a GPU is present, else the CPU
    /// (<see cref="OnnxRuntimeResNet.ExecutionProvider"/> says which one runs). <c>torch.CPU</c>: always the CPU provider.
    /// <c>new Device("cuda")</c> or <c>new Device("cuda:1")</c>: the CUDA provider on that GPU (index 0 when none is
    /// given), also with TorchSharp's CPU build (whose <c>torch.CUDA</c> property throws); building throws where ONNX
    /// Runtime's CUDA provider is not available. Other device types are rejected.
    /// </summary>
    public TorchSharp.torch.Device? Device { get; init; }

    /// <summary>
    /// Also build the session that returns every stage's feature map (<see cref="OnnxRuntimeResNet.ForwardFeatureMaps"/>).
    /// Off by default: it is a second session with its own copy of the weights, and maps returned as outputs cannot
    /// share memory with the rest of the graph.
    /// </summary>
    public bool FeatureMaps { get; init; }

    /// <summary>
    /// Null (the default): float32 weights and activations, outputs equal to the eval model's to float32 rounding. Set:
    /// static int8 quantisation (ONNX QDQ), per-channel symmetric int8 weights in ±63 (7 bits, so that CPUs without
    /// VNNI do not saturate) and per-tensor uint8 activations whose ranges these images calibrate (<see cref="Calibration.FromImages"/>, <see cref="Calibration.FromTensor"/>).
    /// </summary>
    public Calibration? Calibration { get; init; }

    /// <summary>Float32, or int8 when <see cref="Calibration"/> is set.</summary>
    internal InferencePrecision Precision => Calibration is null ? InferencePrecision.Float32 : InferencePrecision.Int8;
}
