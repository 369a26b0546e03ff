using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNetSharp.Inference;

/// <summary>
/// The ops of <see cref="ActivationLayout.Blocked"/>: libtorch's MKLDNN (oneDNN) tensors, whose memory is oneDNN's own
/// blocked layout, and the convolution that runs on them with weights reordered once. TorchSharp binds none of
/// these ops, so they are reached through a small TorchScript compilation unit; its text is generated here from
/// integers only (one conv function per distinct padding/stride/dilation/groups), never from user input.
/// </summary>
internal sealed class OneDnnProgram : IDisposable
{
    private static readonly Lazy<string?> Unavailable = new(Probe);
    private readonly torch.jit.CompilationUnit unit;
    private readonly Dictionary<ConvConfig, int> configs;
    private readonly Dictionary<PoolConfig, int> pools;

    internal readonly record struct ConvConfig(long PadH, long PadW, long StrideH, long StrideW, long DilationH, long DilationW, long Groups);

    internal readonly record struct PoolConfig(long KernelH, long KernelW, long StrideH, long StrideW, long PadH, long PadW);

    private OneDnnProgram(IReadOnlyCollection<ConvConfig> convs, IReadOnlyCollection<PoolConfig> maxPools)
    {
        configs = convs.Distinct().Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i);
        pools = maxPools.Distinct().Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i);
        unit = torch.jit.compile(Script(configs, pools));
    }

    /// <summary>
    /// Null when this libtorch runs MKLDNN convolutions on the CPU (checked once per process against an ordinary
    /// convolution); otherwise why not.
    /// </summary>
    internal static string? WhyUnavailable => Unavailable.Value;

    /// <summary>A program for the convolutions and max pools of a graph; call only where <see cref="WhyUnavailable"/> is null.</summary>
    internal static OneDnnProgram Create(IReadOnlyCollection<ConvConfig> convs, IReadOnlyCollection<PoolConfig> maxPools) => new(convs, maxPools);

    /// <summary>
    /// True for the convolutions whose weight must stay dense (oneDNN then reorders it on each call): 1×1 convs with
    /// 512 or more outputs. With a weight reordered ahead by <c>mkldnn_reorder_conv2d_weight</c>, libtorch 2.10 on the
    /// project's AVX-512 machine returns wrong values for those (relative errors of 0.4–0.5 for 128→512, 256→512,
    /// 2048→512) or dies of SIGFPE (512→1024, 1024→512); with the dense weight they are exact. Every other conv of
    /// the family was exact with the reordered weight.
    /// </summary>
    internal static bool KeepsDenseWeight(Tensor weight) =>
        weight.shape[2] == 1 && weight.shape[3] == 1 && weight.shape[0] >= 512;

    /// <summary>A dense, contiguous NCHW float32 CPU tensor → an MKLDNN tensor (a copy in the blocked layout).</summary>
    internal Tensor ToBlocked(Tensor dense) => unit.invoke<Tensor>("to_blocked", dense);

    /// <summary>An MKLDNN tensor → a dense, contiguous NCHW tensor.</summary>
    internal Tensor ToDense(Tensor blocked) => unit.invoke<Tensor>("to_dense", blocked);

    /// <summary>The weight in the blocked layout oneDNN's convolution wants for this configuration.</summary>
    internal Tensor ReorderWeight(ConvConfig config, Tensor weight) => unit.invoke<Tensor>($"reorder_{configs[config]}", weight);

    /// <summary>The name of the function that runs a conv of this configuration (with its ReLU when asked), for <see cref="Conv"/>.</summary>
    internal string ConvFunction(ConvConfig config, bool relu) => $"{(relu ? "conv_relu" : "conv")}_{configs[config]}";

    /// <summary>conv(x, w, b) on MKLDNN tensors (w from <see cref="ReorderWeight"/>) by the function <see cref="ConvFunction"/> named.</summary>
    internal Tensor Conv(string function, Tensor x, Tensor weight, Tensor bias) => unit.invoke<Tensor>(function, x, weight, bias);

    /// <summary>A max pool of one of the configurations the program was made for, on an MKLDNN tensor.</summary>
    internal Tensor MaxPool(PoolConfig config, Tensor x) => unit.invoke<Tensor>($"max_pool_{pools[config]}", x);

    /// <summary>Global average pool of an MKLDNN N×C×H×W tensor → a dense N×C matrix.</summary>
    internal Tensor GlobalAveragePool(Tensor x) => unit.invoke<Tensor>("global_average_pool", x);

    /// <inheritdoc />
    public void Dispose() => unit.Dispose();

    private static string Script(Dictionary<ConvConfig, int> configs, Dictionary<PoolConfig, int> pools)
    {
        var s = new StringBuilder();
        s.Append("""
            def to_blocked(x: Tensor) -> Tensor:
                return x.to_mkldnn()

            def to_dense(x: Tensor) -> Tensor:
                return x.to_dense()

            def global_average_pool(x: Tensor) -> Tensor:
                return torch.adaptive_avg_pool2d(x, [1, 1]).to_dense().flatten(1)

            """);
        foreach (var (p, i) in pools)
        {
            s.Append(CultureInfo.InvariantCulture, $"""

                def max_pool_{i}(x: Tensor) -> Tensor:
                    return torch.max_pool2d(x, [{p.KernelH}, {p.KernelW}], [{p.StrideH}, {p.StrideW}], [{p.PadH}, {p.PadW}])

                """);
        }

        foreach (var (c, i) in configs)
        {
            string args = string.Create(CultureInfo.InvariantCulture,
                $"[{c.PadH}, {c.PadW}], [{c.StrideH}, {c.StrideW}], [{c.DilationH}, {c.DilationW}], {c.Groups}");
            s.Append(CultureInfo.InvariantCulture, $"""

                def reorder_{i}(w: Tensor) -> Tensor:
                    return torch.mkldnn_reorder_conv2d_weight(w.to_mkldnn(), {args})

                def conv_{i}(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
                    return torch.mkldnn_convolution(x, w, b, {args})

                def conv_relu_{i}(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
                    return torch.relu_(torch.mkldnn_convolution(x, w, b, {args}))

                """);
        }

        return s.ToString();
    }

    /// <summary>Runs one small blocked conv and compares it with <c>conv2d</c>; returns why it cannot be used, or null.</summary>
    private static string? Probe()
    {
        try
        {
            using var scope = torch.NewDisposeScope();
            using var mode = torch.no_grad();
            var config = new ConvConfig(1, 1, 1, 1, 1, 1, 1);
            using var program = new OneDnnProgram(new[] { config }, Array.Empty<PoolConfig>());
            var generator = new Generator(7);
            var x = torch.randn(new long[] { 2, 8, 6, 6 }, generator: generator);
            var w = torch.randn(new long[] { 16, 8, 3, 3 }, generator: generator);
            var b = torch.randn(new long[] { 16 }, generator: generator);
            var expected = nn.functional.conv2d(x, w, b, padding: new long[] { 1, 1 }).relu_();
            var actual = program.ToDense(program.Conv(program.ConvFunction(config, relu: true), program.ToBlocked(x), program.ReorderWeight(config, w), b));
            double error = (actual - expected).abs().max().item<float>();
            return error <= 1e-4 * expected.abs().max().item<float>()
                ? null
                : $"the MKLDNN convolution differs from conv2d by {error}";
        }
        catch (Exception e) when (e is ExternalException or InvalidOperationException or NotImplementedException or ArgumentException)
        {
            return $"libtorch has no usable MKLDNN convolution here ({e.Message.Split('\n')[0]})";
        }
    }
}
