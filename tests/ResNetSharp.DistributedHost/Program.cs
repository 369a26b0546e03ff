using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using ResNetSharp.Distributed;

namespace ResNetSharp.DistributedHost;

/// <summary>Scenarios run by the distributed tests, one process per rank: <c>host SCENARIO OUTDIR [ARGS]</c>.</summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        if (args.Length < 2)
        {
            Console.Error.WriteLine("usage: ResNetSharp.DistributedHost SCENARIO OUTDIR [ARGS]");
            return 2;
        }

        string outDir = args[1];
        Directory.CreateDirectory(outDir);
        try
        {
            using var comm = Communicator.FromEnvironment();
            var result = args[0] switch
            {
                "collectives" => Collectives(comm),
                "mismatch" => Mismatch(comm),
                "expect2" => new Dictionary<string, object> { ["size"] = Communicator.FromEnvironment(expectedSize: 2).Size },
                _ => Scenarios.Run(args[0], comm, outDir, args.Skip(2).ToArray()),
            };
            File.WriteAllText(Path.Combine(outDir, $"rank{comm.Rank}.json"), JsonSerializer.Serialize(result));
            return 0;
        }
        catch (Exception e) when (e is InvalidOperationException or MpiException or DllNotFoundException or ArgumentException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 3;
        }
    }

    private static Dictionary<string, object> Collectives(Communicator comm)
    {
        int r = comm.Rank;
        var f = Enumerable.Range(0, 5).Select(i => (float)(r + 1 + (0.5 * i))).ToArray();
        comm.AllreduceSum(f);
        var d = Enumerable.Range(0, 3).Select(i => ((r + 1) * 1e-3) + i).ToArray();
        comm.AllreduceSum(d);
        var l = new long[] { r + 1, 10L * (r + 1) };
        comm.AllreduceSum(l);
        var bf = r == 0 ? new[] { 1.5f, -2.25f, 3f } : new float[3];
        comm.Broadcast(bf);
        var bd = r == 1 ? new[] { Math.PI, -Math.E } : new double[2];
        comm.Broadcast(bd, root: 1);
        var big = new float[3_000_000];
        Array.Fill(big, r + 1);
        comm.AllreduceSum(big);
        comm.Barrier();
        comm.CheckSame("a setting", 7);
        return new Dictionary<string, object>
        {
            ["rank"] = r, ["size"] = comm.Size, ["implementation"] = comm.Implementation,
            ["allreduceFloat"] = f, ["allreduceDouble"] = d, ["allreduceLong"] = l, ["bcastFloat"] = bf, ["bcastDouble"] = bd,
            ["bigMin"] = big.Min(), ["bigMax"] = big.Max(),
        };
    }

    private static Dictionary<string, object> Mismatch(Communicator comm)
    {
        comm.CheckSame("--batch", 64 + (comm.Rank * 64));
        return new Dictionary<string, object> { ["rank"] = comm.Rank };
    }
}
