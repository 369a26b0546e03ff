using System;
using System.CommandLine;
using System.Linq;

namespace ResNetSharp.Cli.Commands;

/// <summary><c>resnet weights FILE [--model NAME] [--classes N] [--json]</c>: inspect a weight file and check it against a model.</summary>
internal static class WeightsCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "A weight file: PyTorch .pth (torch.save), safetensors or TorchSharp (Module.save)." };
        var model = new Option<string?>("--model") { Description = "Check the file against this registered model (see 'resnet list')." };
        var classes = new Option<int?>("--classes") { Description = "Classifier outputs of that model (default: the model's, 1000 for ImageNet)." };
        var skipClassifier = new Option<bool>("--skip-classifier") { Description = "Check as LoadOptions.SkipClassifier would load (ignore fc.weight/fc.bias)." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var command = new Command("weights", "Inspect a weight file (keys, shapes, dtypes, size) and check it against a model; exit 3 when it would not load strictly.")
        {
            file, model, classes, skipClassifier, json,
        };
        command.SetAction(parse => Cli.Guard(() =>
        {
            string path = parse.GetValue(file)!;
            var weights = WeightFile.Read(path);
            string? modelName = parse.GetValue(model);
            WeightCheck? check = null;
            if (modelName is not null)
            {
                using var net = ResNetFactory.Create(modelName, new ResNetOptions { NumClasses = parse.GetValue(classes) });
                check = net.CheckWeights(weights, new LoadOptions { SkipClassifier = parse.GetValue(skipClassifier) });
            }

            if (parse.GetValue(json))
            {
                Cli.WriteJson(new
                {
                    file = path,
                    format = weights.Format.ToString(),
                    tensors = weights.Tensors.Count,
                    elements = weights.TotalElements,
                    bytes = weights.TotalBytes,
                    dtypes = weights.Tensors.GroupBy(t => t.DType.ToSafeTensorsName()).ToDictionary(g => g.Key, g => g.Count()),
                    metadata = weights.Metadata.Count > 0 ? weights.Metadata : null,
                    keys = weights.Tensors.Select(t => new { name = t.Name, dtype = t.DType.ToSafeTensorsName(), shape = t.Shape }),
                    check = check is null ? null : new
                    {
                        model = modelName,
                        loadable = check.IsLoadable,
                        matched = check.Matched.Count,
                        missing = check.Missing,
                        unexpected = check.Unexpected,
                        mismatched = check.MismatchDetails.Select(m => new { key = m.Key, modelShape = m.ModelShape, fileShape = m.FileShape }),
                        skipped = check.Skipped,
                    },
                });
            }
            else
            {
                Console.WriteLine($"{path}: {weights.Format}, {weights.Tensors.Count} tensors, {weights.TotalElements:N0} values, {weights.TotalBytes:N0} bytes " +
                                  $"({string.Join(", ", weights.Tensors.GroupBy(t => t.DType).Select(g => $"{g.Count()} {g.Key.ToSafeTensorsName()}"))})");
                foreach (var (key, value) in weights.Metadata)
                {
                    Console.WriteLine($"  metadata {key} = {value}");
                }

                int width = Math.Min(60, weights.Tensors.Select(t => t.Name.Length).DefaultIfEmpty(0).Max());
                foreach (var t in weights.Tensors)
                {
                    Console.WriteLine($"  {t.Name.PadRight(width)}  {t.DType.ToSafeTensorsName(),-4}  [{string.Join(", ", t.Shape)}]");
                }

                if (check is not null)
                {
                    Console.WriteLine($"against {modelName}: {check.Matched.Count} matched, {check.Missing.Count} missing, {check.Unexpected.Count} unexpected, " +
                                      $"{check.Mismatched.Count} mis-shaped, {check.Skipped.Count} skipped");
                    foreach (var k in check.Missing)
                    {
                        Console.WriteLine($"  missing     {k}");
                    }

                    foreach (var k in check.Unexpected)
                    {
                        Console.WriteLine($"  unexpected  {k}");
                    }

                    foreach (var m in check.MismatchDetails)
                    {
                        Console.WriteLine($"  mis-shaped  {m}");
                    }

                    Console.WriteLine(check.IsLoadable
                        ? "loads strictly"
                        : "would NOT load strictly" + (check.Mismatched.Any(LoadOptions.ClassifierKeys.Contains) ? " (try --classes N or --skip-classifier)" : string.Empty));
                }
            }

            return check is { IsLoadable: false } ? 3 : 0;
        }));
        return command;
    }
}
