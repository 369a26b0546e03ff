using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNetSharp.Inference;

/// <summary>
/// Runs a folded <see cref="LoweredGraph"/> (the executors of <see cref="InferenceResNet"/>): densely (NCHW or
/// channels-last, whatever layout the input has; convs by <see cref="FusedConv2d"/>) or on oneDNN's blocked layout.
/// Both free every value right after the last op that reads it and run the residual add (and its ReLU) in place on
/// the branch, so at most one block's live values exist at a time. They know ops, not blocks or shortcut options.
/// </summary>
internal sealed class GraphExecutor
{
    private readonly LoweredGraph graph;
    private readonly FusedConv2d?[] convs;
    private readonly int[] producer;

    /// <param name="graph">A folded graph.</param>
    /// <param name="convs">The runtime conv of each <see cref="ConvOp"/>, by op index (null for other ops).</param>
    public GraphExecutor(LoweredGraph graph, FusedConv2d?[] convs)
    {
        this.graph = graph;
        this.convs = convs;
        producer = new int[graph.ValueCount];
        for (int i = 0; i < graph.Ops.Count; i++)
        {
            producer[graph.Ops[i].Output] = i;
        }
    }

    /// <summary>
    /// Runs the ops from <paramref name="firstOp"/> up to the one that writes <paramref name="output"/>, with
    /// <paramref name="input"/> as the value <paramref name="inputValue"/> (consumed: disposed once dead, or turned into
    /// the output in place); returns the output value.
    /// </summary>
    public Tensor RunDense(Tensor input, int inputValue, int firstOp, int output)
    {
        int endOp = producer[output] + 1;
        var last = graph.LastUses(firstOp, endOp, output);
        var values = new Tensor?[graph.ValueCount];
        values[inputValue] = input;
        for (int i = firstOp; i < endOp; i++)
        {
            var op = graph.Ops[i];
            var x = values[op.Inputs[0]] ?? throw new InvalidOperationException($"{op.Name}: its input was not computed.");
            Tensor y = op switch
            {
                ConvOp => convs[i]!.call(x),
                AddOp add => Add(x, values[op.Inputs[1]]!, add.Relu, inPlace: last[op.Inputs[0]] == i),
                ZeroPadShortcutOp pad => ZeroPad(x, pad),
                MaxPoolOp pool => nn.functional.max_pool2d(x, pool.Kernel, pool.Stride, pool.Padding),
                GlobalAveragePoolOp => x.mean(new long[] { 2, 3 }),
                LinearOp fc => nn.functional.linear(x, fc.Weight, fc.Bias),
                _ => throw Unsupported(op),
            };
            values[op.Output] = y;
            foreach (int v in op.Inputs)
            {
                if (last[v] == i && values[v] is { } dead)
                {
                    if (!ReferenceEquals(dead, y))
                    {
                        dead.Dispose();
                    }

                    values[v] = null;
                }
            }
        }

        return values[output]!;
    }

