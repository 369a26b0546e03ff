using System;
using System.IO;
using System.Runtime.InteropServices;
using SkiaSharp;

namespace ResNetSharp.Images;

/// <summary>Limits and behaviour of <see cref="PixelImage.Decode(string, int, ImageDecodeOptions?)"/> and its overloads.</summary>
public sealed record ImageDecodeOptions
{
    /// <summary>
    /// PIL's <c>Image.MAX_IMAGE_PIXELS</c> (89,478,485: about a quarter GiB of 24-bit pixels), beyond which PIL warns
    /// of a decompression bomb.
    /// </summary>
    public const long PilMaxImagePixels = 89_478_485;

    /// <summary>The defaults: <see cref="PilMaxImagePixels"/>, 256 MiB of encoded bytes, EXIF orientation applied.</summary>
    public static ImageDecodeOptions Default { get; } = new();

    /// <summary>
    /// Largest width × height decoded, checked from the header before any pixel memory is allocated. Default
    /// <see cref="PilMaxImagePixels"/>.
    /// </summary>
    public long MaxPixels { get; init; } = PilMaxImagePixels;

    /// <summary>Largest encoded file or stream read into memory, in bytes. Default 256 MiB.</summary>
    public long MaxEncodedBytes { get; init; } = 256L << 20;

    /// <summary>
    /// Rotate/flip to the EXIF orientation (as PIL's <c>ImageOps.exif_transpose</c>; PIL's plain <c>Image.open</c>, and
    /// so torchvision's <c>ImageFolder</c>, ignores it). Default true.
    /// </summary>
    public bool ApplyExifOrientation { get; init; } = true;
}

/// <summary>
/// Decodes PNG, JPEG, WebP, BMP and GIF (first frame) with SkiaSharp into a <see cref="PixelImage"/> as PIL's
/// <c>Image.open(f).convert("RGB")</c> (or <c>"L"</c>) would give it: no colour-profile conversion, alpha dropped (not
/// composited: <c>convert("RGB")</c> discards it and keeps the colour under it), grey replicated to RGB, RGB
/// to grey with PIL's ITU-R 601-2 luma (L = (19595 R + 38470 G + 7471 B + 2¹⁵) / 2¹⁶). The EXIF orientation is applied
/// unless <see cref="ImageDecodeOptions.ApplyExifOrientation"/> is off.
/// </summary>
/// <remarks>
/// Hostile input is refused with an <see cref="System.IO.InvalidDataException"/> naming the source: an empty or unknown format,
/// a truncated or corrupt stream (never a partly grey image), a header whose width × height exceeds
/// <see cref="ImageDecodeOptions.MaxPixels"/> (checked before allocating, so a 50,000 × 50,000 header costs nothing),
/// or more encoded bytes than <see cref="ImageDecodeOptions.MaxEncodedBytes"/>. Thread-safe: every call is independent.
/// </remarks>
internal static class ImageDecoder
{
    /// <summary>
    /// The error for an image that cannot be decoded (not an image, truncated, corrupt, empty or too large): the
    /// <see cref="InvalidDataException"/> that malformed weight files also raise, its message starting with the source.
    /// </summary>
    internal static InvalidDataException Invalid(string source, string reason, Exception? inner = null) => new($"{source}: {reason}", inner);

    /// <summary>Decodes a file.</summary>
    /// <param name="path">The image file.</param>
    /// <param name="channels">3 for RGB, 1 for grey.</param>
    /// <param name="options">Limits; default <see cref="ImageDecodeOptions.Default"/>.</param>
    /// <exception cref="System.IO.InvalidDataException">The file is not a decodable image within the limits.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="channels"/> is not 1 or 3.</exception>
    public static PixelImage Decode(string path, int channels = 3, ImageDecodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        options ??= ImageDecodeOptions.Default;
        CheckChannels(channels);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        return DecodeBytes(ReadAll(stream, path, options), path, channels, options);
    }

    /// <summary>Decodes a whole stream (read from its current position to its end).</summary>
    /// <param name="stream">The encoded image.</param>
    /// <param name="sourceName">A label for messages (e.g. the file name or URL).</param>
    /// <param name="channels">3 for RGB, 1 for grey.</param>
    /// <param name="options">Limits; default <see cref="ImageDecodeOptions.Default"/>.</param>
    /// <exception cref="System.IO.InvalidDataException">The stream is not a decodable image within the limits.</exception>
    public static PixelImage Decode(Stream stream, string sourceName = "stream", int channels = 3, ImageDecodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        options ??= ImageDecodeOptions.Default;
        CheckChannels(channels);
        return DecodeBytes(ReadAll(stream, sourceName, options), sourceName, channels, options);
    }

