using System;
using System.Diagnostics;
using System.Linq;
using ResNetSharp;
using ResNetSharp.Images;
using ResNetSharp.Introspection;
using ResNetSharp.OnnxRuntime;
using ResNetSharp.Training;
using TorchSharp;

// Build ResNet-50 from the paper's stage table and ask it what it is.
using var model = ResNetFactory.ResNet50();
var summary = model.Summarize(inputSize: 224);
Console.WriteLine($"resnet50: {summary.LayerFormula} layers, {summary.Parameters:N0} parameters, {ModelSummary.FormatMacs(summary.MultiplyAdds)} multiply-adds at 224²");

// Classify a batch of two (random) 224×224 RGB images, plain and on ONNX Runtime (BN folded, all graph optimisations).
model.eval();
using (torch.no_grad())
{
    using var images = torch.randn(2, 3, 224, 224);
    using var logits = model.call(images);
    using var fast = model.ForInference();
    using var fastLogits = fast.Forward(images);
    using var difference = (fastLogits - logits).abs().max();
    Console.WriteLine($"logits {string.Join("×", logits.shape)}; ForInference ({fast.ExecutionProvider}) differs by {difference.item<float>():G3}");
}

// Learn from real data: the paper's CIFAR ResNet-20 (one input channel) on Fashion-MNIST, a short run.
// QUICKSTART_TRAIN_IMAGES sets the budget (default 10,000 images × 2 epochs, one to two minutes on 2 cores; 0 skips).
int budget = int.TryParse(Environment.GetEnvironmentVariable("QUICKSTART_TRAIN_IMAGES"), out int b) ? b : 10_000;
if (budget > 0 && FashionMnist.IsAvailable())
{
    var train = FashionMnist.Train().Take(budget);
    var test = FashionMnist.Test().Take(Math.Max(100, Math.Min(2_000, budget / 5)));
    torch.manual_seed(0);
    using var net = ResNetFactory.Create("resnet20", new ResNetOptions { InChannels = 1, NumClasses = 10 });
    var trainer = new Trainer(net, train, test, new TrainerOptions
    {
        Epochs = 2,
        Sgd = new SgdOptions { LearningRate = 0.2, WeightDecay = 5e-4, Nesterov = true },
        Schedule = LearningRateSchedule.OneCycle(),
    });
    Console.WriteLine($"training resnet20 on {train.Count:N0} Fashion-MNIST images for 2 epochs (pad-crop + flip, SGD, one-cycle)…");
    var result = trainer.Fit(new ConsoleProgress());
    var last = result.History[^1];
    Console.WriteLine($"test top-1 {100 * last.TestTop1:F1} % on {test.Count:N0} test images (10 classes: chance is 10 %), training error {100 * last.TrainError:F1} %");
}
else if (budget > 0)
{
    Console.WriteLine("Fashion-MNIST not found: apt-get install dataset-fashion-mnist to see ResNet-20 learn it here.");
}

// Images in, answers out: a PNG (made here, so the program needs no files) through SkiaSharp's decoder,
// torchvision's exact eval transform, the inference path and softmax; plain managed results, nothing to dispose.
{
    using var cifar = ResNetFactory.ResNet20();
    cifar.eval();
    var pixels = new byte[40 * 30 * 3];
    new Random(1).NextBytes(pixels);
    byte[] png = new PixelImage(40, 30, 3, pixels).EncodePng();
    using var classifier = new ImageClassifier(cifar);
    var prediction = classifier.Classify(png, topK: 3);
    Console.WriteLine($"image classifier: {png.Length} PNG bytes -> {classifier.Transform.InputSize}² input -> top-3 classes " +
                      string.Join(", ", prediction.Top.Select(t => $"{t.Label} ({t.Probability:P1})")));
}

// Every registered model, built from its row of the table.
foreach (var name in ResNetFactory.Names)
{
    using var m = ResNetFactory.Create(name);
    var s = m.Summarize(m.Table.Stem == StemKind.Cifar ? 32 : 224);
    Console.WriteLine($"{name,-18} depth {s.LayerFormula,-18} {s.Parameters,12:N0} params  {ModelSummary.FormatMacs(s.MultiplyAdds),-10} mult-adds at {s.InputSize}²");
}

/// <summary>One line per 20 iterations and one per epoch (a console app would draw a bar; this sample stays dependency-free).</summary>
internal sealed class ConsoleProgress : IProgress<TrainingProgress>
{
    private readonly Stopwatch watch = Stopwatch.StartNew();

    public void Report(TrainingProgress p)
    {
        if (p.EpochCompleted is { } m)
        {
            Console.WriteLine($"  epoch {m.Epoch}/{p.Epochs}: train loss {m.TrainLoss:F3}, train error {100 * m.TrainError:F1} %, test top-1 {100 * m.TestTop1:F1} % ({m.Seconds:F0} s)");
        }
        else if (p.Step % 20 == 0)
        {
            Console.WriteLine($"  epoch {p.Epoch}/{p.Epochs} step {p.Step}/{p.StepsPerEpoch}: loss {p.Loss:F3}, {p.ImagesPerSecond:F0} images/s, ETA {p.Eta:m\\:ss} ({watch.Elapsed:m\\:ss} so far)");
        }
    }
}
