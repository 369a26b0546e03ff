using System;
using System.IO;
using System.Linq;
using FluentAssertions;
using ResNetSharp.Runtime;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ResNetSharp.Tests;

/// <summary>Strict, all-or-nothing loading; explicit skips; round trips; TorchSharp's own format.</summary>
public class WeightsLoadTests
{
    [Fact]
    public void Load_WrongFile_ListsMissingUnexpectedAndMismatchedKeys_InOneException()
    {
        using var source = WeightsTestSupport.Tiny(numClasses: 7);
        WeightsTestSupport.Randomise(source, 3);
        var weights = source.GetWeights();
        // Drop one key, add a stranger, and keep fc at 7 classes while the target has 5.
        var tensors = weights.Tensors.Where(t => t.Name != "layer1.0.bn2.running_mean").ToList();
        tensors.Add(new WeightTensor("head.extra", WeightDType.F32, new long[] { 2 }, new byte[8]));
        var file = new WeightFile(tensors, source: "edited.safetensors");

        using var target = WeightsTestSupport.Tiny(numClasses: 5);
        var act = () => target.LoadWeights(file);
        var ex = act.Should().Throw<WeightMismatchException>().Which;
        ex.Missing.Should().Equal("layer1.0.bn2.running_mean");
        ex.Unexpected.Should().Equal("head.extra");
        ex.Mismatched.Should().BeEquivalentTo("fc.weight", "fc.bias");
        ex.Message.Should().Contain("fc.weight: model [5, 16] Float32, file [7, 16] F32");
        ex.Message.Should().Contain("edited.safetensors").And.Contain("layer1.0.bn2.running_mean").And.Contain("head.extra")
            .And.Contain("fc.weight").And.Contain("SkipClassifier");
    }

    [Fact]
    public void Load_FailedStrictLoad_LeavesParametersAndBuffersBitIdentical()
    {
        using var target = WeightsTestSupport.Tiny();
        WeightsTestSupport.Randomise(target, 11);
        target.train();
        using (var noGrad = torch.no_grad())
        using (var x = torch.randn(4, 3, 16, 16))
        {
            target.call(x).Dispose(); // real running stats and num_batches_tracked = 1
        }

        var before = WeightsTestSupport.Snapshot(target);

        using var other = WeightsTestSupport.Tiny();
        WeightsTestSupport.Randomise(other, 12);
        var good = other.GetWeights();
        // Everything fits except one key that is missing: all other tensors would load, and must not.
        var file = new WeightFile(good.Tensors.Where(t => t.Name != "fc.bias"));
        var act = () => target.LoadWeights(file);
        act.Should().Throw<WeightMismatchException>().Which.Missing.Should().Equal("fc.bias");

        WeightsTestSupport.Snapshot(target).ShouldEqual(before);
    }

    [Fact]
    public void Load_CopyFailsMidway_RestoresEverythingAlreadyCopied()
    {
        using var target = WeightsTestSupport.Tiny();
        WeightsTestSupport.Randomise(target, 21);
        var before = WeightsTestSupport.Snapshot(target);
        using var other = WeightsTestSupport.Tiny();
        WeightsTestSupport.Randomise(other, 22);
        var file = other.GetWeights();

        var act = () =>
        {
            using var seam = TestSeams.Inject(afterWeightCopy: copied =>
            {
                if (copied == 10)
                {
                    throw new IOException("injected failure after 11 copies");
                }
            });
            Checkpoint.Load(target, file, null);
        };
        act.Should().Throw<IOException>().WithMessage("injected*");
        WeightsTestSupport.Snapshot(target).ShouldEqual(before);
    }

    [Fact]
    public void Load_SkipClassifier_LoadsBackboneAndKeepsNewHead()
    {
        using var source = WeightsTestSupport.Tiny(numClasses: 1000);
        WeightsTestSupport.Randomise(source, 5);
        var file = source.GetWeights();
        var sourceBytes = WeightsTestSupport.Snapshot(source);

        using var target = WeightsTestSupport.Tiny(numClasses: 10);
        WeightsTestSupport.Randomise(target, 6);
        var headBefore = WeightsTestSupport.Snapshot(target);

        var strict = () => target.LoadWeights(file);
        strict.Should().Throw<WeightMismatchException>();

        var check = target.LoadWeights(file, LoadOptions.ExceptClassifier);
        check.Skipped.Should().BeEquivalentTo("fc.weight", "fc.bias");
        var after = WeightsTestSupport.Snapshot(target);
        foreach (var key in after.Keys)
        {
            var expected = key.StartsWith("fc.", StringComparison.Ordinal) ? headBefore[key] : sourceBytes[key];
            after[key].Should().Equal(expected, key);
        }
    }

    [Fact]
    public void Load_SkipKeys_LeavesNamedKeysAndRejectsUnknownNames()
    {
        using var source = WeightsTestSupport.Tiny();
        WeightsTestSupport.Randomise(source, 7);
        using var target = WeightsTestSupport.Tiny();
        WeightsTestSupport.Randomise(target, 8);
        var before = WeightsTestSupport.Snapshot(target);
        var file = source.GetWeights();

        target.LoadWeights(file, new LoadOptions { SkipKeys = new[] { "bn1.running_mean" } });
        var after = WeightsTestSupport.Snapshot(target);
        after["bn1.running_mean"].Should().Equal(before["bn1.running_mean"]);
        after["bn1.running_var"].Should().Equal(WeightsTestSupport.Snapshot(source)["bn1.running_var"]);

        var typo = () => target.LoadWeights(file, new LoadOptions { SkipKeys = new[] { "fc.wieght" } });
        typo.Should().Throw<ArgumentException>().WithMessage("*fc.wieght*");
    }

