using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using ResNetSharp.Images;

namespace ResNetSharp.Training;

/// <summary>
/// Images in class folders, as torchvision's <c>ImageFolder</c>: <c>root/&lt;class&gt;/&lt;image&gt;</c>, classes in
/// ordinal order of their folder names, images in ordinal order of their file names (PNG, JPEG, WebP, BMP, GIF).
/// Made by <see cref="ImageDataset.FromFolder"/>. Each image is decoded by <see cref="PixelImage.Decode(string, int, ImageDecodeOptions?)"/> when it is read (on the <see cref="DataLoader"/>'s prefetch
/// thread), its short side resized to <see cref="Size"/> with Pillow's resampling and centre-cropped to a square
/// (<see cref="ImageTransform"/> with a crop ratio of 1), and scaled to [0, 1].
/// </summary>
internal sealed class ImageFolderDataset : ImageDataset
{
    private static readonly HashSet<string> Extensions = new(StringComparer.OrdinalIgnoreCase) { ".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif" };
    private readonly (string Path, int Label)[] samples;
    private readonly string[] classNames;
    private readonly ImageTransform transform;
    private readonly string name;

    /// <summary>Indexes the folder (no image is decoded yet).</summary>
    /// <param name="root">The folder holding one sub-folder per class.</param>
    /// <param name="size">Side of the square the images are brought to (e.g. 32, 64, 224).</param>
    /// <param name="channels">3 for RGB (default), 1 for grey.</param>
    /// <param name="interpolation">Resize filter. Default bilinear (torchvision's).</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="ArgumentException">It has no class folder, a class folder has no image, or size/channels are invalid.</exception>
    public ImageFolderDataset(string root, int size, int channels = 3, ResizeInterpolation interpolation = ResizeInterpolation.Bilinear)
    {
        ArgumentNullException.ThrowIfNull(root);
        if (size < 1 || channels is not (1 or 3))
        {
            throw new ArgumentException($"ImageFolderDataset: size must be ≥ 1 and channels 1 or 3, got {size} and {channels}.");
        }

        if (!Directory.Exists(root))
        {
            throw new DirectoryNotFoundException($"Image folder '{root}' does not exist.");
        }

        classNames = Directory.GetDirectories(root).Select(Path.GetFileName).OfType<string>().Where(n => !n.StartsWith('.')).Order(StringComparer.Ordinal).ToArray();
        if (classNames.Length == 0)
        {
            throw new ArgumentException($"'{root}' has no class folders: expected {root}/<class>/<image>.png|jpg|….");
        }

        var list = new List<(string, int)>();
        for (int c = 0; c < classNames.Length; c++)
        {
            string folder = Path.Combine(root, classNames[c]);
            var files = Directory.GetFiles(folder).Where(f => Extensions.Contains(Path.GetExtension(f))).Order(StringComparer.Ordinal).ToArray();
            if (files.Length == 0)
            {
                throw new ArgumentException($"Class folder '{folder}' holds no image (.png, .jpg, .jpeg, .webp, .bmp, .gif).");
            }

            list.AddRange(files.Select(f => (f, c)));
        }

        samples = list.ToArray();
        Size = size;
        Channels = channels;
        name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(root)));
        transform = new ImageTransform(new ModelMetadata
        {
            NumClasses = classNames.Length, InChannels = channels, InputSize = size, CropPct = 1.0, Interpolation = interpolation,
            Mean = Enumerable.Repeat(0.0, channels).ToArray(), Std = Enumerable.Repeat(1.0, channels).ToArray(),
        });
    }

    /// <summary>Side of the square images.</summary>
    public int Size { get; }

    /// <summary>The file of sample <paramref name="index"/>.</summary>
    public string GetPath(int index) => samples[index].Path;

    /// <inheritdoc/>
    public override int Count => samples.Length;

    /// <inheritdoc/>
    public override int Channels { get; }

    /// <inheritdoc/>
    public override int Height => Size;

    /// <inheritdoc/>
    public override int Width => Size;

    /// <inheritdoc/>
    public override IReadOnlyList<string> ClassNames => classNames;

    /// <inheritdoc/>
    public override string Name => name;

    /// <inheritdoc/>
    public override int GetLabel(int index) => samples[index].Label;

    /// <inheritdoc/>
    /// <exception cref="System.IO.InvalidDataException">The file is not a decodable image; the message names it.</exception>
    public override void ReadImage(int index, Span<float> destination)
    {
        var image = ImageDecoder.Decode(samples[index].Path, Channels);
        transform.Apply(image, destination);
    }
}
