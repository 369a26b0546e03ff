using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.CommandLine;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using System.Threading;

namespace ResNetSharp.Cli.Commands;

/// <summary>
/// <c>resnet score FOLDER|LIST --weights W --out results.jsonl [--top K] [--batch N] [--shard i/N] [--merge]</c>: scores
/// stored images in bulk, one JSON line per image. Every process lists the images the same way (ordinal by relative
/// path), takes its shard (every N-th image from i; under mpiexec the launcher's rank and size), appends complete lines
/// to its own part file (fsync per batch; a torn last line is cut on resume; paths already there are skipped) and, when
/// every part holds exactly its shard, merges them into <c>--out</c> in the global order (temp file + rename).
/// </summary>
internal static class ScoreCommand
{
    /// <summary>File extensions taken from a folder (lower case).</summary>
    internal static readonly string[] ImageExtensions = [".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"];

    public static Command Create()
    {
        var input = new Argument<string>("input") { Description = "A folder (walked recursively for image files) or a text file with one image path per line (relative paths are relative to the list's folder)." };
        var weights = ClassifierLoading.WeightsOption();
        var model = ClassifierLoading.ModelOption();
        var classes = ClassifierLoading.ClassesOption();
        var sha256 = ClassifierLoading.Sha256Option();
        var output = new Option<string>("--out") { Description = "The merged JSON-lines file; shards write OUT.part-I-of-N next to it.", Required = true };
        var top = new Option<int>("--top") { Description = "Classes kept per image.", DefaultValueFactory = _ => 5 };
        var batch = new Option<int>("--batch") { Description = "Images per forward pass (also bounds the decode-ahead queue at twice this).", DefaultValueFactory = _ => 16 };
        var shard = new Option<string?>("--shard") { Description = "Score shard I of N (every N-th image from index I, 0-based), e.g. 1/3. Default: the MPI launcher's rank/size, else 0/1." };
        var merge = new Option<bool>("--merge") { Description = "Only merge finished part files into --out (checks every part holds exactly its shard)." };
        var command = new Command("score", "Score stored images in bulk into JSON lines: sharded (or under mpiexec), resumable, decode-ahead, one error row per unreadable image.")
        {
            input, weights, sha256, model, classes, output, top, batch, shard, merge,
        };
        command.SetAction(parse => Cli.Guard(() =>
        {
            string outPath = Path.GetFullPath(parse.GetValue(output)!);
            int k = parse.GetValue(top);
            if (k < 1)
            {
                throw new ArgumentException($"--top must be ≥ 1, got {k}.");
            }

            int batchSize = parse.GetValue(batch);
            if (batchSize < 1)
            {
                throw new ArgumentException($"--batch must be ≥ 1, got {batchSize}.");
            }

            var (outDir, outName) = (Path.GetDirectoryName(outPath)!, Path.GetFileName(outPath));
            if (!Directory.Exists(outDir))
            {
                throw new DirectoryNotFoundException($"The folder of --out '{outPath}' does not exist.");
            }

            var images = ListImages(parse.GetValue(input)!);
            if (parse.GetValue(merge))
            {
                if (parse.GetValue(shard) is not null)
                {
                    throw new ArgumentException("--merge merges every part: leave out --shard.");
                }

                int parts = FindPartCount(outDir, outName);
                var missing = Merge(images, outPath, parts);
                if (missing.Count > 0)
                {
                    throw new InvalidOperationException($"Cannot merge: {string.Join("; ", missing)}.");
                }

                Console.WriteLine($"merged {parts} part(s): {images.Count} rows -> {outPath}");
                return 0;
            }

            var (index, count) = ResolveShard(parse.GetValue(shard), Environment.GetEnvironmentVariable);
            string part = PartPath(outPath, index, count);
            var (done, topInPart) = PrepareResume(part);
            var mine = Enumerable.Range(0, images.Count).Where(i => i % count == index).Select(i => images[i]).ToList();
            var todo = mine.Where(m => !done.Contains(m.Name)).ToList();
            int scored = 0, failed = 0;
            using (var classifier = ClassifierLoading.Load(parse.GetValue(weights), parse.GetValue(model), parse.GetValue(classes), parse.GetValue(sha256)))
            {
                if (topInPart is { } previous && previous != Math.Min(k, classifier.NumClasses))
                {
                    throw new ArgumentException(
                        $"'{part}' was scored with --top {previous} and this run asks for {Math.Min(k, classifier.NumClasses)}: rerun with --top {previous} to resume, or delete the part to start over.");
                }

                if (todo.Count > 0)
                {
                    (scored, failed) = ScoreInto(classifier, todo, part, k, batchSize);
                }
            }

            Console.WriteLine($"shard {index}/{count}: {mine.Count} images, {mine.Count - todo.Count} already in {Path.GetFileName(part)}, {scored} scored, {failed} unreadable");
            var waiting = Merge(images, outPath, count);
            Console.WriteLine(waiting.Count == 0
                ? $"merged {count} part(s): {images.Count} rows -> {outPath}"
                : $"not merged yet ({string.Join("; ", waiting)}): the last shard to finish merges, or run 'resnet score --merge'");
            return 0;
        }));
        return command;
    }

