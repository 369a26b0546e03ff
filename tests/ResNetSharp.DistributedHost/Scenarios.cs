using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using ResNetSharp.Distributed;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNetSharp.DistributedHost;

/// <summary>The training scenarios.</summary>
internal static class Scenarios
{
    public static Dictionary<string, object> Run(string name, Communicator comm, string outDir, string[] args) => name switch
    {
        "sgd" => Sgd(comm, outDir, args),
        "quirk-strided-pointwise-backward" => StridedPointwiseBackward(),
        "quirk-channels-last-pointwise" => ChannelsLastPointwise(),
        "quirk-narrow-strided-pointwise-backward" => NarrowStridedPointwiseBackward(),
        _ => throw new ArgumentException($"Unknown scenario '{name}'."),
    };

    /// <summary>
    /// <c>sgd MODE SYNCBN WORLD B STEPS</c>: a float64 ResNet-20 on 8×8 synthetic images, SGD with momentum, weight
    /// decay and a step schedule. MODE ddp: this process is one of WORLD ranks with B images each (rank r's model is
    /// initialised with seed 100 + r, so only the start-up broadcast makes them agree); MODE single: one process, the
    /// whole global batch of WORLD·B; MODE split: one process, the global batch forwarded in WORLD parts of B (BatchNorm
    /// statistics per part, as per-replica BN in DDP), one loss over all. Writes the final parameters (and buffers) as
    /// float64 to params-rank{r}.bin / buffers-rank{r}.bin.
    /// </summary>
    private static Dictionary<string, object> Sgd(Communicator comm, string outDir, string[] args)
    {
        string mode = args[0];
        bool syncBn = args[1] == "1";
        int world = int.Parse(args[2], CultureInfo.InvariantCulture);
        int b = int.Parse(args[3], CultureInfo.InvariantCulture);
        int steps = int.Parse(args[4], CultureInfo.InvariantCulture);
        var dtype = args.Length > 5 && args[5] == "float32" ? ScalarType.Float32 : ScalarType.Float64;
        torch.set_num_threads(1);

        torch.manual_seed(7);
        var images = torch.randn(new long[] { (long)steps * world * b, 1, 8, 8 }, dtype: ScalarType.Float64).to(dtype);
        var labels = torch.randint(0, 10, new long[] { (long)steps * world * b }, dtype: ScalarType.Int64);

        torch.manual_seed(mode == "ddp" ? 100 + comm.Rank : 100);
        var model = ResNetFactory.Create("resnet20", new ResNetOptions { InChannels = 1, NumClasses = 10 });
        model.to(dtype);
        model.train();
        GradientBuckets? buckets = null;
        if (mode == "ddp")
        {
            GradientBuckets.BroadcastState(comm, model);
            buckets = new GradientBuckets(comm, model, bucketBytes: 200_000); // several buckets on a 2 MB model
            if (syncBn)
            {
                SyncBatchNorm.Attach(model, comm);
            }
        }

        Write(Path.Combine(outDir, $"params-initial-rank{comm.Rank}.bin"), model.parameters().Select(p => (Tensor)p));
        if (comm.Rank == 0)
        {
            // What an independent implementation needs to replay the run: the data and the parameters' names and shapes.
            Write(Path.Combine(outDir, "images.bin"), new[] { images });
            Write(Path.Combine(outDir, "labels.bin"), new[] { labels });
            File.WriteAllText(Path.Combine(outDir, "parameters.json"), System.Text.Json.JsonSerializer.Serialize(
                model.named_parameters().Select(kv => new { name = kv.name, shape = kv.parameter.shape }).ToArray()));
        }

        using var optimizer = torch.optim.SGD(model.parameters(), 0.1, momentum: 0.9, weight_decay: 5e-4);
        var scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 2, 0.5);
        var losses = new List<double>();
        for (int step = 0; step < steps; step++)
        {
            using var scope = torch.NewDisposeScope();
            long start = (long)step * world * b;
            optimizer.zero_grad();
            Tensor loss;
            if (mode == "ddp")
            {
                var x = images.narrow(0, start + ((long)comm.Rank * b), b);
                var y = labels.narrow(0, start + ((long)comm.Rank * b), b);
                loss = nn.functional.cross_entropy(model.call(x), y);
                loss.backward();
                buckets!.AverageGradients();
            }
            else
            {
                var x = images.narrow(0, start, (long)world * b);
                var y = labels.narrow(0, start, (long)world * b);
                var logits = mode == "single"
                    ? model.call(x)
                    : torch.cat(Enumerable.Range(0, world).Select(r => model.call(x.narrow(0, (long)r * b, b))).ToList());
                loss = nn.functional.cross_entropy(logits, y);
                loss.backward();
            }

            optimizer.step();
            scheduler.step();
            losses.Add(loss.to(ScalarType.Float64).item<double>());
        }

