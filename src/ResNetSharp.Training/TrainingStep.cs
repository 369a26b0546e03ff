using System;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResNetSharp.Training;

/// <summary>What one iteration logs: the batch's mean loss, its misclassified images and its size (global under data parallelism).</summary>
internal readonly record struct StepResult(double Loss, long Wrong, int Images);

/// <summary>
/// One training iteration: forward, loss, backward (gradients averaged over the ranks when data-parallel), optimizer
/// step. The scheduler and the bookkeeping stay with the caller.
/// </summary>
internal sealed class TrainingStep
{
    private readonly ResNet model;
    private readonly OptimizerHelper optimizer;
    private readonly Func<Tensor, Tensor, Tensor> loss;
    private readonly IDataParallel? dp;
    private readonly DataLoader loader;
    private readonly double[] sums = new double[3];

    internal TrainingStep(ResNet model, OptimizerHelper optimizer, Func<Tensor, Tensor, Tensor> loss, IDataParallel? dp, DataLoader loader)
    {
        this.model = model;
        this.optimizer = optimizer;
        this.loss = loss;
        this.dp = dp;
        this.loader = loader;
    }

    /// <summary>The largest learning rate over the optimizer's groups (what progress reports and metrics show).</summary>
    internal double LearningRate => optimizer.ParamGroups.Max(g => g.LearningRate);

    internal StepResult Run(Batch batch)
    {
        double value;
        long wrong;
        using (var scope = torch.NewDisposeScope())
        {
            optimizer.zero_grad();
            var logits = model.call(batch.Images);
            var lossTensor = loss(logits, batch.Labels);
            if (lossTensor.numel() != 1)
            {
                throw new InvalidOperationException($"TrainerOptions.Loss returned a tensor of shape [{string.Join(", ", lossTensor.shape)}]; expected a scalar (the batch mean).");
            }

            if (dp is null)
            {
                lossTensor.backward();
            }
            else
            {
                // The mean over this shard, weighted so that DDP's gradient mean (÷ world) is the global batch's mean loss
                // also when a short last batch splits unevenly (weight 1 when every shard has BatchSize images).
                (lossTensor * ((double)dp.WorldSize * batch.Size / loader.GlobalBatchCount(batch.Index))).backward();
                dp.AverageGradients();
            }

            optimizer.step();
            value = lossTensor.item<float>();
            using (torch.no_grad())
            {
                wrong = logits.argmax(1).ne(batch.Labels).sum().item<long>();
            }
        }

        if (dp is null)
        {
            return new StepResult(value, wrong, batch.Size);
        }

        // Every rank logs the global batch: loss and errors summed over the shards.
        sums[0] = value * batch.Size;
        sums[1] = wrong;
        sums[2] = batch.Size;
        dp.AllreduceSum(sums);
        int images = (int)sums[2];
        return new StepResult(sums[0] / images, (long)Math.Round(sums[1]), images);
    }
}
