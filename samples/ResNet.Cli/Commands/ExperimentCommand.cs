using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Diagnostics;
using System.IO;
using System.Linq;
using ResNetSharp.Cam;
using ResNetSharp.Cli.Experiments;
using ResNetSharp.Images;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNetSharp.Cli.Commands;

/// <summary><c>resnet experiment pointing</c>: does CAM localise? The pointing game on Fashion-MNIST items pasted on a larger canvas.</summary>
internal static class ExperimentCommand
{
    private static readonly string[] FashionClasses =
        { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot" };

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
        var data = new Option<string>("--data") { Description = "Folder with Fashion-MNIST's IDX files.", DefaultValueFactory = _ => "/usr/share/datasets/fashion-mnist" };
        var canvas = new Option<int>("--canvas") { Description = "Side of the empty canvas the 28×28 items are pasted on.", DefaultValueFactory = _ => 96 };
        var minutes = new Option<double>("--minutes") { Description = "Training time budget in minutes (SGD, cosine learning rate over the budget).", DefaultValueFactory = _ => 6 };
        var test = new Option<int>("--test") { Description = "Test images scored (from Fashion-MNIST's test set).", DefaultValueFactory = _ => 1000 };
        var batch = new Option<int>("--batch") { Description = "Training batch size.", DefaultValueFactory = _ => 64 };
        var width = new Option<int>("--width") { Description = "Width of the first stage (doubled per stage).", DefaultValueFactory = _ => 16 };
        var threads = new Option<int>("--threads") { Description = "Intra-op threads.", DefaultValueFactory = _ => 1 };
        var seed = new Option<int>("--seed") { Description = "Seed of the weights, placements and batches.", DefaultValueFactory = _ => 1 };
        var outDir = new Option<string?>("--out") { Description = "Folder for pointing.json and the overlay grid cam-pointing.png." };
        var save = new Option<string?>("--save") { Description = "Also save the trained model (safetensors, with its metadata and class names)." };
        var json = new Option<bool>("--json") { Description = "Print the result as one JSON object." };
        var command = new Command("pointing",
            "Train a small 1-channel ResNet (ImageNet stem, two basic blocks, output stride 8) on Fashion-MNIST items pasted at random places on an empty canvas, then score CAM's " +
            "peak against the item's box (the pointing game, Zhang et al. 2016).")
        {
            data, canvas, minutes, test, batch, width, threads, seed, outDir, save, json,
        };
        command.SetAction(parse => Cli.Guard(() =>
        {
            int s = parse.GetValue(canvas), testCount = parse.GetValue(test), batchSize = parse.GetValue(batch);
            if (s < 32 || testCount < 1 || batchSize < 1)
            {
                throw new ArgumentException("--canvas must be ≥ 32, --test and --batch ≥ 1.");
            }

            TorchThreads.SetIntraOp(parse.GetValue(threads));
            string dir = parse.GetValue(data)!;
            var train = IdxReader.ReadImages(Path.Combine(dir, "train-images-idx3-ubyte.gz"));
            var trainLabels = IdxReader.ReadLabels(Path.Combine(dir, "train-labels-idx1-ubyte.gz"));
            var testSet = IdxReader.ReadImages(Path.Combine(dir, "t10k-images-idx3-ubyte.gz"));
            var testLabels = IdxReader.ReadLabels(Path.Combine(dir, "t10k-labels-idx1-ubyte.gz"));
            var result = Run(train.Pixels, trainLabels, testSet.Pixels, testLabels, s, parse.GetValue(minutes), Math.Min(testCount, testLabels.Length), batchSize,
                parse.GetValue(width), parse.GetValue(seed), parse.GetValue(outDir), parse.GetValue(save), quiet: parse.GetValue(json));
            if (parse.GetValue(json))
            {
                Cli.WriteJson(result);
            }

            return 0;
        }));
        return command;
    }

    internal sealed record PointingResult(
        string Architecture, int Canvas, int ItemSize, int FeatureMapSize, long Parameters, int TrainSteps, long TrainImages, double TrainSeconds,
        double TrainImagesPerSecond, int TestImages, double Accuracy, double PointingTrueClass, double PointingPredictedClass,
        double PointingTightBox, double CentreBaseline, double RandomBaseline, string Command);

