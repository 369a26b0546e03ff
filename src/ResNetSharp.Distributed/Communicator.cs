using System;
using System.Globalization;

namespace ResNetSharp.Distributed;

/// <summary>
/// An MPI call failed (the world's error handler is MPI_ERRORS_RETURN, so failures arrive here rather than aborting).
/// Internal: callers see an <see cref="InvalidOperationException"/> whose message names the MPI function and error.
/// </summary>
internal sealed class MpiException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What failed and MPI's error text.</param>
    public MpiException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public MpiException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What failed.</param>
    /// <param name="innerException">The cause.</param>
    public MpiException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// The processes of a data-parallel job and the collectives between them: sum-allreduce in place, broadcast, barrier.
/// Under <c>mpiexec</c> (MPICH or Open MPI, detected from the launcher's environment and confirmed from the loaded
/// library's exports) it is MPI's world; without a launcher it is a world of one process that needs no MPI installed
/// and never loads it (every collective is then the identity).
/// </summary>
/// <remarks>
/// One per process (MPI initialises once): <see cref="FromEnvironment"/> returns the same instance until it is
/// disposed, and disposing finalises MPI. Calls are serialised by a lock (MPI_THREAD_SERIALIZED).
/// The library is found from <c>RESNETSHARP_MPI_LIBRARY</c> when set, otherwise <c>libmpi.so.40</c> under Open MPI's
/// launcher and <c>libmpich.so.12</c> under MPICH's (Hydra's) launcher.
/// Internal: users reach it through <see cref="DataParallel"/>, which is what <see cref="Training.TrainerOptions.Distributed"/> takes.
/// </remarks>
internal sealed unsafe class Communicator : IDisposable
{
    private static readonly object Gate = new();
    private static Communicator? current;
    private readonly MpiLibrary? mpi;
    private bool disposed;

    private Communicator(MpiLibrary? mpi, int rank, int size)
    {
        this.mpi = mpi;
        Rank = rank;
        Size = size;
    }

    /// <summary>This process's rank, from 0.</summary>
    public int Rank { get; }

    /// <summary>Number of processes in the job.</summary>
    public int Size { get; }

    /// <summary>True on rank 0 (the one that writes files and whose parameters are broadcast at start).</summary>
    public bool IsRoot => Rank == 0;

    /// <summary>"MPICH", "Open MPI" or "none" (a single process without MPI).</summary>
    public string Implementation => mpi is null ? "none" : mpi.Flavor == MpiFlavor.OpenMpi ? "Open MPI" : "MPICH";

    /// <summary>
    /// The job this process belongs to: MPI's world when started by <c>mpiexec</c>/<c>srun</c>, else a single process.
    /// </summary>
    /// <param name="expectedSize">When set, the world must have exactly this many processes.</param>
    /// <exception cref="InvalidOperationException">
    /// More than one process is expected but the process was not started by an MPI launcher, or the launcher started
    /// a different number; the message says how to launch.
    /// </exception>
    /// <exception cref="DllNotFoundException">A launcher is present but no MPI library loads; the message names the package to install.</exception>
    public static Communicator FromEnvironment(int? expectedSize = null)
    {
        if (expectedSize is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(expectedSize), expectedSize, "The expected number of processes must be ≥ 1.");
        }

