using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading.Tasks;
using FluentAssertions;
using ResNetSharp.Runtime;
using Xunit;
using Xunit.Abstractions;

namespace ResNetSharp.Tests;

/// <summary>Malformed files give a clear <see cref="InvalidDataException"/>; fuzzed files never crash or hang; saves are atomic.</summary>
public class WeightsFileTests(ITestOutputHelper output)
{
    private const string Name = "bad.safetensors";

    /// <summary>A safetensors file from a header string and a data section of <paramref name="dataBytes"/> bytes.</summary>
    private static byte[] Craft(string header, int dataBytes, ulong? declaredLength = null)
    {
        byte[] json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, declaredLength ?? (ulong)json.Length);
        json.CopyTo(bytes, 8);
        return bytes;
    }

    public static TheoryData<string, byte[], string> BadSafeTensors => new()
    {
        { "truncated before the length", new byte[] { 1, 2, 3, 4, 5 }, "*truncated*8-byte header length*" },
        { "header longer than the file", Craft("{}", 0, declaredLength: 1000), "*header length 1000 bytes exceeds the file*" },
        { "absurd header length", Craft("{}", 0, declaredLength: 1UL << 40), "*absurd*" },
        { "zero header length", Craft("", 4, declaredLength: 0), "*header length is 0*" },
        { "not JSON", Craft("{\"a\": [1, ", 0), "*not valid JSON*" },
        { "not an object", Craft("[1, 2]", 0), "*does not start with '{'*" },
        { "unknown dtype", Craft("{\"w\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,1]}}", 1), "*'w'*unknown or unsupported dtype 'Q4'*" },
        { "offsets past the end", Craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8), "*'w'*run past the end of the data (8 bytes*" },
        { "begin after end", Craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 8), "*'w'*invalid data_offsets [8, 4]*" },
        { "size does not match shape", Craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8), "*'w'*needs 12 bytes*hold 8*" },
        { "negative dimension", Craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8), "*'w'*negative dimension -2*" },
        { "overflowing shape", Craft("{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}}", 8), "*'w'*more than 2^63*" },
        {
            "overlapping tensors",
            Craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12),
            "*'a' [0, 8] and 'b' [4, 12] overlap*"
        },
        {
            "gap between tensors",
            Craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20),
            "*4 bytes*before tensor 'b'*gap*"
        },
        { "trailing bytes", Craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12), "*4 trailing bytes*" },
        { "duplicate name", Craft("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2), "*'a' twice*" },
        { "missing shape", Craft("{\"a\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", 1), "*'a'*missing or non-array 'shape'*" },
        { "fractional dimension", Craft("{\"a\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}", 1), "*'a'*not an integer*" },
        { "metadata not strings", Craft("{\"__metadata__\":{\"k\":1}}", 0), "*__metadata__*must be a string*" },
    };

    [Theory]
    [MemberData(nameof(BadSafeTensors))]
    public void ReadSafeTensors_BadFile_ThrowsInvalidDataNamingFileAndProblem(string label, byte[] bytes, string pattern)
    {
        var act = () => SafeTensorsFormat.Read(new MemoryStream(bytes), Name);
        act.Should().Throw<InvalidDataException>(label).WithMessage(Name + ": " + pattern);
    }

    [Fact]
    public void LoadWeights_TruncatedFileOnDisk_ThrowsWithPathAndKeepsWeights()
    {
        string dir = WeightsTestSupport.TempDir();
        try
        {
            byte[] valid = WeightsTestSupport.TinySafeTensors();
            string path = Path.Combine(dir, "cut.safetensors");
            File.WriteAllBytes(path, valid[..(valid.Length / 2)]);
            using var model = WeightsTestSupport.Tiny();
            var before = WeightsTestSupport.Snapshot(model);
            var act = () => model.LoadWeights(path);
            act.Should().Throw<InvalidDataException>().WithMessage($"{path}: *run past the end of the data*truncated file?*");
            WeightsTestSupport.Snapshot(model).ShouldEqual(before);

            // A non-seekable stream (a pipe, a download) loads, and gets the same checks.
            model.LoadWeights(new NonSeekableStream(valid), sourceName: "pipe").Matched.Should().NotBeEmpty();
            var streamed = () => model.LoadWeights(new NonSeekableStream(valid[..(valid.Length - 3)]), sourceName: "pipe");
            streamed.Should().Throw<InvalidDataException>().WithMessage("pipe: *");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    public static TheoryData<string, byte[], string> BadTorchSharp => new()
    {
        { "empty", Array.Empty<byte>(), "*unexpected end of data while reading the tensor count*" },
        { "count larger than the file", new byte[] { 0xE8, 0x07, 1, 2 }, "*declares 1000 tensors but only 2 bytes follow*" },
        { "unknown element type", new byte[] { 1, 1, (byte)'w', 99, 1, 1, 0 }, "*'w'*unknown or unsupported element type code 99*" },
        { "data truncated", new byte[] { 1, 1, (byte)'w', 6, 1, 4, 0, 0, 0, 0 }, "*'w'*needs 16 bytes but only 4 remain*" },
        { "trailing bytes", new byte[] { 1, 1, (byte)'w', 0, 1, 1, 7, 9, 9 }, "*2 trailing bytes*" },
        { "overlong LEB128", new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 }, "*not a valid LEB128*" },
    };

    [Theory]
    [MemberData(nameof(BadTorchSharp))]
    public void ReadTorchSharpFormat_BadFile_ThrowsInvalidData(string label, byte[] bytes, string pattern)
    {
        var act = () => TorchSharpFormat.Read(new MemoryStream(bytes), "bad.dat");
        act.Should().Throw<InvalidDataException>(label).WithMessage("bad.dat: " + pattern);
    }

    [Fact]
    public async Task Fuzz_MutatedAndTruncatedFiles_OnlyEverThrowInvalidDataOrMismatch()
    {
        byte[] safetensors = WeightsTestSupport.TinySafeTensors(seed: 41);
        byte[] torchsharp;
        using (var m = WeightsTestSupport.Tiny())
        using (var ms = new MemoryStream())
        {
            WeightsTestSupport.Randomise(m, 42);
            m.SaveWeights(ms, new SaveOptions { Format = WeightFormat.TorchSharp });
            torchsharp = ms.ToArray();
        }

        byte[] pth = File.ReadAllBytes(Fixtures.File_("pth_tiny.pth")); // torch.save's zip, same keys and shapes as Tiny()
        int headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(safetensors);
        var outcomes = new Dictionary<string, int>();
        var watch = Stopwatch.StartNew();
        var run = Task.Run(() =>
        {
            using var model = WeightsTestSupport.Tiny();
            var state = WeightsTestSupport.Snapshot(model);
            var random = new Random(20260101);
            for (int i = 0; i < 600; i++)
            {
                // half safetensors, a quarter TorchSharp's format, a quarter torch.save zips (the pickle comes first in them)
                var kind = (i % 4) switch { 0 or 1 => WeightFormat.SafeTensors, 2 => WeightFormat.TorchSharp, _ => WeightFormat.PyTorch };
                byte[] original = kind switch { WeightFormat.SafeTensors => safetensors, WeightFormat.TorchSharp => torchsharp, _ => pth };
                byte[] bytes = Mutate(original, kind switch { WeightFormat.SafeTensors => headerEnd, WeightFormat.TorchSharp => 64, _ => 2048 }, random, out string how);
                var format = (i % 5) == 0 ? WeightFormat.Auto : kind;
                string outcome;
                try
                {
                    model.LoadWeights(new MemoryStream(bytes), new LoadOptions { Format = format }, "fuzz");
                    outcome = "loaded";
                    state = WeightsTestSupport.Snapshot(model);
                }
                catch (InvalidDataException)
                {
                    outcome = "InvalidDataException";
                }
                catch (WeightMismatchException)
                {
                    outcome = "WeightMismatchException";
                }
                catch (Exception ex)
                {
                    throw new Xunit.Sdk.XunitException($"case {i} ({how}, {format}) threw {ex.GetType().Name}: {ex.Message}");
                }

                if (outcome != "loaded")
                {
                    WeightsTestSupport.Snapshot(model).ShouldEqual(state); // a failed load changes nothing
                }

                lock (outcomes)
                {
                    outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
                }
            }
        });
        await run.WaitAsync(TimeSpan.FromSeconds(90)); // TimeoutException if anything hangs
        output.WriteLine($"{watch.Elapsed.TotalSeconds:F1} s: " + string.Join(", ", outcomes.Select(kv => $"{kv.Key} {kv.Value}")));
        outcomes.GetValueOrDefault("InvalidDataException").Should().BeGreaterThan(200, "most mutations must be caught as invalid");
    }

    private static byte[] Mutate(byte[] original, int headerEnd, Random random, out string how)
    {
        var bytes = (byte[])original.Clone();
        switch (random.Next(6))
        {
            case 0:
                int length = random.Next(original.Length);
                how = $"truncate to {length}";
                return bytes[..length];
            case 1:
                how = "flip bytes in the header";
                for (int k = random.Next(1, 4); k > 0; k--)
                {
                    bytes[random.Next(Math.Min(headerEnd, bytes.Length))] ^= (byte)random.Next(1, 256);
                }

                return bytes;
            case 2:
                how = "flip bytes anywhere";
                for (int k = random.Next(1, 6); k > 0; k--)
                {
                    bytes[random.Next(bytes.Length)] ^= (byte)(1 << random.Next(8));
                }

                return bytes;
            case 3:
                how = "random length field";
                var field = new byte[8];
                random.NextBytes(field);
                if (random.Next(2) == 0)
                {
                    field[4] = field[5] = field[6] = field[7] = 0;
                }

                field.CopyTo(bytes, 0);
                return bytes;
            case 4:
                int at = random.Next(8, Math.Min(headerEnd, bytes.Length));
                how = $"replace a header digit at {at}";
                bytes[at] = (byte)"0123456789-.,]}[{\""[random.Next(18)];
                return bytes;
            default:
                int start = random.Next(bytes.Length);
                int count = random.Next(1, 32);
                how = $"delete {count} bytes at {start}";
                return bytes.Take(start).Concat(bytes.Skip(start + count)).ToArray();
        }
    }

    [Fact]
    public void SaveWeights_FailureMidWrite_LeavesPreviousFileIntactAndNoTempFiles()
    {
        string dir = WeightsTestSupport.TempDir();
        try
        {
            string path = Path.Combine(dir, "model.safetensors");
            using var model = WeightsTestSupport.Tiny();
            WeightsTestSupport.Randomise(model, 1);
            model.SaveWeights(path);
            byte[] previous = File.ReadAllBytes(path);

            WeightsTestSupport.Randomise(model, 2);
            var act = () =>
            {
                using var seam = TestSeams.Inject(wrapWrite: inner => new FailingStream(inner, failAfter: previous.Length / 2));
                model.SaveWeights(path);
            };
            act.Should().Throw<IOException>().WithMessage("injected*");

            File.ReadAllBytes(path).Should().Equal(previous, "the previous file must survive a failed save");
            Directory.GetFiles(dir).Should().Equal(new[] { path }, "the temporary file must be removed");

            // A failed first save creates nothing at all.
            string fresh = Path.Combine(dir, "fresh.safetensors");
            var first = () =>
            {
                using var seam = TestSeams.Inject(wrapWrite: inner => new FailingStream(inner, failAfter: 100));
                model.SaveWeights(fresh);
            };
            first.Should().Throw<IOException>();
            File.Exists(fresh).Should().BeFalse();
            Directory.GetFiles(dir).Should().Equal(new[] { path });

            // And a successful save replaces the file with the new weights.
            model.SaveWeights(path);
            File.ReadAllBytes(path).Should().NotEqual(previous);
            using var loaded = WeightsTestSupport.Tiny();
            loaded.LoadWeights(path);
            WeightsTestSupport.Snapshot(loaded).ShouldEqual(WeightsTestSupport.Snapshot(model));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>A stream that cannot seek (a pipe or a network response).</summary>
    private sealed class NonSeekableStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }
}
