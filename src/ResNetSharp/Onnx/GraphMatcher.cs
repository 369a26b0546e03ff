using System;
using System.Collections.Generic;
using System.Linq;

namespace ResNetSharp.Onnx;

/// <summary>
/// Walks an <see cref="OnnxGraph"/> from its input along the main path and recognises a post-activation ResNet:
/// stem, residual blocks (branch + identity / projection / option-A shortcut, joined by Add and ReLU), head. Weights are
/// named by where they sit in the structure (torchvision's keys), never by the graph's initializer names.
/// </summary>
internal sealed class GraphMatcher
{
    /// <summary>The running variance that makes BatchNorm an exact identity in float32: (1 − 1e-5) + 1e-5 rounds to 1.</summary>
    internal const float IdentityVariance = 1f - TorchEps;

    /// <summary>The epsilon of every BatchNorm2d ResNetSharp builds (PyTorch's default; float32(1e-5) once in the kernel).</summary>
    private const float TorchEps = 1e-5f;

    private readonly OnnxGraph g;
    private readonly Dictionary<string, (long[] Shape, float[] Data)> weights = new(StringComparer.Ordinal);
    private bool anyFolded;
    private bool anyNorm;

    public GraphMatcher(OnnxGraph graph) => g = graph;

    internal sealed record Result(StageTable Table, int InChannels, int NumClasses, OnnxHead Head, bool BatchNormFolded, int? InputSize,
        int Blocks, int Projections, Dictionary<string, (long[] Shape, float[] Data)> Weights, IReadOnlyList<bool>? ReplaceStrideWithDilation = null);

    private bool[]? replaceStrideWithDilation;

    private sealed record Norm(float[] Weight, float[] Bias, float[] Mean, float[] Var);

    private sealed record ConvBn(OnnxNode Node, long InChannels, long OutChannels, long Kernel, long Stride, long Groups, float[] Weight, long[] Shape,
        Norm? Norm, string Output, long? H, long? W, long Dilation = 1);

    private enum ShortcutKind { Identity, Projection, ZeroPad, None }

    /// <summary>What follows a convolution: its BN (post-activation), no norm (pre-activation's last conv, projection, stem), or whichever the graph has.</summary>
    private enum NormMode { Post, None, Auto }

    private sealed record Chain(List<ConvBn> Convs, OnnxNode Add, string End, ShortcutKind Kind, long Stride, long Channels, OnnxNode First);

    private sealed record Block(OnnxNode First, BlockKind Kind, long In, long Out, long Planes, long Width, long Groups, long Stride,
        StridePlacement? Placement, List<ConvBn> Branch, ShortcutKind Shortcut, ConvBn? Projection, Norm? PreNorm = null);

