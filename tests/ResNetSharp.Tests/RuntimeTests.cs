using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using FluentAssertions;
using TorchSharp;
using Xunit;

namespace ResNetSharp.Tests;

public class TorchDevicesTests
{
    [Fact]
    public void Resolve_CpuAndAuto_OnThisMachine()
    {
        TorchDevices.Resolve("cpu").type.Should().Be(DeviceType.CPU);
        // TorchSharp's own answer, not ours: this repository's tests run on the CPU backend.
        TorchDevices.Resolve("auto").type.Should().Be(torch.cuda.is_available() ? DeviceType.CUDA : DeviceType.CPU);
        TorchDevices.Resolve(null).type.Should().Be(TorchDevices.Resolve("auto").type);
    }

    [Fact]
    public void Resolve_BadNames_ThrowArgumentException()
    {
        FluentActions.Invoking(() => TorchDevices.Resolve("gpu")).Should().Throw<ArgumentException>().WithMessage("*expected 'auto', 'cpu', 'cuda' or 'cuda:N'*");
        FluentActions.Invoking(() => TorchDevices.Resolve("cuda:x")).Should().Throw<ArgumentException>().WithMessage("*cuda:N*");
        if (!torch.cuda.is_available())
        {
            FluentActions.Invoking(() => TorchDevices.Resolve("cuda")).Should().Throw<ArgumentException>().WithMessage("*CUDA is not available*TorchBackend=cuda*");
        }
    }
}

/// <summary>The native-load fix (issue 2): the app's copy of libLibTorchSharp.so and the build task itself.</summary>
public class NativeLoadTests
{
    private const string Version = "GLIBCXX_3.4.32";

    [Fact]
    public void AppCopy_OfLibTorchSharp_HasTheGlibcxx3432NeedMarkedWeak_OrTheSystemHasIt()
    {
        string lib = Directory.GetFiles(AppContext.BaseDirectory, "libLibTorchSharp.so", SearchOption.AllDirectories).Should().ContainSingle().Subject;
        var need = ElfReader.VersionNeeds(File.ReadAllBytes(lib)).Single(v => v.Name == Version);
        bool systemHasIt = SystemLibStdCxxHas(Version);
        ((need.Flags & 0x2) != 0).Should().Be(!systemHasIt, "the build marks the need weak exactly when the system libstdc++ lacks it");
    }

    [Fact]
    public void NativeBackend_LoadsAndRunsATensorOp()
    {
        NativeBackend.EnsureLoaded();
        using var a = torch.ones(2, 2);
        using var b = a.matmul(a);
        b.sum().item<float>().Should().Be(8f);
    }

    [Fact]
    public void NativeBackend_DescribesTheGlibcxxFailureWithTheFix()
    {
        var ex = new TypeInitializationException("TorchSharp.torch",
            new NotSupportedException("/lib/x86_64-linux-gnu/libstdc++.so.6: version `GLIBCXX_3.4.32' not found"));
        string message = NativeBackend.Describe(ex);
        message.Should().Contain("GLIBCXX_3.4.32").And.Contain("libLibTorchSharp.so").And.Contain("rebuild");
    }

