using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using FluentAssertions;
using ResNetSharp.Cli.Commands;
using ResNetSharp.Cli.Experiments;
using ResNetSharp.Tests.Training;
using Xunit;

namespace ResNetSharp.Tests;

/// <summary>
/// The experiments' typed results: the committed result files under docs/ read back into their records, serialise to
/// the same JSON (every field name kept), and render to the committed Markdown; and the pointing game's dataset.
/// </summary>
public sealed class ExperimentResultsTests
{
    public static TheoryData<string> DegradationResults() => Committed(Path.Combine("docs", "degradation"), "results.json");

    public static TheoryData<string> TransferResults() => Committed(Path.Combine("docs", "lab", "bench", "transfer"), "*.json");

    [Theory]
    [MemberData(nameof(DegradationResults))]
    public void Degradation_CommittedResults_RoundTripAndRenderTheCommittedMarkdown(string json)
    {
        var result = ExperimentResults.Read<DegradationResult>(json);

        SameJson(ExperimentResults.ToJson(result), File.ReadAllText(json));
        ExperimentMarkdown.Render(result).Should().Be(File.ReadAllText(Path.ChangeExtension(json, ".md")));
        result.Models.Should().NotBeEmpty().And.OnlyContain(m => m.History.Count == m.EpochsRun);
    }

    [Theory]
    [MemberData(nameof(TransferResults))]
    public void Transfer_CommittedResults_RoundTripAndRenderTheCommittedMarkdown(string json)
    {
        var result = ExperimentResults.Read<TransferResult>(json);

        SameJson(ExperimentResults.ToJson(result), File.ReadAllText(json));
        ExperimentMarkdown.Render(result).Should().Be(File.ReadAllText(Path.ChangeExtension(json, ".md")));
        result.Runs.Select(r => r.Mode).Should().Equal("probe", "finetune", "scratch");
    }

    [Fact]
    public void Pointing_CommittedResult_RoundTripsAndRendersTheCommittedMarkdown()
    {
        string json = Path.Combine(RepoRoot(), "docs", "pointing.json");
        var result = ExperimentResults.Read<PointingResult>(json);

        SameJson(ExperimentResults.ToJson(result), File.ReadAllText(json));
        ExperimentMarkdown.Render(result).Should().Be(File.ReadAllText(Path.ChangeExtension(json, ".md")));
        result.Epochs.Should().NotBeNull("docs/pointing.json is a run of the epoch-based experiment");
        result.History.Should().HaveCount(result.Epochs!.Value);
    }

