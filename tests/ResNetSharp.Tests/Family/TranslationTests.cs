using System;
using System.Linq;
using FluentAssertions;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ResNetSharp.Tests.Family;

/// <summary>
/// Convolutional feature maps are translation-equivariant and the GAP classifier is nearly invariant (Lin et al. 2014, "Network in Network", on global average pooling).
/// Shifts are made by cropping one wide random image at two offsets, so both crops are real content (no wrap-around).
/// </summary>
public class TranslationTests
{
    private readonly ITestOutputHelper output;

    public TranslationTests(ITestOutputHelper output)
    {
        NativeBackend.EnsureLoaded();
        this.output = output;
    }

    // name, feature index, stride of that map, receptive-field radius in pixels of that map (computed from the layer
    // list: resnet20 layer3 = 3×3 stem + 18 3×3 convs with two stride-2 steps → 71 px wide; resnet18 layer2 = 7×7/2
    // stem, 3×3/2 max pool, 4 + 4 3×3 convs at strides 4 and 8 → 99 px wide), input height/width.
    [Theory]
    [InlineData("resnet20", 3, 4, 36, 64, 128)]
    [InlineData("resnet18", 2, 8, 50, 64, 192)]
    public void FeatureMaps_ShiftWithTheInput_ByMultiplesOfTheStride(string name, int index, int stride, int radius, int height, int width)
    {
        torch.manual_seed(11);
        using var model = ResNetFactory.Create(name);
        model.eval();
        using var noGrad = torch.no_grad();
        int shiftCells = 2, shift = shiftCells * stride;
        using var wide = torch.randn(1, 3, height, width + shift);
        using var x1 = wide[.., .., .., 0..width].contiguous();
        using var x2 = wide[.., .., .., shift..(width + shift)].contiguous();
        using var f1 = model.ForwardFeatureMaps(x1, index)[0];
        using var f2 = model.ForwardFeatureMaps(x2, index)[0];
        f1.shape[1].Should().Be(model.FeatureInfo[index].Channels);
        f1.shape[3].Should().Be(width / stride);

        // Columns whose receptive field lies inside both crops: they see identical pixels, so only float rounding
        // (different conv tiling at different positions, ~1e-6 relative) may differ. Rows are all comparable: both
        // crops share the same top and bottom border. Tolerance 1e-4 of the map's scale: two orders above rounding,
        // far below the O(1) change a wrong alignment gives (checked below).
        int margin = (radius + stride - 1) / stride;
        int cols = (int)f1.shape[3] - shiftCells - (2 * margin);
        cols.Should().BeGreaterThan(2, "the test needs an interior to compare");
        using var a = f2.narrow(3, margin, cols);
        using var b = f1.narrow(3, margin + shiftCells, cols);
        double scale = f1.abs().max().item<float>();
        double diff = (a - b).abs().max().item<float>();
        output.WriteLine($"{name} C{index + 1}: interior {f1.shape[2]}×{cols} cells, max |Δ| = {diff:E2} (scale {scale:F3})");
        diff.Should().BeLessThan(1e-4 * scale);

        // A shift that is not a multiple of the stride does not just move the map: the same comparison fails clearly.
        using var x3 = wide[.., .., .., (shift - (stride / 2))..(width + shift - (stride / 2))].contiguous();
        using var f3 = model.ForwardFeatureMaps(x3, index)[0];
        using var c = f3.narrow(3, margin, cols);
        double off = (c - b).abs().max().item<float>();
        output.WriteLine($"{name}: shift by {stride / 2} px (half a cell) gives max |Δ| = {off:E2}");
        off.Should().BeGreaterThan(1e-2 * scale);
    }

    [Fact]
    public void GapClassifier_ChangesLittle_WhenTheMapMoves()
    {
        torch.manual_seed(5);
        using var model = ResNetFactory.ResNet20();
        model.eval();
        using var noGrad = torch.no_grad();
        const int size = 256, shift = 32; // 8 cells of the stride-4 map
        using var wide = torch.randn(1, 3, size, size + shift);
        using var x1 = wide[.., .., .., 0..size].contiguous();
        using var x2 = wide[.., .., .., shift..(size + shift)].contiguous();
        using var m1 = model.ForwardFeatures(x1);
        using var m2 = model.ForwardFeatures(x2);
        using var p1 = model.ForwardHead(m1, preLogits: true);
        using var p2 = model.ForwardHead(m2, preLogits: true);
        using var l1 = model.ForwardHead(m1);
        using var l2 = model.ForwardHead(m2);

        static double Rel(Tensor a, Tensor b) => (a - b).norm().item<float>() / (double)b.norm().item<float>();
        double mapChange = Rel(m2, m1), pooledChange = Rel(p2, p1), logitChange = Rel(l2, l1);
        output.WriteLine($"relative change: map {mapChange:F3}, pooled {pooledChange:F4}, logits {logitChange:F4}");

        // Position by position the map is a different one (its content moved by 8 cells); post-ReLU maps share a
        // positive per-channel level, so the relative change is ~0.46 here rather than ~1.4 for independent maps ...
        mapChange.Should().BeGreaterThan(0.3);

        // ... but the average over positions is nearly the same (measured 0.003): the interior columns hold the same
        // values, merely moved, and only columns within the receptive-field radius (9 cells) of the left/right edges
        // or among the 8 that enter and leave differ. 2 % leaves a margin of ~6× for other seeds and is still more
        // than an order of magnitude below the map's own change.
        pooledChange.Should().BeLessThan(0.02);
        logitChange.Should().BeLessThan(0.02);
        pooledChange.Should().BeLessThan(mapChange / 10);
    }
}
