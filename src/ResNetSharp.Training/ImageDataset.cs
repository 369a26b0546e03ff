using System;
using System.Collections.Generic;
using System.Linq;

namespace ResNetSharp.Training;

/// <summary>
/// A labelled image classification dataset whose samples all have one shape (C × H × W). The batching
/// (<see cref="DataLoader"/>) asks it for one image at a time, as floats in [0, 1], channel-first.
/// </summary>
public abstract class ImageDataset
{
    /// <summary>Number of samples.</summary>
    public abstract int Count { get; }

    /// <summary>Channels per image (1 for grey images, 3 for RGB).</summary>
    public abstract int Channels { get; }

    /// <summary>Image height in pixels.</summary>
    public abstract int Height { get; }

    /// <summary>Image width in pixels.</summary>
    public abstract int Width { get; }

    /// <summary>Class names, one per label value (label <c>i</c> is <c>ClassNames[i]</c>).</summary>
    public abstract IReadOnlyList<string> ClassNames { get; }

    /// <summary>A short name for logs and model metadata (e.g. <c>fashion-mnist/train</c>).</summary>
    public virtual string Name => GetType().Name;

    /// <summary>Values per image: <see cref="Channels"/> × <see cref="Height"/> × <see cref="Width"/>.</summary>
    public int SampleSize => Channels * Height * Width;

    /// <summary>The label of sample <paramref name="index"/>, in 0 … ClassNames.Count − 1.</summary>
    public abstract int GetLabel(int index);

    /// <summary>Writes sample <paramref name="index"/> into <paramref name="destination"/> (<see cref="SampleSize"/> floats, C × H × W, in [0, 1]).</summary>
    public abstract void ReadImage(int index, Span<float> destination);

    /// <summary>
    /// Images in class folders, as torchvision's <c>ImageFolder</c>: <c>root/&lt;class&gt;/&lt;image&gt;</c>, classes in
    /// ordinal order of their folder names, images in ordinal order of their file names (PNG, JPEG, WebP, BMP, GIF).
    /// Only the folder is indexed here; each image is decoded when it is read (on the data loader's prefetch thread), its
    /// short side resized to <paramref name="size"/> with Pillow's resampling and centre-cropped to a square, and
    /// scaled to [0, 1].
    /// </summary>
    /// <param name="root">The folder holding one sub-folder per class.</param>
    /// <param name="size">Side of the square the images are brought to (e.g. 32, 64, 224).</param>
    /// <param name="channels">3 for RGB (default), 1 for grey.</param>
    /// <param name="interpolation">Resize filter. Default bilinear (torchvision's).</param>
    /// <exception cref="System.IO.DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="ArgumentException">It has no class folder, a class folder has no image, or size/channels are invalid.</exception>
    public static ImageDataset FromFolder(string root, int size, int channels = 3, ResizeInterpolation interpolation = ResizeInterpolation.Bilinear) =>
        new ImageFolderDataset(root, size, channels, interpolation);

    /// <summary>The first <paramref name="count"/> samples (all when the dataset is smaller): a view, no copy.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is below 1.</exception>
    public ImageDataset Take(int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        return count >= Count ? this : new SubsetDataset(this, Enumerable.Range(0, count).ToArray(), $"{Name}[:{count}]");
    }

    /// <summary>The samples at <paramref name="indices"/>, in that order: a view, no copy.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An index is outside 0 … Count − 1.</exception>
    public ImageDataset Select(IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        var copy = indices.ToArray();
        int bad = Array.FindIndex(copy, i => i < 0 || i >= Count);
        if (bad >= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(indices), $"Index {copy[bad]} is outside 0 … {Count - 1} of {Name}.");
        }

