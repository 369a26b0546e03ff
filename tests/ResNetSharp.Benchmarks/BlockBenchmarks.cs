using System.Collections.Generic;
using BenchmarkDotNet.Attributes;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNetSharp.Benchmarks;

/// <summary>A residual block of a factory model, by stage and index, and the size of its input.</summary>
public sealed record BlockCase(string Model, int Stage, int Index, long Size, string Description)
{
    /// <summary>Shown in BenchmarkDotNet's tables, e.g. "resnet50.layer1.0 64->256 proj @56" (at most 40 characters).</summary>
    public override string ToString() => $"{Model}.layer{Stage + 1}.{Index} {Description} @{Size}";
}

/// <summary>
/// One residual block at batch 8: the plain block in eval mode (NCHW, the baseline) against the
/// <see cref="InferenceBlock"/> that <see cref="HandMadeInference.ForHandMadeInference"/> makes of it (BatchNorm folded,
/// in-place ReLU and add, intermediates freed early), fed NCHW and channels-last activations. The blocks are taken
/// from a whole factory model (InferenceBlock has no public constructor); the conversion to channels-last is
/// done once in setup, as in a network that stays channels-last from the stem on.
/// </summary>
[MemoryDiagnoser]
[BenchmarkCategory("Block")]
public class BlockBenchmarks
{
    private const long Batch = 8;

    private ResNet model = null!;
    private InferenceResNet fast = null!;
    private ResidualBlock block = null!;
    private InferenceBlock fused = null!;
    private Tensor input = null!;
    private Tensor inputChannelsLast = null!;

    /// <summary>ResNet-50 layer1[0] (bottleneck with projection), layer2[1] (identity bottleneck), ResNet-18 layer1[0] (basic).</summary>
    public static IEnumerable<BlockCase> Cases() => new[]
    {
        new BlockCase("resnet50", 0, 0, 56, "64->256 proj"),
        new BlockCase("resnet50", 1, 1, 28, "512 identity"),
        new BlockCase("resnet18", 0, 0, 56, "basic 64 identity"),
    };

    /// <summary>The block being timed.</summary>
    [ParamsSource(nameof(Cases))]
    public BlockCase Block { get; set; } = null!;

    /// <summary>Builds the model and its inference copy, picks the block, checks that all variants agree.</summary>
    [GlobalSetup]
    public void Setup()
    {
        BenchSettings.ApplyThreads();
        model = Models.CreateEval(Block.Model);
        fast = model.ForHandMadeInference(new HandMadeOptions { Layout = ActivationLayout.ChannelsLast });
        block = model.Stages[Block.Stage].Blocks[Block.Index];
        fused = fast.Stages[Block.Stage][Block.Index];
        using (var scope = torch.NewDisposeScope())
        {
            input = torch.randn(Batch, block.InChannels, Block.Size, Block.Size).relu_().MoveToOuterDisposeScope();
        }

        inputChannelsLast = ChannelsLast.ToChannelsLast(input);

        using var mode = torch.inference_mode();
        using var check = torch.NewDisposeScope();
        var reference = block.call(input);
        BenchSettings.CheckAgreement(reference, fused.call(input), $"{Block} InferenceBlock (NCHW)");
        BenchSettings.CheckAgreement(reference, fused.call(inputChannelsLast), $"{Block} InferenceBlock (channels-last)");
    }

    /// <summary>Frees the tensors and both models (which own the blocks).</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        inputChannelsLast.Dispose();
        input.Dispose();
        fast.Dispose();
        model.Dispose();
    }

    /// <summary>The block's own forward in eval mode, NCHW.</summary>
    [Benchmark(Baseline = true)]
    public void Eval()
    {
        using var mode = torch.inference_mode();
        using var scope = torch.NewDisposeScope();
        block.call(input);
    }

    /// <summary>The folded block, NCHW activations.</summary>
    [Benchmark]
    public void FusedNchw()
    {
        using var mode = torch.inference_mode();
        using var scope = torch.NewDisposeScope();
        fused.call(input);
    }

    /// <summary>The folded block, channels-last activations (1×1 convs as addmm).</summary>
    [Benchmark]
    public void FusedChannelsLast()
    {
        using var mode = torch.inference_mode();
        using var scope = torch.NewDisposeScope();
        fused.call(inputChannelsLast);
    }
}