    [Theory]
    [InlineData(WeightFormat.SafeTensors)]
    [InlineData(WeightFormat.TorchSharp)]
    public void SaveThenLoad_GivesBitIdenticalStateAndOutputs(WeightFormat format)
    {
        string dir = WeightsTestSupport.TempDir();
        try
        {
            string path = Path.Combine(dir, "model.bin");
            using var source = ResNetFactory.ResNet18(new ResNetOptions { NumClasses = 10 });
            WeightsTestSupport.Randomise(source, 9);
            source.eval();
            source.SaveWeights(path, new SaveOptions { Format = format });

            using var target = ResNetFactory.ResNet18(new ResNetOptions { NumClasses = 10 });
            target.eval();
            target.LoadWeights(path).Matched.Should().HaveCount(source.state_dict().Count);
            WeightsTestSupport.Snapshot(target).ShouldEqual(WeightsTestSupport.Snapshot(source));

            using var noGrad = torch.no_grad();
            using var x = torch.randn(2, 3, 32, 32);
            using var a = source.call(x);
            using var b = target.call(x);
            a.bytes.ToArray().Should().Equal(b.bytes.ToArray(), "same weights, same input: bit-identical logits");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData(ScalarType.Float16, "F16")]
    [InlineData(ScalarType.BFloat16, "BF16")]
    public void SaveAsHalf_LoadsIntoFloat32AsTheRoundedValues(ScalarType torchType, string stored)
    {
        using var source = WeightsTestSupport.Tiny();
        WeightsTestSupport.Randomise(source, 13);
        using var ms = new MemoryStream();
        source.SaveWeights(ms, new SaveOptions { FloatType = torchType });
        ms.Position = 0;
        var file = SafeTensorsFormat.Read(ms);
        file["conv1.weight"].DType.ToSafeTensorsName().Should().Be(stored);
        file["bn1.num_batches_tracked"].DType.Should().Be(WeightDType.I64);

        using var target = WeightsTestSupport.Tiny();
        target.LoadWeights(file);
        using var scope = torch.NewDisposeScope();
        var expected = source.state_dict()["conv1.weight"].to(torchType).to(ScalarType.Float32);
        var actual = target.state_dict()["conv1.weight"];
        actual.dtype.Should().Be(ScalarType.Float32);
        Same(actual, expected).Should().BeTrue("loading converts exactly the stored half values");
        Same(actual, source.state_dict()["conv1.weight"]).Should().BeFalse("the half file really is rounded");
    }

    [Fact]
    public void Load_IntoFloat64Model_ConvertsToModelDType()
    {
        using var source = WeightsTestSupport.Tiny();
        WeightsTestSupport.Randomise(source, 17);
        using var target = WeightsTestSupport.Tiny(dtype: ScalarType.Float64);
        target.LoadWeights(source.GetWeights());
        using var scope = torch.NewDisposeScope();
        var t = target.state_dict()["layer2.0.conv1.weight"];
        t.dtype.Should().Be(ScalarType.Float64);
        Same(t.to(ScalarType.Float32), source.state_dict()["layer2.0.conv1.weight"]).Should().BeTrue();
    }

    [Fact]
    public void TorchSharpFormat_ReadsModuleSaveAndIsReadByModuleLoad()
    {
        string dir = WeightsTestSupport.TempDir();
        try
        {
            using var source = WeightsTestSupport.Tiny();
            WeightsTestSupport.Randomise(source, 31);
            var expected = WeightsTestSupport.Snapshot(source);

            // TorchSharp writes, we read (format detected from content).
            string theirs = Path.Combine(dir, "theirs.dat");
            source.save(theirs);
            WeightFile.Read(theirs).Format.Should().Be(WeightFormat.TorchSharp);
            using var a = WeightsTestSupport.Tiny();
            a.LoadWeights(theirs);
            WeightsTestSupport.Snapshot(a).ShouldEqual(expected);

            // We write, TorchSharp reads.
            string ours = Path.Combine(dir, "ours.dat");
            source.SaveWeights(ours, new SaveOptions { Format = WeightFormat.TorchSharp });
            using var b = WeightsTestSupport.Tiny();
            b.load(ours, strict: true);
            WeightsTestSupport.Snapshot(b).ShouldEqual(expected);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void CheckWeights_ReportsWithoutLoadingOrThrowing()
    {
        using var source = WeightsTestSupport.Tiny(numClasses: 5);
        WeightsTestSupport.Randomise(source, 51);
        var file = source.GetWeights();
        using var target = WeightsTestSupport.Tiny(numClasses: 3);
        var before = WeightsTestSupport.Snapshot(target);

        var check = target.CheckWeights(file);
        check.IsLoadable.Should().BeFalse();
        check.Mismatched.Should().BeEquivalentTo("fc.weight", "fc.bias");
        check.Matched.Should().HaveCount(file.Tensors.Count - 2);
        target.CheckWeights(file, LoadOptions.ExceptClassifier).IsLoadable.Should().BeTrue();
        WeightsTestSupport.Snapshot(target).ShouldEqual(before);
    }

    [Fact]
    public void SafeTensorsMetadata_RoundTrips()
    {
        using var source = WeightsTestSupport.Tiny();
        using var ms = new MemoryStream();
        source.SaveWeights(ms, new SaveOptions { Metadata = new System.Collections.Generic.Dictionary<string, string> { ["model"] = "tiny" } });
        ms.Position = 0;
        var file = SafeTensorsFormat.Read(ms, "mem");
        file.Metadata["model"].Should().Be("tiny");
        file.Source.Should().Be("mem");
        file.Tensors.Select(t => t.Name).Should().BeEquivalentTo(source.state_dict().Keys);
    }

    private static bool Same(Tensor a, Tensor b) =>
        a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && a.contiguous().bytes.SequenceEqual(b.contiguous().bytes);
}
