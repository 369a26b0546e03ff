using System.Collections.Generic;
using BenchmarkDotNet.Attributes;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNetSharp.Benchmarks;

/// <summary>
/// A whole forward pass (logits) at 224×224: the plain model in eval mode (NCHW, the baseline) against
/// <see cref="InferenceExtensions.ForInference"/> with each fixed layout. The input is an ordinary NCHW batch in
/// all three, so the channels-last variant includes converting it (as it does in use).
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
        nchw = model.ForInference(new InferenceOptions { Layout = ActivationLayout.ChannelsFirst });
        channelsLast = model.ForInference(new InferenceOptions { Layout = ActivationLayout.ChannelsLast });
        input = torch.randn(Batch, 3, InputSize, InputSize);

        if (Checked.Add($"{Model}/{Batch}"))
        {
            using var mode = torch.inference_mode();
            using var scope = torch.NewDisposeScope();
            var reference = model.call(input);
            BenchSettings.CheckAgreement(reference, nchw.call(input), $"{Model} batch {Batch} ForInference (NCHW)");
            BenchSettings.CheckAgreement(reference, channelsLast.call(input), $"{Model} batch {Batch} ForInference (channels-last)");
        }
    }

    /// <summary>Frees the input and the three models.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        input.Dispose();
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

    /// <summary>ForInference, NCHW activations.</summary>
    [Benchmark]
    public void InferenceNchw()
    {
        using var mode = torch.inference_mode();
        using var scope = torch.NewDisposeScope();
        nchw.call(input);
    }

    /// <summary>ForInference, channels-last activations.</summary>
    [Benchmark]
    public void InferenceChannelsLast()
    {
        using var mode = torch.inference_mode();
        using var scope = torch.NewDisposeScope();
        channelsLast.call(input);
    }
}
