using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResNetSharp.Inference;

/// <summary>
/// Lowers a built <see cref="ResNet"/> to a <see cref="LoweredGraph"/>: the stem (conv, its BN and ReLU, the max pool),
/// every block (each one lowers itself: <see cref="ResidualBlock.Lower"/>), the pre-activation network's final BN and
/// ReLU, global average pooling and the classifier. Stochastic depth is an identity in eval mode and is dropped;
/// frozen and ordinary BatchNorm lower alike. With <c>foldBatchNorm</c> each BN is folded into the conv before it
/// (computed in float64, cast once to the model's dtype), or, where no conv precedes it directly, becomes an
/// <see cref="AffineOp"/>; without it every BN stays a <see cref="BatchNormOp"/>.
/// </summary>
internal static class Lowering
{
    /// <summary>Lowers <paramref name="model"/>; the graph's tensors are copies (later changes to the model do not reach it).</summary>
    /// <exception cref="ArgumentException">A BatchNorm without running statistics, or a convolution that is not zero-padded.</exception>
    public static LoweredGraph Lower(ResNet model, bool foldBatchNorm = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        var b = new LoweringBuilder(foldBatchNorm);
        try
        {
            using var noGrad = torch.no_grad();
            bool preAct = model.Table.PreActivation;
            var features = new List<int>();

            // The stem: each conv with its BN and ReLU (conv1 – bn1 – ReLU, or a deep stem's three), or the bare conv of a
            // pre-activation network (its first block's bn1 follows).
            int y = LoweredGraph.Input;
            foreach (var layer in model.StemLayers)
            {
                y = b.Conv(layer.ConvName, y, layer.Conv, layer.Norm, relu: !preAct, normName: layer.NormName);
            }

            features.Add(y);
            if (model.StemPool is { } pool)
            {
                y = b.MaxPool("maxpool", y, model.Table.StemChannels, pool);
            }

            foreach (var stage in model.Stages)
            {
                for (int i = 0; i < stage.Blocks.Count; i++)
                {
                    string name = $"{stage.Name}.{i}";
                    int first = b.OpCount, input = y;
                    y = stage.Blocks[i].Lower(b, name, y);
                    b.AddBlock(new LoweredBlock(name, stage.Index, i, first, b.OpCount, input, y));
                }

                features.Add(y);
            }

            if (model.FinalNorm is { } norm)
            {
                // Pre-activation: the last block's sum is normalised once more, and that is the last feature map.
                y = b.Norm("norm", y, norm, relu: true);
                features[^1] = y;
            }

            int pooled = b.GlobalAveragePool("avgpool", y, model.FeatureChannels);
            // A headless network's output is the pooled features: there is no fc to lower.
            int logits = model.Classifier is { } fc ? b.Linear("fc", pooled, fc) : pooled;
            return b.Build(model.ModelName, model.Options.InChannels, model.MinInputSize, features, pooled, logits);
        }
        catch
        {
            b.DisposeTensors();
            throw;
        }
    }
}

/// <summary>Appends ops to a graph being lowered; used by <see cref="Lowering"/> and by the blocks.</summary>
internal sealed class LoweringBuilder(bool fold)
{
    private readonly List<LoweredOp> ops = new();
    private readonly List<LoweredBlock> blocks = new();
    private readonly List<Tensor> tensors = new();
    private int nextValue = LoweredGraph.Input + 1;

    /// <summary>True when BN is folded.</summary>
    public bool Fold { get; } = fold;

    public int OpCount => ops.Count;

