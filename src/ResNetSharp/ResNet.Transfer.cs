using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResNetSharp;

/// <summary>
/// One group of a model's parameters for an optimizer: a part of the network (stem, a stage or the classifier),
/// optionally split into the parameters that take weight decay and those that should not (BatchNorm's weight and
/// bias and every bias, as timm's <c>param_groups_weight_decay</c> does).
/// </summary>
/// <param name="Name"><c>stem</c>, <c>layer1</c> … <c>layerN</c> or <c>fc</c>; with a split, the no-decay half adds <c>.no_decay</c>.</param>
/// <param name="Part">Freezing index: 1 = stem, 2 = layer1 (conv2_x), …, N + 1 = the last stage, N + 2 = the classifier.</param>
/// <param name="NoWeightDecay">True for the BatchNorm / bias half of a split.</param>
/// <param name="ParameterNames">State-dict names of the parameters, in model order.</param>
/// <param name="Parameters">The parameters themselves (owned by the model).</param>
public sealed record ParameterGroup(string Name, int Part, bool NoWeightDecay, IReadOnlyList<string> ParameterNames, IReadOnlyList<Parameter> Parameters);

/// <summary>Transfer learning: a new classifier, freezing by stage after construction, per-stage parameter groups, other input channels.</summary>
public sealed partial class ResNet
{
    private int frozenParts;

    /// <summary>
    /// How many leading parts <see cref="FreezeStages"/> has frozen: 0 none, 1 the stem, 2 the stem and conv2_x
    /// (layer1), …, <see cref="Table"/>.StageCount + 1 everything but the classifier.
    /// </summary>
    public int FrozenParts => frozenParts;

    /// <summary>
    /// Replaces the classifier with a new <c>fc</c> of <paramref name="numClasses"/> outputs, initialised as PyTorch
    /// initialises a fresh <c>nn.Linear</c> (uniform in ±1/√in_features for weight and bias, what torchvision's ResNet
    /// uses), on the old classifier's device and dtype, trainable. <see cref="NumClasses"/> and <see cref="Metadata"/>
    /// (class count and names) follow. A headless network gets its first classifier this way (registered as <c>fc</c>,
    /// so its state dict is that of the same network built with a classifier).
    /// </summary>
    /// <param name="numClasses">Outputs of the new classifier (≥ 1).</param>
    /// <param name="classNames">One name per class, or null (no names).</param>
    /// <exception cref="ArgumentException">The count is below 1 or the names do not match it (the model is unchanged).</exception>
    public void ResetClassifier(int numClasses, IReadOnlyList<string>? classNames = null)
    {
        if (numClasses < 1)
        {
            throw new ArgumentException($"{ModelName}: a classifier needs at least 1 class, got {numClasses}.", nameof(numClasses));
        }

        if (classNames is not null && classNames.Count != numClasses)
        {
            throw new ArgumentException($"{ModelName}: {classNames.Count} class names for {numClasses} classes.", nameof(classNames));
        }

        var newMetadata = Metadata with { NumClasses = numClasses, ClassNames = classNames?.ToArray() };
        var like = fc?.weight ?? firstConv.weight!;
        if (fc is null)
        {
            fc = nn.Linear(FeatureChannels, numClasses, device: like.device, dtype: like.dtype);
            register_module("fc", fc);
            NumClasses = numClasses;
            Options = Options with { NumClasses = numClasses };
            metadata = newMetadata;
            return;
        }

        using var fresh = nn.Linear(FeatureChannels, numClasses, device: like.device, dtype: like.dtype);
        var weight = new Parameter(fresh.weight!.detach().clone());
        var bias = new Parameter(fresh.bias!.detach().clone());

        // The same fc module keeps its place (and its key order in the state dict); only its tensors change.
        fc.weight = weight;
        fc.bias = bias;
        fc.out_features = numClasses;
        NumClasses = numClasses;
        Options = Options with { NumClasses = numClasses };
        metadata = newMetadata;
    }

