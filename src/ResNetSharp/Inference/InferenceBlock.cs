using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResNetSharp;

/// <summary>
/// A residual block (basic, bottleneck or grouped) with BatchNorm folded into each conv: the residual branch is
/// <c>conv1 … convK</c> (ReLU fused after all but the last), the shortcut is the identity, a folded 1×1 projection
/// (<c>downsample</c>) or option A's zero-padded identity; y = ReLU(F(x) + shortcut(x)) computed in place.
/// </summary>
public sealed class InferenceBlock : nn.Module<Tensor, Tensor>
{
    private readonly FusedConv2d[] convs;
    private readonly FusedConv2d? downsample;
    private readonly long padStride;
    private readonly long padChannels;
    private readonly ShortcutOption shortcut;

    internal InferenceBlock(ResidualBlock source)
        : base(source.GetName())
    {
        var sourceConvs = source.ResidualConvs;
        var sourceNorms = source.ResidualNorms;
        convs = new FusedConv2d[sourceConvs.Count];
        for (int i = 0; i < convs.Length; i++)
        {
            convs[i] = new FusedConv2d(sourceConvs[i], sourceNorms[i], relu: i < convs.Length - 1);
            register_module($"conv{i + 1}", convs[i]);
        }

        if (source.ProjectionModule is { } projection)
        {
            downsample = new FusedConv2d(projection.Conv, projection.Norm, relu: false);
            register_module("downsample", downsample);
        }
        else if (source.PadShortcut is { } pad)
        {
            padStride = pad.Stride;
            padChannels = pad.OutChannels - pad.InChannels;
        }

        shortcut = source.Shortcut;
        InChannels = source.InChannels;
        OutChannels = source.OutChannels;
    }

    /// <summary>Channels the block expects.</summary>
    public long InChannels { get; }

    /// <summary>Channels the block produces.</summary>
    public long OutChannels { get; }

    /// <summary>The folded convolutions of the residual branch, in order.</summary>
    public IReadOnlyList<FusedConv2d> ResidualConvs => convs;

    /// <summary>True when the shortcut is a folded 1×1 projection.</summary>
    public bool HasProjection => downsample is not null;

    /// <summary>
    /// The output size of the block for a <paramref name="height"/> × <paramref name="width"/> input, and the element
    /// count of the largest tensor it creates for one image (a branch activation, the shortcut or the output).
    /// </summary>
    internal (long Height, long Width, long LargestElements) Measure(long height, long width)
    {
        long largest = 0;
        long h = height, w = width;
        foreach (var conv in convs)
        {
            (h, w) = conv.OutputSize(h, w);
            largest = Math.Max(largest, conv.OutChannels * h * w);
        }

        // The shortcut (projection or padded identity) and the output both have the block's output shape.
        largest = Math.Max(largest, OutChannels * h * w);
        return (h, w, largest);
    }

    /// <summary>Runs the block; the input is left alive (the caller owns it).</summary>
    public override Tensor forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        using var alias = input.alias();
        return Run(alias, consumeInput: true);
    }

    /// <summary>All folded convs of the block (residual branch, then the projection if any).</summary>
    internal IEnumerable<FusedConv2d> AllConvs => downsample is null ? convs : convs.Append(downsample);

    /// <summary>
    /// Runs the block on an MKLDNN (oneDNN blocked) tensor <paramref name="x"/>, which it consumes, together with
    /// the same activation in dense NCHW form when the caller has it (<paramref name="xDense"/>, also consumed; null
    /// otherwise). Returns the output in both forms. The convolutions run on the blocked tensors; the residual add
    /// and its ReLU run on dense tensors, because oneDNN's sum primitive in libtorch 2.10 dies of SIGFPE on the
    /// project's machine (see <see cref="OneDnnProgram"/>); the dense output then serves the next block's add.
    /// </summary>
    internal (Tensor Blocked, Tensor Dense) RunBlocked(Tensor x, Tensor? xDense, OneDnnProgram oneDnn)
    {
        using var scope = torch.NewDisposeScope();
        Tensor y = convs[0].ForwardBlocked(x);
        Tensor? identity = null; // dense
        if (downsample is not null)
        {
            using var projected = downsample.ForwardBlocked(x);
            identity = oneDnn.ToDense(projected);
        }
        else if (padChannels > 0 || padStride > 1)
        {
            // Option A: subsample and zero-pad the dense input.
            var dense = xDense ?? oneDnn.ToDense(x);
            using var sub = padStride > 1 ? dense[.., .., TensorIndex.Slice(null, null, padStride), TensorIndex.Slice(null, null, padStride)] : dense.alias();
            identity = padChannels > 0 ? nn.functional.pad(sub, new long[] { 0, 0, 0, 0, 0, padChannels }) : sub.contiguous();
            dense.Dispose();
            xDense = null;
        }
        else if (shortcut != ShortcutOption.None)
        {
            identity = xDense ?? oneDnn.ToDense(x);
            xDense = null;
        }

        x.Dispose();
        xDense?.Dispose();
        for (int i = 1; i < convs.Length; i++)
        {
            var next = convs[i].ForwardBlocked(y);
            y.Dispose();
            y = next;
        }

        var output = oneDnn.ToDense(y);
        y.Dispose();
        if (identity is not null)
        {
            output.add_(identity);
            identity.Dispose();
        }

        output.relu_();
        var blocked = oneDnn.ToBlocked(output);
        return (blocked.MoveToOuterDisposeScope(), output.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Runs the block. With <paramref name="consumeInput"/> the input is disposed as soon as it is dead (after the
    /// first conv and the projection have read it, or after the identity add), so at most the input, the branch's
    /// live activation and the shortcut exist at once.
    /// </summary>
    internal Tensor Run(Tensor x, bool consumeInput)
    {
        using var scope = torch.NewDisposeScope();
        Tensor y = convs[0].call(x);
        Tensor? identity = null;
        if (downsample is not null)
        {
            identity = downsample.call(x);
        }
        else if (padChannels > 0 || padStride > 1)
        {
            using var sub = padStride > 1 ? x[.., .., TensorIndex.Slice(null, null, padStride), TensorIndex.Slice(null, null, padStride)] : x.alias();
            identity = padChannels > 0 ? nn.functional.pad(sub, new long[] { 0, 0, 0, 0, 0, padChannels }) : sub.contiguous();
        }

        bool needInput = shortcut != ShortcutOption.None && identity is null;
        if (consumeInput && !needInput)
        {
            x.Dispose();
        }

        for (int i = 1; i < convs.Length; i++)
        {
            var next = convs[i].call(y);
            y.Dispose();
            y = next;
        }

        if (identity is not null)
        {
            y.add_(identity);
            identity.Dispose();
        }
        else if (needInput)
        {
            y.add_(x);
            if (consumeInput)
            {
                x.Dispose();
            }
        }

        return y.relu_().MoveToOuterDisposeScope();
    }
}
