using System;
using System.Diagnostics;

namespace ResNetSharp.Training;

/// <summary>
/// The running sums of one epoch (loss, errors, images, seconds), continued from a checkpoint written mid-epoch, and
/// the <see cref="EpochMetrics"/> they give when the epoch ends.
/// </summary>
internal sealed class EpochAccumulator
{
    private readonly Stopwatch watch = Stopwatch.StartNew();
    private readonly double secondsBefore;
    private double lossSum;
    private long errors;
    private long seen;

    /// <summary>Starts epoch <c>state.Epoch</c>, or continues it when the state stopped inside it (<c>Step</c> &gt; 0).</summary>
    internal EpochAccumulator(TrainingState state)
    {
        if (state.Step > 0)
        {
            secondsBefore = state.EpochSeconds;
            lossSum = state.EpochLossSum;
            errors = state.EpochErrors;
            seen = state.EpochSamples;
        }
    }

    internal double Seconds => secondsBefore + watch.Elapsed.TotalSeconds;

    internal void Add(StepResult step)
    {
        lossSum += step.Loss * step.Images;
        errors += step.Wrong;
        seen += step.Images;
    }

    /// <summary>The state after batch <paramref name="batchIndex"/> of <paramref name="epoch"/>, with this epoch's sums.</summary>
    internal TrainingState After(TrainingState state, int epoch, int batchIndex) => state with
    {
        Epoch = epoch, Step = batchIndex + 1, GlobalStep = state.GlobalStep + 1, EpochLossSum = lossSum, EpochErrors = errors, EpochSamples = seen,
        EpochSeconds = Seconds,
    };

    internal EpochMetrics Finish(int epoch, EvaluationResult? eval, double learningRate)
    {
        double seconds = Seconds;
        return new EpochMetrics
        {
            Epoch = epoch + 1, TrainLoss = lossSum / Math.Max(seen, 1), TrainError = (double)errors / Math.Max(seen, 1),
            TestLoss = eval?.Loss, TestTop1 = eval?.Top1, TestTop5 = eval?.Top5, LearningRate = learningRate,
            Seconds = seconds, ImagesPerSecond = seen / Math.Max(seconds, 1e-9),
        };
    }
}
