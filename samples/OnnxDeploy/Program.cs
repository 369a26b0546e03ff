// Runs an ONNX ResNet (exported by ResNetSharp, PyTorch or any other tool) with ONNX Runtime alone, on images or on
// random input, and prints the top-k classes (or, for a headless model, the first features). Preprocessing comes from the
// model's metadata_props (the keys ResNetSharp's ModelMetadata writes: input_size, crop_pct, interpolation, mean, std,
// channel_order, pixel_max, mean_image, class_names). A file that does not record it (or records it as unknown) is
// refused for images unless --imagenet states torchvision's ImageNet preprocessing: nothing is guessed.
//
//   dotnet run --project samples/OnnxDeploy -c Release -- MODEL.onnx [IMAGE ...] [--top K] [--random N] [--imagenet]
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using SkiaSharp;

var files = new List<string>();
int top = 5, randomCount = 0;
bool assumeImageNet = false;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--top" when i + 1 < args.Length:
            top = int.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        case "--random" when i + 1 < args.Length:
            randomCount = int.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        case "--imagenet":
            assumeImageNet = true;
            break;
        default:
            files.Add(args[i]);
            break;
    }
}

if (files.Count == 0 || top < 1 || randomCount < 0 || (files.Count == 1 && randomCount == 0))
{
    Console.Error.WriteLine("usage: onnx-deploy MODEL.onnx [IMAGE ...] [--top K] [--random N] [--imagenet]   (at least one image or --random N)");
    return 2;
}

string modelPath = files[0];
try
{
    using var options = new SessionOptions { IntraOpNumThreads = Environment.ProcessorCount };
    using var session = new InferenceSession(modelPath, options);
    var input = session.InputMetadata.First();
    var pre = Preprocessing.From(session.ModelMetadata.CustomMetadataMap, input.Value.Dimensions, assumeImageNet);
    if (pre.Unknown is { } why && files.Count > 1)
    {
        Console.Error.WriteLine($"onnx-deploy: error: {Path.GetFileName(modelPath)} {why}, so its images cannot be prepared without guessing. " +
                                "Pass --imagenet if it takes torchvision's ImageNet preprocessing, or export it with its metadata (resnet export).");
        return 1;
    }

    Console.WriteLine($"{Path.GetFileName(modelPath)}: input '{input.Key}' [{string.Join(", ", input.Value.Dimensions)}], " +
                      $"{pre.Channels}×{pre.Size}×{pre.Size}, resize {pre.ResizeSize} + centre crop, {(pre.Bgr ? "BGR" : "RGB")} in [0, {pre.PixelMax}], " +
                      $"mean [{string.Join(", ", pre.Mean)}]{(pre.MeanImage is null ? "" : " + mean image")}, std [{string.Join(", ", pre.Std)}]" +
                      (pre.ClassNames is null ? "" : $", {pre.ClassNames.Length} class names"));

    var batches = files.Skip(1).Select(f => (Name: f, Data: pre.LoadImage(f)))
        .Concat(Enumerable.Range(0, randomCount).Select(r => (Name: $"random #{r}", Data: pre.Random(1234 + r))));
    foreach (var (name, data) in batches)
    {
        var tensor = new DenseTensor<float>(data, new[] { 1, pre.Channels, pre.Size, pre.Size });
        using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor(input.Key, tensor) });
        var output = results[0].AsTensor<float>();
        float[] values = output.ToArray();
        if (output.Dimensions.Length != 2)
        {
            Console.WriteLine($"{name}: output [{string.Join(", ", output.Dimensions.ToArray())}] (features): " +
                              string.Join(", ", values.Take(5).Select(v => v.ToString("F4", CultureInfo.InvariantCulture))) + ", …");
            continue;
        }

        float max = values.Max();
        double sum = values.Sum(v => Math.Exp(v - max));
        var best = values.Select((v, k) => (k, p: Math.Exp(v - max) / sum)).OrderByDescending(t => t.p).Take(top);
        Console.WriteLine($"{name}:");
        foreach (var (k, p) in best)
        {
            Console.WriteLine($"  {p,7:P2}  {k,5}  {pre.ClassNames?[k] ?? ""}");
        }
    }

    return 0;
}
catch (Exception ex) when (ex is OnnxRuntimeException or IOException or InvalidDataException or FormatException or JsonException or ArgumentException)
{
    Console.Error.WriteLine($"onnx-deploy: error: {ex.Message.Split('\n')[0]}");
    return 1;
}

