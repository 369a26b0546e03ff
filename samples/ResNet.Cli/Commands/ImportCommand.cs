using System;
using System.CommandLine;
using System.Linq;

namespace ResNetSharp.Cli.Commands;

/// <summary>
/// <c>resnet import FILE.onnx --out FILE.safetensors [--classes N] [--json]</c>: recognise the ResNet in an ONNX graph,
/// print its stage table and write its weights with the architecture and preprocessing in the safetensors metadata.
/// </summary>
internal static class ImportCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "An ONNX ResNet (PyTorch, CNTK, ResNetSharp or another exporter; opset 7 or newer)." };
        var output = new Option<string>("--out") { Description = "The safetensors file to write (atomically).", Required = true };
        var classes = new Option<int?>("--classes") { Description = "Classifier outputs to build when the graph has no classifier (a featurizer). Default 1000." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var command = new Command("import", "Import an ONNX ResNet: print the recognised stage table and write the weights with their architecture " +
                                            "and preprocessing (ResNetFactory.FromWeights rebuilds the model from the file alone).")
        {
            file, output, classes, json,
        };
        command.SetAction(parse => Cli.Guard(() =>
        {
            string path = parse.GetValue(file)!;
            string outPath = parse.GetValue(output)!;
            using var result = OnnxImporter.Import(path, new OnnxImportOptions { NumClassesIfNoHead = parse.GetValue(classes) ?? 1000 });
            var model = result.Model;
            model.SaveWeights(outPath);
            var t = result.Table;
            var meta = model.Metadata;
            long parameters = model.parameters().Sum(p => p.numel());
            if (parse.GetValue(json))
            {
                Cli.WriteJson(new
                {
                    file = path,
                    @out = outPath,
                    producer = result.Producer,
                    opset = result.Opset,
                    architecture = result.Architecture,
                    table = new
                    {
                        block = t.Block.ToString(),
                        layers = t.Layers,
                        widths = t.Widths,
                        strides = t.Strides,
                        stem = t.Stem.ToString(),
                        stemWidth = t.StemWidth,
                        groups = t.Groups,
                        widthPerGroup = t.WidthPerGroup,
                        stridePlacement = t.StridePlacement.ToString(),
                        shortcut = t.Shortcut.ToString(),
                        preActivation = t.PreActivation,
                    },
                    replaceStrideWithDilation = model.Options.ReplaceStrideWithDilation,
                    outputStride = model.OutputStride,
                    head = result.Head.ToString(),
                    hasClassifier = result.HasClassifier,
                    numClasses = model.NumClasses,
                    batchNormFolded = result.BatchNormFolded,
                    inputSize = result.InputSize,
                    inChannels = model.Options.InChannels,
                    blocks = result.Blocks,
                    projections = result.Projections,
                    parameters,
                    metadata = meta.ToDictionary(),
                });
                return 0;
            }

            Console.WriteLine($"{path}: {(result.Producer.Length > 0 ? result.Producer : "unknown producer")}, opset {result.Opset}");
            Console.WriteLine($"  architecture  {result.Architecture ?? "custom"}: {t}");
            Console.WriteLine($"  stem          {(t.Stem == StemKind.ImageNet ? $"7×7/2 conv → {t.StemWidth}, BN, ReLU, 3×3/2 max pool" : $"3×3/1 conv → {t.StemWidth}, BN, ReLU")}");
            Console.WriteLine($"  {"stage",-7} {"paper",-8} {"blocks",6} {"width",6} {"stride",6} {"out",6}");
            for (int s = 0; s < t.StageCount; s++)
            {
                Console.WriteLine($"  {$"layer{s + 1}",-7} {$"conv{s + 2}_x",-8} {t.Layers[s],6} {t.Widths[s],6} {t.Strides[s],6} {t.Widths[s] * t.Expansion,6}");
            }

            if (model.Options.ReplaceStrideWithDilation is { } dilate)
            {
                Console.WriteLine($"  dilation      replace stride with dilation [{string.Join(", ", dilate)}] (output stride {model.OutputStride})");
            }

            Console.WriteLine($"  shortcuts     option {t.Shortcut} ({result.Projections} projections over {result.Blocks} blocks)");
            Console.WriteLine($"  head          {result.Head}" + (result.HasClassifier ? $" ({model.NumClasses} classes)" : $" (no classifier in the graph; fresh {model.NumClasses}-way fc)"));
            Console.WriteLine($"  batch norm    {(result.BatchNormFolded ? "folded into the convs (imported as identity BN + conv bias)" : "BatchNormalization nodes")}");
            Console.WriteLine($"  input         {model.Options.InChannels}×{(result.InputSize is { } size ? $"{size}×{size}" : "H×W (dynamic)")}");
            Console.WriteLine($"wrote {outPath}: {parameters:N0} parameters, metadata architecture={meta.Architecture ?? "custom"}, input_size={meta.InputSize}");
            return 0;
        }));
        return command;
    }
}
