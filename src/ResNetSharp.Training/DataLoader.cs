using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Channels;
using System.Threading.Tasks;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNetSharp.Training;

/// <summary>One batch: images (N × C × H × W, float32, transformed) and labels (N, int64). The consumer disposes it.</summary>
internal sealed class Batch : IDisposable
{
    internal Batch(int index, Tensor images, Tensor labels)
    {
        Index = index;
        Images = images;
        Labels = labels;
    }

    /// <summary>Position of the batch in its epoch (0-based).</summary>
    public int Index { get; }

    /// <summary>N × C × H × W float32 images.</summary>
    public Tensor Images { get; }

    /// <summary>N int64 labels.</summary>
    public Tensor Labels { get; }

    /// <summary>Images in the batch.</summary>
    public int Size => (int)Labels.shape[0];

    /// <summary>Releases both tensors.</summary>
    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
    }
}

/// <summary>How <see cref="DataLoader"/> cuts a dataset into batches.</summary>
internal sealed record DataLoaderOptions
{
    /// <summary>Images per batch. Default 128 (the paper's CIFAR mini-batch).</summary>
    public int BatchSize { get; init; } = 128;

    /// <summary>A new order every epoch (a seeded permutation). Default true; false keeps the dataset's order (evaluation).</summary>
    public bool Shuffle { get; init; } = true;

    /// <summary>Drop the last batch when it is smaller than <see cref="BatchSize"/>. Default false (it is kept).</summary>
    public bool DropLast { get; init; }

    /// <summary>Seed of the shuffle and of every random transform. Default 0.</summary>
    public int Seed { get; init; }

    /// <summary>The batch transform (augmentation, normalisation), or null for none.</summary>
    public IBatchTransform? Transform { get; init; }

    /// <summary>
    /// Batches prepared ahead on a background thread (bounded), so the model does not wait for decoding and
    /// augmentation. Default 2; 0 prepares each batch on the caller's thread when it is asked for.
    /// </summary>
    public int Prefetch { get; init; } = 2;

    /// <summary>Device the batches are created on; default the CPU.</summary>
    public Device? Device { get; init; }

    /// <summary>
    /// Data-parallel sharding (set by the trainer): this process's rank and the number of processes. Every process
    /// draws the same permutation; global batch k is positions [k·S·B, (k+1)·S·B) of it and rank r takes its r-th
    /// slice of B (a short last global batch is split as evenly as possible; one shorter than S is dropped).
    /// </summary>
    internal int ShardRank { get; init; }

    /// <summary>Processes sharing the epoch (1: no sharding).</summary>
    internal int ShardCount { get; init; } = 1;

    /// <summary>
    /// Seed the transform per sample from (seed, epoch, dataset index) instead of per batch, so what an image looks
    /// like does not depend on which batch or which process it lands in (set by the trainer in data-parallel runs).
    /// </summary>
    internal bool PerSampleSeeds { get; init; }
}

/// <summary>
/// Cuts an <see cref="ImageDataset"/> into batches, epoch by epoch. Every random choice (the epoch's order, each
/// batch's augmentation) comes from a generator seeded by (<see cref="DataLoaderOptions.Seed"/>, epoch, batch) alone,
/// so an epoch can be restarted at any batch and yields exactly what an uninterrupted epoch would have: the state a
/// resumable checkpoint needs is the seed, the epoch and the batch index.
/// </summary>
internal sealed class DataLoader
{
    /// <summary>Creates a loader.</summary>
    /// <exception cref="ArgumentException">The dataset is empty, the batch size or prefetch depth is invalid, or dropping the last batch leaves none.</exception>
    public DataLoader(ImageDataset dataset, DataLoaderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        options ??= new DataLoaderOptions();
        if (options.BatchSize < 1 || options.Prefetch < 0)
        {
            throw new ArgumentException($"DataLoader: BatchSize must be ≥ 1 and Prefetch ≥ 0, got {options.BatchSize} and {options.Prefetch}.");
        }

        if (dataset.Count == 0 || (options.DropLast && dataset.Count < options.BatchSize))
        {
            throw new ArgumentException($"DataLoader: {dataset.Name} has {dataset.Count} samples, too few for one batch of {options.BatchSize}" +
                                        (options.DropLast ? " with DropLast." : "."));
        }

        Dataset = dataset;
        Options = options;
        if (options.ShardCount < 1 || options.ShardRank < 0 || options.ShardRank >= options.ShardCount || BatchesPerEpoch == 0)
        {
            throw new ArgumentException($"DataLoader: {dataset.Name} has {dataset.Count} samples, too few for one global batch of {options.BatchSize} × {options.ShardCount} processes " +
                                        $"(rank {options.ShardRank}).");
        }
    }

