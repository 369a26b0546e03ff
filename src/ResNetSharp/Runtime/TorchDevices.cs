using System;
using TorchSharp;

namespace ResNetSharp.Runtime;

/// <summary>Turns user-facing device names (<c>auto</c>, <c>cpu</c>, <c>cuda</c>, <c>cuda:1</c>) into TorchSharp devices.</summary>
internal static class TorchDevices
{
    /// <summary>
    /// Resolves a device name. <c>auto</c> (the default) picks CUDA when a CUDA backend and device are available,
    /// else the CPU; <c>cuda</c> or <c>cuda:N</c> require CUDA and say so when it is missing.
    /// </summary>
    /// <param name="name">auto, cpu, cuda or cuda:N (case-insensitive).</param>
    /// <exception cref="ArgumentException">The name is not one of those forms, or CUDA was asked for but is not available.</exception>
    public static torch.Device Resolve(string? name = "auto")
    {
        NativeBackend.EnsureLoaded();
        string n = (name ?? "auto").Trim().ToLowerInvariant();
        if (n.Length == 0 || n == "auto")
        {
            return CudaAvailable ? torch.CUDA : torch.CPU;
        }

        if (n == "cpu")
        {
            return torch.CPU;
        }

        if (n == "cuda" || n.StartsWith("cuda:", StringComparison.Ordinal))
        {
            int index = 0;
            if (n.Length > 5 && !int.TryParse(n.AsSpan(5), out index))
            {
                throw new ArgumentException($"Device '{name}' is not valid: expected 'cuda:N' with N a device index.", nameof(name));
            }

            if (!CudaAvailable)
            {
                throw new ArgumentException(
                    $"Device '{name}' was asked for, but CUDA is not available: build the app with -p:TorchBackend=cuda " +
                    "(TorchSharp-cuda-linux) on a machine with an NVIDIA GPU, or use 'cpu' / 'auto'.", nameof(name));
            }

            if (index < 0 || index >= torch.cuda.device_count())
            {
                throw new ArgumentException($"Device '{name}' does not exist: {torch.cuda.device_count()} CUDA device(s) found.", nameof(name));
            }

            return torch.device(DeviceType.CUDA, index);
        }

        throw new ArgumentException($"Unknown device '{name}': expected 'auto', 'cpu', 'cuda' or 'cuda:N'.", nameof(name));
    }

    /// <summary>True when a CUDA backend is loaded and at least one CUDA device is visible.</summary>
    public static bool CudaAvailable
    {
        get
        {
            NativeBackend.EnsureLoaded();
            try
            {
                return torch.cuda.is_available();
            }
            catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException or InvalidOperationException)
            {
                return false;
            }
        }
    }
}
