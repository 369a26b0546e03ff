using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using FluentAssertions;
using ResNetSharp.Images;
using ResNetSharp.OnnxRuntime;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ResNetSharp.Tests.Images;

/// <summary>The predictor: torchvision's answers on real photographs, batching, thread safety, no growth.</summary>
public class ImageClassifierTests
{
    private readonly ITestOutputHelper output;

    public ImageClassifierTests(ITestOutputHelper output) => this.output = output;

    /// <summary>A small CIFAR-stem network (16² input, 10 classes) with non-trivial BatchNorm statistics.</summary>
    internal static ResNet TinyModel(int inChannels = 3, int seed = 7)
    {
        torch.manual_seed(seed);
        var table = new StageTable
        {
            Block = BlockKind.Basic, Layers = new[] { 1, 1 }, Widths = new[] { 8, 16 }, Strides = new[] { 1, 2 }, Stem = StemKind.Cifar, StemWidth = 8,
        };
        var model = ResNetFactory.Create(table, new ResNetOptions { NumClasses = 10, InChannels = inChannels });
        using (torch.no_grad())
        {
            foreach (var (name, buffer) in model.named_buffers())
            {
                if (name.EndsWith("running_mean", StringComparison.Ordinal))
                {
                    buffer.uniform_(-0.2, 0.2);
                }
                else if (name.EndsWith("running_var", StringComparison.Ordinal))
                {
                    buffer.uniform_(0.5, 1.5);
                }
            }
        }

        model.eval();
        model.Metadata = model.Metadata with { InputSize = 16, CropPct = 1.0 };
        return model;
    }

    internal static PixelImage RandomImage(Random random, int channels = 3)
    {
        int w = random.Next(12, 40), h = random.Next(12, 40);
        var bytes = new byte[w * h * channels];
        random.NextBytes(bytes);
        return new PixelImage(w, h, channels, bytes);
    }

    public static IEnumerable<object[]> ModelCases => ImageFixtures.CaseNames.Take(14).Select(n => new object[] { n });

    private static readonly Lazy<ImageClassifier> Resnet18 = new(() =>
    {
        var model = ResNetFactory.ResNet18();
        model.LoadWeights(Fixtures.File_("weights_resnet18.safetensors"));
        return new ImageClassifier(model, disposeModel: true);
    });

    [Theory]
    [MemberData(nameof(ModelCases))]
    public void Classify_RealPhotograph_Top5EqualsTorchvision(string name)
    {
        // The same seeded resnet18 weights in both; torchvision's input came from PIL + its transform.
        var c = ImageFixtures.Get(name);
        var prediction = Resnet18.Value.Classify(c.SourcePath, topK: 5);
        prediction.Top.Select(t => t.Index).Should().Equal(c.Top5!);
        double maxDiff = prediction.Logits.Zip(c.Logits, (a, b) => Math.Abs(a - b)).Max();
        double scale = c.Logits.Max(Math.Abs);
        output.WriteLine($"{name}: top-5 {string.Join(", ", c.Top5!)}; max |logit - torchvision's| = {maxDiff:E2} (logits up to {scale:F2})");
        (maxDiff / scale).Should().BeLessThan(1e-4);
        prediction.Probabilities.Sum().Should().BeApproximately(1f, 1e-4f);
        prediction.Top.Select(t => t.Probability).Should().BeInDescendingOrder();
    }

