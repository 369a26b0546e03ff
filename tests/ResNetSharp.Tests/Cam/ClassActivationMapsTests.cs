using System;
using System.IO;
using System.Linq;
using FluentAssertions;
using ResNetSharp.Cam;
using ResNetSharp.Images;
using ResNetSharp.Tests.Images;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ResNetSharp.Tests.Cam;

/// <summary>CAM's and Grad-CAM's defining identities, checked on small networks.</summary>
public class ClassActivationMapsTests
{
    [Fact]
    public void Cam_SpatialMeanPlusBias_IsTheLogit()
    {
        // Zhou et al.: logit_c = (1/hw) Σ_xy Σ_k w_ck f_k(x, y) + b_c, i.e. GAP + fc rearranged.
        using var model = ImageClassifierTests.TinyModel();
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(11);
        var x = torch.randn(1, 3, 24, 20);
        using var noGrad = torch.no_grad();
        var features = model.ForwardFeatures(x);
        var logits = model.call(x)[0];
        var maps = ClassActivationMaps.CamAllClasses(model, features)[0];              // classes × h × w, float64
        var fromMaps = maps.mean(new long[] { 1, 2 }) + model.Classifier!.bias!.to(ScalarType.Float64);
        // The same sum done as the head does it (pool, then fc) in float64: equal to rounding of float64.
        var pooled = features.to(ScalarType.Float64).mean(new long[] { 2, 3 })[0];
        var head = torch.mv(model.Classifier.weight!.to(ScalarType.Float64), pooled) + model.Classifier.bias!.to(ScalarType.Float64);
        (fromMaps - head).abs().max().item<double>().Should().BeLessThan(1e-12);
        (fromMaps - logits.to(ScalarType.Float64)).abs().max().item<double>().Should().BeLessThan(1e-5, "and the float32 forward agrees");

        for (int c = 0; c < 10; c++)
        {
            var cam = ClassActivationMaps.Cam(model, x, c);
            (cam.Width, cam.Height).Should().Be(((int)features.shape[3], (int)features.shape[2]));
            cam.Values.Average(v => (double)v).Should().BeApproximately(fromMaps[c].item<double>() - model.Classifier.bias![c].item<float>(), 1e-5);
            cam.Logit.Should().BeApproximately(logits[c].item<float>(), 1e-5f);
            cam.Layer.Should().Be(model.Stages.Count);
        }

        ClassActivationMaps.Cam(model, x).ClassIndex.Should().Be((int)logits.argmax().item<long>(), "no class: the predicted one");
    }

    [Fact]
    public void GradCam_LastLayer_IsReluCamOverArea()
    {
        // With GAP + linear, ∂y_c/∂f_k(x, y) = w_ck / (h w) everywhere, so Grad-CAM = ReLU(CAM) / (h w).
        using var model = ImageClassifierTests.TinyModel();
        torch.manual_seed(12);
        using var x = torch.randn(1, 3, 16, 16);
        for (int c = 0; c < 10; c += 3)
        {
            var cam = ClassActivationMaps.Cam(model, x, c);
            var grad = ClassActivationMaps.GradCam(model, x, c);
            int area = cam.Width * cam.Height;
            float scale = cam.Values.Max(Math.Abs);
            grad.Values.Zip(cam.Values, (g, m) => Math.Abs(g - (Math.Max(m, 0) / area))).Max().Should().BeLessThan(1e-6f * scale);
            grad.Logit.Should().BeApproximately(cam.Logit, 1e-5f);
            cam.Values.Should().Contain(v => v < 0, "CAM is signed, so the ReLU in Grad-CAM matters in this check");
        }
    }

    [Fact]
    public void GradCam_IntermediateLayer_EqualsFiniteDifferenceGradients()
    {
        // α_k from central differences of the logit with respect to each f_k(x, y), in float64: independent of autograd.
        using var model = ImageClassifierTests.TinyModel();
        model.to(ScalarType.Float64);
        torch.manual_seed(13);
        using var x = torch.randn(1, 3, 6, 6, dtype: ScalarType.Float64);
        const int layer = 1;
        // A class whose map is not all zero after the ReLU (else the comparison below would be vacuous).
        int c = Enumerable.Range(0, 10).First(k => ClassActivationMaps.GradCam(model, x, k, layer).Values.Max() > 0);
        var grad = ClassActivationMaps.GradCam(model, x, c, layer);

        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var f = model.ForwardFeatureMaps(x, layer)[0];                  // 1 × 8 × 6 × 6 (layer1 keeps the stride)
        double Logit(Tensor fm) => model.ForwardHead(model.FinishFeatures(model.RunStages(fm, layer, model.Stages.Count)))[0, c].item<double>();
        long k = f.shape[1], h = f.shape[2], w = f.shape[3];
        var alpha = new double[k];
        const double eps = 1e-4;
        for (long ch = 0; ch < k; ch++)
        {
            for (long yy = 0; yy < h; yy++)
            {
                for (long xx = 0; xx < w; xx++)
                {
                    var plus = f.clone();
                    plus[0, ch, yy, xx] += eps;
                    var minus = f.clone();
                    minus[0, ch, yy, xx] -= eps;
                    alpha[ch] += (Logit(plus) - Logit(minus)) / (2 * eps) / (h * w);
                }
            }
        }

        var expected = (torch.tensor(alpha, ScalarType.Float64).view(1, k, 1, 1) * f).sum(1)[0].relu();
        (grad.Width, grad.Height).Should().Be(((int)w, (int)h));
        double max = expected.abs().max().item<double>();
        var actual = torch.tensor(grad.Values.ToArray()).view(h, w).to(ScalarType.Float64);
        (actual - expected).abs().max().item<double>().Should().BeLessThan(1e-4 * Math.Max(max, 1e-3));
        max.Should().BeGreaterThan(0, "the check is not vacuous");
    }

