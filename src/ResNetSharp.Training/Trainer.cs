using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResNetSharp.Training;

/// <summary>How <see cref="Trainer"/> trains: budget, optimizer, schedule, data pipeline, output folder.</summary>
public sealed record TrainerOptions
{
    /// <summary>Passes over the training set. Default 15.</summary>
    public int Epochs { get; init; } = 15;

    /// <summary>Images per training batch. Default 128 (the paper's).</summary>
    public int BatchSize { get; init; } = 128;

    /// <summary>Images per evaluation batch. Default 500.</summary>
    public int EvalBatchSize { get; init; } = 500;

    /// <summary>Drop the last, smaller training batch. Default false.</summary>
    public bool DropLast { get; init; }

    /// <summary>SGD settings. Default: the paper's (0.1, momentum 0.9, weight decay 1e-4).</summary>
    public SgdOptions Sgd { get; init; } = new();

    /// <summary>Learning-rate schedule, stepped every iteration. Default: the paper's step schedule.</summary>
    public LearningRateSchedule Schedule { get; init; } = LearningRateSchedule.PaperStep;

    /// <summary>Label smoothing of the training loss (Szegedy et al. 2016; TorchSharp's cross-entropy applies it). Default 0.</summary>
    public double LabelSmoothing { get; init; }

    /// <summary>Seed of the shuffle and of the augmentation. Default 0. (Seed the model's initialisation yourself with torch.manual_seed.)</summary>
    public int Seed { get; init; }

    /// <summary>Per-channel mean for normalisation; null computes it from the training set.</summary>
    public IReadOnlyList<double>? Mean { get; init; }

    /// <summary>Per-channel std for normalisation; null computes it from the training set.</summary>
    public IReadOnlyList<double>? Std { get; init; }

    /// <summary>Training transform; null means the paper's CIFAR recipe: pad 4 + random crop + horizontal flip, then normalise.</summary>
    public IBatchTransform? TrainTransform { get; init; }

    /// <summary>Evaluation transform; null means normalisation only.</summary>
    public IBatchTransform? TestTransform { get; init; }

    /// <summary>Training batches prepared ahead on a background thread. Default 2.</summary>
    public int Prefetch { get; init; } = 2;

    /// <summary>
    /// Folder for <c>metrics.jsonl</c>, <c>best.safetensors</c>, <c>model.safetensors</c> and
    /// <c>checkpoint.safetensors</c> (created if missing); null writes nothing (and cancellation leaves no checkpoint).
    /// </summary>
    public string? OutputDirectory { get; init; }

    /// <summary>Continue from <c>checkpoint.safetensors</c> in <see cref="OutputDirectory"/> when it exists. Default false (start afresh, overwriting).</summary>
    public bool Resume { get; init; }

    /// <summary>Also write the checkpoint every this many iterations (0: only after each epoch and on cancellation). Default 0.</summary>
    public int CheckpointEverySteps { get; init; }

    /// <summary>Dataset name recorded in the saved models' metadata; default the training set's <see cref="ImageDataset.Name"/>.</summary>
    public string? DatasetName { get; init; }

    /// <summary>
    /// Data-parallel training over several processes (null: this process alone). <see cref="BatchSize"/> is then per
    /// process (the global batch is BatchSize × processes), augmentation is seeded per image, evaluation is sharded,
    /// and only rank 0 writes files. A checkpoint records the number of processes; resuming with another is refused.
    /// </summary>
    public IDataParallel? Distributed { get; init; }

    /// <summary>Checks the values.</summary>
    /// <exception cref="ArgumentException">A value is out of range; the message names it.</exception>
    public void Validate()
    {
        if (Epochs < 1 || BatchSize < 1 || EvalBatchSize < 1 || Prefetch < 0 || CheckpointEverySteps < 0)
        {
            throw new ArgumentException($"Trainer: Epochs, BatchSize and EvalBatchSize must be ≥ 1, Prefetch and CheckpointEverySteps ≥ 0; got {Epochs}, {BatchSize}, {EvalBatchSize}, {Prefetch}, {CheckpointEverySteps}.");
        }

        if (!(LabelSmoothing >= 0 && LabelSmoothing < 1))
        {
            throw new ArgumentException($"Trainer: LabelSmoothing must be in [0, 1), got {LabelSmoothing}.");
        }

        if (Resume && OutputDirectory is null)
        {
            throw new ArgumentException("Trainer: Resume needs an OutputDirectory holding the checkpoint.");
        }

        Sgd.Validate();
    }
}

