using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResNetSharp.Distributed;

/// <summary>
/// PyTorch DDP's two collectives over a model: the start-up broadcast of parameters and buffers from rank 0, and the
/// per-step average of gradients (sum-allreduce, then ÷ world size), packed into flat buckets of about
/// <see cref="DefaultBucketBytes"/> so that many small tensors travel as a few large messages.
/// </summary>
internal sealed class GradientBuckets
{
    /// <summary>PyTorch DDP's default bucket cap (25 MiB).</summary>
    public const long DefaultBucketBytes = 25L << 20;

    private readonly Communicator comm;
    private readonly List<Parameter[]> buckets;

    public GradientBuckets(Communicator comm, nn.Module model, long bucketBytes = DefaultBucketBytes)
    {
        ArgumentNullException.ThrowIfNull(comm);
        ArgumentNullException.ThrowIfNull(model);
        if (bucketBytes < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(bucketBytes), bucketBytes, "The bucket size must be ≥ 1 byte.");
        }

        this.comm = comm;
        var parameters = model.parameters().Where(p => p.requires_grad).ToList();
        foreach (var p in parameters)
        {
            if (p.dtype != ScalarType.Float32 && p.dtype != ScalarType.Float64)
            {
                throw new ArgumentException($"Data-parallel training averages float32 or float64 gradients; a parameter of shape [{string.Join(", ", p.shape)}] is {p.dtype}.");
            }
        }

        // DDP fills buckets in reverse registration order (the order gradients become ready); kept for the same grouping.
        buckets = new List<Parameter[]>();
        var current = new List<Parameter>();
        long bytes = 0;
        foreach (var p in Enumerable.Reverse(parameters))
        {
            long size = p.numel() * p.ElementSize;
            if (current.Count > 0 && (bytes + size > bucketBytes || current[0].dtype != p.dtype))
            {
                buckets.Add(current.ToArray());
                current.Clear();
                bytes = 0;
            }

            current.Add(p);
            bytes += size;
        }

        if (current.Count > 0)
        {
            buckets.Add(current.ToArray());
        }

        GradientBytes = parameters.Sum(p => p.numel() * p.ElementSize);
    }

    /// <summary>Bytes of gradient each process contributes per step (the model's trainable size).</summary>
    public long GradientBytes { get; }

    /// <summary>Number of buckets (one allreduce each per step).</summary>
    public int BucketCount => buckets.Count;

    /// <summary>Copies rank 0's parameters and buffers into every process's model (in place, without autograd).</summary>
    public static void BroadcastState(Communicator comm, nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(comm);
        ArgumentNullException.ThrowIfNull(model);
        if (comm.Size == 1)
        {
            return;
        }

        var tensors = model.state_dict().OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => kv.Value).ToList();
        comm.CheckSame("the model's tensor count", tensors.Count);
        comm.CheckSame("the model's element count", tensors.Sum(t => t.numel()));
        using var noGrad = torch.no_grad();
        foreach (var group in tensors.GroupBy(t => t.dtype))
        {
            var list = group.ToList();
            using var scope = torch.NewDisposeScope();
            var flat = torch.cat(list.Select(t => t.detach().flatten().cpu()).ToList());
            switch (group.Key)
            {
                case ScalarType.Float32:
                {
                    var a = flat.data<float>().ToArray();
                    comm.Broadcast(a);
                    flat = torch.tensor(a);
                    break;
                }

                case ScalarType.Float64:
                {
                    var a = flat.data<double>().ToArray();
                    comm.Broadcast(a);
                    flat = torch.tensor(a);
                    break;
                }

                case ScalarType.Int64:
                {
                    var a = flat.data<long>().ToArray();
                    comm.Broadcast(a);
                    flat = torch.tensor(a);
                    break;
                }

                default:
                    throw new ArgumentException($"Cannot broadcast a model tensor of type {group.Key} (float32, float64 and int64 are supported).");
            }

            long offset = 0;
            foreach (var t in list)
            {
                long n = t.numel();
                t.copy_(flat.narrow(0, offset, n).view(t.shape));
                offset += n;
            }
        }
    }

    /// <summary>
    /// Replaces every trainable parameter's gradient by its mean over the processes. A parameter without a gradient
    /// contributes zeros to the others and ends this process with an exception.
    /// </summary>
    public void AverageGradients()
    {
        if (comm.Size == 1)
        {
            return;
        }

        double scale = 1.0 / comm.Size;
        using var noGrad = torch.no_grad();
        foreach (var bucket in buckets)
        {
            using var scope = torch.NewDisposeScope();
            var flat = torch.cat(bucket.Select(p => (p.grad is { } g ? g : torch.zeros_like(p)).flatten().cpu()).ToList());
            if (flat.dtype == ScalarType.Float32)
            {
                var a = flat.data<float>().ToArray();
                comm.AllreduceSum(a);
                flat = torch.tensor(a);
            }
            else
            {
                var a = flat.data<double>().ToArray();
                comm.AllreduceSum(a);
                flat = torch.tensor(a);
            }

            flat.mul_(scale);
            long offset = 0;
            foreach (var p in bucket)
            {
                long n = p.numel();
                var mean = flat.narrow(0, offset, n).view(p.shape).to(p.device);
                if (p.grad is not { } g)
                {
                    // DDP's find_unused_parameters=False contract: the other ranks have gone on, this one cannot.
                    throw new InvalidOperationException(
                        $"A parameter of shape [{string.Join(", ", p.shape)}] got no gradient on rank {comm.Rank}: in data-parallel training every trainable parameter must take part in every step's loss.");
                }

                g.copy_(mean);

                offset += n;
            }
        }
    }
}
