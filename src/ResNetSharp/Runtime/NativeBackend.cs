using System;
using System.Runtime.InteropServices;
using TorchSharp;

namespace ResNetSharp.Runtime;

/// <summary>
/// Thrown by the first ResNetSharp call when TorchSharp's native backend cannot be loaded. The message names
/// the cause (for example a libstdc++ that lacks <c>GLIBCXX_3.4.32</c>) and the fix. Internal: callers see an
/// <see cref="InvalidOperationException"/>; nothing can be done about it but read the message.
/// </summary>
internal sealed class NativeBackendException : InvalidOperationException
{
    /// <summary>Creates the exception with a message and the loader's original exception.</summary>
    public NativeBackendException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>Checks once, with a clear message, that TorchSharp's native library loads.</summary>
internal static class NativeBackend
{
    private static readonly object Gate = new();
    private static bool loaded;

    /// <summary>
    /// Makes sure the native backend is loaded; called by every model and block constructor, so a user never
    /// meets TorchSharp's raw <see cref="TypeInitializationException"/>. On a CPU that NNPACK does not support it also
    /// turns NNPACK off in libtorch, which would otherwise print "Could not initialize NNPACK! Reason: Unsupported
    /// hardware." on every small convolution; nothing else is silenced.
    /// </summary>
    /// <exception cref="NativeBackendException">The native library could not be loaded; the message says why and what to do.</exception>
    public static void EnsureLoaded()
    {
        if (loaded)
        {
            return;
        }

        lock (Gate)
        {
            if (loaded)
            {
                return;
            }

            try
            {
                // Touching any torch API runs TorchSharp's static initialiser, which loads libLibTorchSharp.
                using var probe = torch.zeros(1);
                LibTorchQuirks.ApplyOnLoad();
                loaded = true;
            }
            catch (Exception ex) when (ex is TypeInitializationException or DllNotFoundException or EntryPointNotFoundException or NotSupportedException)
            {
                throw new NativeBackendException(Describe(ex), ex);
            }
        }
    }

    internal static string Describe(Exception ex)
    {
        string all = ex.ToString();
        if (all.Contains("GLIBCXX_3.4.32", StringComparison.Ordinal) ||
            (RuntimeInformation.IsOSPlatform(OSPlatform.Linux) && all.Contains("GLIBCXX", StringComparison.Ordinal)))
        {
            return "TorchSharp's native library libLibTorchSharp.so could not be loaded: it asks for GLIBCXX_3.4.32 " +
                   "(a GCC 13 libstdc++), and this system's libstdc++ is older (Debian 12 / Ubuntu 22.04 stop at " +
                   "GLIBCXX_3.4.30). ResNetSharp's build step marks that need weak in the app's copy of the library; " +
                   "rebuild the app with the ResNetSharp package referenced (and ResNetSharpPatchNative not set to " +
                   "false), or run on a system whose libstdc++ provides GLIBCXX_3.4.32.";
        }

        return "TorchSharp's native backend could not be loaded. Reference exactly one native package from the " +
               "application (TorchSharp-cpu, or TorchSharp-cuda-linux on a CUDA machine) and make sure its " +
               "runtimes/<rid>/native files were copied next to the app. Loader said: " + Innermost(ex).Message;
    }

    private static Exception Innermost(Exception ex)
    {
        while (ex.InnerException is not null)
        {
            ex = ex.InnerException;
        }

        return ex;
    }
}
