using System;
using System.IO;
using ResNetSharp.Training;

namespace ResNetSharp.Cli;

/// <summary>Resolves <c>--dataset</c> (and <c>--subset</c>) into a training and a test set.</summary>
internal static class TrainingData
{
    public static (ImageDataset Train, ImageDataset Test, string Name) Load(string dataset, int? subset, int? testSubset)
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
            train = FashionMnist.Load(DatasetSplit.Train);
            test = FashionMnist.Load(DatasetSplit.Test);
            name = "fashion-mnist";
        }
        else if (Directory.Exists(dataset) && FashionMnist.IsAvailable(dataset))
        {
            // A folder holding MNIST-format IDX files (Fashion-MNIST or a copy of it).
            train = FashionMnist.Load(DatasetSplit.Train, dataset);
            test = FashionMnist.Load(DatasetSplit.Test, dataset);
            name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dataset)));
        }
        else if (Directory.Exists(dataset))
        {
            throw new ArgumentException(
                $"'{dataset}' holds no IDX files (train-images-idx3-ubyte[.gz], …); image folders (one sub-folder per class) are not supported yet.");
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
