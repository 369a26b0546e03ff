using System;
using System.CommandLine;
using System.Linq;

namespace ResNetSharp.Cli.Commands;

/// <summary>
/// <c>resnet import FILE.onnx --out FILE.safetensors [--preprocessing imagenet | --mean … --std …] [--json]</c>: recognise
/// the ResNet in an ONNX graph, print its stage table and write its weights with the architecture and preprocessing in the
/// safetensors metadata. A graph without a classifier is written headless; preprocessing the file does not carry is
/// written as unknown unless the user states it.
/// </summary>
internal static class ImportCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "An ONNX ResNet (PyTorch, CNTK, ResNetSharp or another exporter; opset 7 or newer)." };
        var output = new Option<string>("--out") { Description = "The safetensors file to write (atomically).", Required = true };
        var preprocessing = new Option<string?>("--preprocessing")
        {
            Description = "State the preprocessing when the file does not carry it: 'imagenet' (torchvision's: RGB in [0, 1], resize to 256 and " +
                          "centre-crop 224 (or the graph's fixed size at the same 0.875 ratio), bilinear, ImageNet mean and std). " +
                          "Without it, preprocessing the file does not record is written as unknown and 'resnet predict' refuses the weights.",
        };
        var graph = new Option<string?>("--preprocessing-graph")
        {
            Description = "An ONNX graph that prepares the input (ML.NET's DnnImageModels/ResNetPrepOnnx/ResNetPreprocess.onnx): its channel swap " +
                          "and mean image become the weights' preprocessing, for pixels in 0 … 255.",
        };
        var mean = new Option<double[]?>("--mean") { Description = "Per-channel mean in [0, 1] units (RGB order), with --std: states the preprocessing.", AllowMultipleArgumentsPerToken = true };
        var std = new Option<double[]?>("--std") { Description = "Per-channel standard deviation in [0, 1] units, with --mean.", AllowMultipleArgumentsPerToken = true };
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var command = new Command("import", "Import an ONNX ResNet: print the recognised stage table and write the weights with their architecture " +
                                            "and preprocessing (ResNetFactory.FromWeights rebuilds the model from the file alone).")
        {
            file, output, preprocessing, graph, mean, std, json,
        };
        command.SetAction(parse => Cli.Guard(() =>
        {
            string path = parse.GetValue(file)!;
            string outPath = parse.GetValue(output)!;
            string? stated = parse.GetValue(preprocessing);
            double[]? meanValues = parse.GetValue(mean) is { Length: > 0 } m ? m : null;
            double[]? stdValues = parse.GetValue(std) is { Length: > 0 } sd ? sd : null;
            if (stated is not null and not "imagenet")
            {
                throw new ArgumentException($"--preprocessing '{stated}' is not known: expected 'imagenet' (or give --mean and --std).");
            }

            if ((meanValues is null) != (stdValues is null))
            {
                throw new ArgumentException("--mean and --std go together: give both (one value per input channel, in [0, 1] units).");
            }

            string? graphPath = parse.GetValue(graph);
            if (graphPath is not null && (stated is not null || meanValues is not null))
            {
                throw new ArgumentException("--preprocessing-graph states the preprocessing itself: give it without --preprocessing, --mean or --std.");
            }

            using var result = ResNetFactory.ImportOnnx(path, new OnnxImportOptions { PreprocessingGraph = graphPath });
            var model = result.Model;
            if (stated is not null || meanValues is not null)
            {
                // The user's statement replaces whatever the file said (or did not say).
                var known = model.Metadata with
                {
                    Mean = meanValues ?? ModelMetadata.ImageNetMean,
                    Std = stdValues ?? ModelMetadata.ImageNetStd,
                    ChannelOrder = ChannelOrder.Rgb,
                    PixelMax = 1,
                    MeanImage = null,
                    PreprocessingKnown = true,
                };
                if (stated == "imagenet")
                {
                    known = known with { InputSize = result.InputSize ?? 224, CropPct = 0.875, Interpolation = ResizeInterpolation.Bilinear };
                }

                model.Metadata = known;
            }
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
                    headless = model.IsHeadless,
                    preprocessingKnown = meta.PreprocessingKnown,
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
            Console.WriteLine($"  head          {result.Head}" + (result.HasClassifier ? $" ({model.NumClasses} classes)" : " (no classifier in the graph: written headless, the output is the pooled features)"));
            Console.WriteLine($"  batch norm    {(result.BatchNormFolded ? "folded into the convs (imported as identity BN + conv bias)" : "BatchNormalization nodes")}");
            Console.WriteLine($"  input         {model.Options.InChannels}×{(result.InputSize is { } size ? $"{size}×{size}" : "H×W (dynamic)")}");
            Console.WriteLine($"  preprocessing {Describe(meta)}");
            Console.WriteLine($"wrote {outPath}: {parameters:N0} parameters, metadata architecture={meta.Architecture ?? "custom"}, input_size={meta.InputSize}");
            return 0;
        }));
        return command;
    }

    internal static string Describe(ModelMetadata m) => !m.PreprocessingKnown
        ? "unknown (the file does not record it; 'resnet predict' refuses these weights until --preprocessing or --mean/--std states it)"
        : $"{m.InputSize}×{m.InputSize} (resize {m.ResizeSize}, {m.Interpolation.ToString().ToLowerInvariant()}), {m.ChannelOrder.ToString().ToUpperInvariant()}, " +
          $"pixels in [0, {m.PixelMax:G}], mean [{string.Join(", ", m.Mean.Select(v => v.ToString("G4", System.Globalization.CultureInfo.InvariantCulture)))}]" +
          (m.MeanImage is null ? "" : $" + a {m.InChannels}×{m.InputSize}×{m.InputSize} mean image") +
          $", std [{string.Join(", ", m.Std.Select(v => v.ToString("G4", System.Globalization.CultureInfo.InvariantCulture)))}]";
}
