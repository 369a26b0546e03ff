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
    internal sealed record Recognised(StageTable Table, int InChannels, int NumClasses, OnnxHead Head, int? InputSize, IReadOnlyList<bool>? ReplaceStrideWithDilation);

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
            var convs = new List<CanonicalOp>();
            for (string v = cur; v != c.Output && c.Consumers(v) is [{ Kind: CanonicalKind.Conv or CanonicalKind.Norm or CanonicalKind.Relu } next]; v = next.Out)
            {
                convs.AddRange(next.Kind == CanonicalKind.Conv ? new[] { next } : Array.Empty<CanonicalOp>());
            }

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
        var head = linear is not null ? OnnxHead.Classifier : pool is not null ? OnnxHead.PooledFeatures : OnnxHead.FeatureMap;

        // The input size: the graph's when square and fixed; else the one at which the last map or the AveragePool says it is.
        int outputStride = table.OutputStride >> (replaced?.Count(r => r) ?? 0);
        int? size = g.InputDims[2] is { } ih && g.InputDims[3] == ih ? (int)ih
            : c.Shape(cur) is { H: { } h, W: { } w } && h == w ? (int)h * outputStride
            : pool is { Kernel: > 0 } ? (int)pool.Kernel * outputStride : null;
        return new Recognised(table, (int)stem.Dims[1], (int)(linear?.Dims[0] ?? 0), head, size, replaced);
    }

    /// <summary>
    /// Zips the model's lowered ops (BatchNorm kept) against the graph's canonical ops from the input to the head, and
    /// copies the weights; every canonical op must be used once, and the last one must write the graph output.
    /// </summary>
    /// <returns>True when the graph's BatchNorms were folded (into conv biases, or as Mul + Add) and none was a BatchNormalization node.</returns>
    public static bool Bind(CanonicalGraph c, ResNet model, OnnxHead head)
    {
        var g = c.G;
        using var lowered = Lowering.Lower(model, foldBatchNorm: false);
        var modules = model.named_modules().ToDictionary(m => m.name, m => m.module, StringComparer.Ordinal);
        var map = new Dictionary<int, string> { [LoweredGraph.Input] = c.Input };
        var used = new HashSet<CanonicalOp>();
        var biases = new Dictionary<string, CanonicalOp>(StringComparer.Ordinal); // conv outputs whose non-zero bias the next BN takes
        bool folded = false, batchNorm = false;
        int end = head switch { OnnxHead.Classifier => lowered.Logits, OnnxHead.PooledFeatures => lowered.Pooled, _ => lowered.Features };
        using var noGrad = torch.no_grad();

        CanonicalOp Take(string x, CanonicalKind kind, string what, Func<CanonicalOp, bool>? prefer = null)
        {
            var free = c.Consumers(x).Where(o => !used.Contains(o)).ToList();
            var n = free.Where(o => o.Kind == kind).OrderBy(o => prefer is null || prefer(o) ? 0 : 1).FirstOrDefault();
            if (n is null)
            {
                string message = $"expected {what} reading '{x}'; {(free.Count > 0 ? $"found {free[0].Node.Op}" : x == c.Output ? "it is the graph output" : "nothing reads it")}.";
                var at = free.Count > 0 ? free[0].Node : c.Producer(x)?.Node;
                throw at is null ? g.Error(message) : g.Error(message, at);
            }

            used.Add(n);
            return n;
        }

        string Relu(string y, string after) => Take(y, CanonicalKind.Relu, $"the ReLU after {after}").Out;
        void Expect(CanonicalOp n, bool ok, Func<string> message)
        {
            if (!ok)
            {
                throw g.Error($"{message()} (recognised model: {model.Table}).", n.Node);
            }
        }

        foreach (var op in lowered.Ops)
        {
            string x = map[op.Inputs[0]], y;
            switch (op)
            {
                case ConvOp conv:
                {
                    long[] dims = conv.Weight.shape;
                    var n = Take(x, CanonicalKind.Conv, $"the convolution {op.Name} [{string.Join(", ", dims)}]", o => o.Dims.SequenceEqual(dims));
                    Expect(n, n.Dims.SequenceEqual(dims) && n.Stride == conv.Stride[0] && n.Pads.SequenceEqual(conv.Padding) && n.Dilation == conv.Dilation[0] &&
                              n.Groups == conv.Groups,
                        () => $"convolution weight [{string.Join(", ", n.Dims)}], stride {n.Stride}, padding [{string.Join(", ", n.Pads)}], dilation {n.Dilation}, " +
                              $"{n.Groups} groups: {op.Name} expects [{string.Join(", ", dims)}], stride {conv.Stride[0]}, padding [{string.Join(", ", conv.Padding)}], " +
                              $"dilation {conv.Dilation[0]}, {conv.Groups} groups");
                    Copy(((Conv2d)modules[op.Name]).weight!, n.Weight);
                    if (n.Bias?.Any(b => b != 0f) == true)
                    {
                        biases[n.Out] = n;
                    }

                    y = conv.Relu ? Relu(n.Out, op.Name) : n.Out;
                    break;
                }

                case BatchNormOp bn:
                {
                    long ch = bn.Gamma.shape[0];
                    float[] bias = biases.Remove(x, out var biased) ? biased.Bias! : new float[ch];
                    var n = c.Consumers(x).FirstOrDefault(o => o.Kind == CanonicalKind.Norm && !used.Contains(o))
                            ?? (c.Producer(x)?.Kind == CanonicalKind.Conv ? null : Take(x, CanonicalKind.Norm, $"the BatchNormalization {bn.Name} (or a per-channel Mul + Add)"));
                    float[] weight, shift, mean, var;
                    if (n is null)
                    {
                        // BN folded into the conv: the model's BN becomes an exact identity plus the conv's bias.
                        (weight, shift, mean, var) = (Enumerable.Repeat(1f, (int)ch).ToArray(), bias, new float[ch], Enumerable.Repeat(CanonicalGraph.IdentityVariance, (int)ch).ToArray());
                        (folded, y) = (true, x);
                    }
                    else
                    {
                        used.Add(n);
                        Expect(n, n.Weight.Length == ch, () => $"a norm over {n.Weight.Length} channels where {bn.Name} has {ch}");
                        // BN(conv + b) = BN'(conv) with mean − b; a Mul + Add has mean 0 and an identity variance.
                        (weight, shift, mean, var) = (n.Weight, n.Bias!, n.Mean.Select((m, i) => m - bias[i]).ToArray(), n.Var);
                        (folded, batchNorm, y) = (folded || !n.FromBatchNorm, batchNorm || n.FromBatchNorm, n.Out);
                    }

                    var module = (BatchNorm2d)modules[bn.Name];
                    Copy(module.weight!, weight);
                    Copy(module.bias!, shift);
                    Copy(module.running_mean!, mean);
                    Copy(module.running_var!, var);
                    y = bn.Relu ? Relu(y, bn.Name) : y;
                    break;
                }

                case AddOp add:
                {
                    string s = map[op.Inputs[1]];
                    var n = Take(x, CanonicalKind.Add, $"the residual Add {op.Name} of '{x}' and '{s}'", o => o.In.Contains(s));
                    Expect(n, n.In.Contains(s) && x != s, () => $"adds '{string.Join("' and '", n.In)}': {op.Name} adds '{x}' (branch) and '{s}' (shortcut)");
                    y = add.Relu ? Relu(n.Out, op.Name) : n.Out;
                    break;
                }

                case ZeroPadShortcutOp z:
                {
                    var n = Take(x, CanonicalKind.ZeroPad, $"the zero-padded shortcut {op.Name}");
                    Expect(n, n.Stride == z.Stride && n.StrideW == z.Stride && n.Extra == z.PadChannels,
                        () => $"the zero-padded shortcut subsamples rows by {n.Stride} and columns by {n.StrideW} and appends {n.Extra} channels: " +
                              $"{op.Name} needs stride {z.Stride} and {z.PadChannels} channels");
                    y = n.Out;
                    break;
                }

                case MaxPoolOp pool:
                {
                    var n = Take(x, CanonicalKind.MaxPool, $"the stem's {pool.Kernel[0]}×{pool.Kernel[0]} stride-{pool.Stride[0]} MaxPool");
                    Expect(n, n.Kernel == pool.Kernel[0] && n.Stride == pool.Stride[0] && n.Pads.SequenceEqual(pool.Padding),
                        () => $"MaxPool kernel {n.Kernel}, stride {n.Stride}, padding [{string.Join(", ", n.Pads)}]: the stem's is kernel {pool.Kernel[0]}, " +
                              $"stride {pool.Stride[0]}, padding [{string.Join(", ", pool.Padding)}]");
                    y = n.Out;
                    break;
                }

                case GlobalAveragePoolOp:
                    y = Take(x, CanonicalKind.GlobalPool, "global average pooling (GlobalAveragePool, AveragePool over the whole map or ReduceMean)").Out;
                    break;

                case LinearOp fc:
                {
                    var n = Take(x, CanonicalKind.Linear, "the classifier (Gemm, or MatMul + Add)");
                    Expect(n, n.Dims.SequenceEqual(fc.Weight.shape), () => $"classifier weight [{string.Join(", ", n.Dims)}]: expected [{string.Join(", ", fc.Weight.shape)}]");
                    var module = (Linear)modules[op.Name];
                    Copy(module.weight!, n.Weight);
                    Copy(module.bias!, n.Bias!);
                    y = n.Out;
                    break;
                }

                default:
                    throw g.Error($"{op.Name} ({op.GetType().Name}) of the recognised model {model.Table} has no ONNX form the importer reads.");
            }

            map[op.Output] = y;
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
            throw g.Error($"this {stray.Node.Op} is not part of the recognised ResNet ({model.Table}): nothing of that model reads its input '{stray.In[0]}' this way.", stray.Node);
        }

        if (biases.Values.FirstOrDefault() is { } unbiased)
        {
            throw g.Error("this convolution has a bias but no BatchNormalization follows it, and the recognised model (pre-activation) has none there to take it.", unbiased.Node);
        }

        return folded && !batchNorm;
    }

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

    private static Block Classify(OnnxGraph g, List<CanonicalOp> convs, ShortcutKind shortcut)
    {
        static long K(CanonicalOp c) => c.Dims[2];
        long outC = convs[^1].Dims[0], inC = convs[0].Dims[1] * convs[0].Groups;
        if (convs.Count == 2)
        {
            if (convs.Any(c => K(c) != 3 || c.Groups != 1) || convs[1].Stride != 1 || convs[0].Dims[0] != outC || convs[0].Dilation != convs[1].Dilation)
            {
                throw g.Error("a two-convolution branch must be 3×3 (stride s) then 3×3 (stride 1), same width and dilation, one group: a basic block.", convs[0].Node);
            }

            return new Block(convs[0], BlockKind.Basic, inC, outC, outC, outC, 1, convs[0].Stride, null, convs, shortcut);
        }

        if (convs.Count != 3)
        {
            throw g.Error($"a residual branch of {convs.Count} convolutions: expected 2 (basic block) or 3 (bottleneck).", convs[0].Node);
        }

        if (K(convs[0]) != 1 || K(convs[1]) != 3 || K(convs[2]) != 1 || convs[0].Groups != 1 || convs[2].Groups != 1 || convs[2].Stride != 1 ||
            (convs[0].Stride != 1 && convs[1].Stride != 1) || outC % Bottleneck.Expansion != 0 || convs[0].Dims[0] != convs[1].Dims[0])
        {
            throw g.Error("a three-convolution branch must be 1×1, 3×3 (grouped), 1×1 with the stride on one of the first two and 4× the base width out: a bottleneck.", convs[0].Node);
        }

        long stride = Math.Max(convs[0].Stride, convs[1].Stride);
        StridePlacement? placement = stride == 1 ? null : convs[0].Stride != 1 ? StridePlacement.V1 : StridePlacement.V1_5;
        return new Block(convs[0], BlockKind.Bottleneck, inC, outC, outC / Bottleneck.Expansion, convs[1].Dims[0], convs[1].Groups, stride, placement, convs, shortcut);
    }

    private static (StageTable Table, bool[]? ReplaceStrideWithDilation) BuildTable(OnnxGraph g, List<Block> blocks, StemKind stem, long stemWidth, bool preAct)
    {
        var kind = blocks[0].Kind;
        var odd = blocks.FirstOrDefault(b => b.Kind != kind);
        if (odd is not null)
        {
            throw g.Error($"mixes {kind} and {odd.Kind} blocks: a ResNet stacks one block kind.", odd.First.Node);
        }

        long groups = blocks[0].Groups;
        if (blocks.FirstOrDefault(b => b.Groups != groups) is { } g2)
        {
            throw g.Error($"3×3 convolution has {g2.Groups} groups where earlier blocks have {groups}: expected one cardinality.", g2.First.Node);
        }

        var placements = blocks.Where(b => b.Placement is not null).Select(b => b.Placement!.Value).Distinct().ToList();
        if (placements.Count > 1)
        {
            throw g.Error("down-sampling bottlenecks put their stride on the 1×1 (v1) in some blocks and on the 3×3 (v1.5) in others.");
        }

        // Stages: a new one starts where a block down-samples or changes its base width.
        var stages = new List<List<Block>>();
        foreach (var b in blocks)
        {
            if (stages.Count == 0 || b.Stride != 1 || b.Planes != stages[^1][^1].Planes)
            {
                stages.Add(new List<Block>());
            }

            stages[^1].Add(b);
        }

        bool optionA = blocks.Any(b => b.Shortcut == ShortcutKind.ZeroPad);
        bool plain = blocks.All(b => b.Shortcut == ShortcutKind.None);
        bool shapeRule = blocks.All(b => (b.Shortcut == ShortcutKind.Projection) == Shortcuts.ShapeChanges(b.In, b.Out, b.Stride));
        ShortcutOption shortcut;
        if (plain)
        {
            shortcut = ShortcutOption.None;
        }
        else if (optionA)
        {
            var proj = blocks.FirstOrDefault(b => b.Shortcut == ShortcutKind.Projection);
            if (proj is not null)
            {
                throw g.Error("mixes zero-padded (option A) and projection shortcuts.", proj.First.Node);
            }

            shortcut = ShortcutOption.A;
        }
        else if (shapeRule)
        {
            shortcut = ShortcutOption.B;
        }
        else if (blocks.All(b => b.Shortcut == ShortcutKind.Projection))
        {
            shortcut = ShortcutOption.C;
        }
        else
        {
            var bad = blocks.First(b => (b.Shortcut == ShortcutKind.Projection) != Shortcuts.ShapeChanges(b.In, b.Out, b.Stride));
            throw g.Error("projection shortcuts follow neither option B (exactly where the shape changes) nor option C (every block).", bad.First.Node);
        }

        long widthPerGroup = 64;
        if (kind == BlockKind.Bottleneck)
        {
            var b0 = blocks[0];
            long num = b0.Width / groups * 64;
            widthPerGroup = num % b0.Planes == 0 ? num / b0.Planes : -1;
            var wrong = blocks.FirstOrDefault(b => widthPerGroup < 1 || b.Width % groups != 0 || b.Planes * widthPerGroup / 64 * groups != b.Width);
            if (wrong is not null)
            {
                throw g.Error($"bottleneck inner width {wrong.Width} (groups {groups}) is not ⌊planes × width_per_group / 64⌋ × groups for one width_per_group across the network.", wrong.First.Node);
            }
        }

        // Dilation (torchvision's replace_stride_with_dilation): a stage that gave up its stride of 2 runs its first block at
        // the previous dilation and the rest at twice it; the table keeps stride 2 and the options carry the flag.
        static long Dilation(Block b) => b.Convs.Where(c => c.Dims[2] == 3).Select(c => c.Dilation).DefaultIfEmpty(1).Max();
        var strides = new int[stages.Count];
        var replaced = new bool[stages.Count];
        long previous = 1;
        for (int s = 0; s < stages.Count; s++)
        {
            var st = stages[s];
            long rest = st.Count > 1 ? Dilation(st[1]) : s + 1 < stages.Count ? Dilation(stages[s + 1][0]) : previous;
            if (Dilation(st[0]) != previous || st.Skip(1).Any(b => Dilation(b) != rest))
            {
                throw g.Error($"stage {s + 1}'s dilations ({string.Join(", ", st.Select(Dilation))}) do not follow replace-stride-with-dilation: its first block " +
                              $"should use {previous} and the others one dilation.", st[0].First.Node);
            }

            replaced[s] = rest == 2 * previous && st[0].Stride == 1;
            if (rest != previous && (!replaced[s] || s == 0))
            {
                throw g.Error($"stage {s + 1} changes the dilation from {previous} to {rest}: only a stage after the first that gives up a stride of 2 may double it.", st[0].First.Node);
            }

            strides[s] = replaced[s] ? 2 : (int)st[0].Stride;
            previous = rest;
        }

        var replaceStrideWithDilation = replaced.Skip(1).Any(r => r) ? replaced.Skip(1).ToArray() : null;
        var table = new StageTable
        {
            Block = kind,
            Layers = stages.Select(s => s.Count).ToArray(),
            Widths = stages.Select(s => (int)s[0].Planes).ToArray(),
            Strides = strides,
            Stem = stem,
            StemWidth = (int)stemWidth,
            Groups = (int)groups,
            WidthPerGroup = (int)widthPerGroup,
            StridePlacement = placements.Count == 1 ? placements[0] : StridePlacement.V1_5,
            Shortcut = shortcut,
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

        return (table, replaceStrideWithDilation);
    }
}
