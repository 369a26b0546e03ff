using System;
using System.Collections.Concurrent;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net.Http;
using System.Security.Cryptography;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;

namespace ResNetSharp.Pretrained;

/// <summary>How far a download has got.</summary>
/// <param name="BytesReceived">Bytes written so far.</param>
/// <param name="TotalBytes">The file's size when the server (or the entry) says it; null when unknown.</param>
public sealed record DownloadProgress(long BytesReceived, long? TotalBytes)
{
    /// <summary>Fraction done in [0, 1], or null when the total is unknown.</summary>
    public double? Fraction => TotalBytes is > 0 and var t ? Math.Min(1.0, (double)BytesReceived / t) : null;

    /// <summary>"12.3 / 97.8 MB (13 %)", or in kB below 1 MB.</summary>
    public override string ToString()
    {
        bool small = (TotalBytes ?? BytesReceived) < 1_000_000;
        double unit = small ? 1e3 : 1e6;
        string name = small ? "kB" : "MB";
        return TotalBytes is { } t
            ? string.Create(CultureInfo.InvariantCulture, $"{BytesReceived / unit:F1} / {t / unit:F1} {name} ({Fraction * 100:F0} %)")
            : string.Create(CultureInfo.InvariantCulture, $"{BytesReceived / unit:F1} {name}");
    }
}

/// <summary>A download failed: unreachable server, HTTP error, broken transfer, wrong size or wrong hash. Nothing was left in the cache.</summary>
public sealed class WeightsDownloadException : IOException
{
    /// <summary>Creates the exception.</summary>
    public WeightsDownloadException(string message, Uri url, string? expectedSha256 = null, string? actualSha256 = null, Exception? inner = null)
        : base(message, inner)
    {
        Url = url;
        ExpectedSha256 = expectedSha256;
        ActualSha256 = actualSha256;
    }

    /// <summary>The URL that was being downloaded.</summary>
    public Uri Url { get; }

    /// <summary>The SHA-256 (or prefix) the file should have had.</summary>
    public string? ExpectedSha256 { get; }

    /// <summary>The SHA-256 of what was received, when the transfer completed.</summary>
    public string? ActualSha256 { get; }
}

/// <summary>
/// The download cache for pretrained weights (public through <see cref="PretrainedWeights.Download"/>). Folder: <c>$RESNETSHARP_CACHE</c>, else <c>$XDG_CACHE_HOME/resnetsharp</c>,
/// else <c>~/.cache/resnetsharp</c>, or any folder passed per call; an entry's file is <c>FOLDER/NAME/FILE</c>.
/// </summary>
/// <remarks>
/// <para>A download is streamed into a temporary file in the target folder and hashed (SHA-256) as it streams; only
/// when the transfer is complete, of the announced size and of the right hash is the temporary file renamed to its
/// final name (an atomic rename in one folder). A wrong hash, a broken or cancelled transfer, an HTTP error or an
/// unreachable server throws <see cref="WeightsDownloadException"/> (naming the URL, and the expected and actual hash
/// when it got that far) and removes the temporary file, so the cache never holds a partial or wrong file.</para>
/// <para>A cached file is not downloaded again. Its hash is verified once, when it is downloaded; a small
/// <c>FILE.verified</c> note beside it records the size, modification time and SHA-256 then seen. A later use trusts the
/// file when size and modification time still match the note (a cheap stat), and re-hashes it when they do not (a file
/// replaced or touched by someone else): a wrong file is then deleted and downloaded again.</para>
/// <para>Concurrent downloads of the same entry in one process share one transfer; across processes each writes its own
/// temporary file and the renames replace the file with identical verified content, so readers never see a partial file.</para>
/// </remarks>
internal static class WeightsCache
{
    private const string VerifiedSuffix = ".verified";

    private static readonly ConcurrentDictionary<string, SemaphoreSlim> Locks = new(StringComparer.Ordinal);

    private static readonly Lazy<HttpClient> Http = new(() => new HttpClient(new SocketsHttpHandler
    {
        ConnectTimeout = TimeSpan.FromSeconds(30),
        AutomaticDecompression = System.Net.DecompressionMethods.None,
    })
    {
        Timeout = Timeout.InfiniteTimeSpan, // large files: the caller's token bounds the time
        DefaultRequestHeaders = { { "User-Agent", "ResNetSharp" } },
    });

