using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Diagnostics;
using System.IO;
using System.Linq;
using ResNetSharp.Cam;
using ResNetSharp.Cli.Experiments;
using ResNetSharp.Images;
using ResNetSharp.Training;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNetSharp.Cli.Commands;

/// <summary><c>resnet experiment pointing</c>: does CAM localise? The pointing game on Fashion-MNIST items pasted on a larger canvas.</summary>
internal static class ExperimentCommand
{
    public static Command Create()
    {
        var command = new Command("experiment", "Experiments that check a claim end to end.");
        command.Subcommands.Add(DegradationExperiment.Create());
        command.Subcommands.Add(TransferExperiment.Create());
        command.Subcommands.Add(Pointing());
        return command;
    }

    private static Command Pointing()
    {
        var data = new Option<string>("--data") { Description = "Folder with Fashion-MNIST's IDX files.", DefaultValueFactory = _ => FashionMnist.DefaultFolder };
        var canvas = new Option<int>("--canvas") { Description = "Side of the empty canvas the 28×28 items are pasted on.", DefaultValueFactory = _ => 96 };
        var epochs = new Option<int>("--epochs") { Description = "Passes over the training canvases (SGD, cosine learning rate over the run).", DefaultValueFactory = _ => 1 };
        var subset = new Option<int?>("--subset") { Description = "Train on the first N of Fashion-MNIST's 60,000 training items (default: all)." };
        var test = new Option<int>("--test") { Description = "Test images scored (the first N of Fashion-MNIST's test set).", DefaultValueFactory = _ => 1000 };
        var batch = new Option<int>("--batch") { Description = "Training batch size.", DefaultValueFactory = _ => 64 };
        var width = new Option<int>("--width") { Description = "Width of the first stage (doubled per stage).", DefaultValueFactory = _ => 16 };
        var threads = new Option<int>("--threads") { Description = "Intra-op threads.", DefaultValueFactory = _ => 1 };
        var seed = new Option<int>("--seed") { Description = "Seed of the weights, placements and batches.", DefaultValueFactory = _ => 1 };
        var outDir = new Option<string?>("--out") { Description = "Folder for pointing.json, pointing.md and the overlay grid cam-pointing.png." };
        var save = new Option<string?>("--save") { Description = "Also save the trained model (safetensors, with its metadata and class names)." };
        var json = new Option<bool>("--json") { Description = "Print the result as one JSON object (and no progress)." };
        var command = new Command("pointing",
            "Train a small 1-channel ResNet (ImageNet stem, two basic blocks, output stride 8) with the Trainer on Fashion-MNIST items pasted at seeded random places on " +
            "an empty canvas, then score CAM's peak against the item's box (the pointing game, Zhang et al. 2016).")
        {
            data, canvas, epochs, subset, test, batch, width, threads, seed, outDir, save, json,
        };
        command.SetAction(parse => Cli.Guard(() =>
        {
            var settings = new PointingSettings(parse.GetValue(canvas), parse.GetValue(epochs), parse.GetValue(subset), parse.GetValue(test), parse.GetValue(batch),
                parse.GetValue(width), parse.GetValue(threads), parse.GetValue(seed));
            settings.Validate(); // before any data is read
            string? outFolder = parse.GetValue(outDir), savePath = parse.GetValue(save);
            if (outFolder is not null)
            {
                Directory.CreateDirectory(outFolder);
            }

            if (savePath is not null && !Directory.Exists(Path.GetDirectoryName(Path.GetFullPath(savePath))))
            {
                throw new ArgumentException($"--save {savePath}: the folder does not exist (the model is saved after training, so it is checked first).");
            }

            TorchThreads.SetIntraOp(settings.Threads);
            string dir = parse.GetValue(data)!;
            var items = FashionMnist.Train(dir);
            var train = new PastedCanvasDataset(settings.Subset is { } n ? items.Take(n) : items, settings.Canvas, settings.Seed);
            var testSet = new PastedCanvasDataset(FashionMnist.Test(dir).Take(settings.Test), settings.Canvas, settings.Seed + 1000);
            bool asJson = parse.GetValue(json);
            var result = Run(train, testSet, settings, outFolder, savePath, asJson);
            if (result is null)
            {
                return TrainCommand.Interrupted;
            }

            if (asJson)
            {
                Cli.WriteJson(result);
            }
            else
            {
                AnsiConsole.Write(new Markup(Markup.Escape(ExperimentMarkdown.Render(result))));
            }

            return 0;
        }));
        return command;
    }

