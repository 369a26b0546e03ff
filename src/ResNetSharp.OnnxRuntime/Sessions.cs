using System;
using System.Linq;
using Microsoft.ML.OnnxRuntime;

namespace ResNetSharp.OnnxRuntime;

/// <summary>Creates ONNX Runtime sessions: all graph optimisations, the CUDA provider where asked for and available, else the CPU.</summary>
internal static class Sessions
{
    internal const string Cpu = "CPUExecutionProvider";
    internal const string Cuda = "CUDAExecutionProvider";

    /// <summary>A session over the serialised model and the provider it runs on.</summary>
    internal static (InferenceSession Session, string Provider) Create(byte[] model, InferenceOptions options)
    {
        if (options.Device != InferenceDevice.Cpu)
        {
            string? why = null;
            if (!OrtEnv.Instance().GetAvailableProviders().Contains(Cuda))
            {
                why = "this ONNX Runtime build has no CUDA provider: the app references the CPU package";
            }
            else
            {
                try
                {
                    using var cuda = NewOptions(options);
                    cuda.AppendExecutionProvider_CUDA(0);
                    return (new InferenceSession(model, cuda), Cuda);
                }
                catch (Exception e) when (e is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException)
                {
                    why = e.Message; // no GPU, or CUDA/cuDNN libraries missing
                }
            }

            if (options.Device == InferenceDevice.Cuda)
            {
                throw new NotSupportedException(
                    $"ONNX Runtime's CUDA execution provider is not available ({why}); reference Microsoft.ML.OnnxRuntime.Gpu.Linux on a machine with a GPU, or use InferenceDevice.Auto or Cpu.");
            }
        }

        using var cpu = NewOptions(options);
        return (new InferenceSession(model, cpu), Cpu);
    }

    private static SessionOptions NewOptions(InferenceOptions options)
    {
        var session = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            IntraOpNumThreads = options.IntraOpThreads,
        };
        return session;
    }
}
