using System;
using TorchSharp;

namespace ResNetSharp.Runtime;

/// <summary>Intra-op parallelism of the CPU backend (libtorch's OpenMP pool used inside each convolution).</summary>
internal static class TorchThreads
{
    /// <summary>Threads libtorch uses inside one operator (default: the number of physical cores).</summary>
    public static int IntraOp
    {
        get
        {
            NativeBackend.EnsureLoaded();
            return torch.get_num_threads();
        }
    }

    /// <summary>Sets the intra-op thread count for the whole process.</summary>
    /// <param name="threads">1 or more; more than the machine's cores only adds contention.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="threads"/> is below 1.</exception>
    public static void SetIntraOp(int threads)
    {
        if (threads < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(threads), threads, "Intra-op threads must be ≥ 1.");
        }

        NativeBackend.EnsureLoaded();
        torch.set_num_threads(threads);
    }
}
