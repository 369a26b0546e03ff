using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Globalization;
using System.IO;
using System.Linq;
using ResNetSharp.Training;
using Spectre.Console;

namespace ResNetSharp.Cli.Commands;

/// <summary>
/// <c>resnet experiment degradation</c> (a sub-command of <see cref="ExperimentCommand"/>): the paper's Fig. 6 on Fashion-MNIST. plain-20, plain-56, ResNet-20 and
/// ResNet-56 are trained with one recipe and budget; results.json, results.md and degradation.png are written.
/// The claim to reproduce: plain-56 ends with a higher training error than plain-20, ResNet-56 with a lower one than ResNet-20.
/// </summary>
internal static class DegradationExperiment
{
    public static Command Create()
    {
        // The paper's CIFAR recipe (§4.2): SGD 0.1, momentum 0.9, weight decay 1e-4, ÷10 at 50 % and 75 % of the run.
        var recipe = new RecipeOptions(epochs: 12, schedule: "step", weightDecay: 1e-4, nesterov: false);
        var models = new Option<string>("--models") { Description = "Comma-separated models.", DefaultValueFactory = _ => "plain20,plain56,resnet20,resnet56" };
        var output = new Option<string>("--out") { Description = "Output folder (one sub-folder per model).", Required = true };
        var resume = new Option<bool>("--resume") { Description = "Continue each model from its checkpoint (finished models are only re-read)." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object per epoch (with the model's name) instead of progress bars." };
        var command = new Command("degradation", "The paper's Fig. 6: plain and residual nets of 20 and 56 layers trained with one recipe and budget.")
        {
            models, output, resume, json,
        };
        recipe.AddTo(command);

        command.SetAction(parse => Cli.Guard(() =>
        {
            var names = parse.GetValue(models)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            foreach (string n in names)
            {
                ResNetFactory.GetTable(n); // unknown names fail before any training
            }

            var erasing = recipe.Erasing(parse); // bad --prefetch, --cutout or --random-erasing values fail before any data is read
            recipe.ApplyRuntime(parse);
            var (train, test, datasetName) = recipe.LoadData(parse, names[0]);
            string dir = parse.GetValue(output)!;
            Directory.CreateDirectory(dir);
            bool asJson = parse.GetValue(json);
            var runs = new List<DegradationModel>();
            bool cancelled = false;
            foreach (string modelName in names)
            {
                var options = recipe.ToTrainerOptions(parse, Path.Combine(dir, modelName), parse.GetValue(resume), datasetName, train);
                TrainCommand.torch_seed(parse.GetValue(recipe.Seed));
                using var model = ResNetFactory.Create(modelName, new ResNetOptions { InChannels = train.Channels, NumClasses = train.ClassNames.Count });
                var result = TrainCommand.Run(model, train, test, options, asJson, $"{modelName} on {datasetName}");
                runs.Add(DegradationModel.From(modelName, ModelInspector.CountWeightedLayers(model), ModelInspector.CountParameters(model), result.History));
                if (result.Cancelled)
                {
                    cancelled = true;
                    break;
                }
            }

            var first = recipe.ToTrainerOptions(parse, null, false, datasetName);
            string augmentation = $"pad-4 random crop + horizontal flip{erasing.Description}, {train.Height}×{train.Width} input";
            var report = Report(runs, first, datasetName, train.Count, test.Count, augmentation, cancelled);
            string markdown = ExperimentResults.WriteResults(dir, report);
            Plots.Degradation(runs.Select(r => (r.Name, r.History)).ToList(), first.DropLast ? train.Count / first.BatchSize : (train.Count + first.BatchSize - 1) / first.BatchSize,
                $"{datasetName}, {train.Count:N0} images, {first.Epochs} epochs", Path.Combine(dir, "degradation.png"));
            if (!asJson)
            {
                AnsiConsole.Write(new Markup(Markup.Escape(markdown)));
            }

            return cancelled ? TrainCommand.Interrupted : 0;
        }));
        return command;
    }

    private static DegradationResult Report(List<DegradationModel> runs, TrainerOptions recipe, string dataset, int trainCount, int testCount, string augmentation, bool cancelled)
    {
        double? FinalTrain(string n) => runs.Find(r => r.Name == n)?.FinalTrainError;
        bool? Higher(string a, string b) => FinalTrain(a) is { } x && FinalTrain(b) is { } y ? x > y : null;
        string recipeText = $"SGD lr {recipe.Sgd.LearningRate.ToString(CultureInfo.InvariantCulture)} momentum {recipe.Sgd.Momentum.ToString(CultureInfo.InvariantCulture)}" +
                            $"{(recipe.Sgd.Nesterov ? " nesterov" : string.Empty)}, weight decay {recipe.Sgd.WeightDecay.ToString(CultureInfo.InvariantCulture)}" +
                            $"{(recipe.Sgd.NoDecayOnNormAndBias ? " (none on BatchNorm weights and biases)" : string.Empty)}, {recipe.Schedule}, " +
                            $"{(recipe.LabelSmoothing > 0 ? $"label smoothing {recipe.LabelSmoothing.ToString(CultureInfo.InvariantCulture)}, " : string.Empty)}{augmentation}";
        return new DegradationResult(
            "degradation", "He et al. 2015, Fig. 6: deeper plain nets have higher training error; deeper ResNets lower", ExperimentResults.CommandLine(), dataset,
            trainCount, testCount, recipe.Epochs, recipe.BatchSize, recipeText, recipe.Prefetch, recipe.Seed, MachineInfo.Current(), !cancelled,
            new DegradationClaim(Higher("plain56", "plain20"), Higher("resnet20", "resnet56")), runs);
    }
}
