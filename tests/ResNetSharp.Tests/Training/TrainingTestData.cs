using System;
using System.Linq;
using FluentAssertions;
using ResNetSharp.Training;

namespace ResNetSharp.Tests.Training;

/// <summary>Small synthetic data and a tiny network for the training tests (fast, and needing no installed dataset).</summary>
internal static class TrainingTestData
{
    /// <summary>
    /// Fails the calling test when Debian's Fashion-MNIST is not installed: scripts/test.sh installs it (as root), and a
    /// missing dataset must fail a test, never pass it.
    /// </summary>
    public static void RequireFashionMnist() =>
        FashionMnist.IsAvailable().Should().BeTrue(
            $"Fashion-MNIST must be in {FashionMnist.DefaultFolder} (apt-get install dataset-fashion-mnist; scripts/test.sh does it as root)");

    /// <summary>
    /// Grey images in which class k is a bright bar at row band k (plus noise): learnable in a few dozen steps.
    /// Pixel i of image n is a fixed function of (seed, n, i), so the set is the same in every run.
    /// </summary>
    public static InMemoryImageDataset Bars(int count, int classes = 4, int size = 16, int seed = 1)
    {
        var random = new Random(seed);
        var pixels = new byte[count * size * size];
        var labels = new byte[count];
        int band = size / classes;
        for (int n = 0; n < count; n++)
        {
            int label = n % classes;
            labels[n] = (byte)label;
            for (int y = 0; y < size; y++)
            {
                for (int x = 0; x < size; x++)
                {
                    bool bar = y / band == label;
                    pixels[(n * size + y) * size + x] = (byte)Math.Clamp((bar ? 180 : 40) + random.Next(-40, 41), 0, 255);
                }
            }
        }

        return new InMemoryImageDataset(pixels, labels, 1, size, size, Enumerable.Range(0, classes).Select(c => $"bar{c}").ToArray(), "bars");
    }

    /// <summary>The CIFAR design with one block per stage (8 layers, option A shortcuts), one input channel.</summary>
    public static ResNet TinyModel(int classes = 4)
    {
        var table = ResNetFactory.GetTable("resnet20") with { Layers = new[] { 1, 1, 1 } };
        return new ResNet(table, new ResNetOptions { InChannels = 1, NumClasses = classes }, "tiny");
    }
}
