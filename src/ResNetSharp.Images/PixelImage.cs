using System;
using System.IO;
using SkiaSharp;

namespace ResNetSharp.Images;

/// <summary>
/// A decoded 8-bit image in managed memory: <see cref="Height"/> rows of <see cref="Width"/> pixels, each
/// <see cref="Channels"/> bytes (3: R, G, B; 1: grey), rows packed without padding — the layout of a PIL image in
/// mode <c>RGB</c> or <c>L</c>. Immutable once built. The package's one image type: decode it with
/// <see cref="Decode(string, int, ImageDecodeOptions?)"/>, draw a class activation map over it with <see cref="Overlay"/>,
/// write it with <see cref="SavePng"/>.
/// </summary>
/// <remarks>
/// Decoding handles PNG, JPEG, WebP, BMP and GIF (first frame) with SkiaSharp as PIL's
/// <c>Image.open(f).convert("RGB")</c> (or <c>"L"</c>) would: no colour-profile conversion, alpha dropped (not
/// composited: <c>convert("RGB")</c> discards it and keeps the colour under it), grey replicated to RGB, RGB
/// to grey with PIL's ITU-R 601-2 luma (L = (19595 R + 38470 G + 7471 B + 2¹⁵) / 2¹⁶). The EXIF orientation is applied
/// unless <see cref="ImageDecodeOptions.ApplyExifOrientation"/> is off. Hostile input is refused with an
/// <see cref="System.IO.InvalidDataException"/> naming the source: an empty or unknown format, a truncated or corrupt stream (never
/// a partly grey image), a header whose width × height exceeds <see cref="ImageDecodeOptions.MaxPixels"/> (checked
/// before allocating, so a 50,000 × 50,000 header costs nothing), or more encoded bytes than
/// <see cref="ImageDecodeOptions.MaxEncodedBytes"/>. Thread-safe: every call is independent.
/// </remarks>
public sealed class PixelImage
{
    private readonly byte[] pixels;

    /// <summary>Wraps a copy of interleaved pixels.</summary>
    /// <param name="width">Columns (≥ 1).</param>
    /// <param name="height">Rows (≥ 1).</param>
    /// <param name="channels">1 (grey) or 3 (RGB).</param>
    /// <param name="pixels">Exactly <paramref name="width"/> × <paramref name="height"/> × <paramref name="channels"/> bytes, row by row.</param>
    /// <exception cref="ArgumentException">A size is not positive, the channel count is not 1 or 3, or the buffer has the wrong length.</exception>
    public PixelImage(int width, int height, int channels, ReadOnlySpan<byte> pixels)
        : this(width, height, channels, pixels.ToArray())
    {
    }

    /// <summary>Takes ownership of <paramref name="pixels"/> (no copy): for buffers this library has just filled.</summary>
    internal PixelImage(int width, int height, int channels, byte[] pixels)
    {
        Check(width, height, channels, pixels.Length);
        Width = width;
        Height = height;
        Channels = channels;
        this.pixels = pixels;
    }

    /// <summary>Columns.</summary>
    public int Width { get; }

    /// <summary>Rows.</summary>
    public int Height { get; }

    /// <summary>Bytes per pixel: 3 (R, G, B) or 1 (grey).</summary>
    public int Channels { get; }

    /// <summary>The pixels, row by row, <see cref="Channels"/> bytes each.</summary>
    public ReadOnlySpan<byte> Pixels => pixels;

    /// <summary>The buffer itself (never handed out to callers: the image is immutable).</summary>
    internal byte[] Buffer => pixels;

    /// <summary>Decodes an image file (see the remarks on <see cref="PixelImage"/> for what decoding does).</summary>
    /// <param name="path">The image file.</param>
    /// <param name="channels">3 for RGB, 1 for grey.</param>
    /// <param name="options">Limits; default <see cref="ImageDecodeOptions.Default"/>.</param>
    /// <exception cref="System.IO.InvalidDataException">The file is not a decodable image within the limits.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="channels"/> is not 1 or 3.</exception>
    public static PixelImage Decode(string path, int channels = 3, ImageDecodeOptions? options = null) =>
        ImageDecoder.Decode(path, channels, options);

