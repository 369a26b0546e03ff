using System;
using System.Linq;
using ResNetSharp;
using ResNetSharp.Images;
using TorchSharp;

// Build ResNet-50 from the paper's stage table and ask it what it is.
using var model = ResNetFactory.ResNet50();
var summary = model.Summarize(inputSize: 224);
Console.WriteLine(summary.ToTable());

// Classify a batch of two (random) 224×224 RGB images.
model.eval();
using (torch.no_grad())
{
    using var images = torch.randn(2, 3, 224, 224);
    using var logits = model.call(images);
    using var probabilities = logits.softmax(1);
    using var top = probabilities.argmax(1);
    Console.WriteLine($"logits {string.Join("×", logits.shape)}, top-1 classes: {string.Join(", ", top.data<long>().ToArray())}");

    // The same network optimised for inference: BatchNorm folded into the convs, oneDNN's layout where it runs.
    using var fast = model.ForInference();
    using var fastLogits = fast.call(images);
    using var difference = (fastLogits - logits).abs().max();
    Console.WriteLine($"ForInference ({fast.LayoutFor(images.shape[0])} layout): largest difference {difference.item<float>():G3}");
}

// Images in, answers out: a PNG (made here, so the program needs no files) through SkiaSharp's decoder,
// torchvision's exact eval transform, the inference path and softmax; plain managed results, nothing to dispose.
{
    using var cifar = ResNetFactory.ResNet20();
    cifar.eval();
    var pixels = new byte[40 * 30 * 3];
    new Random(1).NextBytes(pixels);
    byte[] png = ImageEncoder.EncodePng(new PixelImage(40, 30, 3, pixels));
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
