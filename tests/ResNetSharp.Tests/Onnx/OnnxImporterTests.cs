using System;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using FluentAssertions;
using Google.Protobuf;
using ResNetSharp.Onnx;
using ResNetSharp.Onnx.Proto;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ResNetSharp.Tests.Onnx;

/// <summary>
/// Graphs written by PyTorch 1.13's exporter and by onnx.helper (tools/make_onnx_fixtures.py), each with PyTorch's own
/// output on a seeded input: the imported model must compute what PyTorch computed and what ONNX Runtime computes
/// running the same file.
/// </summary>
public class OnnxImporterTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-4;

    [Theory]
    [InlineData("tv_resnet18_bn", false)]
    [InlineData("tv_resnet18_folded", true)]
    public void Import_TorchvisionResNet18_RecognisesResNet18AndMatchesTorchAndOnnxRuntime(string name, bool folded)
    {
        using var result = OnnxImporter.Import(OnnxTestSupport.File_(name + ".onnx"));
        result.Architecture.Should().Be("resnet18");
        ModelMetadata.TableEquals(result.Table, ResNetFactory.GetTable("resnet18")).Should().BeTrue(result.Table.ToString());
        result.HasClassifier.Should().BeTrue();
        result.Model.NumClasses.Should().Be(1000);
        result.BatchNormFolded.Should().Be(folded);
        result.Opset.Should().Be(13);
        result.Blocks.Should().Be(8);
        result.Projections.Should().Be(3);
        result.InputSize.Should().Be(64, "only the batch axis is dynamic in the exported graph");
        CheckOutputs(result.Model, name);
    }

    [Fact]
    public void Import_GroupedBottleneckOpset17_RecognisesTableAndMatches()
    {
        using var result = OnnxImporter.Import(OnnxTestSupport.File_("tv_resnext_small.onnx"));
        var t = result.Table;
        t.Block.Should().Be(BlockKind.Bottleneck);
        t.Layers.Should().Equal(1, 2, 1, 1);
        t.Widths.Should().Equal(64, 128, 256, 512);
        t.Strides.Should().Equal(1, 2, 2, 2);
        t.Groups.Should().Be(4);
        t.WidthPerGroup.Should().Be(16);
        t.StridePlacement.Should().Be(StridePlacement.V1_5);
        t.Shortcut.Should().Be(ShortcutOption.B);
        result.Architecture.Should().BeNull();
        result.Model.NumClasses.Should().Be(10);
        result.Opset.Should().Be(17);
        CheckOutputs(result.Model, "tv_resnext_small");
    }

    [Fact]
    public void Import_DilatedStages_RecognisesReplaceStrideWithDilationAndMatches()
    {
        using var result = OnnxImporter.Import(OnnxTestSupport.File_("tv_dilated_small.onnx"));
        result.Table.Layers.Should().Equal(1, 1, 2, 2);
        result.Table.Strides.Should().Equal(1, 2, 2, 2);
        result.Model.Options.ReplaceStrideWithDilation.Should().Equal(false, true, true);
        result.Model.OutputStride.Should().Be(8);
        result.Model.Metadata.ReplaceStrideWithDilation.Should().Equal(false, true, true);
        CheckOutputs(result.Model, "tv_dilated_small");
    }

    [Fact]
    public void Import_CifarOptionA_RecognisesZeroPaddedShortcutsAndMatches()
    {
        using var result = OnnxImporter.Import(OnnxTestSupport.File_("cifar_option_a.onnx"));
        var t = result.Table;
        t.Stem.Should().Be(StemKind.Cifar);
        t.Shortcut.Should().Be(ShortcutOption.A);
        t.Layers.Should().Equal(2, 2, 2);
        t.Widths.Should().Equal(16, 32, 64);
        t.Strides.Should().Equal(1, 2, 2);
        result.Projections.Should().Be(0);
        result.Model.NumClasses.Should().Be(10);
        CheckOutputs(result.Model, "cifar_option_a");
    }

    [Fact]
    public void Import_OpaqueNamesAsymmetricPadsMatMulLayout_MatchesTorchAndOnnxRuntime()
    {
        using var result = OnnxImporter.Import(OnnxTestSupport.File_("opaque_asymmetric.onnx"));
        result.Architecture.Should().Be("resnet18");
        result.InputSize.Should().Be(64);
        result.Producer.Should().Be("handwritten");
        CheckOutputs(result.Model, "opaque_asymmetric");
    }

    [Theory]
    [InlineData("preact_basic_bn", "Basic [1, 2, 1, 1] × [16, 32, 64, 128], ImageNet stem, groups 1, width/group 64, v1.5, option B, pre-activation", false)]
    [InlineData("preact_bottleneck_folded", "Bottleneck [1, 1, 2, 1] × [8, 16, 32, 64], ImageNet stem, groups 1, width/group 64, v1.5, option B, pre-activation", false)]
    [InlineData("preact_cifar_option_a", "Basic [2, 1, 1] × [16, 32, 64], Cifar stem, groups 1, width/group 64, v1.5, option A, pre-activation", false)]
    [InlineData("plain_basic_folded", "Basic [2, 1, 1, 1] × [16, 32, 64, 128], ImageNet stem, groups 1, width/group 64, v1.5, option None", true)]
    [InlineData("plain_bottleneck_v1_bn", "Bottleneck [1, 1, 1, 1] × [8, 16, 32, 64], ImageNet stem, groups 1, width/group 64, v1, option None", false)]
    [InlineData("v1_bottleneck_c_bn", "Bottleneck [1, 2, 1, 1] × [8, 16, 32, 64], ImageNet stem, groups 1, width/group 64, v1, option C", false)]
    public void Import_PaperVariants_RecognisesTableAndMatches(string name, string table, bool folded)
    {
        using var result = OnnxImporter.Import(OnnxTestSupport.File_(name + ".onnx"));
        result.Table.ToString().Should().Be(table);
        result.BatchNormFolded.Should().Be(folded);
        CheckOutputs(result.Model, name);
    }

    [Fact]
    public void Import_OtherSpellings_PadNodesSameLowerSumAndMatMul_CanonicaliseToTheSameModel()
    {
        // The exporter's resnet18 rewritten as other tools write it: zero Pad nodes before the stem conv and the max pool
        // (Keras' ZeroPadding2D), auto_pad SAME_LOWER on every 3×3 conv at a fixed 64×64 input, Sum for the residual
        // adds, and MatMul + Add for the classifier. The importer must see the same model, and ONNX Runtime agrees.
        using var model = ResNetFactory.Create("resnet18", new ResNetOptions { NumClasses = 5 });
        InferenceResNetTests.RandomizeNorms(model, 17);
        model.eval();
        var proto = OnnxExport.ToModelProto(model, new OnnxExportOptions());
        var g = proto.Graph;
        foreach (var dim in g.Input[0].Type.TensorType.Shape.Dim.Skip(2))
        {
            dim.DimValue = 64;
        }

        foreach (var n in new[] { g.Node.First(n => n.OpType == "Conv"), g.Node.First(n => n.OpType == "MaxPool") })
        {
            long p = n.Attribute.First(a => a.Name == "pads").Ints[0];
            var pads = new TensorProto { Name = n.Name + ".pads", DataType = (int)TensorProto.Types.DataType.Int64 };
            pads.Dims.Add(8);
            pads.Int64Data.AddRange(new[] { 0, 0, p, p, 0, 0, p, p });
            g.Initializer.Add(pads);
            var pad = new NodeProto { OpType = "Pad", Name = n.Name + ".pad" };
            pad.Input.Add(n.Input[0]);
            pad.Input.Add(pads.Name);
            pad.Output.Add(n.Input[0] + ".padded");
            g.Node.Insert(g.Node.IndexOf(n), pad);
            n.Input[0] = pad.Output[0];
            n.Attribute.Remove(n.Attribute.First(a => a.Name == "pads"));
        }

        foreach (var conv in g.Node.Where(n => n.OpType == "Conv" && n.Attribute.First(a => a.Name == "kernel_shape").Ints[0] == 3))
        {
            conv.Attribute.Remove(conv.Attribute.First(a => a.Name == "pads"));
            conv.Attribute.Add(new AttributeProto { Name = "auto_pad", Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8("SAME_LOWER") });
        }

        foreach (var add in g.Node.Where(n => n.OpType == "Add"))
        {
            add.OpType = "Sum";
        }

        var gemm = g.Node.Single(n => n.OpType == "Gemm");
        var w = g.Initializer.Single(t => t.Name == gemm.Input[1]);
        var rows = MemoryMarshal.Cast<byte, float>(w.RawData.Span).ToArray();
        var transposed = new float[rows.Length];
        for (int k = 0; k < 5; k++)
        {
            for (int f = 0; f < 512; f++)
            {
                transposed[f * 5 + k] = rows[k * 512 + f];
            }
        }

        w.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(transposed.AsSpan()));
        w.Dims.Clear();
        w.Dims.AddRange(new long[] { 512, 5 });
        var add2 = new NodeProto { OpType = "Add", Name = "fc.bias_add" };
        add2.Input.Add("fc.product");
        add2.Input.Add(gemm.Input[2]);
        add2.Output.Add(gemm.Output[0]);
        var matmul = new NodeProto { OpType = "MatMul", Name = "fc.matmul" };
        matmul.Input.Add(gemm.Input[0]);
        matmul.Input.Add(gemm.Input[1]);
        matmul.Output.Add("fc.product");
        int at = g.Node.IndexOf(gemm);
        g.Node[at] = matmul;
        g.Node.Insert(at + 1, add2);

        byte[] bytes = proto.ToByteArray();
        using var imported = OnnxImporter.Import(bytes, "respelled.onnx");
        imported.Architecture.Should().Be("resnet18");
        imported.InputSize.Should().Be(64);
        imported.BatchNormFolded.Should().BeTrue();
        imported.Model.eval();
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(23);
        var x = torch.randn(2, 3, 64, 64);
        string path = Path.Combine(Path.GetTempPath(), $"respelled-{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(path, bytes);
        try
        {
            var ort = OnnxTestSupport.RunOnnxRuntime(path, x);
            OnnxTestSupport.RelativeError(imported.Model.call(x), model.call(x)).Should().BeLessThan(1e-5);
            OnnxTestSupport.RelativeError(imported.Model.call(x), ort).Should().BeLessThan(1e-4);
        }
        finally
        {
            File.Delete(path);
        }

        // Zeros pad a max pool as −∞ does only where nothing is negative: a Pad before a MaxPool that no ReLU feeds is refused.
        var stemRelu = g.Node.First(n => n.OpType == "Relu");
        var maxPoolPad = g.Node.Single(n => n.OpType == "Pad" && n.Name.EndsWith("maxpool.pad", StringComparison.Ordinal));
        maxPoolPad.Input[0] = stemRelu.Input[0];
        var refused = () => OnnxImporter.Import(proto.ToByteArray(), "pad-before-pool.onnx");
        refused.Should().Throw<OnnxImportException>().Where(e => e.NodeName == maxPoolPad.Name && e.Message.Contains("MaxPool"));
    }

    [Fact]
    public void Import_PreActivationStemConvWithBias_IsRefusedNotMovedIntoTheFirstNorm()
    {
        // The first block's BN and its identity shortcut both read the stem conv: its bias cannot go into that BN alone.
        using var model = ResNetFactory.Create("preact_resnet20", new ResNetOptions { NumClasses = 3 });
        var proto = OnnxExport.ToModelProto(model, new OnnxExportOptions());
        var stem = proto.Graph.Node.First(n => n.OpType == "Conv");
        var bias = proto.Graph.Initializer.Single(t => t.Name == stem.Input[2]);
        bias.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(Enumerable.Repeat(0.5f, 16).ToArray().AsSpan()));
        var act = () => OnnxImporter.Import(proto.ToByteArray(), "biased-stem.onnx");
        act.Should().Throw<OnnxImportException>().Where(e => e.NodeName == stem.Name && e.Message.Contains("bias"));
    }

    [Fact]
    public void Import_MetadataProps_CarriesPreprocessingAndClassNames()
    {
        // What an exporter writes (ModelMetadata.ToDictionary in metadata_props) comes back on the imported model.
        var model = Load("cifar_option_a.onnx");
        var written = new ModelMetadata
        {
            NumClasses = 10,
            InputSize = 32,
            CropPct = 1.0,
            Mean = new[] { 0.4914, 0.4822, 0.4465 },
            Std = new[] { 0.247, 0.243, 0.261 },
            ClassNames = Enumerable.Range(0, 10).Select(i => $"class{i}").ToArray(),
        };
        foreach (var (key, value) in written.ToDictionary())
        {
            model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        }

        using var result = OnnxImporter.Import(model.ToByteArray(), "with-metadata.onnx");
        var meta = result.Model.Metadata;
        meta.ClassNames.Should().Equal(written.ClassNames);
        meta.Mean.Should().Equal(written.Mean);
        meta.Std.Should().Equal(written.Std);
        meta.CropPct.Should().Be(1.0);
        meta.Extra!["onnx.has_classifier"].Should().Be("true");
    }

    [Fact]
    public void IdentityVariance_MakesBatchNormAnExactIdentityInFloat32()
    {
        ((float)(CanonicalGraph.IdentityVariance + 1e-5f)).Should().Be(1f);
        using var bn = nn.BatchNorm2d(4);
        bn.eval();
        using var noGrad = torch.no_grad();
        bn.running_var!.fill_(CanonicalGraph.IdentityVariance);
        using var x = torch.randn(2, 4, 5, 5) * 100;
        using var y = bn.call(x);
        (y - x).abs().max().item<float>().Should().Be(0f, "mean 0, weight 1, bias 0 and var + eps == 1 must return x bit for bit");
    }

    [Fact]
    public void Import_TruncatedFile_ThrowsNamingTheFile()
    {
        byte[] bytes = File.ReadAllBytes(OnnxTestSupport.File_("cifar_option_a.onnx"));
        var act = () => OnnxImporter.Import(bytes[..(bytes.Length / 2)], "half.onnx");
        act.Should().Throw<OnnxImportException>().WithMessage("half.onnx: *");
    }

    [Fact]
    public void Import_NotOnnx_ThrowsNotAnOnnxModel()
    {
        string path = Path.Combine(Path.GetTempPath(), $"notonnx-{Guid.NewGuid():N}.onnx");
        File.WriteAllText(path, "{\"this\": \"is json, not protobuf\"}");
        try
        {
            var act = () => OnnxImporter.Import(path);
            act.Should().Throw<OnnxImportException>().Where(e => e.Message.StartsWith(path, StringComparison.Ordinal) && e.Message.Contains("ONNX"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Import_OpsetTooOld_Throws()
    {
        var model = Load("cifar_option_a.onnx");
        model.OpsetImport[0].Version = 6;
        var act = () => OnnxImporter.Import(model.ToByteArray(), "old.onnx");
        act.Should().Throw<OnnxImportException>().WithMessage("*opset 6 is too old*");
    }

    [Fact]
    public void Import_UnsupportedOperator_ThrowsNamingTheNode()
    {
        var model = Load("cifar_option_a.onnx");
        var relu = model.Graph.Node.Select((n, i) => (n, i)).Where(p => p.n.OpType == "Relu").Skip(2).First();
        relu.n.OpType = "Tanh";
        relu.n.Name = "my_tanh";
        var act = () => OnnxImporter.Import(model.ToByteArray(), "tanh.onnx");
        var ex = act.Should().Throw<OnnxImportException>().Which;
        ex.NodeName.Should().Be("my_tanh");
        ex.OpType.Should().Be("Tanh");
        ex.NodeIndex.Should().Be(relu.i);
        ex.Message.Should().Contain("expected");
        output.WriteLine(ex.Message);
    }

    [Fact]
    public void Import_ShapesDoNotMatch_ThrowsNamingTheNode()
    {
        var model = Load("tv_resnet18_bn.onnx");
        var bn = model.Graph.Node.First(n => n.OpType == "BatchNormalization");
        var scale = model.Graph.Initializer.First(t => t.Name == bn.Input[1]);
        scale.Dims[0] = 32;
        scale.RawData = ByteString.CopyFrom(scale.RawData.Span[..(32 * 4)]);
        var act = () => OnnxImporter.Import(model.ToByteArray(), "shape.onnx");
        act.Should().Throw<OnnxImportException>().Where(e => e.OpType == "BatchNormalization" && e.Message.Contains("32 values for 64 channels"));
    }

    [Fact]
    public void Import_NotAResNet_ThrowsNamingTheNode()
    {
        // Cut every residual Add out of the graph: a plain stack of convolutions is not recognised.
        var model = Load("cifar_option_a.onnx");
        var firstAdd = model.Graph.Node.First(n => n.OpType == "Add");
        var branch = firstAdd.Input[0];
        var act = () =>
        {
            foreach (var n in model.Graph.Node.Where(n => n.Input.Contains(firstAdd.Output[0])).ToList())
            {
                for (int i = 0; i < n.Input.Count; i++)
                {
                    if (n.Input[i] == firstAdd.Output[0])
                    {
                        n.Input[i] = branch;
                    }
                }
            }

            model.Graph.Node.Remove(firstAdd);
            return OnnxImporter.Import(model.ToByteArray(), "plain.onnx");
        };
        act.Should().Throw<OnnxImportException>().Where(e => e.NodeIndex != null);
    }

    [Fact]
    public void Import_SeededMutationsAndTruncations_ThrowOnlyOnnxImportException()
    {
        // Byte flips in the graph's structure (PyTorch writes the nodes before the initializers) and truncations:
        // every outcome is a model or one OnnxImportException, never another exception or a crash.
        byte[] original = File.ReadAllBytes(OnnxTestSupport.File_("preact_cifar_option_a.onnx"));
        var rng = new Random(1010);
        int imported = 0, refused = 0;
        for (int i = 0; i < 200; i++)
        {
            byte[] bytes;
            if (i % 5 == 4)
            {
                bytes = original[..rng.Next(original.Length)];
            }
            else
            {
                bytes = (byte[])original.Clone();
                for (int k = rng.Next(1, 4); k > 0; k--)
                {
                    bytes[rng.Next(Math.Min(bytes.Length, 16_000))] = (byte)rng.Next(256);
                }
            }

            try
            {
                using var result = OnnxImporter.Import(bytes, $"mutation{i}.onnx");
                imported++;
            }
            catch (OnnxImportException ex)
            {
                ex.Message.Should().StartWith($"mutation{i}.onnx: ");
                refused++;
            }
        }

        output.WriteLine($"200 mutations: {imported} imported, {refused} refused with OnnxImportException");
        refused.Should().BeGreaterThan(80);
    }

    private static ModelProto Load(string name) => ModelProto.Parser.ParseFrom(File.ReadAllBytes(OnnxTestSupport.File_(name)));

    private void CheckOutputs(ResNet model, string name)
    {
        var io = SafeTensorsFormat.Read(OnnxTestSupport.File_(name + "_io.safetensors"));
        model.eval();
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var x = io["input"].ToTensor();
        var torchOut = io["output"].ToTensor();
        var ours = model.call(x);
        var ort = OnnxTestSupport.RunOnnxRuntime(OnnxTestSupport.File_(name + ".onnx"), x);
        double vsTorch = OnnxTestSupport.RelativeError(ours, torchOut);
        double vsOrt = OnnxTestSupport.RelativeError(ours, ort);
        output.WriteLine($"{name}: max|diff|/max|ref| vs PyTorch {vsTorch:E2}, vs ONNX Runtime {vsOrt:E2}");
        vsTorch.Should().BeLessThanOrEqualTo(Tolerance);
        vsOrt.Should().BeLessThanOrEqualTo(Tolerance);
    }
}
