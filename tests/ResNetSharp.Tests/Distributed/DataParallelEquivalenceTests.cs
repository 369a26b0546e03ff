using System;
using System.IO;
using System.Linq;
using FluentAssertions;
using Xunit;

namespace ResNetSharp.Tests.Distributed;

/// <summary>
/// Data-parallel SGD is the same SGD: two MPI ranks with B images each against one process with the 2B-image batch,
/// a float64 ResNet-20 over 4 steps of SGD with momentum 0.9, weight decay 5e-4 and a step schedule (lr halves every
/// 2 steps). Rank 1 starts from different weights (seed 101), so agreement also proves the start-up broadcast.
/// </summary>
public class DataParallelEquivalenceTests
{
    [Theory]
    [InlineData("mpich")]
    [InlineData("openmpi")]
    public void TwoRanks_SyncBatchNorm_EqualOneProcessWithTheGlobalBatch(string flavor)
    {
        string dir = MpiRun.TempDir("sgd-sync");
        RunReference(dir, "single");
        RunDdp(flavor, dir, syncBn: true);
        var reference = Read(dir, "single", "params", 0);
        var rank0 = Read(dir, "ddp", "params", 0);
        var rank1 = Read(dir, "ddp", "params", 1);
        rank0.Should().HaveCount(269_434, "ResNet-20 for 1 channel and 10 classes");
        rank1.Should().Equal(rank0, "both ranks apply the same averaged gradient");
        MaxAbsDiff(rank0, reference).Should().BeLessThan(1e-12, "SyncBatchNorm makes the two halves one batch of 2B (float64 rounding only)");
        // The running statistics follow the global batch too.
        MaxAbsDiff(Read(dir, "ddp", "buffers", 0), Read(dir, "single", "buffers", 0)).Should().BeLessThan(1e-12);
        // Sensitivity: the weights moved well beyond the tolerance.
        MaxAbsDiff(rank0, Read(dir, "ddp", "params-initial", 0)).Should().BeGreaterThan(1e-3);
    }

    [Theory]
    [InlineData("mpich")]
    [InlineData("openmpi")]
    public void TwoRanks_PerReplicaBatchNorm_EqualOneProcessNormalisingEachHalf(string flavor)
    {
        string dir = MpiRun.TempDir("sgd-local");
        RunReference(dir, "split");
        RunReference(dir, "single");
        RunDdp(flavor, dir, syncBn: false);
        var rank0 = Read(dir, "ddp", "params", 0);
        Read(dir, "ddp", "params", 1).Should().Equal(rank0);
        MaxAbsDiff(rank0, Read(dir, "split", "params", 0)).Should().BeLessThan(1e-12);
        // Per-replica statistics are not the global batch's: the one-process 2B run ends elsewhere.
        MaxAbsDiff(rank0, Read(dir, "single", "params", 0)).Should().BeGreaterThan(1e-3);
    }

    private static void RunReference(string dir, string mode)
    {
        var (code, stdout, stderr, timedOut) = MpiRun.Plain(300, null, MpiRun.Host, "sgd", Path.Combine(dir, mode), mode, "0", "2", "4", "4");
        timedOut.Should().BeFalse();
        code.Should().Be(0, stdout + stderr);
    }

    private static void RunDdp(string flavor, string dir, bool syncBn)
    {
        var (code, stdout, stderr, timedOut) = MpiRun.Run(flavor, 2, 300, null, MpiRun.Host, "sgd", Path.Combine(dir, "ddp"), "ddp", syncBn ? "1" : "0", "2", "4", "4");
        timedOut.Should().BeFalse();
        code.Should().Be(0, stdout + stderr);
    }

    private static double[] Read(string dir, string mode, string kind, int rank)
    {
        string path = Path.Combine(dir, mode, $"{kind}-rank{rank}.bin");
        File.Exists(path).Should().BeTrue($"the run writes {path}");
        var bytes = File.ReadAllBytes(path);
        var values = new double[bytes.Length / 8];
        Buffer.BlockCopy(bytes, 0, values, 0, values.Length * 8);
        return values;
    }

    private static double MaxAbsDiff(double[] a, double[] b)
    {
        a.Should().HaveCount(b.Length);
        return a.Zip(b, (x, y) => Math.Abs(x - y)).Max();
    }
}
