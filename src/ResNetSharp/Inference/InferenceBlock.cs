using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNetSharp.Inference;

/// <summary>
/// A residual block of an <see cref="InferenceResNet"/>: its folded convolutions (the residual branch and the 1×1
/// projection, if any) as modules named as in the source block, and a forward that runs the block's ops of the
/// lowered graph (y = ReLU(F(x) + shortcut(x)), in place). What the shortcut is was decided when the network was
/// lowered (<see cref="ResidualBlock"/>); this class only holds and runs the result.
/// </summary>
internal sealed class InferenceBlock : nn.Module<Tensor, Tensor>
{
    private readonly FusedConv2d[] convs;
    private readonly FusedConv2d? downsample;
    private readonly LoweredBlock block;
    private readonly GraphExecutor executor;

    internal InferenceBlock(LoweredBlock block, LoweredGraph graph, FusedConv2d?[] convsByOp, GraphExecutor executor, long inChannels)
        : base(block.Name)
    {
        this.block = block;
        this.executor = executor;
        var own = Enumerable.Range(block.FirstOp, block.EndOp - block.FirstOp)
            .Where(i => graph.Ops[i] is ConvOp)
            .Select(i => (Op: graph.Ops[i], Conv: convsByOp[i]!))
            .ToList();
        convs = own.Where(c => !IsProjection(c.Op)).Select(c => c.Conv).ToArray();
        downsample = own.Where(c => IsProjection(c.Op)).Select(c => c.Conv).SingleOrDefault();
        for (int i = 0; i < convs.Length; i++)
        {
            register_module($"conv{i + 1}", convs[i]);
        }

        if (downsample is not null)
        {
            register_module("downsample", downsample);
        }

        InChannels = inChannels;
        OutChannels = graph.Ops[block.EndOp - 1].OutChannels;
    }

    /// <summary>Channels the block expects.</summary>
    public long InChannels { get; }

    /// <summary>Channels the block produces.</summary>
    public long OutChannels { get; }

    /// <summary>The folded convolutions of the residual branch, in order.</summary>
    public IReadOnlyList<FusedConv2d> ResidualConvs => convs;

    /// <summary>True when the shortcut is a folded 1×1 projection.</summary>
    public bool HasProjection => downsample is not null;

    /// <summary>Runs the block (NCHW or channels-last, as the input is); the input is left alive (the caller owns it).</summary>
    public override Tensor forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return executor.RunDense(input.alias(), block.Input, block.FirstOp, block.Output);
    }

    private static bool IsProjection(LoweredOp op) => op.Name.EndsWith(".downsample.0", StringComparison.Ordinal);
}
