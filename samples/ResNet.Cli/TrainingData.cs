using System;
using System.IO;
using System.Linq;
using ResNetSharp.Training;

namespace ResNetSharp.Cli;

/// <summary>Resolves <c>--dataset</c> (and <c>--subset</c>) into a training and a test set.</summary>
internal static class TrainingData
{
    /// <param name="imageSize">Side of the square image folders are brought to (IDX data keeps its own size).</param>
    /// <param name="channels">Channels for image folders: 3 (RGB) or 1 (grey).</param>
    public static (ImageDataset Train, ImageDataset Test, string Name) Load(string dataset, int? subset, int? testSubset, int imageSize = 32, int channels = 3)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        if (subset is < 1 || testSubset is < 1)
        {
            throw new ArgumentException($"--subset and --test-subset must be ≥ 1, got {subset} and {testSubset}.");
        }

        ImageDataset train, test;
        string name;
        if (dataset.Trim().Equals("fashion-mnist", StringComparison.OrdinalIgnoreCase))
        {
            train = FashionMnist.Train();
            test = FashionMnist.Test();
            name = "fashion-mnist";
        }
        else if (Directory.Exists(dataset) && FashionMnist.IsAvailable(dataset))
        {
            // A folder holding MNIST-format IDX files (Fashion-MNIST or a copy of it).
            train = FashionMnist.Train(dataset);
            test = FashionMnist.Test(dataset);
            name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dataset)));
        }
        else if (Directory.Exists(dataset))
        {
            // torchvision's layout: DIR/train/<class>/<image> and DIR/test/<class>/<image> (or DIR/val/…).
            string trainDir = Path.Combine(dataset, "train");
            string? testDir = new[] { "test", "val" }.Select(d => Path.Combine(dataset, d)).FirstOrDefault(Directory.Exists);
            if (!Directory.Exists(trainDir) || testDir is null)
            {
                throw new ArgumentException(
                    $"'{dataset}' holds neither IDX files (train-images-idx3-ubyte[.gz], …) nor image folders train/<class>/… and test/<class>/… (or val/).");
            }

            train = ImageDataset.FromFolder(trainDir, imageSize, channels);
            test = ImageDataset.FromFolder(testDir, imageSize, channels);
            if (!train.ClassNames.SequenceEqual(test.ClassNames))
            {
                throw new ArgumentException($"'{trainDir}' and '{testDir}' have different class folders ({train.ClassNames.Count} and {test.ClassNames.Count}).");
            }

            name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dataset)));
        }
        else
        {
            throw new ArgumentException($"Unknown dataset '{dataset}': expected fashion-mnist or a folder.");
        }

        if (subset is { } n)
        {
            train = train.Take(n);
        }

        int t = testSubset ?? (subset is { } s ? Math.Min(s, test.Count) : test.Count);
        test = test.Take(t);
        return (train, test, name);
    }
}