    /// <summary>The default cache folder: <c>$RESNETSHARP_CACHE</c>, else <c>$XDG_CACHE_HOME/resnetsharp</c>, else <c>~/.cache/resnetsharp</c>.</summary>
    public static string DefaultDirectory
    {
        get
        {
            string? own = Environment.GetEnvironmentVariable("RESNETSHARP_CACHE");
            if (!string.IsNullOrEmpty(own))
            {
                return Path.GetFullPath(own);
            }

            string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            if (!string.IsNullOrEmpty(xdg) && Path.IsPathRooted(xdg))
            {
                return Path.Combine(xdg, "resnetsharp");
            }

            return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "resnetsharp");
        }
    }

    /// <summary>Where the entry's file is (or would be) cached.</summary>
    /// <param name="entry">The weights.</param>
    /// <param name="cacheDirectory">Cache folder; null for <see cref="DefaultDirectory"/>.</param>
    public static string PathFor(PretrainedWeights entry, string? cacheDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return Path.Combine(cacheDirectory ?? DefaultDirectory, entry.Name, entry.FileName);
    }

    /// <summary>True when the entry's file is in the cache and known good (its verification note matches; see the remarks).</summary>
    public static bool IsCached(PretrainedWeights entry, string? cacheDirectory = null) =>
        IsVerified(PathFor(entry, cacheDirectory), entry.Sha256, entry.FileSize, rehash: false);

    /// <summary>Returns the entry's cached file, downloading it first when it is not cached (see the class remarks).</summary>
    /// <param name="entry">The weights.</param>
    /// <param name="progress">Receives progress while bytes arrive (not called for a cache hit).</param>
    /// <param name="cacheDirectory">Cache folder; null for <see cref="DefaultDirectory"/>.</param>
    /// <param name="cancellationToken">Cancels the download (nothing is left in the cache).</param>
    /// <returns>The full path of the verified file.</returns>
    /// <exception cref="WeightsDownloadException">The download failed or the file has the wrong size or hash.</exception>
    public static Task<string> DownloadAsync(PretrainedWeights entry, IProgress<DownloadProgress>? progress = null, string? cacheDirectory = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return FetchAsync(entry.Url, entry.Sha256, entry.FileSize, PathFor(entry, cacheDirectory), progress, cancellationToken);
    }

    /// <summary>Synchronous <see cref="DownloadAsync"/>.</summary>
    /// <inheritdoc cref="DownloadAsync" path="/param"/>
    /// <inheritdoc cref="DownloadAsync" path="/returns"/>
    /// <inheritdoc cref="DownloadAsync" path="/exception"/>
    public static string Download(PretrainedWeights entry, IProgress<DownloadProgress>? progress = null, string? cacheDirectory = null,
        CancellationToken cancellationToken = default) =>
        DownloadAsync(entry, progress, cacheDirectory, cancellationToken).GetAwaiter().GetResult();

    /// <summary>The SHA-256 of a file as lower-case hex.</summary>
    public static string ComputeSha256(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>True when <paramref name="actual"/> (64 hex digits) starts with <paramref name="expected"/> (a full hash or a prefix), ignoring case.</summary>
    public static bool HashMatches(string actual, string expected) =>
        expected.Length >= 8 && actual.StartsWith(expected, StringComparison.OrdinalIgnoreCase);

    /// <summary>Downloads (or finds in the cache) any URL into <paramref name="target"/>; the core of <see cref="DownloadAsync"/>.</summary>
    internal static async Task<string> FetchAsync(Uri url, string sha256, long? size, string target, IProgress<DownloadProgress>? progress,
        CancellationToken cancellationToken)
    {
        CheckUrl(url, "download");
        CheckSha256(sha256, "download");
        target = Path.GetFullPath(target);
        var gate = Locks.GetOrAdd(target, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (IsVerified(target, sha256, size, rehash: true))
            {
                return target;
            }

            string folder = Path.GetDirectoryName(target)!;
            Directory.CreateDirectory(folder);
            string temp = Path.Combine(folder, $".{Path.GetFileName(target)}.{Guid.NewGuid():N}.part");
            try
            {
                string actual = await TransferAsync(url, temp, size, progress, cancellationToken).ConfigureAwait(false);
                if (!HashMatches(actual, sha256))
                {
                    throw new WeightsDownloadException(
                        $"{url}: SHA-256 mismatch: expected {sha256}{(sha256.Length < 64 ? "… (published prefix)" : string.Empty)}, got {actual}. " +
                        "The file was discarded; nothing was cached.", url, sha256, actual);
                }

                File.Move(temp, target, overwrite: true);
                WriteNote(target, actual);
                return target;
            }
            finally
            {
                TryDelete(temp);
            }
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>Streams the URL into <paramref name="temp"/>, hashing as it goes; returns the SHA-256 hex.</summary>
    private static async Task<string> TransferAsync(Uri url, string temp, long? size, IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        HttpResponseMessage? response = null;
        try
        {
            Stream source;
            long? total = size;
            if (url.IsFile)
            {
                source = new FileStream(url.LocalPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
                total ??= source.Length;
            }
            else
            {
                response = await Http.Value.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
                if (!response.IsSuccessStatusCode)
                {
                    throw new WeightsDownloadException($"{url}: HTTP {(int)response.StatusCode} {response.ReasonPhrase}; nothing was cached.", url);
                }

                long? announced = response.Content.Headers.ContentLength;
                if (size is { } s && announced is { } a && a != s)
                {
                    throw new WeightsDownloadException($"{url}: the server announces {a} bytes, the entry says {s}; nothing was cached.", url);
                }

                total ??= announced;
                source = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            }

            long received = 0;
            await using (source.ConfigureAwait(false))
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            {
                var buffer = new byte[1 << 16];
                long lastReport = 0;
                while (true)
                {
                    int n = await source.ReadAsync(buffer, ct).ConfigureAwait(false);
                    if (n == 0)
                    {
                        break;
                    }

                    hash.AppendData(buffer, 0, n);
                    await file.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                    received += n;
                    if (total is { } t && received > t)
                    {
                        throw new WeightsDownloadException($"{url}: received more than the expected {t} bytes; nothing was cached.", url);
                    }

                    if (progress is not null && (received - lastReport >= 1 << 20 || received == total))
                    {
                        progress.Report(new DownloadProgress(received, total));
                        lastReport = received;
                    }
                }

                await file.FlushAsync(ct).ConfigureAwait(false);
                file.Flush(flushToDisk: true);
            }

            if (total is { } expected && received != expected)
            {
                throw new WeightsDownloadException($"{url}: transfer ended after {received} of {expected} bytes (broken connection?); nothing was cached.", url);
            }

            progress?.Report(new DownloadProgress(received, total ?? received));
            return Convert.ToHexStringLower(hash.GetHashAndReset());
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or UnauthorizedAccessException && ex is not WeightsDownloadException)
        {
            throw new WeightsDownloadException($"{url}: download failed ({ex.Message}); nothing was cached.", url, inner: ex);
        }
        finally
        {
            response?.Dispose();
        }
    }

    private sealed record Note(long Size, long ModifiedTicks, string Sha256);

    /// <summary>True when the file exists with the right size and hash: by its note (cheap), else (when <paramref name="rehash"/>) by hashing it again.</summary>
    private static bool IsVerified(string path, string sha256, long? size, bool rehash)
    {
        var info = new FileInfo(path);
        if (!info.Exists || (size is { } s && info.Length != s))
        {
            return false;
        }

        try
        {
            var note = JsonSerializer.Deserialize<Note>(File.ReadAllText(path + VerifiedSuffix));
            if (note is not null && note.Size == info.Length && note.ModifiedTicks == info.LastWriteTimeUtc.Ticks && HashMatches(note.Sha256, sha256))
            {
                return true;
            }
        }
        catch (Exception ex) when (ex is IOException or JsonException or UnauthorizedAccessException)
        {
            // No note or a bad one: decide by the content.
        }

        if (!rehash)
        {
            return false;
        }

        string actual = ComputeSha256(path);
        if (HashMatches(actual, sha256))
        {
            WriteNote(path, actual);
            return true;
        }

        TryDelete(path); // someone else's or a damaged file: download it again
        TryDelete(path + VerifiedSuffix);
        return false;
    }

    private static void WriteNote(string path, string sha256)
    {
        var info = new FileInfo(path);
        string json = JsonSerializer.Serialize(new Note(info.Length, info.LastWriteTimeUtc.Ticks, sha256));
        AtomicFile.Write(path + VerifiedSuffix, s => s.Write(System.Text.Encoding.UTF8.GetBytes(json)));
    }

    internal static void CheckUrl(Uri? url, string what)
    {
        if (url is null || !url.IsAbsoluteUri || url.Scheme is not ("https" or "http" or "file"))
        {
            throw new ArgumentException($"{what}: URL '{url}' must be an absolute https, http or file URL.");
        }
    }

    internal static void CheckSha256(string? sha256, string what)
    {
        if (sha256 is null || sha256.Length < 8 || sha256.Length > 64 || !sha256.All(Uri.IsHexDigit))
        {
            throw new ArgumentException($"{what}: SHA-256 '{sha256}' must be 8 to 64 hex digits (the full hash, or the prefix the publisher states).");
        }
    }

    internal static string FileNameOf(Uri url, string fallback)
    {
        string name = url.IsAbsoluteUri ? Path.GetFileName(Uri.UnescapeDataString(url.AbsolutePath)) : string.Empty;
        return string.IsNullOrEmpty(name) || name.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || name.StartsWith('.') ? fallback + ".weights" : name;
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
