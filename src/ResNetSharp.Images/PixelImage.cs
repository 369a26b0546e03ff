using System;

namespace ResNetSharp.Images;

/// <summary>
/// A decoded 8-bit image in managed memory: <see cref="Height"/> rows of <see cref="Width"/> pixels, each
/// <see cref="Channels"/> bytes (3: R, G, B; 1: grey), rows packed without padding — the layout of a PIL image in
/// mode <c>RGB</c> or <c>L</c>. Immutable once built.
/// </summary>
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
