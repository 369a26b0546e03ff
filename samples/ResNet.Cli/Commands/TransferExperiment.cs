using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using ResNetSharp.Training;
using Spectre.Console;

namespace ResNetSharp.Cli.Commands;

/// <summary>
/// <c>resnet experiment transfer</c>: ML.NET's ImageNet ResNet-18 (imported from ONNX) on Fashion-MNIST as (a) a
/// linear probe (backbone frozen, new 10-class head), (b) a short fine-tune of the whole network with per-stage learning
/// rates, (c) the same architecture trained from scratch with the same budget, data and preprocessing. All three go
/// through <see cref="Trainer"/>; results.json and results.md are written.
/// </summary>
/// <remarks>
/// Grey images are repeated to three identical channels and then get the backbone's own preprocessing (resize, BGR,
/// 0 … 255 scale, ML.NET's per-pixel mean image). This is exact: a grey image decoded as RGB is exactly that.
/// <c>AdaptInputChannels(1)</c> is not: summing the RGB kernels is exact only when every channel has the same mean, and
/// here the mean differs by channel (B 103, G 116, R 123 on average, per pixel in the mean image), so the summed stem
/// would lose the term Σ_c W_c ∗ (mean_c − mean) that the RGB model sees.
/// </remarks>
internal static class TransferExperiment
{
    // Defaults: the budget of docs/lab/transfer-2026-11.md, sized for a shared 2-core CPU (about 15 minutes in all); every one can be
    // overridden on the command line. One rate for all three runs (the probe's and the fine-tune's head, the scratch
    // model): 0.01. The imported CNTK features are large, and at 0.1 the probe's training loss rose to 38–56 in its first
    // epoch (1,000 and 5,000 images), against 2.4–3.1 at 0.01.
    private const int DefaultEpochs = 2;
    private const int DefaultBatch = 64;
    private const int DefaultInputSize = 64;
    private const int DefaultSubset = 5000;
    private const int DefaultTestSubset = 2000;
    private const double DefaultLearningRate = 0.01;

    /// <summary>Fine-tuning: each stage's rate is this × the next stage's, from the head (1) down (timm/BEiT-style layer decay).</summary>
    private const double LayerDecay = 0.5;

    /// <summary><c>resnet experiment transfer</c>: linear probe, fine-tune and from-scratch runs of ML.NET's pretrained ResNet-18 on Fashion-MNIST.</summary>
    public static Command Create()
    {
        var recipe = new RecipeOptions(epochs: DefaultEpochs, schedule: "cosine", weightDecay: 1e-4, nesterov: false);
        var output = new Option<string>("--out") { Description = "Output folder for results.json and results.md.", Required = true };
        var json = new Option<bool>("--json") { Description = "Print one JSON object per epoch (with the run's name) instead of progress bars." };
        var command = new Command("transfer",
            "ML.NET's ImageNet ResNet-18 on Fashion-MNIST as a linear probe, a fine-tune and the same network from scratch " +
            $"(defaults --subset {DefaultSubset} --test-subset {DefaultTestSubset} --epochs {DefaultEpochs} --batch {DefaultBatch} --input-size {DefaultInputSize} --schedule cosine --lr {DefaultLearningRate}).")
        {
            output, json,
        };
        recipe.AddTo(command);

        command.SetAction(parse => Cli.Guard(() => Run(parse, recipe, parse.GetValue(output)!, parse.GetValue(json))));
        return command;
    }

