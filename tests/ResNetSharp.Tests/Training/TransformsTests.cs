using System;
using System.Linq;
using FluentAssertions;
using ResNetSharp.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ResNetSharp.Tests.Training;

/// <summary>Transforms against hand-computed results on small batches whose pixel values encode their position.</summary>
public class TransformsTests
{
    /// <summary>N × 1 × 4 × 4 with pixel (n, y, x) = 100n + 10y + x + 1 (never 0, so padding is visible).</summary>
    private static Tensor Positions(int n) =>
        torch.arange(0, n * 16, dtype: ScalarType.Float32).view(n, 1, 4, 4) is var t
            ? (t.div(16, rounding_mode: RoundingMode.floor) * 100 + (t.remainder(16).div(4, rounding_mode: RoundingMode.floor)) * 10 + t.remainder(4) + 1)
            : throw new InvalidOperationException();

    [Fact]
    public void RandomCrop_EachImageIsAWindowOfItsZeroPaddedSelf()
    {
        using var x = Positions(8);
        using var y = Transforms.RandomCrop(padding: 2).Apply(x, new Random(5));

        y.shape.Should().Equal(8, 1, 4, 4);
        var replay = new Random(5);
        for (int n = 0; n < 8; n++)
        {
            int oy = replay.Next(5) - 2, ox = replay.Next(5) - 2; // window origin in unpadded coordinates
            for (int r = 0; r < 4; r++)
            {
                for (int c = 0; c < 4; c++)
                {
                    int sy = r + oy, sx = c + ox;
                    float expected = sy is >= 0 and < 4 && sx is >= 0 and < 4 ? 100 * n + 10 * sy + sx + 1 : 0;
                    y[n, 0, r, c].item<float>().Should().Be(expected);
                }
            }
        }
    }

    [Fact]
    public void RandomHorizontalFlip_ProbabilityOne_MirrorsEveryImage_ZeroKeepsThem()
    {
        using var x = Positions(3);
        using var flipped = Transforms.RandomHorizontalFlip(1).Apply(x, new Random(1));
        using var kept = Transforms.RandomHorizontalFlip(0).Apply(x, new Random(1));

        flipped[2, 0, 1].data<float>().ToArray().Should().Equal(214, 213, 212, 211);
        kept.data<float>().ToArray().Should().Equal(x.data<float>().ToArray());
    }

    [Fact]
    public void Normalize_SubtractsMeanDividesByStdPerChannel()
    {
        using var x = torch.tensor(new float[] { 0.5f, 1f, 0f, 0.25f }, new long[] { 1, 2, 1, 2 });
        using var y = Transforms.Normalize(new[] { 0.5, 0.25 }, new[] { 0.25, 0.5 }).Apply(x, new Random(0));

        y.data<float>().ToArray().Should().Equal(0f, 2f, -0.5f, 0f);
    }

    [Fact]
    public void PadTo_CentresTheImage()
    {
        using var x = torch.ones(1, 1, 28, 28);
        using var y = Transforms.PadTo(32).Apply(x, new Random(0));

        y.shape.Should().Equal(1, 1, 32, 32);
        y.sum().item<float>().Should().Be(784);
        y[0, 0, 2, 2].item<float>().Should().Be(1);
        y[0, 0, 1, 2].item<float>().Should().Be(0);
    }

    [Fact]
    public void Cutout_ZeroesASquareClippedAtTheBorder()
    {
        using var x = torch.ones(16, 1, 8, 8);
        using var y = Transforms.Cutout(4).Apply(x, new Random(2));

        var replay = new Random(2);
        for (int n = 0; n < 16; n++)
        {
            replay.NextDouble();
            int cy = replay.Next(8), cx = replay.Next(8);
            int rows = Math.Min(8, cy + 2) - Math.Max(0, cy - 2), cols = Math.Min(8, cx + 2) - Math.Max(0, cx - 2);
            (64 - y[n].sum().item<float>()).Should().Be(rows * cols);
        }
    }

    [Fact]
    public void RandomErasing_ErasesBetweenTheAreaBoundsOrNothing()
    {
        using var x = torch.ones(64, 1, 16, 16);
        using var y = Transforms.RandomErasing(p: 1).Apply(x, new Random(3));

        var erased = Enumerable.Range(0, 64).Select(n => 256 - y[n].sum().item<float>()).ToArray();
        erased.Should().OnlyContain(e => e == 0 || (e >= 0.02 * 256 * 0.5 && e <= 0.33 * 256 * 1.5)); // rounding of the sides
        erased.Count(e => e > 0).Should().BeGreaterThan(48);
    }

