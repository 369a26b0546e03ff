using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNetSharp.Detection;

/// <summary>
/// Region-of-interest pooling for two-stage detectors, with torchvision's semantics (<c>torchvision.ops.roi_align</c>
/// and <c>roi_pool</c>), written with TorchSharp tensor ops so that gradients flow to the feature map.
/// Boxes are a K × 5 tensor of (batch index, x1, y1, x2, y2) in input-image coordinates; <c>spatialScale</c> maps them
/// onto the feature map (1/16 for a C4 backbone). The result is K × C × outputHeight × outputWidth.
/// </summary>
/// <remarks>
/// Edge cases, handled explicitly: an empty box list gives a 0 × C × h × w result; sampling points that fall more
/// than one cell outside the map contribute zero (so a box wholly outside gives zeros), points within one cell are
/// clamped to the border; a zero-size box is one point (RoIAlign, <c>aligned = false</c>, or RoIPool) or an empty
/// region giving zeros (RoIAlign, <c>aligned = true</c>). Boxes with x2 &lt; x1 or y2 &lt; y1, non-finite coordinates
/// and batch indices outside the batch are rejected with an <see cref="ArgumentException"/>.
/// <para>
/// RoIAlign is computed as A_y · F · A_xᵀ per box, where A_y (outputHeight × H) and A_x (outputWidth × W) hold the
/// averaged bilinear weights of the sampling rows and columns: bilinear interpolation on a regular sampling grid is
/// separable, so this equals torchvision's per-point sum while being two batched matrix products.
/// </para>
/// </remarks>
internal static class RoiOps
{
    /// <summary>RoIAlign (He et al., Mask R-CNN): average of bilinearly sampled points in each output bin.</summary>
    /// <param name="input">Feature map, N × C × H × W (floating point).</param>
    /// <param name="boxes">K × 5: batch index, x1, y1, x2, y2 in image coordinates.</param>
    /// <param name="outputHeight">Bins per box vertically (e.g. 14 for the C4 head).</param>
    /// <param name="outputWidth">Bins per box horizontally.</param>
    /// <param name="spatialScale">Feature-map cells per image pixel (1/16 for stride 16). Default 1.</param>
    /// <param name="samplingRatio">Sampling points per bin and axis; ≤ 0 means adaptive, ceil(box size / bins). Default -1.</param>
    /// <param name="aligned">Shift boxes by −0.5 cell so pixel centres line up (Detectron2's ROIAlignV2). Default false.</param>
    /// <exception cref="ArgumentException">Shapes, sizes or boxes are invalid; the message says which and what is expected.</exception>
    public static Tensor RoiAlign(Tensor input, Tensor boxes, int outputHeight, int outputWidth, double spatialScale = 1.0,
        int samplingRatio = -1, bool aligned = false)
    {
        var rois = CheckArguments(input, boxes, outputHeight, outputWidth, spatialScale, "RoiAlign");
        long channels = input.shape[1], height = input.shape[2], width = input.shape[3];
        if (rois.Length == 0)
        {
            return torch.zeros(new long[] { 0, channels, outputHeight, outputWidth }, dtype: input.dtype, device: input.device);
        }

        using var scope = torch.NewDisposeScope();
        float scale = (float)spatialScale;
        var outputs = new List<Tensor>();
        var order = new List<long>();
        foreach (var group in rois.Select((r, k) => (r, k)).GroupBy(t => t.r.Batch))
        {
            var members = group.ToList();
            var ay = new float[members.Count * outputHeight * height];
            var ax = new float[members.Count * outputWidth * width];
            for (int m = 0; m < members.Count; m++)
            {
                var r = members[m].r;

                // Float arithmetic in torchvision's order, so sample positions agree bit for bit.
                float offset = aligned ? 0.5f : 0f;
                float x1 = (r.X1 * scale) - offset, y1 = (r.Y1 * scale) - offset;
                float x2 = (r.X2 * scale) - offset, y2 = (r.Y2 * scale) - offset;
                float roiW = x2 - x1, roiH = y2 - y1;
                if (!aligned)
                {
                    // Legacy behaviour: a box is at least one cell.
                    roiW = Math.Max(roiW, 1f);
                    roiH = Math.Max(roiH, 1f);
                }

                float binH = roiH / outputHeight, binW = roiW / outputWidth;
                int gridH = samplingRatio > 0 ? samplingRatio : (int)MathF.Ceiling(roiH / outputHeight);
                int gridW = samplingRatio > 0 ? samplingRatio : (int)MathF.Ceiling(roiW / outputWidth);
                AxisWeights(ay, m * outputHeight * (int)height, y1, binH, gridH, outputHeight, (int)height, Math.Max(gridH * gridW, 1));
                AxisWeights(ax, m * outputWidth * (int)width, x1, binW, gridW, outputWidth, (int)width, 1);
                order.Add(members[m].k);
            }

            var wy = torch.tensor(ay, new long[] { members.Count, 1, outputHeight, height }, dtype: input.dtype, device: input.device);
            var wx = torch.tensor(ax, new long[] { members.Count, 1, outputWidth, width }, dtype: input.dtype, device: input.device);
            var features = input[group.Key].unsqueeze(0); // 1 × C × H × W
            var rows = torch.matmul(wy, features);        // K × C × outH × W
            outputs.Add(torch.matmul(rows, wx.transpose(2, 3)));
        }

        return Reorder(outputs, order, input.device).MoveToOuterDisposeScope();
    }

