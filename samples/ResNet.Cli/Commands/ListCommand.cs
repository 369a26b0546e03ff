using System;
using System.CommandLine;
using System.Linq;

namespace ResNetSharp.Cli.Commands;

internal static class ListCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print a JSON array instead of a table." };
        var command = new Command("list", "List the registered model names.") { json };
        command.SetAction(parse => Cli.Guard(() =>
        {
            var defs = ResNetFactory.Definitions;
            if (parse.GetValue(json))
            {
                Cli.WriteJson(defs.Select(d => new { name = d.Name, family = d.Family, description = d.Description, architecture = d.Table.ToString() }));
                return 0;
            }

            foreach (var family in defs.GroupBy(d => d.Family))
            {
                Console.WriteLine($"{family.Key}:");
                foreach (var d in family)
                {
                    Console.WriteLine($"  {d.Name,-22} {d.Description}");
                }
            }

            return 0;
        }));
        return command;
    }
}
