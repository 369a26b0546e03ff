using System;
using System.CommandLine;
using System.IO;
using System.Linq;
using ResNetSharp.Images;
using ResNetSharp.OnnxRuntime;
using ResNetSharp.Training;
using TorchSharp;

namespace ResNetSharp.Cli;

/// <summary>The int8 calibration options shared by 'export', 'eval' and 'bench', and the images they name.</summary>
internal static class CalibrationSource
{
    /// <summary>
    /// How IDX images (Fashion-MNIST: grey, [0, 1], smaller than the input) become a model's input: the trainer's padding +
    /// normalisation for models it trained, a pretrained model's own preprocessing (resize, pixel range, channel order,
    /// mean image) where the metadata records one. Unknown preprocessing is refused.
    /// </summary>
    internal static IBatchTransform IdxTransform(ModelMetadata metadata, int height, string user)
    {
        metadata.EnsurePreprocessingKnown(user);
        if (metadata.ChannelOrder != ChannelOrder.Rgb || metadata.PixelMax != 1 || metadata.MeanImage is not null)
        {
            return Transforms.Pretrained(metadata);
        }

        return metadata.InputSize > height
            ? Transforms.Compose(Transforms.PadTo(metadata.InputSize), Transforms.Normalize(metadata.Mean, metadata.Std))
            : Transforms.Normalize(metadata.Mean, metadata.Std);
    }

    public static readonly Option<string?> Calibrate = new("--calibrate")
    {
        Description = "int8 calibration images: fashion-mnist (its training split), a folder of MNIST-format IDX files, or a folder of image files (PNG, JPEG, …, searched recursively).",
    };

    public static readonly Option<int> Images = new("--calibration-images") { Description = "How many calibration images (the first N, in file order).", DefaultValueFactory = _ => 500 };

    public static readonly Option<string> Method = new("--calibration-method")
    {
        Description = "How activation ranges are taken: percentile (99.999th, the default) or minmax.",
        DefaultValueFactory = _ => "percentile",
    };

    /// <summary>The calibration set for <paramref name="model"/>, preprocessed by its metadata (as 'resnet eval' preprocesses test images).</summary>
    public static Calibration Load(string spec, int count, string method, ResNet model)
    {
        if (count < 1)
        {
            throw new ArgumentException($"--calibration-images must be ≥ 1, got {count}.");
        }

        double percentile = method.Trim().ToLowerInvariant() switch
        {
            "percentile" => Calibration.DefaultPercentile,
            "minmax" or "min-max" => Calibration.MinMax,
            _ => throw new ArgumentException($"--calibration-method must be percentile or minmax, got '{method}'."),
        };
        var metadata = model.Metadata;
        bool idx = spec.Trim().Equals("fashion-mnist", StringComparison.OrdinalIgnoreCase) || (Directory.Exists(spec) && FashionMnist.IsAvailable(spec));
        if (idx)
        {
            var train = spec.Trim().Equals("fashion-mnist", StringComparison.OrdinalIgnoreCase)
                ? FashionMnist.Train()
                : FashionMnist.Train(spec);
            ImageDataset data = train.Take(count);
            if (model.Options.InChannels != data.Channels)
            {
                data = data.RepeatChannels(model.Options.InChannels);
            }

            var transform = IdxTransform(metadata, data.Height, "--calibrate");
            var loader = new DataLoader(data, new DataLoaderOptions { BatchSize = data.Count, Shuffle = false, Transform = transform });
            using var batch = loader.GetBatches(0, 0).First();
            return Calibration.FromTensor(batch.Images, percentile, source: $"{train.Name} (first {data.Count})");
        }

        if (!Directory.Exists(spec))
        {
            throw new ArgumentException($"--calibrate '{spec}': expected fashion-mnist or a folder of images or IDX files.");
        }

        var extensions = new[] { ".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif" };
        var files = Directory.EnumerateFiles(spec, "*", SearchOption.AllDirectories)
            .Where(f => extensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
            .Order(StringComparer.Ordinal)
            .Take(count)
            .ToList();
        if (files.Count == 0)
        {
            throw new ArgumentException($"--calibrate '{spec}' holds no image files ({string.Join(", ", extensions)}).");
        }

        var images = files.Select(f => PixelImage.Decode(f, metadata.InChannels));
        return Calibration.FromImages(images, new ImageTransform(metadata), percentile, source: $"{Path.GetFullPath(spec)} (first {files.Count} images)");
    }

    /// <summary>Gaussian images for timing only (their values do not change the speed of int8 kernels).</summary>
    public static Calibration Random(ResNet model, int size)
    {
        using var x = torch.randn(8, model.Options.InChannels, size, size);
        return Calibration.FromTensor(x, Calibration.MinMax, source: "8 Gaussian images (timing only)");
    }
}
