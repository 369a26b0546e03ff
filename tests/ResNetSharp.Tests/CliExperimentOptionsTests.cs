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
        // Pointing: all by Pointing_EveryOption_ReachesTheResult and the rejections below.
        ["pointing"] = ["--data", "--canvas", "--epochs", "--subset", "--test", "--batch", "--width", "--threads", "--seed", "--out", "--save", "--json"],
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
    [InlineData("--epochs must be ≥ 1, got 0", "experiment", "pointing", "--epochs", "0", "--out", "x")]
    [InlineData("--subset must be ≥ 1, got 0", "experiment", "pointing", "--subset", "0", "--out", "x")]
    [InlineData("--test must be ≥ 1, got 0", "experiment", "pointing", "--test", "0", "--out", "x")]
    [InlineData("--batch must be ≥ 1, got 0", "experiment", "pointing", "--batch", "0", "--out", "x")]
    [InlineData("--width must be ≥ 1, got 0", "experiment", "pointing", "--width", "0", "--out", "x")]
    [InlineData("--threads must be ≥ 1, got 0", "experiment", "pointing", "--threads", "0", "--out", "x")]
    [InlineData("--canvas must be ≥ 32", "experiment", "pointing", "--canvas", "24", "--out", "x")]
    [InlineData("--save NEVER/m.safetensors: the folder does not exist", "experiment", "pointing", "--save", "NEVER/m.safetensors")]
    [InlineData("Fashion-MNIST train files not found in 'NEVER'", "experiment", "pointing", "--data", "NEVER")]
    [InlineData("Unrecognized command or argument '--minutes'", "experiment", "pointing", "--minutes", "4")]
    public void ValuesNoRunCanHonour_ExitOneNamingTheOption(string expected, params string[] args)
    {
        // Checked before any data is read: no dataset needed. "x" and "NEVER" stand for a folder that must not appear.
        // (A parse error, such as an option that no longer exists, exits 2.)
        string never = Path.Combine(dir, "never");
        var (code, stdout, stderr) = CliTests.Run(args.Select(a => a == "x" ? never : a.Replace("NEVER", never, StringComparison.Ordinal)).ToArray());

        code.Should().Be(expected.StartsWith("Unrecognized", StringComparison.Ordinal) ? 2 : 1);
        stderr.Split('\n').Should().ContainSingle().Which.Should().StartWith("resnet: error: ").And.Contain(expected.Replace("NEVER", never, StringComparison.Ordinal));
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
    public void Pointing_EveryOption_ReachesTheResult()
    {
        TrainingTestData.RequireFashionMnist();

        string run = Path.Combine(dir, "pointing");
        string saved = Path.Combine(run, "model.safetensors");
        string[] args = ["experiment", "pointing", "--data", ResNetSharp.Training.FashionMnist.DefaultFolder, "--canvas", "40", "--epochs", "2", "--subset", "48",
            "--test", "12", "--batch", "16", "--width", "4", "--threads", "1", "--seed", "3"];
        var (code, stdout, stderr) = CliTests.Run([.. args, "--out", run, "--save", saved, "--json"]);

        code.Should().Be(0, stderr);
        using var printed = JsonDocument.Parse(stdout); // --json: one object on stdout, no progress
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "pointing.json")));
        var root = doc.RootElement;
        JsonElement.DeepEquals(printed.RootElement, root).Should().BeTrue("stdout and pointing.json are the same record");
        root.GetProperty("canvas").GetInt32().Should().Be(40);
        root.GetProperty("featureMapSize").GetInt32().Should().Be(5, "output stride 8");
        root.GetProperty("architecture").GetString().Should().StartWith("Basic [1, 1] × [4, 8], ImageNet stem");
        root.GetProperty("epochs").GetInt32().Should().Be(2);
        root.GetProperty("batch").GetInt32().Should().Be(16);
        root.GetProperty("trainSetImages").GetInt32().Should().Be(48);
        root.GetProperty("trainSteps").GetInt32().Should().Be(6, "2 epochs of 48 canvases in batches of 16");
        root.GetProperty("trainImages").GetInt64().Should().Be(96);
        root.GetProperty("testImages").GetInt32().Should().Be(12);
        root.GetProperty("history").GetArrayLength().Should().Be(2);
        root.GetProperty("machine").GetProperty("intraOpThreads").GetInt32().Should().Be(1);
        root.GetProperty("command").GetString().Should().Be(
            "resnet experiment pointing --canvas 40 --epochs 2 --subset 48 --test 12 --batch 16 --width 4 --threads 1 --seed 3");
        File.ReadAllText(Path.Combine(run, "pointing.md")).Should().Contain("on a 40 × 40 canvas").And.Contain("2 epoch(s) over 48 pasted canvases, batch 16");
        File.Exists(Path.Combine(run, "cam-pointing.png")).Should().BeTrue();

        // --save: the trained model with what the Trainer recorded (input size, classes, the recipe's mean/std).
        using (var model = ResNetFactory.Load(saved))
        {
            model.Metadata.InputSize.Should().Be(40);
            model.Metadata.ClassNames.Should().Equal(ResNetSharp.Training.FashionMnist.ClassNames);
            model.Metadata.Mean.Should().Equal(0.05);
            model.Metadata.Std.Should().Equal(0.2);
            model.Metadata.Extra!["recipe"].Should().Contain("SGD lr 0.05 momentum 0.9 nesterov wd 0.0005, cosine");
        }

        // --seed: another seed trains another model (and places the items elsewhere).
        var (code2, stdout2, stderr2) = CliTests.Run([.. args[..^1], "4", "--json"]);
        code2.Should().Be(0, stderr2);
        using var other = JsonDocument.Parse(stdout2);
        other.RootElement.GetProperty("history")[0].GetProperty("trainLoss").GetDouble().Should()
            .NotBe(root.GetProperty("history")[0].GetProperty("trainLoss").GetDouble());
        other.RootElement.GetProperty("command").GetString().Should().EndWith("--seed 4");
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