    /// <summary>
    /// A convolution followed by <paramref name="norm"/> (if any) and a ReLU (if <paramref name="relu"/>): one folded
    /// <see cref="ConvOp"/>, or a conv and a <see cref="BatchNormOp"/> when BN is kept.
    /// </summary>
    public int Conv(string name, int input, Conv2d conv, nn.Module<Tensor, Tensor>? norm, bool relu, string? normName = null)
    {
        if (conv.padding_mode != PaddingModes.Zeros)
        {
            throw new ArgumentException($"{name}: only zero-padded convolutions can be lowered, got {conv.padding_mode}.");
        }

        long[] padding = (conv.padding ?? throw new ArgumentException($"{name}: convolutions with symbolic padding ('same'/'valid') are not supported.")).ToArray();
        var dtype = conv.weight!.dtype;
        Tensor weight;
        Tensor? bias;
        using (var scope = torch.NewDisposeScope())
        {
            if (Fold && norm is not null)
            {
                // Fold in float64 so that the folded weights carry no more rounding than one float32 cast.
                var (scale, shift) = ScaleShift(name, norm);
                var w = conv.weight.detach().to(ScalarType.Float64) * scale.reshape(-1, 1, 1, 1);
                var bb = conv.bias is null ? shift : shift + (conv.bias.detach().to(ScalarType.Float64) * scale);
                weight = w.to(dtype).contiguous().DetachFromDisposeScope();
                bias = bb.to(dtype).contiguous().DetachFromDisposeScope();
            }
            else
            {
                weight = conv.weight.detach().clone().contiguous().DetachFromDisposeScope();
                bias = conv.bias?.detach().clone().DetachFromDisposeScope()
                    ?? (Fold ? torch.zeros(weight.shape[0], dtype: dtype, device: weight.device).DetachFromDisposeScope() : null);
            }
        }

        Keep(weight);
        if (bias is not null)
        {
            Keep(bias);
        }

        bool convRelu = relu && (Fold || norm is null);
        int y = Add(new ConvOp(name, nextValue, input, weight, bias, conv.stride.ToArray(), padding, conv.dilation.ToArray(), conv.groups, convRelu));
        return Fold || norm is null ? y : Norm(normName ?? NormName(name), y, norm, relu);
    }

    /// <summary>A BatchNorm that no conv precedes directly: an <see cref="AffineOp"/> (folded) or a <see cref="BatchNormOp"/>.</summary>
    public int Norm(string name, int input, nn.Module<Tensor, Tensor> norm, bool relu)
    {
        if (Fold)
        {
            Tensor scale, shift;
            using (var scope = torch.NewDisposeScope())
            {
                var (s, t) = ScaleShift(name, norm);
                var dtype = Parts(name, norm).Mean.dtype;
                scale = Keep(s.to(dtype).contiguous().DetachFromDisposeScope());
                shift = Keep(t.to(dtype).contiguous().DetachFromDisposeScope());
            }

            return Add(new AffineOp(name, nextValue, input, scale, shift, relu));
        }

        using var parts = torch.NewDisposeScope();
        var p = Parts(name, norm);
        return Add(new BatchNormOp(name, nextValue, input, Copy(p.Gamma), Copy(p.Beta), Copy(p.Mean), Copy(p.Variance), p.Eps, relu));
    }

    /// <summary>The residual add (branch + shortcut), then ReLU when asked.</summary>
    public int Add(string name, int branch, int shortcut, long channels, bool relu) =>
        Add(new AddOp(name, nextValue, branch, shortcut, channels, relu));

    /// <summary>The option-A shortcut.</summary>
    public int ZeroPad(string name, int input, ZeroPadShortcut pad) =>
        Add(new ZeroPadShortcutOp(name, nextValue, input, pad.Stride, pad.InChannels, pad.OutChannels - pad.InChannels));

    public int MaxPool(string name, int input, long channels, MaxPool2d pool)
    {
        if (pool.ceil_mode || (pool.dilation is { } d && d.Any(x => x != 1)))
        {
            throw new ArgumentException($"{name}: only floor-mode, undilated max pooling can be lowered.");
        }

        return Add(new MaxPoolOp(name, nextValue, input, channels, Pair(pool.kernel_size), Pair(pool.stride ?? pool.kernel_size), Pair(pool.padding ?? new long[] { 0 })));
    }

    /// <summary>An unpadded average pool (ResNet-D's shortcut); padding, if any, must not be counted.</summary>
    public int AvgPool(string name, int input, long channels, AvgPool2d pool)
    {
        if ((pool.padding is { } p && p.Any(x => x != 0)) || pool.divisor_override is not null)
        {
            throw new ArgumentException($"{name}: only unpadded average pooling without a divisor override can be lowered.");
        }

        return Add(new AvgPoolOp(name, nextValue, input, channels, Pair(pool.kernel_size), Pair(pool.stride ?? pool.kernel_size), pool.ceil_mode));
    }