    [Fact]
    public void Read_AnotherKindOfFile_IsInvalidDataNamingIt()
    {
        string path = Path.Combine(Path.GetTempPath(), $"not-a-result-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, "[1, 2, 3]");
        try
        {
            var act = () => ExperimentResults.Read<DegradationResult>(path);
            act.Should().Throw<InvalidDataException>().Which.Message.Should().Contain(path).And.Contain(nameof(DegradationResult));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Degradation_ModelRowAndClaim_FromTheHistory()
    {
        var history = new[]
        {
            new ResNetSharp.Training.EpochMetrics { Epoch = 1, TrainError = 0.5, TestTop1 = 0.6, Seconds = 30 },
            new ResNetSharp.Training.EpochMetrics { Epoch = 2, TrainError = 0.25, TestTop1 = 0.55, Seconds = 90 },
        };

        var row = DegradationModel.From("resnet20", 20, 269_434, history);

        row.EpochsRun.Should().Be(2);
        row.FinalTrainError.Should().Be(0.25);
        row.FinalTestError.Should().BeApproximately(0.45, 1e-12);
        row.BestTestTop1.Should().Be(0.6);
        row.TrainMinutes.Should().Be(2);
        var empty = DegradationModel.From("plain20", 20, 1, Array.Empty<ResNetSharp.Training.EpochMetrics>());
        var markdown = ExperimentMarkdown.Render(new DegradationResult("degradation", "paper", "resnet experiment degradation", "fashion-mnist", 10, 5, 2, 4, "recipe", 2, 0,
            new MachineInfo("CPU", 2, 1, true), false, new DegradationClaim(null, true), new[] { row, empty }));
        markdown.Should().Contain("| resnet20 | 20 | 269,434 | 25.00 | 45.00 | 60.00 | 2.0 |").And.Contain("| plain20 | 20 | 1 | – | – | – | 0.0 |")
            .And.Contain("plain-20: not run; ResNet-56 with a lower one than ResNet-20: yes.");
    }

    [Fact]
    public void PastedCanvas_PutsEachItemInItsBox_OnAnEmptyCanvas_AtSeededPlaces()
    {
        var items = TrainingTestData.Bars(32, classes: 4, size: 12);
        var canvas = new PastedCanvasDataset(items, 40, seed: 5);
        var again = new PastedCanvasDataset(items, 40, seed: 5);
        var other = new PastedCanvasDataset(items, 40, seed: 6);

        canvas.Count.Should().Be(32);
        (canvas.Channels, canvas.Height, canvas.Width).Should().Be((1, 40, 40));
        canvas.ClassNames.Should().Equal(items.ClassNames);
        var item = new float[items.SampleSize];
        var pixels = new float[canvas.SampleSize];
        var places = new HashSet<(int, int)>();
        for (int i = 0; i < canvas.Count; i++)
        {
            canvas.GetLabel(i).Should().Be(items.GetLabel(i));
            var (x0, y0, w, h) = canvas.Box(i);
            (w, h).Should().Be((12, 12));
            (x0 >= 0 && y0 >= 0 && x0 + w <= 40 && y0 + h <= 40).Should().BeTrue();
            again.Box(i).Should().Be(canvas.Box(i), "the same seed places the same way");
            places.Add((x0, y0));
            items.ReadImage(i, item);
            Array.Fill(pixels, float.NaN); // every pixel must be written
            canvas.ReadImage(i, pixels);
            for (int y = 0; y < 40; y++)
            {
                for (int x = 0; x < 40; x++)
                {
                    bool inside = x >= x0 && x < x0 + w && y >= y0 && y < y0 + h;
                    pixels[(y * 40) + x].Should().Be(inside ? item[((y - y0) * w) + x - x0] : 0f);
                }
            }
        }

        places.Count.Should().BeGreaterThan(20, "positions are random, not one place");
        Enumerable.Range(0, 32).Count(i => other.Box(i) != canvas.Box(i)).Should().BeGreaterThan(20, "another seed places elsewhere");
    }

    [Fact]
    public void PastedCanvas_RefusesItemsThatDoNotFitOrAreNotGrey()
    {
        var big = () => new PastedCanvasDataset(TrainingTestData.Bars(4, size: 48), 40, 1);
        big.Should().Throw<ArgumentException>().WithMessage("*single-channel items on a 40×40 canvas*48×48*");
        var rgb = () => new PastedCanvasDataset(TrainingTestData.Bars(4, size: 12).RepeatChannels(3), 40, 1);
        rgb.Should().Throw<ArgumentException>().WithMessage("*got 3-channel*");
    }

    private static void SameJson(string written, string committed)
    {
        using var a = JsonDocument.Parse(written);
        using var b = JsonDocument.Parse(committed);
        JsonElement.DeepEquals(a.RootElement, b.RootElement).Should().BeTrue($"the record keeps every field of the committed file:\n{written}");
    }

    private static TheoryData<string> Committed(string folder, string pattern)
    {
        var files = Directory.GetFiles(Path.Combine(RepoRoot(), folder), pattern, SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        files.Should().NotBeEmpty($"{folder} holds committed {pattern} files");
        var data = new TheoryData<string>();
        foreach (string f in files)
        {
            data.Add(f);
        }

        return data;
    }

    private static string RepoRoot()
    {
        var d = new DirectoryInfo(AppContext.BaseDirectory);
        while (d is not null && !File.Exists(Path.Combine(d.FullName, "ResNet.sln")))
        {
            d = d.Parent;
        }

        return d?.FullName ?? throw new InvalidOperationException("repository root (ResNet.sln) not found above the test binaries");
    }
}