    /// <summary>
    /// Runs the ops up to the one that writes <paramref name="output"/> on oneDNN's blocked layout, from a dense,
    /// contiguous NCHW float32 <paramref name="input"/> (consumed); returns the output as a dense NCHW tensor. Convs
    /// and the max pool run on MKLDNN tensors; the residual add, its ReLU and option A run on dense ones, because
    /// oneDNN's sum primitive in libtorch 2.10 dies of SIGFPE on the project's machine (see <see cref="OneDnnProgram"/>).
    /// Each value is converted at most once to the other layout, when an op needs it there, and each of its two forms
    /// is freed after the last op that reads that form: a block's dense output then serves the next block's add.
    /// </summary>
    public Tensor RunBlocked(Tensor input, int output, OneDnnProgram program)
    {
        int endOp = producer[output] + 1;
        // Which form each op reads: convs and pools blocked; the add, option A and the classifier dense; the global
        // pool whichever form its input was made in.
        bool MadeBlocked(int v) => v != LoweredGraph.Input && graph.Ops[producer[v]] is ConvOp or MaxPoolOp;
        bool ReadsBlocked(LoweredOp op, int v) => op switch
        {
            ConvOp or MaxPoolOp => true,
            GlobalAveragePoolOp => MadeBlocked(v),
            _ => false,
        };
        var lastBlocked = Enumerable.Repeat(-1, graph.ValueCount).ToArray();
        var lastDense = Enumerable.Repeat(-1, graph.ValueCount).ToArray();
        for (int i = 0; i < endOp; i++)
        {
            foreach (int v in graph.Ops[i].Inputs)
            {
                (ReadsBlocked(graph.Ops[i], v) ? lastBlocked : lastDense)[v] = i;
            }
        }

        lastDense[output] = int.MaxValue;
        var blocked = new Tensor?[graph.ValueCount];
        var dense = new Tensor?[graph.ValueCount];
        dense[LoweredGraph.Input] = input;
        Tensor Blocked(int v) => blocked[v] ??= program.ToBlocked(dense[v]!);
        Tensor Dense(int v) => dense[v] ??= program.ToDense(blocked[v]!);
        for (int i = 0; i < endOp; i++)
        {
            var op = graph.Ops[i];
            int v0 = op.Inputs[0];
            switch (op)
            {
                case ConvOp:
                    blocked[op.Output] = convs[i]!.ForwardBlocked(Blocked(v0));
                    break;
                case MaxPoolOp pool:
                    blocked[op.Output] = program.MaxPool(new OneDnnProgram.PoolConfig(pool.Kernel[0], pool.Kernel[1], pool.Stride[0], pool.Stride[1], pool.Padding[0], pool.Padding[1]), Blocked(v0));
                    break;
                case AddOp add:
                    dense[op.Output] = Add(Dense(v0), Dense(op.Inputs[1]), add.Relu, inPlace: lastDense[v0] == i);
                    break;
                case ZeroPadShortcutOp pad:
                    dense[op.Output] = ZeroPad(Dense(v0), pad);
                    break;
                case GlobalAveragePoolOp:
                    dense[op.Output] = MadeBlocked(v0) ? program.GlobalAveragePool(Blocked(v0)) : Dense(v0).mean(new long[] { 2, 3 });
                    break;
                case LinearOp fc:
                    dense[op.Output] = nn.functional.linear(Dense(v0), fc.Weight, fc.Bias);
                    break;
                default:
                    throw Unsupported(op);
            }

            var y = dense[op.Output] ?? blocked[op.Output];
            foreach (int v in op.Inputs)
            {
                // A form read for the last time here is freed; if only the other form is read later, make it first.
                if (lastBlocked[v] <= i && lastDense[v] > i)
                {
                    Dense(v);
                }
                else if (lastDense[v] <= i && lastBlocked[v] > i)
                {
                    Blocked(v);
                }

                Release(blocked, v, lastBlocked[v] <= i, y);
                Release(dense, v, lastDense[v] <= i, y);
            }
        }

        var result = Dense(output);
        Release(blocked, output, true, result);
        return result;
    }

    private static void Release(Tensor?[] form, int v, bool dead, Tensor? output)
    {
        if (dead && form[v] is { } t)
        {
            if (!ReferenceEquals(t, output))
            {
                t.Dispose();
            }

            form[v] = null;
        }
    }

    /// <summary>branch + shortcut (in place on the branch when it dies here), then ReLU in place.</summary>
    private static Tensor Add(Tensor branch, Tensor shortcut, bool relu, bool inPlace)
    {
        var y = inPlace ? branch.add_(shortcut) : branch.add(shortcut);
        return relu ? y.relu_() : y;
    }

    /// <summary>Option A: subsample by the stride, append zero channels (a new, dense tensor).</summary>
    private static Tensor ZeroPad(Tensor x, ZeroPadShortcutOp pad)
    {
        using var sub = pad.Stride > 1 ? x[.., .., TensorIndex.Slice(null, null, pad.Stride), TensorIndex.Slice(null, null, pad.Stride)] : x.alias();
        return pad.PadChannels > 0 ? nn.functional.pad(sub, new long[] { 0, 0, 0, 0, 0, pad.PadChannels }) : sub.contiguous();
    }

    private Exception Unsupported(LoweredOp op) => new NotSupportedException(
        $"{graph.ModelName}: {op.Name} is a {op.GetType().Name}, which the inference executors do not run (they run folded post-activation graphs).");
}