    /// <summary>Decodes an encoded image held in memory.</summary>
    /// <param name="encoded">The file's bytes.</param>
    /// <param name="sourceName">A label for messages.</param>
    /// <param name="channels">3 for RGB, 1 for grey.</param>
    /// <param name="options">Limits; default <see cref="ImageDecodeOptions.Default"/>.</param>
    /// <exception cref="System.IO.InvalidDataException">The bytes are not a decodable image within the limits.</exception>
    public static PixelImage Decode(ReadOnlySpan<byte> encoded, string sourceName = "buffer", int channels = 3, ImageDecodeOptions? options = null)
    {
        options ??= ImageDecodeOptions.Default;
        CheckChannels(channels);
        if (encoded.Length > options.MaxEncodedBytes)
        {
            throw ImageDecoder.Invalid(sourceName, $"{encoded.Length:N0} encoded bytes exceed the limit of {options.MaxEncodedBytes:N0} (ImageDecodeOptions.MaxEncodedBytes).");
        }

        return DecodeBytes(encoded, sourceName, channels, options);
    }

    /// <summary>Converts a SkiaSharp bitmap (any colour type; premultiplied alpha is un-premultiplied, then dropped).</summary>
    /// <param name="bitmap">The bitmap; not changed.</param>
    /// <param name="channels">3 for RGB, 1 for grey.</param>
    /// <exception cref="ArgumentException">The bitmap is empty or its pixels cannot be read as RGBA.</exception>
    public static PixelImage FromBitmap(SKBitmap bitmap, int channels = 3)
    {
        ArgumentNullException.ThrowIfNull(bitmap);
        CheckChannels(channels);
        if (bitmap.Width < 1 || bitmap.Height < 1)
        {
            throw new ArgumentException($"The bitmap is empty ({bitmap.Width}×{bitmap.Height}).", nameof(bitmap));
        }

        var info = new SKImageInfo(bitmap.Width, bitmap.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var rgba = new byte[checked(info.Width * info.Height * 4)];
        var handle = GCHandle.Alloc(rgba, GCHandleType.Pinned);
        try
        {
            using var pixmap = bitmap.PeekPixels();
            if (pixmap is null || !pixmap.ReadPixels(info, handle.AddrOfPinnedObject(), info.RowBytes, 0, 0))
            {
                throw new ArgumentException($"The bitmap's pixels ({bitmap.ColorType}, {bitmap.AlphaType}) cannot be read as RGBA.", nameof(bitmap));
            }
        }
        finally
        {
            handle.Free();
        }

        return FromRgba(rgba, info.Width, info.Height, channels);
    }

    /// <summary>The encoded format and size from the header alone (nothing decoded), or an exception as <see cref="Decode(string, int, ImageDecodeOptions?)"/> would throw.</summary>
    /// <param name="path">The image file.</param>
    /// <returns>Format name (png, jpeg, webp, bmp, gif …), displayed width and height (after the EXIF orientation).</returns>
    /// <exception cref="System.IO.InvalidDataException">The file is not an image SkiaSharp recognises.</exception>
    public static (string Format, int Width, int Height) Probe(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] bytes = File.ReadAllBytes(path);
        using var data = SKData.CreateCopy(bytes);
        using var codec = OpenCodec(data, path);
        var (w, h) = OrientedSize(codec.Info.Width, codec.Info.Height, codec.EncodedOrigin);
        return (codec.EncodedFormat.ToString().ToLowerInvariant(), w, h);
    }

