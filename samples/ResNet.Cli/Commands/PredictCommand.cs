using System;
using System.CommandLine;
using System.Linq;
using ResNetSharp.Cam;
using ResNetSharp.Images;
using ResNetSharp.OnnxRuntime;

namespace ResNetSharp.Cli.Commands;

/// <summary>
/// <c>resnet predict IMAGE… (--weights FILE | --model NAME) [--top K] [--json] [--cam out.png]</c>: classify images with the
/// exact torchvision preprocessing the weights' metadata describes.
/// </summary>
internal static class PredictCommand
{
    public static Command Create()
    {
        var images = new Argument<string[]>("images") { Description = "Image files (PNG, JPEG, WebP, BMP, GIF).", Arity = ArgumentArity.OneOrMore };
        var weights = ClassifierLoading.WeightsOption();
        var model = ClassifierLoading.ModelOption();
        var classes = ClassifierLoading.ClassesOption();
        var sha256 = ClassifierLoading.Sha256Option();
        var top = new Option<int>("--top") { Description = "Classes shown per image.", DefaultValueFactory = _ => 5 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var cam = new Option<string?>("--cam") { Description = "Also write a CAM heat-map overlay of the top class to this PNG (one image only)." };
        var command = new Command("predict", "Classify images: decode, torchvision's eval transform, the fast inference path, top-k.")
        {
            images, weights, sha256, model, classes, top, json, cam,
        };
        command.SetAction(parse => Cli.Guard(() =>
        {
            var paths = parse.GetValue(images)!;
            int k = parse.GetValue(top);
            if (k < 1)
            {
                throw new ArgumentException($"--top must be ≥ 1, got {k}.");
            }

            string? camPath = parse.GetValue(cam);
            if (camPath is not null && paths.Length != 1)
            {
                throw new ArgumentException($"--cam writes one overlay: give one image, not {paths.Length}.");
            }

            using var classifier = ClassifierLoading.Load(parse.GetValue(weights), parse.GetValue(model), parse.GetValue(classes), parse.GetValue(sha256));
            var predictions = classifier.ClassifyMany(paths, k);
            if (camPath is not null)
            {
                var image = classifier.Decode(paths[0]);
                var map = classifier.Explain(image, predictions[0].Best.Index);
                HeatmapOverlay.WritePng(camPath, image, map, classifier.Transform.Geometry(image.Width, image.Height));
            }

            if (parse.GetValue(json))
            {
                Cli.WriteJson(new
                {
                    model = classifier.Metadata.Architecture ?? classifier.Model.ModelName,
                    classes = classifier.NumClasses,
                    inputSize = classifier.Transform.InputSize,
                    resizeSize = classifier.Transform.ResizeSize,
                    interpolation = classifier.Transform.Interpolation.ToString().ToLowerInvariant(),
                    predictions = paths.Zip(predictions, (p, r) => new
                    {
                        image = p,
                        top = r.Top.Select(t => new { index = t.Index, label = t.Label, probability = t.Probability, logit = t.Logit }),
                    }),
                    cam = camPath,
                });
            }
            else
            {
                for (int i = 0; i < paths.Length; i++)
                {
                    Console.WriteLine(paths[i]);
                    int width = Math.Max(5, predictions[i].Top.Max(t => t.Label.Length));
                    foreach (var t in predictions[i].Top)
                    {
                        Console.WriteLine($"  {t.Index,5}  {t.Label.PadRight(width)}  {t.Probability,8:P2}  logit {t.Logit,8:F3}");
                    }
                }

                if (camPath is not null)
                {
                    Console.WriteLine($"CAM of '{predictions[0].Best.Label}' written to {camPath}");
                }
            }

            return 0;
        }));
        return command;
    }
}

/// <summary>How the image commands get their classifier: one place to resolve <c>--weights</c>.</summary>
internal static class ClassifierLoading
{
    public static Option<string?> WeightsOption() => new("--weights")
    {
        Description = "Weights: a safetensors file saved by ResNetSharp (architecture, preprocessing and class names come with it), " +
                      "any safetensors/.pth/TorchSharp file together with --model, a registered name (see 'resnet pretrained list', e.g. " +
                      "resnet50.imagenet1k_v2), or an http(s)/file URL with --sha256; names and URLs are downloaded into the cache once.",
    };

    public static Option<string?> Sha256Option() => new("--sha256") { Description = "SHA-256 of the --weights URL (full, or at least its first 8 hex digits)." };

    public static Option<string?> ModelOption() => new("--model")
    {
        Description = "Registered model name (see 'resnet list'): for weight files without ResNetSharp metadata, or alone for untrained weights.",
    };

    public static Option<int?> ClassesOption() => new("--classes") { Description = "Classifier outputs with --model (default: the model's)." };

    /// <summary>
    /// The classifier --weights and --model name, built by <see cref="ResNetFactory.Load"/> (a file, URL or registered weights
    /// name; --model for files without metadata, or alone for untrained weights). Downloads report progress on stderr.
    /// </summary>
    public static ImageClassifier Load(string? weights, string? model, int? classes, string? sha256 = null)
    {
        if (weights is null && model is null)
        {
            throw new ArgumentException("Give --weights FILE|NAME|URL (and --model NAME when the file carries no ResNetSharp metadata), or --model NAME.");
        }

        if (model is null && classes is not null)
        {
            throw new ArgumentException($"--classes {classes} applies with --model NAME; the weights '{weights}' describe their own classifier.");
        }

        var net = ResNetFactory.Load(weights, model, classes is null ? null : new ResNetOptions { NumClasses = classes }, sha256: sha256,
            progress: new PretrainedCommand.LineProgress());
        try
        {
            if (weights is null)
            {
                Console.Error.WriteLine($"resnet: warning: no --weights: {model} has untrained (random) weights.");
            }

            net.eval();
            return new ImageClassifier(net, disposeModel: true);
        }
        catch
        {
            net.Dispose();
            throw;
        }
    }
}