    [Fact]
    public void BuildTask_WeakensOnlyWhenTheSystemLacksTheVersion_AndLeavesTheFileUntouchedOtherwise()
    {
        string dir = Path.Combine(Path.GetTempPath(), "resnetsharp-task-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string original = Directory.GetFiles(AppContext.BaseDirectory, "libLibTorchSharp.so", SearchOption.AllDirectories).Single();
            // Start from an unpatched copy: clear the weak flag the build may have set.
            byte[] bytes = File.ReadAllBytes(original);
            var need = ElfReader.VersionNeeds(bytes).Single(v => v.Name == Version);
            bytes[need.FlagsOffset] &= unchecked((byte)~0x2);
            string lacking = Path.Combine(dir, "lacking", "libLibTorchSharp.so");
            string having = Path.Combine(dir, "having", "libLibTorchSharp.so");
            Directory.CreateDirectory(Path.GetDirectoryName(lacking)!);
            Directory.CreateDirectory(Path.GetDirectoryName(having)!);
            File.WriteAllBytes(lacking, bytes);
            File.WriteAllBytes(having, bytes);
            // Fake libstdc++ files: one whose version strings stop at 3.4.30, one that has 3.4.32.
            File.WriteAllBytes(Path.Combine(dir, "old-libstdc++.so.6"), Encoding.ASCII.GetBytes("GLIBCXX_3.4.29\0GLIBCXX_3.4.30\0"));
            File.WriteAllBytes(Path.Combine(dir, "new-libstdc++.so.6"), Encoding.ASCII.GetBytes("GLIBCXX_3.4.30\0GLIBCXX_3.4.32\0"));
            string targets = Path.Combine(RepoRoot(), "src", "ResNetSharp", "build", "ResNetSharp.targets");
            File.WriteAllText(Path.Combine(dir, "patch.proj"), $"""
                <Project>
                  <Import Project="{targets}" />
                  <Target Name="Patch">
                    <ResNetSharpPatchLibTorchSharp Files="lacking/libLibTorchSharp.so" Versions="$(ResNetSharpWeakVersions)" AllowedSymbols="$(ResNetSharpWeakSymbols)" LibStdCxx="old-libstdc++.so.6" />
                    <ResNetSharpPatchLibTorchSharp Files="having/libLibTorchSharp.so" Versions="$(ResNetSharpWeakVersions)" AllowedSymbols="$(ResNetSharpWeakSymbols)" LibStdCxx="new-libstdc++.so.6" />
                  </Target>
                </Project>
                """);
            var psi = new ProcessStartInfo("dotnet", "msbuild patch.proj -t:Patch -nologo -v:m") { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
            using var process = Process.Start(psi)!;
            string output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
            process.WaitForExit();
            process.ExitCode.Should().Be(0, output);

            byte[] patched = File.ReadAllBytes(lacking);
            (ElfReader.VersionNeeds(patched).Single(v => v.Name == Version).Flags & 0x2).Should().Be(2);
            // Exactly two bytes may differ: the vna_flags of that one entry.
            patched.Zip(bytes).Count(p => p.First != p.Second).Should().Be(1);
            File.ReadAllBytes(having).Should().Equal(bytes, "the system has the version, so the file must be left untouched");
            Directory.GetFiles(dir, "*.resnetsharp-tmp", SearchOption.AllDirectories).Should().BeEmpty();
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static string RepoRoot()
    {
        var d = new DirectoryInfo(AppContext.BaseDirectory);
        while (d is not null && !File.Exists(Path.Combine(d.FullName, "ResNet.sln")))
        {
            d = d.Parent;
        }

        return d?.FullName ?? throw new InvalidOperationException("repository root (ResNet.sln) not found above the test binaries");
    }

    private static bool SystemLibStdCxxHas(string version)
    {
        foreach (string dir in new[] { "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64" })
        {
            string path = Path.Combine(dir, "libstdc++.so.6");
            if (File.Exists(path))
            {
                return Encoding.ASCII.GetString(File.ReadAllBytes(path)).Contains(version + "\0", StringComparison.Ordinal);
            }
        }

        return false;
    }
}

/// <summary>An independent, minimal reader of ELF64 .gnu.version_r for the tests (not the build task's code).</summary>
internal static class ElfReader
{
    public sealed record Need(string Name, ushort Flags, int FlagsOffset);

    public static Need[] VersionNeeds(byte[] b)
    {
        long shoff = BitConverter.ToInt64(b, 0x28);
        int shentsize = BitConverter.ToUInt16(b, 0x3A);
        int shnum = BitConverter.ToUInt16(b, 0x3C);
        var result = new System.Collections.Generic.List<Need>();
        for (int i = 0; i < shnum; i++)
        {
            int sh = (int)(shoff + (i * shentsize));
            if (BitConverter.ToUInt32(b, sh + 4) != 0x6ffffffe)
            {
                continue;
            }

            int offset = (int)BitConverter.ToInt64(b, sh + 24);
            int link = (int)BitConverter.ToUInt32(b, sh + 40);
            int count = (int)BitConverter.ToUInt32(b, sh + 44);
            int strtab = (int)BitConverter.ToInt64(b, (int)(shoff + (link * shentsize)) + 24);
            int vn = offset;
            for (int n = 0; n < count; n++)
            {
                int cnt = BitConverter.ToUInt16(b, vn + 2);
                int aux = vn + (int)BitConverter.ToUInt32(b, vn + 8);
                for (int a = 0; a < cnt; a++)
                {
                    int nameOff = strtab + (int)BitConverter.ToUInt32(b, aux + 8);
                    int end = Array.IndexOf(b, (byte)0, nameOff);
                    result.Add(new Need(Encoding.ASCII.GetString(b, nameOff, end - nameOff), BitConverter.ToUInt16(b, aux + 4), aux + 4));
                    aux += (int)BitConverter.ToUInt32(b, aux + 12);
                }

                vn += (int)BitConverter.ToUInt32(b, vn + 12);
            }
        }

        return result.ToArray();
    }
}
