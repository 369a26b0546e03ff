using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResNetSharp.Introspection;

/// <summary>
/// Measures a built network: layers and parameters from its modules, multiply-adds and output shapes from a real
/// forward pass (one image, eval mode, no autograd) with hooks on every convolution and the classifier.
/// </summary>
internal static class ModelInspector
{
    /// <summary>Summarises <paramref name="model"/> for a square input of <paramref name="inputSize"/> pixels.</summary>
    /// <param name="model">The network.</param>
    /// <param name="inputSize">Input height and width. Default 224 (the paper's ImageNet crop).</param>
    /// <exception cref="ArgumentException">The input size is smaller than the network's output stride.</exception>
    public static ModelSummary Summarize(ResNet model, int inputSize = 224)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (inputSize < model.MinInputSize)
        {
            throw new ArgumentException($"Input size {inputSize} is too small for {model.ModelName}: expected at least {model.MinInputSize}.", nameof(inputSize));
        }

        var named = model.named_modules().ToList();
        string PartOf(string moduleName) => moduleName switch
        {
            "fc" or "norm" => "head",
            _ when moduleName.StartsWith("layer", StringComparison.Ordinal) => moduleName.Split('.')[0],
            _ => "stem",
        };

        var macs = new Dictionary<string, long>();
        var shapes = new Dictionary<string, long[]>();
        var removers = new List<Action>();
        foreach (var (name, module) in named)
        {
            string part = PartOf(name);
            switch (module)
            {
                case Conv2d conv:
                    removers.Add(Hook(conv, (input, output) =>
                        Add(macs, part, output.numel() / output.shape[0] * (conv.weight.numel() / conv.out_channels))));
                    break;
                case Linear linear:
                    removers.Add(Hook(linear, (input, output) =>
                        Add(macs, part, output.numel() / output.shape[0] * linear.in_features)));
                    break;
            }
        }

        foreach (var stage in model.Stages)
        {
            string stageName = stage.Name;
            removers.Add(Hook(stage.Blocks[^1], (input, output) => shapes[stageName] = output.shape.Skip(1).ToArray()));
        }

        removers.Add(Hook(model.Stages[0].Blocks[0], (input, output) => shapes["stem"] = input.shape.Skip(1).ToArray()));

        bool wasTraining = model.training;
        try
        {
            model.eval();
            using var noGrad = torch.no_grad();
            using var scope = torch.NewDisposeScope();
            var weight = model.Stem.weight;
            using var x = torch.zeros(new long[] { 1, model.Options.InChannels, inputSize, inputSize }, dtype: weight.dtype, device: weight.device);
            using var logits = model.call(x);
            shapes["head"] = logits.shape.Skip(1).ToArray();
        }
        finally
        {
            removers.ForEach(r => r());
            model.train(wasTraining);
        }

        var parts = new List<PartSummary>
        {
            Part(model, named, "stem", "conv1", 0, shapes, macs, 0),
        };
        foreach (var stage in model.Stages)
        {
            parts.Add(Part(model, named, stage.Name, stage.PaperName, stage.Blocks.Count, shapes, macs, stage.Blocks.Count(b => b.HasProjection)));
        }

        parts.Add(Part(model, named, "head", "fc", 0, shapes, macs, 0));

        var parameters = model.parameters().ToList();
        return new ModelSummary
        {
            Name = model.ModelName,
            Architecture = model.Table.ToString(),
            InputSize = inputSize,
            InputChannels = model.Options.InChannels,
            Parts = parts,
            Parameters = parameters.Sum(p => p.numel()),
            TrainableParameters = parameters.Where(p => p.requires_grad).Sum(p => p.numel()),
        };
    }

    /// <summary>
    /// Weighted layers on the main path of any module: convolutions and fully-connected layers, not counting 1×1
    /// projection shortcuts (modules under a <c>downsample</c>), squeeze-and-excitation gates, BN, ReLU or pooling — the
    /// paper's way of counting.
    /// </summary>
    public static int CountWeightedLayers(nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        return module.named_modules().Count(m => m.Item2 is Conv2d or Linear && !IsShortcut(m.Item1) && !IsAttention(m.Item1));
    }

    /// <summary>Number of convolution weights of a block's residual branch (69,632 for a 256-d bottleneck with 64-d inner width).</summary>
    /// <param name="block">The block.</param>
    /// <param name="includeShortcut">Also count a projection shortcut's weights. Default false.</param>
    public static long ConvWeightCount(ResidualBlock block, bool includeShortcut = false)
    {
        ArgumentNullException.ThrowIfNull(block);
        return block.named_modules()
            .Where(m => m.Item2 is Conv2d && (includeShortcut || !IsShortcut(m.Item1)))
            .Sum(m => ((Conv2d)m.Item2).weight.numel());
    }

    /// <summary>Number of parameters of any module (all, or only trainable ones).</summary>
    public static long CountParameters(nn.Module module, bool trainableOnly = false)
    {
        ArgumentNullException.ThrowIfNull(module);
        return module.parameters().Where(p => !trainableOnly || p.requires_grad).Sum(p => p.numel());
    }

    /// <summary>Squeeze-and-excitation's 1×1 convs gate a block's channels; like projections, the paper's depth leaves them out (SE-ResNet-50 is 50 layers).</summary>
    private static bool IsAttention(string moduleName) =>
        moduleName.StartsWith("se.", StringComparison.Ordinal) || moduleName.Contains(".se.", StringComparison.Ordinal);

    private static bool IsShortcut(string moduleName) =>
        moduleName == "downsample" || moduleName.StartsWith("downsample.", StringComparison.Ordinal) ||
        moduleName.Contains(".downsample", StringComparison.Ordinal);

    private static PartSummary Part(ResNet model, List<(string, nn.Module)> named, string name, string paperName, int blocks,
        Dictionary<string, long[]> shapes, Dictionary<string, long> macs, int projections)
    {
        bool InPart(string moduleName) => name switch
        {
            "stem" => moduleName is "conv1" or "bn1" or "maxpool" || moduleName.StartsWith("conv1.", StringComparison.Ordinal),
            "head" => moduleName is "fc" or "norm",
            _ => moduleName == name || moduleName.StartsWith(name + ".", StringComparison.Ordinal),
        };

        var modules = named.Where(m => InPart(m.Item1)).ToList();
        int layers = modules.Count(m => m.Item2 is Conv2d or Linear && !IsShortcut(m.Item1) && !IsAttention(m.Item1));

        // Parameters owned directly by the part's top-level modules (children carry the rest, counted once).
        var top = modules.Where(m => name is "stem" or "head" ? !m.Item1.Contains('.', StringComparison.Ordinal) : m.Item1 == name).Select(m => m.Item2);
        long parameters = top.Sum(m => m.parameters().Sum(p => p.numel()));
        return new PartSummary(name, paperName, blocks, shapes.TryGetValue(name, out var s) ? s : Array.Empty<long>(), layers, parameters,
            macs.TryGetValue(name, out long m) ? m : 0, projections);
    }

    private static void Add(Dictionary<string, long> macs, string part, long value) =>
        macs[part] = (macs.TryGetValue(part, out long v) ? v : 0) + value;

    private static Action Hook(nn.Module<Tensor, Tensor> module, Action<Tensor, Tensor> onOutput)
    {
        var remover = module.register_forward_hook((m, input, output) =>
        {
            onOutput(input, output);
            return output;
        });
        return () => remover.remove();
    }
}
