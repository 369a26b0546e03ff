using System;
using System.Collections.Generic;
using System.IO;
using System.Text.Json;
using FluentAssertions;
using ResNetSharp.Tests.Distributed;
using Xunit;
using Xunit.Abstractions;

namespace ResNetSharp.Tests.Runtime;

/// <summary>
/// Repro tests of the libtorch quirks (LibTorchQuirks), run on every CPU: each bug's minimal case runs in a child
/// process with the workaround off. Where the bug shows (a crash or a wrong result), the detection must have said so;
/// where it does not, the raw kernel must equal the workaround's exact reformulation. A libtorch that fixes a bug turns
/// its repro green everywhere, and the quirk can then be removed from LibTorchQuirks alone.
/// </summary>
public class LibTorchQuirksTests(ITestOutputHelper output)
{
    private static (bool Crashed, Dictionary<string, float>? Values, string Stderr) RunChild(string scenario, IReadOnlyDictionary<string, string>? environment = null)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"resnetsharp-quirk-{Guid.NewGuid():N}");
        try
        {
            var (code, _, stderr, timedOut) = MpiRun.Plain(600, environment, MpiRun.Host, scenario, dir);
            timedOut.Should().BeFalse($"{scenario} must finish");
            string file = Path.Combine(dir, "rank0.json");
            if (code != 0 || !File.Exists(file))
            {
                return (true, null, stderr);
            }

            return (false, JsonSerializer.Deserialize<Dictionary<string, float>>(File.ReadAllText(file)), stderr);
        }
        finally
        {
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }

    [Fact]
    public void StridedPointwiseBackward_WhereItFails_IsDetected()
    {
        var (crashed, values, stderr) = RunChild("quirk-strided-pointwise-backward");
        output.WriteLine($"crashed: {crashed}; detected: {LibTorchQuirks.SubsampleStridedPointwise}; {JsonSerializer.Serialize(values)} {stderr}");
        if (crashed)
        {
            LibTorchQuirks.SubsampleStridedPointwise.Should().BeTrue("libtorch's strided 1×1 backward crashed here, so the workaround must be on");
        }
        else
        {
            values!["inputGradError"].Should().BeLessThan(1e-4f);
            values["weightGradError"].Should().BeLessThan(1e-4f);
        }
    }

    [Fact]
    public void NarrowStridedPointwiseBackward_WhereItCorruptsTheHeap_IsDetected()
    {
        // glibc's strictest heap checks, so that an out-of-bounds write aborts the child instead of passing unseen.
        var (crashed, values, stderr) = RunChild("quirk-narrow-strided-pointwise-backward", new Dictionary<string, string> { ["MALLOC_CHECK_"] = "3" });
        output.WriteLine($"crashed: {crashed}; detected: {LibTorchQuirks.SubsampleStridedPointwise}; {JsonSerializer.Serialize(values)} {stderr}");
        if (crashed)
        {
            LibTorchQuirks.SubsampleStridedPointwise.Should().BeTrue("libtorch's strided 1×1 weight gradient for a narrow channels-last input crashed here, so the workaround must be on");
        }
        else
        {
            values!["inputGradError"].Should().BeLessThan(1e-5f);
            values["weightGradError"].Should().BeLessThan(1e-5f);
        }
    }

    [Fact]
    public void ChannelsLastPointwise_WhereItIsWrong_IsDetected()
    {
        var (crashed, values, stderr) = RunChild("quirk-channels-last-pointwise");
        output.WriteLine($"crashed: {crashed}; detected: {LibTorchQuirks.DensePointwiseInput}; {JsonSerializer.Serialize(values)} {stderr}");
        bool wrong = crashed || values!["error1024to512"] > 1e-4f || values["error512to2048"] > 1e-4f;
        if (wrong)
        {
            LibTorchQuirks.DensePointwiseInput.Should().BeTrue("libtorch's channels-last 1×1 kernels failed here, so the workaround must be on");
        }
    }
}
