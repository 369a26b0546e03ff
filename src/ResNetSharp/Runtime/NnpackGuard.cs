using System;
using System.Runtime.InteropServices;
using TorchSharp;

namespace ResNetSharp.Runtime;

/// <summary>
/// Keeps libtorch from printing "Could not initialize NNPACK! Reason: Unsupported hardware." on every convolution.
/// </summary>
/// <remarks>
/// libtorch asks NNPACK whether it can run each time it picks a convolution kernel (<c>ConvParams::use_nnpack</c>
/// calls <c>at::_nnpack_available()</c>), and on a CPU NNPACK does not support it logs that warning on every such
/// call: hundreds of lines on stderr for one program run, on some of this project's AMD EPYC machines. libtorch
/// consults its own switch first (<c>at::Context::userEnabledNNPACK</c>, Python's <c>torch.backends.nnpack</c>),
/// which TorchSharp does not bind. So, once, after the native library loads: ask NNPACK itself
/// (<c>nnp_initialize</c>, idempotent and silent, the very call libtorch makes) whether it can run here, and only
/// when it cannot, turn libtorch's switch off. On a CPU NNPACK supports nothing changes; no log level is raised, so
/// every other warning and error still reaches the console. Where the symbols are missing (another libtorch build
/// or platform) this does nothing.
/// </remarks>
internal static class NnpackGuard
{
    private const string GlobalContext = "_ZN2at13globalContextEv";                      // at::globalContext()
    private const string SetEnabled = "_ZN2at7Context20setUserEnabledNNPACKEb";          // at::Context::setUserEnabledNNPACK(bool)
    private const string GetEnabled = "_ZNK2at7Context17userEnabledNNPACKEv";            // at::Context::userEnabledNNPACK() const
    private const string Initialize = "nnp_initialize";                                   // NNPACK's nnp_status nnp_initialize(void)

    private static Entry? entry;

    /// <summary>NNPACK's status code from <c>nnp_initialize</c> (0 = success), or null where it could not be asked.</summary>
    public static int? Status { get; private set; }

    /// <summary>True when this guard turned NNPACK off in libtorch because it cannot run on this CPU.</summary>
    public static bool Disabled { get; private set; }

    /// <summary>libtorch's NNPACK switch (<c>torch.backends.nnpack.enabled</c>), or null where it cannot be read.</summary>
    public static bool? Enabled
    {
        get
        {
            var e = Resolve();
            return e is null ? null : e.Get(e.Context()) != 0;
        }
    }

    /// <summary>Asks NNPACK whether it runs here and switches it off in libtorch when it does not. Called once by <see cref="NativeBackend.EnsureLoaded"/>.</summary>
    public static void Apply()
    {
        var e = Resolve();
        if (e is null)
        {
            return;
        }

        int status = e.Init();
        Status = status;
        if (status != 0)
        {
            SetLibTorchSwitch(false);
            Disabled = true;
        }
    }

    /// <summary>Sets libtorch's NNPACK switch; false when the symbols are not there.</summary>
    internal static bool SetLibTorchSwitch(bool enabled)
    {
        var e = Resolve();
        if (e is null)
        {
            return false;
        }

        e.Set(e.Context(), enabled ? (byte)1 : (byte)0);
        return true;
    }

    private static Entry? Resolve()
    {
        if (entry is not null)
        {
            return entry;
        }

        // libtorch_cpu is already loaded by TorchSharp; this finds the same copy (next to the app, or by the loader's search).
        string name = RuntimeInformation.IsOSPlatform(OSPlatform.Windows) ? "torch_cpu.dll"
            : RuntimeInformation.IsOSPlatform(OSPlatform.OSX) ? "libtorch_cpu.dylib" : "libtorch_cpu.so";
        if (!NativeLibrary.TryLoad(name, typeof(torch).Assembly, null, out IntPtr lib) && !NativeLibrary.TryLoad(name, out lib))
        {
            return null;
        }

        if (NativeLibrary.TryGetExport(lib, GlobalContext, out IntPtr context) && NativeLibrary.TryGetExport(lib, SetEnabled, out IntPtr set) &&
            NativeLibrary.TryGetExport(lib, GetEnabled, out IntPtr get) && NativeLibrary.TryGetExport(lib, Initialize, out IntPtr init))
        {
            entry = new Entry(
                Marshal.GetDelegateForFunctionPointer<ContextFn>(context),
                Marshal.GetDelegateForFunctionPointer<SetFn>(set),
                Marshal.GetDelegateForFunctionPointer<GetFn>(get),
                Marshal.GetDelegateForFunctionPointer<InitFn>(init));
        }

        return entry;
    }

    // C++ member functions take `this` as their first argument on the platforms libtorch ships for (x86-64 and arm64).
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate IntPtr ContextFn();

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate void SetFn(IntPtr context, byte enabled);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate byte GetFn(IntPtr context);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int InitFn();

    private sealed record Entry(ContextFn Context, SetFn Set, GetFn Get, InitFn Init);
}
