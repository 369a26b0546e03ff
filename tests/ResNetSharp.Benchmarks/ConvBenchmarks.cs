using System;
using System.Collections.Generic;
using BenchmarkDotNet.Attributes;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNetSharp.Benchmarks;

/// <summary>One convolution of ResNet-50's first stages: square kernel, input channels, output channels, input size.</summary>
public sealed record ConvShape(int Kernel, long InChannels, long OutChannels, long Size, long Stride = 1)
{
    /// <summary>The batch every convolution benchmark uses.</summary>
    public const long Batch = 8;

    /// <summary>Shown in BenchmarkDotNet's tables, e.g. "3x3 64->64 s1 @56".</summary>
    public override string ToString() => $"{Kernel}x{Kernel} {InChannels}->{OutChannels} s{Stride} @{Size}";

    /// <summary>Zero padding that keeps the size at stride 1 (what ResNet uses).</summary>
    public long Padding => Kernel / 2;

    /// <summary>He-initialised weight (out × in × k × k) and a small bias, float32, NCHW-contiguous.</summary>
    internal (Tensor Weight, Tensor Bias) CreateParameters()
    {
        using var scope = torch.NewDisposeScope();
        double std = Math.Sqrt(2.0 / (InChannels * Kernel * Kernel));
        var weight = torch.randn(OutChannels, InChannels, Kernel, Kernel) * std;
        var bias = torch.randn(OutChannels) * 0.1;
        return (weight.MoveToOuterDisposeScope(), bias.MoveToOuterDisposeScope());
    }

    /// <summary>A post-ReLU-like activation, N × C × H × W contiguous (NCHW memory).</summary>
    internal Tensor CreateInput()
    {
        using var scope = torch.NewDisposeScope();
        return torch.randn(Batch, InChannels, Size, Size).relu_().MoveToOuterDisposeScope();
    }
}

/// <summary>
/// 3×3 convolutions at batch 8: <c>conv2d</c> on an NCHW-contiguous input (the baseline) against the same
/// <c>conv2d</c> on a channels-last input (NHWC memory, N×C×H×W shape, made with permute(0,2,3,1).contiguous()
/// and permuted back). The weight stays NCHW-contiguous in both, as in <see cref="FusedConv2d"/>. The layout
/// conversion is done once in setup: each variant is timed on activations already in its own layout, as inside a
/// network that keeps one layout throughout.
/// </summary>
[MemoryDiagnoser]
[BenchmarkCategory("Conv")]
public class Conv3x3Benchmarks
{
    private Tensor input = null!;
    private Tensor inputChannelsLast = null!;
    private Tensor weight = null!;
    private Tensor bias = null!;
    private long[] stride = null!;
    private long[] padding = null!;

    /// <summary>ResNet-50 3×3 convs: layer1 (64, and ResNet-18's layer1), layer2 (stride 1, and layer2[0]'s stride 2).</summary>
    public static IEnumerable<ConvShape> Shapes() => new[]
    {
        new ConvShape(3, 64, 64, 56),
        new ConvShape(3, 128, 128, 28),
        new ConvShape(3, 128, 128, 56, Stride: 2),
    };

    /// <summary>The convolution being timed.</summary>
    [ParamsSource(nameof(Shapes))]
    public ConvShape Shape { get; set; } = null!;

    /// <summary>Makes the tensors and checks once that both layouts give the same result.</summary>
    [GlobalSetup]
    public void Setup()
    {
        BenchSettings.ApplyThreads();
        (weight, bias) = Shape.CreateParameters();
        input = Shape.CreateInput();
        inputChannelsLast = input.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2); // NHWC memory, NCHW shape
        stride = new[] { Shape.Stride, Shape.Stride };
        padding = new[] { Shape.Padding, Shape.Padding };

