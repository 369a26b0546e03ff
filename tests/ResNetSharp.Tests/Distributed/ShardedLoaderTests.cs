using System.Collections.Generic;
using System.Linq;
using FluentAssertions;
using ResNetSharp.Tests.Training;
using ResNetSharp.Training;
using TorchSharp;
using Xunit;

namespace ResNetSharp.Tests.Distributed;

/// <summary>
/// The data-parallel sampler, in one process: the shards of 2 ranks with B images each are, in rank order, the one
/// process's batches of 2B; with per-sample seeds the augmented images do not depend on the number of processes.
/// </summary>
public class ShardedLoaderTests
{
    [Fact]
    public void TwoShards_InRankOrder_AreTheOneProcessGlobalBatches()
    {
        // 14 images, B = 3 per rank: global batches of 6, 6 and a short one of 2 split 1 + 1.
        var set = TrainingTestData.Bars(14, size: 8);
        var one = new DataLoader(set, new DataLoaderOptions { BatchSize = 6, Seed = 5, Prefetch = 0 });
        var ranks = Enumerable.Range(0, 2)
            .Select(r => new DataLoader(set, new DataLoaderOptions { BatchSize = 3, Seed = 5, Prefetch = 0, ShardRank = r, ShardCount = 2 })).ToArray();
        ranks[0].BatchesPerEpoch.Should().Be(3);
        one.BatchesPerEpoch.Should().Be(3);
        var sizes = new List<(int, int)>();
        foreach (var (global, shards) in one.GetBatches(1).Zip(ranks[0].GetBatches(1).Zip(ranks[1].GetBatches(1))))
        {
            using (global)
            using (shards.First)
            using (shards.Second)
            {
                sizes.Add((shards.First.Size, shards.Second.Size));
                torch.cat(new[] { shards.First.Images, shards.Second.Images }).equal(global.Images).all().item<bool>().Should().BeTrue();
                torch.cat(new[] { shards.First.Labels, shards.Second.Labels }).equal(global.Labels).all().item<bool>().Should().BeTrue();
            }
        }

        sizes.Should().Equal((3, 3), (3, 3), (1, 1));
    }

    [Fact]
    public void PerSampleSeeds_AugmentationDoesNotDependOnTheNumberOfProcesses()
    {
        var set = TrainingTestData.Bars(12, size: 8);
        var augment = Transforms.Compose(Transforms.RandomCrop(padding: 2), Transforms.RandomHorizontalFlip());
        var one = new DataLoader(set, new DataLoaderOptions { BatchSize = 4, Seed = 9, Prefetch = 0, Transform = augment, PerSampleSeeds = true });
        var ranks = Enumerable.Range(0, 2).Select(r => new DataLoader(set, new DataLoaderOptions
        {
            BatchSize = 2, Seed = 9, Prefetch = 0, Transform = augment, PerSampleSeeds = true, ShardRank = r, ShardCount = 2,
        })).ToArray();
        bool anyChanged = false;
        foreach (var (global, shards) in one.GetBatches(0).Zip(ranks[0].GetBatches(0).Zip(ranks[1].GetBatches(0))))
        {
            using (global)
            using (shards.First)
            using (shards.Second)
            {
                torch.cat(new[] { shards.First.Images, shards.Second.Images }).equal(global.Images).all().item<bool>().Should().BeTrue();
            }
        }

        // Sensitivity: the augmentation does change the images, so the equality above is not that of untouched ones.
        var plain = new DataLoader(set, new DataLoaderOptions { BatchSize = 4, Seed = 9, Prefetch = 0 });
        foreach (var (a, b) in one.GetBatches(0).Zip(plain.GetBatches(0)))
        {
            using (a)
            using (b)
            {
                anyChanged |= !a.Images.equal(b.Images).all().item<bool>();
            }
        }

        anyChanged.Should().BeTrue();
    }
}
