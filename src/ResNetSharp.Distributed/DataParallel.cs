using System;
using ResNetSharp.Training;
using static TorchSharp.torch;

namespace ResNetSharp.Distributed;

/// <summary>
/// Data-parallel training over MPI with PyTorch DDP's semantics, for <see cref="TrainerOptions.Distributed"/>:
/// rank 0's parameters and buffers are broadcast at the start, gradients are averaged after every backward pass in
/// flat buckets of about 25 MB, BatchNorm is per replica unless <see cref="SyncBatchNorm"/> is set.
/// </summary>
/// <example>
/// <code>
/// // mpiexec -n 2 dotnet train.dll
/// using var dp = DataParallel.FromEnvironment(syncBatchNorm: true);
/// var trainer = new Trainer(model, train, test, new TrainerOptions { BatchSize = 64, Distributed = dp, OutputDirectory = "runs/ddp" });
/// </code>
/// </example>
public sealed class DataParallel : IDataParallel, IDisposable
{
    private readonly long bucketBytes;
    private GradientBuckets? buckets;

    private DataParallel(Communicator communicator, bool syncBatchNorm, long bucketBytes)
    {
        Communicator = communicator;
        SyncBatchNorm = syncBatchNorm;
        this.bucketBytes = bucketBytes;
    }

    /// <summary>The processes and their collectives.</summary>
    internal Communicator Communicator { get; }

    /// <summary>The MPI in use: <c>Open MPI</c>, <c>MPICH</c>, or <c>none</c> for a single process started without a launcher.</summary>
    public string Implementation => Communicator.Implementation;

    /// <summary>BatchNorm statistics over the global batch (true) or per process (false, DDP's default).</summary>
    public bool SyncBatchNorm { get; }

    /// <inheritdoc/>
    public int Rank => Communicator.Rank;

    /// <inheritdoc/>
    public int WorldSize => Communicator.Size;

    /// <summary>Bytes of gradient each process sends into the allreduce per step (0 before <see cref="Prepare"/>).</summary>
    public long GradientBytesPerStep => buckets?.GradientBytes ?? 0;

    /// <summary>Seconds spent in the gradient allreduce so far (with the packing into buckets).</summary>
    public double AllreduceSeconds { get; private set; }

    /// <summary>
    /// The job this process was started in. Under <c>mpiexec</c> (MPICH or Open MPI, detected from the launcher's
    /// environment and confirmed from the loaded library's exports) it is MPI's world; without a launcher it is a world
    /// of one process that needs no MPI installed and never loads it (every collective is then the identity).
    /// </summary>
    /// <remarks>
    /// One MPI world per process: MPI is initialised once, and disposing the <see cref="DataParallel"/> finalises it. The library is found from <c>RESNETSHARP_MPI_LIBRARY</c> when set, otherwise <c>libmpi.so.40</c> under
    /// Open MPI's launcher and <c>libmpich.so.12</c> under MPICH's (Hydra's) launcher.
    /// </remarks>
    /// <param name="syncBatchNorm">Synchronise BatchNorm statistics over the processes.</param>
    /// <param name="expectedSize">When set, the number of processes the job must have.</param>
    /// <exception cref="InvalidOperationException">More than one process expected without an MPI launcher, a different number started, or an MPI call failed (the message names the function and MPI's error).</exception>
    /// <exception cref="DllNotFoundException">Under a launcher, no MPI library loads.</exception>
    public static DataParallel FromEnvironment(bool syncBatchNorm = false, int? expectedSize = null) =>
        new(Communicator.FromEnvironment(expectedSize), syncBatchNorm, GradientBuckets.DefaultBucketBytes);

    /// <summary>Over a given communicator (tests; a custom bucket size in bytes).</summary>
    internal static DataParallel Create(Communicator communicator, bool syncBatchNorm, long bucketBytes) => new(communicator, syncBatchNorm, bucketBytes);

    /// <inheritdoc/>
    public void Prepare(nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (buckets is not null)
        {
            throw new InvalidOperationException("DataParallel.Prepare was already called: use one DataParallel per model.");
        }

        GradientBuckets.BroadcastState(Communicator, model);
        buckets = new GradientBuckets(Communicator, model, bucketBytes);
        if (SyncBatchNorm)
        {
            Distributed.SyncBatchNorm.Attach(model, Communicator);
        }
    }

    /// <inheritdoc/>
    public void AverageGradients()
    {
        if (buckets is null)
        {
            throw new InvalidOperationException("DataParallel.Prepare(model) must be called before AverageGradients.");
        }

        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        buckets.AverageGradients();
        AllreduceSeconds += System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    /// <inheritdoc/>
    public void AllreduceSum(Span<double> values) => Communicator.AllreduceSum(values);

    /// <inheritdoc/>
    public void CheckSame(string setting, long value) => Communicator.CheckSame(setting, value);

    /// <summary>Finalises MPI (once per process: a later <see cref="FromEnvironment"/> under a launcher cannot start it again).</summary>
    public void Dispose() => Communicator.Dispose();
}
