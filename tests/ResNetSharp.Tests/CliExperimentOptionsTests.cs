using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using FluentAssertions;
using ResNetSharp.Cli.Commands;
using ResNetSharp.Tests.Training;
using Xunit;

namespace ResNetSharp.Tests;

/// <summary>
/// Every option an <c>experiment</c> sub-command accepts is honoured or rejected, never silently ignored: the options
/// reach the recorded recipe (built from the options handed to the trainer), or the command exits 1 naming the option.
/// </summary>
public sealed class CliExperimentOptionsTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("cli-experiment-options").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    /// <summary>
    /// The ledger: each option of each experiment, and where the tests check that it is honoured (or rejected). A new
    /// option fails this test until it is added here with such a check.
    /// </summary>
    private static readonly Dictionary<string, string[]> Checked = new()
    {
        // RecipeOptions shared by train, degradation and transfer; --out, --json, --models, --resume by CliTrainingTests.
        ["degradation"] =
        [
            "--models", "--out", "--resume", "--json", "--dataset", "--epochs", "--batch", "--lr", "--schedule", "--weight-decay", "--nesterov",
            "--label-smoothing", "--subset", "--test-subset", "--seed", "--threads", "--default-allocator", "--input-size", "--grey",
            "--no-decay-norm-bias", "--cutout", "--random-erasing", "--prefetch",
        ],
        ["transfer"] =
        [
            "--out", "--json", "--dataset", "--epochs", "--batch", "--lr", "--schedule", "--weight-decay", "--nesterov",
            "--label-smoothing", "--subset", "--test-subset", "--seed", "--threads", "--default-allocator", "--input-size", "--grey",
            "--no-decay-norm-bias", "--cutout", "--random-erasing", "--prefetch",
        ],
        ["pointing"] = ["--data", "--canvas", "--minutes", "--test", "--batch", "--width", "--threads", "--seed", "--out", "--save", "--json"],
    };

    [Fact]
    public void EveryExperimentOption_IsInTheLedgerOfCheckedOptions()
    {
        var experiments = ExperimentCommand.Create().Subcommands.ToDictionary(c => c.Name, c => c.Options.Select(o => o.Name).ToArray());

        experiments.Keys.Should().BeEquivalentTo(Checked.Keys);
        foreach (var (name, options) in experiments)
        {
            options.Should().BeEquivalentTo(Checked[name], $"every option of 'experiment {name}' is honoured or rejected, and tested so");
        }
    }

    [Theory]
    [InlineData("--prefetch must be ≥ 0", "experiment", "transfer", "--prefetch", "-1", "--out", "x")]
    [InlineData("--cutout must be ≥ 0", "experiment", "transfer", "--cutout", "-2", "--out", "x")]
    [InlineData("--random-erasing must be a probability in [0, 1], got 1.5", "experiment", "transfer", "--random-erasing", "1.5", "--out", "x")]
    [InlineData("--prefetch must be ≥ 0", "experiment", "degradation", "--prefetch", "-1", "--out", "x")]
    [InlineData("--cutout must be ≥ 0", "experiment", "degradation", "--cutout", "-2", "--out", "x")]
    [InlineData("--random-erasing must be a probability in [0, 1], got -0.1", "experiment", "degradation", "--random-erasing", "-0.1", "--out", "x")]
    [InlineData("--input-size 64 applies to image folders only", "experiment", "degradation", "--input-size", "64", "--out", "x")]
    [InlineData("--input-size 64 applies to image folders only", "train", "resnet20", "--input-size", "64", "--out", "x")]
    [InlineData("--prefetch must be ≥ 0", "train", "resnet20", "--prefetch", "-1", "--out", "x")]
    public void ValuesNoRunCanHonour_ExitOneNamingTheOption(string expected, params string[] args)
    {
        // Checked before any data is read: no dataset needed.
        var (code, stdout, stderr) = CliTests.Run(args.Select(a => a == "x" ? Path.Combine(dir, "never") : a).ToArray());

        code.Should().Be(1);
        stderr.Split('\n').Should().ContainSingle().Which.Should().StartWith("resnet: error: ").And.Contain(expected);
        stdout.Should().BeEmpty();
        Directory.Exists(Path.Combine(dir, "never")).Should().BeFalse();
    }

    [Fact]
    public void Transfer_AugmentationDecayPrefetchAndSmoothing_ReachTheTrainer()
    {
        TrainingTestData.RequireFashionMnist();
        RequireBackbone();

        string run = Path.Combine(dir, "transfer");
        var (code, _, stderr) = CliTests.Run("experiment", "transfer", "--subset", "32", "--test-subset", "16", "--epochs", "1", "--batch", "16",
            "--input-size", "32", "--threads", "1", "--cutout", "8", "--random-erasing", "0.5", "--no-decay-norm-bias", "--prefetch", "0",
            "--label-smoothing", "0.1", "--out", run, "--json");

        code.Should().Be(0, stderr);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "results.json")));
        var root = doc.RootElement;
        root.GetProperty("recipe").GetString().Should()
            .Contain("weight decay 0.0001 (none on BatchNorm weights and biases)")
            .And.Contain("random horizontal flip, cutout 8 px, random erasing p 0.5")
            .And.Contain("label smoothing 0.1");
        root.GetProperty("prefetch").GetInt32().Should().Be(0);
        root.GetProperty("runs").EnumerateArray().Should().OnlyContain(r => r.GetProperty("history").GetArrayLength() == 1);
    }

    [Fact]
    public void Degradation_AugmentationDecayPrefetchAndSmoothing_ReachTheTrainer()
    {
        TrainingTestData.RequireFashionMnist();

        string run = Path.Combine(dir, "degradation");
        var (code, _, stderr) = CliTests.Run("experiment", "degradation", "--models", "resnet20", "--subset", "32", "--test-subset", "16", "--epochs", "1",
            "--batch", "16", "--threads", "1", "--cutout", "4", "--random-erasing", "0.25", "--no-decay-norm-bias", "--prefetch", "0", "--label-smoothing", "0.1",
            "--out", run, "--json");

        code.Should().Be(0, stderr);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "results.json")));
        var root = doc.RootElement;
        root.GetProperty("recipe").GetString().Should()
            .Contain("weight decay 0.0001 (none on BatchNorm weights and biases)")
            .And.Contain("label smoothing 0.1, pad-4 random crop + horizontal flip, cutout 4 px, random erasing p 0.25, 28×28 input");
        root.GetProperty("prefetch").GetInt32().Should().Be(0);
    }

    [Fact]
    public void Transfer_ImageFolder_DecodesRgbUnlessGrey()
    {
        RequireBackbone();
        string data = Path.Combine(dir, "folder");
        foreach (var (split, count) in new[] { ("train", 8), ("test", 4) })
        {
            foreach (var (cls, rgb) in new[] { ("red", new byte[] { 200, 30, 30 }), ("blue", new byte[] { 30, 30, 200 }) })
            {
                Directory.CreateDirectory(Path.Combine(data, split, cls));
                for (int i = 0; i < count; i++)
                {
                    var pixels = Enumerable.Range(0, 36 * 36 * 3).Select(k => rgb[k % 3]).ToArray();
                    ResNetSharp.Images.ImageEncoder.WritePng(Path.Combine(data, split, cls, $"{i}.png"), new ResNetSharp.Images.PixelImage(36, 36, 3, pixels));
                }
            }
        }

        foreach (bool grey in new[] { false, true })
        {
            string run = Path.Combine(dir, grey ? "grey" : "rgb");
            string[] args = ["experiment", "transfer", "--dataset", data, "--subset", "16", "--test-subset", "8", "--epochs", "1", "--batch", "8",
                "--input-size", "32", "--threads", "1", "--out", run, "--json"];
            var (code, _, stderr) = CliTests.Run(grey ? [.. args, "--grey"] : args);

            code.Should().Be(0, stderr);
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "results.json")));
            doc.RootElement.GetProperty("backbone").GetProperty("preprocessing").GetString().Should()
                .StartWith(grey ? "grey repeated to 3 channels; bilinear resize 32 → 32" : "RGB; bilinear resize 32 → 32");
            doc.RootElement.GetProperty("trainImages").GetInt32().Should().Be(16);
        }
    }

    private static void RequireBackbone() =>
        File.Exists(Path.Combine(AppContext.BaseDirectory, ResNetSharp.Onnx.PretrainedBackbones.MlNetResNet18RelativePath)).Should().BeTrue(
            "the test project references Microsoft.ML.DnnImageFeaturizer.ResNet18, whose props copy the model next to the tests");
}
