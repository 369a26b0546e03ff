using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNetSharp.Training;

/// <summary>
/// A transform of a whole batch (N × C × H × W floats). Random transforms draw every decision from the
/// <see cref="Random"/> they are given, which <see cref="DataLoader"/> seeds from (seed, epoch, batch): the same
/// seed gives the same augmentation, whatever the thread, the prefetch depth or where a resumed run restarts.
/// </summary>
public interface IBatchTransform
{
    /// <summary>Returns the transformed batch as a new tensor; <paramref name="images"/> is left to its owner.</summary>
    /// <param name="images">N × C × H × W.</param>
    /// <param name="random">The batch's random source.</param>
    Tensor Apply(Tensor images, Random random);
}

/// <summary>Batch transforms: the paper's CIFAR augmentation, normalisation, cutout and random erasing, composable.</summary>
public static class Transforms
{
    /// <summary>Runs transforms in order (intermediate tensors are released).</summary>
    public static IBatchTransform Compose(params IBatchTransform[] transforms) => new ComposeTransform(transforms);

    /// <summary>
    /// Zero-pads every side by <paramref name="padding"/> and crops a random <paramref name="size"/>² window per image
    /// (torchvision's <c>RandomCrop(size, padding)</c>). The paper's CIFAR recipe: padding 4 on 32² images.
    /// </summary>
    /// <param name="size">Output height and width; default the input's.</param>
    /// <param name="padding">Zero padding on each side. Default 4.</param>
    public static IBatchTransform RandomCrop(int? size = null, int padding = 4) => new RandomCropTransform(size, padding);

    /// <summary>Mirrors each image left-right with probability <paramref name="p"/> (default 0.5).</summary>
    public static IBatchTransform RandomHorizontalFlip(double p = 0.5) => new FlipTransform(p);

    /// <summary>Subtracts the per-channel <paramref name="mean"/> and divides by <paramref name="std"/>.</summary>
    /// <exception cref="ArgumentException">The lists differ in length or a std is not positive.</exception>
    public static IBatchTransform Normalize(IReadOnlyList<double> mean, IReadOnlyList<double> std) => new NormalizeTransform(mean, std);

    /// <summary>Zero-pads every image evenly to <paramref name="size"/>² (e.g. 28² Fashion-MNIST to the CIFAR tables' 32²). Not random.</summary>
    public static IBatchTransform PadTo(int size) => new PadToTransform(size);

    /// <summary>
    /// Resizes every image to <paramref name="size"/>² (torch's <c>F.interpolate</c>, pixel centres aligned as with
    /// <c>align_corners=False</c>; bilinear and bicubic antialias when shrinking, as torchvision's <c>Resize</c> does on
    /// tensors with <c>antialias=True</c>). Not random.
    /// </summary>
    /// <param name="size">Output height and width (≥ 1).</param>
    /// <param name="interpolation">Default bilinear.</param>
    public static IBatchTransform Resize(int size, ResizeInterpolation interpolation = ResizeInterpolation.Bilinear) => new ResizeTransform(size, interpolation);

    /// <summary>
    /// A pretrained model's own preprocessing, read from its <see cref="ModelMetadata"/>, for batches in [0, 1] in RGB order
    /// (what every <see cref="ImageDataset"/> gives): resize to <paramref name="inputSize"/>² (default
    /// <see cref="ModelMetadata.InputSize"/>) with its <see cref="ModelMetadata.Interpolation"/>, scale to
    /// [0, <see cref="ModelMetadata.PixelMax"/>], put the channels in <see cref="ModelMetadata.ChannelOrder"/>, subtract
    /// <see cref="ModelMetadata.Mean"/> and the <see cref="ModelMetadata.MeanImage"/> (when present; resized by area
    /// averaging when the input size differs from the metadata's), and divide by <see cref="ModelMetadata.Std"/>.
    /// </summary>
    /// <param name="metadata">The model's metadata (its <see cref="ResNet.Metadata"/>).</param>
    /// <param name="inputSize">Side of the network's input; null for the metadata's.</param>
    /// <exception cref="ArgumentException">The metadata is invalid, or the size is below 1.</exception>
    /// <exception cref="InvalidOperationException">The metadata's preprocessing is unknown (<see cref="ModelMetadata.PreprocessingKnown"/>).</exception>
    public static IBatchTransform Pretrained(ModelMetadata metadata, int? inputSize = null) => new PretrainedTransform(metadata, inputSize);

