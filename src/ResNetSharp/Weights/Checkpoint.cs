using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNetSharp.Weights;

/// <summary>
/// Loads and saves a model's state dict (parameters and buffers, torchvision's key names) as safetensors or
/// TorchSharp's format. Loading is strict by default and all-or-nothing: the file is read and checked completely,
/// every tensor is converted to the model's dtype and device, and only then is anything copied into the model.
/// Saving is atomic. Works for any <see cref="nn.Module"/>, and so for every <see cref="ResNet"/>.
/// </summary>
/// <example>
/// <code>
/// using var model = ResNetFactory.ResNet50();
/// model.LoadWeights("resnet50.safetensors");                       // strict: everything must match
/// using var tuned = ResNetFactory.ResNet50(new ResNetOptions { NumClasses = 10 });
/// tuned.LoadWeights("resnet50.safetensors", LoadOptions.ExceptClassifier);
/// tuned.SaveWeights("tuned.safetensors");
/// </code>
/// </example>
internal static class Checkpoint
{
    /// <summary>Loads weights from a file (PyTorch .pth, safetensors or TorchSharp format, detected from the content) into the model.</summary>
    /// <param name="module">The model; its parameters and buffers are replaced in place, on its current device and dtype.</param>
    /// <param name="path">The weight file.</param>
    /// <param name="options">Matching rules; default strict.</param>
    /// <returns>What was matched and skipped.</returns>
    /// <exception cref="InvalidDataException">The file is malformed (the model is untouched).</exception>
    /// <exception cref="WeightMismatchException">Keys are missing, unexpected or mis-shaped; all are listed (the model is untouched).</exception>
    /// <exception cref="ArgumentException"><see cref="LoadOptions.SkipKeys"/> names a key that is in neither the model nor the file.</exception>
    public static WeightCheck LoadWeights(this nn.Module module, string path, LoadOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        var file = WeightFile.Read(path, options?.Format ?? WeightFormat.Auto);
        return Load(module, file, options);
    }

    /// <summary>Loads weights from a stream (read to its end) into the model.</summary>
    /// <inheritdoc cref="LoadWeights(nn.Module, string, LoadOptions?)" path="/exception"/>
    /// <param name="module">The model.</param>
    /// <param name="stream">PyTorch .pth, safetensors or TorchSharp-format bytes.</param>
    /// <param name="options">Matching rules; default strict.</param>
    /// <param name="sourceName">Name used in messages. Default "stream".</param>
    public static WeightCheck LoadWeights(this nn.Module module, Stream stream, LoadOptions? options = null, string? sourceName = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        var file = WeightFile.Read(stream, options?.Format ?? WeightFormat.Auto, sourceName);
        return Load(module, file, options);
    }

    /// <summary>Loads an already-read weight file into the model.</summary>
    /// <exception cref="WeightMismatchException">Keys are missing, unexpected or mis-shaped; all are listed (the model is untouched).</exception>
    /// <exception cref="ArgumentException"><see cref="LoadOptions.SkipKeys"/> names a key that is in neither the model nor the file.</exception>
    internal static WeightCheck LoadWeights(this nn.Module module, WeightFile weights, LoadOptions? options = null) =>
        Load(module, weights, options);

    /// <summary>Matches a weight file against the model without changing it.</summary>
    /// <exception cref="ArgumentException"><see cref="LoadOptions.SkipKeys"/> names a key that is in neither the model nor the file.</exception>
    internal static WeightCheck CheckWeights(this nn.Module module, WeightFile weights, LoadOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(weights);
        return Check(module.state_dict(), weights, options ?? LoadOptions.Strict);
    }

    /// <summary>The model's state dict (parameters and buffers, on the CPU) as an in-memory weight file.</summary>
    /// <param name="module">The model.</param>
    /// <param name="options">Only <see cref="SaveOptions.FloatType"/> and <see cref="SaveOptions.Metadata"/> apply.</param>
    internal static WeightFile GetWeights(this nn.Module module, SaveOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        options ??= new SaveOptions();
        var tensors = module.state_dict().Select(kv => WeightTensor.FromTensor(kv.Key, kv.Value, options.FileFloatType)).ToList();
        return new WeightFile(tensors, MergeMetadata(module, options.Metadata), "memory");
    }

    /// <summary>A <see cref="ResNet"/>'s <see cref="ResNet.Metadata"/> pairs, overridden by the caller's own.</summary>
    private static IReadOnlyDictionary<string, string>? MergeMetadata(nn.Module module, IReadOnlyDictionary<string, string>? extra)
    {
        if (module is not ResNet resnet)
        {
            return extra;
        }

        var pairs = new Dictionary<string, string>(resnet.Metadata.ToDictionary(), StringComparer.Ordinal);
        if (extra is not null)
        {
            foreach (var (k, v) in extra)
            {
                pairs[k] = v;
            }
        }

        return pairs;
    }

