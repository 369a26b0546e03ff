using System;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Text;
using FluentAssertions;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ResNetSharp.Tests;

/// <summary>
/// torch.save files written by PyTorch 1.13 itself (tools/make_fixtures.py, part pytorch_checkpoints): torchvision's
/// resnet18 in fp32 and fp16 must compute torchvision's logits; views, checkpoints and the legacy format read the same
/// tensors; hostile and broken files give an <see cref="InvalidDataException"/> naming the file and the problem.
/// </summary>
public class PyTorchFormatTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("pth_resnet18.pth", "logits", "F32")]
    [InlineData("pth_resnet18_f16.pth", "logits_f16", "F16")]
    public void LoadWeights_TorchvisionPth_ComputesTorchvisionLogits(string file, string logitsKey, string storedName)
    {
        var stored = Enum.Parse<WeightDType>(storedName);
        var io = SafeTensorsFormat.Read(Fixtures.File_("pth_resnet18_io.safetensors"));
        var weights = WeightFile.Read(Fixtures.File_(file));
        weights.Format.Should().Be(WeightFormat.PyTorch);
        weights["conv1.weight"].DType.Should().Be(stored);
        weights["bn1.num_batches_tracked"].DType.Should().Be(WeightDType.I64);

        using var model = ResNetFactory.ResNet18();
        model.eval();
        var check = model.LoadWeights(weights);
        check.Matched.Should().HaveCount(122, "every parameter and buffer of resnet18");
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        double err = WeightsTestSupport.RelativeError(model.call(io["input"].ToTensor()), io[logitsKey].ToTensor());
        output.WriteLine($"{file}: max|diff|/max|ref| = {err:E2}");
        err.Should().BeLessThan(1e-4);
    }

    [Fact]
    public void Read_TinyPth_EqualsTorchOutputsInTinyModel()
    {
        var io = SafeTensorsFormat.Read(Fixtures.File_("pth_tiny_io.safetensors"));
        using var model = WeightsTestSupport.Tiny();
        model.LoadWeights(Fixtures.File_("pth_tiny.pth"));
        model.eval();
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        WeightsTestSupport.RelativeError(model.call(io["input"].ToTensor()), io["logits"].ToTensor()).Should().BeLessThan(1e-5);
    }

    [Fact]
    public void Read_CheckpointAndLegacyFiles_HoldTheSameTensorsAsTheStateDict()
    {
        var plain = PyTorchFormat.Read(Fixtures.File_("pth_tiny.pth"));
        var checkpoint = PyTorchFormat.Read(Fixtures.File_("pth_tiny_checkpoint.pth"));
        var legacy = PyTorchFormat.Read(Fixtures.File_("pth_tiny_legacy.pth"));
        checkpoint.Metadata.Should().Contain("checkpoint.epoch", "7").And.Contain("checkpoint.arch", "tiny")
            .And.Contain("checkpoint.best_acc1", "61.25").And.Contain("checkpoint.state_dict_key", "state_dict");
        foreach (var other in new[] { checkpoint, legacy })
        {
            other.Tensors.Select(t => t.Name).Should().Equal(plain.Tensors.Select(t => t.Name));
            foreach (var t in plain.Tensors)
            {
                other[t.Name].Shape.Should().Equal(t.Shape);
                other[t.Name].Data.ToArray().Should().Equal(t.Data.ToArray(), t.Name);
            }
        }
    }

    [Fact]
    public void Read_StridedViewsSharingAStorage_GiveTorchsContiguousValues()
    {
        var views = PyTorchFormat.Read(Fixtures.File_("pth_views.pth"));
        var expected = SafeTensorsFormat.Read(Fixtures.File_("pth_views_expected.safetensors"));
        views.Tensors.Select(t => t.Name).Should().Equal("transposed", "rows", "columns", "every_other", "scalar", "empty", "int64");
        foreach (var e in expected.Tensors)
        {
            views[e.Name].DType.Should().Be(e.DType, e.Name);
            views[e.Name].Shape.Should().Equal(e.Shape, e.Name);
            views[e.Name].Data.ToArray().Should().Equal(e.Data.ToArray(), e.Name);
        }
    }

    [Fact]
    public void Read_PickleNamingOsSystem_IsRefusedNamingTheGlobal()
    {
        string path = Fixtures.File_("pth_evil_system.pth");
        var act = () => WeightFile.Read(path);
        act.Should().Throw<InvalidDataException>().Which.Message.Should()
            .StartWith(path).And.Contain("'posix.system'").And.Contain("refused");
    }

    [Fact]
    public void Read_TruncatedZip_ThrowsInvalidDataNamingTheFile()
    {
        string path = Fixtures.File_("pth_truncated.pth");
        var act = () => WeightFile.Read(path);
        act.Should().Throw<InvalidDataException>().Which.Message.Should().StartWith(path).And.Contain("zip");
    }

    [Fact]
    public void Read_FlippedBitInAStorage_FailsTheZipCrcCheck()
    {
        byte[] bytes = File.ReadAllBytes(Fixtures.File_("pth_tiny.pth"));
        bytes[bytes.Length / 2] ^= 0x10; // inside the data of some storage: the bytes still parse, only the CRC-32 tells
        var act = () => PyTorchFormat.Read(new MemoryStream(bytes), "flipped.pth");
        act.Should().Throw<InvalidDataException>().WithMessage("flipped.pth: zip entry 'pth_tiny/data/*' is damaged: CRC-32*");
    }

    [Fact]
    public void Read_ArchiveWithoutOneStorage_NamesTheMissingEntry()
    {
        byte[] bytes = Rewrite(entry => entry.EndsWith("/data/3", StringComparison.Ordinal) ? null : Array.Empty<byte>());
        var act = () => PyTorchFormat.Read(new MemoryStream(bytes), "no-storage.pth");
        act.Should().Throw<InvalidDataException>().WithMessage("no-storage.pth: storage '3' is missing*data/3*");
    }

    [Fact]
    public void Read_PickleWithForbiddenOpcode_NamesTheOpcode()
    {
        // INST ('i') instantiates a class by name: never allowed.
        byte[] pickle = Encoding.Latin1.GetBytes("\u0080\u0002(iposix\nsystem\n.");
        byte[] bytes = Rewrite(entry => entry.EndsWith("data.pkl", StringComparison.Ordinal) ? pickle : Array.Empty<byte>());
        var act = () => PyTorchFormat.Read(new MemoryStream(bytes), "opcode.pth");
        act.Should().Throw<InvalidDataException>().WithMessage("opcode.pth*opcode 0x69 ('i') is not allowed*");
    }

    [Fact]
    public void Read_StorageClaimingAbsurdSize_IsRefusedBeforeAllocating()
    {
        // The same pickle with the first storage's element count (BININT1 after 'cpu') replaced by 2^62 via LONG1.
        byte[] original = Entry("data.pkl");
        int cpu = IndexOf(original, Encoding.ASCII.GetBytes("cpu"));
        int at = Array.IndexOf(original, (byte)'K', cpu); // BININT1 numel
        var patched = original[..at].Concat(new byte[] { 0x8a, 8, 0, 0, 0, 0, 0, 0, 0, 0x40 }).Concat(original[(at + 2)..]).ToArray();
        byte[] bytes = Rewrite(entry => entry.EndsWith("data.pkl", StringComparison.Ordinal) ? patched : Array.Empty<byte>());
        var act = () => PyTorchFormat.Read(new MemoryStream(bytes), "huge.pth");
        act.Should().Throw<InvalidDataException>().WithMessage("huge.pth*");
    }

    [Fact]
    public void LoadWeights_PthForAnotherHead_ThrowsMismatchNamingKeysAndLeavesModelUnchanged()
    {
        using var model = WeightsTestSupport.Tiny(numClasses: 3);
        WeightsTestSupport.Randomise(model, 5);
        var before = WeightsTestSupport.Snapshot(model);
        var act = () => model.LoadWeights(Fixtures.File_("pth_tiny.pth"));
        var ex = act.Should().Throw<WeightMismatchException>().Which;
        ex.Mismatched.Should().BeEquivalentTo("fc.weight", "fc.bias");
        WeightsTestSupport.Snapshot(model).ShouldEqual(before);
    }

    [Fact]
    public void Read_TextFile_SaysPlainlyItIsNotAWeightFile()
    {
        string dir = WeightsTestSupport.TempDir();
        string path = Path.Combine(dir, "passwd");
        File.WriteAllText(path, "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n");
        var act = () => WeightFile.Read(path);
        var message = act.Should().Throw<InvalidDataException>().Which.Message;
        message.Should().StartWith(path).And.Contain("not a weight file").And.NotContain("root:x");
        Directory.Delete(dir, true);
    }

    private static byte[] Entry(string suffix)
    {
        using var zip = ZipFile.OpenRead(Fixtures.File_("pth_tiny.pth"));
        using var s = zip.Entries.Single(e => e.FullName.EndsWith(suffix, StringComparison.Ordinal)).Open();
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return ms.ToArray();
    }

    /// <summary>pth_tiny.pth with entries dropped (null) or replaced (non-empty bytes); empty keeps an entry as it is.</summary>
    private static byte[] Rewrite(Func<string, byte[]?> change)
    {
        using var source = ZipFile.OpenRead(Fixtures.File_("pth_tiny.pth"));
        using var ms = new MemoryStream();
        using (var target = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var e in source.Entries)
            {
                var replacement = change(e.FullName);
                if (replacement is null)
                {
                    continue;
                }

                var entry = target.CreateEntry(e.FullName, CompressionLevel.NoCompression);
                using var w = entry.Open();
                if (replacement.Length > 0)
                {
                    w.Write(replacement);
                }
                else
                {
                    using var r = e.Open();
                    r.CopyTo(w);
                }
            }
        }

        return ms.ToArray();
    }

    private static int IndexOf(byte[] haystack, byte[] needle)
    {
        for (int i = 0; i + needle.Length <= haystack.Length; i++)
        {
            if (haystack.AsSpan(i, needle.Length).SequenceEqual(needle))
            {
                return i;
            }
        }

        return -1;
    }
}
