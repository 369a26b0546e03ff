using System;
using System.CommandLine;
using System.Diagnostics;
using System.Linq;
using TorchSharp;

namespace ResNetSharp.Cli.Commands;

internal static class ForwardCommand
{
    public static Command Create()
    {
        var name = new Argument<string>("name") { Description = "A registered model name (see 'resnet list')." };
        var batch = new Option<int>("--batch") { Description = "Images per batch.", DefaultValueFactory = _ => 1 };
        var input = new Option<int>("--input") { Description = "Input height and width.", DefaultValueFactory = _ => 224 };
        var device = new Option<string>("--device") { Description = "auto, cpu, cuda or cuda:N.", DefaultValueFactory = _ => "auto" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var command = new Command("forward", "Run and time one eval-mode forward pass on random input.") { name, batch, input, device, json };
        command.SetAction(parse => Cli.Guard(() =>
        {
            int n = parse.GetValue(batch);
            int size = parse.GetValue(input);
            if (n < 1)
            {
                throw new ArgumentException($"--batch must be ≥ 1, got {n}.");
            }

            var dev = TorchDevices.Resolve(parse.GetValue(device));
            using var model = ResNetFactory.Create(parse.GetValue(name)!, new ResNetOptions { Device = dev });
            model.eval();
            using var noGrad = torch.no_grad();
            using var x = torch.randn(new long[] { n, model.Options.InChannels, size, size }, device: dev);
            var watch = Stopwatch.StartNew();
            using var logits = model.call(x);
            if (dev.type == DeviceType.CUDA)
            {
                torch.cuda.synchronize();
            }

            watch.Stop();
            double ms = watch.Elapsed.TotalMilliseconds;
            if (parse.GetValue(json))
            {
                Cli.WriteJson(new { name = model.ModelName, device = dev.ToString(), batch = n, inputSize = size, outputShape = logits.shape, milliseconds = ms, imagesPerSecond = n / (ms / 1000) });
            }
            else
            {
                Console.WriteLine($"{model.ModelName} on {dev}: input {n}×{model.Options.InChannels}×{size}×{size} -> logits {string.Join("×", logits.shape)} in {ms:F1} ms ({n / (ms / 1000):F1} images/s, first pass, includes warm-up)");
            }

            return 0;
        }));
        return command;
    }
}