    public static int Run(ParseResult parse, RecipeOptions recipe, string dir, bool asJson)
    {
        int epochs = Given(parse, recipe.Epochs) ? parse.GetValue(recipe.Epochs) : DefaultEpochs;
        int inputSize = parse.GetValue(recipe.InputSize) ?? DefaultInputSize;
        int subset = parse.GetValue(recipe.Subset) ?? DefaultSubset;
        int testSubset = parse.GetValue(recipe.TestSubset) ?? Math.Min(subset, DefaultTestSubset);
        var schedule = LearningRateSchedule.Parse(Given(parse, recipe.Schedule) ? parse.GetValue(recipe.Schedule)! : "cosine");
        double lr = parse.GetValue(recipe.Lr) ?? DefaultLearningRate;
        int batch = Given(parse, recipe.Batch) ? parse.GetValue(recipe.Batch) : DefaultBatch;
        int seed = parse.GetValue(recipe.Seed);
        if (inputSize < 32)
        {
            throw new ArgumentException($"--input-size must be ≥ 32 for the ImageNet backbone (it downsamples 32×), got {inputSize}.");
        }

        // Every recipe option reaches the trainer (tested): --cutout and --random-erasing after the backbone's
        // normalisation, --no-decay-norm-bias and --prefetch in the options below, --grey for image folders.
        var erasing = recipe.Erasing(parse);
        recipe.ApplyRuntime(parse);
        var (data, dataTest, datasetName) = TrainingData.Load(parse.GetValue(recipe.Dataset)!, subset, testSubset, inputSize, parse.GetValue(recipe.Grey) ? 1 : 3);
        if (data.Channels is not (1 or 3))
        {
            throw new ArgumentException($"experiment transfer needs grey or RGB images for its RGB backbone; {datasetName} has {data.Channels} channels.");
        }

        // The backbone first: a missing model file fails before any training.
        using var backbone = PretrainedBackbones.MlNetResNet18();
        bool grey = data.Channels == 1;
        var train = grey ? data.RepeatChannels(3) : data;
        var test = grey ? dataTest.RepeatChannels(3) : dataTest;
        var classNames = train.ClassNames;
        var backboneMetadata = backbone.Metadata;
        var testTransform = Transforms.Pretrained(backboneMetadata, inputSize);
        var trainTransform = Transforms.Compose(new[] { Transforms.RandomHorizontalFlip(), testTransform }.Concat(erasing.Steps).ToArray());
        var baseOptions = new TrainerOptions
        {
            Epochs = epochs,
            BatchSize = batch,
            Sgd = new SgdOptions
            {
                LearningRate = lr, WeightDecay = parse.GetValue(recipe.WeightDecay), Nesterov = parse.GetValue(recipe.Nesterov),
                NoDecayOnNormAndBias = parse.GetValue(recipe.NoDecayNormBias),
            },
            Schedule = schedule,
            LabelSmoothing = parse.GetValue(recipe.LabelSmoothing),
            Prefetch = parse.GetValue(recipe.Prefetch),
            Seed = seed,
            Mean = backboneMetadata.Mean,
            Std = backboneMetadata.Std,
            TrainTransform = trainTransform,
            TestTransform = testTransform,
            DatasetName = datasetName,
        };

        int stages = backbone.Table.Layers.Count;
        var fineTuneScales = new Dictionary<string, double>(StringComparer.Ordinal) { ["fc"] = 1.0 };
        for (int s = stages; s >= 1; s--)
        {
            fineTuneScales[$"layer{s}"] = Math.Pow(LayerDecay, stages - s + 1);
        }

        fineTuneScales["stem"] = fineTuneScales["layer1"];
        var runs = new List<TransferRunResult>();
        bool cancelled = false;
        foreach (string mode in new[] { "probe", "finetune", "scratch" })
        {
            TrainCommand.torch_seed(seed);
            ResNet model;
            TrainerOptions options;
            string description;
            if (mode == "scratch")
            {
                // The same architecture from its metadata, freshly initialised (torchvision's ResNet init).
                model = backboneMetadata.CreateModel();
                model.ResetClassifier(classNames.Count, classNames);
                options = baseOptions;
                description = $"same architecture, random init, all parameters trained at lr {Fmt(lr)}";
            }
            else
            {
                model = mode == "probe" ? backbone : PretrainedBackbones.MlNetResNet18();
                model.ResetClassifier(classNames.Count, classNames);
                if (mode == "probe")
                {
                    model.FreezeStages(stages + 1);
                    options = baseOptions;
                    description = $"backbone frozen (FreezeStages({stages + 1}): weights and BatchNorm statistics), new fc trained at lr {Fmt(lr)}";
                }
                else
                {
                    model.Unfreeze();
                    options = baseOptions with { Sgd = baseOptions.Sgd with { LearningRateScales = fineTuneScales } };
                    description = "whole network; per-part lr " +
                                  string.Join(", ", model.ParameterGroups().Select(g => $"{g.Name} {Fmt(lr * fineTuneScales[g.Name])}"));
                }
            }

            try
            {
                var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                var wall = Stopwatch.StartNew();
                var result = TrainCommand.Run(model, train, test, options, asJson, $"{mode} ({model.ModelName}) on {datasetName}", mode);
                wall.Stop();
                double cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
                long trainable = model.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
                var history = result.History;
                runs.Add(new TransferRunResult(mode, description, trainable, ModelInspector.CountParameters(model), history.Count, history.Count > 0 ? history[^1].TestTop1 : null,
                    ExperimentResults.BestTestTop1(history), history.Count > 0 ? history[^1].TrainError : null, wall.Elapsed.TotalSeconds / 60, cpuSeconds / 60, history));
                if (result.Cancelled)
                {
                    cancelled = true;
                    break;
                }
            }
            finally
            {
                if (!ReferenceEquals(model, backbone))
                {
                    model.Dispose();
                }
            }
        }

        string input = grey ? $"grey repeated to 3 channels; bilinear resize {data.Height} → {inputSize}" : $"RGB; bilinear resize {data.Height} → {inputSize}";
        var report = Report(runs, baseOptions, backbone, datasetName, train.Count, test.Count, inputSize, input, "random horizontal flip" + erasing.Description, cancelled);
        string markdown = ExperimentResults.WriteResults(dir, report);
        if (!asJson)
        {
            AnsiConsole.Write(new Markup(Markup.Escape(markdown)));
        }

        return cancelled ? TrainCommand.Interrupted : 0;
    }

