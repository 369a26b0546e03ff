using System;
using ResNetSharp.Images;

namespace ResNetSharp.Images;

/// <summary>
/// Draws an <see cref="ActivationMap"/> over the image it explains, as pytorch-grad-cam's <c>show_cam_on_image</c> does:
/// the map normalised to [0, 1], coloured with the jet colour map, blended over the image. The map covers the
/// model's input, i.e. the center crop of the resized image (<see cref="TransformGeometry"/>); outside that square
/// the image is shown dimmed, so it is visible what the model did not see.
/// </summary>
internal static class HeatmapOverlay
{
    /// <summary>Renders the overlay at the image's own size.</summary>
    /// <param name="image">The original image (RGB or grey).</param>
    /// <param name="map">The map (any resolution; sampled bilinearly).</param>
    /// <param name="geometry">Where the model's input lies in the image after its resize (<see cref="ImageTransform.Geometry"/>); null: the map covers the whole image.</param>
    /// <param name="heatWeight">Weight of the colour map in the blend, 0 … 1. Default 0.5 (pytorch-grad-cam's).</param>
    /// <returns>An RGB image of the same size.</returns>
    public static PixelImage Render(PixelImage image, ActivationMap map, TransformGeometry? geometry = null, float heatWeight = 0.5f)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(map);
        if (!(heatWeight >= 0 && heatWeight <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(heatWeight), heatWeight, "The heat map's weight must be in [0, 1].");
        }

        var g = geometry ?? new TransformGeometry(image.Width, image.Height, 0, 0, 0);
        bool whole = geometry is null;
        var normalized = map.Normalize();
        int w = image.Width, h = image.Height, c = image.Channels;
        var src = image.Pixels;
        var result = new byte[w * h * 3];
        for (int y = 0; y < h; y++)
        {
            // Position in the model's input, in [0, 1] when inside the crop.
            double v = whole ? (y + 0.5) / h : ((((y + 0.5) * g.ResizedHeight / h) - g.CropTop) / g.CropSize);
            for (int x = 0; x < w; x++)
            {
                double u = whole ? (x + 0.5) / w : ((((x + 0.5) * g.ResizedWidth / w) - g.CropLeft) / g.CropSize);
                int i = (y * w) + x;
                byte r = src[i * c], gr = src[(i * c) + (c - 2 > 0 ? 1 : 0)], b = src[(i * c) + (c - 1)];
                if (u < 0 || u >= 1 || v < 0 || v >= 1)
                {
                    result[3 * i] = (byte)(r * 0.35);
                    result[(3 * i) + 1] = (byte)(gr * 0.35);
                    result[(3 * i) + 2] = (byte)(b * 0.35);
                    continue;
                }

                float heat = Sample(normalized, u, v);
                var (hr, hg, hb) = Jet(heat);
                result[3 * i] = Blend(r, hr, heatWeight);
                result[(3 * i) + 1] = Blend(gr, hg, heatWeight);
                result[(3 * i) + 2] = Blend(b, hb, heatWeight);
            }
        }

        return new PixelImage(w, h, 3, result);
    }

    /// <summary>Renders the overlay and writes it as a PNG, atomically (a temporary file renamed over the target).</summary>
    /// <param name="path">The PNG to write; its folder must exist.</param>
    /// <param name="image">The original image.</param>
    /// <param name="map">The map.</param>
    /// <param name="geometry">Where the model's input lies (see <see cref="Render"/>).</param>
    /// <param name="heatWeight">Weight of the colour map. Default 0.5.</param>
    public static void WritePng(string path, PixelImage image, ActivationMap map, TransformGeometry? geometry = null, float heatWeight = 0.5f) =>
        ImageEncoder.WritePng(path, Render(image, map, geometry, heatWeight));

    /// <summary>The jet colour map (OpenCV's <c>COLORMAP_JET</c>, matplotlib's <c>jet</c>): blue at 0, red at 1.</summary>
    /// <param name="value">In [0, 1].</param>
    public static (byte R, byte G, byte B) Jet(float value)
    {
        float v = Math.Clamp(value, 0f, 1f);
        static byte Channel(float t) => (byte)Math.Round(255 * Math.Clamp(1.5f - Math.Abs(t), 0f, 1f));
        return (Channel((4 * v) - 3), Channel((4 * v) - 2), Channel((4 * v) - 1));
    }

    private static byte Blend(byte image, byte heat, float weight) => (byte)Math.Round(((1 - weight) * image) + (weight * heat));

    private static float Sample(ActivationMap map, double u, double v)
    {
        double sx = Math.Clamp((u * map.Width) - 0.5, 0, map.Width - 1);
        double sy = Math.Clamp((v * map.Height) - 0.5, 0, map.Height - 1);
        int x0 = (int)sx, y0 = (int)sy;
        int x1 = Math.Min(x0 + 1, map.Width - 1), y1 = Math.Min(y0 + 1, map.Height - 1);
        float fx = (float)(sx - x0), fy = (float)(sy - y0);
        float top = (map[x0, y0] * (1 - fx)) + (map[x1, y0] * fx);
        float bottom = (map[x0, y1] * (1 - fx)) + (map[x1, y1] * fx);
        return (top * (1 - fy)) + (bottom * fy);
    }
}
