using System.Collections.Generic;
using BenchmarkDotNet.Attributes;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNetSharp.Benchmarks;

/// <summary>
/// A whole forward pass (logits) at 224×224: the plain model in eval mode (NCHW, the baseline) against
/// <see cref="HandMadeInference.ForHandMadeInference"/> with each fixed layout. The input is an ordinary NCHW batch in
/// all four, so the channels-last and blocked variants include converting it (as they do in use).
/// </summary>
[MemoryDiagnoser]
[BenchmarkCategory("Model")]
public class ModelBenchmarks
{
    private const long InputSize = 224;

    // Models whose three variants were already checked against each other in this process (one check per case).
    private static readonly HashSet<string> Checked = new();

    private ResNet model = null!;
    private InferenceResNet nchw = null!;
    private InferenceResNet channelsLast = null!;
    private InferenceResNet blocked = null!;
    private Tensor input = null!;

    /// <summary>Factory name.</summary>
    [Params("resnet18", "resnet50")]
    public string Model { get; set; } = "resnet18";

    /// <summary>Images per forward pass.</summary>
    [Params(1, 8)]
    public int Batch { get; set; } = 1;

    /// <summary>Builds the model and both inference copies; checks once per case that all three agree.</summary>
    [GlobalSetup]
    public void Setup()
    {
        BenchSettings.ApplyThreads();
        model = Models.CreateEval(Model);
        nchw = model.ForHandMadeInference(new HandMadeOptions { Layout = ActivationLayout.ChannelsFirst });
        channelsLast = model.ForHandMadeInference(new HandMadeOptions { Layout = ActivationLayout.ChannelsLast });
        blocked = model.ForHandMadeInference(new HandMadeOptions { Layout = ActivationLayout.Blocked });
        input = torch.randn(Batch, 3, InputSize, InputSize);

        if (Checked.Add($"{Model}/{Batch}"))
        {
            using var mode = torch.inference_mode();
            using var scope = torch.NewDisposeScope();
            var reference = model.call(input);
            BenchSettings.CheckAgreement(reference, nchw.call(input), $"{Model} batch {Batch} ForHandMadeInference (NCHW)");
            BenchSettings.CheckAgreement(reference, channelsLast.call(input), $"{Model} batch {Batch} ForHandMadeInference (channels-last)");
            BenchSettings.CheckAgreement(reference, blocked.call(input), $"{Model} batch {Batch} ForHandMadeInference (blocked)");
        }
    }

    /// <summary>Frees the input and the four models.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        input.Dispose();
        blocked.Dispose();
        channelsLast.Dispose();
        nchw.Dispose();
        model.Dispose();
    }

    /// <summary>The model itself, eval mode.</summary>
    [Benchmark(Baseline = true)]
    public void Eval()
    {
        using var mode = torch.inference_mode();
        using var scope = torch.NewDisposeScope();
        model.call(input);
    }

    /// <summary>ForHandMadeInference, NCHW activations.</summary>
    [Benchmark]
    public void InferenceNchw()
    {
        using var mode = torch.inference_mode();
        using var scope = torch.NewDisposeScope();
        nchw.call(input);
    }

    /// <summary>ForHandMadeInference, channels-last activations.</summary>
    [Benchmark]
    public void InferenceChannelsLast()
    {
        using var mode = torch.inference_mode();
        using var scope = torch.NewDisposeScope();
        channelsLast.call(input);
    }

    /// <summary>ForHandMadeInference, oneDNN blocked activations (the Auto choice where oneDNN runs).</summary>
    [Benchmark]
    public void InferenceBlocked()
    {
        using var mode = torch.inference_mode();
        using var scope = torch.NewDisposeScope();
        blocked.call(input);
    }
}