    private static bool Given(ParseResult parse, Option option) => parse.GetResult(option) is { Implicit: false };

    private static string Fmt(double v) => v.ToString("G4", CultureInfo.InvariantCulture);

    private static TransferResult Report(List<TransferRunResult> runs, TrainerOptions o, ResNet backbone, string dataset, int trainCount, int testCount, int inputSize,
        string input, string augmentation, bool cancelled)
    {
        var m = backbone.Metadata;
        var described = new TransferBackbone(
            backbone.ModelName,
            m.Extra is { } e && e.TryGetValue("source", out var src) ? src : "ML.NET ResNet-18",
            $"[{string.Join(", ", backbone.Table.Layers)}] basic blocks",
            $"{input}; ×{m.PixelMax:G}, RGB → {m.ChannelOrder.ToString().ToUpperInvariant()}, " +
            (m.MeanImage is null ? "minus the per-channel mean" : "minus ML.NET's per-pixel mean image (ResNetPreprocess.onnx) area-resized to the input size") +
            (m.Std.All(v => v == 1) ? "; no std division" : "; divided by the std"));
        string recipe = $"SGD lr {Fmt(o.Sgd.LearningRate)} momentum {Fmt(o.Sgd.Momentum)}{(o.Sgd.Nesterov ? " nesterov" : string.Empty)}, weight decay {Fmt(o.Sgd.WeightDecay)}" +
                        $"{(o.Sgd.NoDecayOnNormAndBias ? " (none on BatchNorm weights and biases)" : string.Empty)}, {o.Schedule} per iteration, {augmentation}, " +
                        $"{(o.LabelSmoothing > 0 ? $"label smoothing {Fmt(o.LabelSmoothing)}, " : string.Empty)}evaluation after every epoch";
        return new TransferResult("transfer", described, ExperimentResults.CommandLine(), dataset, trainCount, testCount, inputSize, o.Epochs, o.BatchSize, recipe,
            o.Prefetch, o.Seed, MachineInfo.Current(), !cancelled, runs);
    }
}
