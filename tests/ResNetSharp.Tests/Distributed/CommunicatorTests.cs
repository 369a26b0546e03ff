using System;
using System.Collections.Generic;
using System.Linq;
using FluentAssertions;
using ResNetSharp.Distributed;
using Xunit;

namespace ResNetSharp.Tests.Distributed;

/// <summary>The MPI communicator, run as two real processes under MPICH's and Open MPI's mpiexec; values checked by hand.</summary>
public class CommunicatorTests
{
    [Theory]
    [InlineData("mpich")]
    [InlineData("openmpi")]
    public void TwoRanks_AllreduceAndBroadcast_GiveTheHandComputedValues(string flavor)
    {
        string dir = MpiRun.TempDir("collectives");
        var (code, stdout, stderr, timedOut) = MpiRun.Run(flavor, 2, 120, null, MpiRun.Host, "collectives", dir);
        timedOut.Should().BeFalse();
        code.Should().Be(0, stdout + stderr);
        foreach (var rank in MpiRun.ReadRanks(dir, 2))
        {
            rank.GetProperty("size").GetInt32().Should().Be(2);
            rank.GetProperty("implementation").GetString().Should().Be(flavor == "mpich" ? "MPICH" : "Open MPI");
            // Rank r holds r + 1 + 0.5 i: the sum over ranks 0 and 1 is 3 + i.
            rank.GetProperty("allreduceFloat").EnumerateArray().Select(e => e.GetSingle()).Should().Equal(3f, 4f, 5f, 6f, 7f);
            // Rank r holds (r + 1)·0.001 + i: the sum is 0.003 + 2i.
            var d = rank.GetProperty("allreduceDouble").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            d.Should().HaveCount(3);
            for (int i = 0; i < 3; i++)
            {
                d[i].Should().BeApproximately(0.003 + (2 * i), 1e-15);
            }

            rank.GetProperty("allreduceLong").EnumerateArray().Select(e => e.GetInt64()).Should().Equal(3L, 30L);
            rank.GetProperty("bcastFloat").EnumerateArray().Select(e => e.GetSingle()).Should().Equal(1.5f, -2.25f, 3f);
            rank.GetProperty("bcastDouble").EnumerateArray().Select(e => e.GetDouble()).Should().Equal(Math.PI, -Math.E);
            // 3,000,000 floats (12 MB) of r + 1: every element sums to 3.
            rank.GetProperty("bigMin").GetSingle().Should().Be(3f);
            rank.GetProperty("bigMax").GetSingle().Should().Be(3f);
        }
    }

    [Theory]
    [InlineData("mpich")]
    [InlineData("openmpi")]
    public void SettingThatDiffersAcrossRanks_EndsWithOneClearError(string flavor)
    {
        string dir = MpiRun.TempDir("mismatch");
        var (code, _, stderr, timedOut) = MpiRun.Run(flavor, 2, 120, null, MpiRun.Host, "mismatch", dir);
        timedOut.Should().BeFalse();
        code.Should().NotBe(0);
        stderr.Should().Contain("--batch differs across ranks (from 64 to 128");
    }

    [Fact]
    public void WithoutLauncher_IsAWorldOfOne_AndLoadsNoMpi()
    {
        using var comm = Communicator.FromEnvironment();
        comm.Size.Should().Be(1);
        comm.Rank.Should().Be(0);
        comm.Implementation.Should().Be("none");
        var x = new[] { 1.5f, 2f };
        comm.AllreduceSum(x);
        comm.Broadcast(x);
        comm.Barrier();
        x.Should().Equal(1.5f, 2f);
        System.Diagnostics.Process.GetCurrentProcess().Modules.Cast<System.Diagnostics.ProcessModule>()
            .Select(m => m.ModuleName).Should().NotContain(n => n.StartsWith("libmpi", StringComparison.Ordinal));
    }

    [Fact]
    public void TwoRanksAskedWithoutLauncher_SaysToRunUnderMpiexec()
    {
        string dir = MpiRun.TempDir("nolauncher");
        var (code, _, stderr, timedOut) = MpiRun.Plain(120, null, MpiRun.Host, "expect2", dir);
        timedOut.Should().BeFalse();
        code.Should().Be(3);
        stderr.Should().Contain("2 processes were asked for but this process was not started by an MPI launcher: run it as 'mpiexec -n 2");
    }

    [Fact]
    public void MissingMpiLibrary_SaysWhatToInstall()
    {
        string dir = MpiRun.TempDir("nolib");
        var env = new Dictionary<string, string> { ["RESNETSHARP_MPI_LIBRARY"] = "/nonexistent/libmpich.so.12" };
        var (code, _, stderr, timedOut) = MpiRun.Run("mpich", 2, 120, env, MpiRun.Host, "collectives", dir);
        timedOut.Should().BeFalse();
        code.Should().NotBe(0);
        stderr.Should().Contain("No MPI library could be loaded (tried /nonexistent/libmpich.so.12)").And.Contain("apt-get install mpich");
    }
}