    /// <summary>Decodes a whole stream (read from its current position to its end).</summary>
    /// <param name="stream">The encoded image.</param>
    /// <param name="sourceName">A label for messages (e.g. the file name or URL).</param>
    /// <param name="channels">3 for RGB, 1 for grey.</param>
    /// <param name="options">Limits; default <see cref="ImageDecodeOptions.Default"/>.</param>
    /// <exception cref="System.IO.InvalidDataException">The stream is not a decodable image within the limits.</exception>
    public static PixelImage Decode(Stream stream, string sourceName = "stream", int channels = 3, ImageDecodeOptions? options = null) =>
        ImageDecoder.Decode(stream, sourceName, channels, options);

    /// <summary>Decodes an encoded image held in memory.</summary>
    /// <param name="encoded">The file's bytes.</param>
    /// <param name="sourceName">A label for messages.</param>
    /// <param name="channels">3 for RGB, 1 for grey.</param>
    /// <param name="options">Limits; default <see cref="ImageDecodeOptions.Default"/>.</param>
    /// <exception cref="System.IO.InvalidDataException">The bytes are not a decodable image within the limits.</exception>
    public static PixelImage Decode(ReadOnlySpan<byte> encoded, string sourceName = "buffer", int channels = 3, ImageDecodeOptions? options = null) =>
        ImageDecoder.Decode(encoded, sourceName, channels, options);

    /// <summary>Converts a SkiaSharp bitmap (any colour type; premultiplied alpha is un-premultiplied, then dropped).</summary>
    /// <param name="bitmap">The bitmap; not changed.</param>
    /// <param name="channels">3 for RGB, 1 for grey.</param>
    /// <exception cref="ArgumentException">The bitmap is empty or its pixels cannot be read as RGBA.</exception>
    public static PixelImage FromBitmap(SKBitmap bitmap, int channels = 3) => ImageDecoder.FromBitmap(bitmap, channels);

    /// <summary>Encodes the image as PNG bytes.</summary>
    public byte[] EncodePng() => ImageEncoder.EncodePng(this);

    /// <summary>Writes the image as a PNG file, atomically: a temporary file in the same folder, flushed, then renamed over the target.</summary>
    /// <param name="path">The file; its folder must exist.</param>
    public void SavePng(string path) => ImageEncoder.WritePng(path, this);

    /// <summary>
    /// Draws a class activation map over this image, as pytorch-grad-cam's <c>show_cam_on_image</c> does: the map
    /// normalised to [0, 1], coloured with the jet colour map, blended over the image. The map covers the model's input,
    /// i.e. the center crop of the resized image that <paramref name="transform"/> makes of this image; outside that
    /// square the image is shown dimmed, so it is visible what the model did not see.
    /// </summary>
    /// <param name="map">The map (any resolution; sampled bilinearly), e.g. from <c>ImageClassifier.Explain</c>.</param>
    /// <param name="transform">The transform that made the model's input from this image (e.g. <c>ImageClassifier.Transform</c>): its resize and
    /// center crop place the map. Null: the map covers the whole image.</param>
    /// <param name="heatWeight">Weight of the colour map in the blend, 0 … 1. Default 0.5 (pytorch-grad-cam's).</param>
    /// <returns>A new RGB image of the same size; write it with <see cref="SavePng"/>.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="heatWeight"/> is outside [0, 1].</exception>
    public PixelImage Overlay(ActivationMap map, ImageTransform? transform = null, float heatWeight = 0.5f) =>
        HeatmapOverlay.Render(this, map, transform?.Geometry(Width, Height), heatWeight);

    /// <inheritdoc />
    public override string ToString() => $"{Width}×{Height} {(Channels == 3 ? "RGB" : "grey")}";

    private static void Check(int width, int height, int channels, int length)
    {
        if (width < 1 || height < 1)
        {
            throw new ArgumentException($"An image must be at least 1×1, got {width}×{height}.");
        }

        if (channels is not (1 or 3))
        {
            throw new ArgumentException($"An image has 1 (grey) or 3 (RGB) channels, got {channels}.");
        }

        if ((long)width * height * channels != length)
        {
            throw new ArgumentException(
                $"A {width}×{height} image with {channels} channel(s) needs {(long)width * height * channels} bytes, got {length}.");
        }
    }
}
