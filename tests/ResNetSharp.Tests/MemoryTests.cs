using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using FluentAssertions;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ResNetSharp.Tests;

/// <summary>
/// Bounded leak checks: 1,000 forward passes of a small CIFAR ResNet-20 (16×16 input, so it runs in seconds) must leave the resident set flat after a
/// warm-up. Tolerance 16 MiB: a leak of one first-stage activation per pass (16×32×32 floats = 64 KiB) grows RSS
/// by 64 MiB over the run, while the allowance covers the managed heap's gen-0 budget (tensor wrappers are
/// garbage until a GC runs) and allocator noise. The last test shows the probe sees such a leak.
/// </summary>
public class MemoryTests
{
    private const int Passes = 1000;
    private const double ToleranceMiB = 16;
    private readonly ITestOutputHelper output;

    public MemoryTests(ITestOutputHelper output) => this.output = output;

    internal static double RssMiB(string field = "VmRSS")
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0;
            }
        }

        throw new InvalidOperationException($"{field} not found in /proc/self/status");
    }

    private static StageTable Cifar20 => new()
    {
        Block = BlockKind.Basic, Layers = new[] { 3, 3, 3 }, Widths = new[] { 16, 32, 64 }, Strides = new[] { 1, 2, 2 },
        Stem = StemKind.Cifar, StemWidth = 16, Shortcut = ShortcutOption.A,
    };

    private double Growth(Func<Tensor, Tensor> forward, Tensor x)
    {
        for (int i = 0; i < 100; i++)
        {
            forward(x).Dispose();
        }

        double start = RssMiB();
        double peak = start;
        for (int i = 0; i < Passes; i++)
        {
            forward(x).Dispose();
            if (i % 100 == 99)
            {
                peak = Math.Max(peak, RssMiB());
            }
        }

        output.WriteLine($"RSS after warm-up {start:F1} MiB, highest during {Passes} passes {peak:F1} MiB");
        return peak - start;
    }

    [Fact]
    public void InferenceModel_ThousandPasses_RssStaysFlat()
    {
        using var model = new ResNet(Cifar20);
        using var fast = model.ForInference();
        using var x = torch.randn(1, 3, 16, 16);
        Growth(fast.call, x).Should().BeLessThan(ToleranceMiB);
    }

    [Fact]
    public void PlainModel_ThousandPasses_RssStaysFlat()
    {
        using var model = new ResNet(Cifar20);
        model.eval();
        using var x = torch.randn(1, 3, 16, 16);
        using var noGrad = torch.no_grad();
        Growth(model.call, x).Should().BeLessThan(ToleranceMiB);
    }

    [Fact]
    public void Probe_SeesALeakOfOneActivationPerPass()
    {
        var kept = new List<Tensor>();
        try
        {
            using var model = new ResNet(Cifar20);
            using var fast = model.ForInference();
            using var x = torch.randn(1, 3, 16, 16);
            Growth(t =>
            {
                var y = fast.call(t);
                kept.Add(torch.ones(16, 32, 32)); // the 64 KiB a forgotten Dispose would leave behind
                return y;
            }, x).Should().BeGreaterThan(ToleranceMiB);
        }
        finally
        {
            kept.ForEach(t => t.Dispose());
        }
    }
}
