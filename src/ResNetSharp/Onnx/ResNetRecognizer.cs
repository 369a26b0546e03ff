using System;
using System.Collections.Generic;
using System.Linq;
using ResNetSharp.Inference;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResNetSharp.Onnx;

/// <summary>
/// The importer after canonicalisation: <see cref="Recognise"/> reads the stage table, the input channels and the head
/// from a <see cref="CanonicalGraph"/>; <see cref="Bind"/> lowers the model built from them (BatchNorm kept) and zips
/// its ops against the graph's, value by value from the input, checking each op's kind and shape and copying its
/// weights into the module the op is named after. The names live in the blocks; nothing here spells a state-dict key.
/// </summary>
internal static class ResNetRecognizer
{
    internal sealed record Recognised(StageTable Table, int InChannels, int NumClasses, OnnxOutput Head, int? InputSize, IReadOnlyList<bool>? ReplaceStrideWithDilation);

    private enum ShortcutKind { Identity, Projection, ZeroPad, None }

    private sealed record Block(CanonicalOp First, BlockKind Kind, long In, long Out, long Planes, long Width, long Groups, long Stride,
        StridePlacement? Placement, List<CanonicalOp> Convs, ShortcutKind Shortcut);

    public static Recognised Recognise(CanonicalGraph c)
    {
        var g = c.G;
        var stem = Single(c, c.Input, CanonicalKind.Conv, "the stem convolution");
        StemKind stemKind = (stem.Dims[2], stem.Stride) switch
        {
            (7, 2) => StemKind.ImageNet,
            (3, 1) => StemKind.Cifar,
            _ => throw g.Error($"stem convolution is {stem.Dims[2]}×{stem.Dims[2]} stride {stem.Stride}: expected 7×7 stride 2 (ImageNet stem) or 3×3 stride 1 (CIFAR stem).", stem.Node),
        };
        if (stem.Groups != 1)
        {
            throw g.Error($"stem convolution has {stem.Groups} groups: expected 1.", stem.Node);
        }

        // A pre-activation stem is the bare conv: the first block's BN (or the max pool) reads it.
        bool preAct = c.Consumers(stem.Out) is not [{ Kind: CanonicalKind.Norm or CanonicalKind.Relu }];
        string cur = stem.Out;
        if (!preAct)
        {
            cur = c.Consumers(cur) is [{ Kind: CanonicalKind.Norm } norm] ? norm.Out : cur;
            cur = Single(c, cur, CanonicalKind.Relu, "a ReLU after the stem convolution's BatchNormalization").Out;
        }

        if (stemKind == StemKind.ImageNet)
        {
            cur = Single(c, cur, CanonicalKind.MaxPool, "the stem's 3×3 stride-2 MaxPool").Out;
        }

        // A block per residual Add: each of its inputs leads back to the block's input; the side with 2 or 3 convs is the branch.
        var blocks = new List<Block>();
        foreach (var add in c.Ops.Where(o => o.Kind == CanonicalKind.Add).ToList())
        {
            var sides = add.In.Select(v => PathBack(c, v, cur, add)).ToList();
            var branches = sides.Where(s => s.Count(o => o.Kind == CanonicalKind.Conv) >= 2).ToList();
            if (branches.Count != 1)
            {
                throw g.Error("expected one residual branch of 2 (basic) or 3 (bottleneck) convolutions and one shortcut.", add.Node);
            }

            var shortcut = sides.First(s => !ReferenceEquals(s, branches[0]));
            var kind = shortcut.Count(o => o.Kind == CanonicalKind.Conv) switch
            {
                0 => shortcut.Any(o => o.Kind == CanonicalKind.ZeroPad) ? ShortcutKind.ZeroPad : ShortcutKind.Identity,
                1 => ShortcutKind.Projection,
                _ => throw g.Error("a shortcut of several convolutions: expected an identity, a zero-padded identity or one 1×1 projection.", add.Node),
            };
            var block = Classify(g, branches[0].Where(o => o.Kind == CanonicalKind.Conv).ToList(), kind);
            if (kind == ShortcutKind.Identity && Shortcuts.ShapeChanges(block.In, block.Out, block.Stride))
            {
                throw g.Error($"identity shortcut around a block that changes the shape ({block.In} → {block.Out} channels, stride {block.Stride}).", add.Node);
            }

            blocks.Add(block);
            cur = preAct ? add.Out : Single(c, add.Out, CanonicalKind.Relu, "a ReLU after the residual Add").Out;
        }

        if (blocks.Count == 0)
        {
            // A plain network (the paper's degradation baselines): conv-BN-ReLU units and no residual Add.
            var convs = c.Ops.Where(o => o.Kind == CanonicalKind.Conv).Skip(1).ToList();

            int per = convs.Count > 0 && convs[0].Dims[2] == 1 ? 3 : 2;
            if (convs.Count == 0 || convs.Count % per != 0)
            {
                var at = convs.Count > 0 ? convs[^1] : c.Consumers(cur).Count > 0 ? c.Consumers(cur)[0] : null;
                string message = convs.Count == 0 ? "expected a residual block (Conv branch + shortcut joined by Add) after the stem: not a ResNet."
                    : $"{convs.Count} convolutions after the stem do not group into {(per == 2 ? "basic blocks (pairs of 3×3)" : "bottlenecks (1×1, 3×3, 1×1)")}.";
                throw at is null ? g.Error("no residual block follows the stem: not a ResNet.") : g.Error(message, at.Node);
            }

            blocks.AddRange(convs.Chunk(per).Select(unit => Classify(g, unit.ToList(), ShortcutKind.None)));
        }

        var (table, replaced) = BuildTable(g, blocks, stemKind, stem.Dims[0], preAct);
        var linear = c.Ops.FirstOrDefault(o => o.Kind == CanonicalKind.Linear);
        var pool = c.Ops.FirstOrDefault(o => o.Kind == CanonicalKind.GlobalPool);
        var head = linear is not null ? OnnxOutput.Logits : pool is not null ? OnnxOutput.PooledFeatures : OnnxOutput.FeatureMaps;

        // The input size: the graph's when square and fixed; else the one at which the last map or the AveragePool says it is.
        int outputStride = table.OutputStride >> (replaced?.Count(r => r) ?? 0);
        int? size = g.InputDims[2] is { } ih && g.InputDims[3] == ih ? (int)ih
            : c.Shape(cur) is { H: { } h, W: { } w } && h == w ? (int)h * outputStride
            : pool is { Kernel: > 0 } ? (int)pool.Kernel * outputStride : null;
        return new Recognised(table, (int)stem.Dims[1], (int)(linear?.Dims[0] ?? 0), head, size, replaced);
    }

