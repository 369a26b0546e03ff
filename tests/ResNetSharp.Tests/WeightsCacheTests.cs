using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using FluentAssertions;
using TorchSharp;
using Xunit;

namespace ResNetSharp.Tests;

/// <summary>
/// Downloads from a local HTTP server on 127.0.0.1 serving files torch.save wrote (no test touches the internet):
/// success and cache hit, wrong hash, broken transfer, 404, unreachable port, file URL, concurrent downloads.
/// </summary>
public sealed class WeightsCacheTests : IDisposable
{
    private readonly string cache = WeightsTestSupport.TempDir();
    private readonly LocalServer server = new();

    public void Dispose()
    {
        server.Dispose();
        Directory.Delete(cache, recursive: true);
    }

    private static string Sha(string path) => WeightsCache.ComputeSha256(path);

    private PretrainedWeights Entry(string name, string urlPath, string sha256, string architecture = "resnet18", int classes = 1000) => new()
    {
        Name = name,
        Architecture = architecture,
        Url = new Uri(server.Url(urlPath)),
        Sha256 = sha256,
        Metadata = new ModelMetadata { NumClasses = classes },
    };

    /// <summary>Files in the cache folder, temporary ones included (a failed download must leave none).</summary>
    private string[] CacheFiles() => Directory.GetFiles(cache, "*", SearchOption.AllDirectories);

    [Fact]
    public void Download_FromLocalServer_VerifiesHashAndSecondCallUsesTheCache()
    {
        string file = Fixtures.File_("pth_resnet18.pth");
        server.Serve("/models/resnet18-test.pth", File.ReadAllBytes(file));
        var entry = Entry("test.resnet18_ok", "/models/resnet18-test.pth", Sha(file));
        var reports = new List<DownloadProgress>();

        string path = WeightsCache.Download(entry, new SyncProgress(reports.Add), cache);

        path.Should().Be(Path.Combine(cache, "test.resnet18_ok", "resnet18-test.pth"));
        File.ReadAllBytes(path).Should().Equal(File.ReadAllBytes(file));
        reports.Should().NotBeEmpty();
        reports[^1].BytesReceived.Should().Be(new FileInfo(file).Length);
        reports[^1].TotalBytes.Should().Be(new FileInfo(file).Length, "the server sends Content-Length");
        WeightsCache.IsCached(entry, cache).Should().BeTrue();

        WeightsCache.Download(entry, null, cache).Should().Be(path);
        server.Requests("/models/resnet18-test.pth").Should().Be(1, "a verified cached file is not downloaded again");
        CacheFiles().Select(Path.GetFileName).Should().BeEquivalentTo("resnet18-test.pth", "resnet18-test.pth.verified");
    }

    [Fact]
    public void Download_CachedFileReplacedBehindOurBack_IsRehashedAndDownloadedAgain()
    {
        byte[] bytes = File.ReadAllBytes(Fixtures.File_("pth_tiny.pth"));
        server.Serve("/tiny.pth", bytes);
        var entry = Entry("test.tiny_replaced", "/tiny.pth", Sha(Fixtures.File_("pth_tiny.pth")), "resnet18");
        string path = WeightsCache.Download(entry, null, cache);
        var damaged = (byte[])bytes.Clone();
        damaged[^100] ^= 0xFF;
        File.WriteAllBytes(path, damaged);
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddMinutes(5)); // size equal, time changed: the note no longer vouches for it

