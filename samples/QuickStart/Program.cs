using System;
using ResNetSharp;
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

// Every registered model, built from its row of the table.
foreach (var name in ResNetFactory.Names)
{
    using var m = ResNetFactory.Create(name);
    var s = m.Summarize(m.Table.Stem == StemKind.Cifar ? 32 : 224);
    Console.WriteLine($"{name,-18} depth {s.LayerFormula,-18} {s.Parameters,12:N0} params  {ModelSummary.FormatMacs(s.MultiplyAdds),-10} mult-adds at {s.InputSize}²");
}