        return new SubsetDataset(this, copy, $"{Name}[subset of {copy.Length}]");
    }

    /// <summary>
    /// A grey dataset seen as <paramref name="channels"/> identical channels (what decoding a grey image as RGB gives):
    /// a view, no copy. The way to feed grey images to a pretrained RGB backbone with its own per-channel preprocessing.
    /// </summary>
    /// <param name="channels">Channels of the view (e.g. 3); the dataset itself when it already has that many.</param>
    /// <exception cref="ArgumentException">The dataset is not single-channel, or <paramref name="channels"/> is below 1.</exception>
    public ImageDataset RepeatChannels(int channels)
    {
        if (channels < 1 || (Channels != 1 && channels != Channels))
        {
            throw new ArgumentException($"RepeatChannels: {Name} has {Channels} channel(s); only a 1-channel dataset can be repeated, to ≥ 1 channels (asked for {channels}).", nameof(channels));
        }

        return channels == Channels ? this : new RepeatedChannelsDataset(this, channels);
    }

    /// <summary>
    /// Per-channel mean and standard deviation of the pixel values (in [0, 1]) over the whole dataset: the
    /// normalisation a model trained on it should use (for Fashion-MNIST's training set: 0.2860 and 0.3530).
    /// </summary>
    public (double[] Mean, double[] Std) ComputeMeanStd()
    {
        int c = Channels, plane = Height * Width;
        var sum = new double[c];
        var sumSq = new double[c];
        var buffer = new float[SampleSize];
        for (int i = 0; i < Count; i++)
        {
            ReadImage(i, buffer);
            for (int ch = 0; ch < c; ch++)
            {
                double s = 0, q = 0;
                foreach (float v in buffer.AsSpan(ch * plane, plane))
                {
                    s += v;
                    q += (double)v * v;
                }

                sum[ch] += s;
                sumSq[ch] += q;
            }
        }

        double n = (double)Count * plane;
        var mean = sum.Select(s => s / n).ToArray();
        var std = sumSq.Select((q, ch) => Math.Sqrt(Math.Max(q / n - mean[ch] * mean[ch], 0))).ToArray();
        return (mean, std);
    }

    private sealed class RepeatedChannelsDataset : ImageDataset
    {
        private readonly ImageDataset source;

        public RepeatedChannelsDataset(ImageDataset source, int channels)
        {
            this.source = source;
            Channels = channels;
        }

        public override int Count => source.Count;

        public override int Channels { get; }

        public override int Height => source.Height;

        public override int Width => source.Width;

        public override IReadOnlyList<string> ClassNames => source.ClassNames;

        public override string Name => source.Name;

        public override int GetLabel(int index) => source.GetLabel(index);

        public override void ReadImage(int index, Span<float> destination)
        {
            int plane = Height * Width;
            source.ReadImage(index, destination[..plane]);
            for (int c = 1; c < Channels; c++)
            {
                destination[..plane].CopyTo(destination.Slice(c * plane, plane));
            }
        }
    }

    private sealed class SubsetDataset : ImageDataset
    {
        private readonly ImageDataset source;
        private readonly int[] indices;
        private readonly string name;

        public SubsetDataset(ImageDataset source, int[] indices, string name)
        {
            this.source = source;
            this.indices = indices;
            this.name = name;
        }

        public override int Count => indices.Length;

        public override int Channels => source.Channels;

        public override int Height => source.Height;

        public override int Width => source.Width;

        public override IReadOnlyList<string> ClassNames => source.ClassNames;

        public override string Name => name;

        public override int GetLabel(int index) => source.GetLabel(indices[index]);

        public override void ReadImage(int index, Span<float> destination) => source.ReadImage(indices[index], destination);
    }
}

/// <summary>Images held in memory as bytes (0 … 255, C × H × W per sample) with their labels: what an IDX pair loads into.</summary>
internal sealed class InMemoryImageDataset : ImageDataset
{
    private readonly byte[] pixels;
    private readonly byte[] labels;
    private readonly string[] classNames;
    private readonly string name;