        using var mode = torch.inference_mode();
        using var scope = torch.NewDisposeScope();
        var reference = nn.functional.conv2d(input, weight, bias, stride, padding);
        BenchSettings.CheckAgreement(reference, nn.functional.conv2d(inputChannelsLast, weight, bias, stride, padding), $"{Shape} channels-last conv2d");
    }

    /// <summary>Frees the tensors.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        inputChannelsLast.Dispose();
        input.Dispose();
        weight.Dispose();
        bias.Dispose();
    }

    /// <summary>conv2d, NCHW in and out.</summary>
    [Benchmark(Baseline = true)]
    public void Nchw()
    {
        using var mode = torch.inference_mode();
        using var scope = torch.NewDisposeScope();
        nn.functional.conv2d(input, weight, bias, stride, padding);
    }

    /// <summary>conv2d, channels-last in and out.</summary>
    [Benchmark]
    public void ChannelsLastInput()
    {
        using var mode = torch.inference_mode();
        using var scope = torch.NewDisposeScope();
        nn.functional.conv2d(inputChannelsLast, weight, bias, stride, padding);
    }
}

/// <summary>
/// 1×1 convolutions at batch 8: <c>conv2d</c> on an NCHW input (the baseline) against the path
/// <see cref="FusedConv2d"/> takes for channels-last activations, one <c>addmm</c>: NHWC rows [N·H·W, Cin] ×
/// Wᵀ [Cin, Cout] + bias, viewed back as N×Cout×H×W (channels-last). Channels-last <c>conv2d</c> is deliberately
/// not timed for 1×1: libtorch 2.10 returns wrong values for it with ≥ 512 output channels and batch ≥ 2.
/// </summary>
[MemoryDiagnoser]
[BenchmarkCategory("Conv")]
public class Conv1x1Benchmarks
{
    private Tensor input = null!;
    private Tensor rows = null!;
    private Tensor weight = null!;
    private Tensor weightT = null!;
    private Tensor bias = null!;

    /// <summary>ResNet-50 1×1 convs: layer1 conv3/projection, layer1 conv1, layer2 conv1, layer2 conv3 (512 outputs).</summary>
    public static IEnumerable<ConvShape> Shapes() => new[]
    {
        new ConvShape(1, 64, 256, 56),
        new ConvShape(1, 256, 64, 56),
        new ConvShape(1, 512, 128, 28),
        new ConvShape(1, 128, 512, 28),
    };

    /// <summary>The convolution being timed.</summary>
    [ParamsSource(nameof(Shapes))]
    public ConvShape Shape { get; set; } = null!;

    /// <summary>Makes the tensors and checks once that conv2d and addmm give the same result.</summary>
    [GlobalSetup]
    public void Setup()
    {
        BenchSettings.ApplyThreads();
        (weight, bias) = Shape.CreateParameters();
        input = Shape.CreateInput();
        using (var nhwc = input.permute(0, 2, 3, 1))
        using (var packed = nhwc.contiguous())
        {
            // [N·H·W, Cin]: one contiguous copy here, a view of the channels-last activation in a network.
            rows = packed.view(ConvShape.Batch * Shape.Size * Shape.Size, Shape.InChannels);
        }

        // Wᵀ as FusedConv2d holds it: a transposed view of the contiguous Cout × Cin weight.
        using (var matrix = weight.view(Shape.OutChannels, Shape.InChannels))
        {
            weightT = matrix.t();
        }

        using var mode = torch.inference_mode();
        using var scope = torch.NewDisposeScope();
        var reference = nn.functional.conv2d(input, weight, bias);
        BenchSettings.CheckAgreement(reference, Addmm1x1(), $"{Shape} addmm");
    }

    /// <summary>Frees the tensors.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        rows.Dispose();
        input.Dispose();
        weightT.Dispose();
        weight.Dispose();
        bias.Dispose();
    }

    /// <summary>conv2d, NCHW in and out.</summary>
    [Benchmark(Baseline = true)]
    public void Nchw()
    {
        using var mode = torch.inference_mode();
        using var scope = torch.NewDisposeScope();
        nn.functional.conv2d(input, weight, bias);
    }

    /// <summary>addmm over the pixel rows, channels-last in and out.</summary>
    [Benchmark]
    public void Addmm()
    {
        using var mode = torch.inference_mode();
        using var scope = torch.NewDisposeScope();
        Addmm1x1();
    }

    private Tensor Addmm1x1()
    {
        var y = torch.addmm(bias, rows, weightT, 1, 1);
        return y.view(ConvShape.Batch, Shape.Size, Shape.Size, Shape.OutChannels).permute(0, 3, 1, 2);
    }
}
