using System;
using System.CommandLine;
using System.Globalization;
using System.Linq;

namespace ResNetSharp.Cli.Commands;

/// <summary>
/// <c>resnet table</c>: the README's model table, measured rather than typed: every registered model is built and
/// summarised (layers, parameters, multiply-adds at its natural input size) and printed as Markdown.
/// </summary>
internal static class TableCommand
{
    public static Command Create()
    {
        var family = new Option<string?>("--family") { Description = "Only this family (as 'resnet list' prints it), e.g. \"CIFAR ResNet\"." };
        var command = new Command("table", "Print a Markdown table of every registered model with measured layers, parameters and multiply-adds.") { family };
        command.SetAction(parse => Cli.Guard(() =>
        {
            string? only = parse.GetValue(family);
            var defs = ResNetFactory.Definitions
                .Where(d => only is null || string.Equals(d.Family, only.Trim(), StringComparison.OrdinalIgnoreCase)).ToList();
            if (defs.Count == 0)
            {
                throw new ArgumentException(
                    $"No registered family '{only}'. Families: {string.Join(", ", ResNetFactory.Definitions.Select(d => d.Family).Distinct())}.");
            }

            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine("| model | family | input | layers | parameters | multiply-adds | architecture |");
            Console.WriteLine("|---|---|---:|---:|---:|---:|---|");
            foreach (var d in defs)
            {
                using var model = ResNetFactory.Create(d.Name);
                int input = Cli.NaturalInputSize(model);
                var s = model.Summarize(input);
                Console.WriteLine(string.Create(inv,
                    $"| `{d.Name}` | {d.Family} | {input}×{input} | {s.WeightedLayers} | {s.Parameters:N0} | {ModelSummary.FormatMacs(s.MultiplyAdds)} | {d.Table} |"));
            }

            return 0;
        }));
        return command;
    }
}
