using System;
using System.IO;
using System.Text.Json;
using FluentAssertions;
using Xunit;

namespace ResNetSharp.Tests;

/// <summary><c>resnet pretrained</c> and <c>resnet weights</c> on .pth and non-weight files, run as a process (no network: file URLs only).</summary>
public class PretrainedCommandTests
{
    [Fact]
    public void PretrainedListJson_HasTorchvisionsEntries()
    {
        string cache = WeightsTestSupport.TempDir();
        var (code, stdout, stderr) = CliTests.Run("pretrained", "list", "--json", "--cache", cache);
        code.Should().Be(0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        doc.RootElement.GetArrayLength().Should().Be(17);
        doc.RootElement[0].GetProperty("name").GetString().Should().Be("resnet18.imagenet1k_v1");
        doc.RootElement[0].GetProperty("cached").GetBoolean().Should().BeFalse();
        Directory.Delete(cache, true);
    }

    [Fact]
    public void PretrainedDownload_FileUrlWithHash_PrintsCachedPathAndWrongHashExitsOne()
    {
        string cache = WeightsTestSupport.TempDir();
        string file = Fixtures.File_("pth_tiny.pth");
        string url = new Uri(file).ToString();
        string sha = WeightsCache.ComputeSha256(file);

        var (code, stdout, stderr) = CliTests.Run("pretrained", "download", url, "--sha256", sha, "--cache", cache);
        code.Should().Be(0, stderr);
        string path = stdout.Trim();
        path.Should().StartWith(cache);
        File.ReadAllBytes(path).Should().Equal(File.ReadAllBytes(file));
        stderr.Should().Contain("downloading:");

        var (bad, _, badErr) = CliTests.Run("pretrained", "download", url, "--sha256", new string('0', 64), "--cache", Path.Combine(cache, "other"));
        bad.Should().Be(1);
        badErr.Split('\n')[^1].Should().StartWith("resnet: error: ").And.Contain("SHA-256 mismatch").And.Contain(sha);
        Directory.GetFiles(Path.Combine(cache, "other"), "*", SearchOption.AllDirectories).Should().BeEmpty();

        var (noHash, _, noHashErr) = CliTests.Run("pretrained", "download", url, "--cache", cache);
        noHash.Should().Be(1);
        noHashErr.Should().Contain("--sha256");
        Directory.Delete(cache, true);
    }

    [Fact]
    public void Weights_PthFile_ListsItsTensorsAndChecksAgainstTheModel()
    {
        var (code, stdout, stderr) = CliTests.Run("weights", Fixtures.File_("pth_resnet18.pth"), "--model", "resnet18");
        code.Should().Be(0, stderr);
        stdout.Should().Contain("PyTorch, 122 tensors").And.Contain("layer4.1.bn2.running_var").And.Contain("loads strictly");
    }

    [Fact]
    public void Weights_TextFile_SaysItIsNotAWeightFile()
    {
        string dir = WeightsTestSupport.TempDir();
        string path = Path.Combine(dir, "passwd");
        File.WriteAllText(path, "root:x:0:0:root:/root:/bin/bash\n");
        var (code, stdout, stderr) = CliTests.Run("weights", path);
        code.Should().Be(1);
        stdout.Should().BeEmpty();
        stderr.Should().StartWith("resnet: error: ").And.Contain("not a weight file").And.NotContain("root:x");
        Directory.Delete(dir, true);
    }
}
