using System;
using System.CommandLine;
using System.Linq;

namespace ResNetSharp.Cli.Commands;

internal static class SummaryCommand
{
    public static Command Create()
    {
        var name = new Argument<string>("name") { Description = "A registered model name (see 'resnet list')." };
        var input = new Option<int?>("--input") { Description = "Input height and width (default: 32 for CIFAR models, 224 otherwise)." };
        var variant = new Option<string>("--variant") { Description = "Stride placement: v1 (the paper) or v1.5 (torchvision).", DefaultValueFactory = _ => "v1.5" };
        var classes = new Option<int?>("--classes") { Description = "Classifier outputs (default: the model's, 1000 for ImageNet)." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var command = new Command("summary", "Measure a model: layers, parameters, multiply-adds and per-stage shapes.") { name, input, variant, classes, json };
        command.SetAction(parse => Cli.Guard(() =>
        {
            var options = new ResNetOptions { NumClasses = parse.GetValue(classes) };
            using var model = ResNetFactory.Create(parse.GetValue(name)!, options, Cli.ParseVariant(parse.GetValue(variant)));
            var summary = model.Summarize(parse.GetValue(input) ?? Cli.NaturalInputSize(model));
            if (parse.GetValue(json))
            {
                Cli.WriteJson(new
                {
                    name = summary.Name,
                    architecture = summary.Architecture,
                    variant = model.Table.StridePlacement == StridePlacement.V1 ? "v1" : "v1.5",
                    inputSize = summary.InputSize,
                    weightedLayers = summary.WeightedLayers,
                    layerFormula = summary.LayerFormula,
                    parameters = summary.Parameters,
                    trainableParameters = summary.TrainableParameters,
                    multiplyAdds = summary.MultiplyAdds,
                    stages = summary.Parts.Select(p => new
                    {
                        name = p.Name,
                        paperName = p.PaperName,
                        blocks = p.Blocks,
                        outputShape = p.OutputShape,
                        weightedLayers = p.WeightedLayers,
                        parameters = p.Parameters,
                        multiplyAdds = p.MultiplyAdds,
                        projections = p.Projections,
                    }),
                });
            }
            else
            {
                Console.Write(summary.ToTable());
            }

            return 0;
        }));
        return command;
    }
}
