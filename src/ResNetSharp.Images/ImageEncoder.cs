using System;
using SkiaSharp;

namespace ResNetSharp.Images;

/// <summary>Writes images as PNG with SkiaSharp, atomically (public as <see cref="PixelImage.EncodePng"/> and <see cref="PixelImage.SavePng"/>).</summary>
internal static class ImageEncoder
{
    /// <summary>Encodes an image as PNG bytes.</summary>
    /// <param name="image">RGB or grey.</param>
    public static byte[] EncodePng(PixelImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var info = new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var bitmap = new SKBitmap(info);
        var rgba = new byte[image.Width * image.Height * 4];
        var px = image.Pixels;
        int c = image.Channels;
        for (int i = 0; i < image.Width * image.Height; i++)
        {
            rgba[4 * i] = px[i * c];
            rgba[(4 * i) + 1] = px[(i * c) + (c == 3 ? 1 : 0)];
            rgba[(4 * i) + 2] = px[(i * c) + (c == 3 ? 2 : 0)];
            rgba[(4 * i) + 3] = 255;
        }

        System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100)
            ?? throw new InvalidOperationException($"SkiaSharp could not encode a {image} as PNG.");
        return data.ToArray();
    }

    /// <summary>Writes an image as a PNG file, atomically: a temporary file in the same folder, flushed, then renamed over the target.</summary>
    /// <param name="path">The file; its folder must exist.</param>
    /// <param name="image">RGB or grey.</param>
    public static void WritePng(string path, PixelImage image)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] png = EncodePng(image);
        AtomicFile.Write(path, s => s.Write(png));
    }
}
