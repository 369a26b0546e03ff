using System;
using System.CommandLine;
using System.Linq;
using ResNetSharp.Cam;
using ResNetSharp.Images;
using ResNetSharp.OnnxRuntime;

namespace ResNetSharp.Cli.Commands;

/// <summary><c>resnet cam IMAGE --weights FILE [--class C] [--layer N] [--method cam|gradcam] --out out.png [--json]</c>.</summary>
internal static class CamCommand
{
    public static Command Create()
    {
        var image = new Argument<string>("image") { Description = "The image to explain." };
        var weights = ClassifierLoading.WeightsOption();
        var model = ClassifierLoading.ModelOption();
        var classes = ClassifierLoading.ClassesOption();
        var sha256 = ClassifierLoading.Sha256Option();
        var cls = new Option<string?>("--class") { Description = "Class to explain: a class name or an index (default: the predicted class)." };
        var layer = new Option<int?>("--layer") { Description = "Feature map for Grad-CAM: 0 = stem, 1 … N = layer1 … layerN (implies --method gradcam)." };
        var method = new Option<string?>("--method") { Description = "cam (last layer, Zhou et al. 2016) or gradcam (any layer, Selvaraju et al. 2017). Default cam, or gradcam with --layer." };
        var output = new Option<string>("--out") { Description = "The PNG overlay to write (atomically).", Required = true };
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var command = new Command("cam", "Write a class activation map (CAM or Grad-CAM) of an image as a heat-map overlay PNG.")
        {
            image, weights, sha256, model, classes, cls, layer, method, output, json,
        };
        command.SetAction(parse => Cli.Guard(() =>
        {
            int? layerIndex = parse.GetValue(layer);
            bool gradCam = parse.GetValue(method)?.Trim().ToLowerInvariant() switch
            {
                null => layerIndex is not null,
                "cam" => false,
                "gradcam" or "grad-cam" => true,
                var other => throw new ArgumentException($"Unknown --method '{other}': expected cam or gradcam."),
            };
            if (!gradCam && layerIndex is not null)
            {
                throw new ArgumentException("CAM uses the last feature map; --layer needs --method gradcam.");
            }

            using var classifier = ClassifierLoading.Load(parse.GetValue(weights), parse.GetValue(model), parse.GetValue(classes), parse.GetValue(sha256));
            string path = parse.GetValue(image)!;
            var decoded = classifier.Decode(path);
            int? classIndex = parse.GetValue(cls) is { } c ? classifier.ClassIndex(c) : null;
            var prediction = classifier.Classify(decoded, topK: 1);
            var map = gradCam
                ? classifier.ExplainGradCam(decoded, classIndex ?? prediction.Best.Index, layerIndex ?? -1)
                : classifier.Explain(decoded, classIndex ?? prediction.Best.Index);
            string outPath = parse.GetValue(output)!;
            HeatmapOverlay.WritePng(outPath, decoded, map, classifier.Transform.Geometry(decoded.Width, decoded.Height));
            var (px, py) = map.Peak;
            if (parse.GetValue(json))
            {
                Cli.WriteJson(new
                {
                    image = path,
                    method = gradCam ? "gradcam" : "cam",
                    layer = map.Layer,
                    classIndex = map.ClassIndex,
                    label = classifier.Label(map.ClassIndex),
                    logit = map.Logit,
                    predicted = new { index = prediction.Best.Index, label = prediction.Best.Label, probability = prediction.Best.Probability },
                    mapSize = new[] { map.Height, map.Width },
                    peak = new { x = px, y = py },
                    output = outPath,
                });
            }
            else
            {
                Console.WriteLine($"{(gradCam ? "Grad-CAM" : "CAM")} of '{classifier.Label(map.ClassIndex)}' (logit {map.Logit:F3}; predicted " +
                                  $"'{prediction.Best.Label}' {prediction.Best.Probability:P1}) on layer {map.Layer}, {map.Width}×{map.Height}, peak at ({px}, {py}) -> {outPath}");
            }

            return 0;
        }));
        return command;
    }
}