    /// <summary>
    /// Freezes the first <paramref name="parts"/> parts of the network and unfreezes the rest (the classifier always stays
    /// trainable), with <see cref="ResNetOptions.FrozenStages"/>'s numbering: 0 nothing, 1 the stem (<c>conv1</c>,
    /// <c>bn1</c>), 2 the stem and conv2_x (<c>layer1</c>), …, StageCount + 1 every stage. Frozen parameters stop
    /// requiring gradients, and the frozen parts' BatchNorm layers stay in eval mode even when the model is put in
    /// training mode: they normalise with their running statistics and never update them — numerically what a
    /// <see cref="FrozenBatchNorm2d"/> computes, while the modules (and so the state dict) stay as they are.
    /// </summary>
    /// <param name="parts">0 … StageCount + 1.</param>
    /// <exception cref="ArgumentOutOfRangeException">Outside 0 … StageCount + 1.</exception>
    /// <remarks>Norms built frozen at construction (<see cref="ResNetOptions.FrozenBatchNorm"/>, <see cref="ResNetOptions.FrozenStages"/>) are <see cref="FrozenBatchNorm2d"/>s and stay fixed whatever is called here.</remarks>
    public void FreezeStages(int parts)
    {
        if (parts < 0 || parts > stages.Count + 1)
        {
            throw new ArgumentOutOfRangeException(nameof(parts), parts,
                $"{ModelName}: FreezeStages takes 0 … {stages.Count + 1} (0 = nothing, 1 = stem, 2 = stem + conv2_x, …, {stages.Count + 1} = every stage).");
        }

        frozenParts = parts;
        foreach (var (name, p) in named_parameters())
        {
            int part = PartOf(name);
            if (part <= stages.Count + 1)
            {
                p.requires_grad = part > parts;
            }
        }

        ApplyFrozenNormModes();
    }

    /// <summary>Undoes <see cref="FreezeStages"/>: every parameter trainable, every BatchNorm following the model's mode again.</summary>
    public void Unfreeze() => FreezeStages(0);

    /// <summary>Sets training or eval mode; BatchNorm layers of parts frozen by <see cref="FreezeStages"/> stay in eval mode.</summary>
    /// <param name="train">True for training mode.</param>
    public override void train(bool train = true)
    {
        base.train(train);
        ApplyFrozenNormModes();
    }

    /// <summary>
    /// The model's parameters grouped by part, for per-stage learning rates (discriminative fine-tuning) with
    /// TorchSharp's optimizer parameter groups, e.g.
    /// <c>optim.SGD(model.ParameterGroups().Select(g => new SGD.ParamGroup(g.Parameters, lr: g.Name == "fc" ? 0.1 : 0.01, momentum: 0.9, dampening: 0, weight_decay: 1e-4, nesterov: false, maximize: false)), 0.01)</c>.
    /// </summary>
    /// <param name="splitNoWeightDecay">Also split each part into the parameters that take weight decay (conv and fc
    /// weights) and those that should not (BatchNorm weights and biases, every bias: parameters with at most one
    /// dimension), the latter named <c>PART.no_decay</c>. Default false.</param>
    /// <param name="trainableOnly">Leave out parameters that do not require gradients (frozen parts). Default true.</param>
    /// <returns>Non-empty groups in model order: <c>stem</c>, <c>layer1</c> … <c>layerN</c>, <c>fc</c>.</returns>
    public IReadOnlyList<ParameterGroup> ParameterGroups(bool splitNoWeightDecay = false, bool trainableOnly = true)
    {
        var groups = new List<ParameterGroup>();
        var all = named_parameters().Where(np => !trainableOnly || np.parameter.requires_grad).ToList();
        for (int part = 1; part <= stages.Count + 2; part++)
        {
            string name = part == 1 ? "stem" : part == stages.Count + 2 ? "fc" : $"layer{part - 1}";
            var members = all.Where(np => PartOf(np.name) == part).ToList();
            foreach (bool noDecay in splitNoWeightDecay ? new[] { false, true } : new[] { false })
            {
                var chosen = splitNoWeightDecay ? members.Where(np => (np.parameter.dim() <= 1) == noDecay).ToList() : members;
                if (chosen.Count > 0)
                {
                    groups.Add(new ParameterGroup(noDecay ? name + ".no_decay" : name, part, noDecay,
                        chosen.Select(np => np.name).ToArray(), chosen.Select(np => np.parameter).ToArray()));
                }
            }
        }

        return groups;
    }

