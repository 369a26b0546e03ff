using System;
using System.CommandLine;
using System.IO;
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
    /// Turns the <c>--weights</c> value into a local file: an existing path as it is; a URL or a registered name through
    /// <see cref="WeightsSource.Resolve"/> (downloaded into the cache once, hash-checked, progress on stderr).
    /// </summary>
    public static ResolvedWeights ResolveWeights(string spec, string? sha256)
    {
        if (File.Exists(spec))
        {
            return WeightsSource.Resolve(spec, sha256);
        }

        // On Unix an absolute path also parses as a file URI: only a spelled-out scheme makes a URL.
        bool isUrl = spec.Contains("://", StringComparison.Ordinal) && Uri.TryCreate(spec, UriKind.Absolute, out var url) && url.Scheme is "https" or "http" or "file";
        if (!isUrl && !WeightsRegistry.TryGet(spec, out _))
        {
            throw new FileNotFoundException(
                $"Weight file '{spec}' does not exist (nor is it an http(s)/file URL or a registered weights name: see 'resnet pretrained list').", spec);
        }

        return WeightsSource.Resolve(spec, sha256, progress: new PretrainedCommand.LineProgress());
    }

    public static ImageClassifier Load(string? weights, string? model, int? classes, string? sha256 = null)
    {
        if (weights is null && model is null)
        {
            throw new ArgumentException("Give --weights FILE|NAME|URL (and --model NAME when the file carries no ResNetSharp metadata), or --model NAME.");
        }

        var resolved = weights is null ? null : ResolveWeights(weights, sha256);
        string? path = resolved?.Path;
        if (resolved?.Metadata is { } registered && model is null)
        {
            // Registered weights (torchvision's .pth files carry no metadata): the registry entry says what they are.
            var pretrained = registered.CreateModel();
            try
            {
                pretrained.LoadWeights(resolved.Path);
                pretrained.eval();
                return new ImageClassifier(pretrained, disposeModel: true);
            }
            catch
            {
                pretrained.Dispose();
                throw;
            }
        }

        if (path is not null && model is null)
        {
            return ImageClassifier.FromWeights(path);
        }

        var net = ResNetFactory.Create(model!, new ResNetOptions { NumClasses = classes });
        try
        {
            if (path is not null)
            {
                net.LoadWeights(path);
            }
            else
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
