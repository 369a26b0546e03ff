using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using ResNetSharp.OnnxRuntime;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNetSharp.Cli.Commands;

/// <summary>
/// <c>resnet bench</c>: times plain vs ONNX Runtime inference (and optionally a training step) per batch size. Each
/// configuration runs in a fresh child process by default, so its peak RSS (VmHWM) is its own.
/// </summary>
internal static class BenchCommand
{
    /// <summary>One measured configuration; the JSON field names are the contract of <c>--json</c>.</summary>
    internal sealed record Result(
        string Name, string Mode, int Batch, int InputSize, int Threads, string Device, bool TunedAllocator, string Layout,
        int Warmup, int Iterations, double LatencyMs, double P90Ms, double MinMs, double ImagesPerSecond, double PeakRssMiB,
        int MicroBatch, double GflopsPerImage = 0, double? AchievedGflops = null, double? PeakGflops = null, double? FractionOfPeak = null);

    public static Command Create()
    {
        var name = new Argument<string>("name") { Description = "A registered model name (see 'resnet list')." };
        var batch = new Option<string>("--batch") { Description = "Comma-separated batch sizes.", DefaultValueFactory = _ => "1,16" };
        var input = new Option<int>("--input") { Description = "Input height and width.", DefaultValueFactory = _ => 224 };
        var inChannels = new Option<int?>("--in-channels") { Description = "Input channels of the model (default: the model's, 3; e.g. 1 for Fashion-MNIST)." };
        var threads = new Option<int?>("--threads") { Description = "Intra-op threads (default: libtorch's choice, the core count)." };
        var ort = new Option<bool>("--ort") { Description = "Only ONNX Runtime through model.ForInference() (CPU provider, --threads intra-op threads)." };
        var ortFile = new Option<bool>("--ort-file")
        {
            Description = "Only ONNX Runtime run directly on the exported .onnx file (a plain InferenceSession over ExportOnnx's output, default session options but --threads).",
        };
        var int8 = new Option<bool>("--int8")
        {
            Description = "Only int8 ONNX Runtime (ForInference with a Calibration, QDQ) calibrated on 8 Gaussian images: for timing only, not accuracy.",
        };
        var plain = new Option<bool>("--plain") { Description = "Only the plain eval-mode model under no_grad." };
        var train = new Option<bool>("--train") { Description = "Only a training step (forward, cross-entropy, backward, SGD step with momentum 0.9, weight decay 1e-4)." };
        var device = new Option<string>("--device") { Description = "auto, cpu, cuda or cuda:N.", DefaultValueFactory = _ => "cpu" };
        var iterations = new Option<int>("--iterations") { Description = "Timed iterations per configuration.", DefaultValueFactory = _ => 10 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed warm-up iterations.", DefaultValueFactory = _ => 3 };
        var layout = new Option<string>("--layout")
        {
            Description = "Training step's activation layout: auto, nchw or nhwc (ResNet.TrainingLayout).",
            DefaultValueFactory = _ => "auto",
        };
        var tune = new Option<bool>("--tune-allocator") { Description = "Apply AllocatorTuning (glibc mallopt) before building the model." };
        var inProcess = new Option<bool>("--in-process") { Description = "Run every configuration in this process (peak RSS is then cumulative)." };
        var peak = new Option<bool>("--peak") { Description = "Measure the fp32 FMA peak first (as 'resnet peak') and report each configuration's fraction of it." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object per configuration (one per line)." };
        var child = new Option<string?>("--child-mode") { Hidden = true };
        var command = new Command("bench", "Time inference (plain vs ONNX Runtime, float or int8) or training: median/p90 latency, images/s, peak RSS.")
        {
            name, batch, input, inChannels, threads, ort, ortFile, int8, plain, train, device, iterations, warmup, layout, tune, peak, inProcess, json, child,
        };

        command.SetAction(parse => Cli.Guard(() =>
        {
            var batches = ParseBatches(parse.GetValue(batch));
            int size = parse.GetValue(input);
            int iters = parse.GetValue(iterations);
            int warm = parse.GetValue(warmup);
            if (size < 1 || iters < 1 || warm < 0)
            {
                throw new ArgumentException($"--input and --iterations must be ≥ 1 and --warmup ≥ 0, got {size}, {iters}, {warm}.");
            }

            string model = parse.GetValue(name)!;
            if (!ResNetFactory.IsRegistered(model))
            {
                throw new ArgumentException($"Unknown model '{model}'. Registered names: {string.Join(", ", ResNetFactory.Names)}.");
            }

            string layoutName = parse.GetValue(layout) ?? "auto";
            int? channels = parse.GetValue(inChannels);
            if (channels is < 1)
            {
                throw new ArgumentException($"--in-channels must be ≥ 1, got {channels}.");
            }

            var settings = new Settings(model, size, channels, parse.GetValue(threads), parse.GetValue(device) ?? "cpu", iters, warm, parse.GetValue(tune),
                ParseLayout(layoutName));
            if (parse.GetValue(child) is { } childMode)
            {
                // Child process: one configuration, one compact JSON line for the parent.
                var single = Measure(settings, childMode, batches[0]);
                Console.WriteLine(JsonSerializer.Serialize(single, CompactJson));
                return 0;
            }

            var modes = new List<string>();
            if (parse.GetValue(plain))
            {
                modes.Add("plain");
            }

            if (parse.GetValue(ort))
            {
                modes.Add("ort");
            }

            if (parse.GetValue(ortFile))
            {
                modes.Add("ort-file");
            }

            if (parse.GetValue(int8))
            {
                modes.Add("ort-int8");
            }

            if (parse.GetValue(train))
            {
                modes.Add("train");
            }

            if (modes.Count == 0)
            {
                modes.AddRange(new[] { "plain", "ort" });
            }

            bool asJson = parse.GetValue(json);
            // Measured before any model exists, on an otherwise idle process, with the configurations' thread count.
            FmaPeak.Result? fma = parse.GetValue(peak) ? FmaPeak.Measure(settings.Threads ?? TorchThreads.IntraOp) : null;
            double gflopsPerImage = ForwardGflopsPerImage(model, size);
            if (!asJson)
            {
                if (fma is not null)
                {
                    Console.WriteLine($"fp32 FMA peak: {fma.Gflops:F1} GFLOP/s ({fma.Isa}, {fma.Threads} threads); forward: {gflopsPerImage:F3} GFLOP per image");
                }

                Console.WriteLine($"{"model",-18} {"mode",-10} {"batch",5} {"input",5} {"thr",3} {"median ms",10} {"p90 ms",10} {"images/s",9} {"peak RSS MiB",13} {"GFLOP/s",8} {"of peak",8}");
            }

            foreach (int b in batches)
            {
                foreach (var mode in modes)
                {
                    var r = parse.GetValue(inProcess) ? Measure(settings, mode, b) : MeasureInChild(settings, mode, b);
                    double? achieved = mode == "train" ? null : Math.Round(r.ImagesPerSecond * gflopsPerImage, 1);
                    r = r with
                    {
                        GflopsPerImage = Math.Round(gflopsPerImage, 4),
                        AchievedGflops = achieved,
                        PeakGflops = fma?.Gflops,
                        FractionOfPeak = achieved is { } a && fma is not null ? Math.Round(a / fma.Gflops, 3) : null,
                    };
                    if (asJson)
                    {
                        Console.WriteLine(JsonSerializer.Serialize(r, CompactJson));
                    }
                    else
                    {
                        Console.WriteLine($"{r.Name,-18} {r.Mode,-10} {r.Batch,5} {r.InputSize,5} {r.Threads,3} {r.LatencyMs,10:F1} {r.P90Ms,10:F1} {r.ImagesPerSecond,9:F2} {r.PeakRssMiB,13:F0} {r.AchievedGflops,8:F1} {r.FractionOfPeak,8:P0}");
                    }
                }
            }

            return 0;
        }));
        return command;
    }

    private static readonly JsonSerializerOptions CompactJson = new(Cli.Json) { WriteIndented = false };

    private sealed record Settings(string Model, int Size, int? InChannels, int? Threads, string Device, int Iterations, int Warmup, bool Tune, TrainingLayout Layout);

    /// <summary>2 × the multiply-adds of one image's forward pass (convs and classifier), as 'resnet summary' counts them.</summary>
    private static double ForwardGflopsPerImage(string model, int size)
    {
        using var net = ResNetFactory.Create(model);
        return 2.0 * net.Summarize(size).MultiplyAdds / 1e9;
    }

    private static TrainingLayout ParseLayout(string text) => text.Trim().ToLowerInvariant() switch
    {
        "auto" => TrainingLayout.Auto,
        "nchw" or "channels-first" => TrainingLayout.ChannelsFirst,
        "nhwc" or "channels-last" => TrainingLayout.ChannelsLast,
        _ => throw new ArgumentException($"--layout must be auto, nchw or nhwc, got '{text}'."),
    };

    private static string LayoutName(TrainingLayout layout) => layout switch
    {
        TrainingLayout.ChannelsFirst => "nchw",
        TrainingLayout.ChannelsLast => "nhwc",
        _ => "auto",
    };

    private static List<int> ParseBatches(string? text)
    {
        var parts = (text ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var result = new List<int>();
        foreach (var p in parts)
        {
            if (!int.TryParse(p, out int b) || b < 1)
            {
                throw new ArgumentException($"--batch expects comma-separated positive integers such as 1,16; got '{text}'.");
            }

            result.Add(b);
        }

        return result.Count > 0 ? result : throw new ArgumentException("--batch needs at least one batch size, e.g. 1,16.");
    }

    private static Result MeasureInChild(Settings s, string mode, int batch)
    {
        string exe = Environment.ProcessPath ?? throw new InvalidOperationException("Cannot find this program's path to start a child process; use --in-process.");
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(exe) == "dotnet")
        {
            psi.ArgumentList.Add(Assembly.GetEntryAssembly()!.Location);
        }

        foreach (var a in new[] { "bench", s.Model, "--batch", batch.ToString(), "--input", s.Size.ToString(), "--device", s.Device,
                     "--iterations", s.Iterations.ToString(), "--warmup", s.Warmup.ToString(), "--child-mode", mode,
                     "--layout", LayoutName(s.Layout) })
        {
            psi.ArgumentList.Add(a);
        }

        if (s.InChannels is { } c)
        {
            psi.ArgumentList.Add("--in-channels");
            psi.ArgumentList.Add(c.ToString());
        }

        if (s.Threads is { } t)
        {
            psi.ArgumentList.Add("--threads");
            psi.ArgumentList.Add(t.ToString());
        }

        if (s.Tune)
        {
            psi.ArgumentList.Add("--tune-allocator");
        }

        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"Could not start {exe}.");
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"The benchmark child for {mode}, batch {batch} failed (exit {process.ExitCode}): {stderr.Result.Trim()}");
        }