/// <summary>One finished epoch: the line written to <c>metrics.jsonl</c>.</summary>
public sealed record EpochMetrics
{
    /// <summary>Epoch number, from 1.</summary>
    [JsonPropertyName("epoch")]
    public int Epoch { get; init; }

    /// <summary>Mean training loss over the epoch (with label smoothing if used; on augmented batches, in train mode).</summary>
    [JsonPropertyName("trainLoss")]
    public double TrainLoss { get; init; }

    /// <summary>Training top-1 error over the epoch (the paper's Fig. 6 "training error": augmented batches, train mode).</summary>
    [JsonPropertyName("trainError")]
    public double TrainError { get; init; }

    /// <summary>Mean test cross-entropy, or null without a test set.</summary>
    [JsonPropertyName("testLoss")]
    public double? TestLoss { get; init; }

    /// <summary>Test top-1 accuracy (fraction), or null without a test set.</summary>
    [JsonPropertyName("testTop1")]
    public double? TestTop1 { get; init; }

    /// <summary>Test top-5 accuracy (fraction), or null without a test set.</summary>
    [JsonPropertyName("testTop5")]
    public double? TestTop5 { get; init; }

    /// <summary>Learning rate of the epoch's last iteration (with per-part rates, the highest).</summary>
    [JsonPropertyName("lr")]
    public double LearningRate { get; init; }

    /// <summary>Wall-clock seconds of the epoch (training and evaluation).</summary>
    [JsonPropertyName("seconds")]
    public double Seconds { get; init; }

    /// <summary>Training images per second over the epoch.</summary>
    [JsonPropertyName("imagesPerSecond")]
    public double ImagesPerSecond { get; init; }
}

/// <summary>Reported after every iteration (and, with <see cref="EpochCompleted"/> set, after every epoch).</summary>
public sealed record TrainingProgress
{
    /// <summary>Epoch, from 1.</summary>
    public int Epoch { get; init; }

    /// <summary>Epochs in the run.</summary>
    public int Epochs { get; init; }

    /// <summary>Iteration within the epoch, from 1.</summary>
    public int Step { get; init; }

    /// <summary>Iterations per epoch.</summary>
    public int StepsPerEpoch { get; init; }

    /// <summary>The iteration's training loss.</summary>
    public double Loss { get; init; }

    /// <summary>The iteration's learning rate (with per-part rates, the highest).</summary>
    public double LearningRate { get; init; }

    /// <summary>Training images per second since the run (or the resume) started.</summary>
    public double ImagesPerSecond { get; init; }

    /// <summary>Estimated time to the end of the run (training iterations only).</summary>
    public TimeSpan Eta { get; init; }

    /// <summary>The finished epoch's metrics, on the report that ends an epoch; null otherwise.</summary>
    public EpochMetrics? EpochCompleted { get; init; }
}

/// <summary>What <see cref="Trainer.Fit"/> did.</summary>
public sealed record TrainingResult
{
    /// <summary>Every finished epoch, including those before a resume.</summary>
    public required IReadOnlyList<EpochMetrics> History { get; init; }

    /// <summary>The epoch with the best test top-1 (null without a test set or epochs).</summary>
    public EpochMetrics? Best { get; init; }

    /// <summary>True when the run stopped on cancellation (a checkpoint was written if there is an output folder).</summary>
    public bool Cancelled { get; init; }

    /// <summary>Iterations done in total.</summary>
    public int GlobalStep { get; init; }
}