    /// <summary>Saves the model's state dict to a file, atomically: a temporary file in the same folder is written, flushed to disk and renamed over <paramref name="path"/>.</summary>
    /// <param name="module">The model.</param>
    /// <param name="path">Target file; a previous file stays intact if anything fails.</param>
    /// <param name="options">Format (default safetensors), float type and metadata.</param>
    public static void SaveWeights(this nn.Module module, string path, SaveOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        module.GetWeights(options).Write(path, options?.Format ?? WeightFormat.SafeTensors);
    }

    /// <summary>Writes the model's state dict to a stream (left open; not atomic, the caller owns the stream).</summary>
    public static void SaveWeights(this nn.Module module, Stream stream, SaveOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var file = module.GetWeights(options);
        file.Write(stream, options?.Format ?? WeightFormat.SafeTensors);
    }

    /// <summary>The load itself (tests fail it after a copy through <see cref="Runtime.TestSeams.AfterWeightCopy"/>).</summary>
    internal static WeightCheck Load(nn.Module module, WeightFile weights, LoadOptions? options)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(weights);
        options ??= LoadOptions.Strict;
        var targets = module.state_dict();
        var check = Check(targets, weights, options);
        if (!check.IsLoadable)
        {
            throw new WeightMismatchException(check);
        }

        using var scope = torch.NewDisposeScope();

        // 1. Convert everything to the model's dtype and device first: any failure here (memory, device) leaves the model untouched.
        var pairs = new List<(Tensor Target, Tensor Value)>(check.Matched.Count);
        foreach (string key in check.Matched)
        {
            var target = targets[key];
            var value = weights[key].ToTensor();
            if (value.dtype != target.dtype || value.device != target.device)
            {
                value = value.to(target.dtype, target.device);
            }

            pairs.Add((target, value));
        }

        // 2. Copy. Same shape, dtype and device, so this should not fail; if it does, restore what was already copied.
        var snapshot = pairs.Select(p => p.Target.detach().clone()).ToList();
        using (torch.no_grad())
        {
            int copied = 0;
            try
            {
                for (; copied < pairs.Count; copied++)
                {
                    pairs[copied].Target.copy_(pairs[copied].Value);
                    Runtime.TestSeams.AfterWeightCopy?.Invoke(copied);
                }
            }
            catch
            {
                for (int i = 0; i <= copied && i < pairs.Count; i++)
                {
                    pairs[i].Target.copy_(snapshot[i]);
                }

                throw;
            }
        }

        return check;
    }

    private static WeightCheck Check(Dictionary<string, Tensor> targets, WeightFile weights, LoadOptions options)
    {
        var skip = options.SkippedKeys();
        var unknownSkips = (options.SkipKeys ?? Array.Empty<string>())
            .Where(k => !targets.ContainsKey(k) && weights.Find(k) is null)
            .ToList();
        if (unknownSkips.Count > 0)
        {
            throw new ArgumentException(
                $"LoadOptions.SkipKeys names keys that are in neither the model nor {weights.Source}: {string.Join(", ", unknownSkips)}.", nameof(options));
        }

        var matched = new List<string>();
        var missing = new List<string>();
        var mismatched = new List<TensorMismatch>();
        var skipped = new List<string>();
        foreach (var (key, target) in targets)
        {
            if (skip.Contains(key))
            {
                skipped.Add(key);
                continue;
            }

            var entry = weights.Find(key);
            if (entry is null)
            {
                missing.Add(key);
                continue;
            }

            // Element types are converted to the model's (as PyTorch's load_state_dict does); only shapes must agree.
            if (!entry.Shape.SequenceEqual(target.shape))
            {
                mismatched.Add(new TensorMismatch(key, target.shape, entry.Shape.ToArray(), target.dtype.ToString(), entry.DType.ToSafeTensorsName()));
                continue;
            }

            matched.Add(key);
        }

        var unexpected = weights.Tensors.Select(t => t.Name).Where(n => !targets.ContainsKey(n) && !skip.Contains(n)).ToList();
        skipped.AddRange(weights.Tensors.Select(t => t.Name).Where(n => !targets.ContainsKey(n) && skip.Contains(n)));
        return new WeightCheck(weights.Source, matched, missing, unexpected, mismatched, skipped);
    }
}