    public Result Match()
    {
        if (g.Model.Graph.Output.Count != 1)
        {
            throw g.Error($"expected one graph output (logits or features), got {g.Model.Graph.Output.Count}.");
        }

        long? h = g.InputDims[2], w = g.InputDims[3];
        string cur = g.InputName;

        // Stem: conv (7×7/2 ImageNet, 3×3/1 CIFAR) + BN + ReLU (+ 3×3/2 max pool); a pre-activation stem is the bare conv.
        var first = Single(cur, "the stem convolution", null);
        var stemUsers = g.ConsumersOf(first.Output);
        bool preAct = first.Op == "Conv" && !(stemUsers.Count == 1 && stemUsers[0].Op is "BatchNormalization" or "Relu");
        var stem = ConvWithNorm(first, cur, g.InputDims[1], h, w, preAct ? NormMode.None : NormMode.Post);
        StemKind stemKind = (stem.Kernel, stem.Stride) switch
        {
            (7, 2) => StemKind.ImageNet,
            (3, 1) => StemKind.Cifar,
            _ => throw g.Error($"stem convolution is {stem.Kernel}×{stem.Kernel} stride {stem.Stride}: expected 7×7 stride 2 (ImageNet stem) or 3×3 stride 1 (CIFAR stem).", stem.Node),
        };
        if (stem.Groups != 1)
        {
            throw g.Error($"stem convolution has {stem.Groups} groups: expected 1.", stem.Node);
        }

        Put("conv1", stem, preAct ? null : "bn1");
        (h, w) = (stem.H, stem.W);
        cur = preAct ? stem.Output : Relu(stem.Output, stem.Node, "after the stem convolution's BatchNormalization");
        if (stemKind == StemKind.ImageNet)
        {
            var pool = Single(cur, "the stem's 3×3 stride-2 MaxPool", stem.Node);
            if (pool.Op != "MaxPool")
            {
                throw g.Error($"expected the stem's 3×3 stride-2 MaxPool after the stem {(preAct ? "convolution" : "ReLU")}.", pool);
            }

            (h, w) = Window(pool, 3, 2, 1, h, w);
            cur = pool.Output;
        }

        var blocks = new List<Block>();
        long channels = stem.OutChannels;
        Norm? finalNorm = null;
        var users = g.ConsumersOf(cur);
        if (preAct)
        {
            while (true)
            {
                // x → BN → ReLU: a block when that ReLU feeds convolutions, else the final norm before pooling.
                users = g.ConsumersOf(cur);
                var normNode = users.FirstOrDefault(n => n.Op is "BatchNormalization" or "Mul")
                    ?? throw (users.Count > 0
                        ? g.Error("expected the pre-activation BatchNormalization of the next block (or the final norm).", users[0])
                        : g.Error($"the graph ends at '{cur}': expected the final BatchNormalization + ReLU and pooling."));
                if (users.Count == 1)
                {
                    var (norm, normOut) = ParseNorm(normNode, cur, channels);
                    string r = Relu(normOut, normNode, "after the pre-activation BatchNormalization");
                    if (!g.ConsumersOf(r).Any(n => n.Op == "Conv"))
                    {
                        finalNorm = norm;
                        cur = r;
                        break;
                    }
                }

                var block = ParsePreActBlock(cur, channels, ref h, ref w);
                blocks.Add(block);
                channels = block.Out;
                cur = g.ConsumersOf(block.Branch[^1].Output)[0].Output;
            }
        }
        else if (users.Count == 1 && users[0].Op == "Conv")
        {
            // A plain network (the paper's degradation baselines): conv-BN-ReLU units and no residual Add.
            var units = new List<ConvBn>();
            while (g.ConsumersOf(cur) is { Count: 1 } next && next[0].Op == "Conv")
            {
                var cb = ConvWithNorm(next[0], cur, channels, h, w, NormMode.Post);
                units.Add(cb);
                (h, w, channels) = (cb.H, cb.W, cb.OutChannels);
                cur = Relu(cb.Output, cb.Node, "after a convolution of a plain network");
            }

            int per = units[0].Kernel == 1 ? 3 : 2;
            if (units.Count % per != 0)
            {
                throw g.Error($"{units.Count} convolutions after the stem do not group into {(per == 2 ? "basic blocks (pairs of 3×3)" : "bottlenecks (1×1, 3×3, 1×1)")}.", units[^1].Node);
            }

            for (int i = 0; i < units.Count; i += per)
            {
                var convs = units.GetRange(i, per);
                var (kind, stride, planes, width, groups, placement) = ClassifyBranch(convs);
                blocks.Add(new Block(convs[0].Node, kind, convs[0].InChannels, convs[^1].OutChannels, planes, width, groups, stride, placement, convs,
                    ShortcutKind.None, null));
            }
        }
        else
        {
            while (g.ConsumersOf(cur).Any(n => n.Op is "Conv" or "Slice" or "Pad"))
            {
                var block = ParseBlock(cur, channels, ref h, ref w);
                blocks.Add(block);
                channels = block.Out;
                var add = g.ConsumersOf(block.Branch[^1].Output)[0];
                cur = Relu(add.Output, add, "after the residual Add");
            }
        }

        if (blocks.Count == 0)
        {
            var nexts = g.ConsumersOf(cur);
            var next = nexts.Count > 0 ? nexts[0] : null;
            throw next is null
                ? g.Error("no residual block follows the stem: not a ResNet.")
                : g.Error("expected a residual block (Conv branch + shortcut joined by Add) after the stem: not a ResNet.", next);
        }

        if (finalNorm is not null)
        {
            weights["norm.weight"] = (new[] { channels }, finalNorm.Weight);
            weights["norm.bias"] = (new[] { channels }, finalNorm.Bias);
            weights["norm.running_mean"] = (new[] { channels }, finalNorm.Mean);
            weights["norm.running_var"] = (new[] { channels }, finalNorm.Var);
        }

        var table = BuildTable(blocks, stemKind, stem.OutChannels, preAct);
        int outputStride = table.OutputStride >> (replaceStrideWithDilation?.Count(r => r) ?? 0); // each replaced stride halves it
        var (head, numClasses, inputSize) = ParseHead(cur, channels, h, w, outputStride);
        return new Result(table, (int)stem.InChannels, numClasses, head, anyFolded && !anyNorm, inputSize, blocks.Count,
            blocks.Count(b => b.Shortcut == ShortcutKind.Projection), weights, replaceStrideWithDilation);
    }

    private StageTable BuildTable(List<Block> blocks, StemKind stem, long stemWidth, bool preAct)
    {
        var kind = blocks[0].Kind;
        var odd = blocks.FirstOrDefault(b => b.Kind != kind);
        if (odd is not null)
        {
            throw g.Error($"mixes {kind} and {odd.Kind} blocks: a ResNet stacks one block kind.", odd.First);
        }

        long groups = blocks[0].Groups;
        if (blocks.FirstOrDefault(b => b.Groups != groups) is { } g2)
        {
            throw g.Error($"3×3 convolution has {g2.Groups} groups where earlier blocks have {groups}: expected one cardinality.", g2.First);
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
                throw g.Error("mixes zero-padded (option A) and projection shortcuts.", proj.First);
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
            throw g.Error("projection shortcuts follow neither option B (exactly where the shape changes) nor option C (every block).", bad.First);
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
                throw g.Error($"bottleneck inner width {wrong.Width} (groups {groups}) is not ⌊planes × width_per_group / 64⌋ × groups for one width_per_group across the network.", wrong.First);
            }
        }

        // Stage table bookkeeping: names the weights by stage and block, torchvision's keys.
        for (int s = 0; s < stages.Count; s++)
        {
            for (int i = 0; i < stages[s].Count; i++)
            {
                var b = stages[s][i];
                string prefix = $"layer{s + 1}.{i}";
                if (preAct)
                {
                    // bn1 normalises the block's input; the norm after conv k is bn(k + 2); the last conv and the projection have none.
                    PutNorm($"{prefix}.bn1", b.PreNorm!, b.In);
                    for (int k = 0; k < b.Branch.Count; k++)
                    {
                        Put($"{prefix}.conv{k + 1}", b.Branch[k], k < b.Branch.Count - 1 ? $"{prefix}.bn{k + 2}" : null);
                    }
                }
                else
                {
                    for (int k = 0; k < b.Branch.Count; k++)
                    {
                        Put($"{prefix}.conv{k + 1}", b.Branch[k], $"{prefix}.bn{k + 1}");
                    }
                }

                if (b.Projection is not null)
                {
                    Put($"{prefix}.downsample.0", b.Projection, preAct ? null : $"{prefix}.downsample.1");
                }
            }
        }

