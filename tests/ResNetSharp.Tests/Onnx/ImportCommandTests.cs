using System;
using System.IO;
using System.Linq;
using System.Text.Json;
using FluentAssertions;
using TorchSharp;
using Xunit;

namespace ResNetSharp.Tests.Onnx;

/// <summary><c>resnet import</c>, run as a process: exit codes, JSON fields, and a file that rebuilds the model alone.</summary>
public class ImportCommandTests
{
    [Fact]
    public void ImportJson_CifarOptionA_PrintsTableAndWritesWeightsThatFromWeightsRebuilds()
    {
        string onnx = OnnxTestSupport.File_("cifar_option_a.onnx");
        string outPath = Path.Combine(Path.GetTempPath(), $"import-{Guid.NewGuid():N}.safetensors");
        try
        {
            var (code, stdout, stderr) = CliTests.Run("import", onnx, "--out", outPath, "--json");
            code.Should().Be(0, stderr);
            using var doc = JsonDocument.Parse(stdout);
            var root = doc.RootElement;
            root.GetProperty("opset").GetInt64().Should().Be(13);
            root.GetProperty("head").GetString().Should().Be("Logits");
            root.GetProperty("hasClassifier").GetBoolean().Should().BeTrue();
            root.GetProperty("numClasses").GetInt32().Should().Be(10);
            root.GetProperty("batchNormFolded").GetBoolean().Should().BeTrue();
            root.GetProperty("inputSize").GetInt32().Should().Be(32);
            var table = root.GetProperty("table");
            table.GetProperty("block").GetString().Should().Be("Basic");
            table.GetProperty("stem").GetString().Should().Be("Cifar");
            table.GetProperty("shortcut").GetString().Should().Be("A");
            table.GetProperty("layers").EnumerateArray().Select(e => e.GetInt32()).Should().Equal(2, 2, 2);
            table.GetProperty("widths").EnumerateArray().Select(e => e.GetInt32()).Should().Equal(16, 32, 64);
            root.GetProperty("metadata").GetProperty("stage_table").GetString().Should().Contain("\"Shortcut\":\"A\"");

            // The file alone rebuilds the model, which computes what PyTorch computed.
            using var model = ResNetFactory.FromWeights(outPath);
            model.Table.Shortcut.Should().Be(ShortcutOption.A);
            model.Metadata.InputSize.Should().Be(32);
            model.Metadata.Extra!["onnx.producer"].Should().StartWith("pytorch");
            model.eval();
            var io = SafeTensorsFormat.Read(OnnxTestSupport.File_("cifar_option_a_io.safetensors"));
            using var noGrad = torch.no_grad();
            using var scope = torch.NewDisposeScope();
            OnnxTestSupport.RelativeError(model.call(io["input"].ToTensor()), io["output"].ToTensor()).Should().BeLessThanOrEqualTo(1e-4);
        }
        finally
        {
            File.Delete(outPath);
        }
    }

    [Fact]
    public void Import_Table_PrintsStagesAndHead()
    {
        string outPath = Path.Combine(Path.GetTempPath(), $"import-{Guid.NewGuid():N}.safetensors");
        try
        {
            var (code, stdout, stderr) = CliTests.Run("import", OnnxTestSupport.File_("tv_resnext_small.onnx"), "--out", outPath);
            code.Should().Be(0, stderr);
            stdout.Should().Contain("layer2").And.Contain("conv5_x").And.Contain("groups 4").And.Contain("width/group 16").And.Contain("Logits (10 classes)");
            File.Exists(outPath).Should().BeTrue();
        }
        finally
        {
            File.Delete(outPath);
        }
    }