    /// <summary>The pointing experiment's settings, as given on the command line.</summary>
    internal sealed record PointingSettings(int Canvas, int Epochs, int? Subset, int Test, int Batch, int Width, int Threads, int Seed)
    {
        /// <summary>Rejects values no run can honour, naming the option.</summary>
        public void Validate()
        {
            if (Canvas < 32)
            {
                throw new ArgumentException($"--canvas must be ≥ 32 (the network's output stride is 8, and the items are 28×28), got {Canvas}.");
            }

            foreach (var (option, value) in new[] { ("--epochs", Epochs), ("--subset", Subset ?? 1), ("--test", Test), ("--batch", Batch), ("--width", Width), ("--threads", Threads) })
            {
                if (value < 1)
                {
                    throw new ArgumentException($"{option} must be ≥ 1, got {value}.");
                }
            }
        }

        /// <summary>The command that reruns these settings.</summary>
        public string Command => $"resnet experiment pointing --canvas {Canvas} --epochs {Epochs}{(Subset is { } n ? $" --subset {n}" : string.Empty)} --test {Test} " +
                                 $"--batch {Batch} --width {Width} --threads {Threads} --seed {Seed}";
    }

    /// <summary>Trains through the <see cref="Trainer"/>, then plays the pointing game on the test canvases; null when training was interrupted.</summary>
    private static PointingResult? Run(PastedCanvasDataset train, PastedCanvasDataset test, PointingSettings settings, string? outDir, string? savePath, bool quiet)
    {
        int s = settings.Canvas;
        // Two basic blocks behind the ImageNet stem (7×7 stride-2 conv, max pool): output stride 8, so a 12×12 CAM on a
        // 96² canvas; the stem shrinks the canvas before any 3×3 conv runs, which keeps a training step cheap.
        var table = new StageTable
        {
            Block = BlockKind.Basic, Layers = new[] { 1, 1 }, Widths = new[] { settings.Width, 2 * settings.Width }, Strides = new[] { 1, 2 }, Stem = StemKind.ImageNet,
            StemWidth = settings.Width,
        };
        torch.manual_seed(settings.Seed);
        using var model = ResNetFactory.Create(table, new ResNetOptions { NumClasses = train.ClassNames.Count, InChannels = 1 });
        long parameters = ModelInspector.CountParameters(model);
        int featureSize = s / 8;

        // The recipe: SGD with Nesterov momentum, cosine-decayed from 0.05 to 0 over the run; the placement is the only augmentation.
        double[] mean = { 0.05 }, std = { 0.2 };
        var options = new TrainerOptions
        {
            Epochs = settings.Epochs,
            BatchSize = settings.Batch,
            Sgd = new SgdOptions { LearningRate = 0.05, Momentum = 0.9, WeightDecay = 5e-4, Nesterov = true },
            Schedule = LearningRateSchedule.Cosine(),
            Seed = settings.Seed,
            Mean = mean,
            Std = std,
            TrainTransform = Transforms.Normalize(mean, std),
            DatasetName = $"fashion-mnist pasted on {s}x{s}",
        };
        var watch = Stopwatch.StartNew();
        var trained = quiet ? new Trainer(model, train, test, options).Fit() : TrainCommand.Run(model, train, test, options, false, $"pointing ({train.Count:N0} canvases)");
        double trainSeconds = watch.Elapsed.TotalSeconds;
        if (trained.Cancelled)
        {
            Console.Error.WriteLine("resnet: interrupted: the pointing game needs the finished model; nothing was scored.");
            return null;
        }

        model.eval();
        if (savePath is not null)
        {
            model.SaveWeights(savePath);
        }

        // The pointing game on the test canvases, with the library's public CAM.
        var randomPoint = new Random(settings.Seed + 2000);
        int correct = 0, hitTrue = 0, hitPredicted = 0, hitTight = 0, centre = 0, randomHit = 0;
        var canvasPixels = new float[s * s];
        var input = new float[s * s];
        var examples = new List<(PixelImage Canvas, ActivationMap Map, int X0, int Y0)>();
        for (int i = 0; i < test.Count; i++)
        {
            test.ReadImage(i, canvasPixels);
            for (int p = 0; p < input.Length; p++)
            {
                input[p] = (float)((canvasPixels[p] - mean[0]) / std[0]);
            }

            var (x0, y0, w, h) = test.Box(i);
            using var scope = torch.NewDisposeScope();
            var x = torch.tensor(input, new long[] { 1, 1, s, s });
            int label = test.GetLabel(i);
            var predictedMap = ClassActivationMaps.Cam(model, x);
            var map = ClassActivationMaps.Cam(model, x, label);
            bool Inside((int X, int Y) p) => p.X >= x0 && p.X < x0 + w && p.Y >= y0 && p.Y < y0 + h;
            var peak = map.Resize(s, s).Peak;
            correct += predictedMap.ClassIndex == label ? 1 : 0;
            hitTrue += Inside(peak) ? 1 : 0;
            hitPredicted += Inside(predictedMap.Resize(s, s).Peak) ? 1 : 0;
            hitTight += InkBox(canvasPixels, s, x0, y0, w, h) is var (minX, minY, maxX, maxY) && peak.X >= minX && peak.X <= maxX && peak.Y >= minY && peak.Y <= maxY ? 1 : 0;
            centre += Inside((s / 2, s / 2)) ? 1 : 0;
            randomHit += Inside((randomPoint.Next(s), randomPoint.Next(s))) ? 1 : 0;
            if (examples.Count < 8)
            {
                var bytes = canvasPixels.Select(v => (byte)Math.Round(v * 255)).ToArray();
                examples.Add((new PixelImage(s, s, 1, bytes), map, x0, y0));
            }
        }

        double n = test.Count;
        long trainImages = (long)trained.History.Count * train.Count;
        var result = new PointingResult(
            table.ToString(), s, test.Box(0).Width, featureSize, parameters, settings.Epochs, settings.Batch, train.Count, trained.GlobalStep, trainImages,
            Math.Round(trainSeconds, 1), Math.Round(trainImages / trainSeconds, 1), test.Count, correct / n, hitTrue / n, hitPredicted / n, hitTight / n, centre / n,
            randomHit / n, settings.Command, MachineInfo.Current(), trained.History);
        if (outDir is not null)
        {
            ExperimentResults.WriteResults(outDir, result);
            ImageEncoder.WritePng(Path.Combine(outDir, "cam-pointing.png"), Grid(examples, s, test.Box(0).Width));
        }

        return result;
    }