    /// <summary>Squeeze-and-excitation from its two 1×1 convolutions (copied; they keep their biases).</summary>
    public int SqueezeExcite(string name, int input, Conv2d fc1, Conv2d fc2)
    {
        if (fc1.bias is null || fc2.bias is null)
        {
            throw new ArgumentException($"{name}: squeeze-and-excitation is lowered with biased fc1 and fc2 convolutions.");
        }

        return Add(new SqueezeExciteOp(name, nextValue, input, Copy(fc1.weight!), Copy(fc1.bias), Copy(fc2.weight!), Copy(fc2.bias)));
    }

    public int GlobalAveragePool(string name, int input, long channels) => Add(new GlobalAveragePoolOp(name, nextValue, input, channels));

    public int Linear(string name, int input, Linear fc)
    {
        using var scope = torch.NewDisposeScope();
        var weight = Keep(fc.weight!.detach().clone().DetachFromDisposeScope());
        var bias = Keep((fc.bias is null
            ? torch.zeros(weight.shape[0], dtype: weight.dtype, device: weight.device)
            : fc.bias.detach().clone()).DetachFromDisposeScope());
        return Add(new LinearOp(name, nextValue, input, weight, bias));
    }

    public void AddBlock(LoweredBlock block) => blocks.Add(block);

    public LoweredGraph Build(string modelName, long inChannels, int minInputSize, IReadOnlyList<int> featureMaps, int pooled, int logits) =>
        new(modelName, inChannels, minInputSize, Fold, ops.ToArray(), blocks.ToArray(), featureMaps.ToArray(), pooled, logits, tensors);

    public void DisposeTensors()
    {
        foreach (var t in tensors)
        {
            t.Dispose();
        }

        tensors.Clear();
    }

    private int Add(LoweredOp op)
    {
        ops.Add(op);
        return nextValue++;
    }

    private Tensor Keep(Tensor t)
    {
        tensors.Add(t);
        return t;
    }

    private Tensor Copy(Tensor t)
    {
        using var scope = torch.NewDisposeScope();
        return Keep(t.detach().clone().contiguous().DetachFromDisposeScope());
    }

    private static long[] Pair(long[] v) => v.Length == 1 ? new[] { v[0], v[0] } : v.ToArray();

    /// <summary><c>layer1.0.conv1</c> → <c>layer1.0.bn1</c>, <c>conv1</c> → <c>bn1</c>, <c>layer1.0.downsample.0</c> → <c>…downsample.1</c>.</summary>
    private static string NormName(string convName)
    {
        int dot = convName.LastIndexOf('.') + 1;
        string last = convName[dot..];
        return convName[..dot] + (last.StartsWith("conv", StringComparison.Ordinal) ? "bn" + last[4..] : last == "0" ? "1" : last + "_bn");
    }

    /// <summary>The eval-mode BN as y = x·scale + shift, in float64.</summary>
    private static (Tensor Scale, Tensor Shift) ScaleShift(string name, nn.Module<Tensor, Tensor> norm)
    {
        var p = Parts(name, norm);
        var gamma = p.Gamma.detach().to(ScalarType.Float64);
        var beta = p.Beta.detach().to(ScalarType.Float64);
        var scale = gamma / (p.Variance.detach().to(ScalarType.Float64) + p.Eps).sqrt();
        var shift = beta - (p.Mean.detach().to(ScalarType.Float64) * scale);
        return (scale, shift);
    }

    /// <summary>γ, β, μ, σ² and ε of a BatchNorm2d or FrozenBatchNorm2d (both are γ (x − μ) / √(σ² + ε) + β in eval mode).</summary>
    private static (Tensor Gamma, Tensor Beta, Tensor Mean, Tensor Variance, double Eps) Parts(string name, nn.Module<Tensor, Tensor> norm)
    {
        var (weight, bias, mean, variance, eps) = norm switch
        {
            BatchNorm2d bn => (bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.eps),
            FrozenBatchNorm2d frozen => ((Tensor?)frozen.Weight, (Tensor?)frozen.Bias, frozen.RunningMean, frozen.RunningVar, frozen.Eps),
            _ => throw new ArgumentException($"{name}: expected a BatchNorm2d or FrozenBatchNorm2d, got {norm.GetType().Name}."),
        };
        if (mean is null || variance is null)
        {
            throw new ArgumentException($"{name}: every BatchNorm must track running statistics to be lowered to eval-mode ops (and folded).");
        }

        return (weight ?? torch.ones_like(variance), bias ?? torch.zeros_like(mean), mean, variance, eps);
    }
}
