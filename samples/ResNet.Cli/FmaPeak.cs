using System;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Threading;

namespace ResNetSharp.Cli;

/// <summary>
/// Measures the machine's fp32 fused-multiply-add peak: every thread runs independent chains of vector FMAs
/// (<see cref="Chains"/> accumulators, enough to hide the FMA latency on both FMA pipes of current x86 cores) with
/// nothing else in the loop, at the widest vector width the hardware accelerates. The result is the rate a convolution
/// kernel could at best reach on the same cores, the denominator of "percent of peak".
/// </summary>
internal static class FmaPeak
{
    /// <summary>Independent accumulator chains per thread.</summary>
    internal const int Chains = 12;

    /// <summary>The multiplier and addend of every FMA: a ← a·M + C, which converges to C / (1 − M) without overflow.</summary>
    internal const float M = 0.999f;

    /// <inheritdoc cref="M"/>
    internal const float C = 0.001f;

    /// <summary>Every accumulator's start value; a_n = 1 + Mⁿ(Start − 1), since C / (1 − M) = 1.</summary>
    internal const float Start = 2f;

    /// <summary>One measurement.</summary>
    internal sealed record Result(string Isa, int VectorFloats, int Threads, double Gflops, double Seconds);

    /// <summary>The vector instruction set the kernel uses here and its width in floats.</summary>
    internal static (string Isa, int Floats) Isa =>
        Vector512.IsHardwareAccelerated && Avx512F.IsSupported ? ("avx512f", 16)
        : Vector256.IsHardwareAccelerated && Fma.IsSupported ? ("avx2-fma", 8)
        : Vector128.IsHardwareAccelerated ? ("vector128", 4)
        : ("scalar", 1);

    /// <summary>
    /// Runs <paramref name="threads"/> threads of FMA chains at once, <paramref name="repeats"/> times, each for
    /// about <paramref name="seconds"/> seconds, and returns the best rate.
    /// </summary>
    internal static Result Measure(int threads, double seconds = 0.5, int repeats = 3)
    {
        if (threads < 1 || seconds <= 0 || repeats < 1)
        {
            throw new ArgumentException($"FMA peak: threads and repeats must be ≥ 1 and seconds > 0, got {threads}, {seconds}, {repeats}.");
        }

        var (isa, floats) = Isa;
        // Calibrate on one thread: iterations for the requested time.
        Kernel(1_000);
        var watch = Stopwatch.StartNew();
        long probe = 2_000_000;
        Kernel(probe);
        double perIteration = Math.Max(watch.Elapsed.TotalSeconds / probe, 1e-12);
        long iterations = Math.Max(1_000, (long)(seconds / perIteration));

        double best = double.MaxValue;
        for (int r = 0; r < repeats; r++)
        {
            best = Math.Min(best, RunThreads(threads, iterations));
        }

        double flops = 2.0 * Chains * floats * iterations * threads;
        return new Result(isa, floats, threads, Math.Round(flops / best / 1e9, 1), Math.Round(best, 3));
    }

    private static double RunThreads(int threads, long iterations)
    {
        using var start = new Barrier(threads + 1);
        var workers = new Thread[threads];
        float sink = 0;
        for (int t = 0; t < threads; t++)
        {
            workers[t] = new Thread(() =>
            {
                start.SignalAndWait();
                float s = Kernel(iterations);
                Interlocked.Exchange(ref sink, s);
            }) { IsBackground = true };
            workers[t].Start();
        }

        start.SignalAndWait();
        var watch = Stopwatch.StartNew();
        foreach (var w in workers)
        {
            w.Join();
        }

        GC.KeepAlive(sink);
        return watch.Elapsed.TotalSeconds;
    }

    /// <summary>
    /// <see cref="Chains"/> chains of <paramref name="iterations"/> FMAs each, a ← a·M + C from a = <see cref="Start"/>,
    /// at the widest accelerated width; returns the sum over chains and lanes (12 · width · a_n), so the work cannot be
    /// elided and the arithmetic can be checked against the closed form a_n = 1 + Mⁿ(Start − 1).
    /// </summary>
    internal static float Kernel(long iterations) => Isa.Floats switch
    {
        16 => Kernel512(iterations),
        8 => Kernel256(iterations),
        _ => KernelScalar(iterations),
    };

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Kernel512(long n)
    {
        var m = Vector512.Create(M);
        var c = Vector512.Create(C);
        Vector512<float> a0 = Vector512.Create(Start), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
        for (long i = 0; i < n; i++)
        {
            a0 = Avx512F.FusedMultiplyAdd(a0, m, c);
            a1 = Avx512F.FusedMultiplyAdd(a1, m, c);
            a2 = Avx512F.FusedMultiplyAdd(a2, m, c);
            a3 = Avx512F.FusedMultiplyAdd(a3, m, c);
            a4 = Avx512F.FusedMultiplyAdd(a4, m, c);
            a5 = Avx512F.FusedMultiplyAdd(a5, m, c);
            a6 = Avx512F.FusedMultiplyAdd(a6, m, c);
            a7 = Avx512F.FusedMultiplyAdd(a7, m, c);
            a8 = Avx512F.FusedMultiplyAdd(a8, m, c);
            a9 = Avx512F.FusedMultiplyAdd(a9, m, c);
            a10 = Avx512F.FusedMultiplyAdd(a10, m, c);
            a11 = Avx512F.FusedMultiplyAdd(a11, m, c);
        }

        return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Kernel256(long n)
    {
        var m = Vector256.Create(M);
        var c = Vector256.Create(C);
        Vector256<float> a0 = Vector256.Create(Start), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
        for (long i = 0; i < n; i++)
        {
            a0 = Fma.MultiplyAdd(a0, m, c);
            a1 = Fma.MultiplyAdd(a1, m, c);
            a2 = Fma.MultiplyAdd(a2, m, c);
            a3 = Fma.MultiplyAdd(a3, m, c);
            a4 = Fma.MultiplyAdd(a4, m, c);
            a5 = Fma.MultiplyAdd(a5, m, c);
            a6 = Fma.MultiplyAdd(a6, m, c);
            a7 = Fma.MultiplyAdd(a7, m, c);
            a8 = Fma.MultiplyAdd(a8, m, c);
            a9 = Fma.MultiplyAdd(a9, m, c);
            a10 = Fma.MultiplyAdd(a10, m, c);
            a11 = Fma.MultiplyAdd(a11, m, c);
        }

        return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float KernelScalar(long n)
    {
        // Not a peak on machines without vector FMA, only a fallback so that the command still answers.
        float a0 = Start, a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
        for (long i = 0; i < n; i++)
        {
            a0 = MathF.FusedMultiplyAdd(a0, M, C);
            a1 = MathF.FusedMultiplyAdd(a1, M, C);
            a2 = MathF.FusedMultiplyAdd(a2, M, C);
            a3 = MathF.FusedMultiplyAdd(a3, M, C);
            a4 = MathF.FusedMultiplyAdd(a4, M, C);
            a5 = MathF.FusedMultiplyAdd(a5, M, C);
            a6 = MathF.FusedMultiplyAdd(a6, M, C);
            a7 = MathF.FusedMultiplyAdd(a7, M, C);
            a8 = MathF.FusedMultiplyAdd(a8, M, C);
            a9 = MathF.FusedMultiplyAdd(a9, M, C);
            a10 = MathF.FusedMultiplyAdd(a10, M, C);
            a11 = MathF.FusedMultiplyAdd(a11, M, C);
        }

        return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;
    }
}
