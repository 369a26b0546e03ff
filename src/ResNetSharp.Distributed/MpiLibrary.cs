using System;
using System.Runtime.InteropServices;
using System.Text;

namespace ResNetSharp.Distributed;

/// <summary>Which MPI implementation's binary interface the loaded library has.</summary>
internal enum MpiFlavor
{
    /// <summary>MPICH and its ABI family (Intel MPI, MVAPICH): handles are integer constants.</summary>
    Mpich,

    /// <summary>Open MPI: handles are the addresses of exported global objects.</summary>
    OpenMpi,
}

/// <summary>
/// The few MPI functions and handles the communicator uses, bound at run time from the system's libmpi
/// (no MPI.NET, no compile-time dependency). Handles are carried as <see cref="nint"/>: MPICH's are 32-bit
/// integers, which the x86-64 and AArch64 calling conventions pass in the low half of the same register.
/// </summary>
/// <remarks>
/// Handle values checked against the installed headers (Debian 12):
/// MPICH 4.0.2 <c>/usr/include/x86_64-linux-gnu/mpich/mpi.h</c>: MPI_COMM_WORLD 0x44000000, MPI_FLOAT 0x4c00040a,
/// MPI_DOUBLE 0x4c00080b, MPI_LONG_LONG_INT 0x4c000809, MPI_SUM 0x58000003, MPI_MAX 0x58000001,
/// MPI_ERRORS_RETURN 0x54000001, MPI_IN_PLACE (void*)-1, MPI_THREAD_SERIALIZED 2.
/// Open MPI 4.1.4 <c>/usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h</c>: the addresses of ompi_mpi_comm_world,
/// ompi_mpi_float, ompi_mpi_double, ompi_mpi_long_long_int, ompi_mpi_op_sum, ompi_mpi_op_max,
/// ompi_mpi_errors_return; MPI_IN_PLACE (void*)1; MPI_THREAD_SERIALIZED 2.
/// </remarks>
internal sealed unsafe class MpiLibrary
{
    private const int ThreadSerialized = 2;

    private readonly delegate* unmanaged<int*, byte***, int, int*, int> initThread;
    private readonly delegate* unmanaged<int*, int> initialized;
    private readonly delegate* unmanaged<int*, int> finalized;
    private readonly delegate* unmanaged<nint, int*, int> commRank;
    private readonly delegate* unmanaged<nint, int*, int> commSize;
    private readonly delegate* unmanaged<void*, void*, int, nint, nint, nint, int> allreduce;
    private readonly delegate* unmanaged<void*, int, nint, int, nint, int> bcast;
    private readonly delegate* unmanaged<nint, int> barrier;
    private readonly delegate* unmanaged<int> finalize;
    private readonly delegate* unmanaged<nint, int, int> abort;
    private readonly delegate* unmanaged<nint, nint, int> commSetErrhandler;
    private readonly delegate* unmanaged<int, byte*, int*, int> errorString;

    private MpiLibrary(nint handle, string path)
    {
        Path = path;
        Flavor = NativeLibrary.TryGetExport(handle, "ompi_mpi_comm_world", out _) ? MpiFlavor.OpenMpi : MpiFlavor.Mpich;
        nint Fn(string name) => NativeLibrary.TryGetExport(handle, name, out var p)
            ? p
            : throw new DllNotFoundException($"{path} has no '{name}': it is not an MPI library (expected MPICH's libmpich.so.12 or Open MPI's libmpi.so.40).");
        initThread = (delegate* unmanaged<int*, byte***, int, int*, int>)Fn("MPI_Init_thread");
        initialized = (delegate* unmanaged<int*, int>)Fn("MPI_Initialized");
        finalized = (delegate* unmanaged<int*, int>)Fn("MPI_Finalized");
        commRank = (delegate* unmanaged<nint, int*, int>)Fn("MPI_Comm_rank");
        commSize = (delegate* unmanaged<nint, int*, int>)Fn("MPI_Comm_size");
        allreduce = (delegate* unmanaged<void*, void*, int, nint, nint, nint, int>)Fn("MPI_Allreduce");
        bcast = (delegate* unmanaged<void*, int, nint, int, nint, int>)Fn("MPI_Bcast");
        barrier = (delegate* unmanaged<nint, int>)Fn("MPI_Barrier");
        finalize = (delegate* unmanaged<int>)Fn("MPI_Finalize");
        abort = (delegate* unmanaged<nint, int, int>)Fn("MPI_Abort");
        commSetErrhandler = (delegate* unmanaged<nint, nint, int>)Fn("MPI_Comm_set_errhandler");
        errorString = (delegate* unmanaged<int, byte*, int*, int>)Fn("MPI_Error_string");
        if (Flavor == MpiFlavor.OpenMpi)
        {
            CommWorld = Fn("ompi_mpi_comm_world");
            Float = Fn("ompi_mpi_float");
            Double = Fn("ompi_mpi_double");
            LongLong = Fn("ompi_mpi_long_long_int");
            Sum = Fn("ompi_mpi_op_sum");
            Max = Fn("ompi_mpi_op_max");
            ErrorsReturn = Fn("ompi_mpi_errors_return");
            InPlace = 1;
        }
        else
        {
            CommWorld = 0x44000000;
            Float = 0x4c00040a;
            Double = 0x4c00080b;
            LongLong = 0x4c000809;
            Sum = 0x58000003;
            Max = 0x58000001;
            ErrorsReturn = 0x54000001;
            InPlace = -1;
        }
    }

