using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNetSharp.Images;

/// <summary>Where the model's input lies in the original image: the crop after the short-side resize.</summary>
/// <param name="ResizedWidth">Width after the resize.</param>
/// <param name="ResizedHeight">Height after the resize.</param>
/// <param name="CropLeft">Left edge of the crop in the resized image (negative when the crop is padded).</param>
/// <param name="CropTop">Top edge of the crop in the resized image (negative when the crop is padded).</param>
/// <param name="CropSize">Side of the square crop (the model's input size).</param>
internal readonly record struct TransformGeometry(int ResizedWidth, int ResizedHeight, int CropLeft, int CropTop, int CropSize);

/// <summary>
/// torchvision's eval transform, exactly: <c>Resize(ResizeSize, interpolation)</c> of the short side (Pillow's
/// antialiased uint8 resampling, re-implemented bit for bit), <c>CenterCrop(InputSize)</c> (offsets rounded half
/// to even, as Python's <c>round</c>; zero padding when the image is smaller), <c>ToTensor()</c> (÷ 255 in float32)
/// and <c>Normalize(mean, std)</c> (float32). Driven by a <see cref="ModelMetadata"/>, including the conventions of
/// older models it records: pixels in [0, <see cref="ModelMetadata.PixelMax"/>] (255: the raw byte values),
/// <see cref="ModelMetadata.ChannelOrder"/> BGR, and a per-pixel <see cref="ModelMetadata.MeanImage"/> subtracted
/// after the per-channel mean. Immutable and thread-safe.
/// </summary>
/// <remarks>
/// Checked against torchvision 0.14 + Pillow 9.4 on real photographs: the resized uint8 images are identical and the
/// normalised tensors equal to the last float32 bit (see the golden tests).
/// </remarks>
public sealed class ImageTransform
{
    private readonly float[] mean;
    private readonly float[] std;
    private readonly float[]? meanImage;
    private readonly float pixelScale; // pixel byte → model units, when PixelMax is not 1
    private readonly bool bgr;

    /// <summary>The transform a model's metadata describes.</summary>
    /// <param name="metadata">Input size, crop ratio, interpolation, pixel range, channel order, mean (and mean image) and std, channels.</param>
    /// <exception cref="ArgumentException">The metadata is invalid (see <see cref="ModelMetadata.Validate"/>).</exception>
    /// <exception cref="InvalidOperationException">The metadata does not know the model's preprocessing
    /// (<see cref="ModelMetadata.PreprocessingKnown"/> false, e.g. an ONNX graph imported without metadata): nothing is guessed.</exception>
    public ImageTransform(ModelMetadata metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        metadata.Validate();
        metadata.EnsurePreprocessingKnown("ImageTransform");
        if (metadata.InChannels is not (1 or 3))
        {
            throw new ArgumentException($"Images give 1 (grey) or 3 (RGB) channels; the model takes {metadata.InChannels}.", nameof(metadata));
        }

        Channels = metadata.InChannels;
        InputSize = metadata.InputSize;
        ResizeSize = metadata.ResizeSize;
        Interpolation = metadata.Interpolation;
        mean = metadata.Mean.Select(m => (float)m).ToArray();
        std = metadata.Std.Select(s => (float)s).ToArray();
        meanImage = metadata.MeanImage?.ToArray();
        PixelMax = metadata.PixelMax;
        pixelScale = (float)(metadata.PixelMax / 255.0);
        ChannelOrder = metadata.ChannelOrder;
        bgr = ChannelOrder == ChannelOrder.Bgr;
    }

    /// <summary>The value of a full-intensity pixel in the output's units before normalisation (1 for torchvision, 255 for raw bytes).</summary>
    public double PixelMax { get; }

    /// <summary>The order of the output's colour channels.</summary>
    public ChannelOrder ChannelOrder { get; }

    /// <summary>The per-pixel mean subtracted after <see cref="Mean"/> (C × S × S, channel-major, in the output's channel order), or null.</summary>
    public IReadOnlyList<float>? MeanImage => meanImage;

    /// <summary>Channels produced: 3 (RGB) or 1 (grey, PIL's <c>L</c>).</summary>
    public int Channels { get; }

    /// <summary>Side of the square output.</summary>
    public int InputSize { get; }

    /// <summary>The short side after resizing (before the crop).</summary>
    public int ResizeSize { get; }

    /// <summary>How the short side is resized.</summary>
    public ResizeInterpolation Interpolation { get; }

    /// <summary>Per-channel mean (float32, as torchvision's <c>Normalize</c> holds it).</summary>
    public IReadOnlyList<float> Mean => mean;

    /// <summary>Per-channel standard deviation (float32).</summary>
    public IReadOnlyList<float> Std => std;

