using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using FluentAssertions;
using Xunit;

namespace ResNetSharp.Tests;

/// <summary>
/// libtorch's "Could not initialize NNPACK! Reason: Unsupported hardware." lines must not reach a user's console:
/// <see cref="NnpackGuard"/> asks NNPACK once and turns libtorch's switch off where it cannot run.
/// </summary>
public class NnpackGuardTests
{
    [Fact]
    public void Apply_AfterLoad_AskedNnpackAndLibTorchsSwitchMatchesTheAnswer()
    {
        NativeBackend.EnsureLoaded();
        NnpackGuard.Status.Should().NotBeNull("libtorch_cpu exports nnp_initialize and at::Context's NNPACK switch");
        NnpackGuard.Enabled.Should().Be(NnpackGuard.Status == 0, "NNPACK stays on exactly where it can initialise");
        NnpackGuard.Disabled.Should().Be(NnpackGuard.Status != 0);
    }

    [Fact]
    public void SetLibTorchSwitch_IsWhatLibTorchReadsBack()
    {
        NativeBackend.EnsureLoaded();
        bool before = NnpackGuard.Enabled!.Value;
        try
        {
            NnpackGuard.SetLibTorchSwitch(!before).Should().BeTrue();
            NnpackGuard.Enabled.Should().Be(!before);
        }
        finally
        {
            NnpackGuard.SetLibTorchSwitch(before);
        }

        NnpackGuard.Enabled.Should().Be(before);
    }

    /// <summary>
    /// The CLI as a process on a CPU NNPACK does not support. Where gdb is installed, NNPACK's own check is made to
    /// answer "unsupported hardware" (status 51), as it does on some of this project's AMD EPYC machines: without the
    /// guard the same command prints one warning per small convolution (19 lines for this one, measured); with it, none.
    /// gdb is required (scripts/test.sh installs it): without it the test could not make NNPACK refuse, and so could not fail.
    /// </summary>
    [Fact]
    public async Task Cli_OnHardwareNnpackRejects_PrintsNoNnpackLine()
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "resnet.dll");
        string? gdb = new[] { "/usr/bin/gdb", "/usr/local/bin/gdb" }.FirstOrDefault(File.Exists);
        gdb.Should().NotBeNull("gdb makes NNPACK answer 'unsupported hardware' here (apt-get install gdb; scripts/test.sh does it as root)");
        string script = Path.Combine(Path.GetTempPath(), $"resnetsharp-nnpack-{Guid.NewGuid():N}.gdb");
        var psi = new ProcessStartInfo(gdb ?? "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        if (gdb is not null)
        {
            File.WriteAllText(script, string.Join('\n',
                "set pagination off", "set confirm off", "handle all nostop noprint pass", "set breakpoint pending on",
                "break nnp_initialize", "commands", "silent", "return (int)51", "continue", "end", "run", "quit", ""));
            foreach (string a in new[] { "-q", "-batch", "-x", script, "--args", "dotnet" })
            {
                psi.ArgumentList.Add(a);
            }
        }

        // Batch 1 at 32²: libtorch's small-convolution rule skips oneDNN and asks NNPACK for every 3×3 conv.
        foreach (string a in new[] { dll, "forward", "resnet20", "--batch", "1", "--input", "32", "--json" })
        {
            psi.ArgumentList.Add(a);
        }

        try
        {
            using var process = Process.Start(psi)!;
            var stdoutTask = process.StandardOutput.ReadToEndAsync();
            var stderrTask = process.StandardError.ReadToEndAsync();
            process.WaitForExit(300_000).Should().BeTrue("the CLI must finish");
            string stdout = await stdoutTask, stderr = await stderrTask;
            stdout.Should().Contain("\"outputShape\"", "the command ran to the end: " + stderr);
            stderr.Should().NotContain("NNPACK");
            stdout.Should().NotContain("NNPACK");
        }
        finally
        {
            File.Delete(script);
        }
    }
}
