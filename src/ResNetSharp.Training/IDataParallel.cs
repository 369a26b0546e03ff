using System;
using static TorchSharp.torch;

namespace ResNetSharp.Training;

/// <summary>
/// What <see cref="Trainer"/> needs from a data-parallel job (set it in <see cref="TrainerOptions.Distributed"/>; the
/// ResNetSharp.Distributed package's <c>DataParallel.FromEnvironment()</c> implements it over MPI). Every process runs
/// the same trainer on its shard of each global batch; the implementation keeps the replicas identical.
/// </summary>
public interface IDataParallel
{
    /// <summary>This process's rank, from 0 (rank 0 writes the files).</summary>
    int Rank { get; }

    /// <summary>Number of processes.</summary>
    int WorldSize { get; }

    /// <summary>Called once before training (after a resume has loaded the checkpoint): make every replica equal to rank 0's and hook what needs hooking.</summary>
    /// <param name="model">The model being trained.</param>
    void Prepare(nn.Module model);

    /// <summary>Called after every backward pass: replace each gradient by its mean over the processes.</summary>
    void AverageGradients();

    /// <summary>Element-wise sum over the processes, in place (metrics).</summary>
    /// <param name="values">This process's values; on return the sums.</param>
    void AllreduceSum(Span<double> values);

    /// <summary>Throws on every process when <paramref name="value"/> is not the same on all of them.</summary>
    /// <param name="setting">The setting's name, for the message.</param>
    /// <param name="value">This process's value.</param>
    void CheckSame(string setting, long value);
}
