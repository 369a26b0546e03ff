using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Threading;
using ResNetSharp.Training;
using Spectre.Console;

namespace ResNetSharp.Cli.Commands;

/// <summary>The training options shared by <c>resnet train</c> and <c>resnet experiment</c>.</summary>
internal sealed class RecipeOptions
{
    public Option<string> Dataset { get; } = new("--dataset") { Description = "fashion-mnist, a folder of MNIST-format IDX files, or an image folder (train/<class>/…, test/<class>/… or val/).", DefaultValueFactory = _ => "fashion-mnist" };

    public Option<int> Epochs { get; }

    public Option<int> Batch { get; } = new("--batch") { Description = "Images per training batch.", DefaultValueFactory = _ => 128 };

    public Option<double?> Lr { get; } = new("--lr") { Description = "Peak learning rate (default 0.2 for onecycle, 0.1 otherwise)." };

    public Option<string> Schedule { get; }

    public Option<double> WeightDecay { get; }

    public Option<bool> Nesterov { get; }

    public Option<double> LabelSmoothing { get; } = new("--label-smoothing") { Description = "Label smoothing of the training loss.", DefaultValueFactory = _ => 0.0 };

    public Option<int> Prefetch { get; } = new("--prefetch")
    {
        Description = "Batches prepared ahead on a background thread (0: prepare each batch on the training thread).", DefaultValueFactory = _ => 2,
    };

    public Option<bool> NoDecayNormBias { get; } = new("--no-decay-norm-bias") { Description = "No weight decay on BatchNorm weights and biases (timm's parameter groups)." };

    public Option<int> Cutout { get; } = new("--cutout") { Description = "Cutout square side in pixels after the paper's crop + flip (0: none).", DefaultValueFactory = _ => 0 };

    public Option<double> RandomErasing { get; } = new("--random-erasing") { Description = "Random erasing probability after crop + flip (0: none; torchvision's default is 0.5).", DefaultValueFactory = _ => 0.0 };

    public Option<int?> Subset { get; } = new("--subset") { Description = "Train on the first N training images (and test on the first min(N, 10000) test images)." };

    public Option<int?> TestSubset { get; } = new("--test-subset") { Description = "Test on the first N test images." };

    public Option<int> Seed { get; } = new("--seed") { Description = "Seed of the initialisation, shuffle and augmentation.", DefaultValueFactory = _ => 0 };

    public Option<int?> Threads { get; } = new("--threads") { Description = "Intra-op threads (default: libtorch's choice)." };

    public Option<bool> DefaultAllocator { get; } = new("--default-allocator")
    {
        Description = "Leave glibc malloc as it is. By default training calls AllocatorTuning.Apply(): a training step allocates and frees " +
                      "tens of activation-sized buffers, and reusing them instead of mapping fresh pages made ResNet-20's step ~10-20 % faster here.",
    };

    public Option<int?> InputSize { get; } = new("--input-size") { Description = "Image folders only: side images are resized and cropped to (default 32 for CIFAR tables, 224 otherwise)." };

    public Option<bool> Grey { get; } = new("--grey") { Description = "Image folders only: decode to one grey channel instead of RGB." };

    public RecipeOptions(int epochs, string schedule, double weightDecay, bool nesterov)
    {
        Epochs = new Option<int>("--epochs") { Description = "Passes over the training set.", DefaultValueFactory = _ => epochs };
        Schedule = new Option<string>("--schedule") { Description = "step (÷10 at 50 % and 75 %), cosine, onecycle or constant.", DefaultValueFactory = _ => schedule };
        WeightDecay = new Option<double>("--weight-decay") { Description = "L2 weight decay.", DefaultValueFactory = _ => weightDecay };
        Nesterov = new Option<bool>("--nesterov") { Description = nesterov ? "Nesterov momentum: on by default here; '--nesterov false' for classical momentum." : "Nesterov momentum: off by default here.", DefaultValueFactory = _ => nesterov };
    }

    /// <summary>Adds every recipe option to <paramref name="command"/> (train and both experiments share them).</summary>
    public void AddTo(Command command)
    {
        foreach (var o in new Option[] { Dataset, Epochs, Batch, Lr, Schedule, WeightDecay, Nesterov, LabelSmoothing, Subset, TestSubset, Seed, Threads, DefaultAllocator, InputSize, Grey, NoDecayNormBias, Cutout, RandomErasing, Prefetch })
        {
            command.Options.Add(o);
        }
    }

