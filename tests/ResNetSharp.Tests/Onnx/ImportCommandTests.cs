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
            root.GetProperty("head").GetString().Should().Be("Classifier");
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
            stdout.Should().Contain("layer2").And.Contain("conv5_x").And.Contain("groups 4").And.Contain("width/group 16").And.Contain("Classifier (10 classes)");
            File.Exists(outPath).Should().BeTrue();
        }
        finally
        {
            File.Delete(outPath);
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