/// <summary>
/// Trains a <see cref="ResNet"/> classifier: epochs of SGD over seeded, augmented batches, a test evaluation
/// (loss, top-1, top-5) after each epoch, progress reports, <c>metrics.jsonl</c>, the best and final weights
/// (with <see cref="ModelMetadata"/>: class names, mean/std, input size, dataset, epochs, top-1), and a resumable
/// checkpoint after each epoch and on cancellation.
/// </summary>
/// <remarks>
/// Reproducibility: with the same seeds, on the CPU with one intra-op thread, an interrupted run resumed with
/// <see cref="TrainerOptions.Resume"/> ends with weights bit-identical to an uninterrupted one (tested).
/// </remarks>
/// <example>
/// <code>
/// var train = FashionMnist.Train();
/// var test = FashionMnist.Test();
/// using var model = ResNetFactory.Create("resnet20", new ResNetOptions { InChannels = 1, NumClasses = 10 });
/// var trainer = new Trainer(model, train, test, new TrainerOptions { Epochs = 15, OutputDirectory = "runs/r20" });
/// var result = trainer.Fit(new Progress&lt;TrainingProgress&gt;(p => Console.Write($"\r{p.Epoch}/{p.Epochs} {p.Step}/{p.StepsPerEpoch}")));
/// </code>
/// </example>
public sealed class Trainer
{
    /// <summary>
    /// Scores a classifier on a dataset, as the trainer does after every epoch: in order, eval mode, no gradients; top-1,
    /// top-5, mean cross-entropy, per-class accuracy and the confusion matrix.
    /// </summary>
    /// <param name="model">The classifier; put in eval mode during the call and restored afterwards.</param>
    /// <param name="dataset">The test images.</param>
    /// <param name="transform">Applied to each batch before the model (usually <see cref="Transforms.Normalize"/> with the training mean/std); null feeds the pixels as stored.</param>
    /// <param name="batchSize">Images per forward pass (≥ 1).</param>
    /// <param name="cancellationToken">Stops between batches with <see cref="OperationCanceledException"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batchSize"/> is below 1.</exception>
    public static EvaluationResult Evaluate(nn.Module<Tensor, Tensor> model, ImageDataset dataset, IBatchTransform? transform = null, int batchSize = 256,
                                            CancellationToken cancellationToken = default) =>
        Evaluator.Evaluate(model, dataset, transform, batchSize, cancellationToken);

    /// <summary>The checkpoint's file name in the output folder.</summary>
    public const string CheckpointFileName = TrainingCheckpoint.FileName;

    /// <summary>The metrics log's file name in the output folder.</summary>
    public const string MetricsFileName = "metrics.jsonl";

    /// <summary>Best weights (by test top-1).</summary>
    public const string BestFileName = "best.safetensors";

    /// <summary>Final weights.</summary>
    public const string FinalFileName = "model.safetensors";

    private static readonly JsonSerializerOptions LineJson = new() { DefaultIgnoreCondition = JsonIgnoreCondition.Never };
    private readonly ImageDataset train;
    private readonly ImageDataset? test;

    /// <summary>Creates a trainer.</summary>
    /// <param name="model">The model to train (in place).</param>
    /// <param name="train">Training set; its class count must equal the model's outputs and its channels the model's input channels.</param>
    /// <param name="test">Test set, or null to skip evaluation.</param>
    /// <param name="options">Settings; default <see cref="TrainerOptions"/>.</param>
    /// <exception cref="ArgumentException">The options are invalid or the data does not fit the model.</exception>
    public Trainer(ResNet model, ImageDataset train, ImageDataset? test, TrainerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(train);
        options ??= new TrainerOptions();
        options.Validate();
        if (model.IsHeadless)
        {
            throw new ArgumentException(
                $"The model '{model.ModelName}' is headless (no classifier), so there is nothing to train against {train.Name}'s {train.ClassNames.Count} classes: " +
                $"give it one first with model.ResetClassifier({train.ClassNames.Count}, classNames).", nameof(model));
        }

        foreach (var set in test is null ? new[] { train } : new[] { train, test })
        {
            if (set.ClassNames.Count != model.NumClasses || set.Channels != model.Options.InChannels)
            {
                throw new ArgumentException(
                    $"{set.Name} has {set.ClassNames.Count} classes of {set.Channels}-channel images; the model '{model.ModelName}' has {model.NumClasses} outputs and " +
                    $"{model.Options.InChannels} input channels.");
            }
        }

        Model = model;
        Options = options;
        this.train = train;
        this.test = test;
    }

    /// <summary>The model being trained.</summary>
    public ResNet Model { get; }

    /// <summary>The settings.</summary>
    public TrainerOptions Options { get; }

