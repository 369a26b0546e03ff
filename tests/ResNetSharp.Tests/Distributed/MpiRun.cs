using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.Json;
using FluentAssertions;

namespace ResNetSharp.Tests.Distributed;

/// <summary>Starts the distributed test host (or another dotnet program) under mpiexec on localhost, with a hard timeout.</summary>
internal static class MpiRun
{
    public static string Host => Path.Combine(AppContext.BaseDirectory, "ResNetSharp.DistributedHost.dll");

    public static string Launcher(string flavor)
    {
        string exe = flavor switch
        {
            "mpich" => "/usr/bin/mpiexec.mpich",
            "openmpi" => "/usr/bin/mpiexec.openmpi",
            _ => throw new ArgumentException($"unknown MPI flavour {flavor}"),
        };
        File.Exists(exe).Should().BeTrue($"{exe} is needed by the distributed tests: apt-get install {(flavor == "mpich" ? "mpich" : "openmpi-bin")}");
        return exe;
    }

    /// <summary>Runs <c>mpiexec -n N dotnet DLL ARGS</c>; kills the whole job if it runs past <paramref name="timeoutSeconds"/>.</summary>
    public static (int ExitCode, string Stdout, string Stderr, bool TimedOut) Run(
        string flavor, int ranks, int timeoutSeconds, IReadOnlyDictionary<string, string>? environment, string dll, params string[] args)
    {
        File.Exists(dll).Should().BeTrue($"{dll} is built next to the tests");
        return Start(Launch(flavor, environment, new[] { "-n", ranks.ToString(System.Globalization.CultureInfo.InvariantCulture), "dotnet", dll }.Concat(args).ToArray()), timeoutSeconds);
    }

    /// <summary>Runs <c>mpiexec LAUNCHERARGS</c> as given (MPMD: <c>-n 1 a : -n 1 b</c>).</summary>
    public static (int ExitCode, string Stdout, string Stderr, bool TimedOut) RunRaw(string flavor, int timeoutSeconds, params string[] launcherArgs) =>
        Start(Launch(flavor, null, launcherArgs), timeoutSeconds);

    /// <summary>Starts the job without waiting (the fault test kills one of its ranks).</summary>
    public static Process StartJob(string flavor, int ranks, string dll, params string[] args)
    {
        var psi = Launch(flavor, null, new[] { "-n", ranks.ToString(System.Globalization.CultureInfo.InvariantCulture), "dotnet", dll }.Concat(args).ToArray());
        return Process.Start(psi)!;
    }

    private static ProcessStartInfo Launch(string flavor, IReadOnlyDictionary<string, string>? environment, string[] launcherArgs)
    {
        var psi = new ProcessStartInfo(Launcher(flavor)) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in launcherArgs)
        {
            psi.ArgumentList.Add(a);
        }

        // Open MPI refuses root without these; one intra-op thread per rank keeps the runs light and deterministic.
        psi.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
        psi.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
        psi.Environment["OMP_NUM_THREADS"] = "1";
        foreach (var (k, v) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[k] = v;
        }

        return psi;
    }

    /// <summary>Runs a process without a launcher (a world of one).</summary>
    public static (int ExitCode, string Stdout, string Stderr, bool TimedOut) Plain(int timeoutSeconds, IReadOnlyDictionary<string, string>? environment, string dll, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(dll);
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["OMP_NUM_THREADS"] = "1";
        foreach (var (k, v) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[k] = v;
        }

        return Start(psi, timeoutSeconds);
    }

    public static JsonElement[] ReadRanks(string dir, int ranks) =>
        Enumerable.Range(0, ranks).Select(r =>
        {
            string path = Path.Combine(dir, $"rank{r}.json");
            File.Exists(path).Should().BeTrue($"rank {r} writes {path}");
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            return doc.RootElement.Clone();
        }).ToArray();

    public static string TempDir(string name)
    {
        string dir = Path.Combine(Path.GetTempPath(), "resnetsharp-ddp-" + name + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static (int, string, string, bool) Start(ProcessStartInfo psi, int timeoutSeconds)
    {
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        bool finished = process.WaitForExit(timeoutSeconds * 1000);
        if (!finished)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }

        return (finished ? process.ExitCode : -1, stdout.Result, stderr.Result, !finished);
    }
}
