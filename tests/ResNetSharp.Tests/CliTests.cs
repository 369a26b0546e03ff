using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.Json;
using FluentAssertions;
using Xunit;

namespace ResNetSharp.Tests;

/// <summary>The <c>resnet</c> command's contract, run as a real process.</summary>
public class CliTests
{
    internal static (int ExitCode, string Stdout, string Stderr) Run(params string[] args) => RunWith(null, args);

    /// <summary>Runs the CLI with extra environment variables for the child process only.</summary>
    internal static (int ExitCode, string Stdout, string Stderr) RunWith(System.Collections.Generic.IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "resnet.dll");
        File.Exists(dll).Should().BeTrue("the CLI is built next to the tests");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (key, value) in environment ?? new System.Collections.Generic.Dictionary<string, string>())
        {
            psi.Environment[key] = value;
        }

        psi.ArgumentList.Add(dll);
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit(300_000).Should().BeTrue("the CLI must finish");
        // No filter: libtorch's NNPACK warnings are kept off the console by the library (NnpackGuard).
        string err = string.Join('\n', stderr.Result.Split('\n').Where(l => l.Trim().Length > 0));
        return (process.ExitCode, stdout.Result, err);
    }

    [Fact]
    public void List_PrintsEveryRegisteredName()
    {
        var (code, stdout, _) = Run("list");
        code.Should().Be(0);
        // Written out, not read from the registry: torchvision 0.14's ten names, the paper's CIFAR and plain nets
        // (Table 6, Fig. 6) and the pre-activation family (He et al. 2016).
        string[] expected =
        [
            "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
            "wide_resnet50_2", "wide_resnet101_2", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
            "plain18", "plain34", "plain50", "plain20", "plain32", "plain44", "plain56", "plain110",
            "preact_resnet18", "preact_resnet34", "preact_resnet50", "preact_resnet101", "preact_resnet152",
            "preact_resnet20", "preact_resnet56", "preact_resnet110",
        ];
        var listed = stdout.Split('\n').Select(l => l.Trim().Split(' ', 2)[0]).Where(n => n.Length > 0).ToHashSet();
        listed.Should().Contain(expected);
    }

    [Fact]
    public void SummaryJson_ResNet101V1_HasThePapersFigures()
    {
        var (code, stdout, stderr) = Run("summary", "resnet101", "--variant", "v1", "--json");
        code.Should().Be(0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        root.GetProperty("name").GetString().Should().Be("resnet101");
        root.GetProperty("weightedLayers").GetInt32().Should().Be(101);
        root.GetProperty("parameters").GetInt64().Should().Be(44_549_160);
        (root.GetProperty("multiplyAdds").GetInt64() / 1e9).Should().BeApproximately(7.5702, 0.0076);
        var stages = root.GetProperty("stages").EnumerateArray().Where(s => s.GetProperty("name").GetString()!.StartsWith("layer", StringComparison.Ordinal)).ToList();
        stages.Select(s => s.GetProperty("blocks").GetInt32()).Should().Equal(3, 4, 23, 3);
        stages.Select(s => s.GetProperty("outputShape")[1].GetInt64()).Should().Equal(56, 28, 14, 7);
    }

    [Fact]
    public void Summary_Table_HasTable1Rows()
    {
        var (code, stdout, _) = Run("summary", "resnet50", "--input", "224", "--classes", "10");
        code.Should().Be(0);
        stdout.Should().Contain("conv2_x").And.Contain("conv5_x").And.Contain("1 + 48 + 1 = 50").And.Contain("2048×7×7");
    }

    [Theory]
    [InlineData("Unknown model 'resnet51'", "summary", "resnet51")]
    [InlineData("too small", "summary", "resnet18", "--input", "8")]
    [InlineData("Unknown variant", "summary", "resnet18", "--variant", "v3")]
    [InlineData("Unrecognized", "summary", "resnet18", "--bogus")]
    [InlineData("Unknown device", "forward", "resnet18", "--device", "tpu")]
    public void BadInput_ExitsNonZeroWithOneClearLineOnStderr(string expected, params string[] args)
    {
        var (code, stdout, stderr) = Run(args);
        code.Should().NotBe(0);
        stderr.Split('\n').Should().ContainSingle().Which.Should().StartWith("resnet: error: ").And.Contain(expected);
        stdout.Should().BeEmpty();
    }

    [Fact]
    public void Forward_RunsAndReportsTheLogitShape()
    {
        var (code, stdout, stderr) = Run("forward", "resnet18", "--batch", "2", "--input", "64", "--device", "cpu", "--json");
        code.Should().Be(0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        doc.RootElement.GetProperty("outputShape").EnumerateArray().Select(e => e.GetInt64()).Should().Equal(2, 1000);
        doc.RootElement.GetProperty("milliseconds").GetDouble().Should().BePositive();
    }
}

public class CliWeightsTests
{
    [Fact]
    public void Weights_MatchingModelExits0_MismatchedHeadExits3_TruncatedFileExits1()
    {
        string dir = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "resnetsharp-cli-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string path = System.IO.Path.Combine(dir, "r18.safetensors");
            using (var model = ResNetFactory.ResNet18(new ResNetOptions { NumClasses = 10 }))
            {
                model.SaveWeights(path);
            }

            var ok = CliTests.Run("weights", path, "--model", "resnet18", "--classes", "10", "--json");
            ok.ExitCode.Should().Be(0, ok.Stderr);
            using (var doc = JsonDocument.Parse(ok.Stdout))
            {
                doc.RootElement.ToString().Should().Contain("fc.weight");
            }

            // The default 1000-class head does not match the file's 10-class fc: would not load strictly.
            var mismatch = CliTests.Run("weights", path, "--model", "resnet18");
            mismatch.ExitCode.Should().Be(3);
            mismatch.Stdout.Should().Contain("fc.weight");

            var skip = CliTests.Run("weights", path, "--model", "resnet18", "--skip-classifier");
            skip.ExitCode.Should().Be(0, skip.Stdout + skip.Stderr);

            byte[] bytes = File.ReadAllBytes(path);
            string truncated = System.IO.Path.Combine(dir, "cut.safetensors");
            File.WriteAllBytes(truncated, bytes[..(bytes.Length / 2)]);
            var bad = CliTests.Run("weights", truncated);
            bad.ExitCode.Should().Be(1);
            bad.Stderr.Split('\n').Should().ContainSingle().Which.Should().StartWith("resnet: error: ").And.Contain("cut.safetensors");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}

public class CliBenchTests
{
    [Fact]
    public void Bench_Json_PrintsOneObjectPerConfigurationWithTheContractFields()
    {
        var (code, stdout, stderr) = CliTests.Run("bench", "resnet18", "--batch", "1,2", "--input", "32", "--iterations", "2", "--warmup", "1", "--threads", "1", "--json");
        code.Should().Be(0, stderr);
        var rows = stdout.Split('\n').Where(l => l.TrimStart().StartsWith('{')).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        rows.Should().HaveCount(4, "batches 1 and 2, plain and ONNX Runtime");
        foreach (var row in rows)
        {
            foreach (string field in new[] { "name", "batch", "mode", "imagesPerSecond", "latencyMs", "peakRssMiB", "threads", "p90Ms", "microBatch", "gflopsPerImage", "achievedGflops" })
            {
                row.TryGetProperty(field, out _).Should().BeTrue($"'{field}' is part of the bench JSON contract");
            }

            row.GetProperty("threads").GetInt32().Should().Be(1);
            double imagesPerSecond = row.GetProperty("imagesPerSecond").GetDouble();
            imagesPerSecond.Should().BePositive();
            row.GetProperty("peakRssMiB").GetDouble().Should().BePositive();
            // ResNet-18 at 32²: stem 2,408,448 + layer1 9,437,184 + layers 2–4 3 × 8,388,608 + fc 512,000 = 37,523,456
            // multiply-adds, counted by hand from the stage table (16², 8², 4², 2², 1² feature maps).
            row.GetProperty("gflopsPerImage").GetDouble().Should().BeApproximately(2 * 37_523_456 / 1e9, 1e-4);
            row.GetProperty("achievedGflops").GetDouble().Should().BeApproximately(imagesPerSecond * 0.075, 0.01 * imagesPerSecond + 0.1);
            row.GetProperty("microBatch").GetInt32().Should().Be(row.GetProperty("batch").GetInt32(), "tiny inputs never need splitting");
            row.TryGetProperty("peakGflops", out _).Should().BeFalse("the FMA peak is measured (and reported) only with --peak");
        }

        rows.Select(r => r.GetProperty("mode").GetString()).Distinct().Should().BeEquivalentTo("plain", "ort");
    }
}

public class CliPeakTests
{
    [Fact]
    public void FmaKernel_MatchesTheClosedForm()
    {
        // a ← 0.999·a + 0.001 from 2 gives a_n = 1 + 0.999ⁿ; the kernel returns 12 chains × lanes × a_n.
        var (_, floats) = ResNetSharp.Cli.FmaPeak.Isa;
        foreach (long n in new long[] { 1, 10, 1000 })
        {
            double expected = ResNetSharp.Cli.FmaPeak.Chains * floats * (1 + Math.Pow(0.999, n));
            ((double)ResNetSharp.Cli.FmaPeak.Kernel(n)).Should().BeApproximately(expected, expected * 1e-4, $"after {n} FMAs");
        }
    }

    [Fact]
    public void Peak_Json_ReportsAPlausibleRate()
    {
        var (code, stdout, stderr) = CliTests.Run("peak", "--threads", "1", "--seconds", "0.05", "--json");
        code.Should().Be(0, stderr);
        var row = JsonDocument.Parse(stdout.Split('\n').Single(l => l.TrimStart().StartsWith('{'))).RootElement;
        row.GetProperty("threads").GetInt32().Should().Be(1);
        row.GetProperty("isa").GetString().Should().BeOneOf("avx512f", "avx2-fma", "vector128", "scalar");
        // One core: at most 2 FMA pipes × 16 floats × 2 FLOP × 6 GHz = 384 GFLOP/s.
        row.GetProperty("gflops").GetDouble().Should().BeInRange(0.1, 384);
    }

    [Fact]
    public void Peak_BadArguments_ExitOneWithOneLine()
    {
        var (code, _, stderr) = CliTests.Run("peak", "--threads", "0");
        code.Should().Be(1);
        stderr.Trim().Split('\n').Should().ContainSingle().Which.Should().Contain("--threads");
    }
}
