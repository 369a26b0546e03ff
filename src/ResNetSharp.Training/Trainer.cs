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

    /// <summary>
    /// Builds the optimizer for the model; null (the default) builds SGD from <see cref="Sgd"/>, which must then keep its
    /// defaults. Any TorchSharp optimizer (SGD, Adam, AdamW, …) checkpoints and resumes bit for bit: its state is saved
    /// with TorchSharp's own serialisation. <see cref="ResNet.ParameterGroups"/> keeps weight decay off BatchNorm and biases.
    /// </summary>
    /// <example><c>Optimizer = m =&gt; torch.optim.AdamW(m.parameters(), lr: 1e-3, weight_decay: 0.05)</c></example>
    public Func<ResNet, OptimizerHelper>? Optimizer { get; init; }

    /// <summary>
    /// The training loss from the logits (N × classes) and the labels (N, int64): a scalar, the batch mean (data-parallel
    /// training weights each shard's mean by its size). Null (the default): cross-entropy with <see cref="LabelSmoothing"/>,
    /// which must then stay 0. Evaluation always reports cross-entropy.
    /// </summary>
    public Func<Tensor, Tensor, Tensor>? Loss { get; init; }

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

        if (Optimizer is not null && Sgd != new SgdOptions())
        {
            throw new ArgumentException("Trainer: set either Optimizer (your own) or Sgd (the built-in SGD), not both.");
        }

        if (Loss is not null && LabelSmoothing != 0)
        {
            throw new ArgumentException("Trainer: LabelSmoothing applies to the built-in cross-entropy; with your own Loss, smooth the labels there.");
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
/// Trains a <see cref="ResNet"/> classifier: epochs of SGD (or any TorchSharp optimizer, <see cref="TrainerOptions.Optimizer"/>)
/// over seeded, augmented batches, a test evaluation
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
    public TrainingResult Fit(IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var o = Options;
        var dp = o.Distributed;
        int rank = dp?.Rank ?? 0, world = dp?.WorldSize ?? 1;
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

        using var optimizer = o.Optimizer?.Invoke(Model) ?? o.Sgd.Create(Model);
        var scheduler = o.Schedule.Create(optimizer, totalSteps);
        var files = new CheckpointPolicy(o.OutputDirectory, writer: rank == 0, o.CheckpointEverySteps);
        var state = new TrainingState
        {
            Seed = o.Seed, Epochs = o.Epochs, BatchSize = o.BatchSize, StepsPerEpoch = stepsPerEpoch, TrainSamples = train.Count,
            Schedule = o.Schedule.ToString(), InputSize = train.Height, WorldSize = world,
        };
        state = files.Resume(o.Resume, Model, optimizer, scheduler, state) ?? state;
        dp?.Prepare(Model);

        var step = new TrainingStep(Model, optimizer, o.Loss ?? CrossEntropy(o.LabelSmoothing), dp, trainLoader);
        var history = state.History;
        double bestTop1 = history.Where(h => h.TestTop1.HasValue).Select(h => h.TestTop1!.Value).DefaultIfEmpty(double.NegativeInfinity).Max();
        var runWatch = Stopwatch.StartNew();
        long runImages = 0;
        int runSteps = 0;
        double lr = step.LearningRate;
        TrainingState Stamped() => state with { TotalSeconds = state.TotalSeconds + runWatch.Elapsed.TotalSeconds };
        TimeSpan Eta() => TimeSpan.FromSeconds(runSteps == 0 ? 0 : runWatch.Elapsed.TotalSeconds / runSteps * (totalSteps - state.GlobalStep));
        double Throughput() => runImages / Math.Max(runWatch.Elapsed.TotalSeconds, 1e-9);

        for (int epoch = state.Epoch; epoch < o.Epochs; epoch++)
        {
            var sums = new EpochAccumulator(state);
            Model.train();
            foreach (var batch in trainLoader.GetBatches(epoch, state.Step, CancellationToken.None))
            {
                using (batch)
                {
                    if (cancellationToken.IsCancellationRequested)
                    {
                        break;
                    }

                    lr = step.LearningRate;
                    var result = step.Run(batch);
                    scheduler.step();
                    if (state.InputSize != batch.Images.shape[2])
                    {
                        state = state with { InputSize = (int)batch.Images.shape[2] };
                    }

                    sums.Add(result);
                    runImages += result.Images;
                    runSteps++;
                    state = sums.After(state, epoch, batch.Index);
                    progress?.Report(new TrainingProgress
                    {
                        Epoch = epoch + 1, Epochs = o.Epochs, Step = batch.Index + 1, StepsPerEpoch = stepsPerEpoch, Loss = result.Loss, LearningRate = lr,
                        ImagesPerSecond = Throughput(), Eta = Eta(),
                    });
                    files.AfterStep(Model, optimizer, Stamped(), endsEpoch: batch.Index + 1 == stepsPerEpoch);
                }
            }

            if (state.Step < stepsPerEpoch && cancellationToken.IsCancellationRequested)
            {
                files.OnCancel(Model, optimizer, Stamped());
                return new TrainingResult { History = history.ToArray(), Best = Best(history), Cancelled = true, GlobalStep = state.GlobalStep };
            }

            // The epoch is complete: evaluate, log, keep the best, checkpoint.
            EvaluationResult? eval = testLoader is null ? null : Evaluator.Evaluate(Model, testLoader, CancellationToken.None);
            if (eval is not null && dp is not null)
            {
                eval = ReduceEvaluation(dp, eval);
            }

            var metrics = sums.Finish(epoch, eval, lr);
            history.Add(metrics);
            state = state with { Epoch = epoch + 1, Step = 0, EpochLossSum = 0, EpochErrors = 0, EpochSamples = 0, EpochSeconds = 0, History = history };
            bool isBest = eval is not null && eval.Top1 > bestTop1;
            bestTop1 = isBest ? eval!.Top1 : bestTop1;
            SetMetadata(state, mean, std, metrics, optimizer);
            files.AfterEpoch(Model, optimizer, Stamped(), metrics, isBest);
            progress?.Report(new TrainingProgress
            {
                Epoch = epoch + 1, Epochs = o.Epochs, Step = stepsPerEpoch, StepsPerEpoch = stepsPerEpoch, Loss = metrics.TrainLoss, LearningRate = lr,
                ImagesPerSecond = Throughput(), Eta = Eta(), EpochCompleted = metrics,
            });
            if (cancellationToken.IsCancellationRequested && epoch + 1 < o.Epochs)
            {
                return new TrainingResult { History = history.ToArray(), Best = Best(history), Cancelled = true, GlobalStep = state.GlobalStep };
            }
        }

        SetMetadata(state, mean, std, history.LastOrDefault(), optimizer);
        files.Finish(Model);
        return new TrainingResult { History = history.ToArray(), Best = Best(history), GlobalStep = state.GlobalStep };
    }

    /// <summary>The default loss: cross-entropy over the batch, mean-reduced, with optional label smoothing.</summary>
    private static Func<Tensor, Tensor, Tensor> CrossEntropy(double labelSmoothing) =>
        (logits, labels) => nn.functional.cross_entropy(logits, labels, label_smoothing: labelSmoothing);

    private static EpochMetrics? Best(IEnumerable<EpochMetrics> history) =>
        history.Where(h => h.TestTop1.HasValue).OrderByDescending(h => h.TestTop1).ThenBy(h => h.Epoch).FirstOrDefault();

    private (IReadOnlyList<double> Mean, IReadOnlyList<double> Std) ComputeMeanStd(TrainerOptions o)
    {
        var (m, s) = train.ComputeMeanStd();
        return (o.Mean ?? m, o.Std ?? s);
    }

    private void SetMetadata(TrainingState state, IReadOnlyList<double> mean, IReadOnlyList<double> std, EpochMetrics? last, OptimizerHelper optimizer)
    {
        var o = Options;
        string I(double v) => v.ToString(CultureInfo.InvariantCulture);
        string optimizerText = o.Optimizer is null
            ? $"SGD lr {I(o.Sgd.LearningRate)} momentum {I(o.Sgd.Momentum)}{(o.Sgd.Nesterov ? " nesterov" : string.Empty)} wd {I(o.Sgd.WeightDecay)}"
            : $"{optimizer.GetType().Name} lr {I(optimizer.ParamGroups.Cast<ParamGroup>().Max(g => g.InitialLearningRate))}";
        var extra = new Dictionary<string, string>(Model.Metadata.Extra ?? new Dictionary<string, string>(), StringComparer.Ordinal)
        {
            ["dataset"] = o.DatasetName ?? train.Name,
            ["train_samples"] = train.Count.ToString(CultureInfo.InvariantCulture),
            ["epochs"] = state.Epoch.ToString(CultureInfo.InvariantCulture),
            ["recipe"] = $"{optimizerText}, {o.Schedule}, batch {o.BatchSize}" +
                         (o.Loss is not null ? ", custom loss" : o.LabelSmoothing > 0 ? $", label smoothing {I(o.LabelSmoothing)}" : string.Empty),
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
            PreprocessingKnown = Model.Metadata.PreprocessingKnown || (o.TrainTransform is null && o.TestTransform is null),
            Extra = extra,
        };
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
}
