using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text.Json;
using FluentAssertions;
using ResNetSharp.Training;
using ResNetSharp.Tests.Training;
using Xunit;

namespace ResNetSharp.Tests;

/// <summary>
/// <c>resnet train</c>, <c>eval</c> and <c>experiment</c> run as processes on tiny Fashion-MNIST subsets (skipped when
/// Debian's dataset-fashion-mnist is not installed; scripts/test.sh installs it).
/// </summary>
public sealed class CliTrainingTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("cli-train").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);


    private static readonly string[] EpochFields = { "epoch", "trainLoss", "trainError", "testLoss", "testTop1", "testTop5", "lr", "seconds", "model", "epochs" };

    private static bool IsPng(string path) => File.Exists(path) && File.ReadAllBytes(path).Take(8).SequenceEqual(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A });

    [Fact]
    public void TrainThenEval_Json_WritesEveryFileAndEvalAgreesWithTheBestEpoch()
    {
        TrainingTestData.RequireFashionMnist();

        string run = Path.Combine(dir, "run");
        var (code, stdout, stderr) = CliTests.Run("train", "resnet20", "--subset", "128", "--test-subset", "64", "--epochs", "1", "--batch", "64",
            "--cutout", "8", "--random-erasing", "0.5", "--no-decay-norm-bias", "--threads", "1", "--out", run, "--json");

        code.Should().Be(0, stderr);
        var line = stdout.Split('\n').Where(l => l.StartsWith('{')).Should().ContainSingle().Subject;
        using (var doc = JsonDocument.Parse(line))
        {
            foreach (string field in EpochFields)
            {
                doc.RootElement.TryGetProperty(field, out _).Should().BeTrue($"'{field}' is part of train --json");
            }
        }

        foreach (string file in new[] { "model.safetensors", "best.safetensors", "checkpoint.safetensors", "metrics.jsonl" })
        {
            File.Exists(Path.Combine(run, file)).Should().BeTrue(file);
        }

        IsPng(Path.Combine(run, "curves.png")).Should().BeTrue();
        var best = JsonDocument.Parse(File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Single()).RootElement.GetProperty("testTop1").GetDouble();

        // eval with --weights only: the model, its mean/std and the class names come from the file's metadata.
        string png = Path.Combine(dir, "confusion.png");
        var eval = CliTests.Run("eval", "--weights", Path.Combine(run, "best.safetensors"), "--subset", "64", "--threads", "1", "--json", "--confusion", png);
        eval.ExitCode.Should().Be(0, eval.Stderr);
        using var result = JsonDocument.Parse(eval.Stdout);
        var root = result.RootElement;
        root.GetProperty("model").GetString().Should().Be("resnet20");
        root.GetProperty("count").GetInt32().Should().Be(64);
        root.GetProperty("top1").GetDouble().Should().Be(best);
        root.GetProperty("top5").GetDouble().Should().BeGreaterThanOrEqualTo(best);
        root.GetProperty("perClass").EnumerateArray().Select(c => c.GetProperty("name").GetString()).Should().Equal(FashionMnist.ClassNames);
        root.GetProperty("confusion").EnumerateArray().SelectMany(r => r.EnumerateArray()).Sum(c => c.GetInt32()).Should().Be(64);
        IsPng(png).Should().BeTrue();
    }

    [Fact]
    public void TrainThenEval_ImageFolder_DecodesResizesAndTrains()
    {
        // torchvision's layout, PNGs of several sizes (resized and centre-cropped to the 32² a CIFAR table expects).
        string data = Path.Combine(dir, "folder");
        foreach (var (split, count) in new[] { ("train", 8), ("test", 4) })
        {
            foreach (var (cls, value) in new[] { ("dark", (byte)30), ("light", (byte)220) })
            {
                Directory.CreateDirectory(Path.Combine(data, split, cls));
                for (int i = 0; i < count; i++)
                {
                    int w = 20 + 3 * i, h = 40 - 2 * i;
                    ResNetSharp.Images.ImageEncoder.WritePng(Path.Combine(data, split, cls, $"{i}.png"),
                        new ResNetSharp.Images.PixelImage(w, h, 3, Enumerable.Repeat(value, w * h * 3).ToArray()));
                }
            }
        }

        string run = Path.Combine(dir, "folder-run");
        var train = CliTests.Run("train", "resnet20", "--dataset", data, "--epochs", "1", "--batch", "8", "--threads", "1", "--out", run, "--json");
        train.ExitCode.Should().Be(0, train.Stderr);
        using var model = ResNetFactory.FromWeights(Path.Combine(run, "model.safetensors"));
        model.Metadata.ClassNames.Should().Equal("dark", "light");
        (model.Metadata.InputSize, model.Metadata.InChannels).Should().Be((32, 3));

        var eval = CliTests.Run("eval", "--weights", Path.Combine(run, "model.safetensors"), "--dataset", data, "--json");
        eval.ExitCode.Should().Be(0, eval.Stderr);
        JsonDocument.Parse(eval.Stdout).RootElement.GetProperty("count").GetInt32().Should().Be(8);
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    [Fact]
    public async System.Threading.Tasks.Task Train_CtrlC_Exits130WithCheckpoint_ResumeFinishesTheRun()
    {
        TrainingTestData.RequireFashionMnist();

        string run = Path.Combine(dir, "interrupted");
        string[] args = { "train", "resnet20", "--subset", "256", "--test-subset", "32", "--epochs", "3", "--batch", "32", "--threads", "1", "--out", run, "--json" };
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "resnet.dll"));
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using (var process = Process.Start(psi)!)
        {
            var stderr = process.StandardError.ReadToEndAsync();
            string? first = await process.StandardOutput.ReadLineAsync(); // epoch 1 is done: Ctrl-C lands in epoch 2 (or 3)
            first.Should().StartWith("{\"epoch\":1");
            kill(process.Id, 2 /* SIGINT */).Should().Be(0);
            string rest = await process.StandardOutput.ReadToEndAsync();
            process.WaitForExit(120_000).Should().BeTrue();
            process.ExitCode.Should().Be(130, await stderr);
            rest.Should().NotContain("\"epoch\":3");
        }

        File.Exists(Path.Combine(run, Trainer.CheckpointFileName)).Should().BeTrue();
        File.Exists(Path.Combine(run, Trainer.FinalFileName)).Should().BeFalse("the run did not finish");

        var resumed = CliTests.Run(args.Append("--resume").ToArray());
        resumed.ExitCode.Should().Be(0, resumed.Stderr);
        resumed.Stdout.Should().Contain("\"epoch\":3").And.NotContain("\"epoch\":1,");
        File.ReadAllLines(Path.Combine(run, Trainer.MetricsFileName)).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("epoch").GetInt32())
            .Should().Equal(1, 2, 3);
        File.Exists(Path.Combine(run, Trainer.FinalFileName)).Should().BeTrue();
    }

    [Theory]
    [InlineData("Unknown dataset 'nowhere'", "train", "resnet20", "--dataset", "nowhere", "--out", "x")]
    [InlineData("Unknown model 'resnet21'", "train", "resnet21", "--subset", "8", "--out", "x")]
    [InlineData("Unknown schedule 'linear'", "train", "resnet20", "--schedule", "linear", "--subset", "8", "--out", "x")]
    public void BadArguments_ExitOneWithOneLine(string expected, params string[] args)
    {
        TrainingTestData.RequireFashionMnist();

        var (code, _, stderr) = CliTests.Run(args);

        code.Should().Be(1);
        stderr.Split('\n').Should().ContainSingle().Which.Should().StartWith("resnet: error: ").And.Contain(expected);
    }

    [Fact]
    public void Eval_FileWithoutMetadataAndNoModel_ExitsOneSayingToNameIt()
    {
        TrainingTestData.RequireFashionMnist();

        string path = Path.Combine(dir, "bare.safetensors");
        using (var model = ResNetFactory.Create("resnet20", new ResNetOptions { InChannels = 1, NumClasses = 10 }))
        {
            // A bare state dict, as torchvision or an older tool would write it.
            new WeightFile(model.GetWeights().Tensors, null, path).Write(path);
        }

        var (code, _, stderr) = CliTests.Run("eval", "--weights", path, "--subset", "10");

        code.Should().Be(1);
        stderr.Should().Contain("carries no model metadata").And.Contain("name the model");
    }

    [Fact]
    public void ExperimentDegradation_TinyBudget_WritesResultsTableAndFigure()
    {
        TrainingTestData.RequireFashionMnist();

        string run = Path.Combine(dir, "degradation");
        var (code, stdout, stderr) = CliTests.Run("experiment", "degradation", "--models", "plain20,resnet20", "--subset", "64", "--test-subset", "32",
            "--epochs", "1", "--batch", "32", "--threads", "1", "--out", run, "--json");

        code.Should().Be(0, stderr);
        stdout.Split('\n').Count(l => l.StartsWith('{')).Should().Be(2, "one epoch line per model");
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "results.json")));
        var models = doc.RootElement.GetProperty("models").EnumerateArray().ToList();
        models.Select(m => m.GetProperty("name").GetString()).Should().Equal("plain20", "resnet20");
        models.Select(m => m.GetProperty("layers").GetInt32()).Should().Equal(20, 20);
        models.Should().OnlyContain(m => m.GetProperty("history").GetArrayLength() == 1);
        doc.RootElement.GetProperty("trainImages").GetInt32().Should().Be(64);
        File.ReadAllText(Path.Combine(run, "results.md")).Should().Contain("| plain20 | 20 |").And.Contain("| resnet20 | 20 |");
        IsPng(Path.Combine(run, "degradation.png")).Should().BeTrue();
    }

    [Fact]
    public void ExperimentTransfer_TinyBudget_WritesProbeFineTuneAndScratchResults()
    {
        // The CLI runs from this folder, where the package Microsoft.ML.DnnImageFeaturizer.ResNet18 copies the model.
        TrainingTestData.RequireFashionMnist();
        File.Exists(Path.Combine(AppContext.BaseDirectory, PretrainedBackbones.MlNetResNet18RelativePath)).Should().BeTrue(
            "the test project references Microsoft.ML.DnnImageFeaturizer.ResNet18, whose props copy the model next to the tests");

        string run = Path.Combine(dir, "transfer");
        var (code, stdout, stderr) = CliTests.Run("experiment", "transfer", "--subset", "96", "--test-subset", "48", "--epochs", "1", "--batch", "48",
            "--input-size", "32", "--threads", "1", "--out", run, "--json");

        code.Should().Be(0, stderr);
        var lines = stdout.Split('\n').Where(l => l.StartsWith('{')).ToList();
        lines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("model").GetString()).Should().Equal("probe", "finetune", "scratch");
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "results.json")));
        var root = doc.RootElement;
        root.GetProperty("experiment").GetString().Should().Be("transfer");
        (root.GetProperty("trainImages").GetInt32(), root.GetProperty("testImages").GetInt32(), root.GetProperty("inputSize").GetInt32(), root.GetProperty("epochs").GetInt32())
            .Should().Be((96, 48, 32, 1));
        root.GetProperty("complete").GetBoolean().Should().BeTrue();
        root.GetProperty("backbone").GetProperty("preprocessing").GetString().Should().StartWith("grey repeated to 3 channels; bilinear resize 28 → 32")
            .And.Contain("BGR").And.Contain("mean image");
        // Without the options, the recipe says so (CliExperimentOptionsTests gives them).
        root.GetProperty("recipe").GetString().Should().Contain("random horizontal flip, evaluation").And.NotContain("BatchNorm").And.NotContain("cutout");
        root.GetProperty("prefetch").GetInt32().Should().Be(2);
        var runs = root.GetProperty("runs").EnumerateArray().ToList();
        runs.Select(r => r.GetProperty("mode").GetString()).Should().Equal("probe", "finetune", "scratch");
        foreach (var r in runs)
        {
            r.GetProperty("history").GetArrayLength().Should().Be(1);
            r.GetProperty("finalTestTop1").GetDouble().Should().BeInRange(0, 1);
            r.GetProperty("wallMinutes").GetDouble().Should().BePositive();
            r.GetProperty("cpuMinutes").GetDouble().Should().BePositive();
        }

        // The probe trains only the new 512 × 10 head; the fine-tune and the scratch model train everything.
        runs[0].GetProperty("trainableParameters").GetInt64().Should().Be(512 * 10 + 10);
        runs[1].GetProperty("trainableParameters").GetInt64().Should().Be(runs[1].GetProperty("parameters").GetInt64());
        runs[2].GetProperty("trainableParameters").GetInt64().Should().Be(runs[1].GetProperty("parameters").GetInt64());
        runs[1].GetProperty("description").GetString().Should().Contain("stem 0.000625").And.Contain("layer4 0.005").And.Contain("fc 0.01");
        File.ReadAllText(Path.Combine(run, "results.md")).Should().Contain("| probe |").And.Contain("| finetune |").And.Contain("| scratch |");
    }
}