    /// <summary>
    /// Cutout (DeVries and Taylor 2017): with probability <paramref name="p"/>, zeroes a <paramref name="size"/>² square
    /// centred at a random pixel (clipped at the border). Apply after normalisation so "zero" is the mean.
    /// </summary>
    public static IBatchTransform Cutout(int size, double p = 1.0) => new CutoutTransform(size, p);

    /// <summary>
    /// Random erasing (Zhong et al. 2017, torchvision's <c>RandomErasing</c> defaults): with probability
    /// <paramref name="p"/>, fills a rectangle of <paramref name="minArea"/> … <paramref name="maxArea"/> of the image and
    /// aspect ratio 0.3 … 3.3 with <paramref name="value"/>. Apply after normalisation.
    /// </summary>
    public static IBatchTransform RandomErasing(double p = 0.5, double minArea = 0.02, double maxArea = 0.33, double value = 0) =>
        new ErasingTransform(p, minArea, maxArea, value);

    /// <summary>
    /// The paper's CIFAR training augmentation (§4.2: "4 pixels are padded on each side, and a 32×32 crop is randomly
    /// sampled from the padded image or its horizontal flip"), followed by normalisation.
    /// </summary>
    public static IBatchTransform PaperCifar(IReadOnlyList<double> mean, IReadOnlyList<double> std) =>
        Compose(RandomCrop(padding: 4), RandomHorizontalFlip(), Normalize(mean, std));