        string line = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last();
        return JsonSerializer.Deserialize<Result>(line, CompactJson) ?? throw new InvalidOperationException($"The benchmark child printed no result: {stdout}");
    }

    private static Result Measure(Settings s, string mode, int batch)
    {
        bool tuned = s.Tune && AllocatorTuning.Apply();
        if (s.Threads is { } t)
        {
            TorchThreads.SetIntraOp(t);
        }

        var dev = TorchDevices.Resolve(s.Device);
        using var model = ResNetFactory.Create(s.Model, new ResNetOptions { Device = dev, InChannels = s.InChannels ?? 3 });
        using var x = torch.randn(new long[] { batch, model.Options.InChannels, s.Size, s.Size }, device: dev);
        Action step;
        IDisposable? owned = null;
        int micro = batch;
        string usedLayout = "nchw";
        switch (mode)
        {
            case "plain":
                model.eval();
                step = () =>
                {
                    using var noGrad = torch.no_grad();
                    model.call(x).Dispose();
                };
                break;
            case "ort":
            case "ort-int8":
            {
                var session = model.ForInference(new ResNetSharp.OnnxRuntime.InferenceOptions
                {
                    IntraOpThreads = s.Threads ?? 0,
                    Device = TorchSharp.torch.CPU,
                    Calibration = mode == "ort-int8" ? CalibrationSource.Random(model, s.Size) : null,
                });
                owned = session;
                usedLayout = mode == "ort-int8" ? "onnxruntime-int8" : "onnxruntime";
                model.Dispose();
                step = () => session.Forward(x).Dispose();
                break;
            }

            case "ort-file":
            {
                string file = Path.Combine(Path.GetTempPath(), $"resnet-bench-{Environment.ProcessId}.onnx");
                model.ExportOnnx(file);
                model.Dispose();
                using var options = new SessionOptions { IntraOpNumThreads = s.Threads ?? 0 };
                var session = new InferenceSession(file, options);
                File.Delete(file);
                float[] pixels = x.data<float>().ToArray();
                var input = OrtValue.CreateTensorValueFromMemory(pixels, x.shape);
                owned = new CompositeDisposable(session, input);
                usedLayout = "onnxruntime-file";
                step = () =>
                {
                    using var run = new RunOptions();
                    using var outputs = session.Run(run, new[] { "input" }, new[] { input }, new[] { "logits" });
                };
                break;
            }

            case "train":
                model.train();
                model.TrainingLayout = s.Layout;
                usedLayout = model.ResolvedTrainingLayout == TrainingLayout.ChannelsLast ? "nhwc" : "nchw";
                var optimizer = torch.optim.SGD(model.parameters(), 0.01, momentum: 0.9, weight_decay: 1e-4);
                // Random labels, fixed for the run, are fine for timing.
                var labels = torch.randint(model.NumClasses, new long[] { batch }, device: dev);
                owned = new CompositeDisposable(optimizer, labels);
                step = () =>
                {
                    using var scope = torch.NewDisposeScope();
                    optimizer.zero_grad();
                    var loss = nn.functional.cross_entropy(model.call(x), labels);
                    loss.backward();
                    optimizer.step();
                };
                break;
            default:
                throw new ArgumentException($"Unknown mode '{mode}': expected plain, ort, ort-file, ort-int8 or train.");
        }

        try
        {
            for (int i = 0; i < s.Warmup; i++)
            {
                step();
            }

            var times = new double[s.Iterations];
            for (int i = 0; i < times.Length; i++)
            {
                var watch = Stopwatch.StartNew();
                step();
                if (dev.type == DeviceType.CUDA)
                {
                    torch.cuda.synchronize();
                }

                times[i] = watch.Elapsed.TotalMilliseconds;
            }

            Array.Sort(times);
            double median = times.Length % 2 == 1 ? times[times.Length / 2] : (times[times.Length / 2 - 1] + times[times.Length / 2]) / 2;
            double p90 = times[Math.Min(times.Length - 1, (int)Math.Ceiling(0.9 * times.Length) - 1)];
            return new Result(s.Model, mode, batch, s.Size, TorchThreads.IntraOp, dev.ToString(), tuned, usedLayout, s.Warmup, s.Iterations,
                Math.Round(median, 2), Math.Round(p90, 2), Math.Round(times[0], 2), Math.Round(batch / (median / 1000), 3), Math.Round(PeakRssMiB(), 1), micro);
        }
        finally
        {
            owned?.Dispose();
        }
    }

    private sealed class CompositeDisposable(params IDisposable[] items) : IDisposable
    {
        public void Dispose()
        {
            foreach (var item in items)
            {
                item.Dispose();
            }
        }
    }

    /// <summary>The process's peak resident set (VmHWM) in MiB; 0 where /proc is not available.</summary>
    private static double PeakRssMiB()
    {
        const string status = "/proc/self/status";
        if (!File.Exists(status))
        {
            return 0;
        }

        var line = File.ReadLines(status).FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0;
    }
}
