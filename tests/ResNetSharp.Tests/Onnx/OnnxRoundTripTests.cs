using System;
using System.Linq;
using FluentAssertions;
using Google.Protobuf;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ResNetSharp.Tests.Onnx;

/// <summary>
/// Export → import: the importer recognises the exporter's graph as the very stage table it came from, and the
/// imported model computes what the original computed — with BatchNorm folded into the convs and with it kept.
/// </summary>
public class OnnxRoundTripTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("resnet18", false)]
    [InlineData("resnet18", true)]
    [InlineData("resnet20", false)]        // option A: Slice + Pad shortcuts
    [InlineData("plain20", false)]
    [InlineData("preact_resnet20", false)] // pre-activation: affine (Mul + Add) nodes
    [InlineData("preact_resnet20", true)]
    [InlineData("resnext50_32x4d", false)]
    [InlineData("resnet50", true)]
    public void ExportThenImport_RegisteredModel_SameTableAndSameOutputs(string name, bool keepBatchNorm)
    {
        using var scope = torch.NewDisposeScope();
        using var model = ResNetFactory.Create(name, new ResNetOptions { NumClasses = 6 });
        InferenceResNetTests.RandomizeNorms(model, 41);
        model.eval();
        byte[] bytes = OnnxExport.ToModelProto(model, new OnnxExportOptions { KeepBatchNorm = keepBatchNorm }).ToByteArray();

        using var imported = OnnxImporter.Import(bytes, $"{name}.onnx");
        ModelMetadata.TableEquals(imported.Table, model.Table).Should().BeTrue($"the importer should recognise {model.Table}, got {imported.Table}");
        imported.HasClassifier.Should().BeTrue();
        imported.Model.NumClasses.Should().Be(6);
        imported.Model.Metadata.Architecture.Should().Be(name, "the exporter's metadata_props name the architecture");

        int size = model.Table.Stem == StemKind.Cifar ? 32 : 64;
        torch.manual_seed(7);
        var x = torch.randn(2, 3, size, size);
        using var noGrad = torch.no_grad();
        imported.Model.eval();
        var expected = model.call(x);
        var actual = imported.Model.call(x);
        double scale = expected.abs().max().item<float>();
        double err = (actual - expected).abs().max().item<float>() / scale;
        output.WriteLine($"{name} (BN {(keepBatchNorm ? "kept" : "folded")}): max error {err:E2} of the logits' scale {scale:F3}");
        err.Should().BeLessThan(1e-5);
    }
}
