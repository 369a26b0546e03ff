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
        var device = options.Device;
        if (device is not null && device.type is not (TorchSharp.DeviceType.CPU or TorchSharp.DeviceType.CUDA))
        {
            throw new NotSupportedException($"InferenceOptions.Device is {device}: ONNX Runtime runs here on the CPU or on CUDA; expected torch.CPU, new Device(\"cuda\") or new Device(\"cuda:N\"), or null to choose.");
        }

        if (device?.type != TorchSharp.DeviceType.CPU)
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
                    cuda.AppendExecutionProvider_CUDA(Math.Max(0, (int)(device?.index ?? 0)));
                    return (new InferenceSession(model, cuda), Cuda);
                }
                catch (Exception e) when (e is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException)
                {
                    why = e.Message; // no GPU, or CUDA/cuDNN libraries missing
                }
            }

            if (device is not null)
            {
                throw new NotSupportedException(
                    $"ONNX Runtime's CUDA execution provider is not available for {device} ({why}); reference Microsoft.ML.OnnxRuntime.Gpu.Linux on a machine with a GPU, or leave InferenceOptions.Device null (choose) or set torch.CPU.");
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
