using System.IO;
using System.Linq;
using FluentAssertions;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Xunit;

namespace ResNetSharp.Tests;

/// <summary>
/// <c>resnet export --triton DIR</c>: the model repository entry's config (text written out here from Triton's
/// model_config.proto field names), the ONNX file as ONNX Runtime sees it, and the labels file.
/// </summary>
public class TritonExportTests
{
    private static readonly string[] ClassNames = ["tabby cat", "dog", "hot-air balloon", "7"];

    private static string TinyWeights(string dir, bool names)
    {
        string weights = Path.Combine(dir, "tiny.safetensors");
        using var model = WeightsTestSupport.Tiny(numClasses: 4);
        WeightsTestSupport.Randomise(model, 5);
        if (names)
        {
            model.Metadata = model.Metadata with { ClassNames = ClassNames };
        }

        model.SaveWeights(weights);
        return weights;
    }

    [Fact]
    public void Logits_WriteConfigModelAndLabels()
    {
        string dir = WeightsTestSupport.TempDir();
        string weights = TinyWeights(dir, names: true);
        string repo = Path.Combine(dir, "repo");
        Directory.CreateDirectory(repo);
        var (code, stdout, stderr) = CliTests.Run("export", "--weights", weights, "--triton", repo, "--triton-name", "tiny_cls", "--max-batch", "8");
        code.Should().Be(0, stderr);
        stdout.Should().Contain("config.pbtxt, 1/model.onnx, labels.txt (4 classes)");

        string model = Path.Combine(repo, "tiny_cls");
        Directory.GetFileSystemEntries(model).Select(Path.GetFileName).Order().Should().Equal("1", "config.pbtxt", "labels.txt");
        File.ReadAllText(Path.Combine(model, "config.pbtxt")).Should().Be(
            """
            name: "tiny_cls"
            backend: "onnxruntime"
            max_batch_size: 8
            input [
              {
                name: "input"
                data_type: TYPE_FP32
                format: FORMAT_NCHW
                dims: [ 3, -1, -1 ]
              }
            ]
            output [
              {
                name: "logits"
                data_type: TYPE_FP32
                dims: [ 4 ]
                label_filename: "labels.txt"
              }
            ]
            instance_group [
              {
                count: 1
                kind: KIND_CPU
              }
            ]
            dynamic_batching { }

            """.Replace("\r\n", "\n", System.StringComparison.Ordinal));
        File.ReadAllLines(Path.Combine(model, "labels.txt")).Should().Equal(ClassNames);

        // The names and shapes the config states are the ONNX file's (batch dimension and size dynamic).
        using var session = new InferenceSession(Path.Combine(model, "1", "model.onnx"));
        session.InputMetadata.Keys.Should().Equal("input");
        session.InputMetadata["input"].Dimensions.Should().Equal(-1, 3, -1, -1);
        session.InputMetadata["input"].ElementType.Should().Be<float>();
        session.OutputMetadata.Keys.Should().Equal("logits");
        session.OutputMetadata["logits"].Dimensions.Should().Equal(-1, 4);
        session.OutputMetadata["logits"].ElementType.Should().Be<float>();
        var input = new DenseTensor<float>(Enumerable.Range(0, 2 * 3 * 40 * 48).Select(i => (i % 17) / 17f).ToArray(), new[] { 2, 3, 40, 48 });
        using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor("input", input) });
        results.Single().AsTensor<float>().Dimensions.ToArray().Should().Equal(2, 4);
    }

    [Fact]
    public void PooledFeatures_OnGpuInstances_HaveNoLabels()
    {
        string dir = WeightsTestSupport.TempDir();
        string repo = Path.Combine(dir, "repo");
        Directory.CreateDirectory(repo);
        var (code, _, stderr) = CliTests.Run("export", "resnet20", "--triton", repo, "--features", "pooled", "--instance", "gpu");
        code.Should().Be(0, stderr);

        // Default name: the architecture's.
        string model = Path.Combine(repo, "resnet20");
        File.Exists(Path.Combine(model, "labels.txt")).Should().BeFalse("pooled features are not a classification");
        var config = File.ReadAllText(Path.Combine(model, "config.pbtxt")).Split('\n');
        config.Should().Contain("name: \"resnet20\"").And.Contain("max_batch_size: 16").And.Contain("    kind: KIND_GPU")
            .And.Contain("    name: \"features\"").And.Contain("    dims: [ 64 ]").And.NotContain(l => l.Contains("label_filename"));
        using var session = new InferenceSession(Path.Combine(model, "1", "model.onnx"));
        session.OutputMetadata.Keys.Should().Equal("features");
        session.OutputMetadata["features"].Dimensions.Should().Equal(-1, 64);
    }

    [Fact]
    public void LabelsWithoutClassNames_AreTheIndices()
    {
        string dir = WeightsTestSupport.TempDir();
        string weights = TinyWeights(dir, names: false);
        string repo = Path.Combine(dir, "repo");
        Directory.CreateDirectory(repo);
        var (code, _, stderr) = CliTests.Run("export", "--weights", weights, "--triton", repo, "--triton-name", "t");
        code.Should().Be(0, stderr);
        File.ReadAllLines(Path.Combine(repo, "t", "labels.txt")).Should().Equal("0", "1", "2", "3");
    }

    [Theory]
    [InlineData("missing-repo", "Triton model repository", "does not exist")]
    [InlineData("maps", "--features maps", "not --features maps")]
    [InlineData("bad-name", "../up", "is not a plain folder name")]
    [InlineData("both", "--out", "Give either --out FILE.onnx or --triton DIR")]
    [InlineData("batch", "0", "--max-batch must be ≥ 1")]
    [InlineData("instance", "tpu", "Unknown --instance 'tpu': expected cpu, gpu or auto")]
    public void BadArguments_OneErrorLine(string what, string value, string message)
    {
        string dir = WeightsTestSupport.TempDir();
        string weights = TinyWeights(dir, names: false);
        string repo = Path.Combine(dir, "repo");
        Directory.CreateDirectory(repo);
        string[] args = what switch
        {
            "missing-repo" => ["--triton", Path.Combine(dir, "nope")],
            "maps" => ["--triton", repo, "--features", "maps"],
            "bad-name" => ["--triton", repo, "--triton-name", value],
            "both" => ["--triton", repo, "--out", Path.Combine(dir, "m.onnx")],
            "batch" => ["--triton", repo, "--max-batch", value],
            _ => ["--triton", repo, "--instance", value],
        };
        var (code, _, stderr) = CliTests.Run(["export", "--weights", weights, .. args]);
        code.Should().Be(1);
        stderr.Split('\n').Should().ContainSingle().Which.Should().StartWith("resnet: error: ").And.Contain(message);
        Directory.GetFileSystemEntries(repo).Should().BeEmpty();
    }
}
