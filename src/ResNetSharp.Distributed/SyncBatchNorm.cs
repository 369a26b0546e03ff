using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResNetSharp.Distributed;

/// <summary>
/// Sum over the processes as an autograd operation: forward allreduces the tensor, backward allreduces the incoming
/// gradient (the derivative of y = Σ_r x_r with respect to this rank's x_r, summed over every rank's loss).
/// </summary>
internal sealed class AllreduceSumFunction : torch.autograd.SingleTensorFunction<AllreduceSumFunction>
{
    /// <inheritdoc/>
    public override string Name => "AllreduceSum";

    /// <summary>Sums <paramref name="x"/> over the processes of <paramref name="comm"/>, differentiably.</summary>
    public static Tensor Apply(Tensor x, Communicator comm) => apply(x, comm);

    /// <inheritdoc/>
    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var comm = (Communicator)vars[1];
        ctx.save_data("comm", comm);
        return Reduce((Tensor)vars[0], comm);
    }

    /// <inheritdoc/>
    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor grad_output) =>
        new() { Reduce(grad_output, (Communicator)ctx.get_data("comm")), null! };

    /// <summary>A new tensor holding the sum of <paramref name="x"/> over the processes (float32 or float64).</summary>
    internal static Tensor Reduce(Tensor x, Communicator comm)
    {
        using var noGrad = torch.no_grad();
        var cpu = x.detach().contiguous().cpu();
        Tensor summed;
        if (cpu.dtype == ScalarType.Float64)
        {
            var a = cpu.data<double>().ToArray();
            comm.AllreduceSum(a);
            summed = torch.tensor(a);
        }
        else if (cpu.dtype == ScalarType.Float32)
        {
            var a = cpu.data<float>().ToArray();
            comm.AllreduceSum(a);
            summed = torch.tensor(a);
        }
        else
        {
            throw new ArgumentException($"AllreduceSum needs float32 or float64, got {cpu.dtype}.");
        }

        return summed.view(x.shape).to(x.device);
    }
}

/// <summary>
/// Synchronised batch normalisation (Ioffe &amp; Szegedy's statistics over the global batch, PyTorch's SyncBatchNorm),
/// attached to a model's existing <see cref="BatchNorm2d"/> layers with forward hooks so the model's code is unchanged.
/// </summary>
/// <remarks>
/// In training mode each hooked layer's output is recomputed from global statistics with differentiable tensor ops:
/// mean = AR(Σx) / n and var = AR(Σ(x − mean)²) / n (two passes, no E[x²] − mean² cancellation), where AR is
/// <see cref="AllreduceSumFunction"/> and n the global count; y = (x − mean)/√(var + eps)·γ + β. Autograd therefore
/// carries the gradient through the global statistics, and AR's backward allreduces the two per-channel gradient
/// terms (PyTorch's sum_dy and sum_dy_xmu, in effect), so after DDP's gradient average every rank holds the gradient of
/// the global-batch loss. The running statistics get the global mean and the unbiased global variance (PyTorch's update).
/// In eval mode, or in a world of one, the layer is left as it is.
/// </remarks>
internal static class SyncBatchNorm
{
    /// <summary>Hooks every <see cref="BatchNorm2d"/> of <paramref name="model"/>; returns the number hooked.</summary>
    public static int Attach(nn.Module model, Communicator comm)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(comm);
        int count = 0;
        foreach (var bn in model.modules().OfType<BatchNorm2d>())
        {
            var saved = new Tensor?[3];
            bn.register_forward_pre_hook((m, x) =>
            {
                if (bn.training && comm.Size > 1 && bn.running_mean is not null && bn.running_var is not null)
                {
                    using var noGrad = torch.no_grad();
                    saved[0]?.Dispose();
                    saved[1]?.Dispose();
                    saved[0] = bn.running_mean.detach().clone();
                    saved[1] = bn.running_var.detach().clone();
                }

                return x;
            });
            bn.register_forward_hook((m, x, local) => bn.training && comm.Size > 1 ? Forward(bn, x, local, comm, saved) : local);
            count++;
        }

        return count;
    }

    private static Tensor Forward(BatchNorm2d bn, Tensor x, Tensor local, Communicator comm, Tensor?[] saved)
    {
        long channels = x.shape[1];
        Span<long> count = stackalloc long[] { x.numel() / channels };
        comm.AllreduceSum(count);
        double n = count[0];
        if (n < 2)
        {
            throw new InvalidOperationException($"SyncBatchNorm needs more than one value per channel over all processes, got {n}.");
        }

        var dims = new long[] { 0, 2, 3 };
        var shape = new long[] { 1, channels, 1, 1 };
        var mean = AllreduceSumFunction.Apply(x.sum(dims), comm) / n;
        var centered = x - mean.view(shape);
        var variance = AllreduceSumFunction.Apply(centered.square().sum(dims), comm) / n;
        var y = centered * (variance + bn.eps).rsqrt().view(shape);
        if (bn.weight is not null && bn.bias is not null)
        {
            y = (y * bn.weight.view(shape)) + bn.bias.view(shape);
        }

        if (bn.running_mean is not null && bn.running_var is not null && saved[0] is not null && saved[1] is not null)
        {
            using var noGrad = torch.no_grad();
            double momentum = bn.momentum ?? (1.0 / Math.Max(1, bn.num_batches_tracked?.item<long>() ?? 1));
            bn.running_mean.copy_((saved[0]! * (1 - momentum)) + (mean.detach() * momentum));
            bn.running_var.copy_((saved[1]! * (1 - momentum)) + (variance.detach() * (n / (n - 1)) * momentum));
        }

        return y;
    }
}