    /// <summary>
    /// Zips the model's lowered ops (BatchNorm kept) against the graph's canonical ops from the input to the head: each
    /// lowered op takes the unused canonical op of its kind that reads the value its input maps to, which must have the
    /// same attributes and weight shape, and names the module its weights go to. A BN folded into the conv before it
    /// (no norm in the graph) becomes an exact identity plus the conv's bias. Every canonical op must be used, and the
    /// last must write the graph output.
    /// </summary>
    /// <returns>True when the graph's BatchNorms were folded (into conv biases, or as Mul + Add) and none was a BatchNormalization node.</returns>
    public static bool Bind(CanonicalGraph c, ResNet model, OnnxOutput head)
    {
        var g = c.G;
        using var lowered = Lowering.Lower(model, foldBatchNorm: false);
        var modules = model.named_modules().ToDictionary(m => m.name, m => m.module, StringComparer.Ordinal);
        var map = new Dictionary<int, string> { [LoweredGraph.Input] = c.Input };
        var used = new HashSet<CanonicalOp>();
        var biases = new Dictionary<string, CanonicalOp>(StringComparer.Ordinal); // convs whose non-zero bias the BN after them must take
        bool folded = false, batchNorm = false;
        int end = head switch { OnnxOutput.Logits => lowered.Logits, OnnxOutput.PooledFeatures => lowered.Pooled, _ => lowered.Features };
        using var noGrad = torch.no_grad();

        CanonicalOp Take(string x, CanonicalKind kind, string what, Func<CanonicalOp, bool> prefer)
        {
            var free = c.Consumers(x).Where(o => !used.Contains(o)).ToList();
            var n = free.Where(o => o.Kind == kind).OrderBy(o => prefer(o) ? 0 : 1).FirstOrDefault();
            if (n is null)
            {
                string message = $"expected {what} reading '{x}'; {(free.Count > 0 ? $"found {free[0].Node.Op}" : x == c.Output ? "it is the graph output" : "nothing reads it")}.";
                var at = free.Count > 0 ? free[0].Node : c.Producer(x)?.Node;
                throw at is null ? g.Error(message) : g.Error(message, at);
            }

            used.Add(n);
            return n;
        }

        foreach (var op in lowered.Ops)
        {
            string x = map[op.Inputs[0]];
            string? shortcut = op is AddOp ? map[op.Inputs[1]] : null;
            var (kind, expected) = Expected(op);
            bool alone = c.Consumers(x).Count == 1 && x != c.Output; // a conv bias may move into the BN after it only when nothing else reads the conv
            CanonicalOp? n = null;
            if (!(op is BatchNormOp && alone && c.Producer(x)?.Kind == CanonicalKind.Conv && c.Consumers(x)[0].Kind != CanonicalKind.Norm))
            {
                n = Take(x, kind, $"{op.Name} ({expected})", o => Signature(o) == expected && (shortcut is null || o.In.Contains(shortcut)));
                if (Signature(n) != expected || (shortcut is not null && (!n.In.Contains(shortcut) || x == shortcut)))
                {
                    throw g.Error($"{Signature(n)} of '{string.Join("', '", n.In)}': {op.Name} of the recognised model ({model.Table}) is a {expected} " +
                                  $"of '{x}'{(shortcut is null ? "" : $" and '{shortcut}'")}.", n.Node);
                }
            }

            switch (op)
            {
                case ConvOp:
                    Copy(((Conv2d)modules[op.Name]).weight!, n!.Weight);
                    if (n.Bias?.Any(b => b != 0f) == true)
                    {
                        biases[n.Out] = n;
                    }

                    break;
                case BatchNormOp bn:
                {
                    int ch = (int)bn.Gamma.shape[0];
                    float[] bias = alone && biases.Remove(x, out var conv) ? conv.Bias! : new float[ch];
                    var module = (BatchNorm2d)modules[bn.Name];
                    if (n is null)
                    {
                        // BN folded into the conv: the model's BN becomes an exact identity plus the conv's bias.
                        n = new CanonicalOp(CanonicalKind.Norm, c.Producer(x)!.Node, new[] { x }, x)
                        {
                            Weight = Enumerable.Repeat(1f, ch).ToArray(), Bias = bias, Mean = new float[ch], Var = Enumerable.Repeat(CanonicalGraph.IdentityVariance, ch).ToArray(),
                        };
                        bias = new float[ch];
                    }

                    // BN(conv + b) = BN'(conv) with mean − b (a Mul + Add has mean 0 and an identity variance).
                    Copy(module.weight!, n.Weight);
                    Copy(module.bias!, n.Bias!);
                    Copy(module.running_mean!, n.Mean.Select((m, i) => m - bias[i]).ToArray());
                    Copy(module.running_var!, n.Var);
                    (folded, batchNorm) = (folded || !n.FromBatchNorm, batchNorm || n.FromBatchNorm);
                    break;
                }

                case LinearOp:
                    Copy(((Linear)modules[op.Name]).weight!, n!.Weight);
                    Copy(((Linear)modules[op.Name]).bias!, n.Bias!);
                    break;
            }

            string y = n?.Out ?? x;
            map[op.Output] = op is ConvOp { Relu: true } or BatchNormOp { Relu: true } or AddOp { Relu: true }
                ? Take(y, CanonicalKind.Relu, $"the ReLU after {op.Name}", _ => true).Out
                : y;
            if (op.Output == end)
            {
                break;
            }
        }

        string last = map[end];
        if (last != c.Output)
        {
            var after = c.Consumers(last).FirstOrDefault(o => !used.Contains(o));
            throw after is null
                ? g.Error($"the {head} '{last}' is not the graph output '{c.Output}'.")
                : g.Error($"expected the graph to end at the {head} '{last}' (Softmax and other post-processing are not part of a ResNet); found {after.Node.Op}.", after.Node);
        }

        if (c.Ops.FirstOrDefault(o => !used.Contains(o)) is { } stray)
        {
            throw g.Error($"this {stray.Node.Op} is not part of the recognised ResNet ({model.Table}): nothing of that model reads '{stray.In[0]}' this way.", stray.Node);
        }

        if (biases.Values.FirstOrDefault() is { } biased)
        {
            throw g.Error("this convolution has a bias but no BatchNormalization follows it alone, and the recognised model has none there to take it.", biased.Node);
        }

        return folded && !batchNorm;
    }

