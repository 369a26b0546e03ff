using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using FluentAssertions;
using ResNetSharp.Images;
using ResNetSharp.Tests.Distributed;
using ResNetSharp.Weights;
using Xunit;

namespace ResNetSharp.Tests;

/// <summary>
/// <c>resnet score</c> run as real processes over a folder of real photographs (scikit-image's sample data) and one
/// corrupt file, with a seeded tiny ResNet's weights: shards and mpiexec give the single run's file byte for byte,
/// a resumed run after lost and torn rows gives it too.
/// </summary>
public class ScoreCommandTests : IClassFixture<ScoreCommandTests.Photos>
{
    private const string SkimageData = "/usr/lib/python3/dist-packages/skimage/data";

    /// <summary>The photographs, the weights and one single-process run, made once for the class.</summary>
    public sealed class Photos
    {
        public Photos()
        {
            Root = WeightsTestSupport.TempDir();
            Folder = Path.Combine(Root, "images");
            Directory.CreateDirectory(Path.Combine(Folder, "sub", "deeper"));
            foreach (var (source, target) in Files)
            {
                string from = Path.Combine(SkimageData, source);
                File.Exists(from).Should().BeTrue($"the test photographs come from scikit-image's data ({from}): apt-get install python3-skimage");
                File.Copy(from, Path.Combine(Folder, target));
            }

            // Not an image: bytes no decoder accepts.
            var garbage = new byte[4096];
            new Random(3).NextBytes(garbage);
            garbage[0] = (byte)'x';
            File.WriteAllBytes(Path.Combine(Folder, "sub", "corrupt.jpg"), garbage);
            File.WriteAllText(Path.Combine(Folder, "notes.txt"), "not an image extension: not listed");

            Weights = Path.Combine(Root, "tiny.safetensors");
            using (var model = WeightsTestSupport.Tiny(numClasses: 5))
            {
                WeightsTestSupport.Randomise(model, 11);
                model.SaveWeights(Weights);
            }

            Single = Path.Combine(Root, "single", "results.jsonl");
            Directory.CreateDirectory(Path.GetDirectoryName(Single)!);
            var (code, stdout, stderr) = CliTests.Run("score", Folder, "--weights", Weights, "--out", Single, "--top", "3", "--batch", "3");
            code.Should().Be(0, stderr);
            SingleStdout = stdout;
        }

        /// <summary>Copied photographs: source name in skimage/data, relative path in the folder.</summary>
        public static readonly (string Source, string Target)[] Files =
        [
            ("astronaut.png", "astronaut.png"),
            ("camera.png", "camera.png"),
            ("chelsea.png", "sub/chelsea.png"),
            ("coffee.png", "sub/Coffee.png"),
            ("rocket.jpg", "sub/deeper/rocket.jpg"),
            ("horse.png", "sub/deeper/horse.png"),
            ("coins.png", "b_coins.png"),
        ];

        /// <summary>The rows' paths in ordinal order, written out by hand.</summary>
        public static readonly string[] Expected =
        [
            "astronaut.png", "b_coins.png", "camera.png", "sub/Coffee.png", "sub/chelsea.png", "sub/corrupt.jpg",
            "sub/deeper/horse.png", "sub/deeper/rocket.jpg",
        ];

        public string Root { get; }

        public string Folder { get; }

        public string Weights { get; }

        public string Single { get; }

        public string SingleStdout { get; }
    }

    private readonly Photos photos;

    public ScoreCommandTests(Photos photos) => this.photos = photos;

