using System;
using System.Linq;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNetSharp.Cam;

/// <summary>
/// Where a ResNet finds the evidence for a class. <see cref="Cam"/>: Zhou et al. 2016, "Learning Deep Features for
/// Discriminative Localization": with global average pooling and one linear layer, the map of class c over the last
/// feature maps fₖ is M_c(x, y) = Σₖ w_c,k · fₖ(x, y), and the logit is exactly the spatial mean of M_c plus the
/// bias. <see cref="GradCam"/>: Selvaraju et al. 2017, "Grad-CAM": for any feature map,
/// αₖ = mean over (x, y) of ∂y_c / ∂fₖ(x, y) and the map is ReLU(Σₖ αₖ fₖ); at the last layer of a GAP + linear head it
/// equals ReLU(M_c) / (h·w).
/// </summary>
/// <remarks>
/// The input is one preprocessed image, 1 × C × H × W (e.g. <c>ImageTransform.ToTensor</c> in ResNetSharp.Images). The model is
/// run with eval semantics (it is switched to eval for the call and switched back), no parameter gradient is
/// accumulated, and every tensor is released before the call returns. Calls on one model must not overlap with
/// each other or with training (they switch its mode); ResNetSharp.OnnxRuntime's ImageClassifier.Explain serialises them.
/// </remarks>
internal static class ClassActivationMaps
{
    /// <summary>CAM over the last feature map (h × w: H/32 × W/32 for ImageNet tables); raw values, not normalised.</summary>
    /// <param name="model">The network (GAP + linear head, as every ResNet here).</param>
    /// <param name="image">1 × C × H × W, preprocessed.</param>
    /// <param name="classIndex">The class to explain; default the predicted one.</param>
    /// <exception cref="ArgumentException">The input is not one image the model accepts, or the class is out of range.</exception>
    public static ActivationMap Cam(ResNet model, Tensor image, int? classIndex = null)
    {
        CheckArguments(model, image, classIndex);
        return WithEval(model, () =>
        {
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            var features = model.ForwardFeatures(image);               // 1 × K × h × w
            var logits = model.ForwardHead(features);                  // 1 × classes
            int c = classIndex ?? (int)logits.argmax(1).item<long>();
            var weights = model.Classifier!.weight!.select(0, c);        // K
            var map = torch.einsum("k,khw->hw", weights, features[0]); // Σ_k w_c,k f_k(x, y)
            return ToMap(map, c, model.Stages.Count, logits[0, c].to(ScalarType.Float32).item<float>());
        });
    }

    /// <summary>The CAM of every class at once in float64 (classes × h × w), for checks: spatial mean + bias = logits.</summary>
    internal static Tensor CamAllClasses(ResNet model, Tensor features) =>
        torch.einsum("ck,nkhw->nchw", (model.Classifier ?? throw new ArgumentException("CAM needs a classifier; the model is headless.", nameof(model))).weight!.to(ScalarType.Float64), features.to(ScalarType.Float64));

    /// <summary>Grad-CAM on any feature map: ReLU(Σₖ αₖ fₖ) with αₖ the spatial mean of ∂y_c/∂fₖ.</summary>
    /// <param name="model">The network.</param>
    /// <param name="image">1 × C × H × W, preprocessed.</param>
    /// <param name="classIndex">The class to explain; default the predicted one.</param>
    /// <param name="layer">The feature map: 0 = stem (after its BN-ReLU, before the max pool), 1 … N = layer1 … layerN; −1 (default) = the last.</param>
    /// <exception cref="ArgumentException">Bad input, class or layer.</exception>
    public static ActivationMap GradCam(ResNet model, Tensor image, int? classIndex = null, int layer = -1)
    {
        CheckArguments(model, image, classIndex);
        int stages = model.Stages.Count;
        if (layer == -1)
        {
            layer = stages;
        }

        if (layer < 0 || layer > stages)
        {
            throw new ArgumentException($"Layer must be 0 (stem) … {stages} (layer{stages}) or -1 (the last), got {layer}.", nameof(layer));
        }

        return WithEval(model, () =>
        {
            using var scope = torch.NewDisposeScope();
            Tensor f;
            using (torch.no_grad())
            {
                f = model.ForwardFeatureMaps(image, layer)[0];
            }

            // A leaf from here on: autograd.grad gives ∂y_c/∂f without touching any parameter's .grad.
            using var grad = torch.enable_grad();
            f = f.detach().requires_grad_(true);
            Tensor y = f;
            if (layer == 0)
            {
                y = model.StemPool is { } pool ? pool.call(y) : y;
            }

            if (layer < stages)
            {
                y = model.FinishFeatures(model.RunStages(y, layer, stages)); // map `layer` is stage `layer`'s input
            }

            var logits = model.ForwardHead(y);
            int c = classIndex ?? (int)logits.argmax(1).item<long>();
            var score = logits[0, c];
            var gradient = torch.autograd.grad(new[] { score }, new[] { f })[0];         // 1 × K × h × w
            using (torch.no_grad())
            {
                var alpha = gradient.mean(new long[] { 2, 3 }, keepdim: true);         // 1 × K × 1 × 1
                var map = (alpha * f).sum(1)[0].relu();                                // h × w
                return ToMap(map, c, layer, score.to(ScalarType.Float32).item<float>());
            }
        });
    }

    private static ActivationMap ToMap(Tensor map, int classIndex, int layer, float logit)
    {
        var cpu = map.to(ScalarType.Float32).cpu().contiguous();
        return new ActivationMap((int)cpu.shape[1], (int)cpu.shape[0], cpu.data<float>().ToArray(), classIndex, layer, logit);
    }

    private static ActivationMap WithEval(ResNet model, Func<ActivationMap> body)
    {
        bool training = model.training;
        model.eval();
        try
        {
            return body();
        }
        finally
        {
            if (training)
            {
                model.train();
            }
        }
    }

    private static void CheckArguments(ResNet model, Tensor image, int? classIndex)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(image);
        if (model.IsHeadless)
        {
            throw new ArgumentException(
                $"{model.ModelName} is headless (no classifier): class activation maps explain a class, so give it a classifier first (ResetClassifier).",
                nameof(model));
        }

        model.CheckInput(image);
        if (image.shape[0] != 1)
        {
            throw new ArgumentException($"Class activation maps explain one image: expected 1×C×H×W, got [{string.Join(", ", image.shape)}].", nameof(image));
        }

        if (classIndex is { } c && (c < 0 || c >= model.NumClasses))
        {
            throw new ArgumentException($"Class {c} is out of range: the model has classes 0 … {model.NumClasses - 1}.", nameof(classIndex));
        }
    }
}
