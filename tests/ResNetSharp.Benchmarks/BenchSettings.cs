using System;
using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNetSharp.Benchmarks;

/// <summary>Settings shared by every benchmark, read once from the environment.</summary>
internal static class BenchSettings
{
    /// <summary>Intra-op threads for libtorch (default 2).</summary>
    public const string ThreadsVariable = "RESNETSHARP_BENCH_THREADS";

    /// <summary>Set to 1 to call <see cref="AllocatorTuning.Apply"/> before any benchmark runs.</summary>
    public const string TuneAllocatorVariable = "RESNETSHARP_BENCH_TUNE_ALLOCATOR";

    public static int Threads { get; } = ReadThreads();

    public static bool TuneAllocator { get; } = Environment.GetEnvironmentVariable(TuneAllocatorVariable) is "1" or "true";

    /// <summary>
    /// Sets libtorch's intra-op threads. Called from each [GlobalSetup], i.e. on the thread that then runs the
    /// benchmark: OpenMP's thread count is per calling thread, and the in-process toolchain runs each benchmark
    /// on a thread of its own.
    /// </summary>
    public static void ApplyThreads()
    {
        TorchThreads.SetIntraOp(Threads);
        if (TorchThreads.IntraOp != Threads)
        {
            throw new InvalidOperationException($"Asked libtorch for {Threads} intra-op threads, it reports {TorchThreads.IntraOp}.");
        }

        torch.random.manual_seed(0);
    }

    /// <summary>
    /// Throws unless <paramref name="actual"/> has <paramref name="expected"/>'s shape and
    /// max|actual − expected| ≤ <paramref name="tolerance"/> · max|expected|.
    /// </summary>
    public static void CheckAgreement(Tensor expected, Tensor actual, string what, double tolerance = 1e-3)
    {
        ArgumentNullException.ThrowIfNull(expected);
        ArgumentNullException.ThrowIfNull(actual);
        if (!expected.shape.AsSpan().SequenceEqual(actual.shape))
        {
            throw new InvalidOperationException(
                $"{what}: shape [{string.Join(", ", actual.shape)}], expected [{string.Join(", ", expected.shape)}].");
        }

        using var scope = torch.NewDisposeScope();
        double scale = expected.abs().max().to(ScalarType.Float64).item<double>();
        double error = (actual.to(ScalarType.Float64) - expected.to(ScalarType.Float64)).abs().max().item<double>();
        if (!(error <= tolerance * scale))
        {
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                $"{what}: max abs difference {error:G4} exceeds {tolerance:G2} × max|reference| = {tolerance * scale:G4}."));
        }
    }

    private static int ReadThreads()
    {
        string? text = Environment.GetEnvironmentVariable(ThreadsVariable);
        if (string.IsNullOrEmpty(text))
        {
            return 2;
        }

        return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int threads) && threads >= 1
            ? threads
            : throw new InvalidOperationException($"{ThreadsVariable} must be a whole number ≥ 1, got '{text}'.");
    }
}
