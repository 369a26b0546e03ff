using System;
using System.IO;
using System.Linq;
using Microsoft.ML.OnnxRuntime;
using DenseTensor = Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>;
using TorchSharp;
using Tensor = TorchSharp.torch.Tensor;

namespace ResNetSharp.Tests.Onnx;

/// <summary>The ONNX fixtures (tools/make_onnx_fixtures.py) and ONNX Runtime, the second independent peer.</summary>
internal static class OnnxTestSupport
{
    public static string Directory
    {
        get
        {
            string? fromEnv = Environment.GetEnvironmentVariable("RESNETSHARP_ONNX_FIXTURES");
            return !string.IsNullOrEmpty(fromEnv) ? fromEnv : Path.Combine(Fixtures.Directory, "onnx");
        }
    }

    /// <summary>Full path of an ONNX fixture; throws with the command that makes it when it is missing.</summary>
    public static string File_(string fileName)
    {
        string path = Path.Combine(Directory, fileName);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException(
                $"ONNX fixture '{path}' is missing. It is written by PyTorch: run 'bash scripts/test.sh', or " +
                "'/usr/bin/python3 tools/make_onnx_fixtures.py .fixtures/onnx' from the repository root (or set RESNETSHARP_ONNX_FIXTURES).", path);
        }

        return path;
    }

    /// <summary>Runs an ONNX file on one input with ONNX Runtime (CPU, one thread) and returns its first output.</summary>
    public static Tensor RunOnnxRuntime(string path, Tensor input)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1 };
        using var session = new InferenceSession(path, options);
        string inputName = session.InputMetadata.Keys.First();
        var data = input.contiguous().data<float>().ToArray();
        var dense = new DenseTensor(data, input.shape.Select(d => (int)d).ToArray());
        using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor(inputName, dense) });
        var output = results[0].AsTensor<float>();
        return torch.tensor(output.ToArray(), output.Dimensions.ToArray().Select(d => (long)d).ToArray());
    }

    /// <summary>max |a − b| / max |b|.</summary>
    public static double RelativeError(Tensor actual, Tensor expected)
    {
        using var scope = torch.NewDisposeScope();
        double scale = Math.Max(expected.abs().max().item<float>(), 1e-12);
        return (actual.reshape(expected.shape) - expected).abs().max().item<float>() / scale;
    }
}
