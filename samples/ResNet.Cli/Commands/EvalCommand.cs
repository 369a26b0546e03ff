using System;
using System.CommandLine;
using System.Globalization;
using System.IO;
using System.Linq;
using ResNetSharp.OnnxRuntime;
using ResNetSharp.Training;
using TorchSharp;
using Spectre.Console;

namespace ResNetSharp.Cli.Commands;

/// <summary>
/// <c>resnet eval [MODEL] --weights FILE --dataset …</c>: top-1/top-5, loss, per-class accuracy and the confusion matrix
/// of saved weights on a test set. The model comes from <see cref="ResNetFactory.Load"/>: without MODEL the weights describe it.
/// </summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var name = new Argument<string?>("model") { Description = "A registered model; omit to rebuild it from the file's metadata.", Arity = ArgumentArity.ZeroOrOne };
        var weights = new Option<string>("--weights")
        {
            Description = "The weights: a safetensors file saved by ResNetSharp (e.g. DIR/best.safetensors from 'resnet train'), an .onnx graph or a registered " +
                          "weights name; with MODEL also a file without metadata (.pth, TorchSharp).",
            Required = true,
        };
        var dataset = new Option<string>("--dataset") { Description = "fashion-mnist, a folder of MNIST-format IDX files, or an image folder (train/<class>/…, test/<class>/… or val/).", DefaultValueFactory = _ => "fashion-mnist" };
        var subset = new Option<int?>("--subset") { Description = "Evaluate on the first N test images." };
        var batch = new Option<int>("--batch") { Description = "Images per batch.", DefaultValueFactory = _ => 500 };
        var threads = new Option<int?>("--threads") { Description = "Intra-op threads (default: libtorch's choice)." };
        var confusion = new Option<string?>("--confusion") { Description = "Also draw the confusion matrix into this PNG." };
        var int8 = new Option<bool>("--int8")
        {
            Description = "Also evaluate the int8 ONNX Runtime copy (ForInference calibrated by --calibrate): its top-1 and how often its top-1 class equals the float model's.",
        };
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var command = new Command("eval", "Evaluate weights on a test set: top-1, top-5, loss, per-class accuracy, confusion matrix.")
        {
            name, weights, dataset, subset, batch, threads, confusion, int8, CalibrationSource.Calibrate, CalibrationSource.Images, CalibrationSource.Method, json,
        };
        command.SetAction(parse => Cli.Guard(() =>
        {
            if (parse.GetValue(threads) is { } t)
            {
                TorchThreads.SetIntraOp(t);
            }

            // The model first when the file describes it (its input size and channels pick the data); a named model is built for the data.
            string path = parse.GetValue(weights)!;
            string? modelName = parse.GetValue(name);
            ResNet? described = modelName is null ? ResNetFactory.Load(path) : null;
            int size = described?.Metadata.InputSize ?? (ResNetFactory.GetTable(modelName!).Stem != StemKind.Cifar ? 224 : 32);
            ImageDataset test;
            string datasetName;
            try
            {
                (_, test, datasetName) = TrainingData.Load(parse.GetValue(dataset)!, null, parse.GetValue(subset), size, described?.Metadata.InChannels ?? 3);
            }
            catch
            {
                described?.Dispose();
                throw;
            }

            using (var model = described ?? ResNetFactory.Load(path, modelName, new ResNetOptions { InChannels = test.Channels, NumClasses = test.ClassNames.Count }))
            {
                if (model.NumClasses != test.ClassNames.Count || model.Options.InChannels != test.Channels)
                {
                    throw new ArgumentException(
                        $"{path}: the model has {model.NumClasses} classes and {model.Options.InChannels} input channels; {datasetName} has {test.ClassNames.Count} and {test.Channels}.");
                }

                // The preprocessing the weights carry (or, for a file without metadata, the named architecture's defaults).
                var transform = CalibrationSource.IdxTransform(model.Metadata, test.Height, "resnet eval");
                var loader = new DataLoader(test, new DataLoaderOptions { BatchSize = parse.GetValue(batch), Shuffle = false, Transform = transform });
                var result = Evaluator.Evaluate(model, loader);
                Int8Result? quantised = null;
                if (parse.GetValue(int8))
                {
                    string spec = parse.GetValue(CalibrationSource.Calibrate)
                        ?? throw new ArgumentException("--int8 needs --calibrate fashion-mnist|FOLDER (the images that set activation ranges).");
                    var calibration = CalibrationSource.Load(spec, parse.GetValue(CalibrationSource.Images), parse.GetValue(CalibrationSource.Method)!, model);
                    quantised = EvaluateInt8(model, loader, calibration, parse.GetValue(threads) ?? 0);
                }

                if (parse.GetValue(confusion) is { } png)
                {
                    Plots.Confusion(result, $"{model.ModelName} on {datasetName}", png);
                }

                if (parse.GetValue(json))
                {
                    Cli.WriteJson(new
                    {
                        model = model.ModelName,
                        weights = path,
                        dataset = datasetName,
                        count = result.Count,
                        loss = result.Loss,
                        top1 = result.Top1,
                        top5 = result.Top5,
                        perClass = result.ClassNames.Select((c, i) => new { name = c, accuracy = result.PerClassAccuracy[i], count = result.Confusion[i].Sum() }),
                        confusion = result.Confusion,
                        int8 = quantised,
                    });
                }
                else
                {
                    Print(result, model.ModelName, datasetName);
                    if (quantised is { } q)
                    {
                        Console.WriteLine(FormattableString.Invariant(
                            $"int8 (ONNX Runtime QDQ, calibration {q.Calibration}): top-1 {100 * q.Top1:F2} % (float {100 * result.Top1:F2} %), same top-1 class as float on {100 * q.Agreement:F2} % of {q.Count:N0} images"));
                    }
                }
            }

            return 0;
        }));
        return command;
    }

    /// <summary>What the int8 copy scores, and how often it picks the float model's class.</summary>
    internal sealed record Int8Result(int Count, double Top1, double Agreement, string Calibration);

    private static Int8Result EvaluateInt8(ResNet model, DataLoader loader, Calibration calibration, int threads)
    {
        using var quantised = model.ForInference(new ResNetSharp.OnnxRuntime.InferenceOptions
        {
            Calibration = calibration, IntraOpThreads = threads, Device = TorchSharp.torch.CPU,
        });
        model.eval();
        long count = 0, correct = 0, agree = 0;
        using var noGrad = torch.no_grad();
        foreach (var batch in loader.GetBatches(0, 0))
        {
            using (batch)
            using (var scope = torch.NewDisposeScope())
            {
                var reference = model.call(batch.Images).argmax(1);
                var predicted = quantised.Forward(batch.Images.contiguous()).argmax(1);
                correct += predicted.eq(batch.Labels).sum().item<long>();
                agree += predicted.eq(reference).sum().item<long>();
                count += batch.Labels.shape[0];
            }
        }

        return new Int8Result((int)count, (double)correct / count, (double)agree / count, calibration.Recipe);
    }

    private static void Print(EvaluationResult result, string model, string dataset)
    {
        AnsiConsole.MarkupLine(Markup.Escape($"{model} on {dataset} ({result.Count:N0} images): top-1 {100 * result.Top1:F2} %, top-5 {100 * result.Top5:F2} %, loss {result.Loss:F4}"));
        var perClass = new Table().Border(TableBorder.Rounded).AddColumns("class", "images", "accuracy %");
        for (int i = 0; i < result.ClassNames.Count; i++)
        {
            perClass.AddRow(Markup.Escape(result.ClassNames[i]), result.Confusion[i].Sum().ToString(CultureInfo.InvariantCulture),
                double.IsNaN(result.PerClassAccuracy[i]) ? "–" : (100 * result.PerClassAccuracy[i]).ToString("F2", CultureInfo.InvariantCulture));
        }

        AnsiConsole.Write(perClass);
        var matrix = new Table().Border(TableBorder.Rounded).Title("confusion (rows: true, columns: predicted)");
        matrix.AddColumn("true \\ predicted");
        for (int p = 0; p < result.ClassNames.Count; p++)
        {
            matrix.AddColumn(new TableColumn(p.ToString(CultureInfo.InvariantCulture)).RightAligned());
        }

        for (int t = 0; t < result.ClassNames.Count; t++)
        {
            var cells = new[] { Markup.Escape($"{t} {result.ClassNames[t]}") }
                .Concat(result.Confusion[t].Select((c, p) => p == t ? $"[bold]{c}[/]" : c.ToString(CultureInfo.InvariantCulture)));
            matrix.AddRow(cells.ToArray());
        }

        AnsiConsole.Write(matrix);
    }
}