    /// <summary>The dataset.</summary>
    public ImageDataset Dataset { get; }

    /// <summary>The options.</summary>
    public DataLoaderOptions Options { get; }

    /// <summary>Batches per epoch (the last partial one counted unless <see cref="DataLoaderOptions.DropLast"/>).</summary>
    public int BatchesPerEpoch
    {
        get
        {
            int global = GlobalBatchSize, full = Dataset.Count / global, rest = Dataset.Count % global;
            return full + (!Options.DropLast && rest >= Options.ShardCount ? 1 : 0);
        }
    }

    /// <summary>Samples seen per epoch (by all processes together when sharded).</summary>
    public int SamplesPerEpoch => Math.Min(Dataset.Count, BatchesPerEpoch * GlobalBatchSize);

    /// <summary>Images in one global batch: the batch size times the processes sharing it.</summary>
    internal int GlobalBatchSize => Options.BatchSize * Options.ShardCount;

    /// <summary>Images in global batch <paramref name="batch"/> over all processes (the last one may be short).</summary>
    internal int GlobalBatchCount(int batch) => Math.Min(GlobalBatchSize, Dataset.Count - (batch * GlobalBatchSize));

    /// <summary>The order of the samples in <paramref name="epoch"/>: a Fisher–Yates permutation seeded by (seed, epoch), or 0 … N − 1 without shuffling.</summary>
    public int[] Order(int epoch)
    {
        var order = new int[Dataset.Count];
        for (int i = 0; i < order.Length; i++)
        {
            order[i] = i;
        }

        if (Options.Shuffle)
        {
            var random = new Random(DeriveSeed(Options.Seed, epoch, -1));
            for (int i = order.Length - 1; i > 0; i--)
            {
                int j = random.Next(i + 1);
                (order[i], order[j]) = (order[j], order[i]);
            }
        }

        return order;
    }

    /// <summary>
    /// The batches of one epoch, from batch <paramref name="startBatch"/> on. Each batch belongs to the consumer, who
    /// disposes it. Stopping early (break, dispose, cancellation) stops the background thread and disposes what it had prepared.
    /// </summary>
    /// <param name="epoch">Epoch number (0-based): picks the order and the augmentation.</param>
    /// <param name="startBatch">First batch to yield (a resumed epoch). Default 0.</param>
    /// <param name="cancellationToken">Stops the enumeration with <see cref="OperationCanceledException"/>.</param>
    public IEnumerable<Batch> GetBatches(int epoch, int startBatch = 0, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        if (startBatch < 0 || startBatch > BatchesPerEpoch)
        {
            throw new ArgumentOutOfRangeException(nameof(startBatch), $"startBatch must be in 0 … {BatchesPerEpoch}, got {startBatch}.");
        }

        return Options.Prefetch == 0 ? Direct(epoch, startBatch, cancellationToken) : Prefetched(epoch, startBatch, cancellationToken);
    }

    private IEnumerable<Batch> Direct(int epoch, int startBatch, CancellationToken ct)
    {
        var order = Order(epoch);
        for (int b = startBatch; b < BatchesPerEpoch; b++)
        {
            ct.ThrowIfCancellationRequested();
            yield return Make(order, epoch, b);
        }
    }

