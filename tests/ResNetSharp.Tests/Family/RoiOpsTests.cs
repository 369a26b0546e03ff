using System;
using System.IO;
using System.Linq;
using System.Text.Json;
using FluentAssertions;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ResNetSharp.Tests.Family;

public class RoiOpsTests
{
    public RoiOpsTests() => NativeBackend.EnsureLoaded();

    [Fact]
    public void RoiAlign_OneSampleAtBoxCentre_IsTheHandComputedBilinearValue()
    {
        // 1×1×3×4 map with f(y, x) = 10y + x² (not bilinear, so interpolation is visible).
        var values = new float[12];
        for (int y = 0; y < 3; y++)
        {
            for (int x = 0; x < 4; x++)
            {
                values[(y * 4) + x] = (10 * y) + (x * x);
            }
        }

        using var input = torch.tensor(values, new long[] { 1, 1, 3, 4 });

        // Box (x1, y1, x2, y2) = (0.5, 0.2, 2.9, 1.8), one bin, one sample: the point is the centre (1.7, 1.0).
        // Bilinear at x = 1.7 between columns 1 and 2 on row 1: 0.3·f(1,1) + 0.7·f(1,2) = 0.3·11 + 0.7·14 = 13.1.
        using var boxes = torch.tensor(new float[] { 0, 0.5f, 0.2f, 2.9f, 1.8f }, new long[] { 1, 5 });
        using var one = RoiOps.RoiAlign(input, boxes, 1, 1, 1.0, samplingRatio: 1, aligned: false);
        one.item<float>().Should().BeApproximately(13.1f, 1e-5f);

        // 2×2 samples in one bin: points y ∈ {0.6, 1.4}, x ∈ {1.1, 2.3}. Rows: f(0.6, x) = 6 + g(x), f(1.4, x) = 14 + g(x),
        // where g is x² interpolated: g(1.1) = 0.9·1 + 0.1·4 = 1.3, g(2.3) = 0.7·4 + 0.3·9 = 5.5.
        // Mean = (6 + 14)/2 + (1.3 + 5.5)/2 = 10 + 3.4 = 13.4.
        using var four = RoiOps.RoiAlign(input, boxes, 1, 1, 1.0, samplingRatio: 2, aligned: false);
        four.item<float>().Should().BeApproximately(13.4f, 1e-5f);

        // aligned = true shifts the box by −0.5: centre (1.2, 0.5) → rows 0/1 at 0.5, columns 1/2 at 0.2:
        // 5 + (0.8·1 + 0.2·4) = 5 + 1.6 = 6.6.
        using var shifted = RoiOps.RoiAlign(input, boxes, 1, 1, 1.0, samplingRatio: 1, aligned: true);
        shifted.item<float>().Should().BeApproximately(6.6f, 1e-5f);
    }