        // Dilation (torchvision's replace_stride_with_dilation): a stage that gave up its stride of 2 runs its first block at
        // the previous dilation and the rest at twice it; the table keeps stride 2 and the options carry the flag.
        static long Dilation(Block b) => b.Branch.Where(c => c.Kernel == 3).Select(c => c.Dilation).DefaultIfEmpty(1).Max();
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
                              $"should use {previous} and the others one dilation.", st[0].First);
            }

            replaced[s] = rest == 2 * previous && st[0].Stride == 1;
            if (rest != previous && (!replaced[s] || s == 0))
            {
                throw g.Error($"stage {s + 1} changes the dilation from {previous} to {rest}: only a stage after the first that gives up a stride of 2 may double it.", st[0].First);
            }

            strides[s] = replaced[s] ? 2 : (int)st[0].Stride;
            previous = rest;
        }

        replaceStrideWithDilation = replaced.Skip(1).Any(r => r) ? replaced.Skip(1).ToArray() : null;
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

        return table;
    }

    private Block ParseBlock(string x, long channels, ref long? h, ref long? w)
    {
        var cons = g.ConsumersOf(x);
        if (cons.Count != 2 || g.Outputs.Contains(x))
        {
            throw g.Error($"value '{x}' feeds {cons.Count} nodes ({string.Join(", ", cons.Select(n => $"{n.Op} '{n.Name}'"))}): " +
                          "expected a residual block, i.e. exactly a branch and a shortcut.", cons[0]);
        }

        long? inH = h, inW = w;
        var chains = cons.Select(n => FollowChain(n, x, channels, inH, inW)).ToList();
        if (!ReferenceEquals(chains[0].Add, chains[1].Add))
        {
            throw g.Error("the two paths from this block's input meet in different nodes: expected one residual Add.", chains[1].Add);
        }

        var add = chains[0].Add;
        var addInputs = add.Inputs.Where(i => i.Length > 0).ToArray();
        if (addInputs.Length != 2 || !addInputs.Contains(chains[0].End) || !addInputs.Contains(chains[1].End))
        {
            throw g.Error("expected a residual Add of exactly the branch and the shortcut.", add);
        }

        var branchChains = chains.Where(c => c.Convs.Count >= 2).ToList();
        if (branchChains.Count != 1)
        {
            throw g.Error("expected one residual branch of 2 (basic) or 3 (bottleneck) convolutions and one shortcut.", add);
        }

        var branch = branchChains[0];
        var shortcut = chains.First(c => !ReferenceEquals(c, branch));
        var convs = branch.Convs;
        var (kind, stride, planes, width, groups, placement) = ClassifyBranch(convs);
        long outC = convs[^1].OutChannels;
        var projection = CheckShortcut(shortcut, stride, channels, outC, add);
        (h, w) = (convs[^1].H, convs[^1].W);
        return new Block(convs[0].Node, kind, channels, outC, planes, width, groups, stride, placement, convs, shortcut.Kind, projection);
    }

    private (BlockKind Kind, long Stride, long Planes, long Width, long Groups, StridePlacement? Placement) ClassifyBranch(List<ConvBn> convs)
    {
        BlockKind kind;
        long stride, planes, width, groups;
        StridePlacement? placement = null;
        if (convs.Count == 2)
        {
            kind = BlockKind.Basic;
            if (convs.Any(c => c.Kernel != 3 || c.Groups != 1) || convs[1].Stride != 1 || convs[0].OutChannels != convs[1].OutChannels ||
                convs[0].Dilation != convs[1].Dilation)
            {
                throw g.Error("a two-convolution branch must be 3×3 (stride s) then 3×3 (stride 1), same width and dilation, one group: a basic block.", convs[0].Node);
            }

            stride = convs[0].Stride;
            planes = width = convs[1].OutChannels;
            groups = 1;
        }
        else if (convs.Count == 3)
        {
            kind = BlockKind.Bottleneck;
            if (convs[0].Kernel != 1 || convs[1].Kernel != 3 || convs[2].Kernel != 1 || convs[0].Groups != 1 || convs[2].Groups != 1 || convs[2].Stride != 1 ||
                (convs[0].Stride != 1 && convs[1].Stride != 1) || convs[2].OutChannels % Bottleneck.Expansion != 0 ||
                convs[0].OutChannels != convs[1].OutChannels)
            {
                throw g.Error("a three-convolution branch must be 1×1, 3×3 (grouped), 1×1 with the stride on one of the first two and 4× the base width out: a bottleneck.", convs[0].Node);
            }

            stride = Math.Max(convs[0].Stride, convs[1].Stride);
            if (stride != 1)
            {
                placement = convs[0].Stride != 1 ? StridePlacement.V1 : StridePlacement.V1_5;
            }

            planes = convs[2].OutChannels / Bottleneck.Expansion;
            width = convs[1].OutChannels;
            groups = convs[1].Groups;
        }
        else
        {
            throw g.Error($"a residual branch of {convs.Count} convolutions: expected 2 (basic block) or 3 (bottleneck).", convs[0].Node);
        }

        return (kind, stride, planes, width, groups, placement);
    }

    private ConvBn? CheckShortcut(Chain shortcut, long stride, long channels, long outC, OnnxNode add)
    {
        ConvBn? projection = null;
        switch (shortcut.Kind)
        {
            case ShortcutKind.Identity:
                if (stride != 1 || channels != outC)
                {
                    throw g.Error($"identity shortcut around a block that changes the shape ({channels} → {outC} channels, stride {stride}).", add);
                }

                break;
            case ShortcutKind.Projection:
                projection = shortcut.Convs[0];
                if (projection.Kernel != 1 || projection.Stride != stride || projection.OutChannels != outC || projection.Groups != 1)
                {
                    throw g.Error($"projection shortcut must be a 1×1 convolution with stride {stride} to {outC} channels, got {projection.Kernel}×{projection.Kernel} " +
                                  $"stride {projection.Stride} to {projection.OutChannels}.", projection.Node);
                }

                break;
            default:
                if (shortcut.Stride != stride || channels + shortcut.Channels != outC)
                {
                    throw g.Error($"zero-padded shortcut subsamples by {shortcut.Stride} and adds {shortcut.Channels} channels; the branch needs stride {stride} " +
                                  $"and {outC - channels} extra channels.", shortcut.First);
                }

                break;
        }

        return projection;
    }

    /// <summary>A pre-activation unit: x → BN → ReLU → branch, shortcut of x (identity, zero pad) or of the activated x (projection), Add, no ReLU.</summary>
    private Block ParsePreActBlock(string x, long channels, ref long? h, ref long? w)
    {
        var cons = g.ConsumersOf(x);
        var normNode = cons.First(n => n.Op is "BatchNormalization" or "Mul");
        var others = cons.Where(n => !ReferenceEquals(n, normNode)).ToList();
        if (others.Count > 1 || g.Outputs.Contains(x))
        {
            throw g.Error($"value '{x}' feeds {cons.Count} nodes{(g.Outputs.Contains(x) ? " and is a graph output" : "")}: expected a pre-activation block " +
                          "(its BatchNormalization and at most one shortcut).", others.Count > 1 ? others[^1] : normNode);
        }

        var (preNorm, normOut) = ParseNorm(normNode, x, channels);
        string pre = Relu(normOut, normNode, "after the pre-activation BatchNormalization");
        long? inH = h, inW = w;
        var convUsers = g.ConsumersOf(pre);
        if (convUsers.Count is < 1 or > 2 || convUsers.Any(n => n.Op != "Conv") || (convUsers.Count == 2) == (others.Count == 1))
        {
            throw g.Error("expected the branch convolution (and a projection convolution when the raw input is not the shortcut) after the pre-activation ReLU.",
                convUsers.FirstOrDefault(n => n.Op != "Conv") ?? normNode);
        }

        var chains = convUsers.Select(n => FollowChain(n, pre, channels, inH, inW, NormMode.Auto)).ToList();
        if (others.Count == 1)
        {
            chains.Add(FollowChain(others[0], x, channels, inH, inW, NormMode.Auto));
        }

        if (!ReferenceEquals(chains[0].Add, chains[1].Add))
        {
            throw g.Error("the branch and the shortcut meet in different nodes: expected one residual Add.", chains[1].Add);
        }

        var add = chains[0].Add;
        var addInputs = add.Inputs.Where(i => i.Length > 0).ToArray();
        if (addInputs.Length != 2 || !addInputs.Contains(chains[0].End) || !addInputs.Contains(chains[1].End))
        {
            throw g.Error("expected a residual Add of exactly the branch and the shortcut.", add);
        }

        var branch = chains.Where(c => c.Convs.Count >= 2).ToList() is { Count: 1 } one
            ? one[0]
            : throw g.Error("expected one residual branch of 2 (basic) or 3 (bottleneck) convolutions and one shortcut.", add);
        var shortcut = chains.First(c => !ReferenceEquals(c, branch));
        var convs = branch.Convs;
        if (convs[^1].Norm is not null || shortcut.Convs.Any(c => c.Norm is not null))
        {
            throw g.Error("in a pre-activation block the last branch convolution and the projection feed the Add directly (no BatchNormalization).", convs[^1].Node);
        }

        var (kind, stride, planes, width, groups, placement) = ClassifyBranch(convs);
        long outC = convs[^1].OutChannels;
        var projection = CheckShortcut(shortcut, stride, channels, outC, add);
        (h, w) = (convs[^1].H, convs[^1].W);
        return new Block(convs[0].Node, kind, channels, outC, planes, width, groups, stride, placement, convs, shortcut.Kind, projection, preNorm);
    }

    /// <summary>Follows one path from a block's input to the residual Add.</summary>
    private Chain FollowChain(OnnxNode node, string x, long channels, long? h, long? w, NormMode mode = NormMode.Post)
    {
        if (node.Op is "Add" or "Sum")
        {
            return new Chain(new List<ConvBn>(), node, x, ShortcutKind.Identity, 1, 0, node);
        }

        if (node.Op is "Slice" or "Pad")
        {
            return ZeroPadChain(node, x, channels);
        }

        if (node.Op != "Conv")
        {
            throw g.Error(node.Op == "BatchNormalization"
                ? "a block input feeds a BatchNormalization: pre-activation graphs are not supported."
                : $"unexpected {node.Op} on a block input: expected Conv (branch or projection), Add (identity shortcut) or Slice/Pad (zero-padded shortcut).", node);
        }

        var convs = new List<ConvBn>();
        string v = x;
        long c = channels;
        while (true)
        {
            var cb = ConvWithNorm(node, v, c, h, w, mode);
            convs.Add(cb);
            (h, w, c) = (cb.H, cb.W, cb.OutChannels);
            var next = Single(cb.Output, "a ReLU or the residual Add", cb.Node);
            if (next.Op is "Add" or "Sum")
            {
                return new Chain(convs, next, cb.Output, ShortcutKind.Projection, cb.Stride, cb.OutChannels, convs[0].Node);
            }

            if (next.Op != "Relu")
            {
                throw g.Error("expected a ReLU (inside the residual branch) or the residual Add.", next);
            }

            v = next.Output;
            node = Single(v, "the next convolution of the residual branch", next);
            if (node.Op != "Conv")
            {
                throw g.Error("expected the next convolution of the residual branch after its ReLU.", node);
            }
        }
    }

    /// <summary>Option A: x[:, :, ::s, ::s] and zero channels appended (Slice and Pad nodes, in any order), up to the Add.</summary>
    private Chain ZeroPadChain(OnnxNode node, string x, long channels)
    {
        long strideH = 1, strideW = 1, extra = 0;
        string v = x;
        var first = node;
        while (node.Op is "Slice" or "Pad")
        {
            if (node.Inputs[0] != v)
            {
                throw g.Error("expected the shortcut's data as the first input.", node);
            }

            if (node.Op == "Slice")
            {
                long[] starts = node.Ints("starts") ?? IntsInput(node, 1, "starts");
                long[] ends = node.Ints("ends") ?? IntsInput(node, 2, "ends");
                long[] axes = node.Ints("axes") ?? (node.Inputs.Length > 3 && node.Inputs[3].Length > 0 ? IntsInput(node, 3, "axes") : Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray());
                long[] steps = node.Inputs.Length > 4 && node.Inputs[4].Length > 0 ? IntsInput(node, 4, "steps") : Enumerable.Repeat(1L, starts.Length).ToArray();
                for (int i = 0; i < axes.Length; i++)
                {
                    long axis = axes[i] < 0 ? axes[i] + 4 : axes[i];
                    bool whole = starts[i] == 0 && ends[i] >= int.MaxValue;
                    if (axis is not (2 or 3) || !whole || steps[i] < 1)
                    {
                        throw g.Error($"a shortcut Slice must take every s-th row/column from 0 to the end (axes 2, 3), got axis {axes[i]}, start {starts[i]}, " +
                                      $"end {ends[i]}, step {steps[i]}.", node);
                    }

                    if (axis == 2)
                    {
                        strideH *= steps[i];
                    }
                    else
                    {
                        strideW *= steps[i];
                    }
                }
            }
            else
            {
                string mode = node.Str("mode", "constant");
                long[] pads = node.Ints("pads") ?? IntsInput(node, 1, "pads");
                float value = node.Inputs.Length > 2 && node.Inputs[2].Length > 0 ? FloatsInput(node, 2)[0] : node.Float("value", 0f);
                if (mode != "constant" || value != 0f || pads.Length != 8 || pads.Where((p, i) => i != 5).Any(p => p != 0) || pads[5] < 0)
                {
                    throw g.Error($"a shortcut Pad must append zero channels only (pads [0, 0, 0, 0, 0, k, 0, 0], constant 0), got mode {mode}, value {value}, " +
                                  $"pads [{string.Join(", ", pads)}].", node);
                }

                extra += pads[5];
            }

            v = node.Output;
            node = Single(v, "the residual Add", node);
        }

        if (node.Op is not ("Add" or "Sum"))
        {
            throw g.Error("expected the residual Add after the zero-padded shortcut.", node);
        }

        if (strideH != strideW)
        {
            throw g.Error($"the zero-padded shortcut subsamples rows by {strideH} and columns by {strideW}: expected one stride.", first);
        }

        return new Chain(new List<ConvBn>(), node, v, ShortcutKind.ZeroPad, strideH, extra, first);
    }

    private (OnnxHead Head, int NumClasses, int? InputSize) ParseHead(string cur, long channels, long? h, long? w, int outputStride)
    {
        int? size = h is { } hh && w == hh ? (int)hh * outputStride : null;
        if (g.InputDims[2] is { } ih && g.InputDims[3] == ih)
        {
            size = (int)ih;
        }

        var cons = g.ConsumersOf(cur);
        if (cons.Count == 0 && g.Outputs.Contains(cur))
        {
            return (OnnxHead.FeatureMap, 0, size);
        }

        var pool = Single(cur, "global average pooling", null);
        switch (pool.Op)
        {
            case "GlobalAveragePool":
                break;
            case "AveragePool":
            {
                long[] k = pool.Ints("kernel_shape") ?? Array.Empty<long>();
                long[] pads = pool.Ints("pads") ?? new long[4];
                string autoPad = pool.Str("auto_pad", "NOTSET");
                if (k.Length != 2 || k[0] != k[1] || pads.Any(p => p != 0) || autoPad is not ("NOTSET" or "VALID") || pool.Int("ceil_mode", 0) != 0)
                {
                    throw g.Error($"an AveragePool head must be a square kernel over the whole map with no padding, got kernel [{string.Join(", ", k)}], " +
                                  $"pads [{string.Join(", ", pads)}], auto_pad {autoPad}.", pool);
                }

                if (h is not null && (h != k[0] || w != k[1]))
                {
                    throw g.Error($"AveragePool kernel {k[0]}×{k[1]} does not cover the {h}×{w} feature map: expected global average pooling.", pool);
                }

                size ??= (int)k[0] * outputStride; // the only input size at which this pool is global.
                break;
            }

            case "ReduceMean":
            {
                long[] axes = pool.Ints("axes") ?? (pool.Inputs.Length > 1 && pool.Inputs[1].Length > 0 ? IntsInput(pool, 1, "axes") : Array.Empty<long>());
                var norm = axes.Select(a => a < 0 ? a + 4 : a).OrderBy(a => a).ToArray();
                if (!norm.SequenceEqual(new long[] { 2, 3 }))
                {
                    throw g.Error($"ReduceMean over axes [{string.Join(", ", axes)}]: expected [2, 3] (global average pooling).", pool);
                }

                break;
            }

            default:
                throw g.Error("expected global average pooling (GlobalAveragePool, AveragePool over the whole map or ReduceMean) after the last block.", pool);
        }

        string p = pool.Output;
        if (g.Outputs.Contains(p) && g.ConsumersOf(p).Count == 0)
        {
            return (OnnxHead.PooledFeatures, 0, size);
        }

        var next = Single(p, "Flatten/Reshape and the classifier", pool);
        if (next.Op is "Flatten" or "Reshape" or "Squeeze")
        {
            if (next.Op == "Flatten" && next.Int("axis", 1) != 1)
            {
                throw g.Error($"Flatten axis {next.Int("axis", 1)}: expected 1 (N × features).", next);
            }

            if (next.Op == "Reshape" && g.Constant(next.Inputs[1]) is { Ints: { } shape } && !(shape.Length == 2 && (shape[1] == channels || shape[1] == -1)))
            {
                throw g.Error($"Reshape to [{string.Join(", ", shape)}]: expected [N, {channels}].", next);
            }

            p = next.Output;
            if (g.Outputs.Contains(p) && g.ConsumersOf(p).Count == 0)
            {
                return (OnnxHead.PooledFeatures, 0, size);
            }

            next = Single(p, "the classifier (Gemm or MatMul)", next);
        }

        float[] weight, bias;
        long classes;
        string output;
        if (next.Op == "Gemm")
        {
            var b = FloatConst(next, 1, "the classifier weight");
            if (next.Int("transA", 0) != 0 || b.Dims.Length != 2)
            {
                throw g.Error("a Gemm classifier must have transA = 0 and a 2-D constant weight.", next);
            }

            bool transB = next.Int("transB", 0) != 0;
            float alpha = next.Float("alpha", 1f), beta = next.Float("beta", 1f);
            long inF = transB ? b.Dims[1] : b.Dims[0];
            classes = transB ? b.Dims[0] : b.Dims[1];
            if (inF != channels)
            {
                throw g.Error($"Gemm weight {string.Join("×", b.Dims)} takes {inF} features; the backbone gives {channels}.", next);
            }

            weight = Transpose(b.Floats!, b.Dims, !transB, alpha);
            bias = new float[classes];
            if (next.Inputs.Length > 2 && next.Inputs[2].Length > 0)
            {
                var c = FloatConst(next, 2, "the classifier bias");
                if (c.Count != classes)
                {
                    throw g.Error($"Gemm bias has {c.Count} values for {classes} classes (only a per-class bias is a classifier).", next);
                }

                bias = c.Floats!.Select(v => v * beta).ToArray();
            }

            output = next.Output;
        }
        else if (next.Op == "MatMul")
        {
            var b = FloatConst(next, 1, "the classifier weight");
            if (b.Dims.Length != 2 || b.Dims[0] != channels)
            {
                throw g.Error($"MatMul weight [{string.Join(", ", b.Dims)}]: expected [{channels}, classes].", next);
            }

            classes = b.Dims[1];
            weight = Transpose(b.Floats!, b.Dims, true, 1f);
            bias = new float[classes];
            output = next.Output;
            if (!(g.Outputs.Contains(output) && g.ConsumersOf(output).Count == 0))
            {
                var add = Single(output, "the classifier bias Add", next);
                string other = add.Op == "Add" && add.Inputs.Length == 2 ? add.Inputs.First(i => i != output) : "";
                if (add.Op != "Add" || g.Constant(other) is not { Floats: { } bv } bc || bc.Count != classes)
                {
                    throw g.Error($"expected Add of a constant {classes}-value bias after the MatMul classifier.", add);
                }

                bias = bv.ToArray();
                output = add.Output;
            }
        }
        else
        {
            throw g.Error("expected the classifier (Gemm, or MatMul + Add) after pooling and flatten.", next);
        }

        if (!g.Outputs.Contains(output) || g.ConsumersOf(output).Count != 0)
        {
            var afters = g.ConsumersOf(output);
            var after = afters.Count > 0 ? afters[0] : null;
            throw after is null
                ? g.Error($"the classifier's output '{output}' is not the graph output.")
                : g.Error("expected the classifier to be the last node (Softmax and other post-processing are not part of a ResNet).", after);
        }

        weights["fc.weight"] = (new[] { classes, channels }, weight);
        weights["fc.bias"] = (new[] { classes }, bias);
        return (OnnxHead.Classifier, (int)classes, size);
    }

    private static float[] Transpose(float[] data, long[] dims, bool transpose, float scale)
    {
        if (!transpose)
        {
            return scale == 1f ? data.ToArray() : data.Select(v => v * scale).ToArray();
        }

        long rows = dims[0], cols = dims[1];
        var t = new float[data.Length];
        for (long r = 0; r < rows; r++)
        {
            for (long c = 0; c < cols; c++)
            {
                t[c * rows + r] = data[r * cols + c] * scale;
            }
        }

        return t;
    }

    /// <summary>A Conv on <paramref name="input"/> and the BatchNormalization after it, or an exact identity norm plus the conv bias when BN was folded.</summary>
    private ConvBn ConvWithNorm(OnnxNode node, string input, long? inChannels, long? h, long? w, NormMode mode)
    {
        if (node.Op != "Conv")
        {
            throw g.Error("expected a Conv.", node);
        }

        if (node.Inputs[0] != input)
        {
            throw g.Error("expected the feature map as the Conv's data input (input 0).", node);
        }

        var wc = FloatConst(node, 1, "the convolution weight");
        if (wc.Dims.Length != 4 || wc.Dims[2] != wc.Dims[3])
        {
            throw g.Error($"convolution weight [{string.Join(", ", wc.Dims)}]: expected a square 2-D kernel [out, in/groups, k, k].", node);
        }

        long outC = wc.Dims[0], k = wc.Dims[2], groups = node.Int("group", 1);
        long inC = wc.Dims[1] * groups;
        if (inChannels is { } ic && ic != inC)
        {
            throw g.Error($"convolution takes {inC} channels ({wc.Dims[1]} × {groups} groups); its input has {ic}.", node);
        }

        if (node.Ints("kernel_shape") is { } ks && !ks.SequenceEqual(new[] { k, k }))
        {
            throw g.Error($"kernel_shape [{string.Join(", ", ks)}] does not match the weight's {k}×{k}.", node);
        }

        long[] strides = node.Ints("strides") ?? new long[] { 1, 1 };
        if (strides.Length != 2 || strides[0] != strides[1])
        {
            throw g.Error($"strides [{string.Join(", ", strides)}]: expected one stride for both axes.", node);
        }

        long[] dilations = node.Ints("dilations") ?? new long[] { 1, 1 };
        if (dilations.Length != 2 || dilations[0] != dilations[1] || dilations[0] < 1 || (k != 3 && dilations[0] != 1))
        {
            throw g.Error($"dilations [{string.Join(", ", dilations)}]: expected 1, or one dilation for both axes of a 3×3 convolution.", node);
        }

        if (k % 2 == 0)
        {
            throw g.Error($"even kernel {k}×{k}: a ResNet uses 1×1, 3×3 and 7×7 convolutions.", node);
        }

        // A dilated 3×3 spans (k − 1)·d + 1 pixels and is padded by d (torchvision's and ResNetSharp's rule).
        long dilation = dilations[0];
        var (oh, ow) = Window(node, (k - 1) * dilation + 1, strides[0], k / 2 * dilation, h, w);
        float[]? convBias = null;
        if (node.Inputs.Length > 2 && node.Inputs[2].Length > 0)
        {
            var bc = FloatConst(node, 2, "the convolution bias");
            if (bc.Count != outC)
            {
                throw g.Error($"convolution bias has {bc.Count} values for {outC} output channels.", node);
            }

            convBias = bc.Floats;
        }

        string output = node.Output;
        var cons = g.ConsumersOf(output);
        Norm? norm;
        bool bnNext = cons.Count == 1 && cons[0].Op == "BatchNormalization" && !g.Outputs.Contains(output);
        bool reluNext = cons.Count == 1 && cons[0].Op == "Relu" && !g.Outputs.Contains(output);
        if (mode != NormMode.None && bnNext)
        {
            (norm, output) = ParseNorm(cons[0], output, outC, convBias);
        }
        else if (mode == NormMode.Post || (mode == NormMode.Auto && reluNext))
        {
            // BN folded into the conv (or none): the model's BN becomes an exact identity plus the conv's bias.
            norm = new Norm(Enumerable.Repeat(1f, (int)outC).ToArray(), convBias ?? new float[outC], new float[outC],
                Enumerable.Repeat(IdentityVariance, (int)outC).ToArray());
            anyFolded = true;
        }
        else
        {
            // No norm here (pre-activation: the stem, the last branch conv, the projection): a bias would have nowhere to go.
            if (convBias is not null && convBias.Any(b => b != 0f))
            {
                throw g.Error("this convolution has a bias but no BatchNormalization follows it, and a pre-activation ResNet has none there to take it.", node);
            }

            norm = null;
        }

        return new ConvBn(node, inC, outC, k, strides[0], groups, wc.Floats!, wc.Dims, norm, output, oh, ow, dilation);
    }

    /// <summary>
    /// Checks that a Conv/MaxPool's padding equals the symmetric padding <paramref name="pad"/> that ResNetSharp uses at the
    /// shapes the graph declares (explicit asymmetric pads or auto_pad are accepted when every output equals the symmetric
    /// one's), and returns the output size.
    /// </summary>
    private (long? H, long? W) Window(OnnxNode node, long k, long stride, long pad, long? h, long? w)
    {
        if (node.Op == "MaxPool")
        {
            long[] ks = node.Ints("kernel_shape") ?? Array.Empty<long>();
            long[] st = node.Ints("strides") ?? new long[] { 1, 1 };
            if (!ks.SequenceEqual(new[] { k, k }) || !st.SequenceEqual(new[] { stride, stride }) || (node.Ints("dilations") ?? new long[] { 1, 1 }).Any(d => d != 1))
            {
                throw g.Error($"stem MaxPool is kernel [{string.Join(", ", ks)}] stride [{string.Join(", ", st)}]: expected 3×3 stride 2.", node);
            }

            if (node.Proto.Output.Count > 1 && node.Proto.Output[1].Length > 0 && g.ConsumersOf(node.Proto.Output[1]).Count > 0)
            {
                throw g.Error("MaxPool's indices output is used: not a ResNet stem.", node);
            }
        }

        bool ceil = node.Int("ceil_mode", 0) != 0;
        long[] pads = node.Ints("pads") ?? new long[4];
        string auto = node.Str("auto_pad", "NOTSET");
        long? Axis(int axis, long? size)
        {
            long begin, end;
            switch (auto)
            {
                case "NOTSET" or "":
                    if (pads.Length != 4)
                    {
                        throw g.Error($"pads [{string.Join(", ", pads)}]: expected 4 values (begin H, begin W, end H, end W).", node);
                    }

                    (begin, end) = (pads[axis], pads[axis + 2]);
                    break;
                case "VALID":
                    (begin, end) = (0, 0);
                    break;
                case "SAME_UPPER" or "SAME_LOWER":
                    if (size is null)
                    {
                        throw g.Error($"auto_pad {auto} with a dynamic input size: the importer needs the input's height and width to map it.", node);
                    }

                    long total = Math.Max((size.Value + stride - 1) / stride * stride - stride + k - size.Value, 0);
                    begin = auto == "SAME_UPPER" ? total / 2 : total - total / 2;
                    end = total - begin;
                    break;
                default:
                    throw g.Error($"auto_pad '{auto}' is not an ONNX value.", node);
            }

            long Out(long s, long b, long e, bool up) => (up ? (s + b + e - k + stride - 1) / stride : (s + b + e - k) / stride) + 1;
            if (begin != pad)
            {
                throw g.Error($"padding {begin} before axis {axis + 2} (pads [{string.Join(", ", pads)}], auto_pad {auto}): expected {pad} on both sides for a {k}×{k} window " +
                              "(only the padding after the map may differ, where it does not change the output).", node);
            }

            if (end != pad || ceil)
            {
                if (size is null)
                {
                    throw g.Error($"asymmetric padding (pads [{string.Join(", ", pads)}]) with a dynamic input size: it equals the symmetric padding {pad} only at some sizes.", node);
                }

                if (Out(size.Value, begin, end, ceil) != Out(size.Value, pad, pad, false))
                {
                    throw g.Error($"padding (pads [{string.Join(", ", pads)}], auto_pad {auto}, ceil_mode {(ceil ? 1 : 0)}) gives {Out(size.Value, begin, end, ceil)} outputs " +
                                  $"at size {size}; symmetric padding {pad} gives {Out(size.Value, pad, pad, false)}.", node);
                }
            }

            return size is { } sz ? Out(sz, pad, pad, false) : null;
        }

        return (Axis(0, h), Axis(1, w));
    }

    private string Relu(string value, OnnxNode after, string where)
    {
        var next = Single(value, "a ReLU", after);
        if (next.Op != "Relu")
        {
            throw g.Error($"expected a ReLU {where}, found {next.Op}.", next);
        }

        return next.Output;
    }

    private OnnxNode Single(string value, string expected, OnnxNode? producer)
    {
        var cons = g.ConsumersOf(value);
        if (cons.Count == 1 && !g.Outputs.Contains(value))
        {
            return cons[0];
        }

        string message = cons.Count == 0
            ? $"the graph ends at '{value}': expected {expected} next."
            : $"value '{value}' feeds {cons.Count} nodes ({string.Join(", ", cons.Select(n => $"{n.Op} '{n.Name}'"))}){(g.Outputs.Contains(value) ? " and is a graph output" : "")}: expected only {expected}.";
        var at = producer ?? (cons.Count > 0 ? cons[0] : null);
        throw at is null ? g.Error(message) : g.Error(message, at);
    }

    private OnnxConstant FloatConst(OnnxNode node, int input, string what)
    {
        if (node.Inputs.Length <= input || node.Inputs[input].Length == 0)
        {
            throw g.Error($"{what} (input {input}) is missing.", node);
        }

        return g.Constant(node.Inputs[input]) is { Floats: not null } c
            ? c
            : throw g.Error($"{what} (input {input}, '{node.Inputs[input]}') must be a float32 initializer or Constant.", node);
    }

    private float[] FloatsInput(OnnxNode node, int input) => FloatConst(node, input, $"input {input}").Floats!;

    private long[] IntsInput(OnnxNode node, int input, string what) =>
        node.Inputs.Length > input && g.Constant(node.Inputs[input]) is { Ints: { } v }
            ? v
            : throw g.Error($"'{what}' (input {input}) must be a constant int64 tensor.", node);

    private void Put(string conv, ConvBn cb, string? bn)
    {
        weights[$"{conv}.weight"] = (cb.Shape, cb.Weight);
        if (bn is not null)
        {
            PutNorm(bn, cb.Norm ?? throw new InvalidOperationException($"{conv} has no norm to store as {bn}."), cb.OutChannels);
        }
    }

    private void PutNorm(string bn, Norm norm, long channels)
    {
        weights[$"{bn}.weight"] = (new[] { channels }, norm.Weight);
        weights[$"{bn}.bias"] = (new[] { channels }, norm.Bias);
        weights[$"{bn}.running_mean"] = (new[] { channels }, norm.Mean);
        weights[$"{bn}.running_var"] = (new[] { channels }, norm.Var);
    }

    /// <summary>
    /// A BatchNormalization (inference) on <paramref name="input"/>, or a per-channel Mul + Add (a BN an exporter wrote as
    /// scale and shift), as ResNetSharp's BN parameters; a preceding conv bias is moved into the running mean.
    /// </summary>
    private (Norm Norm, string Output) ParseNorm(OnnxNode bn, string input, long channels, float[]? convBias = null)
    {
        if (bn.Inputs[0] != input)
        {
            throw g.Error("expected the feature map as the norm's first input.", bn);
        }

        if (bn.Op == "Mul")
        {
            float[] PerChannel(OnnxNode n, string what) =>
                n.Inputs.Length == 2 && g.Constant(n.Inputs[1]) is { Floats: { } v } c && c.Count == channels &&
                (c.Dims.Length == 3 || (c.Dims.Length == 4 && c.Dims[0] == 1)) && c.Dims[^1] == 1 && c.Dims[^2] == 1
                    ? v
                    : throw g.Error($"expected a per-channel {what} ({channels}×1×1 constant) as the second input.", n);

            float[] scale = PerChannel(bn, "scale");
            var add = Single(bn.Output, "the shift (Add) of a scale-and-shift norm", bn);
            if (add.Op != "Add" || add.Inputs[0] != bn.Output)
            {
                throw g.Error("expected Add(scaled map, per-channel shift) after a per-channel Mul.", add);
            }

            float[] shift = PerChannel(add, "shift");
            anyFolded = true;
            // scale × (conv + b) + shift: the conv bias becomes a running mean of −b.
            float[] shiftMean = convBias?.Select(b => -b).ToArray() ?? new float[channels];
            return (new Norm(scale, shift, shiftMean, Enumerable.Repeat(IdentityVariance, (int)channels).ToArray()), add.Output);
        }

        if (bn.Op != "BatchNormalization" || bn.Inputs.Length < 5)
        {
            throw g.Error("expected BatchNormalization(X, scale, B, mean, var).", bn);
        }

        if (bn.Int("training_mode", 0) != 0 || bn.Proto.Output.Skip(1).Any(o => o.Length > 0 && g.ConsumersOf(o).Count > 0))
        {
            throw g.Error("BatchNormalization in training mode: export the model in eval (inference) mode.", bn);
        }

        if (bn.Attribute("spatial") is { } sp && sp.I != 1)
        {
            throw g.Error("BatchNormalization with spatial = 0 (per-pixel statistics) is not a ResNet's BN.", bn);
        }

        float[] Param(int i, string what)
        {
            var c = FloatConst(bn, i, $"the BN {what}");
            return c.Count == channels ? c.Floats! : throw g.Error($"BN {what} has {c.Count} values for {channels} channels.", bn);
        }

        float eps = bn.Float("epsilon", 1e-5f);
        float[] mean = Param(3, "mean"), var = Param(4, "variance");
        if (convBias is not null)
        {
            mean = mean.Select((m, i) => m - convBias[i]).ToArray(); // BN(conv + b) = BN'(conv) with mean − b.
        }

        if (eps != TorchEps)
        {
            // BN divides by √(var + eps); ResNetSharp's BN has eps 1e-5, so move the difference into the variance.
            var = var.Select(v => (float)(v + (double)eps - TorchEps)).ToArray();
        }

        anyNorm = true;
        return (new Norm(Param(1, "scale"), Param(2, "bias"), mean, var), bn.Output);
    }
}