        WeightsCache.IsCached(entry, cache).Should().BeFalse();
        WeightsCache.Download(entry, null, cache);
        File.ReadAllBytes(path).Should().Equal(bytes);
        server.Requests("/tiny.pth").Should().Be(2);
    }

    [Fact]
    public void Download_WrongHash_ThrowsNamingUrlAndBothHashesAndCachesNothing()
    {
        byte[] bytes = File.ReadAllBytes(Fixtures.File_("pth_tiny.pth"));
        server.Serve("/wrong.pth", bytes);
        string actual = Sha(Fixtures.File_("pth_tiny.pth"));
        string expected = new string('0', 8) + actual[8..];
        var entry = Entry("test.wrong_hash", "/wrong.pth", expected);

        var act = () => WeightsCache.Download(entry, null, cache);

        var ex = act.Should().Throw<WeightsDownloadException>().Which;
        ex.Message.Should().Contain(server.Url("/wrong.pth")).And.Contain(expected).And.Contain(actual).And.Contain("nothing was cached");
        ex.ExpectedSha256.Should().Be(expected);
        ex.ActualSha256.Should().Be(actual);
        CacheFiles().Should().BeEmpty();
    }

    [Fact]
    public void Download_ServerClosesMidTransfer_ThrowsAndCachesNothing()
    {
        byte[] bytes = File.ReadAllBytes(Fixtures.File_("pth_tiny.pth"));
        server.Serve("/broken.pth", bytes, truncateAt: bytes.Length / 3);
        var entry = Entry("test.broken", "/broken.pth", Sha(Fixtures.File_("pth_tiny.pth")));

        var act = () => WeightsCache.Download(entry, null, cache);

        act.Should().Throw<WeightsDownloadException>().Which.Message.Should().Contain(server.Url("/broken.pth")).And.Contain("nothing was cached");
        CacheFiles().Should().BeEmpty();
    }

    [Fact]
    public void Download_NotFound_ThrowsWithStatus()
    {
        var entry = Entry("test.missing", "/missing.pth", new string('a', 64));
        var act = () => WeightsCache.Download(entry, null, cache);
        act.Should().Throw<WeightsDownloadException>().Which.Message.Should().Contain("HTTP 404").And.Contain("/missing.pth");
        CacheFiles().Should().BeEmpty();
    }

    [Fact]
    public void Download_UnreachablePort_ThrowsNamingTheUrl()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop(); // nothing listens there now
        var entry = Entry("test.unreachable", "/x.pth", new string('a', 64)) with { Url = new Uri($"http://127.0.0.1:{port}/x.pth") };

        var act = () => WeightsCache.Download(entry, null, cache);

        act.Should().Throw<WeightsDownloadException>().Which.Message.Should().Contain($"127.0.0.1:{port}/x.pth").And.Contain("download failed");
        CacheFiles().Should().BeEmpty();
    }

    [Fact]
    public void Download_FileUrl_IsCopiedAndVerified()
    {
        string file = Fixtures.File_("pth_tiny.pth");
        var entry = Entry("test.file_url", "/unused", Sha(file)[..8]) with { Url = new Uri(file) };
        string path = WeightsCache.Download(entry, null, cache);
        File.ReadAllBytes(path).Should().Equal(File.ReadAllBytes(file));
        WeightsCache.HashMatches(Sha(path), entry.Sha256).Should().BeTrue("an 8-digit prefix, as torchvision publishes, is checked");
    }

    [Fact]
    public async Task DownloadAsync_ConcurrentCallsForOneEntry_LeaveOneGoodFile()
    {
        byte[] bytes = File.ReadAllBytes(Fixtures.File_("pth_tiny.pth"));
        server.Serve("/concurrent.pth", bytes);
        var entry = Entry("test.concurrent", "/concurrent.pth", Sha(Fixtures.File_("pth_tiny.pth")));

        var paths = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => Task.Run(() => WeightsCache.DownloadAsync(entry, null, cache))));

        paths.Distinct().Should().ContainSingle();
        File.ReadAllBytes(paths[0]).Should().Equal(bytes);
        server.Requests("/concurrent.pth").Should().Be(1, "downloads of one entry in a process share one transfer");
        CacheFiles().Should().HaveCount(2, "the file and its verification note, no temporary files");
    }

    [Fact]
    public void FromPretrained_UserEntryServedLocally_LoadsTorchvisionWeightsAndMetadata()
    {
        string file = Fixtures.File_("pth_resnet18.pth");
        server.Serve("/resnet18-user.pth", File.ReadAllBytes(file));
        var classes = Enumerable.Range(0, 1000).Select(i => $"class {i}").ToArray();
        var entry = Entry("test.resnet18_user", "/resnet18-user.pth", Sha(file)) with
        {
            Metadata = new ModelMetadata { NumClasses = 1000, ClassNames = classes, CropPct = 224.0 / 232 },
        };
        WeightsRegistry.Register(entry);
        try
        {
            using var model = ResNetFactory.FromPretrained("test.resnet18_user", cache);
            model.Metadata.ClassNames.Should().Equal(classes);
            model.Metadata.ResizeSize.Should().Be(232);
            model.Metadata.Architecture.Should().Be("resnet18");

            var io = SafeTensorsFormat.Read(Fixtures.File_("pth_resnet18_io.safetensors"));
            model.eval();
            using var noGrad = torch.no_grad();
            using var scope = torch.NewDisposeScope();
            WeightsTestSupport.RelativeError(model.call(io["input"].ToTensor()), io["logits"].ToTensor()).Should().BeLessThan(1e-4);
        }
        finally
        {
            WeightsRegistry.Unregister("test.resnet18_user");
        }
    }

    [Fact]
    public void Resolve_FileUrlAndName_GiveLocalPaths()
    {
        string file = Fixtures.File_("pth_tiny.pth");
        string sha = Sha(file);
        WeightsSource.Resolve(file, null, cache).Path.Should().Be(Path.GetFullPath(file));
        var badFileHash = () => WeightsSource.Resolve(file, new string('0', 64), cache);
        badFileHash.Should().Throw<WeightsDownloadException>().WithMessage("*SHA-256 mismatch*");

        server.Serve("/by-url.pth", File.ReadAllBytes(file));
        var noHash = () => WeightsSource.Resolve(server.Url("/by-url.pth"), null, cache);
        noHash.Should().Throw<ArgumentException>().WithMessage("*--sha256*");
        var resolved = WeightsSource.Resolve(server.Url("/by-url.pth"), sha[..12], cache);
        File.ReadAllBytes(resolved.Path).Should().Equal(File.ReadAllBytes(file));
        resolved.Entry.Should().BeNull();

        var unknown = () => WeightsSource.Resolve("no-such-weights", null, cache);
        unknown.Should().Throw<ArgumentException>().WithMessage("*neither an existing file*");
    }

    private sealed class SyncProgress(Action<DownloadProgress> report) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value) => report(value);
    }

    /// <summary>A minimal HTTP/1.1 server on 127.0.0.1: serves registered byte arrays, 404 otherwise, counts requests, can cut a body short.</summary>
    private sealed class LocalServer : IDisposable
    {
        private readonly TcpListener listener = new(IPAddress.Loopback, 0);
        private readonly ConcurrentDictionary<string, (byte[] Body, int? TruncateAt)> files = new();
        private readonly ConcurrentDictionary<string, int> counts = new();
        private readonly CancellationTokenSource stop = new();

        public LocalServer()
        {
            listener.Start();
            _ = Task.Run(AcceptLoop);
        }

        public string Url(string path) => $"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}{path}";

        public void Serve(string path, byte[] body, int? truncateAt = null) => files[path] = (body, truncateAt);

        public int Requests(string path) => counts.GetValueOrDefault(path);

        public void Dispose()
        {
            stop.Cancel();
            listener.Stop();
        }

        private async Task AcceptLoop()
        {
            while (!stop.IsCancellationRequested)
            {
                TcpClient client;
                try
                {
                    client = await listener.AcceptTcpClientAsync(stop.Token);
                }
                catch (Exception)
                {
                    return;
                }

                _ = Task.Run(() => Handle(client));
            }
        }

        private async Task Handle(TcpClient client)
        {
            using (client)
            {
                try
                {
                    var stream = client.GetStream();
                    var request = new StringBuilder();
                    var buffer = new byte[4096];
                    while (!request.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                    {
                        int n = await stream.ReadAsync(buffer);
                        if (n == 0)
                        {
                            return;
                        }

                        request.Append(Encoding.ASCII.GetString(buffer, 0, n));
                    }

                    string path = request.ToString().Split(' ')[1];
                    counts.AddOrUpdate(path, 1, (_, c) => c + 1);
                    if (!files.TryGetValue(path, out var file))
                    {
                        await stream.WriteAsync(Encoding.ASCII.GetBytes("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
                        return;
                    }

                    await stream.WriteAsync(Encoding.ASCII.GetBytes(
                        $"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {file.Body.Length}\r\nConnection: close\r\n\r\n"));
                    await stream.WriteAsync(file.Body.AsMemory(0, file.TruncateAt ?? file.Body.Length));
                    if (file.TruncateAt is not null)
                    {
                        client.Client.Shutdown(SocketShutdown.Both); // the connection breaks mid-body
                    }
                }
                catch (IOException)
                {
                    // the client gave up: nothing to do
                }
            }
        }
    }
}
