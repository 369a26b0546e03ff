using System;
using System.Collections.Generic;
using System.Linq;

namespace ResNetSharp.Cam;

/// <summary>
/// A class activation map: a <see cref="Height"/> × <see cref="Width"/> grid of evidence for one class, row-major,
/// managed memory (no tensor to dispose). Computed by <see cref="Cam"/> or <see cref="GradCam"/>.
/// </summary>
/// <remarks>
/// <see cref="Cam"/>: Zhou et al. 2016, "Learning Deep Features for Discriminative Localization": with global average
/// pooling and one linear layer, the map of class c over the last feature maps fₖ is M_c(x, y) = Σₖ w_c,k · fₖ(x, y),
/// and the logit is exactly the spatial mean of M_c plus the bias. <see cref="GradCam"/>: Selvaraju et al. 2017,
/// "Grad-CAM": for any feature map, αₖ = mean over (x, y) of ∂y_c / ∂fₖ(x, y) and the map is ReLU(Σₖ αₖ fₖ); at the
/// last layer of a GAP + linear head it equals ReLU(M_c) / (h·w).
/// <para>
/// The input is one preprocessed image, 1 × C × H × W (e.g. <c>ImageTransform.ToTensor</c> in ResNetSharp.Images). The
/// model is run with eval semantics (it is switched to eval for the call and switched back), no parameter gradient is
/// accumulated, and every tensor is released before the call returns. Calls on one model must not overlap with each
/// other or with training (they switch its mode); ResNetSharp.OnnxRuntime's ImageClassifier.Explain serialises them.
/// </para>
/// </remarks>
public sealed class ActivationMap
{
    private readonly float[] values;

    /// <summary>CAM over the last feature map (h × w: H/32 × W/32 for ImageNet tables); raw values, not normalised.</summary>
    /// <param name="model">The network (GAP + linear head, as every ResNet here).</param>
    /// <param name="image">1 × C × H × W, preprocessed.</param>
    /// <param name="classIndex">The class to explain; default the predicted one.</param>
    /// <exception cref="ArgumentException">The input is not one image the model accepts, or the class is out of range.</exception>
    public static ActivationMap Cam(ResNet model, TorchSharp.torch.Tensor image, int? classIndex = null) =>
        ClassActivationMaps.Cam(model, image, classIndex);

    /// <summary>Grad-CAM on any feature map: ReLU(Σₖ αₖ fₖ) with αₖ the spatial mean of ∂y_c/∂fₖ.</summary>
    /// <param name="model">The network.</param>
    /// <param name="image">1 × C × H × W, preprocessed.</param>
    /// <param name="classIndex">The class to explain; default the predicted one.</param>
    /// <param name="layer">The feature map: 0 = stem (after its BN-ReLU, before the max pool), 1 … N = layer1 … layerN; −1 (default) = the last.</param>
    /// <exception cref="ArgumentException">Bad input, class or layer.</exception>
    public static ActivationMap GradCam(ResNet model, TorchSharp.torch.Tensor image, int? classIndex = null, int layer = -1) =>
        ClassActivationMaps.GradCam(model, image, classIndex, layer);

    /// <summary>Wraps a copy of row-major values.</summary>
    /// <param name="width">Columns (≥ 1).</param>
    /// <param name="height">Rows (≥ 1).</param>
    /// <param name="values">Exactly width × height values.</param>
    /// <param name="classIndex">The class the map explains.</param>
    /// <param name="layer">The feature map used (0 = stem, 1 … N = layer1 … layerN).</param>
    /// <param name="logit">The class's logit for the image.</param>
    /// <exception cref="ArgumentException">Sizes do not match.</exception>
    public ActivationMap(int width, int height, IReadOnlyList<float> values, int classIndex, int layer, float logit)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (width < 1 || height < 1 || values.Count != (long)width * height)
        {
            throw new ArgumentException($"An activation map of {width}×{height} needs {(long)width * height} values, got {values.Count}.");
        }

        Width = width;
        Height = height;
        this.values = values.ToArray();
        ClassIndex = classIndex;
        Layer = layer;
        Logit = logit;
    }

    /// <summary>Columns.</summary>
    public int Width { get; }

    /// <summary>Rows.</summary>
    public int Height { get; }

    /// <summary>The values, row-major.</summary>
    public IReadOnlyList<float> Values => values;

    /// <summary>The class the map explains.</summary>
    public int ClassIndex { get; }

    /// <summary>The feature map it was computed on: 0 = stem, 1 … N = layer1 … layerN (<see cref="ResNet.FeatureInfo"/>).</summary>
    public int Layer { get; }

    /// <summary>The class's logit for the image.</summary>
    public float Logit { get; }

    /// <summary>The value at column <paramref name="x"/>, row <paramref name="y"/>.</summary>
    /// <param name="x">Column.</param>
    /// <param name="y">Row.</param>
    public float this[int x, int y] => values[(y * Width) + x];

    /// <summary>Position of the largest value (first in row-major order on ties): the "pointing game" answer.</summary>
    public (int X, int Y) Peak
    {
        get
        {
            int best = 0;
            for (int i = 1; i < values.Length; i++)
            {
                if (values[i] > values[best])
                {
                    best = i;
                }
            }

            return (best % Width, best / Width);
        }
    }

    /// <summary>Bilinear resize with pixel centres aligned as <c>F.interpolate(align_corners=False)</c> and OpenCV's <c>resize</c> (used by pytorch-grad-cam).</summary>
    /// <param name="width">New width.</param>
    /// <param name="height">New height.</param>
    public ActivationMap Resize(int width, int height)
    {
        if (width < 1 || height < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(width), $"A map must be at least 1×1, got {width}×{height}.");
        }

        var result = new float[width * height];
        for (int y = 0; y < height; y++)
        {
            var (y0, y1, fy) = Source(y, height, Height);
            for (int x = 0; x < width; x++)
            {
                var (x0, x1, fx) = Source(x, width, Width);
                float top = (this[x0, y0] * (1 - fx)) + (this[x1, y0] * fx);
                float bottom = (this[x0, y1] * (1 - fx)) + (this[x1, y1] * fx);
                result[(y * width) + x] = (top * (1 - fy)) + (bottom * fy);
            }
        }

        return new ActivationMap(width, height, result, ClassIndex, Layer, Logit);
    }

    /// <summary>Scaled to [0, 1] by (v − min) / (max − min) (all zeros when constant), as pytorch-grad-cam shows maps.</summary>
    public ActivationMap Normalize()
    {
        float min = values.Min(), max = values.Max();
        float range = max - min;
        var result = values.Select(v => range > 0 ? (v - min) / range : 0f).ToArray();
        return new ActivationMap(Width, Height, result, ClassIndex, Layer, Logit);
    }

    private static (int I0, int I1, float Frac) Source(int i, int outSize, int inSize)
    {
        float s = ((i + 0.5f) * inSize / outSize) - 0.5f;
        if (s < 0)
        {
            s = 0;
        }

        int i0 = Math.Min((int)s, inSize - 1);
        int i1 = Math.Min(i0 + 1, inSize - 1);
        return (i0, i1, s - i0);
    }
}
