using System;
using System.IO;
using System.Linq;
using FluentAssertions;
using ResNetSharp.Images;
using ResNetSharp.Training;
using Xunit;

namespace ResNetSharp.Tests.Training;

public sealed class ImageFolderDatasetTests : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("image-folder").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    private void Solid(string cls, string file, int width, int height, byte r, byte g, byte b)
    {
        Directory.CreateDirectory(Path.Combine(root, cls));
        var pixels = new byte[width * height * 3];
        for (int i = 0; i < width * height; i++)
        {
            (pixels[3 * i], pixels[3 * i + 1], pixels[3 * i + 2]) = (r, g, b);
        }

        ImageEncoder.WritePng(Path.Combine(root, cls, file), new PixelImage(width, height, 3, pixels));
    }

    [Fact]
    public void Constructor_ClassFolders_OrdinalClassesAndFiles_SolidColoursComeOutExactly()
    {
        Solid("b_blue", "2.png", 10, 20, 0, 0, 255);
        Solid("b_blue", "1.png", 20, 10, 0, 51, 255);
        Solid("a_red", "x.png", 7, 7, 255, 0, 0);
        File.WriteAllText(Path.Combine(root, "a_red", "notes.txt"), "not an image");

        var set = new ImageFolderDataset(root, size: 8);
        var pixels = new float[3 * 64];
        set.ReadImage(1, pixels);

        set.ClassNames.Should().Equal("a_red", "b_blue");
        set.Count.Should().Be(3);
        Enumerable.Range(0, 3).Select(set.GetLabel).Should().Equal(0, 1, 1);
        Path.GetFileName(set.GetPath(1)).Should().Be("1.png");
        (set.Channels, set.Height, set.Width).Should().Be((3, 8, 8));
        pixels[..64].Should().OnlyContain(v => v == 0f);
        pixels[64..128].Should().OnlyContain(v => v == 0.2f);
        pixels[128..].Should().OnlyContain(v => v == 1f);
    }

    [Fact]
    public void ReadImage_UndecodableFile_ThrowsNamingTheFile()
    {
        Solid("cat", "ok.png", 4, 4, 1, 2, 3);
        string broken = Path.Combine(root, "cat", "broken.png");
        File.WriteAllBytes(broken, new byte[] { 0x89, 0x50, 0x4E, 0x47, 1, 2, 3, 4, 5 });
        var set = new ImageFolderDataset(root, size: 4);

        var act = () => set.ReadImage(0, new float[48]);

        act.Should().Throw<InvalidDataException>().Which.Message.Should().Contain(broken);
    }

    [Fact]
    public void DataLoader_UndecodableFileOnThePrefetchThread_SurfacesToTheConsumer()
    {
        Solid("cat", "a.png", 4, 4, 1, 2, 3);
        File.WriteAllBytes(Path.Combine(root, "cat", "b.png"), new byte[] { 1, 2, 3 });
        var loader = new DataLoader(new ImageFolderDataset(root, size: 4), new DataLoaderOptions { BatchSize = 1, Shuffle = false, Prefetch = 2 });

        var act = () => loader.GetBatches(0).Select(b =>
        {
            b.Dispose();
            return 0;
        }).ToList();

        act.Should().Throw<InvalidDataException>().Which.Message.Should().Contain("b.png");
    }

    [Fact]
    public void Constructor_ClassFolderWithoutImages_ThrowsNamingIt()
    {
        Solid("cat", "ok.png", 4, 4, 1, 2, 3);
        Directory.CreateDirectory(Path.Combine(root, "dog"));

        var act = () => new ImageFolderDataset(root, size: 4);

        act.Should().Throw<ArgumentException>().WithMessage($"*'{Path.Combine(root, "dog")}' holds no image*");
    }

    [Fact]
    public void DataLoader_OverAnImageFolder_PrefetchedGreyBatches()
    {
        for (int i = 0; i < 6; i++)
        {
            Solid(i % 2 == 0 ? "even" : "odd", $"{i}.png", 12, 9, (byte)(40 * i), (byte)(40 * i), (byte)(40 * i));
        }

        var loader = new DataLoader(new ImageFolderDataset(root, size: 6, channels: 1), new DataLoaderOptions { BatchSize = 4, Prefetch = 2 });

        var batches = loader.GetBatches(0).ToList();

        batches.Select(b => b.Size).Should().Equal(4, 2);
        batches[0].Images.shape.Should().Equal(4, 1, 6, 6);
        batches.ForEach(b => b.Dispose());
    }
}
