using System;
using System.CommandLine;
using System.IO;
using System.Linq;
using ResNetSharp.OnnxRuntime;

namespace ResNetSharp.Cli.Commands;

/// <summary>
/// <c>resnet export [NAME] [--weights FILE] (--out FILE.onnx | --triton DIR [--triton-name NAME] [--max-batch N] [--instance cpu|gpu|auto])
/// [--opset N] [--features pooled|maps] [--keep-bn] [--json]</c>: writes a model as ONNX, or as a Triton Inference Server
/// model repository entry. With <c>--weights</c> and no name, the model is rebuilt from the file's metadata.
/// </summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var name = new Argument<string?>("name") { Description = "A registered model name (see 'resnet list'); optional with --weights, whose metadata then names the architecture.", Arity = ArgumentArity.ZeroOrOne };
        var weights = new Option<string?>("--weights") { Description = "Weights to export: a file (safetensors, .pth or TorchSharp .dat; without NAME it must carry ResNetSharp metadata) or a registered weights name; loaded strictly." };
        var output = new Option<string?>("--out") { Description = "The .onnx file to write (its folder must exist)." };
        var triton = new Option<string?>("--triton") { Description = "Instead of --out: a Triton model repository (existing folder) to write NAME/config.pbtxt, NAME/1/model.onnx and NAME/labels.txt into." };
        var tritonName = new Option<string?>("--triton-name") { Description = "The model's folder and name in the Triton repository (default: the architecture's name)." };
        var maxBatch = new Option<int>("--max-batch") { Description = "Triton's max_batch_size: the largest batch its dynamic batcher forms.", DefaultValueFactory = _ => 16 };
        var instance = new Option<string>("--instance") { Description = "Where Triton runs the model: cpu, gpu or auto (its instance_group kind).", DefaultValueFactory = _ => "cpu" };
        var opset = new Option<int>("--opset") { Description = $"ONNX opset, {OnnxExportOptions.MinOpset} to {OnnxExportOptions.MaxOpset}.", DefaultValueFactory = _ => OnnxExportOptions.DefaultOpset };
        var features = new Option<string?>("--features") { Description = "Export the backbone instead of the classifier: 'pooled' (N×C pooled features) or 'maps' (one output per stage, C2…C5)." };
        var keepBn = new Option<bool>("--keep-bn") { Description = "Keep BatchNormalization nodes instead of folding them into the convolutions." };
        var variant = new Option<string?>("--variant") { Description = "Stride placement for a named model: v1.5 (torchvision, default) or v1 (the paper)." };
        var classes = new Option<int?>("--classes") { Description = "Classifier outputs for a named model (default: the model's)." };
        var int8 = new Option<bool>("--int8") { Description = "Quantise to int8 (ONNX QDQ, static, calibrated): needs --calibrate." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var command = new Command("export", "Write a model as ONNX (standard operators, dynamic batch and size, preprocessing and class names in metadata_props).")
        {
            name, weights, output, triton, tritonName, maxBatch, instance, opset, features, keepBn, variant, classes, int8,
            CalibrationSource.Calibrate, CalibrationSource.Images, CalibrationSource.Method, json,
        };
        command.SetAction(parse => Cli.Guard(() =>
        {
            string? modelName = parse.GetValue(name);
            string? weightsPath = parse.GetValue(weights);
            OnnxOutput? requested = parse.GetValue(features)?.Trim().ToLowerInvariant() switch
            {
                null or "" => null, // the model's own output: logits, or a headless model's pooled features
                "pooled" => OnnxOutput.PooledFeatures,
                "maps" => OnnxOutput.FeatureMaps,
                var other => throw new ArgumentException($"Unknown --features '{other}': expected pooled or maps."),
            };
            int version = parse.GetValue(opset);
            if (version is < OnnxExportOptions.MinOpset or > OnnxExportOptions.MaxOpset)
            {
                throw new ArgumentException($"--opset {version} is not supported: expected {OnnxExportOptions.MinOpset} to {OnnxExportOptions.MaxOpset}.");
            }

            var options = new OnnxExportOptions { Opset = version, KeepBatchNorm = parse.GetValue(keepBn), Output = requested };
            string? onnxPath = parse.GetValue(output);
            string? tritonRoot = parse.GetValue(triton);
            if ((onnxPath is null) == (tritonRoot is null))
            {
                throw new ArgumentException("Give either --out FILE.onnx or --triton DIR (a Triton model repository), not both or neither.");
            }

            if (tritonRoot is null && (parse.GetResult(tritonName) is { Implicit: false } || parse.GetResult(maxBatch) is { Implicit: false } || parse.GetResult(instance) is { Implicit: false }))
            {
                throw new ArgumentException("--triton-name, --max-batch and --instance describe a Triton repository: give --triton DIR with them.");
            }

            using var model = Build(modelName, weightsPath, parse.GetValue(variant), parse.GetValue(classes));
            var kind = requested ?? (model.IsHeadless ? OnnxOutput.PooledFeatures : OnnxOutput.Logits);
            options = options with { Output = kind };
            string? calibrate = parse.GetValue(CalibrationSource.Calibrate);
            bool quantise = parse.GetValue(int8);
            if (quantise != (calibrate is not null))
            {
                throw new ArgumentException(quantise ? "--int8 needs --calibrate fashion-mnist|FOLDER (the images that set activation ranges)." : "--calibrate applies only with --int8.");
            }

            if (quantise && tritonRoot is not null)
            {
                throw new ArgumentException("--int8 with --triton is not supported: export the int8 file with --out and place it in the repository by hand.");
            }

            Calibration? calibration = quantise
                ? CalibrationSource.Load(calibrate!, parse.GetValue(CalibrationSource.Images), parse.GetValue(CalibrationSource.Method)!, model)
                : null;
            OnnxExportResult result;
            string? tritonModel = null;
            if (tritonRoot is not null)
            {
                var written = TritonRepository.Write(model, tritonRoot, parse.GetValue(tritonName) ?? TritonRepository.DefaultName(model),
                    parse.GetValue(maxBatch), parse.GetValue(instance)!, options);
                result = written.Export;
                tritonModel = written.ModelDirectory;
                if (!parse.GetValue(json))
                {
                    Console.WriteLine($"Triton model repository entry {written.ModelDirectory}: config.pbtxt, {TritonRepository.Version}/model.onnx" +
                                      (kind == OnnxOutput.Logits ? $", {TritonRepository.LabelFile} ({model.NumClasses} classes)" : ""));
                }
            }
            else
            {
                result = calibration is null ? model.ExportOnnx(onnxPath!, options) : model.ExportOnnxInt8(onnxPath!, calibration, options);
            }

            if (parse.GetValue(json))
            {
                Cli.WriteJson(new
                {
                    name = model.ModelName,
                    weights = weightsPath is null ? null : File.Exists(weightsPath) ? Path.GetFullPath(weightsPath) : weightsPath,
                    path = result.Path,
                    triton = tritonModel,
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
        if (name is null && weights is null)
        {
            throw new ArgumentException("Give a model name, or --weights FILE whose metadata names the architecture.");
        }

        if (name is null && (variant is not null || classes is not null))
        {
            throw new ArgumentException("--variant and --classes apply to a named model; with --weights alone the file's metadata decides them.");
        }

        return ResNetFactory.Load(weights, name, name is null ? null : new ResNetOptions { NumClasses = classes }, variant is null ? null : Cli.ParseVariant(variant));
    }
}
