using System;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResNetSharp.Blocks;

/// <summary>
/// Squeeze-and-excitation (Hu et al. 2018) as timm's <c>SEModule</c> in SE-ResNet / SE-ResNeXt: global average pool,
/// <c>fc1</c> (1×1 conv C → r, with bias), ReLU, <c>fc2</c> (1×1 conv r → C, with bias), sigmoid, and the input scaled
/// per channel by the result. r = <see cref="MakeDivisible"/>(C / 16, 8). Registered in a block as <c>se</c>.
/// </summary>
internal sealed class SqueezeExcite : nn.Module<Tensor, Tensor>, ILowerable
{
    private readonly Conv2d fc1;
    private readonly Conv2d fc2;

    public SqueezeExcite(long channels, Device? device, ScalarType? dtype)
        : base(nameof(SqueezeExcite))
    {
        Reduced = MakeDivisible(channels / 16.0, 8);
        fc1 = nn.Conv2d(channels, Reduced, kernel_size: 1, bias: true, device: device, dtype: dtype);
        fc2 = nn.Conv2d(Reduced, channels, kernel_size: 1, bias: true, device: device, dtype: dtype);
        RegisterComponents();
    }

    /// <summary>The squeezed width r.</summary>
    public long Reduced { get; }

    /// <summary>
    /// timm's <c>make_divisible</c> as SE calls it (round_limit 0): <paramref name="value"/> rounded half-up to a
    /// multiple of <paramref name="divisor"/>, and at least <paramref name="divisor"/>.
    /// </summary>
    public static long MakeDivisible(double value, long divisor) =>
        Math.Max(divisor, (long)(value + (divisor / 2.0)) / divisor * divisor);

    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var s = input.mean(new long[] { 2, 3 }, keepdim: true);
        s = fc2.call(fc1.call(s).relu_()).sigmoid_();
        return input.mul(s).MoveToOuterDisposeScope();
    }

    /// <summary>One <see cref="SqueezeExciteOp"/> named <paramref name="name"/>.</summary>
    public int Lower(LoweringBuilder b, string name, int x) => b.SqueezeExcite(name, x, fc1, fc2);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            fc1.Dispose();
            fc2.Dispose();
        }

        base.Dispose(disposing);
    }
}