    private static PointingResult Run(byte[] train, byte[] trainLabels, byte[] test, byte[] testLabels, int s, double minutes, int testCount, int batchSize,
        int width, int seed, string? outDir, string? savePath, bool quiet)
    {
        const int item = 28;
        void Log(string line)
        {
            if (!quiet)
            {
                Console.WriteLine(line);
            }
        }

        // Two basic blocks behind the ImageNet stem (7×7 stride-2 conv, max pool): output stride 8, so a 12×12 CAM on a
        // 96² canvas; the stem shrinks the canvas before any 3×3 conv runs, which keeps a training step cheap.
        var table = new StageTable
        {
            Block = BlockKind.Basic, Layers = new[] { 1, 1 }, Widths = new[] { width, 2 * width }, Strides = new[] { 1, 2 }, Stem = StemKind.ImageNet, StemWidth = width,
        };
        torch.manual_seed(seed);
        using var model = ResNetFactory.Create(table, new ResNetOptions { NumClasses = 10, InChannels = 1 });
        const double mean = 0.05, std = 0.2;
        model.Metadata = model.Metadata with
        {
            InputSize = s, CropPct = 1.0, Mean = new[] { mean }, Std = new[] { std }, ClassNames = FashionClasses,
            Extra = new Dictionary<string, string> { ["dataset"] = $"fashion-mnist pasted on {s}x{s}" },
        };
        long parameters = model.parameters().Sum(p => p.numel());
        int featureSize = s / 8;
        Log($"pointing game: {item}×{item} Fashion-MNIST items on a {s}×{s} canvas; model {table} ({parameters:N0} parameters), CAM {featureSize}×{featureSize}");

        var random = new Random(seed);
        var input = new float[batchSize * s * s];
        var labels = new long[batchSize];
        void Paste(byte[] source, int index, Span<float> canvas, int x0, int y0)
        {
            canvas.Fill((float)((0 - mean) / std));
            for (int y = 0; y < item; y++)
            {
                for (int x = 0; x < item; x++)
                {
                    canvas[((y0 + y) * s) + x0 + x] = (float)(((source[(index * item * item) + (y * item) + x] / 255.0) - mean) / std);
                }
            }
        }

        using var optimizer = torch.optim.SGD(model.parameters(), 0.05, momentum: 0.9, weight_decay: 5e-4, nesterov: true);
        double budget = minutes * 60;
        var watch = Stopwatch.StartNew();
        int steps = 0;
        double lossSum = 0;
        int lossCount = 0;
        model.train();
        while (watch.Elapsed.TotalSeconds < budget)
        {
            // Cosine decay over the time budget, from 0.05 to 0.
            double lr = 0.05 * 0.5 * (1 + Math.Cos(Math.PI * Math.Min(1, watch.Elapsed.TotalSeconds / budget)));
            foreach (var group in optimizer.ParamGroups)
            {
                group.LearningRate = lr;
            }

            for (int b = 0; b < batchSize; b++)
            {
                int index = random.Next(trainLabels.Length);
                Paste(train, index, input.AsSpan(b * s * s, s * s), random.Next(s - item + 1), random.Next(s - item + 1));
                labels[b] = trainLabels[index];
            }

            using var scope = torch.NewDisposeScope();
            var x = torch.tensor(input, new long[] { batchSize, 1, s, s });
            var y = torch.tensor(labels);
            var loss = torch.nn.functional.cross_entropy(model.call(x), y);
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
            lossSum += loss.item<float>();
            lossCount++;
            steps++;
            if (steps % 50 == 0)
            {
                Log($"  step {steps}: loss {lossSum / lossCount:F3}, lr {lr:F4}, {steps * batchSize / watch.Elapsed.TotalSeconds:F0} images/s");
                lossSum = 0;
                lossCount = 0;
            }
        }

        double trainSeconds = watch.Elapsed.TotalSeconds;
        model.eval();
        if (savePath is not null)
        {
            model.SaveWeights(savePath);
        }

        // The test set: seeded placements, scored with the library's public CAM.
        var placement = new Random(seed + 1000);
        int correct = 0, hitTrue = 0, hitPredicted = 0, hitTight = 0, centre = 0, randomHit = 0;
        var canvasPixels = new float[s * s];
        var examples = new List<(PixelImage Canvas, ActivationMap Map, int X0, int Y0, int Label, int Predicted)>();
        for (int i = 0; i < testCount; i++)
        {
            int x0 = placement.Next(s - item + 1), y0 = placement.Next(s - item + 1);
            Paste(test, i, canvasPixels, x0, y0);
            using var scope = torch.NewDisposeScope();
            var x = torch.tensor(canvasPixels, new long[] { 1, 1, s, s });
            int label = testLabels[i];
            var predictedMap = ClassActivationMaps.Cam(model, x);
            var map = ClassActivationMaps.Cam(model, x, label);
            bool Inside((int X, int Y) p) => p.X >= x0 && p.X < x0 + item && p.Y >= y0 && p.Y < y0 + item;
            var peak = map.Resize(s, s).Peak;
            correct += predictedMap.ClassIndex == label ? 1 : 0;
            hitTrue += Inside(peak) ? 1 : 0;
            hitPredicted += Inside(predictedMap.Resize(s, s).Peak) ? 1 : 0;
            hitTight += InsideTight(test, i, peak.X - x0, peak.Y - y0) ? 1 : 0;
            centre += Inside((s / 2, s / 2)) ? 1 : 0;
            randomHit += Inside((placement.Next(s), placement.Next(s))) ? 1 : 0;
            if (examples.Count < 8)
            {
                var bytes = new byte[s * s];
                for (int y = 0; y < item; y++)
                {
                    for (int xx = 0; xx < item; xx++)
                    {
                        bytes[((y0 + y) * s) + x0 + xx] = test[(i * item * item) + (y * item) + xx];
                    }
                }

                examples.Add((new PixelImage(s, s, 1, bytes), map, x0, y0, label, predictedMap.ClassIndex));
            }
        }

        static bool InsideTight(byte[] images, int index, int x, int y)
        {
            // The item's own ink: the bounding box of its non-zero pixels inside the 28×28 cell.
            int minX = item, minY = item, maxX = -1, maxY = -1;
            for (int yy = 0; yy < item; yy++)
            {
                for (int xx = 0; xx < item; xx++)
                {
                    if (images[(index * item * item) + (yy * item) + xx] > 0)
                    {
                        minX = Math.Min(minX, xx);
                        maxX = Math.Max(maxX, xx);
                        minY = Math.Min(minY, yy);
                        maxY = Math.Max(maxY, yy);
                    }
                }
            }

            return x >= minX && x <= maxX && y >= minY && y <= maxY;
        }

        double n = testCount;
        var result = new PointingResult(
            table.ToString(), s, item, featureSize, parameters, steps, (long)steps * batchSize, Math.Round(trainSeconds, 1),
            Math.Round(steps * batchSize / trainSeconds, 1), testCount, correct / n, hitTrue / n, hitPredicted / n, hitTight / n, centre / n, randomHit / n,
            $"resnet experiment pointing --canvas {s} --minutes {minutes} --test {testCount} --batch {batchSize} --width {width} --seed {seed}");
        Log($"trained {steps} steps ({steps * batchSize:N0} images) in {trainSeconds:F0} s; test accuracy {result.Accuracy:P1}");
        Log($"pointing game on {testCount} test images: CAM peak (true class) inside the item's box {result.PointingTrueClass:P1}, " +
            $"(predicted class) {result.PointingPredictedClass:P1}, inside the item's ink box {result.PointingTightBox:P1}; " +
            $"baselines: canvas centre {result.CentreBaseline:P1}, random point {result.RandomBaseline:P1}");

        if (outDir is not null)
        {
            Directory.CreateDirectory(outDir);
            File.WriteAllText(Path.Combine(outDir, "pointing.json"), System.Text.Json.JsonSerializer.Serialize(result, Cli.Json) + "\n");
            ImageEncoder.WritePng(Path.Combine(outDir, "cam-pointing.png"), Grid(examples, s, item));
            Log($"wrote {Path.Combine(outDir, "pointing.json")} and {Path.Combine(outDir, "cam-pointing.png")}");
        }

        return result;
    }

    /// <summary>Overlays of a few test canvases, ×2, in a 4-column grid: the item's box in green, CAM's peak as a white cross.</summary>
    private static PixelImage Grid(List<(PixelImage Canvas, ActivationMap Map, int X0, int Y0, int Label, int Predicted)> examples, int s, int item)
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
            var (canvas, map, x0, y0, _, _) = examples[e];
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
