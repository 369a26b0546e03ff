using System;
using System.Collections.Generic;
using System.Linq;

namespace ResNetSharp.Cam;

/// <summary>
/// A class activation map: a <see cref="Height"/> × <see cref="Width"/> grid of evidence for one class, row-major,
/// managed memory (no tensor to dispose).
/// </summary>
public sealed class ActivationMap
{
    private readonly float[] values;

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