    [Fact]
    public void ClassifyMany_Batched_EqualsOneByOneAndTensorInput()
    {
        using var model = TinyModel();
        using var classifier = new ImageClassifier(model, options: new ImageClassifierOptions { MaxBatchSize = 4 });
        var random = new Random(1);
        var images = Enumerable.Range(0, 10).Select(_ => RandomImage(random)).ToList();
        var batched = classifier.ClassifyMany(images, topK: 3);
        batched.Should().HaveCount(10);
        var single = images.Select(i => classifier.Classify(i, topK: 3)).ToList();
        for (int i = 0; i < images.Count; i++)
        {
            batched[i].Top.Select(t => t.Index).Should().Equal(single[i].Top.Select(t => t.Index));
            batched[i].Logits.Zip(single[i].Logits, (a, b) => Math.Abs(a - b)).Max().Should().BeLessThan(1e-4f);
        }

        using var tensor = torch.stack(images.Select(i => classifier.Transform.ToTensor(i).squeeze(0)).ToArray());
        var fromTensor = classifier.Classify(tensor, topK: 3);
        fromTensor.Select(p => p.Best.Index).Should().Equal(batched.Select(p => p.Best.Index));
        tensor.IsInvalid.Should().BeFalse("the caller's tensor is left alone");
    }

    [Fact]
    public void Classify_PathStreamBytesBitmapAndPixels_GiveTheSameAnswer()
    {
        using var model = TinyModel();
        using var classifier = new ImageClassifier(model);
        var image = RandomImage(new Random(8));
        byte[] png = ImageEncoder.EncodePng(image);
        string path = ImageDecoderTests.TempFile("same.png", png);
        using var bitmap = SkiaSharp.SKBitmap.Decode(png);
        var expected = classifier.Classify(image).Logits;
        classifier.Classify(path).Logits.Should().Equal(expected);
        classifier.Classify(new MemoryStream(png)).Logits.Should().Equal(expected);
        classifier.Classify(png).Logits.Should().Equal(expected);
        classifier.Classify(bitmap).Logits.Should().Equal(expected);
        classifier.ClassifyMany(new[] { path, path }).Should().HaveCount(2);
    }

    [Fact]
    public void Classify_ConcurrentThreads_EqualSequentialResults()
    {
        using var model = TinyModel();
        using var classifier = new ImageClassifier(model);
        var random = new Random(2);
        var images = Enumerable.Range(0, 16).Select(_ => RandomImage(random)).ToList();
        var expected = images.Select(i => classifier.Classify(i, topK: 10)).ToList();

        const int threads = 6, rounds = 4;
        var failures = new List<string>();
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            var order = Enumerable.Range(0, images.Count).OrderBy(i => (i * 7919 + t * 104729) % 31).ToList();
            for (int r = 0; r < rounds; r++)
            {
                foreach (int i in order)
                {
                    var p = classifier.Classify(images[i], topK: 10);
                    if (!p.Logits.SequenceEqual(expected[i].Logits) || !p.Top.SequenceEqual(expected[i].Top))
                    {
                        lock (failures)
                        {
                            failures.Add($"thread {t}, image {i}");
                        }
                    }
                }
            }
        })).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());
        failures.Should().BeEmpty("every concurrent call returns exactly the sequential result");
    }

    [Fact]
    public void FromWeights_FileWithClassNames_ReturnsLabels()
    {
        using var model = TinyModel(inChannels: 1);
        string[] names = Enumerable.Range(0, 10).Select(i => $"class-{i}").ToArray();
        model.Metadata = model.Metadata with { ClassNames = names };
        string path = Path.Combine(Directory.CreateTempSubdirectory("clf").FullName, "tiny.safetensors");
        model.SaveWeights(path);

        using var classifier = ImageClassifier.FromWeights(path);
        classifier.Transform.Channels.Should().Be(1);
        classifier.Transform.InputSize.Should().Be(16);
        var image = RandomImage(new Random(4), channels: 1);
        var p = classifier.Classify(image, topK: 3);
        p.Top.Should().HaveCount(3);
        p.Top.Select(t => t.Label).Should().Equal(p.Top.Select(t => names[t.Index]));
        classifier.ClassIndex("class-7").Should().Be(7);
        classifier.ClassIndex("CLASS-2").Should().Be(2);
        classifier.ClassIndex("4").Should().Be(4);
        var bad = () => classifier.ClassIndex("zebra");
        bad.Should().Throw<ArgumentException>().WithMessage("*'zebra' is not a class*");

        using var reference = new ImageClassifier(model);
        reference.Classify(image, topK: 3).Logits.Should().Equal(p.Logits);
    }

    [Fact]
    public void Classify_BadInput_ThrowsClearly()
    {
        using var model = TinyModel();
        var classifier = new ImageClassifier(model);
        var grey = () => classifier.Classify(new PixelImage(20, 20, 1, new byte[400]));
        grey.Should().Throw<ArgumentException>().WithMessage("*3-channel*");
        var topK = () => classifier.Classify(RandomImage(new Random(5)), topK: 0);
        topK.Should().Throw<ArgumentOutOfRangeException>();
        string text = ImageDecoderTests.TempFile("x.png", new byte[] { 1, 2, 3 });
        var notImage = () => classifier.Classify(text);
        notImage.Should().Throw<InvalidDataException>().Where(e => e.Message.Contains(text));
        classifier.Dispose();
        var disposed = () => classifier.Classify(RandomImage(new Random(6)));
        disposed.Should().Throw<ObjectDisposedException>();
    }
}

