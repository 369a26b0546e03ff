using System.Collections.Generic;
using BenchmarkDotNet.Attributes;
using ResNetSharp.OnnxRuntime;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNetSharp.Benchmarks;

/// <summary>
/// A whole forward pass (logits) at 224×224: the plain model in eval mode (NCHW, the baseline) against
/// <see cref="InferenceExtensions.ForInference"/> (ONNX Runtime, CPU provider).
/// </summary>
[MemoryDiagnoser]
[BenchmarkCategory("Model")]
public class ModelBenchmarks
{
    private const long InputSize = 224;

    // Models whose two variants were already checked against each other in this process (one check per case).
    private static readonly HashSet<string> Checked = new();

    private ResNet model = null!;
    private OnnxRuntimeResNet onnxRuntime = null!;
    private Tensor input = null!;

    /// <summary>Factory name.</summary>
    [Params("resnet18", "resnet50")]
    public string Model { get; set; } = "resnet18";

    /// <summary>Images per forward pass.</summary>
    [Params(1, 8)]
    public int Batch { get; set; } = 1;

    /// <summary>Builds the model and its ONNX Runtime copy; checks once per case that they agree.</summary>
    [GlobalSetup]
    public void Setup()
    {
        BenchSettings.ApplyThreads();
        model = Models.CreateEval(Model);
        onnxRuntime = model.ForInference(new InferenceOptions { IntraOpThreads = TorchThreads.IntraOp, Device = TorchSharp.torch.CPU });
        input = torch.randn(Batch, 3, InputSize, InputSize);

        if (Checked.Add($"{Model}/{Batch}"))
        {
            using var mode = torch.inference_mode();
            using var scope = torch.NewDisposeScope();
            BenchSettings.CheckAgreement(model.call(input), onnxRuntime.Forward(input), $"{Model} batch {Batch} ForInference (ONNX Runtime)");
        }
    }

    /// <summary>Frees the input and both models.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        input.Dispose();
        onnxRuntime.Dispose();
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

    /// <summary>ForInference: the lowered graph on ONNX Runtime.</summary>
    [Benchmark]
    public void OnnxRuntime() => onnxRuntime.Forward(input).Dispose();
}
