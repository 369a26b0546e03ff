using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;

namespace ResNetSharp.Training;

/// <summary>Which part of a dataset (public as <see cref="FashionMnist.Train"/> and <see cref="FashionMnist.Test"/>).</summary>
internal enum DatasetSplit
{
    /// <summary>The training images (Fashion-MNIST: 60,000).</summary>
    Train,

    /// <summary>The test images (Fashion-MNIST: 10,000).</summary>
    Test,
}

/// <summary>
/// Zalando's Fashion-MNIST (Xiao, Rasul, Vollgraf 2017; MIT licence): 28 × 28 grey images of 10 kinds of clothing,
/// 60,000 for training and 10,000 for testing, in MNIST's IDX format. Nothing is downloaded: the files come from
/// Debian's <c>dataset-fashion-mnist</c> package (<see cref="DefaultFolder"/>) or a folder you name.
/// </summary>
public static class FashionMnist
{
    /// <summary>Where Debian's <c>dataset-fashion-mnist</c> installs the files: <c>/usr/share/datasets/fashion-mnist</c>.</summary>
    public const string DefaultFolder = "/usr/share/datasets/fashion-mnist";

    /// <summary>The ten classes, in label order: T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot.</summary>
    public static IReadOnlyList<string> ClassNames { get; } = new[]
    {
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    };

    /// <summary>True when the files are in <paramref name="folder"/> (default <see cref="DefaultFolder"/>).</summary>
    public static bool IsAvailable(string? folder = null)
    {
        string dir = folder ?? DefaultFolder;
        return new[] { DatasetSplit.Train, DatasetSplit.Test }.All(s => Find(dir, s) is not null);
    }

    /// <summary>Loads the 60,000 training images into memory (47 MB).</summary>
    /// <param name="folder">Folder holding <c>train-images-idx3-ubyte[.gz]</c> and <c>train-labels-idx1-ubyte[.gz]</c>; default <see cref="DefaultFolder"/>.</param>
    /// <exception cref="FileNotFoundException">The files are not there; the message says how to get them.</exception>
    /// <exception cref="InvalidDataException">A file is malformed; the message names it.</exception>
    public static ImageDataset Train(string? folder = null) => Load(DatasetSplit.Train, folder);

    /// <summary>Loads the 10,000 test images into memory.</summary>
    /// <param name="folder">Folder holding <c>t10k-images-idx3-ubyte[.gz]</c> and <c>t10k-labels-idx1-ubyte[.gz]</c>; default <see cref="DefaultFolder"/>.</param>
    /// <exception cref="FileNotFoundException">The files are not there; the message says how to get them.</exception>
    /// <exception cref="InvalidDataException">A file is malformed; the message names it.</exception>
    public static ImageDataset Test(string? folder = null) => Load(DatasetSplit.Test, folder);

    /// <summary>Loads one split into memory.</summary>
    /// <param name="split">Train or test.</param>
    /// <param name="folder">Folder holding <c>train-images-idx3-ubyte[.gz]</c>, <c>train-labels-idx1-ubyte[.gz]</c>, <c>t10k-…</c>; default <see cref="DefaultFolder"/>.</param>
    /// <exception cref="FileNotFoundException">The files are not there; the message says how to get them.</exception>
    /// <exception cref="InvalidDataException">A file is malformed; the message names it.</exception>
    internal static ImageDataset Load(DatasetSplit split, string? folder = null)
    {
        string dir = folder ?? DefaultFolder;
        var files = Find(dir, split) ?? throw new FileNotFoundException(
            $"Fashion-MNIST {split.ToString().ToLowerInvariant()} files not found in '{dir}' (expected {Prefix(split)}-images-idx3-ubyte[.gz] and " +
            $"{Prefix(split)}-labels-idx1-ubyte[.gz]). On Debian/Ubuntu: apt-get install dataset-fashion-mnist; or name the folder holding them.");
        return InMemoryImageDataset.FromIdx(files.Images, files.Labels, ClassNames, $"fashion-mnist/{split.ToString().ToLowerInvariant()}");
    }

    private static string Prefix(DatasetSplit split) => split == DatasetSplit.Train ? "train" : "t10k";

    private static (string Images, string Labels)? Find(string folder, DatasetSplit split)
    {
        string? Pick(string stem) => new[] { stem + ".gz", stem }.Select(n => Path.Combine(folder, n)).FirstOrDefault(File.Exists);
        string? images = Pick($"{Prefix(split)}-images-idx3-ubyte");
        string? labels = Pick($"{Prefix(split)}-labels-idx1-ubyte");
        return images is null || labels is null ? null : (images, labels);
    }
}