    /// <summary>Wraps pixel and label arrays (not copied).</summary>
    /// <param name="pixels">count × channels × height × width bytes.</param>
    /// <param name="labels">One label per image, each below the number of class names.</param>
    /// <param name="channels">Channels per image.</param>
    /// <param name="height">Height.</param>
    /// <param name="width">Width.</param>
    /// <param name="classNames">One name per class.</param>
    /// <param name="name">Name for logs and metadata.</param>
    /// <exception cref="ArgumentException">Sizes disagree or a label is out of range; the message says which.</exception>
    public InMemoryImageDataset(byte[] pixels, byte[] labels, int channels, int height, int width, IReadOnlyList<string> classNames, string name = "in-memory")
    {
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(classNames);
        if (channels < 1 || height < 1 || width < 1)
        {
            throw new ArgumentException($"{name}: image shape must be positive, got {channels}×{height}×{width}.");
        }

        if (classNames.Count < 1)
        {
            throw new ArgumentException($"{name}: at least one class name is needed.", nameof(classNames));
        }

        long sample = (long)channels * height * width;
        if (pixels.LongLength != sample * labels.LongLength)
        {
            throw new ArgumentException(
                $"{name}: {pixels.LongLength:N0} pixel bytes do not hold {labels.Length:N0} images of {channels}×{height}×{width} ({sample * labels.LongLength:N0} bytes).");
        }

        int bad = Array.FindIndex(labels, l => l >= classNames.Count);
        if (bad >= 0)
        {
            throw new ArgumentException($"{name}: label {labels[bad]} of sample {bad} is not below the {classNames.Count} classes.", nameof(labels));
        }

        this.pixels = pixels;
        this.labels = labels;
        this.classNames = classNames.ToArray();
        this.name = name;
        Channels = channels;
        Height = height;
        Width = width;
    }

    /// <inheritdoc/>
    public override int Count => labels.Length;

    /// <inheritdoc/>
    public override int Channels { get; }

    /// <inheritdoc/>
    public override int Height { get; }

    /// <inheritdoc/>
    public override int Width { get; }

    /// <inheritdoc/>
    public override IReadOnlyList<string> ClassNames => classNames;

    /// <inheritdoc/>
    public override string Name => name;

    /// <inheritdoc/>
    public override int GetLabel(int index) => labels[index];

    /// <inheritdoc/>
    public override void ReadImage(int index, Span<float> destination)
    {
        int n = SampleSize;
        var source = pixels.AsSpan(index * n, n);
        for (int i = 0; i < n; i++)
        {
            destination[i] = source[i] / 255f; // as torchvision's ToTensor: correctly rounded
        }
    }

    /// <summary>
    /// Loads an IDX image file (N × H × W, or N × C × H × W) and an IDX label file (N), as MNIST and Fashion-MNIST ship them.
    /// </summary>
    /// <param name="imagesPath">The images (gzip or not).</param>
    /// <param name="labelsPath">The labels (gzip or not).</param>
    /// <param name="classNames">Class names; default "0" … "9" grown to cover the largest label.</param>
    /// <param name="name">Name for logs and metadata; default the images file's name.</param>
    /// <exception cref="System.IO.InvalidDataException">Either file is malformed, the two counts differ, or a label has no class; the message names the file.</exception>
    public static InMemoryImageDataset FromIdx(string imagesPath, string labelsPath, IReadOnlyList<string>? classNames = null, string? name = null)
    {
        var (imageShape, pixels) = IdxFile.Read(imagesPath);
        var (labelShape, labels) = IdxFile.Read(labelsPath);
        if (imageShape.Length is not (3 or 4))
        {
            throw new System.IO.InvalidDataException($"{imagesPath}: images must be N×H×W or N×C×H×W, got [{string.Join(", ", imageShape)}].");
        }

        if (labelShape.Length != 1)
        {
            throw new System.IO.InvalidDataException($"{labelsPath}: labels must be one-dimensional, got [{string.Join(", ", labelShape)}].");
        }

        if (labelShape[0] != imageShape[0])
        {
            throw new System.IO.InvalidDataException(
                $"{labelsPath}: {labelShape[0]:N0} labels for {imageShape[0]:N0} images in {imagesPath}; the counts must match.");
        }

        int maxLabel = labels.Length == 0 ? 0 : labels.Max();
        var names = classNames ?? Enumerable.Range(0, Math.Max(maxLabel + 1, 10)).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        if (labels.Length > 0 && maxLabel >= names.Count)
        {
            throw new System.IO.InvalidDataException($"{labelsPath}: label {maxLabel} has no class name (there are {names.Count} classes).");
        }

        int c = imageShape.Length == 4 ? imageShape[1] : 1;
        return new InMemoryImageDataset(pixels, labels, c, imageShape[^2], imageShape[^1], names, name ?? System.IO.Path.GetFileName(imagesPath));
    }
}
