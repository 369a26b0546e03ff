using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;

namespace ResNetSharp.Introspection;

/// <summary>Measured figures for one part of a network (the stem, a stage, or the head).</summary>
/// <param name="Name">torchvision's name (<c>stem</c>, <c>layer1</c> … <c>layerN</c>, <c>head</c>).</param>
/// <param name="PaperName">The paper's name (<c>conv1</c>, <c>conv2_x</c> …, <c>fc</c>).</param>
/// <param name="Blocks">Residual blocks in the part (0 for stem and head).</param>
/// <param name="OutputShape">Output shape for one image: channels, height, width (just channels for the head).</param>
/// <param name="WeightedLayers">Convolutions / fc on the main path (shortcut projections excluded).</param>
/// <param name="Parameters">Parameters (BN weight and bias included, running statistics not).</param>
/// <param name="MultiplyAdds">Multiply-adds of its convolutions and fc for one image, shortcut projections included.</param>
/// <param name="Projections">Blocks whose shortcut is a 1×1 projection.</param>
public sealed record PartSummary(
    string Name,
    string PaperName,
    int Blocks,
    IReadOnlyList<long> OutputShape,
    int WeightedLayers,
    long Parameters,
    long MultiplyAdds,
    int Projections);

/// <summary>
/// What a built network is, measured from its modules and a real forward pass (never from the stage table):
/// weighted layers, parameters, multiply-adds and per-stage output shapes.
/// </summary>
public sealed record ModelSummary
{
    /// <summary>The model's name.</summary>
    public required string Name { get; init; }

    /// <summary>The stage table, as one line.</summary>
    public required string Architecture { get; init; }

    /// <summary>Input height and width the figures were measured at.</summary>
    public required int InputSize { get; init; }

    /// <summary>Input channels.</summary>
    public required long InputChannels { get; init; }

    /// <summary>Stem, stages and head, in order.</summary>
    public required IReadOnlyList<PartSummary> Parts { get; init; }

    /// <summary>Residual stages only.</summary>
    public IReadOnlyList<PartSummary> Stages => Parts.Where(p => p.Name.StartsWith("layer", StringComparison.Ordinal)).ToArray();

    /// <summary>Weighted layers on the main path: the paper's depth (e.g. 101).</summary>
    public int WeightedLayers => Parts.Sum(p => p.WeightedLayers);

    /// <summary>The depth as the paper writes it: stem + stages + fc, e.g. "1 + 99 + 1 = 101".</summary>
    public string LayerFormula
    {
        get
        {
            int stem = Parts.Where(p => p.Name == "stem").Sum(p => p.WeightedLayers);
            int head = Parts.Where(p => p.Name == "head").Sum(p => p.WeightedLayers);
            int body = Stages.Sum(p => p.WeightedLayers);
            return $"{stem} + {body} + {head} = {stem + body + head}";
        }
    }

    /// <summary>All parameters.</summary>
    public required long Parameters { get; init; }

    /// <summary>Parameters with <c>requires_grad</c>.</summary>
    public required long TrainableParameters { get; init; }

    /// <summary>Multiply-adds of all convolutions and the fc for one image.</summary>
    public long MultiplyAdds => Parts.Sum(p => p.MultiplyAdds);

    /// <summary>A readable table in the spirit of the paper's Table 1, with measured figures.</summary>
    public string ToTable()
    {
        var inv = CultureInfo.InvariantCulture;
        var rows = new List<string[]> { new[] { "stage", "paper", "blocks", "output", "layers", "params", "mult-adds", "projections" } };
        foreach (var p in Parts)
        {
            rows.Add(new[]
            {
                p.Name, p.PaperName, p.Blocks == 0 ? "" : p.Blocks.ToString(inv),
                string.Join("×", p.OutputShape), p.WeightedLayers.ToString(inv), p.Parameters.ToString("N0", inv),
                FormatMacs(p.MultiplyAdds), p.Projections == 0 ? "" : p.Projections.ToString(inv),
            });
        }

        rows.Add(new[] { "total", "", Parts.Sum(p => p.Blocks).ToString(inv), "", WeightedLayers.ToString(inv), Parameters.ToString("N0", inv), FormatMacs(MultiplyAdds), "" });
        int[] widths = Enumerable.Range(0, rows[0].Length).Select(c => rows.Max(r => r[c].Length)).ToArray();
        var sb = new StringBuilder();
        sb.AppendLine(inv, $"{Name}: {Architecture}");
        sb.AppendLine(inv, $"input {InputChannels}×{InputSize}×{InputSize}; depth {LayerFormula}; {Parameters:N0} parameters ({TrainableParameters:N0} trainable); {FormatMacs(MultiplyAdds)} multiply-adds");
        for (int r = 0; r < rows.Count; r++)
        {
            sb.AppendLine(string.Join("  ", rows[r].Select((cell, c) => c == 0 || c == 1 ? cell.PadRight(widths[c]) : cell.PadLeft(widths[c]))).TrimEnd());
            if (r == 0 || r == rows.Count - 2)
            {
                sb.AppendLine(new string('-', widths.Sum() + (2 * (widths.Length - 1))));
            }
        }

        return sb.ToString();
    }

    /// <summary>Formats multiply-adds with a G/M suffix, e.g. "4.0892 G".</summary>
    public static string FormatMacs(long macs) =>
        macs >= 1_000_000_000 ? (macs / 1e9).ToString("0.0000", CultureInfo.InvariantCulture) + " G"
        : macs >= 1_000_000 ? (macs / 1e6).ToString("0.000", CultureInfo.InvariantCulture) + " M"
        : macs.ToString(CultureInfo.InvariantCulture);
}