    /// <summary>The canonical kind and the description (<see cref="Signature"/>) that a lowered op must find in the graph.</summary>
    private static (CanonicalKind Kind, string Signature) Expected(LoweredOp op) => op switch
    {
        ConvOp c => (CanonicalKind.Conv, ConvSignature(c.Weight.shape, c.Stride[0], c.Padding, c.Dilation[0], c.Groups)),
        BatchNormOp b => (CanonicalKind.Norm, $"norm over {b.Gamma.shape[0]} channels"),
        AddOp => (CanonicalKind.Add, "residual Add"),
        ZeroPadShortcutOp z => (CanonicalKind.ZeroPad, $"zero-padded shortcut (stride {z.Stride}×{z.Stride}, {z.PadChannels} channels appended)"),
        MaxPoolOp p => (CanonicalKind.MaxPool, $"max pool {p.Kernel[0]}×{p.Kernel[0]} stride {p.Stride[0]} padding [{string.Join(", ", p.Padding)}]"),
        GlobalAveragePoolOp => (CanonicalKind.GlobalPool, "global average pooling"),
        LinearOp l => (CanonicalKind.Linear, $"classifier [{string.Join(", ", l.Weight.shape)}]"),
        _ => throw new InvalidOperationException($"{op.Name}: the importer reads no {op.GetType().Name}."),
    };

