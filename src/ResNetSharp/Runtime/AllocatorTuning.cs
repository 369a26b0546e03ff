using System;
using System.Runtime.InteropServices;

namespace ResNetSharp.Runtime;

/// <summary>
/// Opt-in tuning of glibc's malloc for tensor workloads. By default glibc serves every allocation above its mmap
/// threshold (128 KiB, rising dynamically to at most 32 MiB) with a fresh <c>mmap</c> and returns it with
/// <c>munmap</c> on free, and trims the heap top above 128 KiB; a ResNet forward pass allocates and frees tens of
/// such buffers, so each pass pays page faults and zeroing for memory it just gave back. <see cref="Apply"/> keeps
/// that memory in the process instead. Nothing here runs unless the application calls it: loading ResNetSharp
/// never changes the allocator.
/// </summary>
/// <remarks>
/// The same effect without code: start the process with <c>MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=...</c>
/// (or the <c>glibc.malloc.*</c> tunables). Effects are process-wide and cannot be undone by this class; freed
/// memory stays mapped (resident set does not shrink after a peak), which is usually what a long-running inference
/// or training process wants.
/// </remarks>
internal static class AllocatorTuning
{
    // mallopt parameter numbers from glibc's <malloc.h>.
    private const int MTrimThreshold = -1;
    private const int MMmapThreshold = -3;
    private const int MMmapMax = -4;

    /// <summary>True on Linux with glibc, where <see cref="Apply"/> can do anything.</summary>
    public static bool IsSupported => RuntimeInformation.IsOSPlatform(OSPlatform.Linux) && HasGlibcMallopt();

    /// <summary>True after a successful <see cref="Apply"/> in this process.</summary>
    public static bool Applied { get; private set; }

    /// <summary>
    /// Tells glibc malloc to serve large blocks from the heap rather than fresh mappings (<c>M_MMAP_MAX</c> = 0, so
    /// blocks of any size are reused instead of being mapped and unmapped per tensor) and to keep freed memory
    /// instead of trimming it (<c>M_TRIM_THRESHOLD</c> = <paramref name="trimThresholdBytes"/>).
    /// </summary>
    /// <param name="trimThresholdBytes">Free memory at the heap top kept before glibc returns it to the OS. Default 1 GiB.</param>
    /// <returns>True when the settings were applied; false on other platforms or C libraries (a no-op there).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="trimThresholdBytes"/> is negative or above int.MaxValue.</exception>
    public static bool Apply(long trimThresholdBytes = 1L << 30)
    {
        if (trimThresholdBytes < 0 || trimThresholdBytes > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(trimThresholdBytes), trimThresholdBytes, "Expected 0 … 2^31−1 bytes.");
        }

        if (!IsSupported)
        {
            return false;
        }

        bool ok = mallopt(MMmapMax, 0) == 1 && mallopt(MTrimThreshold, (int)trimThresholdBytes) == 1;
        Applied |= ok;
        return ok;
    }

    private static bool HasGlibcMallopt()
    {
        try
        {
            return NativeLibrary.TryLoad("libc.so.6", out var lib) && NativeLibrary.TryGetExport(lib, "mallopt", out _);
        }
        catch (Exception ex) when (ex is DllNotFoundException or BadImageFormatException)
        {
            return false;
        }
    }

    [DllImport("libc.so.6", EntryPoint = "mallopt")]
    private static extern int mallopt(int param, int value);
}
