using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using ResNetSharp.Training;

namespace ResNetSharp.Cli.Commands;

// What the experiments measure, as typed records. results.json is these records serialised with Cli.Json (camelCase,
// nulls left out), so the field names are the ones the committed docs/ files carry; results.md is ExperimentMarkdown's
// rendering of the same records.

/// <summary>The machine a result was measured on.</summary>
/// <param name="TunedAllocator">Whether AllocatorTuning.Apply took effect; null in files written before it was recorded.</param>
internal sealed record MachineInfo(string Cpu, int LogicalCores, int IntraOpThreads, bool? TunedAllocator = null)
{
    /// <summary>This machine, now (CPU name, cores, intra-op threads, allocator).</summary>
    public static MachineInfo Current() => new(CpuName(), Environment.ProcessorCount, TorchThreads.IntraOp, AllocatorTuning.Applied);

    private static string CpuName()
    {
        try
        {
            return File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU";
        }
        catch (IOException)
        {
            return "unknown CPU";
        }
    }
}

/// <summary><c>resnet experiment degradation</c>: the paper's Fig. 6 claim, one row per model.</summary>
/// <param name="Prefetch">Batches prepared ahead; null in files written before it was recorded.</param>
internal sealed record DegradationResult(
    string Experiment, string Paper, string Command, string Dataset, int TrainImages, int TestImages, int Epochs, int Batch, string Recipe, int? Prefetch,
    int Seed, MachineInfo Machine, bool Complete, DegradationClaim Claim, IReadOnlyList<DegradationModel> Models);

/// <summary>The two halves of the claim; null when a model of the pair was not run.</summary>
internal sealed record DegradationClaim(bool? Plain56TrainErrorAbovePlain20, bool? Resnet56TrainErrorBelowResnet20);

/// <summary>One model of the degradation experiment.</summary>
internal sealed record DegradationModel(
    string Name, int Layers, long Parameters, int EpochsRun, double? FinalTrainError, double? FinalTestError, double? BestTestTop1, double TrainMinutes,
    IReadOnlyList<EpochMetrics> History)
{
    /// <summary>The row for a model's training history.</summary>
    public static DegradationModel From(string name, int layers, long parameters, IReadOnlyList<EpochMetrics> history) => new(
        name, layers, parameters, history.Count, history.Count > 0 ? history[^1].TrainError : null,
        history.Count > 0 && history[^1].TestTop1 is { } top1 ? 1 - top1 : null, ExperimentResults.BestTestTop1(history), history.Sum(h => h.Seconds) / 60, history);
}

/// <summary><c>resnet experiment transfer</c>: the probe, fine-tune and from-scratch runs of one backbone.</summary>
internal sealed record TransferResult(
    string Experiment, TransferBackbone Backbone, string Command, string Dataset, int TrainImages, int TestImages, int InputSize, int Epochs, int Batch,
    string Recipe, int? Prefetch, int Seed, MachineInfo Machine, bool Complete, IReadOnlyList<TransferRunResult> Runs);

/// <summary>The pretrained backbone and how images are prepared for it.</summary>
internal sealed record TransferBackbone(string Name, string Source, string Table, string Preprocessing);

/// <summary>One run (probe, finetune or scratch) of the transfer experiment.</summary>
internal sealed record TransferRunResult(
    string Mode, string Description, long TrainableParameters, long Parameters, int EpochsRun, double? FinalTestTop1, double? BestTestTop1,
    double? FinalTrainError, double WallMinutes, double CpuMinutes, IReadOnlyList<EpochMetrics> History);

/// <summary>
/// <c>resnet experiment pointing</c>: CAM's peak against the pasted item's box. Epochs, batch, training-set size, machine
/// and history are null in files written before the experiment trained through the Trainer (by time budget).
/// </summary>
internal sealed record PointingResult(
    string Architecture, int Canvas, int ItemSize, int FeatureMapSize, long Parameters, int? Epochs, int? Batch, int? TrainSetImages, int TrainSteps,
    long TrainImages, double TrainSeconds, double TrainImagesPerSecond, int TestImages, double Accuracy, double PointingTrueClass, double PointingPredictedClass,
    double PointingTightBox, double CentreBaseline, double RandomBaseline, string Command, MachineInfo? Machine = null, IReadOnlyList<EpochMetrics>? History = null);

