using System;
using System.IO;
using System.Linq;
using System.Text.Json;
using FluentAssertions;
using ResNetSharp.Images;
using ResNetSharp.OnnxRuntime;
using Xunit;

namespace ResNetSharp.Tests.Images;

/// <summary><c>resnet predict</c> and <c>resnet cam</c>, run as processes on a tiny model saved with class names.</summary>
public class ImageCommandsTests
{
    private static readonly Lazy<(string Weights, string Image, string Dir)> Files = new(() =>
    {
        string dir = Directory.CreateTempSubdirectory("rns-cli-img").FullName;
        using var model = ImageClassifierTests.TinyModel();
        model.Metadata = model.Metadata with { ClassNames = Enumerable.Range(0, 10).Select(i => $"class-{i}").ToArray() };
        string weights = Path.Combine(dir, "tiny.safetensors");
        model.SaveWeights(weights);
        string image = Path.Combine(dir, "photo.png");
        ImageEncoder.WritePng(image, ImageClassifierTests.RandomImage(new Random(21)));
        return (weights, image, dir);
    });

    [Fact]
    public void Predict_WeightsFile_PrintsTopKAsJsonAndWritesCam()
    {
        var (weights, image, dir) = Files.Value;
        string cam = Path.Combine(dir, "predict-cam.png");
        var (code, stdout, stderr) = CliTests.Run("predict", image, "--weights", weights, "--top", "3", "--json", "--cam", cam);
        code.Should().Be(0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        root.GetProperty("classes").GetInt32().Should().Be(10);
        root.GetProperty("inputSize").GetInt32().Should().Be(16);
        var top = root.GetProperty("predictions")[0].GetProperty("top").EnumerateArray().ToList();
        top.Should().HaveCount(3);
        top.Select(t => t.GetProperty("probability").GetSingle()).Should().BeInDescendingOrder();

        // The same answer as the library in this process.
        using var classifier = ImageClassifier.FromWeights(weights);
        var expected = classifier.Classify(image, topK: 3);
        top.Select(t => t.GetProperty("index").GetInt32()).Should().Equal(expected.Top.Select(t => t.Index));
        top.Select(t => t.GetProperty("label").GetString()).Should().Equal(expected.Top.Select(t => t.Label));
        var overlay = ImageDecoder.Decode(cam);
        var input = ImageDecoder.Decode(image);
        (overlay.Width, overlay.Height).Should().Be((input.Width, input.Height), "the overlay is drawn at the image's own size");
    }

    [Fact]
    public void Predict_WeightsUrlWithSha256_DownloadsIntoTheCacheOnceAndGivesTheFilesAnswer()
    {
        var (weights, image, dir) = Files.Value;
        string cache = Path.Combine(dir, "cache-" + Guid.NewGuid().ToString("N"));
        string url = new Uri(weights).AbsoluteUri; // file:// — the same code path as https, without a network
        string sha = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(weights))).ToLowerInvariant();
        var env = new System.Collections.Generic.Dictionary<string, string> { ["RESNETSHARP_CACHE"] = cache };

        var (code, stdout, stderr) = CliTests.RunWith(env, "predict", image, "--weights", url, "--sha256", sha, "--top", "2", "--json");
        code.Should().Be(0, stderr);
        Directory.EnumerateFiles(cache, "*.safetensors", SearchOption.AllDirectories).Should().ContainSingle("the URL is fetched into the cache");
        using var classifier = ImageClassifier.FromWeights(weights);
        var expected = classifier.Classify(image, topK: 2);
        using (var doc = JsonDocument.Parse(stdout))
        {
            doc.RootElement.GetProperty("predictions")[0].GetProperty("top").EnumerateArray().Select(t => t.GetProperty("index").GetInt32())
                .Should().Equal(expected.Top.Select(t => t.Index));
        }

        var (badCode, _, badErr) = CliTests.RunWith(env, "predict", image, "--weights", url, "--sha256", new string('0', 64));
        badCode.Should().Be(1);
        badErr.Should().Contain("SHA-256").And.Contain(sha[..8]);
        var (noHash, _, noHashErr) = CliTests.RunWith(env, "predict", image, "--weights", url);
        noHash.Should().Be(1);
        noHashErr.Should().Contain("give its SHA-256");
    }

    [Fact]
    public void Cam_GradCamOnLayer1_WritesOverlayAndReportsTheMap()
    {
        var (weights, image, dir) = Files.Value;
        string output = Path.Combine(dir, "gradcam.png");
        var (code, stdout, stderr) = CliTests.Run("cam", image, "--weights", weights, "--class", "class-3", "--layer", "1", "--out", output, "--json");
        code.Should().Be(0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        root.GetProperty("method").GetString().Should().Be("gradcam");
        root.GetProperty("layer").GetInt32().Should().Be(1);
        root.GetProperty("classIndex").GetInt32().Should().Be(3);
        root.GetProperty("label").GetString().Should().Be("class-3");
        root.GetProperty("mapSize").EnumerateArray().Select(e => e.GetInt32()).Should().Equal(16, 16); // layer1 keeps the 16² input's size
        File.Exists(output).Should().BeTrue();
        Directory.GetFiles(dir, "*.tmp").Should().BeEmpty();
    }

    [Theory]
    [InlineData("not an image", "predict", "{dir}/notes.png", "--weights", "{weights}")]
    [InlineData("does not exist", "predict", "{image}", "--weights", "{dir}/missing.safetensors")]
    [InlineData("'zebra' is not a class", "cam", "{image}", "--weights", "{weights}", "--class", "zebra", "--out", "{dir}/x.png")]
    [InlineData("--layer needs --method gradcam", "cam", "{image}", "--weights", "{weights}", "--method", "cam", "--layer", "1", "--out", "{dir}/x.png")]
    [InlineData("give one image", "predict", "{image}", "{image}", "--weights", "{weights}", "--cam", "{dir}/x.png")]
    public void BadInput_ExitsOneWithOneClearLine(string expected, params string[] args)
    {
        var (weights, image, dir) = Files.Value;
        File.WriteAllText(Path.Combine(dir, "notes.png"), "hello");
        var resolved = args.Select(a => a.Replace("{dir}", dir).Replace("{weights}", weights).Replace("{image}", image)).ToArray();
        var (code, _, stderr) = CliTests.Run(resolved);
        code.Should().Be(1);
        stderr.Split('\n').Should().ContainSingle().Which.Should().StartWith("resnet: error: ").And.Contain(expected);
    }

    [Fact]
    public void Cam_WithoutOut_IsAUsageError()
    {
        var (weights, image, _) = Files.Value;
        var (code, _, stderr) = CliTests.Run("cam", image, "--weights", weights);
        code.Should().Be(2);
        stderr.Should().Contain("--out");
    }
}