    /// <summary>Loads the data for <paramref name="model"/> (its natural input size for image folders unless --input-size).</summary>
    /// <exception cref="ArgumentException">--input-size was given for IDX data, which keeps its own size.</exception>
    public (ImageDataset Train, ImageDataset Test, string Name) LoadData(ParseResult parse, string model)
    {
        string dataset = parse.GetValue(Dataset)!;
        if (parse.GetValue(InputSize) is { } size && IsIdx(dataset))
        {
            throw new ArgumentException($"--input-size {size} applies to image folders only; '{dataset}' is IDX data, which trains at its own size (28×28).");
        }

        return TrainingData.Load(dataset, parse.GetValue(Subset), parse.GetValue(TestSubset),
            parse.GetValue(InputSize) ?? (ResNetFactory.GetTable(model).Stem == StemKind.Cifar ? 32 : 224), parse.GetValue(Grey) ? 1 : 3);
    }

    /// <summary>True when <paramref name="dataset"/> names IDX data (Fashion-MNIST or a folder of MNIST-format files), not an image folder.</summary>
    public static bool IsIdx(string dataset) =>
        dataset.Trim().Equals("fashion-mnist", StringComparison.OrdinalIgnoreCase) || (Directory.Exists(dataset) && FashionMnist.IsAvailable(dataset));

    /// <summary>Rejects values of the augmentation and loader options that no run could honour, naming the option.</summary>
    public void Validate(ParseResult parse)
    {
        if (parse.GetValue(Prefetch) is var prefetch and < 0)
        {
            throw new ArgumentException($"--prefetch must be ≥ 0 (batches prepared ahead; 0: none), got {prefetch}.");
        }

        if (parse.GetValue(Cutout) is var cutout and < 0)
        {
            throw new ArgumentException($"--cutout must be ≥ 0 (the square's side in pixels; 0: none), got {cutout}.");
        }

        if (parse.GetValue(RandomErasing) is var erasing && !(erasing >= 0 && erasing <= 1))
        {
            throw new ArgumentException($"--random-erasing must be a probability in [0, 1], got {erasing.ToString(CultureInfo.InvariantCulture)}.");
        }
    }

    /// <summary>
    /// The erasing steps --cutout and --random-erasing ask for (to apply after normalisation, so that "zero" is the mean),
    /// and their description for a results file (", cutout 8 px, random erasing p 0.5"; empty when neither is given).
    /// </summary>
    public (IReadOnlyList<IBatchTransform> Steps, string Description) Erasing(ParseResult parse)
    {
        Validate(parse);
        var steps = new List<IBatchTransform>();
        string description = string.Empty;
        if (parse.GetValue(Cutout) is var cutout and > 0)
        {
            steps.Add(Transforms.Cutout(cutout));
            description += $", cutout {cutout} px";
        }

        if (parse.GetValue(RandomErasing) is var erasing and > 0)
        {
            steps.Add(Transforms.RandomErasing(erasing));
            description += $", random erasing p {erasing.ToString(CultureInfo.InvariantCulture)}";
        }

        return (steps, description);
    }

    public TrainerOptions ToTrainerOptions(ParseResult parse, string? outputDirectory, bool resume, string datasetName, ImageDataset? train = null)
    {
        var schedule = LearningRateSchedule.Parse(parse.GetValue(Schedule)!);
        double lr = parse.GetValue(Lr) ?? (schedule.Kind == ScheduleKind.OneCycle ? 0.2 : 0.1);
        var erasing = Erasing(parse);
        IReadOnlyList<double>? mean = null, std = null;
        IBatchTransform? augmentation = null;
        if (erasing.Steps.Count > 0 && train is not null)
        {
            // The paper's crop + flip, normalisation, then the erasing kinds (after normalising, so "zero" is the mean).
            (mean, std) = train.ComputeMeanStd();
            augmentation = Transforms.Compose(
                new IBatchTransform[] { Transforms.RandomCrop(padding: 4), Transforms.RandomHorizontalFlip(), Transforms.Normalize(mean, std) }.Concat(erasing.Steps).ToArray());
        }

        return new TrainerOptions
        {
            Mean = mean,
            Std = std,
            TrainTransform = augmentation,
            Epochs = parse.GetValue(Epochs),
            BatchSize = parse.GetValue(Batch),
            Sgd = new SgdOptions
            {
                LearningRate = lr, WeightDecay = parse.GetValue(WeightDecay), Nesterov = parse.GetValue(Nesterov), NoDecayOnNormAndBias = parse.GetValue(NoDecayNormBias),
            },
            Schedule = schedule,
            LabelSmoothing = parse.GetValue(LabelSmoothing),
            Prefetch = parse.GetValue(Prefetch),
            Seed = parse.GetValue(Seed),
            OutputDirectory = outputDirectory,
            Resume = resume,
            DatasetName = datasetName,
        };
    }

