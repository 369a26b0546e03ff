using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResNetSharp.Training;

/// <summary>Where a run stands: enough, with the model and optimizer tensors, to continue it bit for bit.</summary>
internal sealed record TrainingState
{
    /// <summary>Epoch to run next (0-based); equals the number of finished epochs when <see cref="Step"/> is 0.</summary>
    public int Epoch { get; init; }

    /// <summary>Batch of <see cref="Epoch"/> to run next.</summary>
    public int Step { get; init; }

    /// <summary>Optimizer steps taken so far (and scheduler steps: one per iteration).</summary>
    public int GlobalStep { get; init; }

    public int Seed { get; init; }

    public int Epochs { get; init; }

    public int BatchSize { get; init; }

    public int StepsPerEpoch { get; init; }

    public int TrainSamples { get; init; }

    /// <summary>Processes of the data-parallel run that wrote it (1 for a single process; missing in older checkpoints, which were all 1).</summary>
    public int WorldSize { get; init; } = 1;

    public string Schedule { get; init; } = string.Empty;

    /// <summary>Sums over the finished batches of the current epoch (the epoch's train loss and error need them).</summary>
    public double EpochLossSum { get; init; }

    public long EpochErrors { get; init; }

    public long EpochSamples { get; init; }

    public double EpochSeconds { get; init; }

    public double TotalSeconds { get; init; }

    public int InputSize { get; init; }

    public List<EpochMetrics> History { get; init; } = new();
}

/// <summary>
/// The resumable checkpoint: one safetensors file holding the model's state dict (<c>model.*</c>), TorchSharp's
/// serialised optimizer state (<c>optimizer</c>, bytes: the momentum buffers and the group options), the global torch
/// generator state (<c>torch_rng_state</c>) and, in <c>__metadata__</c>, the <see cref="TrainingState"/> as JSON and the
/// model's metadata. The scheduler has no serialisable state in TorchSharp, so it is rebuilt and stepped
/// <see cref="TrainingState.GlobalStep"/> times; the shuffle and augmentation need only (seed, epoch, batch).
/// Written atomically (temporary file, fsync, rename, folder fsync).
/// </summary>
internal static class TrainingCheckpoint
{
    public const string FileName = "checkpoint.safetensors";
    private const string FormatKey = "resnetsharp.checkpoint";
    private const string StateKey = "trainer_state";
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public static void Save(string path, ResNet model, OptimizerHelper optimizer, TrainingState state)
    {
        var tensors = model.state_dict().Select(kv => WeightTensor.FromTensor("model." + kv.Key, kv.Value)).ToList();
        using (var memory = new MemoryStream())
        {
            using (var writer = new BinaryWriter(memory, System.Text.Encoding.UTF8, leaveOpen: true))
            {
                optimizer.save_state_dict(writer);
            }

            tensors.Add(new WeightTensor("optimizer", WeightDType.U8, new long[] { memory.Length }, memory.ToArray()));
        }

        using (var rng = torch.get_rng_state())
        {
            tensors.Add(WeightTensor.FromTensor("torch_rng_state", rng));
        }

        var metadata = new Dictionary<string, string>(model.Metadata.ToDictionary(), StringComparer.Ordinal)
        {
            [FormatKey] = "1",
            [StateKey] = JsonSerializer.Serialize(state, Json),
        };
        new WeightFile(tensors, metadata, path).Write(path, WeightFormat.SafeTensors);
    }

    /// <summary>Reads the state and, once the whole file has been checked, restores model, optimizer and torch generator.</summary>
    /// <exception cref="InvalidDataException">Not a checkpoint, or malformed; the message names the file.</exception>
    public static TrainingState Load(string path, ResNet model, OptimizerHelper optimizer)
    {
        var file = WeightFile.Read(path, WeightFormat.SafeTensors);
        if (!file.Metadata.TryGetValue(FormatKey, out string? version) || version != "1" || !file.Metadata.TryGetValue(StateKey, out string? json))
        {
            throw new InvalidDataException($"{path}: not a ResNetSharp training checkpoint (no '{FormatKey}' = 1 and '{StateKey}' in its metadata).");
        }

        TrainingState state;
        try
        {
            state = JsonSerializer.Deserialize<TrainingState>(json, Json) ?? throw new JsonException("null");
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{path}: '{StateKey}' is malformed: {ex.Message}", ex);
        }

        var optimizerBytes = file.Find("optimizer") ?? throw new InvalidDataException($"{path}: the tensor 'optimizer' is missing.");
        var rngState = file.Find("torch_rng_state") ?? throw new InvalidDataException($"{path}: the tensor 'torch_rng_state' is missing.");
        var modelWeights = new WeightFile(
            file.Tensors.Where(t => t.Name.StartsWith("model.", StringComparison.Ordinal))
                .Select(t => new WeightTensor(t.Name["model.".Length..], t.DType, t.Shape, t.Data.ToArray())),
            null, path);
        model.LoadWeights(modelWeights);
        using (var reader = new BinaryReader(new MemoryStream(optimizerBytes.Data.ToArray())))
        {
            try
            {
                optimizer.load_state_dict(reader);
            }
            catch (Exception ex) when (ex is ArgumentException or EndOfStreamException or IOException)
            {
                throw new InvalidDataException($"{path}: the optimizer state does not fit this model's optimizer: {ex.Message}", ex);
            }
        }

        using (var rng = rngState.ToTensor())
        {
            torch.set_rng_state(rng);
        }

        return state;
    }
}
