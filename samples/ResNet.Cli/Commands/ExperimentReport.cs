using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using ResNetSharp.Training;

namespace ResNetSharp.Cli.Commands;

/// <summary>What every experiment's results.json and results.md share: the machine, the best epoch, percentages.</summary>
internal static class ExperimentReport
{
    /// <summary>The machine the run was measured on (CPU name, cores, intra-op threads).</summary>
    public static object Machine() => new { cpu = CpuName(), logicalCores = Environment.ProcessorCount, intraOpThreads = TorchThreads.IntraOp, tunedAllocator = AllocatorTuning.Applied };

    /// <summary>Best test top-1 over the epochs that were evaluated, or null.</summary>
    public static double? BestTestTop1(IReadOnlyList<EpochMetrics> history) =>
        history.Where(h => h.TestTop1.HasValue).Select(h => h.TestTop1).DefaultIfEmpty(null).Max();

    /// <summary>A JSON fraction as a percentage with two decimals, or "–" when absent.</summary>
    public static string Percent(JsonElement e, string key) =>
        e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number ? (100 * v.GetDouble()).ToString("F2", CultureInfo.InvariantCulture) : "–";

    private static string CpuName()
    {
        try
        {
            return File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU";
        }
        catch (IOException)
        {
            return "unknown CPU";
        }
    }
}
