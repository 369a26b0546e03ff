using System;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResNetSharp.Blocks;

/// <summary>
/// BatchNorm with fixed statistics and a fixed affine transform, as detection fine-tuning uses (Detectron's
/// <c>FrozenBN</c>, torchvision's <c>FrozenBatchNorm2d</c>): y = (x − running_mean) / √(running_var + eps) · weight + bias
/// in training and in eval alike. Nothing is updated and nothing gets a gradient; the input still does, so layers
/// below it keep training. Its state-dict keys are BatchNorm2d's (<c>weight, bias, running_mean, running_var,
/// num_batches_tracked</c>), all buffers, so a checkpoint of a normal network loads into a frozen one unchanged.
/// </summary>
internal sealed class FrozenBatchNorm2d : nn.Module<Tensor, Tensor>
{
    // Field names are the state-dict keys; RegisterComponents registers Tensor fields as buffers.
    private readonly Tensor weight;
    private readonly Tensor bias;
    private readonly Tensor running_mean;
    private readonly Tensor running_var;
    private readonly Tensor num_batches_tracked;

    /// <summary>Creates an identity-initialised frozen norm (weight 1, bias 0, mean 0, variance 1).</summary>
    /// <param name="channels">Number of channels.</param>
    /// <param name="eps">Added to the variance, as in BatchNorm2d. Default 1e-5.</param>
    /// <param name="device">Device of the buffers; default the CPU.</param>
    /// <param name="dtype">Dtype of the buffers; default float32.</param>
    /// <exception cref="ArgumentException"><paramref name="channels"/> or <paramref name="eps"/> is not positive.</exception>
    public FrozenBatchNorm2d(long channels, double eps = 1e-5, Device? device = null, ScalarType? dtype = null)
        : base(nameof(FrozenBatchNorm2d))
    {
        if (channels < 1)
        {
            throw new ArgumentException($"FrozenBatchNorm2d: channels must be ≥ 1, got {channels}.", nameof(channels));
        }

        if (!(eps > 0))
        {
            throw new ArgumentException($"FrozenBatchNorm2d: eps must be positive, got {eps}.", nameof(eps));
        }

        Channels = channels;
        Eps = eps;
        weight = torch.ones(channels, dtype: dtype, device: device);
        bias = torch.zeros(channels, dtype: dtype, device: device);
        running_mean = torch.zeros(channels, dtype: dtype, device: device);
        running_var = torch.ones(channels, dtype: dtype, device: device);
        num_batches_tracked = torch.zeros(Array.Empty<long>(), dtype: ScalarType.Int64, device: device);
        RegisterComponents();
    }

    /// <summary>Number of channels.</summary>
    public long Channels { get; }

    /// <summary>The epsilon added to the variance.</summary>
    public double Eps { get; }

    /// <summary>The fixed scale γ (a buffer, not a parameter).</summary>
    public Tensor Weight => weight;

    /// <summary>The fixed shift β (a buffer, not a parameter).</summary>
    public Tensor Bias => bias;

    /// <summary>The fixed mean.</summary>
    public Tensor RunningMean => running_mean;

    /// <summary>The fixed variance.</summary>
    public Tensor RunningVar => running_var;

    /// <summary>A frozen copy of a trained <see cref="BatchNorm2d"/>: its statistics and affine become constants.</summary>
    /// <exception cref="ArgumentException">The BatchNorm has no affine weights or no running statistics.</exception>
    public static FrozenBatchNorm2d From(BatchNorm2d norm)
    {
        ArgumentNullException.ThrowIfNull(norm);
        if (norm.weight is null || norm.bias is null || norm.running_mean is null || norm.running_var is null)
        {
            throw new ArgumentException("FrozenBatchNorm2d.From needs a BatchNorm2d with affine weights and running statistics.", nameof(norm));
        }

        var frozen = new FrozenBatchNorm2d(norm.weight.shape[0], norm.eps, norm.weight.device, norm.weight.dtype);
        using var noGrad = torch.no_grad();
        frozen.weight.copy_(norm.weight);
        frozen.bias.copy_(norm.bias);
        frozen.running_mean.copy_(norm.running_mean);
        frozen.running_var.copy_(norm.running_var);
        return frozen;
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.dim() != 4 || input.shape[1] != Channels)
        {
            throw new ArgumentException(
                $"FrozenBatchNorm2d: expected N×{Channels}×H×W, got shape [{string.Join(", ", input.shape)}].", nameof(input));
        }

        using var scope = torch.NewDisposeScope();
        var scale = weight * (running_var + Eps).rsqrt();
        var shift = bias - (running_mean * scale);
        var y = (input * scale.view(1, -1, 1, 1)) + shift.view(1, -1, 1, 1);
        return y.MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public override string ToString() => $"FrozenBatchNorm2d({Channels}, eps={Eps})";

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            weight.Dispose();
            bias.Dispose();
            running_mean.Dispose();
            running_var.Dispose();
            num_batches_tracked.Dispose();
        }

        base.Dispose(disposing);
    }
}