    /// <summary>The file loaded.</summary>
    public string Path { get; }

    /// <summary>The ABI of the file loaded (from its exports, not from the launcher).</summary>
    public MpiFlavor Flavor { get; }

    public nint CommWorld { get; }

    public nint Float { get; }

    public nint Double { get; }

    public nint LongLong { get; }

    public nint Sum { get; }

    public nint Max { get; }

    public nint ErrorsReturn { get; }

    public nint InPlace { get; }

    /// <summary>Loads the first of <paramref name="candidates"/> that exists.</summary>
    /// <exception cref="DllNotFoundException">None loads; the message names the packages to install.</exception>
    public static MpiLibrary Load(params string[] candidates)
    {
        var errors = new StringBuilder();
        foreach (var name in candidates)
        {
            // RTLD_GLOBAL (0x100) | RTLD_NOW (2): Open MPI's plugins (mca_*.so) resolve libmpi's symbols from the global
            // namespace, which NativeLibrary's RTLD_LOCAL would hide.
            nint handle = DlOpen(name, 0x102);
            if (handle != 0)
            {
                return new MpiLibrary(handle, name);
            }

            errors.Append(name).Append("; ");
        }

        throw new DllNotFoundException(
            $"No MPI library could be loaded (tried {errors.ToString().TrimEnd(';', ' ')}). Install one: 'apt-get install mpich' (libmpich.so.12) or " +
            "'apt-get install openmpi-bin' (libmpi.so.40), or name the library in RESNETSHARP_MPI_LIBRARY.");
    }

    /// <summary>MPI_Init_thread (SERIALIZED: the communicator locks, so any one thread at a time may call) unless already initialised; sets MPI_ERRORS_RETURN on the world.</summary>
    public void Initialize()
    {
        int flag;
        Check(initialized(&flag), "MPI_Initialized");
        if (flag == 0)
        {
            int provided;
            Check(initThread(null, null, ThreadSerialized, &provided), "MPI_Init_thread");
        }

        Check(commSetErrhandler(CommWorld, ErrorsReturn), "MPI_Comm_set_errhandler");
    }

    public int Rank()
    {
        int r;
        Check(commRank(CommWorld, &r), "MPI_Comm_rank");
        return r;
    }

    public int Size()
    {
        int s;
        Check(commSize(CommWorld, &s), "MPI_Comm_size");
        return s;
    }

    public void AllreduceInPlace(void* buffer, int count, nint datatype, nint op) =>
        Check(allreduce((void*)InPlace, buffer, count, datatype, op, CommWorld), "MPI_Allreduce");

    public void Bcast(void* buffer, int count, nint datatype, int root) => Check(bcast(buffer, count, datatype, root, CommWorld), "MPI_Bcast");

    public void Barrier() => Check(barrier(CommWorld), "MPI_Barrier");

    public void Abort(int code) => abort(CommWorld, code);

    /// <summary>MPI_Finalize once, if initialised and not finalised yet.</summary>
    public void FinalizeMpi()
    {
        int init, fin;
        if (initialized(&init) == 0 && init != 0 && finalized(&fin) == 0 && fin == 0)
        {
            Check(finalize(), "MPI_Finalize");
        }
    }

    private void Check(int code, string function)
    {
        if (code == 0)
        {
            return;
        }

        var text = new byte[1024];
        int length = 0;
        string message;
        fixed (byte* p = text)
        {
            message = errorString(code, p, &length) == 0 ? Encoding.ASCII.GetString(text, 0, Math.Clamp(length, 0, text.Length)) : "(no error text)";
        }

        throw new MpiException($"{function} failed with MPI error {code}: {message}");
    }

    private static nint DlOpen(string name, int flags)
    {
        try
        {
            byte[] bytes = Encoding.UTF8.GetBytes(name + "\0");
            fixed (byte* p = bytes)
            {
                return dlopen(p, flags);
            }
        }
        catch (DllNotFoundException)
        {
            return NativeLibrary.TryLoad(name, out var h) ? h : 0;
        }
    }

    [DllImport("libc.so.6", EntryPoint = "dlopen")]
    private static extern nint dlopen(byte* file, int mode);
}