    /// <summary>RoIPool (Fast R-CNN): maximum over each output bin of the box, quantised to whole cells.</summary>
    /// <param name="input">Feature map, N × C × H × W (floating point).</param>
    /// <param name="boxes">K × 5: batch index, x1, y1, x2, y2 in image coordinates.</param>
    /// <param name="outputHeight">Bins per box vertically.</param>
    /// <param name="outputWidth">Bins per box horizontally.</param>
    /// <param name="spatialScale">Feature-map cells per image pixel. Default 1.</param>
    /// <exception cref="ArgumentException">Shapes, sizes or boxes are invalid.</exception>
    public static Tensor RoiPool(Tensor input, Tensor boxes, int outputHeight, int outputWidth, double spatialScale = 1.0)
    {
        var rois = CheckArguments(input, boxes, outputHeight, outputWidth, spatialScale, "RoiPool");
        long channels = input.shape[1];
        int height = (int)input.shape[2], width = (int)input.shape[3];
        if (rois.Length == 0)
        {
            return torch.zeros(new long[] { 0, channels, outputHeight, outputWidth }, dtype: input.dtype, device: input.device);
        }

        using var scope = torch.NewDisposeScope();
        float scale = (float)spatialScale;
        var results = new List<Tensor>();
        foreach (var r in rois)
        {
            int startW = (int)MathF.Round(r.X1 * scale, MidpointRounding.AwayFromZero);
            int startH = (int)MathF.Round(r.Y1 * scale, MidpointRounding.AwayFromZero);
            int endW = (int)MathF.Round(r.X2 * scale, MidpointRounding.AwayFromZero);
            int endH = (int)MathF.Round(r.Y2 * scale, MidpointRounding.AwayFromZero);
            int roiW = Math.Max(endW - startW + 1, 1), roiH = Math.Max(endH - startH + 1, 1);
            var hBins = Bins(startH, roiH, outputHeight, height);
            var wBins = Bins(startW, roiW, outputWidth, width);
            var features = input[r.Batch]; // C × H × W

            // Max over a rectangle is separable: first over each column bin, then over each row bin. Empty bins are 0.
            var columns = wBins.Select(b => b.End > b.Start
                ? features.narrow(2, b.Start, b.End - b.Start).amax(new long[] { 2 })
                : null).ToList(); // each C × H
            var bins = new List<Tensor>();
            foreach (var hb in hBins)
            {
                foreach (var col in columns)
                {
                    bins.Add(hb.End > hb.Start && col is not null
                        ? col.narrow(1, hb.Start, hb.End - hb.Start).amax(new long[] { 1 })
                        : torch.zeros(channels, dtype: input.dtype, device: input.device));
                }
            }

            results.Add(torch.stack(bins, 1).view(channels, outputHeight, outputWidth));
        }

        return torch.stack(results).MoveToOuterDisposeScope();
    }

    private readonly record struct Roi(long Batch, float X1, float Y1, float X2, float Y2);

    private static (int Start, int End)[] Bins(int start, int size, int bins, int limit)
    {
        float binSize = (float)size / bins;
        var result = new (int, int)[bins];
        for (int p = 0; p < bins; p++)
        {
            int lo = (int)MathF.Floor(p * binSize) + start;
            int hi = (int)MathF.Ceiling((p + 1) * binSize) + start;
            result[p] = (Math.Clamp(lo, 0, limit), Math.Clamp(hi, 0, limit));
        }

        return result;
    }