    private string NewOut(string name)
    {
        string dir = Path.Combine(photos.Root, name + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        return Path.Combine(dir, "results.jsonl");
    }

    [Fact]
    public void SingleProcess_RowsInOrdinalOrder_MatchPerImageClassification_CorruptFileIsAnErrorRow()
    {
        photos.SingleStdout.Should().Contain("shard 0/1: 8 images, 0 already in results.jsonl.part-0-of-1, 7 scored, 1 unreadable");
        var lines = File.ReadAllLines(photos.Single);
        lines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("path").GetString()).Should().Equal(Photos.Expected);

        var corrupt = JsonDocument.Parse(lines[5]).RootElement;
        corrupt.EnumerateObject().Select(p => p.Name).Should().Equal("path", "error");
        corrupt.GetProperty("error").GetString().Should().StartWith("sub/corrupt.jpg: ").And.Contain("not an image")
            .And.NotContain(photos.Folder, "the row names the image by its path in the folder, wherever the folder lies");

        // Each row against the image classified alone, in this process (batch of one).
        using var classifier = ImageClassifier.FromWeights(photos.Weights);
        foreach (var line in lines.Where((_, i) => i != 5))
        {
            var row = JsonDocument.Parse(line).RootElement;
            row.EnumerateObject().Select(p => p.Name).Should().Equal("path", "indices", "labels", "probabilities");
            string path = row.GetProperty("path").GetString()!;
            var alone = classifier.Classify(Path.Combine(photos.Folder, path), 3);
            row.GetProperty("indices").EnumerateArray().Select(e => e.GetInt32()).Should().Equal(alone.Top.Select(t => t.Index), path);
            row.GetProperty("labels").EnumerateArray().Select(e => e.GetString()).Should().Equal(alone.Top.Select(t => t.Label), path);
            var p = row.GetProperty("probabilities").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            p.Should().HaveCount(3).And.BeInDescendingOrder();
            for (int i = 0; i < 3; i++)
            {
                p[i].Should().BeApproximately(alone.Top[i].Probability, 2e-6, path);
            }
        }
    }

    [Fact]
    public void ThreeExplicitShards_MergeToTheSingleRunByteForByte()
    {
        string output = NewOut("shards");
        for (int i = 0; i < 3; i++)
        {
            var (code, stdout, stderr) = CliTests.Run("score", photos.Folder, "--weights", photos.Weights, "--out", output, "--top", "3", "--batch", "2", "--shard", $"{i}/3");
            code.Should().Be(0, stderr);
            // Every N-th image from i.
            var part = File.ReadAllLines($"{output}.part-{i}-of-3").Select(l => JsonDocument.Parse(l).RootElement.GetProperty("path").GetString());
            part.Should().Equal(Photos.Expected.Where((_, j) => j % 3 == i));
            if (i < 2)
            {
                stdout.Should().Contain("not merged yet");
                File.Exists(output).Should().BeFalse("parts are missing");
            }
        }

        File.ReadAllBytes(output).Should().Equal(File.ReadAllBytes(photos.Single));

        // An explicit merge rewrites the same file.
        File.Delete(output);
        var merge = CliTests.Run("score", photos.Folder, "--out", output, "--merge");
        merge.ExitCode.Should().Be(0, merge.Stderr);
        File.ReadAllBytes(output).Should().Equal(File.ReadAllBytes(photos.Single));
    }

    [Fact]
    public void FileList_GivesTheFolderRunsRows()
    {
        string output = NewOut("list");
        string list = Path.Combine(Path.GetDirectoryName(output)!, "list.txt");
        // Relative to the list's folder, out of order, a blank line: the rows come sorted all the same.
        File.WriteAllLines(list, Photos.Expected.Reverse().Select(p => "../images/" + p).Append(""));
        var (code, _, stderr) = CliTests.Run("score", list, "--weights", photos.Weights, "--out", output, "--top", "3");
        code.Should().Be(0, stderr);
        var rows = File.ReadAllLines(output);
        var single = File.ReadAllLines(photos.Single);
        rows.Should().HaveCount(single.Length);
        for (int i = 0; i < rows.Length; i++)
        {
            if (i == 5)
            {
                continue; // the error row names the file as listed
            }

            rows[i].Should().Be(single[i].Replace("{\"path\":\"", "{\"path\":\"../images/", StringComparison.Ordinal));
        }
    }

