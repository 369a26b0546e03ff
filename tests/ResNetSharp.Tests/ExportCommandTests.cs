using System.IO;
using System.Linq;
using System.Text.Json;
using FluentAssertions;
using ResNetSharp.Onnx.Proto;
using Xunit;

namespace ResNetSharp.Tests;

/// <summary><c>resnet export</c>, run as a real process: exit codes, JSON fields and the file it writes.</summary>
public class ExportCommandTests
{
    [Fact]
    public void Export_NamedModelJson_WritesTheOnnxFileAndDescribesIt()
    {
        string dir = WeightsTestSupport.TempDir();
        string path = Path.Combine(dir, "r20.onnx");
        var (code, stdout, stderr) = CliTests.Run("export", "resnet20", "--out", path, "--opset", "13", "--json");
        code.Should().Be(0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        root.GetProperty("name").GetString().Should().Be("resnet20");
        root.GetProperty("path").GetString().Should().Be(path);
        root.GetProperty("bytes").GetInt64().Should().Be(new FileInfo(path).Length);
        root.GetProperty("opset").GetInt32().Should().Be(13);
        root.GetProperty("output").GetString().Should().Be("logits");
        root.GetProperty("keepBatchNorm").GetBoolean().Should().BeFalse();
        root.GetProperty("outputs").EnumerateArray().Select(o => o.GetString()).Should().Equal("logits");
        root.GetProperty("operators").EnumerateArray().Select(o => o.GetString()).Should().Contain(new[] { "Conv", "Pad", "Slice" }).And.NotContain("BatchNormalization");
        root.GetProperty("numClasses").GetInt32().Should().Be(10);
        ModelProto.Parser.ParseFrom(File.ReadAllBytes(path)).OpsetImport.Single().Version.Should().Be(13);
    }

    [Fact]
    public void Export_WeightsWithoutName_RebuildsFromMetadata()
    {
        string dir = WeightsTestSupport.TempDir();
        string weights = Path.Combine(dir, "tiny.safetensors");
        using (var model = WeightsTestSupport.Tiny(numClasses: 4))
        {
            model.SaveWeights(weights);
        }

        string path = Path.Combine(dir, "tiny.onnx");
        var (code, stdout, stderr) = CliTests.Run("export", "--weights", weights, "--out", path, "--features", "pooled", "--keep-bn", "--json");
        code.Should().Be(0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        root.GetProperty("numClasses").GetInt32().Should().Be(4, "the architecture and head come from the file's metadata");
        root.GetProperty("weights").GetString().Should().Be(weights);
        root.GetProperty("output").GetString().Should().Be("pooled");
        root.GetProperty("keepBatchNorm").GetBoolean().Should().BeTrue();
        root.GetProperty("outputs").EnumerateArray().Select(o => o.GetString()).Should().Equal("features");
        root.GetProperty("featureChannels").GetInt64().Should().Be(16);
        var proto = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        proto.Graph.Node.Should().Contain(n => n.OpType == "BatchNormalization");
        proto.MetadataProps.Should().Contain(p => p.Key == "num_classes" && p.Value == "4");
    }

    [Theory]
    [InlineData("export resnet20 --out {dir}/x.onnx --opset 12", 1, "*--opset 12*13 to*")]
    [InlineData("export resnet20 --out {dir}/missing/x.onnx", 1, "*missing*does not exist*")]
    [InlineData("export --out {dir}/x.onnx", 1, "*model name*--weights*")]
    [InlineData("export resnet20", 1, "*Give either --out FILE.onnx or --triton DIR*")]
    public void Export_BadInput_ExitsWithOneClearError(string commandLine, int exitCode, string message)
    {
        string dir = WeightsTestSupport.TempDir();
        var (code, stdout, stderr) = CliTests.Run(commandLine.Replace("{dir}", dir).Split(' '));
        code.Should().Be(exitCode, stdout);
        stderr.Should().Match(message);
        stderr.Split('\n').Should().HaveCount(1);
        Directory.GetFiles(dir).Should().BeEmpty();
    }
}