    /// <summary>Sets the intra-op threads (when given) and tunes the allocator (unless --default-allocator).</summary>
    public void ApplyRuntime(ParseResult parse)
    {
        if (parse.GetValue(Threads) is { } t)
        {
            TorchThreads.SetIntraOp(t);
        }

        if (!parse.GetValue(DefaultAllocator))
        {
            AllocatorTuning.Apply();
        }
    }
}

/// <summary>
/// <c>resnet train MODEL --dataset … --out DIR</c>: trains a registered model with <see cref="Trainer"/>, shows a
/// progress bar (or prints one JSON line per epoch), writes the weights, checkpoint, metrics and curves.
/// </summary>
internal static class TrainCommand
{
    /// <summary>Exit code after Ctrl-C (128 + SIGINT, as shells report it): the checkpoint was written.</summary>
    public const int Interrupted = 130;

    internal static readonly JsonSerializerOptions Line = new(Cli.Json) { WriteIndented = false };

    public static Command Create()
    {
        var name = new Argument<string>("model") { Description = "A registered model (resnet20, resnet56, plain20, resnet18, …)." };
        var recipe = new RecipeOptions(epochs: 15, schedule: "onecycle", weightDecay: 5e-4, nesterov: true);
        var output = new Option<string>("--out") { Description = "Output folder (created if missing).", Required = true };
        var resume = new Option<bool>("--resume") { Description = "Continue from DIR/checkpoint.safetensors (same settings)." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object per epoch instead of the progress bar." };
        var syncBn = new Option<bool>("--sync-bn") { Description = "Under mpiexec: BatchNorm statistics over the global batch (SyncBatchNorm) instead of per process." };
        var checkpointEvery = new Option<int>("--checkpoint-every") { Description = "Also write the checkpoint every N iterations (0: after each epoch only).", DefaultValueFactory = _ => 0 };
        var command = new Command("train", "Train a model on Fashion-MNIST (or an IDX folder): progress, metrics.jsonl, best/final weights, checkpoint, curves.png. " +
                                           "Under 'mpiexec -n N' it trains data-parallel (--batch per process).")
        {
            name, output, resume, json, syncBn, checkpointEvery,
        };
        recipe.AddTo(command);

        command.SetAction(parse => Cli.Guard(() =>
        {
            recipe.Validate(parse);
            recipe.ApplyRuntime(parse);
            var (train, test, datasetName) = recipe.LoadData(parse, parse.GetValue(name)!);
            string dir = parse.GetValue(output)!;
            var options = recipe.ToTrainerOptions(parse, dir, parse.GetValue(resume), datasetName, train) with { CheckpointEverySteps = parse.GetValue(checkpointEvery) };
            // Under an MPI launcher (mpiexec, srun) every process runs this command; MPI is not loaded otherwise.
            var dp = Distributed.DataParallelFromEnvironment(parse.GetValue(syncBn));
            options = options with { Distributed = dp };
            torch_seed(parse.GetValue(recipe.Seed));
            using var model = ResNetFactory.Create(parse.GetValue(name)!, new ResNetOptions { InChannels = train.Channels, NumClasses = train.ClassNames.Count });
            if (dp is { Rank: > 0 })
            {
                // Other ranks train silently; rank 0 reports and writes. (No MPI_Finalize on an error path: it could wait forever.)
                var silent = new Trainer(model, train, test, options).Fit();
                dp.Dispose();
                return silent.Cancelled ? Interrupted : 0;
            }

            var result = Run(model, train, test, options, parse.GetValue(json), $"{model.ModelName} on {datasetName}" + (dp is null ? string.Empty : $" ({dp.WorldSize} processes)"));
            Plots.Curves(result.History, $"{model.ModelName}, {datasetName}", Path.Combine(dir, "curves.png"));
            if (!parse.GetValue(json))
            {
                PrintSummary(result, dir);
            }

            if (dp is not null)
            {
                // Communication against computation, for docs/scale-out.md (stderr: --json keeps stdout to epochs).
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"data-parallel: {dp.WorldSize} processes ({dp.Implementation}), gradient allreduce {dp.AllreduceSeconds:F2} s in {result.GlobalStep} steps " +
                    $"({1000 * dp.AllreduceSeconds / Math.Max(1, result.GlobalStep):F1} ms/step), {dp.GradientBytesPerStep / 1e6:F2} MB of gradient per process per step"));
            }

            dp?.Dispose();
            return result.Cancelled ? Interrupted : 0;
        }));
        return command;
    }

    internal static void torch_seed(int seed) => TorchSharp.torch.manual_seed(seed);

    /// <summary>Runs the trainer with Ctrl-C wired to its cancellation token, rendering progress as a bar or JSON lines.</summary>
    internal static TrainingResult Run(ResNet model, ImageDataset train, ImageDataset test, TrainerOptions options, bool json, string title, string? runName = null)
    {
        using var cts = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            // First Ctrl-C: stop after the current iteration and write the checkpoint. A second one kills the process.
            e.Cancel = !cts.IsCancellationRequested;
            cts.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        try
        {
            var trainer = new Trainer(model, train, test, options);
            if (json)
            {
                return trainer.Fit(new Reporter(p =>
                {
                    if (p.EpochCompleted is { } m)
                    {
                        Console.WriteLine(EpochLine(runName ?? model.ModelName, p.Epochs, m));
                    }
                }), cts.Token);
            }

            TrainingResult? result = null;
            AnsiConsole.Progress()
                .AutoClear(false)
                .HideCompleted(false)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask(Markup.Escape(title), maxValue: 1);
                    string last = string.Empty;
                    result = trainer.Fit(new Reporter(p =>
                    {
                        double done = ((p.Epoch - 1) * (double)p.StepsPerEpoch + p.Step) / ((double)p.Epochs * p.StepsPerEpoch);
                        if (p.EpochCompleted is { } m)
                        {
                            last = $" | epoch {m.Epoch}: train err {100 * m.TrainError:F2} %" + (m.TestTop1 is { } t ? $", test top-1 {100 * t:F2} %" : string.Empty);
                        }

                        task.Value = done;
                        task.Description = Markup.Escape(
                            $"{title} epoch {p.Epoch}/{p.Epochs} step {p.Step}/{p.StepsPerEpoch} loss {p.Loss:F3} lr {p.LearningRate:G3} " +
                            $"{p.ImagesPerSecond:F0} img/s ETA {Eta(p.Eta)}{last}");
                    }), cts.Token);
                });
            return result!;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    /// <summary>One epoch as one JSON line: the metrics.jsonl fields plus the model and the run's epoch count.</summary>
    internal static string EpochLine(string model, int epochs, EpochMetrics m)
    {
        var node = JsonSerializer.SerializeToNode(m, Line)!.AsObject();
        node["model"] = model;
        node["epochs"] = epochs;
        return node.ToJsonString(Line);
    }

    private static string Eta(TimeSpan t) => t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:00}m" : $"{t.Minutes}m{t.Seconds:00}s";

    internal static void PrintSummary(TrainingResult result, string dir)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumns("epoch", "train loss", "train err %", "test loss", "test top-1 %", "test top-5 %", "lr", "s", "img/s");
        foreach (var m in result.History)
        {
            table.AddRow(
                m.Epoch.ToString(CultureInfo.InvariantCulture), m.TrainLoss.ToString("F4", CultureInfo.InvariantCulture), (100 * m.TrainError).ToString("F2", CultureInfo.InvariantCulture),
                m.TestLoss?.ToString("F4", CultureInfo.InvariantCulture) ?? "–", m.TestTop1 is { } t1 ? (100 * t1).ToString("F2", CultureInfo.InvariantCulture) : "–",
                m.TestTop5 is { } t5 ? (100 * t5).ToString("F2", CultureInfo.InvariantCulture) : "–", m.LearningRate.ToString("G3", CultureInfo.InvariantCulture),
                m.Seconds.ToString("F1", CultureInfo.InvariantCulture), m.ImagesPerSecond.ToString("F0", CultureInfo.InvariantCulture));
        }

        AnsiConsole.Write(table);
        if (result.Cancelled)
        {
            AnsiConsole.MarkupLine($"[yellow]Interrupted[/]: checkpoint written; continue with the same command and --resume ({Markup.Escape(Path.Combine(dir, Trainer.CheckpointFileName))}).");
        }
        else if (result.Best is { } best)
        {
            AnsiConsole.MarkupLine($"best test top-1 {100 * best.TestTop1!.Value:F2} % at epoch {best.Epoch}; wrote {Markup.Escape(dir)}/model.safetensors, best.safetensors, metrics.jsonl, curves.png");
        }
    }

    /// <summary>A synchronous IProgress (Progress&lt;T&gt; would post to the thread pool, out of order).</summary>
    internal sealed class Reporter : IProgress<TrainingProgress>
    {
        private readonly Action<TrainingProgress> action;

        public Reporter(Action<TrainingProgress> action) => this.action = action;

        public void Report(TrainingProgress value) => action(value);
    }
}