    /// <summary>The item's own ink: the bounding box of the non-zero pixels inside its box on the canvas (empty, so nothing is inside, when it has none).</summary>
    private static (int MinX, int MinY, int MaxX, int MaxY) InkBox(float[] canvas, int s, int x0, int y0, int w, int h)
    {
        int minX = int.MaxValue, minY = int.MaxValue, maxX = -1, maxY = -1;
        for (int y = y0; y < y0 + h; y++)
        {
            for (int x = x0; x < x0 + w; x++)
            {
                if (canvas[(y * s) + x] > 0)
                {
                    minX = Math.Min(minX, x);
                    maxX = Math.Max(maxX, x);
                    minY = Math.Min(minY, y);
                    maxY = Math.Max(maxY, y);
                }
            }
        }

        return (minX, minY, maxX, maxY);
    }

    /// <summary>Overlays of a few test canvases, ×2, in a 4-column grid: the item's box in green, CAM's peak as a white cross.</summary>
    private static PixelImage Grid(List<(PixelImage Canvas, ActivationMap Map, int X0, int Y0)> examples, int s, int item)
    {
        const int zoom = 2, gap = 6, columns = 4;
        int cell = s * zoom, rows = (examples.Count + columns - 1) / columns;
        int width = (columns * cell) + ((columns + 1) * gap), height = (rows * cell) + ((rows + 1) * gap);
        var pixels = Enumerable.Repeat((byte)255, width * height * 3).ToArray();
        void Set(int x, int y, byte r, byte g, byte b)
        {
            if (x >= 0 && y >= 0 && x < width && y < height)
            {
                int o = ((y * width) + x) * 3;
                pixels[o] = r;
                pixels[o + 1] = g;
                pixels[o + 2] = b;
            }
        }

        for (int e = 0; e < examples.Count; e++)
        {
            var (canvas, map, x0, y0) = examples[e];
            var overlay = HeatmapOverlay.Render(canvas, map);
            int ox = gap + ((e % columns) * (cell + gap)), oy = gap + ((e / columns) * (cell + gap));
            for (int y = 0; y < cell; y++)
            {
                for (int x = 0; x < cell; x++)
                {
                    int i = (((y / zoom) * s) + (x / zoom)) * 3;
                    Set(ox + x, oy + y, overlay.Pixels[i], overlay.Pixels[i + 1], overlay.Pixels[i + 2]);
                }
            }

            for (int t = 0; t < item * zoom; t++)
            {
                Set(ox + (x0 * zoom) + t, oy + (y0 * zoom), 0, 255, 0);
                Set(ox + (x0 * zoom) + t, oy + ((y0 + item) * zoom) - 1, 0, 255, 0);
                Set(ox + (x0 * zoom), oy + (y0 * zoom) + t, 0, 255, 0);
                Set(ox + ((x0 + item) * zoom) - 1, oy + (y0 * zoom) + t, 0, 255, 0);
            }

            var (px, py) = map.Resize(s, s).Peak;
            for (int t = -5; t <= 5; t++)
            {
                Set(ox + (px * zoom) + t, oy + (py * zoom), 255, 255, 255);
                Set(ox + (px * zoom), oy + (py * zoom) + t, 255, 255, 255);
            }
        }

        return new PixelImage(width, height, 3, pixels);
    }
}