    /// <summary>
    /// Runs the remaining epochs. Cancellation is checked between iterations: the run stops there, writes the
    /// checkpoint (when there is an output folder) and returns with <see cref="TrainingResult.Cancelled"/> set.
    /// </summary>
    /// <param name="progress">Receives a report after each iteration and each epoch, on the training thread.</param>
    /// <param name="cancellationToken">Stops the run cleanly.</param>
    /// <exception cref="InvalidDataException">Resuming from a checkpoint that is malformed or belongs to a different run.</exception>
    public TrainingResult Fit(IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default) =>
        FitCore(progress, null, cancellationToken);

    /// <summary>Fit with a wrapper around the checkpoint's stream (tests inject a failing write there).</summary>
    internal TrainingResult FitCore(IProgress<TrainingProgress>? progress, Func<Stream, Stream>? wrapCheckpointForTests, CancellationToken cancellationToken)
    {
        var o = Options;
        string? dir = o.OutputDirectory;
        if (dir is not null)
        {
            Directory.CreateDirectory(dir);
        }

        var dp = o.Distributed;
        int rank = dp?.Rank ?? 0, world = dp?.WorldSize ?? 1;
        bool writer = rank == 0;
        if (dp is not null)
        {
            CheckSameOnAllRanks(dp, o);
        }

        var (mean, std) = o.Mean is not null && o.Std is not null ? (o.Mean, o.Std) : ComputeMeanStd(o);
        var trainLoader = new DataLoader(train, new DataLoaderOptions
        {
            BatchSize = o.BatchSize, Shuffle = true, DropLast = o.DropLast, Seed = o.Seed, Prefetch = o.Prefetch,
            Transform = o.TrainTransform ?? Transforms.PaperCifar(mean, std),
            ShardRank = rank, ShardCount = world, PerSampleSeeds = dp is not null,
        });
        var testLoader = test is null ? null : new DataLoader(test, new DataLoaderOptions
        {
            BatchSize = o.EvalBatchSize, Shuffle = false, Prefetch = o.Prefetch, Transform = o.TestTransform ?? Transforms.Normalize(mean, std),
            ShardRank = rank, ShardCount = world,
        });
        int stepsPerEpoch = trainLoader.BatchesPerEpoch;
        int totalSteps = stepsPerEpoch * o.Epochs;

        using var optimizer = o.Sgd.Create(Model);
        var scheduler = o.Schedule.Create(optimizer, totalSteps);
        var state = new TrainingState
        {
            Seed = o.Seed, Epochs = o.Epochs, BatchSize = o.BatchSize, StepsPerEpoch = stepsPerEpoch, TrainSamples = train.Count,
            Schedule = o.Schedule.ToString(), InputSize = train.Height, WorldSize = world,
        };
        string? checkpointPath = dir is null ? null : Path.Combine(dir, CheckpointFileName);
        string? metricsPath = dir is null ? null : Path.Combine(dir, MetricsFileName);
        if (o.Resume && checkpointPath is not null && File.Exists(checkpointPath))
        {
            var saved = TrainingCheckpoint.Load(checkpointPath, Model, optimizer);
            CheckSameRun(checkpointPath, saved, state);
            // TorchSharp's schedulers keep no serialisable state: replay them (the optimizer's saved options, loaded above,
            // already hold the rate and momentum they lead to; the replay restores the scheduler's own step count).
            var restoredOptions = SaveOptimizerOptions(optimizer);
            for (int i = 0; i < saved.GlobalStep; i++)
            {
                scheduler.step();
            }

            RestoreOptimizerOptions(optimizer, restoredOptions);
            state = saved;
            if (writer)
            {
                RewriteMetrics(metricsPath!, state.History);
            }
        }
        else if (metricsPath is not null && writer)
        {
            AtomicFile.Write(metricsPath, _ => { });
        }

        dp?.Prepare(Model);

        var history = state.History;
        double bestTop1 = history.Where(h => h.TestTop1.HasValue).Select(h => h.TestTop1!.Value).DefaultIfEmpty(double.NegativeInfinity).Max();
        var runWatch = Stopwatch.StartNew();
        long runImages = 0;
        int runSteps = 0;
        double lr = optimizer.ParamGroups.Max(g => g.LearningRate);
        var stepSums = new double[3];

        for (int epoch = state.Epoch; epoch < o.Epochs; epoch++)
        {
            var epochWatch = Stopwatch.StartNew();
            double epochSecondsBefore = state.Step > 0 ? state.EpochSeconds : 0;
            double lossSum = state.Step > 0 ? state.EpochLossSum : 0;
            long errors = state.Step > 0 ? state.EpochErrors : 0, seen = state.Step > 0 ? state.EpochSamples : 0;
            int startStep = state.Step;
            Model.train();
            bool cancelled = false;
            foreach (var batch in trainLoader.GetBatches(epoch, startStep, CancellationToken.None))
            {
                using (batch)
                {
                    if (cancellationToken.IsCancellationRequested)
                    {
                        cancelled = true;
                        break;
                    }

                    lr = optimizer.ParamGroups.Max(g => g.LearningRate);
                    double loss;
                    long wrong;
                    using (var scope = torch.NewDisposeScope())
                    {
                        optimizer.zero_grad();
                        var logits = Model.call(batch.Images);
                        var lossTensor = nn.functional.cross_entropy(logits, batch.Labels, label_smoothing: o.LabelSmoothing);
                        if (dp is null)
                        {
                            lossTensor.backward();
                        }
                        else
                        {
                            // The mean over this shard, weighted so that DDP's gradient mean (÷ world) is the global batch's mean
                            // loss also when a short last batch splits unevenly (weight 1 when every shard has BatchSize images).
                            (lossTensor * ((double)world * batch.Size / trainLoader.GlobalBatchCount(batch.Index))).backward();
                            dp.AverageGradients();
                        }

                        optimizer.step();
                        loss = lossTensor.item<float>();
                        using (torch.no_grad())
                        {
                            wrong = logits.argmax(1).ne(batch.Labels).sum().item<long>();
                        }
                    }

                    int images = batch.Size;
                    if (dp is not null)
                    {
                        // Every rank logs the global batch: loss and errors summed over the shards.
                        stepSums[0] = loss * batch.Size;
                        stepSums[1] = wrong;
                        stepSums[2] = batch.Size;
                        dp.AllreduceSum(stepSums);
                        var sums = stepSums;
                        images = (int)sums[2];
                        loss = sums[0] / images;
                        wrong = (long)Math.Round(sums[1]);
                    }

                    scheduler.step();
                    if (state.InputSize != batch.Images.shape[2])
                    {
                        state = state with { InputSize = (int)batch.Images.shape[2] };
                    }

                    lossSum += loss * images;
                    errors += wrong;
                    seen += images;
                    runImages += images;
                    runSteps++;
                    int globalStep = state.GlobalStep + 1;
                    state = state with
                    {
                        Epoch = epoch, Step = batch.Index + 1, GlobalStep = globalStep, EpochLossSum = lossSum, EpochErrors = errors, EpochSamples = seen,
                        EpochSeconds = epochSecondsBefore + epochWatch.Elapsed.TotalSeconds,
                    };
                    double perStep = runWatch.Elapsed.TotalSeconds / runSteps;
                    progress?.Report(new TrainingProgress
                    {
                        Epoch = epoch + 1, Epochs = o.Epochs, Step = batch.Index + 1, StepsPerEpoch = stepsPerEpoch, Loss = loss, LearningRate = lr,
                        ImagesPerSecond = runImages / Math.Max(runWatch.Elapsed.TotalSeconds, 1e-9),
                        Eta = TimeSpan.FromSeconds(perStep * (totalSteps - globalStep)),
                    });
                    if (checkpointPath is not null && writer && o.CheckpointEverySteps > 0 && globalStep % o.CheckpointEverySteps == 0 && batch.Index + 1 < stepsPerEpoch)
                    {
                        TrainingCheckpoint.Save(checkpointPath, Model, optimizer, Stamp(state, runWatch), wrapCheckpointForTests);
                    }
                }
            }

            if (cancelled || (cancellationToken.IsCancellationRequested && state.Step < stepsPerEpoch))
            {
                return Stop(state, runWatch, optimizer, writer ? checkpointPath : null, history, wrapCheckpointForTests);
            }

            // The epoch is complete: evaluate, log, keep the best, checkpoint.
            EvaluationResult? eval = testLoader is null ? null : Evaluator.Evaluate(Model, testLoader, CancellationToken.None);
            if (eval is not null && dp is not null)
            {
                eval = ReduceEvaluation(dp, eval);
            }

            var metrics = new EpochMetrics
            {
                Epoch = epoch + 1, TrainLoss = lossSum / Math.Max(seen, 1), TrainError = (double)errors / Math.Max(seen, 1),
                TestLoss = eval?.Loss, TestTop1 = eval?.Top1, TestTop5 = eval?.Top5, LearningRate = lr,
                Seconds = epochSecondsBefore + epochWatch.Elapsed.TotalSeconds, ImagesPerSecond = seen / Math.Max(epochSecondsBefore + epochWatch.Elapsed.TotalSeconds, 1e-9),
            };
            history.Add(metrics);
            state = state with { Epoch = epoch + 1, Step = 0, EpochLossSum = 0, EpochErrors = 0, EpochSamples = 0, EpochSeconds = 0, History = history };
            if (dir is not null && writer)
            {
                File.AppendAllText(metricsPath!, JsonSerializer.Serialize(metrics, LineJson) + "\n");
                SetMetadata(state, mean, std, metrics);
                if (eval is not null && eval.Top1 > bestTop1)
                {
                    bestTop1 = eval.Top1;
                    Model.SaveWeights(Path.Combine(dir, BestFileName));
                }

                TrainingCheckpoint.Save(checkpointPath!, Model, optimizer, Stamp(state, runWatch), wrapCheckpointForTests);
            }

            progress?.Report(new TrainingProgress
            {
                Epoch = epoch + 1, Epochs = o.Epochs, Step = stepsPerEpoch, StepsPerEpoch = stepsPerEpoch, Loss = metrics.TrainLoss, LearningRate = lr,
                ImagesPerSecond = runImages / Math.Max(runWatch.Elapsed.TotalSeconds, 1e-9),
                Eta = TimeSpan.FromSeconds(runSteps == 0 ? 0 : runWatch.Elapsed.TotalSeconds / runSteps * (totalSteps - state.GlobalStep)),
                EpochCompleted = metrics,
            });
            if (cancellationToken.IsCancellationRequested && epoch + 1 < o.Epochs)
            {
                return new TrainingResult { History = history.ToArray(), Best = Best(history), Cancelled = true, GlobalStep = state.GlobalStep };
            }
        }

        SetMetadata(state, mean, std, history.LastOrDefault());
        if (dir is not null && writer)
        {
            Model.SaveWeights(Path.Combine(dir, FinalFileName));
        }

        return new TrainingResult { History = history.ToArray(), Best = Best(history), GlobalStep = state.GlobalStep };
    }

