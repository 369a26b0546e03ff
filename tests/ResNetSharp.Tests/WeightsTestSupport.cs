using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using FluentAssertions;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNetSharp.Tests;

/// <summary>Small models and byte-exact state snapshots for the weight tests.</summary>
internal static class WeightsTestSupport
{
    /// <summary>A two-stage CIFAR-stem network (a few thousand parameters, with a projection shortcut and BN buffers).</summary>
    public static StageTable TinyTable { get; } = new()
    {
        Block = BlockKind.Basic,
        Layers = new[] { 1, 1 },
        Widths = new[] { 8, 16 },
        Strides = new[] { 1, 2 },
        Stem = StemKind.Cifar,
        StemWidth = 8,
        Shortcut = ShortcutOption.B,
    };

    public static ResNet Tiny(int numClasses = 5, ScalarType? dtype = null) =>
        ResNetFactory.Create(TinyTable, new ResNetOptions { NumClasses = numClasses, DType = dtype }, "tiny");

    /// <summary>Fills every parameter and buffer with seeded random values (BN stats included) so loads are observable.</summary>
    public static void Randomise(nn.Module model, int seed)
    {
        using var scope = torch.NewDisposeScope();
        var gen = new torch.Generator((ulong)seed);
        using var noGrad = torch.no_grad();
        foreach (var (name, t) in model.state_dict())
        {
            if (t.is_floating_point())
            {
                var r = torch.rand(t.shape, generator: gen, dtype: ScalarType.Float32) + 0.1; // positive: valid running_var
                t.copy_(r.to(t.dtype));
            }
            else
            {
                t.fill_(seed % 97 + 3);
            }
        }
    }

    /// <summary>Every state-dict entry as raw bytes (CPU, contiguous), for bit-exact comparisons.</summary>
    public static Dictionary<string, byte[]> Snapshot(nn.Module model)
    {
        using var scope = torch.NewDisposeScope();
        return model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu().contiguous().bytes.ToArray());
    }

    public static void ShouldEqual(this Dictionary<string, byte[]> actual, Dictionary<string, byte[]> expected)
    {
        if (!actual.Keys.OrderBy(k => k).SequenceEqual(expected.Keys.OrderBy(k => k)))
        {
            throw new Xunit.Sdk.XunitException("State-dict keys differ.");
        }

        var differing = expected.Where(kv => !kv.Value.AsSpan().SequenceEqual(actual[kv.Key])).Select(kv => kv.Key).ToList();
        if (differing.Count > 0)
        {
            throw new Xunit.Sdk.XunitException($"{differing.Count} tensors changed: {string.Join(", ", differing.Take(10))}");
        }
    }

    /// <summary>
    /// Runs <paramref name="model"/>'s stem and stages one by one on <paramref name="x"/> and requires each stage's output to
    /// match the reference stored under the stage's name in <paramref name="io"/>; returns the last stage's output.
    /// </summary>
    public static Tensor AssertStagesMatch(ResNet model, WeightFile io, Tensor x, double tolerance,
        string peer, Action<string> log)
    {
        var y = model.ForwardStem(x);
        foreach (var stage in model.Stages)
        {
            y = stage.Module.call(y);
            var expected = io[stage.Name].ToTensor();
            y.shape.Should().Equal(expected.shape, $"{stage.Name} output shape");
            double err = RelativeError(y, expected);
            log($"{model.ModelName} {stage.Name} {string.Join("×", y.shape)}: max|diff|/max|ref| = {err:E2}");
            err.Should().BeLessThanOrEqualTo(tolerance, $"{stage.Name} must match {peer}");
        }

        return y;
    }

    /// <summary>max|a − b| / max|b|: the error relative to the output's scale.</summary>
    public static double RelativeError(Tensor actual, Tensor reference)
    {
        using var scope = torch.NewDisposeScope();
        var a = actual.to(ScalarType.Float64).cpu();
        var b = reference.to(ScalarType.Float64).cpu();
        double diff = (a - b).abs().max().item<double>();
        double scale = b.abs().max().item<double>();
        return diff / scale;
    }

    public static string TempDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "resnetsharp-weights-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    public static byte[] TinySafeTensors(int seed = 1)
    {
        using var model = Tiny();
        Randomise(model, seed);
        using var ms = new MemoryStream();
        model.SaveWeights(ms);
        return ms.ToArray();
    }
}
