using System;
using System.CommandLine;
using System.Globalization;
using System.Linq;

namespace ResNetSharp.Cli.Commands;

/// <summary><c>resnet pretrained list</c> and <c>resnet pretrained download NAME|URL [--sha256 H] [--cache DIR]</c>.</summary>
internal static class PretrainedCommand
{
    public static Command Create()
    {
        var command = new Command("pretrained", "Registered pretrained weights: list them, or download one into the cache.");
        command.Subcommands.Add(List());
        command.Subcommands.Add(Download());
        return command;
    }

    private static Command List()
    {
        var json = new Option<bool>("--json") { Description = "Print a JSON array." };
        var cache = new Option<string?>("--cache") { Description = "Cache folder (default: $RESNETSHARP_CACHE, $XDG_CACHE_HOME/resnetsharp or ~/.cache/resnetsharp)." };
        var command = new Command("list", "List the registered pretrained weights (name, model, accuracy, cached or not).") { json, cache };
        command.SetAction(parse => Cli.Guard(() =>
        {
            string? folder = parse.GetValue(cache);
            var entries = PretrainedWeights.All;
            if (parse.GetValue(json))
            {
                Cli.WriteJson(entries.Select(e => new
                {
                    name = e.Name,
                    architecture = e.Architecture,
                    url = e.Url.ToString(),
                    sha256 = e.Sha256,
                    acc1 = e.Acc1,
                    acc5 = e.Acc5,
                    numParams = e.NumParams,
                    resize = e.Metadata.ResizeSize,
                    crop = e.Metadata.InputSize,
                    source = e.Source,
                    cached = e.IsCached(folder),
                }));
                return 0;
            }

            Console.WriteLine($"{"name",-32} {"model",-18} {"acc@1",7} {"acc@5",7} {"resize/crop",11}  cached");
            foreach (var e in entries)
            {
                string acc(double? v) => v?.ToString("F3", CultureInfo.InvariantCulture) ?? "-";
                Console.WriteLine($"{e.Name,-32} {e.Architecture,-18} {acc(e.Acc1),7} {acc(e.Acc5),7} {$"{e.Metadata.ResizeSize}/{e.Metadata.InputSize}",11}  " +
                                  (e.IsCached(folder) ? "yes" : "no"));
            }

            Console.WriteLine($"cache: {folder ?? PretrainedWeights.DefaultCacheDirectory}");
            return 0;
        }));
        return command;
    }

    private static Command Download()
    {
        var spec = new Argument<string>("weights") { Description = "A registered name (resnet50.imagenet1k_v2, ResNet50_Weights.IMAGENET1K_V2), or an http(s)/file URL with --sha256." };
        var sha = new Option<string?>("--sha256") { Description = "The file's SHA-256 (full, or at least its first 8 hex digits); required for a URL." };
        var cache = new Option<string?>("--cache") { Description = "Cache folder (default: $RESNETSHARP_CACHE, $XDG_CACHE_HOME/resnetsharp or ~/.cache/resnetsharp)." };
        var command = new Command("download", "Download weights into the cache (hash-checked; nothing is kept on failure) and print the file's path.") { spec, sha, cache };
        command.SetAction(parse => Cli.Guard(() =>
        {
            var progress = new LineProgress();
            var resolved = WeightsSource.Resolve(parse.GetValue(spec)!, parse.GetValue(sha), parse.GetValue(cache), progress);
            if (resolved.Entry is { } e)
            {
                Console.Error.WriteLine($"{e.Name}: {e.Architecture}, {e.Metadata.NumClasses} classes, checked against SHA-256 {e.Sha256}{(e.HasFullSha256 ? string.Empty : "… (published prefix)")}");
            }

            Console.WriteLine(resolved.Path);
            return 0;
        }));
        return command;
    }

    /// <summary>Plain progress lines on stderr, at most one per 10 % (or per 10 MB when the size is unknown).</summary>
    internal sealed class LineProgress : IProgress<DownloadProgress>
    {
        private long lastStep = -1;

        public void Report(DownloadProgress value)
        {
            long step = value.Fraction is { } f ? (long)(f * 10) : value.BytesReceived / 10_000_000;
            if (step != lastStep)
            {
                lastStep = step;
                Console.Error.WriteLine($"downloading: {value}");
            }
        }
    }
}
