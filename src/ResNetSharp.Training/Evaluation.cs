using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNetSharp.Training;

/// <summary>A model's accuracy on a dataset: top-1, top-5, mean cross-entropy, per-class accuracy and the confusion matrix.</summary>
public sealed record EvaluationResult
{
    /// <summary>Images evaluated.</summary>
    public required int Count { get; init; }

    /// <summary>Mean cross-entropy (no label smoothing).</summary>
    public required double Loss { get; init; }

    /// <summary>Fraction whose top-scoring class is the label.</summary>
    public required double Top1 { get; init; }

    /// <summary>Fraction whose label is among the five top-scoring classes (1 when there are five classes or fewer).</summary>
    public required double Top5 { get; init; }

    /// <summary>Class names, in label order.</summary>
    public required IReadOnlyList<string> ClassNames { get; init; }

    /// <summary><c>Confusion[t][p]</c>: images of true class t predicted as p.</summary>
    public required IReadOnlyList<IReadOnlyList<int>> Confusion { get; init; }

    /// <summary>Accuracy of each class (recall): diagonal over row sum; NaN for a class with no images.</summary>
    public IReadOnlyList<double> PerClassAccuracy =>
        Confusion.Select((row, t) => row.Sum() is var n && n > 0 ? (double)row[t] / n : double.NaN).ToArray();
}

/// <summary>Evaluates a classifier on a dataset (eval mode, no gradients); public as <see cref="Trainer.Evaluate"/>.</summary>
internal static class Evaluator
{
    /// <summary>Runs <paramref name="model"/> over <paramref name="dataset"/> in order and scores it.</summary>
    /// <param name="model">The classifier; put in eval mode during the call and restored afterwards.</param>
    /// <param name="dataset">The test images.</param>
    /// <param name="transform">Applied to each batch before the model (usually <see cref="Transforms.Normalize"/> with the training mean/std); null feeds the pixels as stored.</param>
    /// <param name="batchSize">Images per forward pass (≥ 1).</param>
    /// <param name="cancellationToken">Stops between batches with <see cref="OperationCanceledException"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batchSize"/> is below 1.</exception>
    /// <exception cref="ArgumentException">The model is a headless <see cref="ResNet"/> (no classifier).</exception>
    public static EvaluationResult Evaluate(nn.Module<Tensor, Tensor> model, ImageDataset dataset, IBatchTransform? transform = null, int batchSize = 256,
                                            CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        if (model is ResNet { IsHeadless: true } headless)
        {
            throw new ArgumentException(
                $"The model '{headless.ModelName}' is headless (no classifier): its outputs are features, not scores of {dataset.Name}'s classes.", nameof(model));
        }

        var loader = new DataLoader(dataset, new DataLoaderOptions { BatchSize = batchSize, Shuffle = false, Transform = transform, Prefetch = 0 });
        return Evaluate(model, loader, cancellationToken);
    }

    /// <summary>Runs <paramref name="model"/> over every batch of <paramref name="loader"/> and scores it.</summary>
    /// <param name="model">The classifier; put in eval mode during the call and restored afterwards.</param>
    /// <param name="loader">The data (usually unshuffled, with only the normalisation as transform).</param>
    /// <param name="cancellationToken">Stops between batches with <see cref="OperationCanceledException"/>.</param>
    internal static EvaluationResult Evaluate(nn.Module<Tensor, Tensor> model, DataLoader loader, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(loader);
        int classes = loader.Dataset.ClassNames.Count;
        var confusion = new int[classes, classes];
        double lossSum = 0;
        long top5 = 0, count = 0;
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var noGrad = torch.no_grad();
            foreach (var batch in loader.GetBatches(0, 0, cancellationToken))
            {
                using (batch)
                using (var scope = torch.NewDisposeScope())
                {
                    var logits = model.call(batch.Images);
                    if (logits.shape[1] != classes)
                    {
                        throw new ArgumentException($"The model has {logits.shape[1]} outputs, {loader.Dataset.Name} has {classes} classes.", nameof(model));
                    }

                    lossSum += nn.functional.cross_entropy(logits, batch.Labels, reduction: nn.Reduction.Sum).item<float>();
                    int k = Math.Min(5, classes);
                    var topk = logits.topk(k, dim: 1).indexes;
                    top5 += topk.eq(batch.Labels.unsqueeze(1)).any(1).sum().item<long>();
                    var predicted = logits.argmax(1).data<long>().ToArray();
                    var labels = batch.Labels.data<long>().ToArray();
                    for (int i = 0; i < labels.Length; i++)
                    {
                        confusion[labels[i], predicted[i]]++;
                    }

                    count += labels.Length;
                }
            }
        }
        finally
        {
            model.train(wasTraining);
        }

        long correct = Enumerable.Range(0, classes).Sum(c => (long)confusion[c, c]);
        return new EvaluationResult
        {
            Count = (int)count,
            Loss = lossSum / count,
            Top1 = (double)correct / count,
            Top5 = (double)top5 / count,
            ClassNames = loader.Dataset.ClassNames,
            Confusion = Enumerable.Range(0, classes).Select(t => (IReadOnlyList<int>)Enumerable.Range(0, classes).Select(p => confusion[t, p]).ToArray()).ToArray(),
        };
    }
}