    [Theory]
    [InlineData("mpich")]
    [InlineData("openmpi")]
    public void TwoRanksUnderMpiexec_EqualTheSingleRun(string flavor)
    {
        string output = NewOut("mpi-" + flavor);
        var (code, stdout, stderr, timedOut) = MpiRun.Run(flavor, 2, 300, null, Path.Combine(AppContext.BaseDirectory, "resnet.dll"),
            "score", photos.Folder, "--weights", photos.Weights, "--out", output, "--top", "3", "--batch", "3");
        timedOut.Should().BeFalse();
        code.Should().Be(0, stdout + stderr);
        stdout.Should().Contain("shard 0/2: 4 images").And.Contain("shard 1/2: 4 images");
        File.Exists(output + ".part-0-of-2").Should().BeTrue();
        File.Exists(output + ".part-1-of-2").Should().BeTrue();
        File.ReadAllBytes(output).Should().Equal(File.ReadAllBytes(photos.Single));
    }

    [Fact]
    public void Resume_AfterLostAndTornRows_ScoresOnlyTheMissingAndGivesTheSameFile()
    {
        string output = NewOut("resume");
        string part = output + ".part-0-of-1";
        var lines = File.ReadAllLines(photos.Single);
        // As a crash would leave it: rows 1 and 6 never written, then half a row (no newline) cut by the crash.
        var kept = lines.Where((_, i) => i != 1 && i != 6).ToList();
        File.WriteAllText(part, string.Concat(kept.Select(l => l + "\n")) + lines[6][..20]);

        var (code, stdout, stderr) = CliTests.Run("score", photos.Folder, "--weights", photos.Weights, "--out", output, "--top", "3", "--batch", "3");
        code.Should().Be(0, stderr);
        stdout.Should().Contain("8 images, 6 already in results.jsonl.part-0-of-1, 2 scored, 0 unreadable");
        File.ReadAllBytes(output).Should().Equal(File.ReadAllBytes(photos.Single));
        // The part is whole lines: the 6 kept, then the 2 rescored.
        var after = File.ReadAllLines(part);
        after.Should().HaveCount(8);
        after.Take(6).Should().Equal(kept);
        after.Skip(6).Should().Equal(lines[1], lines[6]);

        // A second rerun finds everything done.
        var again = CliTests.Run("score", photos.Folder, "--weights", photos.Weights, "--out", output, "--top", "3");
        again.ExitCode.Should().Be(0, again.Stderr);
        again.Stdout.Should().Contain("8 images, 8 already in");
        File.ReadAllBytes(output).Should().Equal(File.ReadAllBytes(photos.Single));
    }

    [Fact]
    public void Resume_WithAnotherTop_IsRefused()
    {
        string output = NewOut("top");
        var lines = File.ReadAllLines(photos.Single);
        File.WriteAllLines(output + ".part-0-of-1", lines.Take(3));
        var (code, _, stderr) = CliTests.Run("score", photos.Folder, "--weights", photos.Weights, "--out", output, "--top", "2");
        code.Should().Be(1);
        stderr.Split('\n').Should().ContainSingle().Which.Should().Contain("was scored with --top 3 and this run asks for 2: rerun with --top 3");
        File.ReadAllLines(output + ".part-0-of-1").Should().Equal(lines.Take(3), "a refused run writes nothing");
    }

    [Fact]
    public void KilledMidway_ThenRerun_GivesTheSameFile()
    {
        string output = NewOut("killed");
        string part = output + ".part-0-of-1";
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { Path.Combine(AppContext.BaseDirectory, "resnet.dll"), "score", photos.Folder, "--weights", photos.Weights, "--out", output, "--top", "3", "--batch", "1" })
        {
            psi.ArgumentList.Add(a);
        }

        using (var process = System.Diagnostics.Process.Start(psi)!)
        {
            // Kill as soon as the first batch is on disk (or at the end if it was faster than the polling).
            while (!process.HasExited && (!File.Exists(part) || new FileInfo(part).Length == 0))
            {
                System.Threading.Thread.Sleep(20);
            }

            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }

