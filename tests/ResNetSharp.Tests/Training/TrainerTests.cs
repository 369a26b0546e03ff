using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Threading;
using FluentAssertions;
using ResNetSharp.Runtime;
using ResNetSharp.Training;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;

namespace ResNetSharp.Tests.Training;

public sealed class TrainerTests : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("trainer-tests").FullName;
    private readonly ITestOutputHelper output;

    public TrainerTests(ITestOutputHelper output) => this.output = output;

    public void Dispose() => Directory.Delete(root, recursive: true);

    /// <summary>Reports synchronously on the training thread (Progress&lt;T&gt; would post to the thread pool).</summary>
    internal sealed class SyncProgress<T> : IProgress<T>
    {
        private readonly Action<T> action;

        public SyncProgress(Action<T> action) => this.action = action;

        public void Report(T value) => action(value);
    }

    private static TrainerOptions Recipe(string? dir, int epochs = 2) => new()
    {
        Epochs = epochs,
        BatchSize = 32,
        EvalBatchSize = 64,
        Sgd = new SgdOptions { LearningRate = 0.05, WeightDecay = 5e-4, Nesterov = true, NoDecayOnNormAndBias = true },
        Schedule = LearningRateSchedule.OneCycle(),
        LabelSmoothing = 0.1,
        Seed = 11,
        OutputDirectory = dir,
    };

    private static ResNet SeededModel(long seed = 5)
    {
        torch.manual_seed(seed);
        return TrainingTestData.TinyModel();
    }

    private static Dictionary<string, byte[]> Bytes(ResNet model) =>
        model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.contiguous().bytes.ToArray());

    [Fact]
    public void Fit_TinyRun_LossFalls()
    {
        var train = TrainingTestData.Bars(256);
        var test = TrainingTestData.Bars(64, seed: 2);
        using var model = SeededModel();

        var result = new Trainer(model, train, test, Recipe(null, epochs: 3)).Fit();

        foreach (var m in result.History)
        {
            output.WriteLine(JsonSerializer.Serialize(m));
        }

        result.History.Should().HaveCount(3);
        // Measured: 1.36 → 0.97 (label smoothing 0.1 keeps it above 0.5), test top-1 0.25 → 0.84.
        result.History[^1].TrainLoss.Should().BeLessThan(result.History[0].TrainLoss * 0.8);
        result.History[^1].TestTop1.Should().BeGreaterThan(0.7);
        result.Cancelled.Should().BeFalse();
    }

    /// <summary>The recipe with AdamW and the loss given as a function (one-cycle then also cycles AdamW's β₁).</summary>
    private static TrainerOptions AdamWRecipe(string? dir) => Recipe(dir) with
    {
        Sgd = new SgdOptions(),
        LabelSmoothing = 0,
        Optimizer = m => torch.optim.AdamW(m.parameters(), lr: 0.01, weight_decay: 0.01),
        Loss = (logits, labels) => torch.nn.functional.cross_entropy(logits, labels, label_smoothing: 0.1),
    };

    [Theory]
    [InlineData(2, 3, false)]   // mid-epoch 2, after its third iteration
    [InlineData(1, 8, false)]   // between epochs 1 and 2 (after the last iteration of epoch 1)
    [InlineData(2, 3, true)]    // an injected optimizer (AdamW) and loss resume as exactly
    public void Fit_InterruptedAndResumed_WeightsBitIdenticalToUninterrupted(int stopEpoch, int stopStep, bool adamW)
    {
        TrainerOptions Recipe(string dir) => adamW ? AdamWRecipe(dir) : TrainerTests.Recipe(dir);
        int threads = TorchThreads.IntraOp;
        TorchThreads.SetIntraOp(1);
        try
        {
            var train = TrainingTestData.Bars(256);
            var test = TrainingTestData.Bars(64, seed: 2);
            string straight = Path.Combine(root, "straight"), interrupted = Path.Combine(root, "interrupted");

            using var reference = SeededModel();
            var expected = new Trainer(reference, train, test, Recipe(straight)).Fit();

            using (var first = SeededModel())
            using (var cts = new CancellationTokenSource())
            {
                var stopped = new Trainer(first, train, test, Recipe(interrupted)).Fit(
                    new SyncProgress<TrainingProgress>(p =>
                    {
                        if (p.Epoch == stopEpoch && p.Step == stopStep)
                        {
                            cts.Cancel();
                        }
                    }),
                    cts.Token);
                stopped.Cancelled.Should().BeTrue();
                File.Exists(Path.Combine(interrupted, Trainer.CheckpointFileName)).Should().BeTrue();
            }

            torch.manual_seed(999); // the resumed process starts from other random state and other initial weights
            using var resumed = TrainingTestData.TinyModel();
            var result = new Trainer(resumed, train, test, Recipe(interrupted) with { Resume = true }).Fit();

            result.GlobalStep.Should().Be(expected.GlobalStep);
            var want = Bytes(reference);
            var got = Bytes(resumed);
            got.Keys.Should().BeEquivalentTo(want.Keys);
            foreach (var (key, bytes) in want)
            {
                got[key].Should().Equal(bytes, $"'{key}' must be bit-identical");
            }

            // The metrics logs agree too, apart from timings.
            static string[] Lines(string dir) => File.ReadAllLines(Path.Combine(dir, Trainer.MetricsFileName))
                .Select(l => JsonSerializer.Deserialize<EpochMetrics>(l)! with { Seconds = 0, ImagesPerSecond = 0 })
                .Select(m => JsonSerializer.Serialize(m)).ToArray();
            Lines(interrupted).Should().Equal(Lines(straight));
        }
        finally
        {
            TorchThreads.SetIntraOp(threads);
        }
    }

    [Fact]
    public void Fit_InjectedLoss_IsTheOneTrainedOn()
    {
        int threads = TorchThreads.IntraOp;
        TorchThreads.SetIntraOp(1);
        try
        {
            var train = TrainingTestData.Bars(128);
            Dictionary<string, byte[]> Run(TrainerOptions options)
            {
                using var model = SeededModel();
                new Trainer(model, train, null, options).Fit();
                return Bytes(model);
            }

            var builtIn = Run(Recipe(null, epochs: 1));
            var same = Run(Recipe(null, epochs: 1) with
            {
                LabelSmoothing = 0,
                Loss = (logits, labels) => torch.nn.functional.cross_entropy(logits, labels, label_smoothing: 0.1),
            });
            var other = Run(Recipe(null, epochs: 1) with { LabelSmoothing = 0, Loss = (logits, labels) => torch.nn.functional.cross_entropy(logits, labels) });

            foreach (var (key, bytes) in builtIn)
            {
                same[key].Should().Equal(bytes, $"the built-in loss given as a function trains '{key}' bit for bit alike");
            }

            builtIn.Count(kv => !other[kv.Key].SequenceEqual(kv.Value)).Should().BeGreaterThan(0, "another loss trains other weights");
        }
        finally
        {
            TorchThreads.SetIntraOp(threads);
        }
    }

    [Fact]
    public void Options_AmbiguousOrBrokenInjections_AreRefusedWithAMessage()
    {
        var train = TrainingTestData.Bars(64);
        using var model = SeededModel();
        var both = () => new Trainer(model, train, null, Recipe(null) with { Optimizer = m => torch.optim.Adam(m.parameters()) });
        both.Should().Throw<ArgumentException>().WithMessage("*either Optimizer*or Sgd*");
        var smoothing = () => new Trainer(model, train, null, AdamWRecipe(null) with { LabelSmoothing = 0.1 });
        smoothing.Should().Throw<ArgumentException>().WithMessage("*LabelSmoothing*own Loss*");
        var notScalar = () => new Trainer(model, train, null, AdamWRecipe(null) with
        {
            Epochs = 1, Loss = (logits, labels) => torch.nn.functional.cross_entropy(logits, labels, reduction: torch.nn.Reduction.None),
        }).Fit();
        notScalar.Should().Throw<InvalidOperationException>().WithMessage("*shape [32]*expected a scalar*");
    }

    [Fact]
    public void Fit_CheckpointWriteFailsMidFile_PreviousCheckpointIntactAndResumable()
    {
        var train = TrainingTestData.Bars(128, size: 8);
        string dir = Path.Combine(root, "failing");
        using var model = SeededModel();
        int writes = 0;
        Stream Wrap(Stream s) => s is FileStream f && f.Name.Contains(".checkpoint.safetensors.", StringComparison.Ordinal) && ++writes == 2 ? new FailingStream(s, failAfter: 4096) : s;

        var act = () =>
        {
            using var seam = TestSeams.Inject(wrapWrite: Wrap);
            new Trainer(model, train, null, Recipe(dir)).Fit();
        };

        act.Should().Throw<IOException>().WithMessage("*injected*");
        Directory.GetFiles(dir).Select(Path.GetFileName).Should().BeEquivalentTo(Trainer.CheckpointFileName, Trainer.MetricsFileName); // no temp file left
        var saved = WeightFile.Read(Path.Combine(dir, Trainer.CheckpointFileName));
        saved.Metadata["trainer_state"].Should().Contain("\"epoch\":1,\"step\":0");

        using var again = SeededModel(7);
        var result = new Trainer(again, train, null, Recipe(dir) with { Resume = true }).Fit();
        result.History.Select(h => h.Epoch).Should().Equal(1, 2);
        File.ReadAllLines(Path.Combine(dir, Trainer.MetricsFileName)).Should().HaveCount(2);
    }

    [Fact]
    public void Fit_WithOutputFolder_WritesMetricsBestAndFinalWithMetadata()
    {
        var train = TrainingTestData.Bars(128, size: 8);
        var test = TrainingTestData.Bars(64, size: 8, seed: 2);
        string dir = Path.Combine(root, "files");
        using var model = SeededModel();

        var result = new Trainer(model, train, test, Recipe(dir) with { DatasetName = "bars-test" }).Fit();

        var lines = File.ReadAllLines(Path.Combine(dir, Trainer.MetricsFileName));
        lines.Should().HaveCount(2);
        using (var doc = JsonDocument.Parse(lines[1]))
        {
            foreach (string field in new[] { "epoch", "trainLoss", "trainError", "testLoss", "testTop1", "testTop5", "lr", "seconds" })
            {
                doc.RootElement.TryGetProperty(field, out _).Should().BeTrue(field);
            }

            doc.RootElement.GetProperty("epoch").GetInt32().Should().Be(2);
        }

        using var final = ResNetFactory.FromWeights(Path.Combine(dir, Trainer.FinalFileName));
        var meta = final.Metadata;
        meta.ClassNames.Should().Equal("bar0", "bar1", "bar2", "bar3");
        meta.InChannels.Should().Be(1);
        meta.InputSize.Should().Be(8);
        meta.CropPct.Should().Be(1.0);
        var (mean, std) = train.ComputeMeanStd();
        meta.Mean.Should().Equal(mean);
        meta.Std.Should().Equal(std);
        meta.Extra!["dataset"].Should().Be("bars-test");
        meta.Extra["epochs"].Should().Be("2");
        double.Parse(meta.Extra["top1"], System.Globalization.CultureInfo.InvariantCulture).Should().BeApproximately(result.History[^1].TestTop1!.Value, 1e-4);
        File.Exists(Path.Combine(dir, Trainer.BestFileName)).Should().BeTrue();
    }

    [Fact]
    public void Fit_ResumeWithOtherSettings_ThrowsNamingTheDifference()
    {
        var train = TrainingTestData.Bars(64, size: 8);
        string dir = Path.Combine(root, "other");
        using (var model = SeededModel())
        {
            new Trainer(model, train, null, Recipe(dir, epochs: 1)).Fit();
        }

        using var again = SeededModel();
        var act = () => new Trainer(again, train, null, Recipe(dir, epochs: 1) with { Resume = true, BatchSize = 16 }).Fit();

        act.Should().Throw<InvalidDataException>().WithMessage("*different run*batch size 32 in the checkpoint, 16 now*");
    }

    [Fact]
    public void Constructor_ClassCountDiffersFromModel_Throws()
    {
        using var model = TrainingTestData.TinyModel(classes: 10);

        var act = () => new Trainer(model, TrainingTestData.Bars(16), null);

        act.Should().Throw<ArgumentException>().WithMessage("*4 classes*10 outputs*");
    }

    /// <summary>
    /// Training memory is flat: RSS after epoch 5 within 5 % of RSS after epoch 1 (tensors of every step,
    /// evaluation and checkpoint released), on the tiny model with checkpoints written every epoch.
    /// </summary>
    [Fact]
    public void Fit_FiveEpochs_RssFlat()
    {
        var train = TrainingTestData.Bars(256, size: 8);
        var test = TrainingTestData.Bars(64, size: 8, seed: 2);
        using var model = SeededModel();
        var rss = new List<double>();

        new Trainer(model, train, test, Recipe(Path.Combine(root, "memory"), epochs: 5)).Fit(new SyncProgress<TrainingProgress>(p =>
        {
            if (p.EpochCompleted is not null)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                rss.Add(MemoryTests.RssMiB());
            }
        }));

        output.WriteLine($"RSS after each epoch (MiB): {string.Join(", ", rss.Select(r => r.ToString("F1")))}");
        rss.Should().HaveCount(5);
        (rss[4] - rss[0]).Should().BeLessThan(rss[0] * 0.05);
    }
}
