using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using ResNetSharp.Images;
using ResNetSharp.Onnx.Proto;
using TorchSharp;
using Tensor = TorchSharp.torch.Tensor;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace ResNetSharp.OnnxRuntime;

/// <summary>
/// The images that calibrate int8 activation ranges (preprocessed as the model expects) and the percentile kept: the
/// float model runs on them in ONNX Runtime with every quantised activation as an extra output, and each activation's
/// range runs from the (100 − <see cref="Percentile"/>)-th to the <see cref="Percentile"/>-th percentile of the values
/// seen, so that a few outliers do not stretch the range and coarsen every other value. A percentile of 100 is the
/// smallest and largest value seen (min-max). Setting <see cref="InferenceOptions.Calibration"/> is what makes
/// <see cref="InferenceExtensions.ForInference"/> build the int8 network.
/// </summary>
public sealed class Calibration
{
    private const int Bins = 4096;
    private readonly float[] data;

    private Calibration(float[] data, int count, int channels, int height, int width, double percentile, string source)
    {
        if (!(percentile > 50 && percentile <= 100))
        {
            throw new ArgumentOutOfRangeException(nameof(percentile), percentile, "The calibration percentile must be in (50, 100], e.g. 99.999 (100: min-max).");
        }

        if (count < 1)
        {
            throw new ArgumentException("Calibration needs at least one image.", nameof(data));
        }

        this.data = data;
        Count = count;
        Channels = channels;
        Height = height;
        Width = width;
        Percentile = percentile;
        Source = source;
    }

    /// <summary>The default percentile, 99.999.</summary>
    public const double DefaultPercentile = 99.999;

    /// <summary>Images held.</summary>
    public int Count { get; }

    /// <summary>Channels of each image.</summary>
    public int Channels { get; }

    /// <summary>Height of each image.</summary>
    public int Height { get; }

    /// <summary>Width of each image.</summary>
    public int Width { get; }

    /// <summary>The percentile kept: each range runs from the (100 − this)-th to this percentile of the values seen; 100 is min-max.</summary>
    public double Percentile { get; }

    /// <summary>The calibration percentile that is min-max: the smallest and largest value seen.</summary>
    public const double MinMax = 100;

    /// <summary>Where the images came from (recorded in a quantised file's metadata).</summary>
    public string Source { get; }

    /// <summary>The recipe as recorded in a quantised model's metadata.</summary>
    public string Recipe => string.Create(CultureInfo.InvariantCulture,
        $"{(Percentile >= MinMax ? "min-max" : $"percentile {Percentile}")} over {Count} images ({Channels}×{Height}×{Width}) from {Source}");