    /// <summary>One image to score: <see cref="Name"/> is the row's path, <see cref="File"/> where it is read from.</summary>
    internal readonly record struct ImageEntry(string Name, string File);

    /// <summary>The images of a folder (recursively, relative '/' paths) or of a list file, sorted ordinal by name.</summary>
    internal static List<ImageEntry> ListImages(string input)
    {
        List<ImageEntry> entries;
        if (Directory.Exists(input))
        {
            string root = Path.GetFullPath(input);
            entries = Directory.EnumerateFiles(root, "*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = false, AttributesToSkip = 0 })
                .Where(f => ImageExtensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
                .Select(f => new ImageEntry(Path.GetRelativePath(root, f).Replace(Path.DirectorySeparatorChar, '/'), f))
                .ToList();
            if (entries.Count == 0)
            {
                throw new ArgumentException($"No image files in folder '{input}': expected files ending in {string.Join(", ", ImageExtensions)} (searched recursively).");
            }
        }
        else if (File.Exists(input))
        {
            string listDir = Path.GetDirectoryName(Path.GetFullPath(input))!;
            entries = File.ReadAllLines(input).Select(l => l.Trim()).Where(l => l.Length > 0)
                .Select(l => new ImageEntry(l, Path.GetFullPath(l, listDir))).ToList();
            if (entries.Count == 0)
            {
                throw new ArgumentException($"The file list '{input}' names no images: expected one image path per line.");
            }
        }
        else
        {
            throw new FileNotFoundException($"Input '{input}' is neither a folder nor a file list.", input);
        }

        entries.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        for (int i = 1; i < entries.Count; i++)
        {
            if (entries[i].Name == entries[i - 1].Name)
            {
                throw new ArgumentException($"The image '{entries[i].Name}' is listed twice: every path must be unique.");
            }
        }

        return entries;
    }

    /// <summary>
    /// The shard: an explicit <c>i/N</c>, else the MPI launcher's rank and size (PMI_RANK/PMI_SIZE from MPICH's hydra,
    /// OMPI_COMM_WORLD_RANK/SIZE from Open MPI), else 0/1. An explicit N that differs from the launcher's size is an error.
    /// </summary>
    internal static (int Index, int Count) ResolveShard(string? spec, Func<string, string?> env)
    {
        (int Rank, int Size)? launcher = null;
        foreach (var (rankVar, sizeVar) in new[] { ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"), ("PMI_RANK", "PMI_SIZE") })
        {
            if (env(rankVar) is { } r && env(sizeVar) is { } s)
            {
                if (!int.TryParse(r, NumberStyles.None, CultureInfo.InvariantCulture, out int rank) ||
                    !int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int size) || size < 1 || rank >= size)
                {
                    throw new InvalidOperationException($"The MPI launcher's {rankVar}='{r}' / {sizeVar}='{s}' are not a rank below a size ≥ 1.");
                }

                launcher = (rank, size);
                break;
            }
        }

        if (spec is null)
        {
            return launcher ?? (0, 1);
        }

        string[] parts = spec.Split('/');
        if (parts.Length != 2 ||
            !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int index) ||
            !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int count) || count < 1 || index >= count)
        {
            throw new ArgumentException($"--shard '{spec}' is not I/N with 0 ≤ I < N (e.g. 0/3, 1/3, 2/3).");
        }

        if (launcher is { Size: > 1 } l && l.Size != count)
        {
            throw new ArgumentException($"--shard {spec} splits into {count} shards but the MPI launcher started {l.Size} processes: give N = {l.Size} or leave out --shard.");
        }

        return (index, count);
    }

    internal static string PartPath(string outPath, int index, int count) =>
        $"{outPath}.part-{index.ToString(CultureInfo.InvariantCulture)}-of-{count.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>
    /// Makes the part file a sequence of complete lines (cutting a torn last line a crash may have left) and returns the
    /// paths already in it and the K of its first scored row (a resumed run must keep it).
    /// </summary>
    internal static (HashSet<string> Done, int? Top) PrepareResume(string part)
    {
        var done = new HashSet<string>(StringComparer.Ordinal);
        int? top = null;
        if (!File.Exists(part))
        {
            return (done, top);
        }

        using (var stream = new FileStream(part, FileMode.Open, FileAccess.ReadWrite))
        {
            long length = stream.Length;
            long keep = length;
            if (length > 0)
            {
                // Scan back to the last newline: everything after it is an unfinished row.
                var buffer = new byte[1];
                keep = 0;
                for (long pos = length - 1; pos >= 0; pos--)
                {
                    stream.Position = pos;
                    stream.ReadExactly(buffer);
                    if (buffer[0] == (byte)'\n')
                    {
                        keep = pos + 1;
                        break;
                    }
                }
            }

            if (keep != length)
            {
                stream.SetLength(keep);
                stream.Flush(true);
            }
        }

        foreach (var (line, number) in File.ReadLines(part).Select((l, i) => (l, i + 1)))
        {
            done.Add(RowPath(line, part, number));
            if (top is null && line.Contains("\"indices\":", StringComparison.Ordinal))
            {
                using var doc = JsonDocument.Parse(line);
                top = doc.RootElement.GetProperty("indices").GetArrayLength();
            }
        }

        return (done, top);
    }

    private static string RowPath(string line, string file, int number)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("path", out var p) && p.ValueKind == JsonValueKind.String)
            {
                return p.GetString()!;
            }
        }
        catch (JsonException)
        {
        }

        throw new InvalidDataException($"Line {number} of '{file}' is not a score row (a JSON object with a \"path\"): delete the file to score that shard again.");
    }

    private sealed record Decoded(ImageEntry Entry, PixelImage? Image, string? Error);

    /// <summary>Decodes ahead on a background thread (bounded queue), classifies batches and appends their rows.</summary>
    private static (int Scored, int Failed) ScoreInto(ImageClassifier classifier, List<ImageEntry> todo, string part, int k, int batchSize)
    {
        using var queue = new BlockingCollection<Decoded>(Math.Max(2 * batchSize, 2));
        using var stop = new CancellationTokenSource();
        var producer = new Thread(() =>
        {
            try
            {
                foreach (var entry in todo)
                {
                    Decoded item;
                    try
                    {
                        item = new Decoded(entry, classifier.Decode(entry.File), null);
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException or ArgumentException or NotSupportedException)
                    {
                        // The row's path, not where this process found it: shards on other hosts write the same row.
                        item = new Decoded(entry, null, e.Message.Split('\n')[0].Trim().Replace(entry.File, entry.Name, StringComparison.Ordinal));
                    }

                    queue.Add(item, stop.Token);
                }
            }
            catch (OperationCanceledException)
            {
            }
            finally
            {
                queue.CompleteAdding();
            }
        }) { IsBackground = true, Name = "score-decode" };
        producer.Start();

        int scored = 0, failed = 0;
        try
        {
            using var stream = new FileStream(part, FileMode.Append, FileAccess.Write, FileShare.Read);
            var pending = new List<Decoded>(batchSize);
            foreach (var item in queue.GetConsumingEnumerable())
            {
                pending.Add(item);
                if (pending.Count == batchSize)
                {
                    (scored, failed) = Flush(classifier, pending, stream, k, scored, failed);
                }
            }

            (scored, failed) = Flush(classifier, pending, stream, k, scored, failed);
        }
        finally
        {
            stop.Cancel();
            producer.Join();
        }

        return (scored, failed);
    }

    private static (int, int) Flush(ImageClassifier classifier, List<Decoded> pending, FileStream stream, int k, int scored, int failed)
    {
        if (pending.Count == 0)
        {
            return (scored, failed);
        }

        var ok = pending.Where(p => p.Image is not null).ToList();
        var predictions = ok.Count == 0 ? [] : classifier.ClassifyMany(ok.Select(p => p.Image!), Math.Min(k, classifier.NumClasses));
        var byPath = ok.Select((p, i) => (p.Entry.Name, predictions[i])).ToDictionary(t => t.Name, t => t.Item2, StringComparer.Ordinal);
        var text = new StringBuilder();
        foreach (var item in pending)
        {
            text.Append(item.Image is null ? ErrorRow(item.Entry.Name, item.Error!) : Row(item.Entry.Name, byPath[item.Entry.Name])).Append('\n');
        }

        // One write of whole lines, then fsync: a crash leaves at most a torn last line, which the next run cuts.
        byte[] bytes = Encoding.UTF8.GetBytes(text.ToString());
        stream.Write(bytes);
        stream.Flush(true);
        scored += ok.Count;
        failed += pending.Count - ok.Count;
        pending.Clear();
        return (scored, failed);
    }

    /// <summary>A row: path, then the top-K indices, labels and probabilities (rounded to 6 decimals so that a batch's composition cannot change the text).</summary>
    internal static string Row(string path, Prediction prediction)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("path", path);
            w.WriteStartArray("indices");
            foreach (var t in prediction.Top)
            {
                w.WriteNumberValue(t.Index);
            }

            w.WriteEndArray();
            w.WriteStartArray("labels");
            foreach (var t in prediction.Top)
            {
                w.WriteStringValue(t.Label);
            }

            w.WriteEndArray();
            w.WriteStartArray("probabilities");
            foreach (var t in prediction.Top)
            {
                w.WriteNumberValue(Math.Round((double)t.Probability, 6));
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(ms.ToArray());
    }

    internal static string ErrorRow(string path, string error)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("path", path);
            w.WriteString("error", error);
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(ms.ToArray());
    }

    /// <summary>The N of the part files next to <paramref name="outName"/> (all must agree).</summary>
    private static int FindPartCount(string outDir, string outName)
    {
        var counts = Directory.EnumerateFiles(outDir, outName + ".part-*-of-*")
            .Select(f => Path.GetFileName(f)[(outName.Length + ".part-".Length)..])
            .Select(rest => rest.Split("-of-"))
            .Where(p => p.Length == 2 && int.TryParse(p[0], NumberStyles.None, CultureInfo.InvariantCulture, out _) && int.TryParse(p[1], NumberStyles.None, CultureInfo.InvariantCulture, out _))
            .Select(p => int.Parse(p[1], CultureInfo.InvariantCulture))
            .Distinct().ToList();
        return counts.Count switch
        {
            0 => throw new FileNotFoundException($"No part files '{outName}.part-I-of-N' in '{outDir}': score the shards first."),
            1 => counts[0],
            _ => throw new InvalidOperationException($"Part files of different shard counts ({string.Join(", ", counts.Order())}) lie next to '{outName}': delete the stale ones."),
        };
    }

    /// <summary>
    /// Merges the parts into <paramref name="outPath"/> in the listing's order (temp file, fsync, rename) when every part
    /// holds exactly the paths of its shard; otherwise returns what is missing and writes nothing.
    /// </summary>
    internal static List<string> Merge(List<ImageEntry> images, string outPath, int count)
    {
        var problems = new List<string>();
        var rows = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int index = 0; index < count; index++)
        {
            string part = PartPath(outPath, index, count);
            var expected = Enumerable.Range(0, images.Count).Where(i => i % count == index).Select(i => images[i].Name).ToHashSet(StringComparer.Ordinal);
            if (!File.Exists(part))
            {
                problems.Add($"part {index}/{count} is missing");
                continue;
            }

            int have = 0;
            int number = 0;
            foreach (string line in ReadCompleteLines(part))
            {
                string path = RowPath(line, part, ++number);
                if (!expected.Contains(path))
                {
                    throw new InvalidDataException($"'{part}' holds a row for '{path}', which is not in shard {index}/{count} of this input: was it scored from another folder or list?");
                }

                if (rows.TryAdd(path, line))
                {
                    have++;
                }
            }

            if (have < expected.Count)
            {
                problems.Add($"part {index}/{count} has {have} of {expected.Count} rows");
            }
        }

        if (problems.Count > 0)
        {
            return problems;
        }

        // Unique per process (shards finishing together may both merge: each renames whole identical content).
        string temp = $"{outPath}.tmp-{Guid.NewGuid():N}";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write))
        {
            var bytes = Encoding.UTF8.GetBytes(string.Concat(images.Select(e => rows[e.Name] + "\n")));
            stream.Write(bytes);
            stream.Flush(true);
        }

        File.Move(temp, outPath, overwrite: true);
        return problems;
    }

    /// <summary>The complete lines of a file (a torn last line, still being written by another shard, is left out).</summary>
    private static IEnumerable<string> ReadCompleteLines(string path)
    {
        string text;
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        using (var reader = new StreamReader(stream, Encoding.UTF8))
        {
            text = reader.ReadToEnd();
        }

        int end = text.LastIndexOf('\n');
        return end < 0 ? [] : text[..end].Split('\n');
    }
}