        lock (Gate)
        {
            if (current is null)
            {
                var launcher = DetectLauncher();
                if (launcher.Size <= 1 && launcher.Library is null)
                {
                    current = new Communicator(null, 0, 1);
                }
                else
                {
                    var lib = MpiLibrary.Load(launcher.Candidates);
                    lib.Initialize();
                    current = new Communicator(lib, lib.Rank(), lib.Size());
                }
            }

            if (expectedSize is { } n && n != current.Size)
            {
                throw new InvalidOperationException(current.mpi is null
                    ? $"{n} processes were asked for but this process was not started by an MPI launcher: run it as 'mpiexec -n {n} <command>' " +
                      "(install MPI with 'apt-get install mpich' if mpiexec is missing; under Slurm 'srun -n N --mpi=pmi2')."
                    : $"{n} processes were asked for but mpiexec started {current.Size}: run 'mpiexec -n {n} <command>'.");
            }

            return current;
        }
    }

    /// <summary>Sums <paramref name="buffer"/> element-wise over all processes; every process gets the sum in place.</summary>
    /// <param name="buffer">This process's values; on return the sums.</param>
    public void AllreduceSum(Span<float> buffer)
        => Allreduce(buffer, m => m.Float, m => m.Sum);

    /// <summary>Sums <paramref name="buffer"/> element-wise over all processes; every process gets the sum in place.</summary>
    /// <param name="buffer">This process's values; on return the sums.</param>
    public void AllreduceSum(Span<double> buffer)
        => Allreduce(buffer, m => m.Double, m => m.Sum);

    /// <summary>Sums <paramref name="buffer"/> element-wise over all processes; every process gets the sum in place.</summary>
    /// <param name="buffer">This process's values; on return the sums.</param>
    public void AllreduceSum(Span<long> buffer)
        => Allreduce(buffer, m => m.LongLong, m => m.Sum);

    /// <summary>Element-wise maximum over all processes, in place.</summary>
    /// <param name="buffer">This process's values; on return the maxima.</param>
    public void AllreduceMax(Span<long> buffer)
        => Allreduce(buffer, m => m.LongLong, m => m.Max);

    /// <summary>Copies <paramref name="root"/>'s values into every process's <paramref name="buffer"/>.</summary>
    /// <param name="buffer">The values (root) or the place for them (others); same length everywhere.</param>
    /// <param name="root">The sending rank.</param>
    public void Broadcast(Span<float> buffer, int root = 0)
        => Broadcast(buffer, m => m.Float, root);

    /// <summary>Copies <paramref name="root"/>'s values into every process's <paramref name="buffer"/>.</summary>
    /// <param name="buffer">The values (root) or the place for them (others); same length everywhere.</param>
    /// <param name="root">The sending rank.</param>
    public void Broadcast(Span<double> buffer, int root = 0)
        => Broadcast(buffer, m => m.Double, root);

    /// <summary>Copies <paramref name="root"/>'s values into every process's <paramref name="buffer"/>.</summary>
    /// <param name="buffer">The values (root) or the place for them (others); same length everywhere.</param>
    /// <param name="root">The sending rank.</param>
    public void Broadcast(Span<long> buffer, int root = 0)
        => Broadcast(buffer, m => m.LongLong, root);

    /// <summary>Waits until every process has called it.</summary>
    public void Barrier()
    {
        if (Size > 1)
        {
            lock (Gate)
            {
                ThrowIfDisposed();
                mpi!.Barrier();
            }
        }
    }

    /// <summary>Ends every process of the job with <paramref name="exitCode"/> (MPI_Abort); in a single process, exits it.</summary>
    /// <param name="exitCode">The exit status.</param>
    public void Abort(int exitCode)
    {
        if (mpi is not null)
        {
            mpi.Abort(exitCode);
        }

        Environment.Exit(exitCode);
    }

    /// <summary>
    /// Checks that every process holds the same <paramref name="value"/> (a setting that must agree across ranks).
    /// </summary>
    /// <param name="what">What the value is, for the message.</param>
    /// <param name="value">This process's value.</param>
    /// <exception cref="InvalidOperationException">Some rank holds a different value; the message names the setting and the two values.</exception>
    public void CheckSame(string what, long value)
    {
        if (Size == 1)
        {
            return;
        }

        Span<long> v = stackalloc long[] { value, -value };
        AllreduceMax(v);
        long max = v[0], min = -v[1];
        if (min != max)
        {
            throw new InvalidOperationException(
                $"{what} differs across ranks (from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}; " +
                $"rank {Rank.ToString(CultureInfo.InvariantCulture)} has {value.ToString(CultureInfo.InvariantCulture)}): every process of the job must be started with the same settings.");
        }
    }

    /// <summary>Finalises MPI (once per process; a later <see cref="FromEnvironment"/> cannot start it again).</summary>
    public void Dispose()
    {
        lock (Gate)
        {
            if (!disposed)
            {
                disposed = true;
                mpi?.FinalizeMpi();
                if (mpi is null && ReferenceEquals(current, this))
                {
                    current = null; // a world of one may be made again; MPI cannot be initialised twice
                }
            }
        }
    }

    private static (int Size, string[] Candidates, string? Library) DetectLauncher()
    {
        string? library = Environment.GetEnvironmentVariable("RESNETSHARP_MPI_LIBRARY");
        int Int(string name) => int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v : 0;
        if (!string.IsNullOrEmpty(library))
        {
            return (Math.Max(1, Int("OMPI_COMM_WORLD_SIZE") + Int("PMI_SIZE")), new[] { library }, library);
        }

        if (Int("OMPI_COMM_WORLD_SIZE") is > 0 and var ompi)
        {
            return (ompi, new[] { "libmpi.so.40", "libmpi.so" }, null);
        }

        if (Int("PMI_SIZE") is > 0 and var pmi)
        {
            return (pmi, new[] { "libmpich.so.12", "libmpi.so.12", "libmpich.so" }, null);
        }

        if (Environment.GetEnvironmentVariable("PMIX_RANK") is not null)
        {
            // PMIx without Open MPI's variables (srun --mpi=pmix): the size is known only after MPI_Init.
            return (2, new[] { "libmpi.so.40", "libmpich.so.12" }, null);
        }

        return (1, Array.Empty<string>(), null);
    }

    private delegate void ChunkAction(void* pointer, int count);

    /// <summary>One in-place allreduce of any element type, in chunks MPI's int count can hold.</summary>
    private void Allreduce<T>(Span<T> buffer, Func<MpiLibrary, nint> type, Func<MpiLibrary, nint> op)
        where T : unmanaged
    {
        if (Size > 1)
        {
            fixed (T* p = buffer)
            {
                Chunked(p, buffer.Length, sizeof(T), (q, n) => mpi!.AllreduceInPlace(q, n, type(mpi), op(mpi)));
            }
        }
    }

    /// <summary>One broadcast of any element type, in chunks MPI's int count can hold.</summary>
    private void Broadcast<T>(Span<T> buffer, Func<MpiLibrary, nint> type, int root)
        where T : unmanaged
    {
        if (Size > 1)
        {
            CheckRoot(root);
            fixed (T* p = buffer)
            {
                Chunked(p, buffer.Length, sizeof(T), (q, n) => mpi!.Bcast(q, n, type(mpi), root));
            }
        }
    }

    private void Chunked(void* pointer, int length, int elementSize, ChunkAction action)
    {
        lock (Gate)
        {
            ThrowIfDisposed();
            const int MaxCount = 1 << 28;
            byte* p = (byte*)pointer;
            for (int offset = 0; offset < length; offset += MaxCount)
            {
                action(p + ((long)offset * elementSize), Math.Min(MaxCount, length - offset));
            }
        }
    }

    private void CheckRoot(int root)
    {
        if (root < 0 || root >= Size)
        {
            throw new ArgumentOutOfRangeException(nameof(root), root, $"The root must be a rank in [0, {Size}).");
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(disposed, this);
}
