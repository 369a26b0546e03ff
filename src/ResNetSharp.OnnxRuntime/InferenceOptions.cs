namespace ResNetSharp.OnnxRuntime;

/// <summary>Where <see cref="InferenceExtensions.ForInference"/> runs the network.</summary>
public enum InferenceDevice
{
    /// <summary>
    /// ONNX Runtime's CUDA execution provider when the app references ONNX Runtime's GPU package and a GPU is present,
    /// else the CPU; <see cref="OnnxRuntimeResNet.ExecutionProvider"/> says which one runs.
    /// </summary>
    Auto,

    /// <summary>Always the CPU execution provider.</summary>
    Cpu,

    /// <summary>The CUDA execution provider; building throws where it is not available.</summary>
    Cuda,
}

/// <summary>How <see cref="InferenceExtensions.ForInference"/> builds the ONNX Runtime session.</summary>
public sealed record InferenceOptions
{
    /// <summary>
    /// Threads of ONNX Runtime's intra-op pool (one session-wide pool; concurrent calls share it). 0, the default, lets
    /// ONNX Runtime choose (one per physical core).
    /// </summary>
    public int IntraOpThreads { get; init; }

    /// <summary>Execution provider. Default <see cref="InferenceDevice.Auto"/>.</summary>
    public InferenceDevice Device { get; init; } = InferenceDevice.Auto;

    /// <summary>
    /// Also build the session that returns every stage's feature map (<see cref="OnnxRuntimeResNet.ForwardFeatureMaps"/>).
    /// Off by default: it is a second session with its own copy of the weights, and maps returned as outputs cannot
    /// share memory with the rest of the graph.
    /// </summary>
    public bool FeatureMaps { get; init; }

}