/// <summary>The predictor's memory stays flat over 10,000 calls; alone, so no other test's allocations count.</summary>
[Collection(ProcessMemoryCollection.Name)]
public class ImageClassifierMemoryTests
{
    private readonly ITestOutputHelper output;

    public ImageClassifierMemoryTests(ITestOutputHelper output) => this.output = output;

    [Fact]
    public void Classify_TenThousandCalls_MemoryStaysFlat()
    {
        // The smallest ResNet (one basic block of width 4 on 8 × 8 inputs), so 10,000 calls take seconds.
        torch.manual_seed(3);
        var table = new StageTable { Block = BlockKind.Basic, Layers = new[] { 1 }, Widths = new[] { 4 }, Strides = new[] { 1 }, Stem = StemKind.Cifar, StemWidth = 4 };
        using var model = ResNetFactory.Create(table, new ResNetOptions { NumClasses = 10 });
        model.Metadata = model.Metadata with { InputSize = 8, CropPct = 1.0 };
        // One intra-op thread: at this size two threads mostly wait for each other on a busy machine.
        using var classifier = new ImageClassifier(model, options: new ImageClassifierOptions { Inference = new InferenceOptions { IntraOpThreads = 1 } });
        var random = new Random(3);
        var images = Enumerable.Range(0, 8).Select(_ => ImageClassifierTests.RandomImage(random)).ToList();
        AssertFlat(classifier, images);
    }

    private void AssertFlat(ImageClassifier classifier, List<PixelImage> images)
    {
        // Warm-up: glibc's bytes in use rise by 2–3 MiB over the first few thousand calls, then stay level (measured).
        for (int i = 0; i < 5000; i++)
        {
            classifier.Classify(images[i % images.Count]);
        }

        // Sampled after full collections every 1,000 calls. A single sample wanders by a few MiB (glibc arenas, the
        // runtime's own native memory), so the trend is judged: the mean of the last three samples against the mean of
        // the first three, 7,000 calls apart. One leaked 1×3×8×8 input per call would add 5.1 MiB of data alone there.
        int next = 0;
        var (rss, malloc) = MemoryTests.SampleEvery1000(() => classifier.Classify(images[next++ % images.Count]), 10_000);

        output.WriteLine($"RSS per 1,000 calls: {string.Join(", ", rss.Select(v => v.ToString("F1")))} MiB");
        output.WriteLine($"malloc in use per 1,000 calls: {string.Join(", ", malloc.Select(v => v.ToString("F2")))} MiB");
        MemoryTests.Trend(malloc).Should().BeLessThan(4); // a one-off step of ~2 MiB was seen once in three runs; a leak keeps climbing
        MemoryTests.Trend(rss).Should().BeLessThan(12);
        (rss.Max() - rss[0]).Should().BeLessThan(16);
    }
}
