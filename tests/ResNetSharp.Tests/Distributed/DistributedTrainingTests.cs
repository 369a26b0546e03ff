using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using FluentAssertions;
using Xunit;

namespace ResNetSharp.Tests.Distributed;

/// <summary>
/// <c>mpiexec -n 2 resnet train …</c>: rank 0 alone writes, a checkpoint records the number of processes, a killed rank
/// ends the job (no hang) with an intact checkpoint that <c>--resume</c> continues, mismatched settings stop the job.
/// Needs Fashion-MNIST like the other CLI training tests.
/// </summary>
public class DistributedTrainingTests
{
    private static string Cli => Path.Combine(AppContext.BaseDirectory, "resnet.dll");

    [Fact]
    public void TwoRanks_TrainWritesOnceAndResumeWithOneProcessIsRefused()
    {
        string run = MpiRun.TempDir("cli");
        var (code, stdout, stderr, timedOut) = MpiRun.Run("mpich", 2, 300, null, Cli,
            "train", "resnet20", "--subset", "256", "--test-subset", "64", "--epochs", "1", "--batch", "32", "--threads", "1", "--out", run, "--json");
        timedOut.Should().BeFalse();
        code.Should().Be(0, stdout + stderr);
        // One JSON line per epoch, from rank 0 only; metrics.jsonl written once.
        stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Count(l => l.StartsWith("{\"epoch\":1,", StringComparison.Ordinal)).Should().Be(1);
        File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Should().HaveCount(1);
        File.Exists(Path.Combine(run, "model.safetensors")).Should().BeTrue();

        var single = CliTests.Run("train", "resnet20", "--subset", "256", "--test-subset", "64", "--epochs", "1", "--batch", "32", "--threads", "1", "--out", run, "--json", "--resume");
        single.ExitCode.Should().Be(1);
        single.Stderr.Should().Contain("the checkpoint was written by 2 process(es) and this run has 1").And.Contain("mpiexec -n 2");
    }

    [Theory]
    [InlineData("mpich")]
    [InlineData("openmpi")]
    public void SettingsThatDifferAcrossRanks_StopTheJobWithOneMessage(string flavor)
    {
        string run = MpiRun.TempDir("cli-mismatch");
        string[] common = { "dotnet", Cli, "train", "resnet20", "--subset", "256", "--test-subset", "64", "--epochs", "1", "--threads", "1", "--out", run, "--json" };
        var (code, stdout, stderr, timedOut) = MpiRun.RunRaw(flavor, 300,
            new[] { "-n", "1" }.Concat(common).Concat(new[] { "--batch", "32" }).Concat(new[] { ":", "-n", "1" }).Concat(common).Concat(new[] { "--batch", "64" }).ToArray());
        timedOut.Should().BeFalse();
        code.Should().NotBe(0);
        (stdout + stderr).Should().Contain("resnet: error: the batch size differs across ranks (from 32 to 64");
        File.Exists(Path.Combine(run, "metrics.jsonl")).Should().BeFalse("nothing is trained");
    }

    [Theory]
    [InlineData("mpich")]
    [InlineData("openmpi")]
    public void KilledRank_EndsTheJob_CheckpointIntact_ResumeFinishes(string flavor)
    {
        string run = MpiRun.TempDir("cli-fault");
        string[] args = { "train", "resnet20", "--subset", "2048", "--test-subset", "64", "--epochs", "2", "--batch", "16", "--threads", "1", "--out", run, "--json", "--checkpoint-every", "4" };
        string checkpoint = Path.Combine(run, "checkpoint.safetensors");
        using (var job = MpiRun.StartJob(flavor, 2, Cli, args))
        {
            // Drain the pipes so the job never blocks on a full one.
            job.OutputDataReceived += (_, _) => { };
            job.ErrorDataReceived += (_, _) => { };
            job.BeginOutputReadLine();
            job.BeginErrorReadLine();
            try
            {
                // Wait (bounded) for the first mid-epoch checkpoint, then kill rank 1 hard.
                for (int i = 0; i < 1200 && !File.Exists(checkpoint) && !job.HasExited; i++)
                {
                    Thread.Sleep(100);
                }

                File.Exists(checkpoint).Should().BeTrue("rank 0 writes a checkpoint every 4 iterations");
                job.HasExited.Should().BeFalse("the run has 128 iterations; it is still going after the first checkpoint");
                int victim = RankProcess(run, flavor == "mpich" ? "PMI_RANK=1" : "OMPI_COMM_WORLD_RANK=1");
                victim.Should().BePositive("rank 1's process is found by its output folder and the launcher's rank variable");
                Process.GetProcessById(victim).Kill();
                job.WaitForExit(120_000).Should().BeTrue("the launcher ends the job when a rank dies");
                job.ExitCode.Should().NotBe(0);
            }
            finally
            {
                if (!job.HasExited)
                {
                    job.Kill(entireProcessTree: true);
                }
            }
        }

        var resumed = MpiRun.Run(flavor, 2, 600, null, Cli, args.Append("--resume").ToArray());
        resumed.TimedOut.Should().BeFalse();
        resumed.ExitCode.Should().Be(0, resumed.Stdout + resumed.Stderr);
        var lines = File.ReadAllLines(Path.Combine(run, "metrics.jsonl"));
        lines.Should().HaveCount(2);
        lines[1].Should().StartWith("{\"epoch\":2,");
        File.Exists(Path.Combine(run, "model.safetensors")).Should().BeTrue();
    }

    /// <summary>The pid of the dotnet process with <paramref name="rankVariable"/> whose command line names <paramref name="run"/> (Linux /proc).</summary>
    private static int RankProcess(string run, string rankVariable)
    {
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid))
            {
                continue;
            }

            try
            {
                string cmdline = File.ReadAllText(Path.Combine(dir, "cmdline"));
                if (!cmdline.Contains("resnet.dll", StringComparison.Ordinal) || !cmdline.Contains(run, StringComparison.Ordinal))
                {
                    continue;
                }

                var env = File.ReadAllText(Path.Combine(dir, "environ")).Split('\0');
                if (env.Contains(rankVariable))
                {
                    return pid;
                }
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        return -1;
    }
}
