using System;
using System.IO;
using System.Linq;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace ResNetSharp.Benchmarks;

/// <summary>Entry point: BenchmarkDotNet's switcher, so that --filter, --job, --list etc. work as usual.</summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        if (BenchSettings.TuneAllocator && !AllocatorTuning.Apply())
        {
            Console.Error.WriteLine($"{BenchSettings.TuneAllocatorVariable} is set but glibc's mallopt is not available here; running untuned.");
        }

        // Every job runs in this process. BenchmarkDotNet's default toolchain generates, builds and starts a separate
        // project under bin/, which would inherit this repository's Directory.Build.* files (central package
        // versions, warnings as errors, documentation and analyser rules, the native-library patch) that it is not
        // written for; the in-process toolchain needs no such project. The job is a mutator, so it only sets the
        // toolchain: jobs chosen on the command line (--job dry, --job short, ...) keep their own settings and run
        // in-process too. Timeout: whole-model benchmarks with the default job can take minutes per case.
        var inProcess = Job.Default
            .WithToolchain(new InProcessEmitToolchain(TimeSpan.FromHours(1), logOutput: true))
            .AsMutator();
        var config = DefaultConfig.Instance
            .AddJob(inProcess)
            .WithArtifactsPath(ArtifactsPath())
            .WithSummaryStyle(SummaryStyle.Default.WithMaxParameterColumnWidth(40)); // block names are ~35 characters

        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
        bool failed = summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success));
        return failed ? 1 : 0;
    }

    /// <summary>artifacts/benchmarks under the repository root (git-ignored), else BenchmarkDotNet's default.</summary>
    private static string ArtifactsPath()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ResNet.sln")))
            {
                return Path.Combine(dir.FullName, "artifacts", "benchmarks");
            }
        }

        return Path.Combine(Environment.CurrentDirectory, "BenchmarkDotNet.Artifacts");
    }
}
