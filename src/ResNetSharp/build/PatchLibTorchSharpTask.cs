// Compiled by MSBuild's RoslynCodeTaskFactory from ResNetSharp.targets (not part of the library).
// Marks chosen GLIBCXX version-needed entries of an ELF64 shared object weak, so that the dynamic
// loader does not refuse the file when the system libstdc++ lacks that version. See the targets file.
// RoslynCodeTaskFactory compiles against netstandard2.0, so only APIs from there are used.
#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public sealed class ResNetSharpPatchLibTorchSharp : Task
{
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const uint ShtGnuVersym = 0x6fffffff;
    private const uint ShtDynsym = 11;
    private const ushort VerFlgWeak = 0x2;

    /// <summary>The native files to patch (the app's copies of libLibTorchSharp.so).</summary>
    [Required]
    public ITaskItem[] Files { get; set; } = Array.Empty<ITaskItem>();

    /// <summary>Semicolon-separated version names to weaken, e.g. GLIBCXX_3.4.32.</summary>
    [Required]
    public string Versions { get; set; } = "";

    /// <summary>Semicolon-separated symbols allowed to carry those versions; any other means "do not touch".</summary>
    public string AllowedSymbols { get; set; } = "";

    /// <summary>Optional explicit path of the libstdc++.so.6 to check; default: the loader's usual places.</summary>
    public string LibStdCxx { get; set; } = "";

    public override bool Execute()
    {
        var versions = Split(Versions);
        var allowed = new HashSet<string>(Split(AllowedSymbols), StringComparer.Ordinal);
        string? libstdcxx = FindLibStdCxx();
        if (libstdcxx == null)
        {
            Log.LogMessage(MessageImportance.Low, "ResNetSharp: no libstdc++.so.6 found; native library left as it is.");
            return true;
        }

        byte[] runtime = File.ReadAllBytes(libstdcxx);
        var missing = versions.Where(v => !ContainsNulTerminated(runtime, v)).ToList();
        if (missing.Count == 0)
        {
            Log.LogMessage(MessageImportance.Low, $"ResNetSharp: {libstdcxx} provides {string.Join(", ", versions)}; nothing to patch.");
            return true;
        }

        foreach (var item in Files)
        {
            string path = item.ItemSpec;
            try
            {
                PatchFile(path, missing, allowed, libstdcxx);
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException || ex is InvalidDataException)
            {
                Log.LogWarning($"ResNetSharp: could not patch {path}: {ex.Message}. TorchSharp may fail to load on this system.");
            }
        }

        return !Log.HasLoggedErrors;
    }

    private void PatchFile(string path, List<string> missing, HashSet<string> allowed, string libstdcxx)
    {
        byte[] elf = File.ReadAllBytes(path);
        var changed = new List<string>();
        var refused = new List<string>();
        foreach (var entry in ElfVersionNeeds.Read(elf))
        {
            if (!missing.Contains(entry.Name))
            {
                continue;
            }

            if ((entry.Flags & VerFlgWeak) != 0)
            {
                continue; // already weak (an earlier build patched this copy)
            }

            var users = entry.Symbols.Where(s => !allowed.Contains(s)).ToList();
            if (users.Count > 0)
            {
                refused.Add($"{entry.Name} (used by {string.Join(", ", users.Take(5))})");
                continue;
            }

            ushort flags = (ushort)(entry.Flags | VerFlgWeak);
            elf[entry.FlagsOffset] = (byte)(flags & 0xff);
            elf[entry.FlagsOffset + 1] = (byte)(flags >> 8);
            changed.Add(entry.Name);
        }

        foreach (string r in refused)
        {
            Log.LogWarning($"ResNetSharp: {path} needs {r}, which {libstdcxx} lacks; left untouched because real symbols depend on it.");
        }

        if (changed.Count == 0)
        {
            return;
        }

        // Write beside the target, then rename over it: never a half-written library, and a hard link
        // into the NuGet cache (if the build made one) is replaced rather than written through.
        // File.Copy keeps the file mode; File.Replace renames over the target.
        string temp = path + ".resnetsharp-tmp";
        File.Copy(path, temp, true);
        using (var stream = new FileStream(temp, FileMode.Truncate, FileAccess.Write))
        {
            stream.Write(elf, 0, elf.Length);
            stream.Flush(true);
        }

        File.Replace(temp, path, null);
        Log.LogMessage(MessageImportance.Normal, $"ResNetSharp: marked {string.Join(", ", changed)} weak in {path} ({libstdcxx} lacks it).");
    }

    private string? FindLibStdCxx()
    {
        if (!string.IsNullOrWhiteSpace(LibStdCxx))
        {
            return File.Exists(LibStdCxx) ? LibStdCxx : null;
        }

        var dirs = new List<string>();
        string? ld = Environment.GetEnvironmentVariable("LD_LIBRARY_PATH");
        if (!string.IsNullOrEmpty(ld))
        {
            dirs.AddRange(ld.Split(new[] { ':' }, StringSplitOptions.RemoveEmptyEntries));
        }

        dirs.AddRange(new[]
        {
            "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
            "/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib64", "/usr/local/lib",
        });
        foreach (string dir in dirs)
        {
            string candidate = Path.Combine(dir, "libstdc++.so.6");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    private static string[] Split(string s) =>
        s.Split(new[] { ';', ',' }, StringSplitOptions.RemoveEmptyEntries).Select(x => x.Trim()).Where(x => x.Length > 0).ToArray();

    private static bool ContainsNulTerminated(byte[] haystack, string needle)
    {
        byte[] n = Encoding.ASCII.GetBytes(needle + "\0");
        for (int i = 0; i + n.Length <= haystack.Length; i++)
        {
            int j = 0;
            while (j < n.Length && haystack[i + j] == n[j])
            {
                j++;
            }

            if (j == n.Length)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>One Vernaux entry of .gnu.version_r and the dynamic symbols that reference it.</summary>
    private sealed class ElfVersionNeeds
    {
        public string Name = "";
        public ushort Flags;
        public int FlagsOffset;
        public ushort Index;
        public List<string> Symbols = new List<string>();

        public static List<ElfVersionNeeds> Read(byte[] b)
        {
            if (b.Length < 64 || b[0] != 0x7f || b[1] != (byte)'E' || b[2] != (byte)'L' || b[3] != (byte)'F')
            {
                throw new InvalidDataException("not an ELF file");
            }

            if (b[4] != 2 || b[5] != 1)
            {
                throw new InvalidDataException("only little-endian ELF64 is handled");
            }

            ulong shoff = U64(b, 0x28);
            int shentsize = U16(b, 0x3A);
            int shnum = U16(b, 0x3C);
            if (shentsize < 64 || shoff + (ulong)shentsize * (ulong)shnum > (ulong)b.Length)
            {
                throw new InvalidDataException("section header table lies outside the file");
            }

            var sections = new List<(uint Type, ulong Offset, ulong Size, uint Link, uint Info, ulong EntSize)>();
            for (int i = 0; i < shnum; i++)
            {
                int o = checked((int)shoff + i * shentsize);
                sections.Add((U32(b, o + 4), U64(b, o + 24), U64(b, o + 32), U32(b, o + 40), U32(b, o + 44), U64(b, o + 56)));
            }

            var result = new List<ElfVersionNeeds>();
            int verneedIndex = sections.FindIndex(s => s.Type == ShtGnuVerneed);
            if (verneedIndex < 0)
            {
                return result;
            }

            var verneed = sections[verneedIndex];
            ulong strOff = sections[(int)verneed.Link].Offset;
            int pos = checked((int)verneed.Offset);
            for (uint n = 0; n < verneed.Info; n++)
            {
                int cnt = U16(b, pos + 2);
                int aux = pos + (int)U32(b, pos + 8);
                for (int a = 0; a < cnt; a++)
                {
                    result.Add(new ElfVersionNeeds
                    {
                        Flags = U16(b, aux + 4),
                        FlagsOffset = aux + 4,
                        Index = (ushort)(U16(b, aux + 6) & 0x7fff),
                        Name = CString(b, strOff + U32(b, aux + 8)),
                    });
                    uint next = U32(b, aux + 12);
                    if (next == 0)
                    {
                        break;
                    }

                    aux += (int)next;
                }

                uint nextNeed = U32(b, pos + 12);
                if (nextNeed == 0)
                {
                    break;
                }

                pos += (int)nextNeed;
            }

            // Which dynamic symbols carry each version index (.gnu.version parallels .dynsym).
            int dynsymIndex = sections.FindIndex(s => s.Type == ShtDynsym);
            int versymIndex = sections.FindIndex(s => s.Type == ShtGnuVersym);
            if (dynsymIndex >= 0 && versymIndex >= 0)
            {
                var dynsym = sections[dynsymIndex];
                ulong dynstr = sections[(int)dynsym.Link].Offset;
                ulong count = dynsym.Size / 24;
                int vs = checked((int)sections[versymIndex].Offset);
                for (ulong i = 0; i < count; i++)
                {
                    ushort ver = (ushort)(U16(b, vs + (int)(2 * i)) & 0x7fff);
                    var owner = result.FirstOrDefault(r => r.Index == ver);
                    if (owner != null)
                    {
                        owner.Symbols.Add(CString(b, dynstr + U32(b, checked((int)(dynsym.Offset + 24 * i)))));
                    }
                }
            }

            return result;
        }

        private static ushort U16(byte[] b, int o) => BitConverter.ToUInt16(b, o);

        private static uint U32(byte[] b, int o) => BitConverter.ToUInt32(b, o);

        private static ulong U64(byte[] b, int o) => BitConverter.ToUInt64(b, o);

        private static string CString(byte[] b, ulong offset)
        {
            int start = checked((int)offset);
            int end = Array.IndexOf(b, (byte)0, start);
            if (end < 0)
            {
                throw new InvalidDataException("unterminated string in ELF string table");
            }

            return Encoding.ASCII.GetString(b, start, end - start);
        }
    }
}