/// <summary>
/// The transform a model expects: resize the short side, centre crop, scale to [0, PixelMax], order the channels, subtract
/// the per-channel mean and the mean image, divide by the std. <see cref="Unknown"/> says why it is not known, when it is not.
/// </summary>
internal sealed record Preprocessing(int Channels, int Size, double CropPct, bool Bicubic, float[] Mean, float[] Std, string[]? ClassNames,
    bool Bgr, float PixelMax, float[]? MeanImage, string? Unknown)
{
    public int ResizeSize => (int)Math.Floor(Size / CropPct + 1e-9);

    public static Preprocessing From(IReadOnlyDictionary<string, string> meta, int[] inputDims, bool assumeImageNet)
    {
        T? Json<T>(string key) => meta.TryGetValue(key, out string? v) ? JsonSerializer.Deserialize<T>(v) : default;
        int fixedChannels = inputDims.Length == 4 && inputDims[1] > 0 ? inputDims[1] : 3;
        int fixedSide = inputDims.Length == 4 && inputDims[2] > 0 ? inputDims[2] : 224;
        string? unknown = !meta.ContainsKey("mean") ? "records no preprocessing in its metadata_props"
            : meta.TryGetValue("preprocessing", out string? p) && p == "unknown" ? "records its preprocessing as unknown" : null;
        if (assumeImageNet)
        {
            // The user's statement: torchvision's ImageNet eval transform.
            return new Preprocessing(3, fixedSide, 0.875, false, new[] { 0.485f, 0.456f, 0.406f }, new[] { 0.229f, 0.224f, 0.225f },
                Json<string[]>("class_names"), false, 1f, null, null);
        }

        int[] size = Json<int[]>("input_size") ?? new[] { fixedChannels, fixedSide };
        int channels = size[0], side = size[^1];
        double crop = meta.TryGetValue("crop_pct", out string? c) ? double.Parse(c, CultureInfo.InvariantCulture) : 0.875;
        float[] mean = Json<double[]>("mean")?.Select(v => (float)v).ToArray() ?? new float[channels];
        float[] std = Json<double[]>("std")?.Select(v => (float)v).ToArray() ?? Enumerable.Repeat(1f, channels).ToArray();
        bool bicubic = meta.TryGetValue("interpolation", out string? interp) && interp == "bicubic";
        bool bgr = meta.TryGetValue("channel_order", out string? order) && order == "bgr";
        float pixelMax = meta.TryGetValue("pixel_max", out string? pm) ? float.Parse(pm, CultureInfo.InvariantCulture) : 1f;
        float[]? meanImage = meta.TryGetValue("mean_image", out string? mi) ? MemoryMarshal.Cast<byte, float>(Convert.FromBase64String(mi)).ToArray() : null;
        if (meanImage is not null && meanImage.Length != channels * side * side)
        {
            throw new InvalidDataException($"mean_image holds {meanImage.Length} values; a {channels}×{side}×{side} input needs {channels * side * side}.");
        }

        return new Preprocessing(channels, side, crop, bicubic, mean, std, Json<string[]>("class_names"), bgr, pixelMax, meanImage, unknown);
    }

    public float[] LoadImage(string path)
    {
        using var bitmap = SKBitmap.Decode(path) ?? throw new InvalidDataException($"{path}: not an image SkiaSharp can decode.");
        double scale = (double)ResizeSize / Math.Min(bitmap.Width, bitmap.Height);
        int w = Math.Max(Size, (int)Math.Round(bitmap.Width * scale)), h = Math.Max(Size, (int)Math.Round(bitmap.Height * scale));
        var sampling = Bicubic ? new SKSamplingOptions(SKCubicResampler.CatmullRom) : new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear);
        using var resized = bitmap.Resize(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul), sampling)
                            ?? throw new InvalidDataException($"{path}: resize failed.");
        int left = (w - Size) / 2, topRow = (h - Size) / 2;
        var data = new float[Channels * Size * Size];
        for (int y = 0; y < Size; y++)
        {
            for (int x = 0; x < Size; x++)
            {
                var px = resized.GetPixel(left + x, topRow + y);
                float toUnits = PixelMax / 255f;
                float[] rgb = { px.Red * toUnits, px.Green * toUnits, px.Blue * toUnits };
                for (int ch = 0; ch < Channels; ch++)
                {
                    float v = Channels == 3 ? rgb[Bgr ? 2 - ch : ch] : (rgb[0] * 0.299f + rgb[1] * 0.587f + rgb[2] * 0.114f);
                    int at = (ch * Size + y) * Size + x;
                    data[at] = (v - Mean[ch] - (MeanImage?[at] ?? 0f)) / Std[ch];
                }
            }
        }

        return data;
    }

    public float[] Random(int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, Channels * Size * Size).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }
}