    private TrainingResult Stop(TrainingState state, Stopwatch runWatch, SGD optimizer, string? checkpointPath, List<EpochMetrics> history, Func<Stream, Stream>? wrap)
    {
        if (checkpointPath is not null)
        {
            TrainingCheckpoint.Save(checkpointPath, Model, optimizer, Stamp(state, runWatch), wrap);
        }

        return new TrainingResult { History = history.ToArray(), Best = Best(history), Cancelled = true, GlobalStep = state.GlobalStep };
    }

    private static TrainingState Stamp(TrainingState state, Stopwatch runWatch) => state with { TotalSeconds = state.TotalSeconds + runWatch.Elapsed.TotalSeconds };

    private static EpochMetrics? Best(IEnumerable<EpochMetrics> history) =>
        history.Where(h => h.TestTop1.HasValue).OrderByDescending(h => h.TestTop1).ThenBy(h => h.Epoch).FirstOrDefault();

    private (IReadOnlyList<double> Mean, IReadOnlyList<double> Std) ComputeMeanStd(TrainerOptions o)
    {
        var (m, s) = train.ComputeMeanStd();
        return (o.Mean ?? m, o.Std ?? s);
    }

    private void SetMetadata(TrainingState state, IReadOnlyList<double> mean, IReadOnlyList<double> std, EpochMetrics? last)
    {
        var extra = new Dictionary<string, string>(Model.Metadata.Extra ?? new Dictionary<string, string>(), StringComparer.Ordinal)
        {
            ["dataset"] = Options.DatasetName ?? train.Name,
            ["train_samples"] = train.Count.ToString(CultureInfo.InvariantCulture),
            ["epochs"] = state.Epoch.ToString(CultureInfo.InvariantCulture),
            ["recipe"] = $"SGD lr {Options.Sgd.LearningRate.ToString(CultureInfo.InvariantCulture)} momentum {Options.Sgd.Momentum.ToString(CultureInfo.InvariantCulture)}" +
                         $"{(Options.Sgd.Nesterov ? " nesterov" : string.Empty)} wd {Options.Sgd.WeightDecay.ToString(CultureInfo.InvariantCulture)}, {Options.Schedule}, batch {Options.BatchSize}" +
                         (Options.LabelSmoothing > 0 ? $", label smoothing {Options.LabelSmoothing.ToString(CultureInfo.InvariantCulture)}" : string.Empty),
        };
        if (last?.TestTop1 is { } top1)
        {
            extra["top1"] = top1.ToString("0.####", CultureInfo.InvariantCulture);
            extra["top5"] = last.TestTop5!.Value.ToString("0.####", CultureInfo.InvariantCulture);
        }

        // The pixel range, channel order and mean image of a pretrained model's preprocessing stay (resized with the input);
        // unknown preprocessing becomes known only when the trainer's own normalisation defines it.
        Model.Metadata = Model.Metadata.WithInputSize(state.InputSize) with
        {
            ClassNames = train.ClassNames.ToArray(),
            Mean = mean.ToArray(),
            Std = std.ToArray(),
            CropPct = 1.0,
            PreprocessingKnown = Model.Metadata.PreprocessingKnown || (Options.TrainTransform is null && Options.TestTransform is null),
            Extra = extra,
        };
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

    private static void CheckSameOnAllRanks(IDataParallel dp, TrainerOptions o)
    {
        dp.CheckSame("the batch size", o.BatchSize);
        dp.CheckSame("the seed", o.Seed);
        dp.CheckSame("the number of epochs", o.Epochs);
        dp.CheckSame("resume", o.Resume ? 1 : 0);
        dp.CheckSame("the learning rate (×1e9)", (long)Math.Round(o.Sgd.LearningRate * 1e9));
        dp.CheckSame("the schedule", StableHash(o.Schedule.ToString()));
    }

    private static long StableHash(string text)
    {
        ulong h = 14695981039346656037UL;
        foreach (char c in text)
        {
            h = unchecked((h ^ c) * 1099511628211UL);
        }

        return (long)(h >> 1);
    }

    private static EvaluationResult ReduceEvaluation(IDataParallel dp, EvaluationResult local)
    {
        Span<double> sums = stackalloc double[] { local.Loss * local.Count, Math.Round(local.Top1 * local.Count), Math.Round(local.Top5 * local.Count), local.Count };
        dp.AllreduceSum(sums);
        double n = Math.Max(sums[3], 1);
        return local with { Count = (int)sums[3], Loss = sums[0] / n, Top1 = sums[1] / n, Top5 = sums[2] / n };
    }

    private static List<(double? Lr, double Initial, double? Momentum)> SaveOptimizerOptions(SGD optimizer) =>
        optimizer.ParamGroups.Cast<ParamGroup>().Select(g => (g.Options.LearningRate, g.Options.InitialLearningRate, ((SGD.Options)g.Options).momentum)).ToList();

    private static void RestoreOptimizerOptions(SGD optimizer, List<(double? Lr, double Initial, double? Momentum)> saved)
    {
        var groups = optimizer.ParamGroups.Cast<ParamGroup>().ToList();
        for (int i = 0; i < groups.Count; i++)
        {
            groups[i].Options.LearningRate = saved[i].Lr;
            groups[i].Options.InitialLearningRate = saved[i].Initial;
            ((SGD.Options)groups[i].Options).momentum = saved[i].Momentum;
        }
    }

    private static void RewriteMetrics(string path, IEnumerable<EpochMetrics> history) =>
        AtomicFile.Write(path, stream =>
        {
            using var writer = new StreamWriter(stream, new System.Text.UTF8Encoding(false), 1 << 16, leaveOpen: true);
            foreach (var m in history)
            {
                writer.Write(JsonSerializer.Serialize(m, LineJson));
                writer.Write('\n');
            }
        });
}
