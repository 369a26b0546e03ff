using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using FluentAssertions;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using ResNetSharp.Runtime;
using ResNetSharp.Onnx.Proto;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace ResNetSharp.Tests.Onnx;

/// <summary>
/// The exported graph run by ONNX Runtime 1.31 (an independent implementation of every operator) must give the
/// TorchSharp eval model's outputs, for every structure the registry uses; and torchvision's own logits for torchvision weights.
/// </summary>
public class OnnxExportTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-4;

    /// <summary>
    /// One name per structure the exporter writes (CIFAR stem with option-A shortcuts, no shortcuts, pre-activation basic
    /// and bottleneck, ImageNet stem with projections, bottleneck, grouped bottleneck), two of them at real size
    /// (resnet50, resnext50_32x4d). The other registered names are the same structures with other stage counts or widths.
    /// </summary>
    public static IEnumerable<object[]> StructuralNames =>
        new[] { "resnet20", "plain20", "preact_resnet20", "plain50", "preact_resnet50", "resnet18", "resnet50", "resnext50_32x4d" }
            .Select(n => new object[] { n });

    [Theory]
    [MemberData(nameof(StructuralNames))]
    public void ExportOnnx_EveryStructure_OnnxRuntimeMatchesEvalModel(string name)
    {
        using var scope = torch.NewDisposeScope();
        using var model = ResNetFactory.Create(name, new ResNetOptions { NumClasses = 7 });
        InferenceResNetTests.RandomizeNorms(model, 23);
        RandomizeFinalNorm(model);
        model.eval();
        int size = model.Table.Stem == StemKind.Cifar ? 32 : 64;
        torch.manual_seed(3);
        var x = torch.randn(3, 3, size, size);

        var clock = Stopwatch.StartNew();
        var bytes = OnnxExport.ToModelProto(model, new OnnxExportOptions()).ToByteArray();
        var exported = clock.Elapsed;
        // Basic graph optimisations only: ORT's layout transforms of a 100M-parameter graph cost seconds and test nothing here.
        using var session = new InferenceSession(bytes, new SessionOptions { IntraOpNumThreads = 2, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_BASIC });
        var loaded = clock.Elapsed;
        using var noGrad = torch.no_grad();

        var expected = model.call(x);
        double err3 = Error(Run(session, x, "logits"), expected);
        double err1 = Error(Run(session, x[..1], "logits"), expected[..1]); // eval mode: images are independent
        output.WriteLine($"{name}: batch 3 {err3:E2}, batch 1 {err1:E2} of the logits' scale; export {exported.TotalSeconds:F1} s, ORT load {(loaded - exported).TotalSeconds:F1} s, runs {(clock.Elapsed - loaded).TotalSeconds:F1} s");
        err3.Should().BeLessThanOrEqualTo(Tolerance);
        err1.Should().BeLessThanOrEqualTo(Tolerance);
    }

    [Fact]
    public void ExportOnnx_CustomTablesFrozenNormsDilationAndDropPath_MatchEvalModel()
    {
        using var scope = torch.NewDisposeScope();
        // Detection-style backbone: frozen BN, conv4/conv5 dilated (output stride 8), stochastic depth (an identity in eval).
        using var backbone = ResNetFactory.Create("resnet18", new ResNetOptions
        {
            NumClasses = 4, FrozenBatchNorm = true, ReplaceStrideWithDilation = new[] { false, true, true }, DropPathRate = 0.2,
        });
        torch.manual_seed(5);
        using (torch.no_grad())
        {
            foreach (var frozen in backbone.modules().OfType<FrozenBatchNorm2d>())
            {
                frozen.RunningMean.copy_(torch.randn(frozen.Channels) * 0.2);
                frozen.RunningVar.copy_(torch.rand(frozen.Channels) + 0.5);
                frozen.Weight.copy_(torch.rand(frozen.Channels) + 0.5);
            }
        }

        // The paper's v1 bottleneck with option-C projections everywhere, grouped 3×3 convs, a CIFAR stem and one input channel.
        var table = new StageTable
        {
            Block = BlockKind.Bottleneck, Layers = new[] { 1, 2 }, Widths = new[] { 16, 32 }, Strides = new[] { 1, 2 }, Stem = StemKind.Cifar,
            StemWidth = 16, Groups = 2, WidthPerGroup = 32, StridePlacement = StridePlacement.V1, Shortcut = ShortcutOption.C,
        };
        using var custom = ResNetFactory.Create(table, new ResNetOptions { InChannels = 1, NumClasses = 6 });
        InferenceResNetTests.RandomizeNorms(custom, 47);
        foreach (var (model, x) in new[] { (backbone, torch.randn(2, 3, 48, 64)), (custom, torch.randn(3, 1, 20, 24)) })
        {
            model.eval();
            foreach (bool keep in new[] { false, true })
            {
                using var session = Session(model, new OnnxExportOptions { KeepBatchNorm = keep });
                using var noGrad = torch.no_grad();
                Error(Run(session, x, "logits"), model.call(x)).Should().BeLessThanOrEqualTo(Tolerance, $"{model.ModelName}, BN kept: {keep}");
            }
        }
    }

    [Theory]
    [InlineData("resnet18")]
    [InlineData("resnet20")]
    [InlineData("preact_resnet20")]
    [InlineData("resnext50_32x4d")]
    public void ExportOnnx_KeepBatchNorm_WritesBatchNormalizationNodesAndMatches(string name)
    {
        using var scope = torch.NewDisposeScope();
        using var model = ResNetFactory.Create(name, new ResNetOptions { NumClasses = 5 });
        InferenceResNetTests.RandomizeNorms(model, 29);
        RandomizeFinalNorm(model);
        model.eval();
        var proto = OnnxExport.ToModelProto(model, new OnnxExportOptions { KeepBatchNorm = true });
        proto.Graph.Node.Count(n => n.OpType == "BatchNormalization").Should().Be(model.modules().OfType<TorchSharp.Modules.BatchNorm2d>().Count());
        proto.Graph.Node.Should().NotContain(n => n.OpType == "Mul", "no BN is folded into an affine op");
        proto.Graph.Initializer.Select(i => i.Name).Should().Contain(model.Table.PreActivation ? "layer1.0.bn1.running_var" : "bn1.running_var");

        torch.manual_seed(4);
        var x = torch.randn(3, 3, model.MinInputSize * 2, model.MinInputSize * 2);
        using var session = new InferenceSession(proto.ToByteArray());
        using var noGrad = torch.no_grad();
        Error(Run(session, x, "logits"), model.call(x)).Should().BeLessThanOrEqualTo(Tolerance);
    }

    [Fact]
    public void ExportOnnx_PooledFeatures_MatchPreLogitsAtAnySize()
    {
        using var scope = torch.NewDisposeScope();
        using var model = ResNetFactory.Create("resnet50", new ResNetOptions { NumClasses = 3 });
        InferenceResNetTests.RandomizeNorms(model, 31);
        model.eval();
        using var session = Session(model, new OnnxExportOptions { Output = OnnxOutput.PooledFeatures });
        session.OutputMetadata.Keys.Should().Equal("features");
        using var noGrad = torch.no_grad();
        foreach (var (h, w) in new[] { (64, 64), (96, 70) })
        {
            var x = torch.randn(2, 3, h, w);
            var expected = model.ForwardHead(model.ForwardFeatures(x), preLogits: true);
            expected.shape.Should().Equal(2, 2048);
            Error(Run(session, x, "features"), expected).Should().BeLessThanOrEqualTo(Tolerance, $"dynamic height and width ({h}×{w})");
        }
    }

    [Theory]
    [InlineData("resnet18", 64, 96)]
    [InlineData("resnet20", 32, 40)]
    [InlineData("preact_resnet18", 64, 64)]
    public void ExportOnnx_FeatureMaps_OneOutputPerStage(string name, int height, int width)
    {
        using var scope = torch.NewDisposeScope();
        using var model = ResNetFactory.Create(name, new ResNetOptions { NumClasses = 3 });
        InferenceResNetTests.RandomizeNorms(model, 37);
        RandomizeFinalNorm(model);
        model.eval();
        using var session = Session(model, new OnnxExportOptions { Output = OnnxOutput.FeatureMaps });
        var levels = model.FeatureInfo.Skip(1).Select(f => f.Level).ToArray();
        session.OutputMetadata.Keys.Should().Equal(levels);
        using var noGrad = torch.no_grad();
        var x = torch.randn(2, 3, height, width);
        var expected = model.ForwardFeatureMaps(x, Enumerable.Range(1, levels.Length).ToArray());
        var actual = RunAll(session, x);
        for (int i = 0; i < levels.Length; i++)
        {
            var got = actual[levels[i]];
            got.shape.Should().Equal(expected[i].shape);
            Error(got, expected[i]).Should().BeLessThanOrEqualTo(Tolerance, levels[i]);
        }
    }

    [Fact]
    public void ExportOnnx_TorchvisionResNet50At224_MatchesTorchvisionLogits()
    {
        // tools/make_fixtures.py: torchvision 0.14's ResNet-50 (seeded weights, trained BN statistics) on 2×3×224×224.
        var io = SafeTensorsFormat.Read(Fixtures.File_("weights_resnet50_io224.safetensors"));
        using var model = ResNetFactory.Create("resnet50");
        model.LoadWeights(Fixtures.File_("weights_resnet50.safetensors")).Missing.Should().BeEmpty();
        model.eval();
        using var scope = torch.NewDisposeScope();
        var x = io["input"].ToTensor();
        using var session = Session(model, new OnnxExportOptions());
        double logits = Error(Run(session, x, "logits"), io["logits"].ToTensor());
        using var features = Session(model, new OnnxExportOptions { Output = OnnxOutput.PooledFeatures });
        double pooled = Error(Run(features, x, "features"), io["pooled"].ToTensor());
        output.WriteLine($"resnet50 224²: logits {logits:E2}, pooled features {pooled:E2} of torchvision's scale");
        logits.Should().BeLessThanOrEqualTo(Tolerance);
        pooled.Should().BeLessThanOrEqualTo(Tolerance);
    }

    [Fact]
    public void ExportOnnx_WritesMetadataOpsetAndDynamicAxes()
    {
        using var model = ResNetFactory.Create("resnet20");
        model.Metadata = model.Metadata with { ClassNames = Enumerable.Range(0, 10).Select(i => $"class {i}").ToArray() };
        string dir = WeightsTestSupport.TempDir();
        string path = Path.Combine(dir, "r20.onnx");
        var result = model.ExportOnnx(path);
        result.Path.Should().Be(path);
        result.Bytes.Should().Be(new FileInfo(path).Length);
        result.Opset.Should().Be(17);
        result.Outputs.Should().Equal("logits");
        result.Operators.Should().Equal("Add", "Conv", "Flatten", "Gemm", "GlobalAveragePool", "Pad", "Relu", "Slice");

        var proto = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        proto.ProducerName.Should().Be("ResNetSharp");
        proto.OpsetImport.Single().Version.Should().Be(17);
        proto.IrVersion.Should().Be(8);
        var meta = proto.MetadataProps.ToDictionary(p => p.Key, p => p.Value);
        meta.Should().Contain(model.Metadata.ToDictionary());
        ResNetSharp.Metadata.ModelMetadata.FromDictionary(meta)!.ClassNames.Should().Equal(model.Metadata.ClassNames);
        var input = proto.Graph.Input.Single().Type.TensorType.Shape.Dim;
        input.Select(d => d.DimParam).Should().Equal("batch", "", "height", "width");
        input[1].DimValue.Should().Be(3);
        Directory.GetFiles(dir).Should().Equal(path);
    }

    [Fact]
    public void ExportOnnx_OnnxCheckerAcceptsDefaultKeepBatchNormAndFeatureExports()
    {
        // onnx 1.12's checker (Debian python3-onnx): full model check, including shape inference.
        using var model = ResNetFactory.Create("resnet20");
        using var preact = ResNetFactory.Create("preact_resnet20");
        string dir = WeightsTestSupport.TempDir();
        var files = new[]
        {
            model.ExportOnnx(Path.Combine(dir, "a.onnx")).Path,
            model.ExportOnnx(Path.Combine(dir, "b.onnx"), new OnnxExportOptions { KeepBatchNorm = true, Opset = 13 }).Path,
            preact.ExportOnnx(Path.Combine(dir, "c.onnx"), new OnnxExportOptions { Output = OnnxOutput.FeatureMaps }).Path,
        };
        string script = "import sys, onnx\nfor f in sys.argv[1:]:\n    onnx.checker.check_model(onnx.load(f), full_check=True)\nprint('ok')";
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        foreach (var f in files)
        {
            psi.ArgumentList.Add(f);
        }

        using var p = Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        (p.ExitCode, stdout.Trim()).Should().Be((0, "ok"), stderr);
    }

    [Theory]
    [InlineData(OnnxExportOptions.MinOpset)]
    [InlineData(OnnxExportOptions.MaxOpset)]
    [InlineData(22)]
    public void ExportOnnx_OpsetRange_RunsInOnnxRuntime(int opset)
    {
        using var scope = torch.NewDisposeScope();
        using var model = ResNetFactory.Create("resnet20");
        InferenceResNetTests.RandomizeNorms(model, 41);
        model.eval();
        using var session = Session(model, new OnnxExportOptions { Opset = opset });
        var x = torch.randn(2, 3, 32, 32);
        using var noGrad = torch.no_grad();
        Error(Run(session, x, "logits"), model.call(x)).Should().BeLessThanOrEqualTo(Tolerance);
    }

    [Theory]
    [InlineData(OnnxExportOptions.MinOpset - 1)]
    [InlineData(OnnxExportOptions.MaxOpset + 1)]
    public void ExportOnnx_OpsetOutOfRange_ThrowsNamingTheRange(int opset)
    {
        using var model = ResNetFactory.Create("resnet20");
        string path = Path.Combine(WeightsTestSupport.TempDir(), "x.onnx");
        model.Invoking(m => m.ExportOnnx(path, new OnnxExportOptions { Opset = opset }))
            .Should().Throw<ArgumentOutOfRangeException>().WithMessage($"*opset {opset}*expected 13 … {OnnxExportOptions.MaxOpset}*");
        File.Exists(path).Should().BeFalse();
    }

    [Fact]
    public void ExportOnnx_MissingFolder_ThrowsDirectoryNotFound()
    {
        using var model = ResNetFactory.Create("resnet20");
        string path = Path.Combine(WeightsTestSupport.TempDir(), "no-such-folder", "x.onnx");
        model.Invoking(m => m.ExportOnnx(path)).Should().Throw<DirectoryNotFoundException>().WithMessage("*no-such-folder*does not exist*");
    }

    [Fact]
    public void ExportOnnx_FailedWrite_LeavesThePreviousFileIntact()
    {
        using var model = ResNetFactory.Create("resnet20");
        string dir = WeightsTestSupport.TempDir();
        string path = Path.Combine(dir, "model.onnx");
        model.ExportOnnx(path);
        byte[] before = File.ReadAllBytes(path);
        using var other = ResNetFactory.Create("resnet32");
        using (TestSeams.Inject(wrapWrite: s => new FailingStream(s, failAfter: 4096)))
        {
            other.Invoking(m => m.ExportOnnx(path)).Should().Throw<IOException>().WithMessage("*disk full*");
        }

        other.Invoking(m => m.ExportOnnx(path + ".unused")).Should().NotThrow("the seam ends with its scope");
        File.Delete(path + ".unused");
        File.ReadAllBytes(path).Should().Equal(before);
        Directory.GetFiles(dir).Should().Equal(new[] { path }, "the temporary file is removed");
    }

    /// <summary>The final BN of pre-activation networks (RandomizeNorms covers it too, but be explicit that it is not the identity).</summary>
    private static void RandomizeFinalNorm(ResNet model)
    {
        if (model.FinalNorm is TorchSharp.Modules.BatchNorm2d bn)
        {
            using var noGrad = torch.no_grad();
            bn.running_mean!.add_(0.1);
        }
    }

    private static InferenceSession Session(ResNet model, OnnxExportOptions options) =>
        new(OnnxExport.ToModelProto(model, options).ToByteArray(), new SessionOptions { IntraOpNumThreads = 2 });

    private static Tensor Run(InferenceSession session, Tensor x, string name) => RunAll(session, x)[name];

    private static Dictionary<string, Tensor> RunAll(InferenceSession session, Tensor x)
    {
        var data = x.contiguous().data<float>().ToArray();
        var input = new DenseTensor<float>(data, x.shape.Select(d => (int)d).ToArray());
        using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor("input", input) });
        return results.ToDictionary(r => r.Name, r =>
        {
            var t = r.AsTensor<float>();
            return torch.tensor(t.ToArray(), t.Dimensions.ToArray().Select(d => (long)d).ToArray());
        });
    }

    private static double Error(Tensor actual, Tensor expected)
    {
        actual.shape.Should().Equal(expected.shape);
        return WeightsTestSupport.RelativeError(actual, expected);
    }

    private sealed class FailingStream(Stream inner, long failAfter) : Stream
    {
        private long written;

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => inner.Length;

        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }

        public override void Flush() => inner.Flush();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count)
        {
            written += count;
            if (written > failAfter)
            {
                throw new IOException("disk full (simulated)");
            }

            inner.Write(buffer, offset, count);
        }
    }
}