    /// <summary>Calibration images from a preprocessed batch (N × C × H × W, normalised as the model expects); the data is copied.</summary>
    /// <param name="batch">float32 images on any device.</param>
    /// <param name="percentile">Kept percentile, in (50, 100]; <see cref="MinMax"/> (100) for min-max. Default <see cref="DefaultPercentile"/>.</param>
    /// <param name="source">A label for the recipe.</param>
    /// <exception cref="ArgumentException">The tensor is not a non-empty float32 N × C × H × W batch.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="percentile"/> is outside (50, 100].</exception>
    public static Calibration FromTensor(Tensor batch, double percentile = DefaultPercentile, string source = "a tensor")
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.dim() != 4 || batch.dtype != torch.ScalarType.Float32 || batch.shape[0] < 1)
        {
            throw new ArgumentException(
                $"Calibration images must be a float32 batch N×C×H×W with N ≥ 1, got {batch.dtype} [{string.Join(", ", batch.shape)}].", nameof(batch));
        }

        using var cpu = batch.detach().cpu().contiguous();
        return new Calibration(cpu.data<float>().ToArray(), (int)batch.shape[0], (int)batch.shape[1], (int)batch.shape[2], (int)batch.shape[3],
            percentile, source);
    }

    /// <summary>Calibration images from decoded pictures, preprocessed by <paramref name="transform"/> (the model's eval transform).</summary>
    /// <param name="images">The pictures (at least one).</param>
    /// <param name="transform">The eval transform, e.g. <c>new ImageTransform(model.Metadata)</c>.</param>
    /// <param name="percentile">Kept percentile, in (50, 100]; <see cref="MinMax"/> (100) for min-max. Default <see cref="DefaultPercentile"/>.</param>
    /// <param name="source">A label for the recipe.</param>
    /// <exception cref="ArgumentException">No image was given.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="percentile"/> is outside (50, 100].</exception>
    public static Calibration FromImages(IEnumerable<PixelImage> images, ImageTransform transform, double percentile = DefaultPercentile, string source = "images")
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(transform);
        var data = new List<float>();
        int count = 0;
        foreach (var image in images)
        {
            data.AddRange(transform.Apply(image));
            count++;
        }

        return new Calibration(data.ToArray(), count, transform.Channels, transform.InputSize, transform.InputSize, percentile, source);
    }

    /// <summary>
    /// Runs the float <paramref name="model"/> over the images with the named activations as outputs and returns each
    /// one's range: min-max in one pass, percentile in two (ranges first, then a histogram over them).
    /// </summary>
    internal Dictionary<string, (float Min, float Max)> Collect(ModelProto model, IReadOnlyCollection<string> names, InferenceOptions options)
    {
        var probe = model.Clone();
        probe.Graph.Output.Clear();
        var inputs = probe.Graph.Input.Select(i => i.Name).ToHashSet();
        foreach (string name in names)
        {
            string output = name;
            if (inputs.Contains(name))
            {
                // A graph input cannot be an output too: an Identity copy is.
                output = name + ".calibration";
                var copy = new NodeProto { OpType = "Identity", Name = output };
                copy.Input.Add(name);
                copy.Output.Add(output);
                probe.Graph.Node.Insert(0, copy);
            }

            probe.Graph.Output.Add(new ValueInfoProto
            {
                Name = output,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } },
            });
        }

        var outputs = probe.Graph.Output.Select(o => o.Name).ToArray();
        using var session = Sessions.Create(probe.ToByteArray(), options with { Device = TorchSharp.torch.CPU }).Session;
        var min = outputs.ToDictionary(n => n, _ => float.PositiveInfinity);
        var max = outputs.ToDictionary(n => n, _ => float.NegativeInfinity);
        ForEachBatch(session, outputs, (name, values) =>
        {
            foreach (float v in values)
            {
                if (v < min[name])
                {
                    min[name] = v;
                }

                if (v > max[name])
                {
                    max[name] = v;
                }
            }
        });
        if (Percentile >= MinMax)
        {
            return names.Zip(outputs).ToDictionary(p => p.First, p => (min[p.Second], max[p.Second]));
        }

        var histograms = outputs.ToDictionary(n => n, _ => new long[Bins]);
        ForEachBatch(session, outputs, (name, values) =>
        {
            var h = histograms[name];
            float lo = min[name], width = (max[name] - lo) / Bins;
            if (!(width > 0))
            {
                h[0] += values.Length;
                return;
            }

            foreach (float v in values)
            {
                h[Math.Clamp((int)((v - lo) / width), 0, Bins - 1)]++;
            }
        });

        var ranges = new Dictionary<string, (float Min, float Max)>();
        foreach (var (key, name) in names.Zip(outputs))
        {
            var h = histograms[name];
            long total = h.Sum();
            double tail = total * (100 - Percentile) / 100;
            float lo = min[name], width = (max[name] - lo) / Bins;
            int top = Bins - 1;
            for (long seen = h[top]; top > 0 && seen <= tail; seen += h[--top])
            {
            }

            int bottom = 0;
            for (long seen = h[0]; bottom < Bins - 1 && seen <= tail; seen += h[++bottom])
            {
            }

            // Bins wholly beyond the kept percentile are dropped; the range ends at the edge of the last kept bin.
            float high = top == Bins - 1 ? max[name] : lo + (width * (top + 1));
            float low = bottom == 0 ? lo : lo + (width * bottom);
            ranges[key] = (Math.Min(low, high), high);
        }

        return ranges;
    }

    private void ForEachBatch(InferenceSession session, string[] outputs, Action<string, ReadOnlySpan<float>> visit)
    {
        const int BatchSize = 8;
        int size = Channels * Height * Width;
        for (int start = 0; start < Count; start += BatchSize)
        {
            int n = Math.Min(BatchSize, Count - start);
            var memory = new Memory<float>(data, start * size, n * size);
            using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, memory, new long[] { n, Channels, Height, Width });
            using var run = new RunOptions();
            using var results = session.Run(run, new[] { "input" }, new[] { input }, outputs);
            for (int i = 0; i < outputs.Length; i++)
            {
                visit(outputs[i], results[i].GetTensorDataAsSpan<float>());
            }
        }
    }
}
