using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using FluentAssertions;
using ResNetSharp.Training;
using TorchSharp;
using Xunit;

namespace ResNetSharp.Tests.Training;

public class DataLoaderTests
{
    private static List<(float[] Images, long[] Labels)> Collect(DataLoader loader, int epoch, int start = 0)
    {
        var result = new List<(float[], long[])>();
        foreach (var batch in loader.GetBatches(epoch, start))
        {
            using (batch)
            {
                result.Add((batch.Images.data<float>().ToArray(), batch.Labels.data<long>().ToArray()));
            }
        }

        return result;
    }

    [Theory]
    [InlineData(false, 4, 10)]
    [InlineData(true, 3, 9)]
    public void GetBatches_LastPartialBatch_KeptOrDropped(bool dropLast, int batches, int samples)
    {
        var loader = new DataLoader(TrainingTestData.Bars(10, size: 4), new DataLoaderOptions { BatchSize = 3, DropLast = dropLast, Prefetch = 0 });

        var all = Collect(loader, 0);

        loader.BatchesPerEpoch.Should().Be(batches);
        all.Should().HaveCount(batches);
        all.Sum(b => b.Labels.Length).Should().Be(samples);
        all[0].Images.Length.Should().Be(3 * 16);
    }

    [Fact]
    public void Order_SameSeedAndEpoch_SamePermutation_OtherEpochDiffers()
    {
        var set = TrainingTestData.Bars(100, size: 4);
        var a = new DataLoader(set, new DataLoaderOptions { Seed = 7 });
        var b = new DataLoader(set, new DataLoaderOptions { Seed = 7 });

        a.Order(3).Should().Equal(b.Order(3));
        a.Order(3).Should().BeEquivalentTo(Enumerable.Range(0, 100)); // a permutation
        a.Order(3).Should().NotEqual(a.Order(4));
        new DataLoader(set, new DataLoaderOptions { Shuffle = false }).Order(5).Should().Equal(Enumerable.Range(0, 100));
    }

    [Fact]
    public void GetBatches_PrefetchedAndResumed_EqualDirect()
    {
        var set = TrainingTestData.Bars(50, size: 8);
        var transform = Transforms.Compose(Transforms.RandomCrop(padding: 2), Transforms.RandomHorizontalFlip());
        var direct = new DataLoader(set, new DataLoaderOptions { BatchSize = 8, Seed = 3, Transform = transform, Prefetch = 0 });
        var prefetched = direct.Options with { Prefetch = 3 };

        var expected = Collect(direct, 2);
        var got = Collect(new DataLoader(set, prefetched), 2);
        var resumed = Collect(new DataLoader(set, prefetched), 2, start: 4);

        got.Should().HaveCount(expected.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            got[i].Images.Should().Equal(expected[i].Images);
            got[i].Labels.Should().Equal(expected[i].Labels);
        }

        resumed.Should().HaveCount(expected.Count - 4);
        resumed[0].Images.Should().Equal(expected[4].Images);
    }

    [Fact]
    public void GetBatches_StoppedEarly_DisposesPrefetchedBatchesAndStops()
    {
        var loader = new DataLoader(TrainingTestData.Bars(400, size: 8), new DataLoaderOptions { BatchSize = 4, Prefetch = 4 });

        using (var scope = torch.NewDisposeScope())
        {
            foreach (var batch in loader.GetBatches(0))
            {
                batch.Dispose();
                break; // the enumerator's Dispose stops the producer and frees what it queued
            }
        }

        // Another full epoch still works afterwards (nothing left blocked).
        loader.GetBatches(1).Select(b =>
        {
            b.Dispose();
            return 1;
        }).Sum().Should().Be(100);
    }

    [Fact]
    public void GetBatches_Cancelled_ThrowsOperationCanceled()
    {
        var loader = new DataLoader(TrainingTestData.Bars(40, size: 4), new DataLoaderOptions { BatchSize = 4, Prefetch = 2 });
        using var cts = new CancellationTokenSource();
        cts.Cancel();

        var act = () => loader.GetBatches(0, 0, cts.Token).ToList();

        act.Should().Throw<OperationCanceledException>();
    }

    [Fact]
    public void Constructor_TooFewSamplesForDropLast_Throws()
    {
        var act = () => new DataLoader(TrainingTestData.Bars(3, size: 4), new DataLoaderOptions { BatchSize = 4, DropLast = true });

        act.Should().Throw<ArgumentException>().WithMessage("*3 samples, too few for one batch of 4 with DropLast*");
    }
}