    /// <summary>
    /// Adapts the stem convolution to <paramref name="channels"/> input channels from its RGB kernels, as timm's
    /// <c>adapt_input_conv</c> does: for 1 channel the kernels are summed over R, G and B (a grey image then gives the
    /// output the RGB model gives for that grey image replicated to RGB); for more than 3 the RGB kernels are repeated
    /// cyclically and scaled by 3 / <paramref name="channels"/> (so an input whose channels repeat R, G, B keeps the
    /// activation scale); 2 channels take R and G scaled by 3/2. <see cref="Options"/> and <see cref="Metadata"/>
    /// follow (mean/std: the RGB average for 1 channel, repeated cyclically otherwise).
    /// </summary>
    /// <param name="channels">New input channel count (≥ 1).</param>
    /// <exception cref="ArgumentException">Fewer than 1 channel, or the stem does not take 3 channels now (the model is unchanged).</exception>
    /// <exception cref="NotSupportedException">The model has a deep stem (ResNet-D), whose first convolution sits inside <c>conv1</c>.</exception>
    public void AdaptInputChannels(int channels)
    {
        int current = Options.InChannels;
        if (channels < 1)
        {
            throw new ArgumentException($"{ModelName}: input channels must be ≥ 1, got {channels}.", nameof(channels));
        }

        if (channels == current)
        {
            return;
        }

        if (Table.Stem == StemKind.Deep)
        {
            throw new NotSupportedException($"{ModelName}: AdaptInputChannels adapts a single stem convolution; this model has a deep stem (conv1.0 … conv1.6).");
        }

        if (current != 3)
        {
            throw new ArgumentException($"{ModelName}: AdaptInputChannels derives kernels from RGB (3-channel) ones; this stem takes {current} channels.", nameof(channels));
        }

        var old = Metadata;
        if (old.ChannelOrder != ChannelOrder.Rgb || old.MeanImage is not null)
        {
            throw new ArgumentException(
                $"{ModelName}: AdaptInputChannels derives {channels}-channel preprocessing from a per-channel RGB mean and std; this model's " +
                $"metadata records {(old.MeanImage is not null ? "a per-pixel mean image" : $"{old.ChannelOrder} channel order")}, which has no such derivation.",
                nameof(channels));
        }

        double[] Cycle(IReadOnlyList<double> rgb) => channels == 1
            ? new[] { rgb.Average() }
            : Enumerable.Range(0, channels).Select(i => rgb[i % 3]).ToArray();
        var newMetadata = old with { InChannels = channels, Mean = Cycle(old.Mean), Std = Cycle(old.Std) };

        Tensor adapted;
        using (torch.no_grad())
        using (var scope = torch.NewDisposeScope())
        {
            var w = firstConv.weight!.detach();
            Tensor result = channels == 1
                ? w.sum(1, keepdim: true)
                : w.repeat(1, (channels + 2) / 3, 1, 1)[.., ..channels] * (3.0 / channels);
            adapted = result.contiguous().clone().MoveToOuterDisposeScope();
        }

        bool trainable = firstConv.weight!.requires_grad;
        var stride = firstConv.stride;
        var padding = firstConv.padding ?? new long[] { 0, 0 };
        var kernel = firstConv.kernel_size;
        var replacement = nn.Conv2d(channels, firstConv.out_channels, kernel_size: (kernel[0], kernel[1]), stride: (stride[0], stride[1]),
            padding: (padding[0], padding[1]), bias: false, device: adapted.device, dtype: adapted.dtype);
        using (torch.no_grad())
        {
            replacement.weight!.copy_(adapted);
        }

        replacement.weight!.requires_grad = trainable;
        adapted.Dispose();
        ReplaceChild("conv1", replacement);
        var previous = firstConv;
        conv1 = firstConv = replacement;
        previous.Dispose();
        Options = Options with { InChannels = channels };
        metadata = newMetadata;
    }

    /// <summary>Swaps a registered child module, keeping the children's order (and so the state dict's key order).</summary>
    private void ReplaceChild(string name, nn.Module module)
    {
        var children = named_children().ToList();
        foreach (var (n, _) in children)
        {
            register_module(n, null!);
        }

        foreach (var (n, m) in children)
        {
            register_module(n, n == name ? module : m);
        }
    }

    /// <summary>Freezing part of a state-dict name: 1 stem, 2 … N + 1 the stages (a pre-activation net's final norm belongs to the last), N + 2 the classifier.</summary>
    private int PartOf(string name)
    {
        if (name.StartsWith("conv1.", StringComparison.Ordinal) || name.StartsWith("bn1.", StringComparison.Ordinal))
        {
            return 1;
        }

        if (name.StartsWith("norm.", StringComparison.Ordinal))
        {
            return stages.Count + 1;
        }

        if (name.StartsWith("layer", StringComparison.Ordinal))
        {
            int dot = name.IndexOf('.', StringComparison.Ordinal);
            return int.Parse(name.AsSpan(5, dot - 5), System.Globalization.CultureInfo.InvariantCulture) + 1;
        }

        return stages.Count + 2;
    }

    /// <summary>BatchNorm layers of frozen parts in eval mode, all others following the model's mode.</summary>
    private void ApplyFrozenNormModes()
    {
        foreach (var (name, module) in named_modules())
        {
            if (module is BatchNorm2d bn && name.Length > 0)
            {
                bool frozen = PartOf(name + ".") <= frozenParts;
                bn.train(training && !frozen);
            }
        }
    }
}
