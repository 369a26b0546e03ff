using System;
using System.CommandLine;
using System.Text.Json;

namespace ResNetSharp.Cli.Commands;

/// <summary><c>resnet peak</c>: the machine's fp32 FMA peak, the denominator of "percent of peak".</summary>
internal static class PeakCommand
{
    public static Command Create()
    {
        var threads = new Option<int?>("--threads") { Description = "Threads running FMA chains at once (default: the core count)." };
        var seconds = new Option<double>("--seconds") { Description = "Length of one timed run.", DefaultValueFactory = _ => 0.5 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object: isa, vectorFloats, threads, gflops, seconds." };
        var command = new Command("peak", "Measure the fp32 fused-multiply-add peak of this machine (GFLOP/s, best of 3 runs).")
        {
            threads, seconds, json,
        };

        command.SetAction(parse => Cli.Guard(() =>
        {
            int t = parse.GetValue(threads) ?? Environment.ProcessorCount;
            double s = parse.GetValue(seconds);
            if (t < 1 || s <= 0 || s > 60)
            {
                throw new ArgumentException($"--threads must be ≥ 1 and --seconds in (0, 60], got {t} and {s}.");
            }

            var r = FmaPeak.Measure(t, s);
            Console.WriteLine(parse.GetValue(json)
                ? JsonSerializer.Serialize(r, new JsonSerializerOptions(Cli.Json) { WriteIndented = false })
                : $"{r.Isa} ({r.VectorFloats} floats per FMA), {r.Threads} thread(s): {r.Gflops:F1} GFLOP/s fp32 FMA peak");
            return 0;
        }));
        return command;
    }
}