    /// <summary>What a canonical op computes, in the words of <see cref="Expected"/>.</summary>
    private static string Signature(CanonicalOp n) => n.Kind switch
    {
        CanonicalKind.Conv => ConvSignature(n.Dims, n.Stride, n.Pads, n.Dilation, n.Groups),
        CanonicalKind.Norm => $"norm over {n.Weight.Length} channels",
        CanonicalKind.Add => "residual Add",
        CanonicalKind.ZeroPad => $"zero-padded shortcut (stride {n.Stride}×{n.StrideW}, {n.Extra} channels appended)",
        CanonicalKind.MaxPool => $"max pool {n.Kernel}×{n.Kernel} stride {n.Stride} padding [{string.Join(", ", n.Pads)}]",
        CanonicalKind.GlobalPool => "global average pooling",
        CanonicalKind.Linear => $"classifier [{string.Join(", ", n.Dims)}]",
        _ => "ReLU",
    };

    private static string ConvSignature(long[] weight, long stride, long[] padding, long dilation, long groups) =>
        $"convolution [{string.Join(", ", weight)}] stride {stride} padding [{string.Join(", ", padding)}] dilation {dilation}{(groups == 1 ? "" : $" groups {groups}")}";

    private static void Copy(Tensor target, float[] data)
    {
        using var source = torch.tensor(data, target.shape);
        target.copy_(source);
    }

    /// <summary>The one op reading <paramref name="value"/>, of <paramref name="kind"/>; else an error naming what is there.</summary>
    private static CanonicalOp Single(CanonicalGraph c, string value, CanonicalKind kind, string expected)
    {
        var cons = c.Consumers(value);
        if (cons.Count == 1 && value != c.Output && cons[0].Kind == kind)
        {
            return cons[0];
        }

        string message = cons.Count == 0 ? $"the graph ends at '{value}': expected {expected} next."
            : cons.Count == 1 ? $"expected {expected}, found {cons[0].Node.Op}."
            : $"value '{value}' feeds {cons.Count} nodes ({string.Join(", ", cons.Select(n => $"{n.Node.Op} '{n.Node.Name}'"))}): expected only {expected}.";
        var at = cons.Count > 0 ? cons[0].Node : c.Producer(value)?.Node;
        return at is null ? throw c.G.Error(message) : throw c.G.Error(message, at);
    }

    /// <summary>The ops from <paramref name="value"/> back to the block input <paramref name="stop"/>, in forward order.</summary>
    private static List<CanonicalOp> PathBack(CanonicalGraph c, string value, string stop, CanonicalOp add)
    {
        var ops = new List<CanonicalOp>();
        for (string v = value; v != stop;)
        {
            var p = c.Producer(v);
            if (p is null || p.Kind is not (CanonicalKind.Conv or CanonicalKind.Norm or CanonicalKind.Relu or CanonicalKind.ZeroPad))
            {
                throw c.G.Error($"the residual Add's input '{value}' does not lead back to the block input '{stop}' through convolutions, norms, ReLUs " +
                                $"and a zero-padded shortcut{(p is null ? "" : $": it passes {p.Node.Op} '{p.Node.Name}'")}.", add.Node);
            }

            ops.Insert(0, p);
            v = p.In[0];
        }

        return ops;
    }

