using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using ResNetSharp.Training;
using ScottPlot;
using SkiaSharp;

namespace ResNetSharp.Cli;

/// <summary>PNG figures drawn with ScottPlot 5, written atomically.</summary>
internal static class Plots
{
    private static readonly Color[] Palette =
    {
        Color.FromHex("#1f77b4"), Color.FromHex("#d62728"), Color.FromHex("#2ca02c"), Color.FromHex("#ff7f0e"),
        Color.FromHex("#9467bd"), Color.FromHex("#8c564b"),
    };

    /// <summary>
    /// Two panels: loss (train vs test) and top-1 error in % (train vs test), per epoch. Train is blue and dashed, test
    /// orange and solid: the colour alone tells them apart (ScottPlot's legend swatch does not show the dash).
    /// </summary>
    public static void Curves(IReadOnlyList<EpochMetrics> history, string title, string path)
    {
        var epochs = history.Select(h => (double)h.Epoch).ToArray();
        var loss = new Plot();
        Line(loss, epochs, history.Select(h => h.TrainLoss).ToArray(), "train", Palette[0], dashed: true);
        if (history.All(h => h.TestLoss.HasValue))
        {
            Line(loss, epochs, history.Select(h => h.TestLoss!.Value).ToArray(), "test", Palette[3], dashed: false);
        }

        Decorate(loss, $"{title}: loss", "epoch", "cross-entropy");
        var error = new Plot();
        Line(error, epochs, history.Select(h => 100 * h.TrainError).ToArray(), "train", Palette[0], dashed: true);
        if (history.All(h => h.TestTop1.HasValue))
        {
            Line(error, epochs, history.Select(h => 100 * (1 - h.TestTop1!.Value)).ToArray(), "test", Palette[3], dashed: false);
        }

        Decorate(error, $"{title}: top-1 error", "epoch", "error (%)");
        SideBySide(path, 640, 420, loss, error);
    }

    /// <summary>The paper's Fig. 6 on one axis: training error (solid, bold) and test error (dashed) of every model.</summary>
    public static void Degradation(IReadOnlyList<(string Name, IReadOnlyList<EpochMetrics> History)> runs, int iterationsPerEpoch, string title, string path)
    {
        var plain = new Plot();
        var residual = new Plot();
        int i = 0;
        foreach (var (name, history) in runs)
        {
            var target = name.StartsWith("plain", StringComparison.Ordinal) ? plain : residual;
            var color = Palette[i++ % Palette.Length];
            // The paper's Fig. 6: error against iterations, thin (dashed) = training error, bold = test error.
            var iterations = history.Select(h => (double)h.Epoch * iterationsPerEpoch).ToArray();
            Line(target, iterations, history.Select(h => 100 * h.TrainError).ToArray(), $"{name} train", color, dashed: true, width: 1f);
            if (history.All(h => h.TestTop1.HasValue))
            {
                Line(target, iterations, history.Select(h => 100 * (1 - h.TestTop1!.Value)).ToArray(), $"{name} test", color, dashed: false, width: 2.5f);
            }
        }

        Decorate(plain, $"plain networks ({title})", "iterations", "error (%)");
        Decorate(residual, $"ResNets ({title})", "iterations", "error (%)");
        // One error scale for both panels, as in the paper's figure.
        double top = runs.SelectMany(r => r.History).SelectMany(h => new[] { h.TrainError, 1 - (h.TestTop1 ?? 1) }).DefaultIfEmpty(1).Max() * 100 * 1.05;
        foreach (var p in new[] { plain, residual })
        {
            p.Axes.SetLimitsY(0, top);
        }

        SideBySide(path, 640, 440, plain, residual);
    }

    /// <summary>Confusion matrix as a heat map (rows: true class, columns: predicted), counts written in the cells.</summary>
    public static void Confusion(EvaluationResult result, string title, string path)
    {
        int n = result.ClassNames.Count;
        var plot = new Plot();
        var values = new double[n, n];
        for (int t = 0; t < n; t++)
        {
            int total = Math.Max(1, result.Confusion[t].Sum());
            for (int p = 0; p < n; p++)
            {
                values[t, p] = (double)result.Confusion[t][p] / total;
            }
        }

        // One rectangle per cell (row t drawn at y = n − 1 − t, so the first class is on top), coloured by the row's fraction.
        var colormap = new ScottPlot.Colormaps.Blues();
        for (int t = 0; t < n; t++)
        {
            for (int p = 0; p < n; p++)
            {
                double y = n - 1 - t;
                var cell = plot.Add.Rectangle(p - 0.5, p + 0.5, y - 0.5, y + 0.5);
                cell.FillColor = colormap.GetColor(1 - values[t, p]); // ScottPlot's Blues runs dark to light: many = dark
                cell.LineWidth = 0;
                var text = plot.Add.Text(result.Confusion[t][p].ToString(System.Globalization.CultureInfo.InvariantCulture), p, y);
                text.LabelFontSize = n > 12 ? 8 : 11;
                text.LabelAlignment = Alignment.MiddleCenter;
                text.LabelFontColor = values[t, p] > 0.5 ? Colors.White : Colors.Black;
            }
        }

        var positions = Enumerable.Range(0, n).Select(i => (double)i).ToArray();
        plot.Axes.Bottom.SetTicks(positions, result.ClassNames.ToArray());
        plot.Axes.Bottom.TickLabelStyle.Rotation = 45;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.UpperLeft;
        plot.Axes.Bottom.MinimumSize = 110;
        plot.Axes.Left.SetTicks(positions, result.ClassNames.Reverse().ToArray());
        plot.Axes.SetLimits(-0.5, n - 0.5, -0.5, n - 0.5);
        plot.Title($"{title}: top-1 {100 * result.Top1:F2} %");
        plot.XLabel("predicted");
        plot.YLabel("true");
        Save(plot.GetImageBytes(720, 680, ImageFormat.Png), path);
    }

    private static void Line(Plot plot, double[] x, double[] y, string label, Color color, bool dashed, float width = 2f)
    {
        var line = plot.Add.Scatter(x, y);
        line.LegendText = label;
        line.Color = color;
        line.LineWidth = width;
        line.MarkerSize = x.Length <= 30 ? 5 : 0;
        if (dashed)
        {
            line.LinePattern = LinePattern.Dashed;
        }
    }

    private static void Decorate(Plot plot, string title, string x, string y)
    {
        plot.Title(title);
        plot.XLabel(x);
        plot.YLabel(y);
        plot.ShowLegend(Alignment.UpperRight);
    }

    /// <summary>Renders plots next to each other into one PNG.</summary>
    private static void SideBySide(string path, int width, int height, params Plot[] plots)
    {
        using var canvasBitmap = new SKBitmap(width * plots.Length, height);
        using (var canvas = new SKCanvas(canvasBitmap))
        {
            canvas.Clear(SKColors.White);
            for (int i = 0; i < plots.Length; i++)
            {
                using var panel = SKBitmap.Decode(plots[i].GetImageBytes(width, height, ImageFormat.Png));
                canvas.DrawBitmap(panel, i * width, 0);
            }
        }

        using var image = SKImage.FromBitmap(canvasBitmap);
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        Save(png.ToArray(), path);
    }

    /// <summary>Temporary file, fsync, rename: a reader never sees half a PNG.</summary>
    public static void Save(byte[] bytes, string path)
    {
        string full = Path.GetFullPath(path);
        string temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            {
                file.Write(bytes);
                file.Flush(flushToDisk: true);
            }

            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }
}
