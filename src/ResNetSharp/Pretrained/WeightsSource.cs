using System;
using System.IO;
using System.Threading;
using System.Threading.Tasks;

namespace ResNetSharp.Pretrained;

/// <summary>Where <see cref="WeightsSource.Resolve"/> found the weights: a local file and, for registry names, the entry with its metadata.</summary>
/// <param name="Path">The local file (a cache file for URLs and names).</param>
/// <param name="Entry">The registry entry when the spec was a name; null for files and URLs.</param>
internal sealed record ResolvedWeights(string Path, PretrainedWeights? Entry)
{
    /// <summary>The entry's metadata (preprocessing, class names), or null for files and URLs (read the file's own then).</summary>
    public ModelMetadata? Metadata => Entry?.Metadata;
}

/// <summary>
/// One way to name weights on a command line or in a config: a local FILE, an <c>https</c>/<c>http</c>/<c>file</c> URL
/// with its SHA-256, or a registry NAME (<c>resnet50.imagenet1k_v2</c>, <c>ResNet50_Weights.IMAGENET1K_V2</c>,
/// <c>resnet50</c>). URLs and names are downloaded into the <see cref="WeightsCache"/> (or found there).
/// </summary>
internal static class WeightsSource
{
    /// <summary>Resolves a weights spec to a local file.</summary>
    /// <param name="spec">A path to an existing file, a URL, or a registry name (tried in that order).</param>
    /// <param name="sha256">For a URL: its SHA-256 (full or a prefix of ≥ 8 hex digits), required. For a file: checked when given. For a name: must agree with the entry when given.</param>
    /// <param name="cacheDirectory">Cache folder; null for <see cref="WeightsCache.DefaultDirectory"/>.</param>
    /// <param name="progress">Download progress, when something is downloaded.</param>
    /// <param name="cancellationToken">Cancels a download.</param>
    /// <exception cref="ArgumentException">The spec is none of the three, a URL has no hash, or a hash is malformed.</exception>
    /// <exception cref="WeightsDownloadException">A download failed or a file's hash is wrong.</exception>
    public static async Task<ResolvedWeights> ResolveAsync(string spec, string? sha256 = null, string? cacheDirectory = null,
        IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(spec);
        if (sha256 is not null)
        {
            WeightsCache.CheckSha256(sha256, "--sha256");
        }

        if (File.Exists(spec))
        {
            string path = System.IO.Path.GetFullPath(spec);
            if (sha256 is not null)
            {
                string actual = WeightsCache.ComputeSha256(path);
                if (!WeightsCache.HashMatches(actual, sha256))
                {
                    throw new WeightsDownloadException($"{path}: SHA-256 mismatch: expected {sha256}, got {actual}.", new Uri(path), sha256, actual);
                }
            }

            return new ResolvedWeights(path, null);
        }

        if (IsUrl(spec, out var url))
        {
            if (sha256 is null)
            {
                throw new ArgumentException($"'{spec}' is a URL: give its SHA-256 too (--sha256 HEX, the full hash or at least its first 8 hex digits), so the download can be checked.");
            }

            string target = System.IO.Path.Combine(cacheDirectory ?? WeightsCache.DefaultDirectory, "url", sha256.ToLowerInvariant(), WeightsCache.FileNameOf(url, "download"));
            string path = await WeightsCache.FetchAsync(url, sha256, null, target, progress, cancellationToken).ConfigureAwait(false);
            return new ResolvedWeights(path, null);
        }

        if (WeightsRegistry.TryGet(spec, out var entry))
        {
            if (sha256 is not null && !WeightsCache.HashMatches(entry.Sha256.PadRight(64, '0'), sha256[..Math.Min(sha256.Length, entry.Sha256.Length)]))
            {
                throw new ArgumentException($"--sha256 {sha256} disagrees with the registry's hash for '{entry.Name}' ({entry.Sha256}).");
            }

            string path = await WeightsCache.DownloadAsync(entry, progress, cacheDirectory, cancellationToken).ConfigureAwait(false);
            return new ResolvedWeights(path, entry);
        }

        throw new ArgumentException(
            $"'{spec}' is neither an existing file, an http(s)/file URL, nor registered weights (see 'resnet pretrained list'; e.g. resnet50.imagenet1k_v2).");
    }

    /// <summary>True when <paramref name="spec"/> is an <c>https</c>, <c>http</c> or <c>file</c> URL (with the scheme spelled out).</summary>
    public static bool IsUrl(string spec, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Uri? url)
    {
        // On Unix an absolute path also parses as a file URI: only a spelled-out scheme makes a URL.
        url = null;
        return spec.Contains("://", StringComparison.Ordinal) && Uri.TryCreate(spec, UriKind.Absolute, out url) && url.Scheme is "https" or "http" or "file";
    }

    /// <summary>Synchronous <see cref="ResolveAsync"/>.</summary>
    /// <inheritdoc cref="ResolveAsync" path="/param"/>
    /// <inheritdoc cref="ResolveAsync" path="/exception"/>
    public static ResolvedWeights Resolve(string spec, string? sha256 = null, string? cacheDirectory = null, IProgress<DownloadProgress>? progress = null,
        CancellationToken cancellationToken = default) =>
        ResolveAsync(spec, sha256, cacheDirectory, progress, cancellationToken).GetAwaiter().GetResult();
}