/// <summary>Writing and reading the result records.</summary>
internal static class ExperimentResults
{
    /// <summary>Best test top-1 over the epochs that were evaluated, or null.</summary>
    public static double? BestTestTop1(IReadOnlyList<EpochMetrics> history) =>
        history.Where(h => h.TestTop1.HasValue).Select(h => h.TestTop1).DefaultIfEmpty(null).Max();

    /// <summary>The command line this process was started with, as <c>resnet …</c>.</summary>
    public static string CommandLine() => "resnet " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1));

    /// <summary>Serialises a result (indented, camelCase, nulls left out) with a final newline.</summary>
    public static string ToJson<T>(T result) => JsonSerializer.Serialize(result, Cli.Json) + "\n";

    /// <summary>Reads a result file back into its record.</summary>
    /// <exception cref="InvalidDataException">The file is not a result of that kind.</exception>
    public static T Read<T>(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<T>(File.ReadAllText(path), Cli.Json) ?? throw new InvalidDataException($"{path}: empty result file.");
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{path}: not a {typeof(T).Name} file: {ex.Message}", ex);
        }
    }

    /// <summary>Writes <c>results.json</c> and <c>results.md</c> into <paramref name="dir"/> (created if missing); returns the Markdown.</summary>
    public static string WriteResults(string dir, DegradationResult result) => Write(dir, "results", ToJson(result), ExperimentMarkdown.Render(result));

    /// <inheritdoc cref="WriteResults(string, DegradationResult)"/>
    public static string WriteResults(string dir, TransferResult result) => Write(dir, "results", ToJson(result), ExperimentMarkdown.Render(result));

    /// <summary>Writes <c>pointing.json</c> and <c>pointing.md</c> into <paramref name="dir"/> (created if missing); returns the Markdown.</summary>
    public static string WriteResults(string dir, PointingResult result) => Write(dir, "pointing", ToJson(result), ExperimentMarkdown.Render(result));

    private static string Write(string dir, string stem, string json, string markdown)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, stem + ".json"), json);
        File.WriteAllText(Path.Combine(dir, stem + ".md"), markdown);
        return markdown;
    }
}

