using System;
using System.Collections.Generic;
using ResNetSharp.Training;

namespace ResNetSharp.Cli.Experiments;

/// <summary>
/// The pointing game's images: each item of a grey dataset (Fashion-MNIST's 28 × 28 clothes) pasted on an empty
/// <see cref="Canvas"/> × <see cref="Canvas"/> canvas at a seeded random position, with its label. An
/// <see cref="ImageDataset"/>, so the <see cref="Trainer"/> batches it; <see cref="Box"/> says where each item went.
/// </summary>
/// <remarks>
/// The positions are drawn once, in index order, from <c>new Random(seed)</c>: the same seed gives the same canvases in
/// every run and every epoch. Nothing is stored but the positions; a canvas is pasted when the loader reads it.
/// </remarks>
internal sealed class PastedCanvasDataset : ImageDataset
{
    private readonly ImageDataset items;
    private readonly (int X, int Y)[] positions;
    private readonly string name;

    /// <summary>Places every item of <paramref name="items"/> on a canvas of side <paramref name="canvas"/>.</summary>
    /// <param name="items">Single-channel items, each smaller than the canvas.</param>
    /// <param name="canvas">Side of the square canvas in pixels.</param>
    /// <param name="seed">Seed of the positions.</param>
    /// <exception cref="ArgumentException">The items are not single-channel or do not fit on the canvas.</exception>
    public PastedCanvasDataset(ImageDataset items, int canvas, int seed)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (items.Channels != 1 || items.Width > canvas || items.Height > canvas)
        {
            throw new ArgumentException(
                $"{items.Name}: the pointing game pastes single-channel items on a {canvas}×{canvas} canvas; got {items.Channels}-channel {items.Width}×{items.Height} items.");
        }

        this.items = items;
        Canvas = canvas;
        var random = new Random(seed);
        positions = new (int X, int Y)[items.Count];
        for (int i = 0; i < positions.Length; i++)
        {
            positions[i] = (random.Next(canvas - items.Width + 1), random.Next(canvas - items.Height + 1));
        }

        name = $"{items.Name} pasted on {canvas}x{canvas}";
    }

    /// <summary>Side of the canvas.</summary>
    public int Canvas { get; }

    /// <inheritdoc/>
    public override int Count => items.Count;

    /// <inheritdoc/>
    public override int Channels => 1;

    /// <inheritdoc/>
    public override int Height => Canvas;

    /// <inheritdoc/>
    public override int Width => Canvas;

    /// <inheritdoc/>
    public override IReadOnlyList<string> ClassNames => items.ClassNames;

    /// <inheritdoc/>
    public override string Name => name;

    /// <summary>Where item <paramref name="index"/> lies on its canvas: left, top, width, height in pixels.</summary>
    public (int X, int Y, int Width, int Height) Box(int index) => (positions[index].X, positions[index].Y, items.Width, items.Height);

    /// <inheritdoc/>
    public override int GetLabel(int index) => items.GetLabel(index);

    /// <inheritdoc/>
    public override void ReadImage(int index, Span<float> destination)
    {
        int w = items.Width, h = items.Height;
        Span<float> item = w * h <= 4096 ? stackalloc float[w * h] : new float[w * h];
        items.ReadImage(index, item);
        destination[..SampleSize].Clear();
        var (x0, y0) = positions[index];
        for (int y = 0; y < h; y++)
        {
            item.Slice(y * w, w).CopyTo(destination.Slice(((y0 + y) * Canvas) + x0, w));
        }
    }
}
