using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Serialization;
using ResNetSharp.Weights;
using TorchSharp.Modules;

namespace ResNetSharp.Training;

/// <summary>
/// The run's output folder and when it is written: <c>metrics.jsonl</c> (one line per epoch), the best and final
/// weights, and the resumable checkpoint after each epoch, every <see cref="TrainerOptions.CheckpointEverySteps"/>
/// iterations and on cancellation. Only the writing rank writes; without a folder nothing is written.
/// </summary>
internal sealed class CheckpointPolicy
{
    private static readonly JsonSerializerOptions LineJson = new() { DefaultIgnoreCondition = JsonIgnoreCondition.Never };
    private readonly string? dir;
    private readonly bool writer;
    private readonly int everySteps;

    internal CheckpointPolicy(string? outputDirectory, bool writer, int everySteps)
    {
        dir = outputDirectory;
        this.writer = writer;
        this.everySteps = everySteps;
        if (dir is not null)
        {
            Directory.CreateDirectory(dir);
        }
    }

    private string? CheckpointPath => dir is null ? null : Path.Combine(dir, TrainingCheckpoint.FileName);

    private string? MetricsPath => dir is null ? null : Path.Combine(dir, Trainer.MetricsFileName);

    private bool Writes => dir is not null && writer;

    /// <summary>
    /// Restores model, optimizer, generator and scheduler from the folder's checkpoint when asked to and one exists;
    /// returns the saved state, or null to start afresh (then the metrics log is emptied).
    /// </summary>
    /// <exception cref="InvalidDataException">The checkpoint is malformed or belongs to another run.</exception>
    internal TrainingState? Resume(bool resume, ResNet model, OptimizerHelper optimizer, TorchSharp.torch.optim.lr_scheduler.LRScheduler scheduler, TrainingState now)
    {
        if (!resume || CheckpointPath is not { } path || !File.Exists(path))
        {
            if (Writes)
            {
                AtomicFile.Write(MetricsPath!, _ => { });
            }

            return null;
        }

        var saved = TrainingCheckpoint.Load(path, model, optimizer);
        CheckSameRun(path, saved, now);

        // TorchSharp's schedulers keep no serialisable state: replay them. The optimizer's options, loaded above, already hold
        // the rate and momentum the replay leads to; they are put back afterwards so that not one bit differs.
        var options = OptimizerOptionsSnapshot.Take(optimizer);
        for (int i = 0; i < saved.GlobalStep; i++)
        {
            scheduler.step();
        }

        options.Restore(optimizer);
        if (Writes)
        {
            AtomicFile.Write(MetricsPath!, stream =>
            {
                using var w = new StreamWriter(stream, new System.Text.UTF8Encoding(false), 1 << 16, leaveOpen: true);
                foreach (var m in saved.History)
                {
                    w.Write(JsonSerializer.Serialize(m, LineJson));
                    w.Write('\n');
                }
            });
        }

        return saved;
    }

    /// <summary>After an iteration that did not end its epoch: the checkpoint, every N iterations when asked for.</summary>
    internal void AfterStep(ResNet model, OptimizerHelper optimizer, TrainingState state, bool endsEpoch)
    {
        if (Writes && everySteps > 0 && state.GlobalStep % everySteps == 0 && !endsEpoch)
        {
            TrainingCheckpoint.Save(CheckpointPath!, model, optimizer, state);
        }
    }

    /// <summary>At an epoch's end: its metrics line, the best weights when <paramref name="isBest"/>, then the checkpoint.</summary>
    internal void AfterEpoch(ResNet model, OptimizerHelper optimizer, TrainingState state, EpochMetrics metrics, bool isBest)
    {
        if (!Writes)
        {
            return;
        }

        File.AppendAllText(MetricsPath!, JsonSerializer.Serialize(metrics, LineJson) + "\n");
        if (isBest)
        {
            model.SaveWeights(Path.Combine(dir!, Trainer.BestFileName));
        }

        TrainingCheckpoint.Save(CheckpointPath!, model, optimizer, state);
    }

    /// <summary>On cancellation inside an epoch: the checkpoint, so that the run resumes at the next batch.</summary>
    internal void OnCancel(ResNet model, OptimizerHelper optimizer, TrainingState state)
    {
        if (Writes)
        {
            TrainingCheckpoint.Save(CheckpointPath!, model, optimizer, state);
        }
    }

    /// <summary>At the run's end: the final weights.</summary>
    internal void Finish(ResNet model)
    {
        if (Writes)
        {
            model.SaveWeights(Path.Combine(dir!, Trainer.FinalFileName));
        }
    }

    private static void CheckSameRun(string path, TrainingState saved, TrainingState now)
    {
        var differences = new List<string>();
        void Compare<T>(string what, T a, T b)
        {
            if (!EqualityComparer<T>.Default.Equals(a, b))
            {
                differences.Add($"{what} {a} in the checkpoint, {b} now");
            }
        }

        Compare("seed", saved.Seed, now.Seed);
        Compare("epochs", saved.Epochs, now.Epochs);
        Compare("batch size", saved.BatchSize, now.BatchSize);
        Compare("training samples", saved.TrainSamples, now.TrainSamples);
        Compare("steps per epoch", saved.StepsPerEpoch, now.StepsPerEpoch);
        Compare("schedule", saved.Schedule, now.Schedule);
        if (saved.WorldSize != now.WorldSize)
        {
            throw new InvalidDataException(
                $"{path}: the checkpoint was written by {saved.WorldSize} process(es) and this run has {now.WorldSize}: the global batch, the shards and the " +
                $"schedule would change. Resume with the same number of processes (mpiexec -n {saved.WorldSize}) or start a new folder.");
        }

        if (differences.Count > 0)
        {
            throw new InvalidDataException($"{path}: the checkpoint belongs to a different run ({string.Join("; ", differences)}); resume with the same settings or start a new folder.");
        }
    }
}

/// <summary>Every parameter group's options (rate, initial rate, momentum or betas, …), serialised by TorchSharp itself.</summary>
internal sealed class OptimizerOptionsSnapshot
{
    private readonly List<(byte[] Options, double? Rate, double Initial)> groups;

    private OptimizerOptionsSnapshot(List<(byte[], double?, double)> groups) => this.groups = groups;

    internal static OptimizerOptionsSnapshot Take(OptimizerHelper optimizer) => new(optimizer.ParamGroups.Cast<ParamGroup>().Select(g =>
    {
        using var memory = new MemoryStream();
        using (var w = new BinaryWriter(memory, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            g.Options.SaveStateDict(w);
        }

        return (memory.ToArray(), g.Options.LearningRate, g.Options.InitialLearningRate);
    }).ToList());

    internal void Restore(OptimizerHelper optimizer)
    {
        var current = optimizer.ParamGroups.Cast<ParamGroup>().ToList();
        for (int i = 0; i < current.Count; i++)
        {
            using (var r = new BinaryReader(new MemoryStream(groups[i].Options)))
            {
                current[i].Options.LoadStateDict(r);
            }

            current[i].Options.LearningRate = groups[i].Rate;
            current[i].Options.InitialLearningRate = groups[i].Initial;
        }
    }
}