    private static void CheckBatch(Tensor images, string who)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.dim() != 4 || !images.is_floating_point())
        {
            throw new ArgumentException($"{who} expects a float batch N×C×H×W, got {images.dtype} [{string.Join(", ", images.shape)}].", nameof(images));
        }
    }

    private sealed class ComposeTransform : IBatchTransform
    {
        private readonly IBatchTransform[] steps;

        public ComposeTransform(IBatchTransform[] steps)
        {
            ArgumentNullException.ThrowIfNull(steps);
            if (steps.Any(s => s is null))
            {
                throw new ArgumentException("Compose: a transform is null.", nameof(steps));
            }

            this.steps = steps.ToArray();
        }

        public Tensor Apply(Tensor images, Random random)
        {
            Tensor x = images;
            foreach (var step in steps)
            {
                var next = step.Apply(x, random);
                if (!ReferenceEquals(x, images))
                {
                    x.Dispose();
                }

                x = next;
            }

            return ReferenceEquals(x, images) ? images.alias() : x;
        }
    }

    private sealed class RandomCropTransform : IBatchTransform
    {
        private readonly int? size;
        private readonly int padding;

        public RandomCropTransform(int? size, int padding)
        {
            if (size is < 1 || padding < 0)
            {
                throw new ArgumentException($"RandomCrop: size must be ≥ 1 and padding ≥ 0, got {size} and {padding}.");
            }

            this.size = size;
            this.padding = padding;
        }

        public Tensor Apply(Tensor images, Random random)
        {
            CheckBatch(images, "RandomCrop");
            long n = images.shape[0], h = images.shape[2], w = images.shape[3];
            int s = size ?? (int)Math.Min(h, w);
            if (s > h + 2 * padding || s > w + 2 * padding)
            {
                throw new ArgumentException($"RandomCrop: a {s}² crop does not fit {h}×{w} images padded by {padding}.");
            }

            using var scope = torch.NewDisposeScope();
            var padded = padding > 0 ? nn.functional.pad(images, new long[] { padding, padding, padding, padding }) : images;
            long ph = h + 2 * padding, pw = w + 2 * padding;
            var output = torch.empty(new[] { n, images.shape[1], s, s }, images.dtype, images.device);
            for (long i = 0; i < n; i++)
            {
                int y = random.Next((int)(ph - s + 1));
                int x = random.Next((int)(pw - s + 1));
                using var src = padded[i].narrow(1, y, s).narrow(2, x, s);
                using var dst = output[i];
                dst.copy_(src);
            }

            return output.MoveToOuterDisposeScope();
        }
    }

    private sealed class FlipTransform : IBatchTransform
    {
        private readonly double p;

        public FlipTransform(double p)
        {
            if (!(p >= 0 && p <= 1))
            {
                throw new ArgumentException($"RandomHorizontalFlip: p must be in [0, 1], got {p}.");
            }

            this.p = p;
        }

        public Tensor Apply(Tensor images, Random random)
        {
            CheckBatch(images, "RandomHorizontalFlip");
            long n = images.shape[0];
            var flip = new bool[n];
            for (int i = 0; i < n; i++)
            {
                flip[i] = random.NextDouble() < p;
            }

            using var scope = torch.NewDisposeScope();
            var mask = torch.tensor(flip, device: images.device).view(n, 1, 1, 1);
            return torch.where(mask, images.flip(3), images).MoveToOuterDisposeScope();
        }
    }

    private sealed class NormalizeTransform : IBatchTransform
    {
        private readonly float[] mean;
        private readonly float[] std;

        public NormalizeTransform(IReadOnlyList<double> mean, IReadOnlyList<double> std)
        {
            ArgumentNullException.ThrowIfNull(mean);
            ArgumentNullException.ThrowIfNull(std);
            if (mean.Count != std.Count || mean.Count == 0 || std.Any(s => !(s > 0)))
            {
                throw new ArgumentException($"Normalize: one mean and one positive std per channel, got {mean.Count} means and std [{string.Join(", ", std)}].");
            }

            this.mean = mean.Select(m => (float)m).ToArray();
            this.std = std.Select(s => (float)s).ToArray();
        }

        public Tensor Apply(Tensor images, Random random)
        {
            CheckBatch(images, "Normalize");
            if (images.shape[1] != mean.Length)
            {
                throw new ArgumentException($"Normalize has {mean.Length} channel(s), the batch has {images.shape[1]}.", nameof(images));
            }

            using var scope = torch.NewDisposeScope();
            var m = torch.tensor(mean, device: images.device).view(1, -1, 1, 1).to(images.dtype);
            var s = torch.tensor(std, device: images.device).view(1, -1, 1, 1).to(images.dtype);
            return images.sub(m).div_(s).MoveToOuterDisposeScope();
        }
    }

    private sealed class PadToTransform : IBatchTransform
    {
        private readonly int size;

        public PadToTransform(int size)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
            this.size = size;
        }

        public Tensor Apply(Tensor images, Random random)
        {
            CheckBatch(images, "PadTo");
            long h = images.shape[2], w = images.shape[3];
            if (h > size || w > size)
            {
                throw new ArgumentException($"PadTo({size}): images are already {h}×{w}.", nameof(images));
            }

            long top = (size - h) / 2, left = (size - w) / 2;
            return nn.functional.pad(images, new[] { left, size - w - left, top, size - h - top });
        }
    }

    private sealed class ResizeTransform : IBatchTransform
    {
        private readonly int size;
        private readonly ResizeInterpolation interpolation;

        public ResizeTransform(int size, ResizeInterpolation interpolation)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
            if (!Enum.IsDefined(interpolation))
            {
                throw new ArgumentException($"Resize: {(int)interpolation} is not a ResizeInterpolation.", nameof(interpolation));
            }

            this.size = size;
            this.interpolation = interpolation;
        }

        public Tensor Apply(Tensor images, Random random)
        {
            CheckBatch(images, "Resize");
            if (images.shape[2] == size && images.shape[3] == size)
            {
                return images.alias();
            }

            return ResizeTo(images, size, interpolation);
        }
    }

    /// <summary>F.interpolate to size², align_corners False, antialiasing when shrinking with bilinear or bicubic.</summary>
    internal static Tensor ResizeTo(Tensor images, int size, ResizeInterpolation interpolation)
    {
        bool shrinking = images.shape[2] > size || images.shape[3] > size;
        var mode = interpolation switch
        {
            ResizeInterpolation.Bicubic => InterpolationMode.Bicubic,
            ResizeInterpolation.Nearest => InterpolationMode.Nearest,
            _ => InterpolationMode.Bilinear,
        };
        bool? alignCorners = interpolation == ResizeInterpolation.Nearest ? null : false;
        return nn.functional.interpolate(images, new long[] { size, size }, mode: mode, align_corners: alignCorners,
            antialias: shrinking && interpolation != ResizeInterpolation.Nearest);
    }

    private sealed class PretrainedTransform : IBatchTransform
    {
        private readonly int size;
        private readonly ResizeInterpolation interpolation;
        private readonly bool bgr;
        private readonly float[] mean;
        private readonly float[] std;
        private readonly float pixelMax;
        private readonly Tensor? meanImage;

        public PretrainedTransform(ModelMetadata metadata, int? inputSize)
        {
            ArgumentNullException.ThrowIfNull(metadata);
            metadata.Validate();
            metadata.EnsurePreprocessingKnown("Transforms.Pretrained");
            size = inputSize ?? metadata.InputSize;
            ArgumentOutOfRangeException.ThrowIfLessThan(size, 1, nameof(inputSize));
            interpolation = metadata.Interpolation;
            int channels = metadata.InChannels;
            bgr = metadata.ChannelOrder == ChannelOrder.Bgr;
            pixelMax = (float)metadata.PixelMax;
            mean = metadata.Mean.Select(m => (float)m).ToArray();
            std = metadata.Std.Select(v => (float)v).ToArray();
            if (metadata.WithInputSize(size).MeanImage is { } image)
            {
                meanImage = torch.tensor(image.ToArray(), new long[] { 1, channels, size, size });
            }
        }

        public Tensor Apply(Tensor images, Random random)
        {
            CheckBatch(images, "Pretrained");
            if (images.shape[1] != std.Length)
            {
                throw new ArgumentException($"Pretrained: the model takes {std.Length}-channel images, the batch has {images.shape[1]}.", nameof(images));
            }

            using var scope = torch.NewDisposeScope();
            var x = images.shape[2] == size && images.shape[3] == size ? images.alias() : ResizeTo(images, size, interpolation);
            if (pixelMax != 1)
            {
                x = x.mul(pixelMax);
            }

            if (bgr)
            {
                x = x.flip(1);
            }

            var m = torch.tensor(mean, device: images.device).view(1, -1, 1, 1).to(images.dtype);
            var s = torch.tensor(std, device: images.device).view(1, -1, 1, 1).to(images.dtype);
            x = x.sub(m);
            if (meanImage is not null)
            {
                x = x.sub_(meanImage.to(images.dtype, images.device));
            }

            return x.div_(s).MoveToOuterDisposeScope();
        }
    }

    private sealed class CutoutTransform : IBatchTransform
    {
        private readonly int size;
        private readonly double p;

        public CutoutTransform(int size, double p)
        {
            if (size < 1 || !(p >= 0 && p <= 1))
            {
                throw new ArgumentException($"Cutout: size must be ≥ 1 and p in [0, 1], got {size} and {p}.");
            }

            this.size = size;
            this.p = p;
        }

        public Tensor Apply(Tensor images, Random random)
        {
            CheckBatch(images, "Cutout");
            long n = images.shape[0], h = images.shape[2], w = images.shape[3];
            var output = images.clone();
            for (long i = 0; i < n; i++)
            {
                bool apply = random.NextDouble() < p;
                int cy = random.Next((int)h), cx = random.Next((int)w);
                if (!apply)
                {
                    continue;
                }

                long y0 = Math.Max(0, cy - size / 2), y1 = Math.Min(h, cy - size / 2 + size);
                long x0 = Math.Max(0, cx - size / 2), x1 = Math.Min(w, cx - size / 2 + size);
                using var sample = output[i];
                using var region = sample.narrow(1, y0, y1 - y0).narrow(2, x0, x1 - x0);
                region.fill_(0);
            }

            return output;
        }
    }

    private sealed class ErasingTransform : IBatchTransform
    {
        private readonly double p, minArea, maxArea, value;

        public ErasingTransform(double p, double minArea, double maxArea, double value)
        {
            if (!(p >= 0 && p <= 1) || !(minArea > 0 && minArea <= maxArea && maxArea <= 1))
            {
                throw new ArgumentException($"RandomErasing: p must be in [0, 1] and 0 < minArea ≤ maxArea ≤ 1, got {p}, {minArea}, {maxArea}.");
            }

            (this.p, this.minArea, this.maxArea, this.value) = (p, minArea, maxArea, value);
        }

        public Tensor Apply(Tensor images, Random random)
        {
            CheckBatch(images, "RandomErasing");
            long n = images.shape[0], h = images.shape[2], w = images.shape[3];
            var output = images.clone();
            double logLo = Math.Log(0.3), logHi = Math.Log(1 / 0.3);
            for (long i = 0; i < n; i++)
            {
                if (random.NextDouble() >= p)
                {
                    continue;
                }

                // torchvision's rule: up to 10 tries for a rectangle that fits; none fitting leaves the image as it is.
                for (int attempt = 0; attempt < 10; attempt++)
                {
                    double area = h * w * (minArea + random.NextDouble() * (maxArea - minArea));
                    double ratio = Math.Exp(logLo + random.NextDouble() * (logHi - logLo));
                    long eh = (long)Math.Round(Math.Sqrt(area * ratio)), ew = (long)Math.Round(Math.Sqrt(area / ratio));
                    if (eh < 1 || ew < 1 || eh >= h || ew >= w)
                    {
                        continue;
                    }

                    long y = random.Next((int)(h - eh + 1)), x = random.Next((int)(w - ew + 1));
                    using var sample = output[i];
                    using var region = sample.narrow(1, y, eh).narrow(2, x, ew);
                    region.fill_(value);
                    break;
                }
            }

            return output;
        }
    }
}