    [Fact]
    public void GradCam_EveryLayer_LeavesModelUnchanged()
    {
        using var model = ImageClassifierTests.TinyModel();
        model.train();
        torch.manual_seed(14);
        using var x = torch.randn(1, 3, 16, 16);
        var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        for (int layer = 0; layer <= model.Stages.Count; layer++)
        {
            var map = ClassActivationMaps.GradCam(model, x, 0, layer);
            var info = model.FeatureInfo[layer];
            map.Width.Should().Be(16 / info.Stride, $"layer {layer} has stride {info.Stride}");
            map.Values.Should().OnlyContain(v => v >= 0 && float.IsFinite(v));
        }

        model.training.Should().BeTrue("the mode is restored");
        model.parameters().Select(p => p.grad is null).Should().AllBeEquivalentTo(true, "no parameter gradient is accumulated");
        foreach (var (key, value) in model.state_dict())
        {
            (value == before[key]).all().item<bool>().Should().BeTrue($"{key} (running statistics included) is unchanged");
        }

        var bad = () => ClassActivationMaps.GradCam(model, x, 0, 5);
        bad.Should().Throw<ArgumentException>().WithMessage("*0 (stem)*");
        var badClass = () => ClassActivationMaps.Cam(model, x, 10);
        badClass.Should().Throw<ArgumentException>().WithMessage("*classes 0 … 9*");
        using var two = torch.randn(2, 3, 16, 16);
        var batch = () => ClassActivationMaps.Cam(model, two);
        batch.Should().Throw<ArgumentException>().WithMessage("*one image*");
    }

    [Fact]
    public void Resize_IsBilinearWithHalfPixelCentres()
    {
        var map = new ActivationMap(3, 2, new float[] { 0, 1, 2, 3, 4, 5 }, 0, 1, 0);
        var big = map.Resize(7, 5);
        using var expected = torch.nn.functional.interpolate(torch.tensor(new float[] { 0, 1, 2, 3, 4, 5 }).view(1, 1, 2, 3), new long[] { 5, 7 },
            mode: InterpolationMode.Bilinear, align_corners: false);
        big.Values.Zip(expected.data<float>().ToArray(), (a, b) => Math.Abs(a - b)).Max().Should().BeLessThan(1e-6f);
        map.Peak.Should().Be((2, 1));
        map.Normalize().Values.Should().Equal(0f, 0.2f, 0.4f, 0.6f, 0.8f, 1f);
    }

    [Fact]
    public void HeatmapOverlay_WritePng_HotWhereTheMapPeaks()
    {
        var image = new PixelImage(40, 30, 3, Enumerable.Repeat((byte)128, 40 * 30 * 3).ToArray());
        var map = new ActivationMap(2, 2, new float[] { 0, 0, 0, 1 }, 0, 4, 0); // hot at the bottom right
        string dir = Directory.CreateTempSubdirectory("overlay").FullName;
        string path = Path.Combine(dir, "cam.png");
        HeatmapOverlay.WritePng(path, image, map);
        Directory.GetFiles(dir).Should().Equal(path); // no temporary file left behind
        var back = ImageDecoder.Decode(path);
        (back.Width, back.Height).Should().Be((40, 30));
        byte R(int x, int y) => back.Pixels[(((y * 40) + x) * 3)];
        byte B(int x, int y) => back.Pixels[(((y * 40) + x) * 3) + 2];
        R(39, 29).Should().BeGreaterThan(B(39, 29), "red where the map is 1");
        B(0, 0).Should().BeGreaterThan(R(0, 0), "blue where it is 0");
        HeatmapOverlay.Jet(0).Should().Be(((byte)0, (byte)0, (byte)128));
        HeatmapOverlay.Jet(1).Should().Be(((byte)128, (byte)0, (byte)0));

        // With a crop geometry, outside the model's input the image is dimmed and untinted.
        var t = new ImageTransform(new ModelMetadata { NumClasses = 1, InputSize = 20, CropPct = 1.0 });
        var overlaid = HeatmapOverlay.Render(image, map, t.Geometry(40, 30));
        overlaid.Pixels[0].Should().Be(overlaid.Pixels[2]).And.BeLessThan(128);
    }
}