        Write(Path.Combine(outDir, $"params-rank{comm.Rank}.bin"), model.parameters().Select(p => (Tensor)p));
        Write(Path.Combine(outDir, $"buffers-rank{comm.Rank}.bin"), model.named_buffers().Where(kv => kv.buffer.dtype == ScalarType.Float64).Select(kv => kv.buffer));
        return new Dictionary<string, object>
        {
            ["rank"] = comm.Rank, ["size"] = comm.Size, ["losses"] = losses, ["buckets"] = buckets?.BucketCount ?? 0,
            ["parameters"] = model.parameters().Sum(p => p.numel()),
        };
    }

    private static void Write(string path, IEnumerable<Tensor> tensors)
    {
        using var writer = new BinaryWriter(File.Create(path));
        foreach (var t in tensors)
        {
            foreach (double v in t.detach().cpu().to(ScalarType.Float64).flatten().data<double>().ToArray())
            {
                writer.Write(v);
            }
        }
    }

    /// <summary>
    /// libtorch's own strided 1×1 convolution backward (quirk 2 of LibTorchQuirks, workaround off), 512→1024 at stride 2
    /// as in every bottleneck network's projection, against the same gradient computed by subsampling first. Where the
    /// bug is, this process dies of SIGFPE before it writes anything.
    /// </summary>
    private static Dictionary<string, object> StridedPointwiseBackward()
    {
        torch.manual_seed(0);
        using var x = torch.randn(2, 512, 14, 14).requires_grad_(true);
        using var w = (torch.randn(1024, 512, 1, 1) * 0.05).requires_grad_(true);
        using var y = nn.functional.conv2d(x, w, strides: new long[] { 2, 2 });
        y.sum().backward();
        using var gx = x.grad!.clone();
        using var gw = w.grad!.clone();
        using var x2 = x.detach().clone().requires_grad_(true);
        using var w2 = w.detach().clone().requires_grad_(true);
        using var sub = x2[.., .., TensorIndex.Slice(null, null, 2), TensorIndex.Slice(null, null, 2)];
        nn.functional.conv2d(sub, w2).sum().backward();
        return new Dictionary<string, object>
        {
            ["inputGradError"] = (gx - x2.grad!).abs().max().item<float>(),
            ["weightGradError"] = ((gw - w2.grad!).abs().max() / w2.grad!.abs().max()).item<float>(),
        };
    }

    /// <summary>
    /// Quirk 2's AVX2 form (workaround off): the weight gradient of a stride-2 1×1 convolution from 4 to 8 channels on a
    /// channels-last 16 × 4 × 16 × 16 input, against the same gradient computed by subsampling first. Where the bug is,
    /// oneDNN writes out of bounds and the process dies (glibc's heap checks, or SIGSEGV) before it writes anything.
    /// </summary>
    private static Dictionary<string, object> NarrowStridedPointwiseBackward()
    {
        torch.manual_seed(0);
        var result = new Dictionary<string, object>();
        using var x0 = torch.randn(16, 4, 16, 16);
        using var w0 = torch.randn(8, 4, 1, 1) * 0.1;
        for (int rep = 0; rep < 5; rep++)
        {
            using var x = torch.empty_strided(x0.shape, new long[] { 16 * 16 * 4, 1, 16 * 4, 4 }).copy_(x0).requires_grad_(true);
            using var w = w0.clone().requires_grad_(true);
            nn.functional.conv2d(x, w, strides: new long[] { 2, 2 }).sum().backward();
            using var x2 = x0.clone().requires_grad_(true);
            using var w2 = w0.clone().requires_grad_(true);
            using var sub = x2[.., .., TensorIndex.Slice(null, null, 2), TensorIndex.Slice(null, null, 2)];
            nn.functional.conv2d(sub, w2).sum().backward();
            result["inputGradError"] = (x.grad! - x2.grad!).abs().max().item<float>();
            result["weightGradError"] = ((w.grad! - w2.grad!).abs().max() / w2.grad!.abs().max()).item<float>();
        }

        return result;
    }

    /// <summary>
    /// libtorch's channels-last 1×1 convolution (quirk 3, workaround off), 1024→512 and 512→2048, against the same
    /// convolution on the contiguous input. Where the bug is, the outputs differ (or the process dies of SIGFPE).
    /// </summary>
    private static Dictionary<string, object> ChannelsLastPointwise()
    {
        torch.manual_seed(0);
        var result = new Dictionary<string, object>();
        foreach (var (cin, cout) in new[] { (1024L, 512L), (512L, 2048L) })
        {
            using var x = torch.randn(2, cin, 7, 7);
            using var w = torch.randn(cout, cin, 1, 1) * 0.05;
            using var dense = nn.functional.conv2d(x, w);
            using var nhwc = torch.empty_strided(x.shape, new[] { 49 * cin, 1, 7 * cin, cin }).copy_(x);
            using var last = nn.functional.conv2d(nhwc, w);
            result[$"error{cin}to{cout}"] = ((dense - last).abs().max() / dense.abs().max()).item<float>();
        }

        return result;
    }
}