    /// <summary>A block's table entries, read from its branch convolutions; whether they really form that block, the zip checks.</summary>
    private static Block Classify(OnnxGraph g, List<CanonicalOp> convs, ShortcutKind shortcut)
    {
        long outC = convs[^1].Dims[0], inC = convs[0].Dims[1] * convs[0].Groups;
        if (convs.Count is not (2 or 3) || (convs.Count == 3 && outC % Bottleneck.Expansion != 0))
        {
            throw g.Error($"a residual branch of {convs.Count} convolutions to {outC} channels: expected 2 (basic block) or 3 (bottleneck, 4 × its base width out).", convs[0].Node);
        }

        if (convs.Count == 2)
        {
            return new Block(convs[0], BlockKind.Basic, inC, outC, outC, outC, 1, convs[0].Stride, null, convs, shortcut);
        }

        long stride = Math.Max(convs[0].Stride, convs[1].Stride);
        StridePlacement? placement = stride == 1 ? null : convs[0].Stride != 1 ? StridePlacement.V1 : StridePlacement.V1_5;
        return new Block(convs[0], BlockKind.Bottleneck, inC, outC, outC / Bottleneck.Expansion, convs[1].Dims[0], convs[1].Groups, stride, placement, convs, shortcut);
    }

    /// <summary>
    /// The stage table of <paramref name="blocks"/>: stages start where a block down-samples or widens; block kind, groups,
    /// stride placement and width per group are the first block's; the shortcut option is the one rule that gives these
    /// shortcuts. Whether every block agrees, the zip checks against the model built from it.
    /// </summary>
    private static (StageTable Table, bool[]? ReplaceStrideWithDilation) BuildTable(OnnxGraph g, List<Block> blocks, StemKind stem, long stemWidth, bool preAct)
    {
        var stages = new List<List<Block>>();
        foreach (var b in blocks)
        {
            if (stages.Count == 0 || b.Stride != 1 || b.Planes != stages[^1][^1].Planes)
            {
                stages.Add(new List<Block>());
            }

            stages[^1].Add(b);
        }

        // Dilation (torchvision's replace_stride_with_dilation): a stage that gave up its stride of 2 runs its first block at
        // the previous dilation and the rest (or the next stage) at twice it; the table keeps stride 2 and the options carry the flag.
        static long Dilation(Block b) => b.Convs.Where(c => c.Dims[2] == 3).Select(c => c.Dilation).DefaultIfEmpty(1).Max();
        var replaced = new bool[stages.Count];
        long previous = 1;
        for (int s = 1; s < stages.Count; s++)
        {
            long rest = stages[s].Count > 1 ? Dilation(stages[s][1]) : s + 1 < stages.Count ? Dilation(stages[s + 1][0]) : previous;
            replaced[s] = stages[s][0].Stride == 1 && rest == 2 * previous;
            previous = replaced[s] ? rest : previous;
        }

        var b0 = blocks[0];
        long widthPerGroup = b0.Kind == BlockKind.Basic ? 64 : b0.Width / b0.Groups * 64 / b0.Planes;
        if (widthPerGroup < 1 || b0.Planes * widthPerGroup / 64 * b0.Groups != b0.Width)
        {
            throw g.Error($"bottleneck inner width {b0.Width} (groups {b0.Groups}) is not ⌊planes × width_per_group / 64⌋ × groups for any width_per_group.", b0.First.Node);
        }

        var table = new StageTable
        {
            Block = b0.Kind,
            Layers = stages.Select(s => s.Count).ToArray(),
            Widths = stages.Select(s => (int)s[0].Planes).ToArray(),
            Strides = stages.Select((s, i) => replaced[i] ? 2 : (int)s[0].Stride).ToArray(),
            Stem = stem,
            StemWidth = (int)stemWidth,
            Groups = (int)b0.Groups,
            WidthPerGroup = (int)widthPerGroup,
            StridePlacement = blocks.FirstOrDefault(b => b.Placement is not null)?.Placement ?? StridePlacement.V1_5,
            Shortcut = blocks.Any(b => b.Shortcut == ShortcutKind.None) ? ShortcutOption.None
                : blocks.Any(b => b.Shortcut == ShortcutKind.ZeroPad) ? ShortcutOption.A
                : blocks.All(b => (b.Shortcut == ShortcutKind.Projection) == Shortcuts.ShapeChanges(b.In, b.Out, b.Stride)) ? ShortcutOption.B
                : ShortcutOption.C,
            PreActivation = preAct,
        };
        try
        {
            table.Validate();
        }
        catch (ArgumentException ex)
        {
            throw g.Error($"the recognised stage table ({table}) cannot be built: {ex.Message}");
        }

        return (table, replaced.Skip(1).Any(r => r) ? replaced.Skip(1).ToArray() : null);
    }
}