/// <summary>The one Markdown rendering of the experiments' result records (results.md, pointing.md and the console summary).</summary>
internal static class ExperimentMarkdown
{
    /// <summary>The degradation experiment: recipe, one row per model, the claim's verdict, command and machine.</summary>
    public static string Render(DegradationResult r)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Degradation experiment (paper Fig. 6) on {r.Dataset}: {r.TrainImages:N0} training / {r.TestImages:N0} test images, " +
                                                    $"{r.Epochs} epochs, batch {r.Batch}, {r.Recipe}.");
        sb.AppendLine();
        sb.AppendLine("| model | layers | parameters | final training error % | final test error % | best test top-1 % | minutes |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var m in r.Models)
        {
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {m.Name} | {m.Layers} | {m.Parameters:N0} | {Percent(m.FinalTrainError)} | {Percent(m.FinalTestError)} | {Percent(m.BestTestTop1)} | {m.TrainMinutes:F1} |");
        }

        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"plain-56 ends with a higher training error than plain-20: {Verdict(r.Claim.Plain56TrainErrorAbovePlain20)}; " +
                      $"ResNet-56 with a lower one than ResNet-20: {Verdict(r.Claim.Resnet56TrainErrorBelowResnet20)}.");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Command: `{r.Command}`; machine: {r.Machine.Cpu}, {r.Machine.IntraOpThreads} intra-op threads.");
        return sb.ToString();
    }

    /// <summary>The transfer experiment: recipe, one row per run, preprocessing, command and machine.</summary>
    public static string Render(TransferResult r)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"Transfer learning on {r.Dataset} with {r.Backbone.Source}: {r.TrainImages:N0} training / {r.TestImages:N0} test images, " +
            $"{r.InputSize}×{r.InputSize} input, {r.Epochs} epoch(s), batch {r.Batch}, {r.Recipe}.");
        sb.AppendLine();
        sb.AppendLine("| run | what is trained | trainable parameters | test top-1 % (final) | best epoch top-1 % | wall minutes | CPU minutes |");
        sb.AppendLine("|---|---|---:|---:|---:|---:|---:|");
        foreach (var run in r.Runs)
        {
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {run.Mode} | {run.Description} | {run.TrainableParameters:N0} | {Percent(run.FinalTestTop1)} | {Percent(run.BestTestTop1)} | {run.WallMinutes:F2} | {run.CpuMinutes:F2} |");
        }

        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Preprocessing: {r.Backbone.Preprocessing}.");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Command: `{r.Command}`; machine: {r.Machine.Cpu}, {r.Machine.LogicalCores} logical cores, {r.Machine.IntraOpThreads} intra-op threads.");
        if (!r.Complete)
        {
            sb.AppendLine();
            sb.AppendLine("Interrupted: the table holds the runs that finished or were stopped.");
        }

        return sb.ToString();
    }

    /// <summary>The pointing game: the model and its training, then the hit rates against the two baselines.</summary>
    public static string Render(PointingResult r)
    {
        var sb = new StringBuilder();
        string training = r.Epochs is { } epochs
            ? $"{epochs} epoch(s) over {r.TrainSetImages:N0} pasted canvases, batch {r.Batch}: {r.TrainSteps:N0} steps, {r.TrainImages:N0} images in {r.TrainSeconds:F0} s"
            : $"{r.TrainSteps:N0} steps, {r.TrainImages:N0} images in {r.TrainSeconds:F0} s";
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"Pointing game: {r.ItemSize} × {r.ItemSize} Fashion-MNIST items on a {r.Canvas} × {r.Canvas} canvas; model `{r.Architecture}` ({r.Parameters:N0} parameters, " +
            $"a {r.FeatureMapSize} × {r.FeatureMapSize} CAM); {training}. Scored on {r.TestImages:N0} test canvases.");
        sb.AppendLine();
        sb.AppendLine("| measure | result |");
        sb.AppendLine("|---|---|");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| CAM of the true class: peak inside the item's {r.ItemSize} × {r.ItemSize} box | **{Percent1(r.PointingTrueClass)} %** |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| CAM of the predicted class: peak inside the box | {Percent1(r.PointingPredictedClass)} % |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| CAM of the true class: peak inside the item's own ink (bounding box of its non-zero pixels) | {Percent1(r.PointingTightBox)} % |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| baseline: always the canvas centre | {Percent1(r.CentreBaseline)} % |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| baseline: a uniformly random point | {Percent1(r.RandomBaseline)} % |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"| classification accuracy (not the point here) | {Percent1(r.Accuracy)} % |");
        sb.AppendLine();
        sb.Append(CultureInfo.InvariantCulture, $"Command: `{r.Command}`");
        sb.AppendLine(r.Machine is { } m ? string.Create(CultureInfo.InvariantCulture, $"; machine: {m.Cpu}, {m.IntraOpThreads} intra-op thread(s).") : ".");
        return sb.ToString();
    }

    /// <summary>A fraction as a percentage with two decimals, or "–" when absent.</summary>
    private static string Percent(double? fraction) => fraction is { } f ? (100 * f).ToString("F2", CultureInfo.InvariantCulture) : "–";

    private static string Percent1(double fraction) => (100 * fraction).ToString("F1", CultureInfo.InvariantCulture);

    private static string Verdict(bool? claim) => claim switch { true => "yes", false => "no", null => "not run" };
}