            process.WaitForExit();
        }

        File.Exists(output).Should().BeFalse("the run was killed before its merge");
        var (code, _, stderr) = CliTests.Run("score", photos.Folder, "--weights", photos.Weights, "--out", output, "--top", "3", "--batch", "3");
        code.Should().Be(0, stderr);
        File.ReadAllBytes(output).Should().Equal(File.ReadAllBytes(photos.Single));
    }

    public static IEnumerable<object[]> BadArguments()
    {
        yield return new object[] { "shard-range", new[] { "--shard", "3/2" }, "--shard '3/2' is not I/N with 0 ≤ I < N" };
        yield return new object[] { "shard-form", new[] { "--shard", "1" }, "--shard '1' is not I/N" };
        yield return new object[] { "no-weights", Array.Empty<string>(), "Give --weights" };
        yield return new object[] { "missing-weights", new[] { "--weights", "/nonexistent/w.safetensors" }, "Weight file '/nonexistent/w.safetensors' does not exist" };
        yield return new object[] { "batch", new[] { "--batch", "0" }, "--batch must be ≥ 1, got 0" };
        yield return new object[] { "classes-without-model", new[] { "--classes", "5" }, "--classes 5 applies with --model NAME" };
    }

    [Theory]
    [MemberData(nameof(BadArguments))]
    public void BadArguments_OneErrorLine_NonZeroExit(string name, string[] extra, string message)
    {
        string output = NewOut("bad-" + name);
        var args = new List<string> { "score", photos.Folder, "--out", output };
        if (name != "no-weights" && name != "missing-weights")
        {
            args.AddRange(new[] { "--weights", photos.Weights });
        }

        args.AddRange(extra);
        var (code, _, stderr) = CliTests.Run(args.ToArray());
        code.Should().Be(1);
        stderr.Split('\n').Should().ContainSingle().Which.Should().StartWith("resnet: error: ").And.Contain(message);
        Directory.GetFiles(Path.GetDirectoryName(output)!).Should().BeEmpty("nothing is written on bad arguments");
    }

    [Fact]
    public void EmptyFolder_IsAnError()
    {
        string output = NewOut("empty");
        string empty = Path.Combine(photos.Root, "empty-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Path.Combine(empty, "sub"));
        File.WriteAllText(Path.Combine(empty, "sub", "readme.txt"), "no images");
        var (code, _, stderr) = CliTests.Run("score", empty, "--weights", photos.Weights, "--out", output);
        code.Should().Be(1);
        stderr.Split('\n').Should().ContainSingle().Which.Should().Contain($"No image files in folder '{empty}'").And.Contain(".png, .jpg");
    }

    [Fact]
    public void ShardDisagreeingWithTheLaunchersSize_IsAnError()
    {
        string output = NewOut("launcher");
        var env = new Dictionary<string, string> { ["PMI_RANK"] = "0", ["PMI_SIZE"] = "2" };
        var (code, _, stderr) = CliTests.RunWith(env, "score", photos.Folder, "--weights", photos.Weights, "--out", output, "--shard", "0/3");
        code.Should().Be(1);
        stderr.Split('\n').Should().ContainSingle().Which.Should().Contain("--shard 0/3 splits into 3 shards but the MPI launcher started 2 processes");
    }

    [Fact]
    public void Merge_WithAPartMissing_SaysWhichAndWritesNothing()
    {
        string output = NewOut("partial");
        File.Copy(photos.Single + ".part-0-of-1", output + ".part-0-of-1");
        var lines = File.ReadAllLines(output + ".part-0-of-1");
        File.WriteAllLines(output + ".part-0-of-1", lines.Take(5));
        var (code, _, stderr) = CliTests.Run("score", photos.Folder, "--out", output, "--merge");
        code.Should().Be(1);
        stderr.Should().Contain("Cannot merge: part 0/1 has 5 of 8 rows");
        File.Exists(output).Should().BeFalse();
    }
}