    private static void CheckChannels(int channels)
    {
        if (channels is not (1 or 3))
        {
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "Images are decoded to 3 (RGB) or 1 (grey) channels.");
        }
    }

    private static byte[] ReadAll(Stream stream, string source, ImageDecodeOptions options)
    {
        if (stream.CanSeek && stream.Length - stream.Position > options.MaxEncodedBytes)
        {
            throw ImageDecoder.Invalid(source,
                $"{stream.Length - stream.Position:N0} encoded bytes exceed the limit of {options.MaxEncodedBytes:N0} (ImageDecodeOptions.MaxEncodedBytes).");
        }

        using var buffer = stream.CanSeek ? new MemoryStream((int)Math.Max(0, stream.Length - stream.Position)) : new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = stream.Read(chunk, 0, chunk.Length)) > 0)
        {
            if (buffer.Length + read > options.MaxEncodedBytes)
            {
                throw ImageDecoder.Invalid(source, $"more than {options.MaxEncodedBytes:N0} encoded bytes (ImageDecodeOptions.MaxEncodedBytes).");
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }

    private static SKCodec OpenCodec(SKData data, string source)
    {
        if (data.Size == 0)
        {
            throw ImageDecoder.Invalid(source, "the file is empty; expected a PNG, JPEG, WebP, BMP or GIF image.");
        }

        // The codec owns the stream (Skia frees it, also when it refuses the data); the stream holds a reference to the data.
        var codec = SKCodec.Create(new SKMemoryStream(data), out var result);
        if (codec is null)
        {
            throw ImageDecoder.Invalid(source, result == SKCodecResult.IncompleteInput
                ? "the image header is truncated."
                : $"not an image SkiaSharp can decode ({result}); expected PNG, JPEG, WebP, BMP or GIF.");
        }

        return codec;
    }

    private static PixelImage DecodeBytes(ReadOnlySpan<byte> encoded, string source, int channels, ImageDecodeOptions options)
    {
        using var data = SKData.CreateCopy(encoded);
        using var codec = OpenCodec(data, source);
        var header = codec.Info;
        if (header.Width < 1 || header.Height < 1)
        {
            throw ImageDecoder.Invalid(source, $"the header says {header.Width}×{header.Height} pixels; an image needs at least 1×1.");
        }

        if ((long)header.Width * header.Height > options.MaxPixels)
        {
            throw ImageDecoder.Invalid(source,
                $"the header says {header.Width:N0}×{header.Height:N0} = {(long)header.Width * header.Height:N0} pixels, over the limit of " +
                $"{options.MaxPixels:N0} (ImageDecodeOptions.MaxPixels, PIL's MAX_IMAGE_PIXELS); a possible decompression bomb.");
        }

        // Unpremultiplied RGBA and no colour space: the file's own samples, as PIL reads them (no ICC conversion).
        var info = new SKImageInfo(header.Width, header.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var rgba = new byte[(long)info.Width * info.Height * 4];
        var handle = GCHandle.Alloc(rgba, GCHandleType.Pinned);
        SKCodecResult status;
        try
        {
            status = codec.GetPixels(info, handle.AddrOfPinnedObject(), info.RowBytes, new SKCodecOptions(0));
        }
        finally
        {
            handle.Free();
        }

        if (status != SKCodecResult.Success)
        {
            throw ImageDecoder.Invalid(source, status switch
            {
                SKCodecResult.IncompleteInput => $"the {codec.EncodedFormat} data is truncated ({encoded.Length:N0} bytes) before the last row.",
                SKCodecResult.ErrorInInput => $"the {codec.EncodedFormat} data is corrupt.",
                _ => $"SkiaSharp could not decode the {codec.EncodedFormat} data ({status}).",
            });
        }

        var origin = options.ApplyExifOrientation ? codec.EncodedOrigin : SKEncodedOrigin.TopLeft;
        return FromRgba(Orient(rgba, info.Width, info.Height, origin, out int width, out int height), width, height, channels);
    }

    /// <summary>RGBA to RGB (alpha dropped) or to PIL's <c>L</c>.</summary>
    private static PixelImage FromRgba(byte[] rgba, int width, int height, int channels)
    {
        int n = width * height;
        var pixels = new byte[(long)n * channels];
        if (channels == 3)
        {
            for (int i = 0; i < n; i++)
            {
                pixels[3 * i] = rgba[4 * i];
                pixels[(3 * i) + 1] = rgba[(4 * i) + 1];
                pixels[(3 * i) + 2] = rgba[(4 * i) + 2];
            }
        }
        else
        {
            for (int i = 0; i < n; i++)
            {
                // PIL's L24 (Convert.c): the weights sum to 2^16, so a grey pixel keeps its value exactly.
                pixels[i] = (byte)(((rgba[4 * i] * 19595) + (rgba[(4 * i) + 1] * 38470) + (rgba[(4 * i) + 2] * 7471) + 0x8000) >> 16);
            }
        }

        return new PixelImage(width, height, channels, pixels);
    }

    private static (int Width, int Height) OrientedSize(int width, int height, SKEncodedOrigin origin) =>
        (int)origin >= (int)SKEncodedOrigin.LeftTop ? (height, width) : (width, height);

    /// <summary>Applies an EXIF orientation to RGBA pixels: the displayed image, as PIL's <c>ImageOps.exif_transpose</c>.</summary>
    internal static byte[] Orient(byte[] rgba, int width, int height, SKEncodedOrigin origin, out int outWidth, out int outHeight)
    {
        (outWidth, outHeight) = OrientedSize(width, height, origin);
        if (origin is SKEncodedOrigin.TopLeft or (SKEncodedOrigin)0)
        {
            return rgba;
        }

        var src = MemoryMarshal.Cast<byte, uint>(rgba);
        var result = new byte[rgba.Length];
        var dst = MemoryMarshal.Cast<byte, uint>(result.AsSpan());
        int w = width, h = height, ow = outWidth;
        for (int y = 0; y < outHeight; y++)
        {
            for (int x = 0; x < ow; x++)
            {
                // (sx, sy): the stored pixel shown at (x, y).
                (int sx, int sy) = origin switch
                {
                    SKEncodedOrigin.TopRight => (w - 1 - x, y),                 // 2: mirrored
                    SKEncodedOrigin.BottomRight => (w - 1 - x, h - 1 - y),      // 3: rotated 180°
                    SKEncodedOrigin.BottomLeft => (x, h - 1 - y),               // 4: flipped
                    SKEncodedOrigin.LeftTop => (y, x),                          // 5: transposed
                    SKEncodedOrigin.RightTop => (y, h - 1 - x),                 // 6: shown rotated 90° clockwise
                    SKEncodedOrigin.RightBottom => (w - 1 - y, h - 1 - x),      // 7: transversed
                    SKEncodedOrigin.LeftBottom => (w - 1 - y, x),               // 8: shown rotated 90° anticlockwise
                    _ => (x, y),
                };
                dst[(y * ow) + x] = src[(sy * w) + sx];
            }
        }

        return result;
    }
}