    [Fact]
    public void RoiAlignAndRoiPool_MatchTorchvisionFixtures()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixtures.File_("roi_ops.json")));
        var root = doc.RootElement;
        long[] shape = root.GetProperty("inputShape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        float[] data = root.GetProperty("input").EnumerateArray().Select(e => e.GetSingle()).ToArray();
        float[] boxData = root.GetProperty("boxes").EnumerateArray().SelectMany(r => r.EnumerateArray()).Select(e => e.GetSingle()).ToArray();
        using var boxes = torch.tensor(boxData, new long[] { boxData.Length / 5, 5 });
        int checkedCases = 0;
        foreach (var c in root.GetProperty("cases").EnumerateArray())
        {
            var size = c.GetProperty("size").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            double scale = c.GetProperty("scale").GetDouble();
            float[] expected = c.GetProperty("output").EnumerateArray().Select(e => e.GetSingle()).ToArray();
            long[] expectedShape = c.GetProperty("outputShape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            using var input = torch.tensor(data, shape).requires_grad_(true);
            string label = $"{c.GetProperty("op").GetString()} scale {scale} size {size[0]}×{size[1]}";
            if (c.GetProperty("op").GetString() == "align")
            {
                int ratio = c.GetProperty("samplingRatio").GetInt32();
                bool aligned = c.GetProperty("aligned").GetBoolean();
                label += $" ratio {ratio} aligned {aligned}";
                using var y = RoiOps.RoiAlign(input, boxes, size[0], size[1], scale, ratio, aligned);
                y.shape.Should().Equal(expectedShape, label);
                AssertClose(y.detach(), expected, 1e-5, label);

                // Gradient to the feature map: d/dx Σ w·roi_align(x) must be torchvision's.
                float[] w = c.GetProperty("gradWeights").EnumerateArray().Select(e => e.GetSingle()).ToArray();
                using var weights = torch.tensor(w, expectedShape);
                using var loss = (y * weights).sum();
                loss.backward();
                float[] grad = c.GetProperty("inputGrad").EnumerateArray().Select(e => e.GetSingle()).ToArray();
                AssertClose(input.grad!, grad, 1e-5, label + " (input gradient)");
            }
            else
            {
                using var y = RoiOps.RoiPool(input, boxes, size[0], size[1], scale);
                y.shape.Should().Equal(expectedShape, label);
                AssertClose(y.detach(), expected, 1e-5, label);
            }

            checkedCases++;
        }

        checkedCases.Should().Be(10);
    }

    [Fact]
    public void RoiOps_EmptyBoxList_GivesZeroRowsWithTheRightShape()
    {
        using var input = torch.randn(2, 5, 8, 8);
        using var boxes = torch.zeros(0, 5);
        using var aligned = RoiOps.RoiAlign(input, boxes, 7, 7, 0.5);
        using var pooled = RoiOps.RoiPool(input, boxes, 3, 2, 0.5);
        aligned.shape.Should().Equal(0, 5, 7, 7);
        pooled.shape.Should().Equal(0, 5, 3, 2);
    }

    [Fact]
    public void RoiOps_BoxesWhollyOutside_GiveZeros_AndZeroSizeBoxes_AreOnePointOrEmpty()
    {
        using var input = torch.randn(1, 2, 6, 6) + 5; // strictly away from 0, so a zero output means "no samples"
        using var outside = torch.tensor(new float[] { 0, 20, 20, 30, 30 }, new long[] { 1, 5 });
        using (var a = RoiOps.RoiAlign(input, outside, 2, 2))
        using (var p = RoiOps.RoiPool(input, outside, 2, 2))
        {
            a.abs().max().item<float>().Should().Be(0);
            p.abs().max().item<float>().Should().Be(0);
        }

        // A zero-size box at cell (2, 3): legacy RoIAlign treats it as a 1×1 box starting there; RoIPool takes that cell;
        // aligned RoIAlign has no area and therefore no samples.
        using var point = torch.tensor(new float[] { 0, 3, 2, 3, 2 }, new long[] { 1, 5 });
        using (var p = RoiOps.RoiPool(input, point, 1, 1))
        {
            p.squeeze().allclose(input[0, .., 2, 3]).Should().BeTrue();
        }

        using (var a = RoiOps.RoiAlign(input, point, 1, 1, samplingRatio: 1))
        {
            // One sample at the centre of the unit box: (2.5, 3.5), the mean of the four cells around it.
            using var expected = input[0, .., 2..4, 3..5].mean(new long[] { 1, 2 });
            a.squeeze().allclose(expected, rtol: 1e-5, atol: 1e-5).Should().BeTrue();
        }

        using (var a = RoiOps.RoiAlign(input, point, 2, 2, aligned: true))
        {
            a.abs().max().item<float>().Should().Be(0);
        }
    }

    [Fact]
    public void RoiOps_BadArguments_ThrowClearErrors()
    {
        using var input = torch.randn(1, 2, 6, 6);
        using var inverted = torch.tensor(new float[] { 0, 4, 4, 2, 5 }, new long[] { 1, 5 });
        using var badBatch = torch.tensor(new float[] { 1, 0, 0, 2, 2 }, new long[] { 1, 5 });
        using var badShape = torch.zeros(3, 4);
        using var ok = torch.tensor(new float[] { 0, 0, 0, 2, 2 }, new long[] { 1, 5 });
        FluentActions.Invoking(() => RoiOps.RoiAlign(input, inverted, 2, 2)).Should().Throw<ArgumentException>().WithMessage("*x2 < x1*");
        FluentActions.Invoking(() => RoiOps.RoiPool(input, badBatch, 2, 2)).Should().Throw<ArgumentException>().WithMessage("*batch index*");
        FluentActions.Invoking(() => RoiOps.RoiAlign(input, badShape, 2, 2)).Should().Throw<ArgumentException>().WithMessage("*K×5*");
        FluentActions.Invoking(() => RoiOps.RoiAlign(input, ok, 0, 2)).Should().Throw<ArgumentException>().WithMessage("*output size*");
        FluentActions.Invoking(() => RoiOps.RoiAlign(input, ok, 2, 2, spatialScale: 0)).Should().Throw<ArgumentException>().WithMessage("*spatialScale*");
    }

    [Fact]
    public void RoiPool_GradientReachesTheFeatureMap()
    {
        using var input = torch.randn(1, 3, 8, 8).requires_grad_(true);
        // Box cells x 0…7, y 0…3: bins [0,4)×[0,2), [4,8)×[0,2), [0,4)×[2,4), [4,8)×[2,4) do not overlap.
        using var boxes = torch.tensor(new float[] { 0, 0, 0, 7, 3 }, new long[] { 1, 5 });
        using var y = RoiOps.RoiPool(input, boxes, 2, 2);
        using var loss = y.sum();
        loss.backward();

        // Each of the 3 × 2 × 2 bins routes its gradient to its own maximum: 12 ones in 12 different cells.
        input.grad!.sum().item<float>().Should().BeApproximately(12f, 1e-5f);
        input.grad!.count_nonzero().item<long>().Should().Be(12);
    }

    internal static void AssertClose(Tensor actual, float[] expected, double tolerance, string because)
    {
        float[] got = actual.contiguous().data<float>().ToArray();
        got.Length.Should().Be(expected.Length, because);
        double worst = got.Zip(expected, (a, e) => Math.Abs(a - e)).DefaultIfEmpty(0).Max();
        worst.Should().BeLessThanOrEqualTo(tolerance, because);
    }
}