    /// <summary>
    /// Fills one box's averaged bilinear weights along one axis: row p gets, for every sample i of bin p, the two
    /// interpolation weights at floor(c) and floor(c)+1.
    /// The bin average is over gridH × gridW points: the row weights carry the whole 1 / count (countDivisor) and
    /// the column weights 1, so that A_y · F · A_xᵀ is exactly the mean.
    /// </summary>
    private static void AxisWeights(float[] target, int offset, float start, float bin, int grid, int bins, int size, int countDivisor)
    {
        for (int p = 0; p < bins; p++)
        {
            for (int i = 0; i < grid; i++)
            {
                float c = start + (p * bin) + ((i + 0.5f) * bin / grid);
                if (c < -1f || c > size)
                {
                    continue; // outside the map by more than one cell: contributes zero
                }

                if (c <= 0)
                {
                    c = 0;
                }

                int low = (int)c, high;
                if (low >= size - 1)
                {
                    high = low = size - 1;
                    c = low;
                }
                else
                {
                    high = low + 1;
                }

                float l = c - low, h = 1f - l;
                int row = offset + (p * size);
                target[row + low] += h / countDivisor;
                target[row + high] += l / countDivisor;
            }
        }
    }

    private static Tensor Reorder(List<Tensor> outputs, List<long> order, Device device)
    {
        var all = outputs.Count == 1 ? outputs[0] : torch.cat(outputs, 0);
        if (order.Select((k, i) => k == i).All(b => b))
        {
            return all;
        }

        var inverse = new long[order.Count];
        for (int i = 0; i < order.Count; i++)
        {
            inverse[order[i]] = i;
        }

        using var index = torch.tensor(inverse, device: device);
        return all.index_select(0, index);
    }

    private static Roi[] CheckArguments(Tensor input, Tensor boxes, int outputHeight, int outputWidth, double spatialScale, string op)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(boxes);
        if (input.dim() != 4 || !input.is_floating_point())
        {
            throw new ArgumentException($"{op}: input must be a floating-point N×C×H×W feature map, got {input.dtype} [{string.Join(", ", input.shape)}].", nameof(input));
        }

        if (input.shape[2] < 1 || input.shape[3] < 1)
        {
            throw new ArgumentException($"{op}: the feature map is empty ({input.shape[2]}×{input.shape[3]}).", nameof(input));
        }

        if (boxes.dim() != 2 || boxes.shape[1] != 5)
        {
            throw new ArgumentException($"{op}: boxes must be K×5 (batch index, x1, y1, x2, y2), got [{string.Join(", ", boxes.shape)}].", nameof(boxes));
        }

        if (outputHeight < 1 || outputWidth < 1)
        {
            throw new ArgumentException($"{op}: output size must be at least 1×1, got {outputHeight}×{outputWidth}.");
        }

        if (!(spatialScale > 0) || double.IsInfinity(spatialScale))
        {
            throw new ArgumentException($"{op}: spatialScale must be positive and finite, got {spatialScale}.", nameof(spatialScale));
        }

        if (boxes.shape[0] == 0)
        {
            return Array.Empty<Roi>();
        }

        using var cpu = boxes.detach().to(ScalarType.Float32, torch.CPU).contiguous();
        var values = cpu.data<float>().ToArray();
        var rois = new Roi[boxes.shape[0]];
        for (int k = 0; k < rois.Length; k++)
        {
            float b = values[5 * k], x1 = values[(5 * k) + 1], y1 = values[(5 * k) + 2], x2 = values[(5 * k) + 3], y2 = values[(5 * k) + 4];
            if (!float.IsFinite(b) || !float.IsFinite(x1) || !float.IsFinite(y1) || !float.IsFinite(x2) || !float.IsFinite(y2))
            {
                throw new ArgumentException($"{op}: box {k} has a non-finite value.", nameof(boxes));
            }

            if (b != MathF.Floor(b) || b < 0 || b >= input.shape[0])
            {
                throw new ArgumentException($"{op}: box {k} has batch index {b}; expected an integer in 0 … {input.shape[0] - 1}.", nameof(boxes));
            }

            if (x2 < x1 || y2 < y1)
            {
                throw new ArgumentException($"{op}: box {k} ({x1}, {y1}, {x2}, {y2}) has x2 < x1 or y2 < y1; expected x1 ≤ x2 and y1 ≤ y2.", nameof(boxes));
            }

            rois[k] = new Roi((long)b, x1, y1, x2, y2);
        }

        return rois;
    }
}