    /// <summary>
    /// The import-truth path on the command line: a graph without metadata writes preprocessing 'unknown' and predict
    /// refuses it until --mean/--std state it; a featurizer writes a headless file that predict refuses, export turns
    /// into features, and eval refuses.
    /// </summary>
    [Fact]
    public void ImportThenPredict_UnknownPreprocessingAndHeadless_AreRefusedUntilStated()
    {
        string dir = Directory.CreateTempSubdirectory("import-truth").FullName;
        string photo = Images.ImageFixtures.Get("chelsea_png").SourcePath;
        try
        {
            string unknown = Path.Combine(dir, "unknown.safetensors");
            var (code, stdout, stderr) = CliTests.Run("import", OnnxTestSupport.File_("cifar_option_a.onnx"), "--out", unknown);
            code.Should().Be(0, stderr);
            stdout.Should().Contain("preprocessing unknown");
            (code, _, stderr) = CliTests.Run("predict", photo, "--weights", unknown);
            code.Should().Be(1);
            stderr.Should().Contain("preprocessing is unknown").And.Contain("--mean");

            string stated = Path.Combine(dir, "stated.safetensors");
            (code, stdout, stderr) = CliTests.Run("import", OnnxTestSupport.File_("cifar_option_a.onnx"), "--out", stated, "--mean", "0.5", "0.5", "0.5", "--std", "0.25", "0.25", "0.25");
            code.Should().Be(0, stderr);
            stdout.Should().Contain("mean [0.5, 0.5, 0.5]");
            (code, stdout, stderr) = CliTests.Run("predict", photo, "--weights", stated, "--top", "3");
            code.Should().Be(0, stderr);
            stdout.Should().Contain("logit");

            (code, _, stderr) = CliTests.Run("import", OnnxTestSupport.File_("cifar_option_a.onnx"), "--out", stated, "--mean", "0.5", "0.5", "0.5");
            code.Should().Be(1);
            stderr.Should().Contain("--mean and --std go together");

            // A featurizer (ResNetSharp's own export of pooled features): headless, no fabricated classifier.
            string featurizerOnnx = Path.Combine(dir, "featurizer.onnx");
            (code, _, stderr) = CliTests.Run("export", "resnet20", "--features", "pooled", "--out", featurizerOnnx);
            code.Should().Be(0, stderr);
            string headless = Path.Combine(dir, "headless.safetensors");
            (code, stdout, stderr) = CliTests.Run("import", featurizerOnnx, "--out", headless, "--json");
            code.Should().Be(0, stderr);
            using (var doc = JsonDocument.Parse(stdout))
            {
                doc.RootElement.GetProperty("headless").GetBoolean().Should().BeTrue();
                doc.RootElement.GetProperty("numClasses").GetInt32().Should().Be(0);
                doc.RootElement.GetProperty("preprocessingKnown").GetBoolean().Should().BeTrue("ResNetSharp's exporter records it");
            }

            (code, _, stderr) = CliTests.Run("predict", photo, "--weights", headless);
            code.Should().Be(1);
            stderr.Should().Contain("headless").And.Contain("no classifier");

            // ML.NET's featurizer with its own preprocessing graph: headless, BGR, 0 … 255, mean image.
            string mlnet = Path.Combine(dir, "mlnet.safetensors");
            (code, stdout, stderr) = CliTests.Run("import", Path.Combine(AppContext.BaseDirectory, PretrainedBackbones.MlNetResNet18RelativePath), "--out", mlnet,
                "--preprocessing-graph", Path.Combine(AppContext.BaseDirectory, PretrainedBackbones.MlNetResNet18PreprocessRelativePath));
            code.Should().Be(0, stderr);
            stdout.Should().Contain("no classifier in the graph: written headless").And.Contain("BGR, pixels in [0, 255]").And.Contain("3×224×224 mean image");
            using (var imported = ResNetFactory.FromWeights(mlnet))
            using (var reference = PretrainedBackbones.MlNetResNet18())
            {
                imported.IsHeadless.Should().BeTrue();
                imported.Metadata.MeanImage.Should().Equal(reference.Metadata.MeanImage);
                imported.Metadata.ChannelOrder.Should().Be(ChannelOrder.Bgr);
            }

            string reexport = Path.Combine(dir, "reexport.onnx");
            (code, stdout, stderr) = CliTests.Run("export", "--weights", headless, "--out", reexport, "--json");
            code.Should().Be(0, stderr);
            using (var doc = JsonDocument.Parse(stdout))
            {
                doc.RootElement.GetProperty("output").GetString().Should().Be("pooled");
                doc.RootElement.GetProperty("outputs").EnumerateArray().Select(e => e.GetString()).Should().Equal("features");
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Import_NotOnnx_ExitsOneWithOneLineAndWritesNothing()
    {
        string bad = Path.Combine(Path.GetTempPath(), $"bad-{Guid.NewGuid():N}.onnx");
        string outPath = bad + ".safetensors";
        File.WriteAllBytes(bad, new byte[] { 0x08, 0x07, 0x12, 0x40, 0x01 });
        try
        {
            var (code, _, stderr) = CliTests.Run("import", bad, "--out", outPath);
            code.Should().Be(1);
            stderr.Split('\n').Should().ContainSingle().Which.Should().StartWith("resnet: error: ").And.Contain(bad);
            File.Exists(outPath).Should().BeFalse();
        }
        finally
        {
            File.Delete(bad);
        }
    }

    [Fact]
    public void Import_WithoutOut_ExitsTwo()
    {
        var (code, _, stderr) = CliTests.Run("import", "model.onnx");
        code.Should().Be(2);
        stderr.Should().Contain("--out");
    }
}