    /// <summary>Values per image: <see cref="Channels"/> × <see cref="InputSize"/>².</summary>
    public int Length => Channels * InputSize * InputSize;

    /// <summary>The resize and crop an image of this size goes through (torchvision's arithmetic).</summary>
    /// <param name="width">Image width.</param>
    /// <param name="height">Image height.</param>
    internal TransformGeometry Geometry(int width, int height)
    {
        if (width < 1 || height < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(width), $"An image must be at least 1×1, got {width}×{height}.");
        }

        // torchvision's _compute_resized_output_size: the short side becomes ResizeSize, the long one int(size * long / short).
        int shortSide = Math.Min(width, height), longSide = Math.Max(width, height);
        int newLong = (int)((double)ResizeSize * longSide / shortSide);
        (int w, int h) = width <= height ? (ResizeSize, newLong) : (newLong, ResizeSize);
        int left = (int)Math.Round((w - InputSize) / 2.0, MidpointRounding.ToEven);
        int top = (int)Math.Round((h - InputSize) / 2.0, MidpointRounding.ToEven);
        if (w < InputSize || h < InputSize)
        {
            // torchvision pads to the crop first (left/top get the floor half), then crops at 0 when a side now fits.
            left = w < InputSize ? -((InputSize - w) / 2) : left;
            top = h < InputSize ? -((InputSize - h) / 2) : top;
        }

        return new TransformGeometry(w, h, left, top, InputSize);
    }

    /// <summary>Resize of the short side to <see cref="ResizeSize"/> (torchvision's <c>Resize</c> on a PIL image).</summary>
    /// <param name="image">The decoded image; must have <see cref="Channels"/> channels.</param>
    public PixelImage Resize(PixelImage image)
    {
        CheckImage(image);
        var g = Geometry(image.Width, image.Height);
        return PilResample.Resize(image, g.ResizedWidth, g.ResizedHeight, Interpolation);
    }

    /// <summary>The whole transform into <paramref name="destination"/> (C × S × S floats, channel-major).</summary>
    /// <param name="image">The decoded image; must have <see cref="Channels"/> channels.</param>
    /// <param name="destination">At least <see cref="Length"/> floats.</param>
    /// <exception cref="ArgumentException">The channel count differs or the destination is too short.</exception>
    public void Apply(PixelImage image, Span<float> destination)
    {
        CheckImage(image);
        if (destination.Length < Length)
        {
            throw new ArgumentException($"The destination holds {destination.Length} floats; the transform writes {Length}.", nameof(destination));
        }

        var g = Geometry(image.Width, image.Height);
        var resized = PilResample.Resize(image, g.ResizedWidth, g.ResizedHeight, Interpolation);
        byte[] px = resized.Buffer;
        int c = Channels, s = InputSize, w = resized.Width, h = resized.Height;
        bool unit = PixelMax == 1;
        for (int ch = 0; ch < c; ch++)
        {
            float m = mean[ch], sd = std[ch];
            int source = bgr ? c - 1 - ch : ch; // decoded images are RGB
            var plane = destination.Slice(ch * s * s, s * s);
            var meanPlane = meanImage is null ? ReadOnlySpan<float>.Empty : meanImage.AsSpan(ch * s * s, s * s);
            for (int y = 0; y < s; y++)
            {
                int sy = y + g.CropTop;
                for (int x = 0; x < s; x++)
                {
                    int sx = x + g.CropLeft;
                    // torchvision: ToTensor (÷ 255 in float32), then (v − mean) / std; the raw byte when PixelMax is 255.
                    float v = sy < 0 || sy >= h || sx < 0 || sx >= w
                        ? 0f
                        : unit ? px[(((sy * w) + sx) * c) + source] / 255f : px[(((sy * w) + sx) * c) + source] * pixelScale;
                    v -= m;
                    if (meanImage is not null)
                    {
                        v -= meanPlane[(y * s) + x];
                    }

                    plane[(y * s) + x] = v / sd;
                }
            }
        }
    }

    /// <summary>The whole transform as a new float32 array (C × S × S).</summary>
    /// <param name="image">The decoded image; must have <see cref="Channels"/> channels.</param>
    public float[] Apply(PixelImage image)
    {
        var result = new float[Length];
        Apply(image, result);
        return result;
    }

    /// <summary>The whole transform as a 1 × C × S × S float32 tensor on the CPU (the caller disposes it).</summary>
    /// <param name="image">The decoded image; must have <see cref="Channels"/> channels.</param>
    public Tensor ToTensor(PixelImage image) => torch.tensor(Apply(image), new long[] { 1, Channels, InputSize, InputSize });

    private void CheckImage(PixelImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Channels != Channels)
        {
            throw new ArgumentException(
                $"The transform expects {Channels}-channel images (decode with channels: {Channels}); got a {image}.", nameof(image));
        }
    }
}
