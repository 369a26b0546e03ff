using System.CommandLine;
using ResNetSharp.Cli;
using ResNetSharp.Cli.Commands;

var root = new RootCommand("resnet: build, inspect and run ResNets with ResNetSharp.");
root.Subcommands.Add(ListCommand.Create());
root.Subcommands.Add(SummaryCommand.Create());
root.Subcommands.Add(ForwardCommand.Create());
root.Subcommands.Add(WeightsCommand.Create());
root.Subcommands.Add(ImportCommand.Create());
root.Subcommands.Add(PretrainedCommand.Create());
root.Subcommands.Add(TableCommand.Create());
root.Subcommands.Add(BenchCommand.Create());
root.Subcommands.Add(PeakCommand.Create());
root.Subcommands.Add(TrainCommand.Create());
root.Subcommands.Add(EvalCommand.Create());
root.Subcommands.Add(ExperimentCommand.Create());
return Cli.Run(root, args);
