using System;
using System.CommandLine;
using System.IO;
using System.Linq;
using ResNetSharp.OnnxRuntime;

namespace ResNetSharp.Cli.Commands;

/// <summary>
/// <c>resnet export [NAME] [--weights FILE] --out FILE.onnx [--opset N] [--features pooled|maps] [--keep-bn] [--json]</c>:
/// writes a model as ONNX. With <c>--weights</c> and no name, the model is rebuilt from the file's metadata.
/// </summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var name = new Argument<string?>("name") { Description = "A registered model name (see 'resnet list'); optional with --weights, whose metadata then names the architecture.", Arity = ArgumentArity.ZeroOrOne };
        var weights = new Option<string?>("--weights") { Description = "Weights to export (safetensors or TorchSharp .dat); loaded strictly." };
        var output = new Option<string>("--out") { Description = "The .onnx file to write (its folder must exist).", Required = true };
        var opset = new Option<int>("--opset") { Description = $"ONNX opset, {OnnxExportOptions.MinOpset} to {OnnxExportOptions.MaxOpset}.", DefaultValueFactory = _ => OnnxExportOptions.DefaultOpset };
        var features = new Option<string?>("--features") { Description = "Export the backbone instead of the classifier: 'pooled' (N×C pooled features) or 'maps' (one output per stage, C2…C5)." };
        var keepBn = new Option<bool>("--keep-bn") { Description = "Keep BatchNormalization nodes instead of folding them into the convolutions." };
        var variant = new Option<string?>("--variant") { Description = "Stride placement for a named model: v1.5 (torchvision, default) or v1 (the paper)." };
        var classes = new Option<int?>("--classes") { Description = "Classifier outputs for a named model (default: the model's)." };
        var int8 = new Option<bool>("--int8") { Description = "Quantise to int8 (ONNX QDQ, static, calibrated): needs --calibrate." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var command = new Command("export", "Write a model as ONNX (standard operators, dynamic batch and size, preprocessing and class names in metadata_props).")
        {
            name, weights, output, opset, features, keepBn, variant, classes, int8, CalibrationSource.Calibrate, CalibrationSource.Images, CalibrationSource.Method, json,
        };
        command.SetAction(parse => Cli.Guard(() =>
        {
            string? modelName = parse.GetValue(name);
            string? weightsPath = parse.GetValue(weights);
            var kind = parse.GetValue(features)?.Trim().ToLowerInvariant() switch
            {
                null or "" => OnnxOutput.Logits,
                "pooled" => OnnxOutput.PooledFeatures,
                "maps" => OnnxOutput.FeatureMaps,
                var other => throw new ArgumentException($"Unknown --features '{other}': expected pooled or maps."),
            };
            int version = parse.GetValue(opset);
            if (version is < OnnxExportOptions.MinOpset or > OnnxExportOptions.MaxOpset)
            {
                throw new ArgumentException($"--opset {version} is not supported: expected {OnnxExportOptions.MinOpset} to {OnnxExportOptions.MaxOpset}.");
            }

            var options = new OnnxExportOptions { Opset = version, KeepBatchNorm = parse.GetValue(keepBn), Output = kind };

            using var model = Build(modelName, weightsPath, parse.GetValue(variant), parse.GetValue(classes));
            string? calibrate = parse.GetValue(CalibrationSource.Calibrate);
            bool quantise = parse.GetValue(int8);
            if (quantise != (calibrate is not null))
            {
                throw new ArgumentException(quantise ? "--int8 needs --calibrate fashion-mnist|FOLDER (the images that set activation ranges)." : "--calibrate applies only with --int8.");
            }

            Calibration? calibration = quantise
                ? CalibrationSource.Load(calibrate!, parse.GetValue(CalibrationSource.Images), parse.GetValue(CalibrationSource.Method)!, model)
                : null;
            var result = calibration is null ? model.ExportOnnx(parse.GetValue(output)!, options) : model.ExportOnnxInt8(parse.GetValue(output)!, calibration, options);
            if (parse.GetValue(json))
            {
                Cli.WriteJson(new
                {
                    name = model.ModelName,
                    weights = weightsPath is null ? null : Path.GetFullPath(weightsPath),
                    path = result.Path,
                    bytes = result.Bytes,
                    opset = result.Opset,
                    output = kind switch { OnnxOutput.PooledFeatures => "pooled", OnnxOutput.FeatureMaps => "maps", _ => "logits" },
                    keepBatchNorm = options.KeepBatchNorm,
                    int8 = calibration is not null,
                    calibration = calibration?.Recipe,
                    nodes = result.Nodes,
                    operators = result.Operators,
                    inputs = new[] { "input" },
                    outputs = result.Outputs,
                    numClasses = model.NumClasses,
                    featureChannels = model.FeatureChannels,
                });
            }
            else
            {
                Console.WriteLine($"{model.ModelName} -> {result.Path}: {result.Bytes:N0} bytes, opset {result.Opset}, {result.Nodes} nodes " +
                                  $"({string.Join(", ", result.Operators)}), input 'input' N×{model.Options.InChannels}×H×W, outputs {string.Join(", ", result.Outputs)}" +
                                  (options.KeepBatchNorm ? ", BatchNorm kept" : ", BatchNorm folded") +
                                  (calibration is null ? "" : $", int8 QDQ calibrated by {calibration.Recipe}"));
            }

            return 0;
        }));
        return command;
    }

    private static ResNet Build(string? name, string? weights, string? variant, int? classes)
    {
        if (name is null)
        {
            if (weights is null)
            {
                throw new ArgumentException("Give a model name, or --weights FILE whose metadata names the architecture.");
            }

            if (variant is not null || classes is not null)
            {
                throw new ArgumentException("--variant and --classes apply to a named model; with --weights alone the file's metadata decides them.");
            }

            return ResNetFactory.FromWeights(weights);
        }

        var model = ResNetFactory.Create(name, new ResNetOptions { NumClasses = classes }, Cli.ParseVariant(variant));
        try
        {
            if (weights is not null)
            {
                model.LoadWeights(weights);
            }

            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }
}