    private IEnumerable<Batch> Prefetched(int epoch, int startBatch, CancellationToken ct)
    {
        var channel = Channel.CreateBounded<Batch>(new BoundedChannelOptions(Options.Prefetch) { SingleReader = true, SingleWriter = true });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var producer = Task.Run(async () =>
        {
            try
            {
                var order = Order(epoch);
                for (int b = startBatch; b < BatchesPerEpoch; b++)
                {
                    stop.Token.ThrowIfCancellationRequested();
                    var batch = Make(order, epoch, b);
                    try
                    {
                        await channel.Writer.WriteAsync(batch, stop.Token).ConfigureAwait(false);
                    }
                    catch
                    {
                        batch.Dispose();
                        throw;
                    }
                }

                channel.Writer.Complete();
            }
            catch (Exception ex)
            {
                channel.Writer.Complete(ex);
            }
        }, CancellationToken.None);
        try
        {
            var reader = channel.Reader;
            while (true)
            {
                Batch? next;
                try
                {
                    if (!reader.WaitToReadAsync(ct).AsTask().GetAwaiter().GetResult())
                    {
                        break;
                    }

                    if (!reader.TryRead(out next))
                    {
                        continue;
                    }
                }
                catch (ChannelClosedException ex) when (ex.InnerException is not null)
                {
                    throw ex.InnerException;
                }

                yield return next;
            }
        }
        finally
        {
            stop.Cancel();
            try
            {
                producer.GetAwaiter().GetResult();
            }
            catch (OperationCanceledException)
            {
            }

            while (channel.Reader.TryRead(out var left))
            {
                left.Dispose();
            }
        }
    }

    private Batch Make(int[] order, int epoch, int batch)
    {
        int start = batch * GlobalBatchSize, m = GlobalBatchCount(batch);
        int n = (int)((long)m * (Options.ShardRank + 1) / Options.ShardCount) - (int)((long)m * Options.ShardRank / Options.ShardCount);
        start += (int)((long)m * Options.ShardRank / Options.ShardCount);
        int sample = Dataset.SampleSize;
        var pixels = new float[(long)n * sample];
        var labels = new long[n];
        for (int i = 0; i < n; i++)
        {
            int index = order[start + i];
            Dataset.ReadImage(index, pixels.AsSpan(i * sample, sample));
            labels[i] = Dataset.GetLabel(index);
        }

        using var scope = torch.NewDisposeScope();
        var images = torch.tensor(pixels, new long[] { n, Dataset.Channels, Dataset.Height, Dataset.Width }, device: Options.Device);
        if (Options.Transform is { } transform && Options.PerSampleSeeds)
        {
            var one = new Tensor[n];
            for (int i = 0; i < n; i++)
            {
                // Batch indices are ≥ -1 in DeriveSeed; a sample's seed takes the slot after every batch's (-2 - index).
                one[i] = transform.Apply(images.narrow(0, i, 1), new Random(DeriveSeed(Options.Seed, epoch, -2 - order[start + i])));
            }

            images = torch.cat(one);
        }
        else if (Options.Transform is { } batchTransform)
        {
            images = batchTransform.Apply(images, new Random(DeriveSeed(Options.Seed, epoch, batch)));
        }

        var labelTensor = torch.tensor(labels, new long[] { n }, device: Options.Device);
        return new Batch(batch, images.MoveToOuterDisposeScope(), labelTensor.MoveToOuterDisposeScope());
    }

    /// <summary>A 31-bit seed from (seed, epoch, batch): SplitMix64's finaliser over the three, so neighbours are unrelated.</summary>
    internal static int DeriveSeed(int seed, int epoch, int batch)
    {
        ulong z = unchecked(((ulong)(uint)seed << 32) ^ ((ulong)(uint)epoch * 0x9E3779B97F4A7C15UL) ^ ((ulong)(uint)(batch + 1) * 0xBF58476D1CE4E5B9UL));
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        z ^= z >> 31;
        return (int)(z & 0x7FFFFFFF);
    }
}