    [Fact]
    public void PaperCifar_SameSeed_SameBatch_OtherSeedDiffers()
    {
        using var x = torch.rand(16, 3, 32, 32, generator: new Generator(1));
        var t = Transforms.PaperCifar(ModelMetadata.ImageNetMean, ModelMetadata.ImageNetStd);

        using var a = t.Apply(x, new Random(9));
        using var b = t.Apply(x, new Random(9));
        using var c = t.Apply(x, new Random(10));

        a.shape.Should().Equal(16, 3, 32, 32);
        a.data<float>().ToArray().Should().Equal(b.data<float>().ToArray());
        a.data<float>().ToArray().SequenceEqual(c.data<float>().ToArray()).Should().BeFalse();
    }

    [Fact]
    public void Resize_2x2To4x4Bilinear_MatchesHandComputedValues()
    {
        using var x = torch.tensor(new float[] { 0, 4, 8, 12 }).view(1, 1, 2, 2);

        using var y = Transforms.Resize(4).Apply(x, new Random(0));

        // Half-pixel centres (align_corners=False): output column j samples input column (j + 0.5) / 2 − 0.5,
        // i.e. −0.25, 0.25, 0.75, 1.25, clamped at the border: weights 1, 0.75 / 0.25, 0.25 / 0.75, 1.
        float[] row0 = { 0, 1, 3, 4 };
        var expected = new[] { 0f, 0.25f, 0.75f, 1f }.SelectMany(fy => row0.Select(v => v + (8 * fy))).ToArray();
        y.shape.Should().Equal(1, 1, 4, 4);
        y.data<float>().ToArray().Should().Equal(expected, (a, b) => Math.Abs(a - b) < 1e-6);
    }

    [Fact]
    public void Pretrained_BgrMetadata_ResizesReordersSubtractsMeanAndScales()
    {
        using var model = ResNetFactory.Create("resnet20", new ResNetOptions { InChannels = 3, NumClasses = 2 });
        var metadata = model.Metadata with
        {
            Mean = new[] { 0.1, 0.2, 0.3 },  // in the network's order: B, G, R
            Std = new[] { 1 / 255.0, 1 / 255.0, 1 / 255.0 },
            ChannelOrder = ChannelOrder.Bgr,
        };
        using var rgb = torch.tensor(new float[] { 0.9f, 0.5f, 0.25f }).view(1, 3, 1, 1).expand(2, 3, 2, 2).contiguous(); // R, G, B

        using var y = Transforms.Pretrained(metadata, inputSize: 3).Apply(rgb, new Random(0));

        y.shape.Should().Equal(2, 3, 3, 3); // a constant image stays constant through the resize
        y[0, .., 1, 1].data<float>().ToArray().Should().Equal(new[] { (0.25f - 0.1f) * 255, (0.5f - 0.2f) * 255, (0.9f - 0.3f) * 255 },
            (a, b) => Math.Abs(a - b) < 1e-4);
    }

    [Fact]
    public void Pretrained_PixelMaxAndMeanImage_ScaleThenSubtractPerPixel()
    {
        // Hand-computed: a 2×2 RGB input, pixels in 0 … 255 (PixelMax 255), per-channel mean 1, a mean image 0 … 11, std 2.
        using var model = ResNetFactory.Create("resnet20", new ResNetOptions { InChannels = 3, NumClasses = 2 });
        var metadata = model.Metadata with
        {
            InputSize = 2, PixelMax = 255, Mean = new[] { 1.0, 1.0, 1.0 }, Std = new[] { 2.0, 2.0, 2.0 },
            MeanImage = Enumerable.Range(0, 12).Select(i => (float)i).ToArray(),
        };
        using var x = torch.full(1, 3, 2, 2, 0.2f);                                   // 0.2 × 255 = 51 everywhere

        using var y = Transforms.Pretrained(metadata).Apply(x, new Random(0));

        y.data<float>().ToArray().Should().Equal(Enumerable.Range(0, 12).Select(i => (51f - 1f - i) / 2f), (a, b) => Math.Abs(a - b) < 1e-4);
    }

    [Fact]
    public void Pretrained_UnknownPreprocessing_Refuses()
    {
        using var model = ResNetFactory.Create("resnet20", new ResNetOptions { InChannels = 3, NumClasses = 2 });
        var act = () => Transforms.Pretrained(model.Metadata with { PreprocessingKnown = false });
        act.Should().Throw<InvalidOperationException>().WithMessage("*Transforms.Pretrained*preprocessing is unknown*");
    }
}
