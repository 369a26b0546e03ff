using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;
using ResNetSharp.Onnx.Proto;
using TorchSharp;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace ResNetSharp.OnnxRuntime;

/// <summary>
/// A <see cref="ResNet"/> running on ONNX Runtime (made by <see cref="InferenceExtensions.ForInference"/>): the network's
/// lowered graph (every BatchNorm folded into its convolution, eval semantics) written as an in-memory ONNX model and
/// run in an <see cref="InferenceSession"/> with all graph optimisations on. Any batch and any input size of at least
/// <see cref="MinInputSize"/> (dynamic axes). The copy owns its weights: later changes to the source model do not
/// reach it.
/// </summary>
/// <remarks>
/// <para><b>Thread safety.</b> Every forward method may be called from any number of threads at once (ONNX Runtime
/// sessions run concurrently); <see cref="Dispose"/> must not race with calls in flight.</para>
/// <para><b>Memory.</b> Tensors returned are the caller's to dispose; nothing else outlives a call.</para>
/// </remarks>
public sealed class OnnxRuntimeResNet : IDisposable
{
    private const string InputName = "input";
    private readonly string outputName;
    private readonly InferenceSession head;
    private readonly string featuresName;
    private readonly InferenceSession? maps;
    private readonly string[] mapNames;
    private bool disposed;

    internal OnnxRuntimeResNet(ResNet source, InferenceOptions options)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        if (options.IntraOpThreads < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.IntraOpThreads, "InferenceOptions.IntraOpThreads must be 0 (ONNX Runtime's choice) or positive.");
        }

        if (!Enum.IsDefined(options.Precision))
        {
            throw new ArgumentOutOfRangeException(nameof(options), "InferenceOptions: unknown Precision.");
        }

        Options = options;
        ModelName = source.ModelName;
        InChannels = source.Options.InChannels;
        MinInputSize = source.MinInputSize;
        NumClasses = source.NumClasses;
        FeatureChannels = source.FeatureChannels;

        // The model's own output: logits, or for a headless model its pooled features (then both names are that output).
        var logits = OnnxExport.ToModelProto(source, new OnnxExportOptions());
        outputName = logits.Graph.Output.Single().Name;
        featuresName = source.IsHeadless ? outputName : AddPooledOutput(logits);
        ModelProto? mapsProto = options.FeatureMaps ? OnnxExport.ToModelProto(source, new OnnxExportOptions { Output = OnnxOutput.FeatureMaps }) : null;
        mapNames = mapsProto?.Graph.Output.Select(o => o.Name).ToArray() ?? Array.Empty<string>();
        if (options.Precision == InferencePrecision.Int8)
        {
            var calibration = options.Calibration ?? throw new ArgumentException(
                "InferenceOptions.Precision is Int8 but Calibration is null: int8 activation ranges need calibration images (Calibration.FromImages or FromTensor).",
                nameof(options));
            logits = Quantizer.Quantize(logits, calibration, options);
            if (mapsProto is not null)
            {
                mapsProto = Quantizer.Quantize(mapsProto, calibration, options);
            }
        }

        var created = Sessions.Create(logits.ToByteArray(), options);
        head = created.Session;
        ExecutionProvider = created.Provider;
        try
        {
            maps = mapsProto is null ? null : Sessions.Create(mapsProto.ToByteArray(), options).Session;
        }
        catch
        {
            head.Dispose();
            throw;
        }
    }

    /// <summary>The options it was built with.</summary>
    public InferenceOptions Options { get; }

    /// <summary>The execution provider the session runs on: <c>CUDAExecutionProvider</c> or <c>CPUExecutionProvider</c>.</summary>
    public string ExecutionProvider { get; }

    /// <summary>The source model's name.</summary>
    public string ModelName { get; }

    /// <summary>Input channels expected.</summary>
    public int InChannels { get; }

    /// <summary>Smallest input height/width accepted (the output stride).</summary>
    public int MinInputSize { get; }

    /// <summary>Outputs of the classifier; 0 for a headless model, whose <see cref="Forward(Tensor)"/> returns the pooled features.</summary>
    public int NumClasses { get; }

    /// <summary>Channels of the pooled features (and of the last feature map).</summary>
    public long FeatureChannels { get; }

    /// <summary>The logits, N × <see cref="NumClasses"/> (a headless model's pooled features, N × <see cref="FeatureChannels"/>), float32 on the input's device.</summary>
    /// <param name="input">float32 N × <see cref="InChannels"/> × H × W, H and W at least <see cref="MinInputSize"/>, on any device.</param>
    /// <exception cref="ArgumentException">The input is not such a tensor.</exception>
    public Tensor Forward(Tensor input) => RunTensor(input, head, outputName);

    /// <summary>The globally pooled features before the classifier, N × <see cref="FeatureChannels"/>, float32 on the input's device.</summary>
    /// <param name="input">float32 N × <see cref="InChannels"/> × H × W, H and W at least <see cref="MinInputSize"/>.</param>
    /// <exception cref="ArgumentException">The input is not such a tensor.</exception>
    public Tensor ForwardFeatures(Tensor input) => RunTensor(input, head, featuresName);

    /// <summary>
    /// The logits of a batch given as plain floats (N × C × H × W, row-major, normalised as the model expects): no
    /// TorchSharp tensor is made.
    /// </summary>
    /// <param name="input">batch·<see cref="InChannels"/>·height·width floats.</param>
    /// <param name="batch">Images in the batch.</param>
    /// <param name="height">Image height, at least <see cref="MinInputSize"/>.</param>
    /// <param name="width">Image width, at least <see cref="MinInputSize"/>.</param>
    /// <returns>batch·<see cref="NumClasses"/> logits, row-major.</returns>
    /// <exception cref="ArgumentException">The sizes do not describe a batch the network accepts or the span's length does not match them.</exception>
    public float[] Forward(ReadOnlySpan<float> input, int batch, int height, int width) =>
        RunSpan(input, batch, height, width, featuresOnly: false);

    /// <summary>The pooled features of a batch given as plain floats (see <see cref="Forward(ReadOnlySpan{float}, int, int, int)"/>).</summary>
    /// <param name="input">batch·<see cref="InChannels"/>·height·width floats.</param>
    /// <param name="batch">Images in the batch.</param>
    /// <param name="height">Image height, at least <see cref="MinInputSize"/>.</param>
    /// <param name="width">Image width, at least <see cref="MinInputSize"/>.</param>
    /// <returns>batch·<see cref="FeatureChannels"/> floats, row-major.</returns>
    /// <exception cref="ArgumentException">The sizes do not describe a batch the network accepts or the span's length does not match them.</exception>
    public float[] ForwardFeatures(ReadOnlySpan<float> input, int batch, int height, int width) =>
        RunSpan(input, batch, height, width, featuresOnly: true);

    /// <summary>
    /// The feature map of every stage (<c>C2</c> … <c>C5</c> for four stages; see <see cref="ResNet.FeatureInfo"/>),
    /// float32 on the input's device. Needs <see cref="InferenceOptions.FeatureMaps"/>.
    /// </summary>
    /// <param name="input">float32 N × <see cref="InChannels"/> × H × W, H and W at least <see cref="MinInputSize"/>.</param>
    /// <exception cref="ArgumentException">The input is not such a tensor.</exception>
    /// <exception cref="InvalidOperationException">It was built without <see cref="InferenceOptions.FeatureMaps"/>.</exception>
    public IReadOnlyList<Tensor> ForwardFeatureMaps(Tensor input)
    {
        var session = maps ?? throw new InvalidOperationException(
            $"{ModelName}: feature maps need ForInference(new InferenceOptions {{ FeatureMaps = true }}).");
        return RunTensors(input, session, mapNames);
    }

    /// <summary>Releases the ONNX Runtime sessions.</summary>
    public void Dispose()
    {
        if (disposed)
        {
            return;
        }

        disposed = true;
        head.Dispose();
        maps?.Dispose();
    }

    private Tensor RunTensor(Tensor input, InferenceSession session, string output) => RunTensors(input, session, new[] { output })[0];

    private Tensor[] RunTensors(Tensor input, InferenceSession session, string[] outputs)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        CheckInput(input);
        var device = input.device;
        using var scope = torch.NewDisposeScope();
        var cpu = input.device_type == DeviceType.CPU ? input.contiguous() : input.cpu().contiguous();
        var shape = input.shape;
        var results = Run(session, MemoryMarshal.Cast<byte, float>(cpu.bytes), shape, outputs, (value, _) =>
        {
            var span = value.GetTensorDataAsSpan<float>();
            var t = torch.empty(value.GetTensorTypeAndShape().Shape, ScalarType.Float32);
            MemoryMarshal.AsBytes(span).CopyTo(t.bytes);
            return device.type == DeviceType.CPU ? t : t.to(device);
        });
        foreach (var t in results)
        {
            t.MoveToOuterDisposeScope();
        }

        return results;
    }

    private float[] RunSpan(ReadOnlySpan<float> input, int batch, int height, int width, bool featuresOnly)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        CheckSize(batch, height, width);
        long expected = (long)batch * InChannels * height * width;
        if (input.Length != expected)
        {
            throw new ArgumentException(
                $"{ModelName}: {batch}×{InChannels}×{height}×{width} needs {expected:N0} floats, got {input.Length:N0}.", nameof(input));
        }

        string output = featuresOnly ? featuresName : outputName;
        return Run(head, input, new long[] { batch, InChannels, height, width }, new[] { output },
            (value, _) => value.GetTensorDataAsSpan<float>().ToArray())[0];
    }

    /// <summary>Runs the session on <paramref name="input"/> (not copied) and converts each requested output while ONNX Runtime still owns it.</summary>
    private T[] Run<T>(InferenceSession session, ReadOnlySpan<float> input, long[] shape, string[] outputs, Func<OrtValue, int, T> convert)
    {
        if (shape[0] == 0)
        {
            throw new ArgumentException($"{ModelName}: the batch is empty; expected at least one image.", nameof(input));
        }

        unsafe
        {
            fixed (float* data = input)
            {
                using var value = OrtValue.CreateTensorValueWithData(
                    OrtMemoryInfo.DefaultInstance, TensorElementType.Float, shape, (IntPtr)data, (long)input.Length * sizeof(float));
                using var run = new RunOptions();
                using var results = session.Run(run, new[] { InputName }, new[] { value }, outputs);
                var converted = new T[outputs.Length];
                for (int i = 0; i < outputs.Length; i++)
                {
                    converted[i] = convert(results[i], i);
                }

                return converted;
            }
        }
    }

    private void CheckInput(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.dim() != 4 || input.shape[1] != InChannels)
        {
            throw new ArgumentException(
                $"{ModelName}: expected an input N×{InChannels}×H×W, got shape [{string.Join(", ", input.shape)}].", nameof(input));
        }

        if (input.dtype != ScalarType.Float32)
        {
            throw new ArgumentException($"{ModelName}: expected a float32 input, got {input.dtype}.", nameof(input));
        }

        CheckSize(input.shape[0], input.shape[2], input.shape[3]);
    }

    private void CheckSize(long batch, long height, long width)
    {
        if (batch < 1)
        {
            throw new ArgumentException($"{ModelName}: the batch holds {batch} images; expected at least one.", nameof(batch));
        }

        if (height < MinInputSize || width < MinInputSize)
        {
            throw new ArgumentException(
                $"{ModelName}: input {height}×{width} is too small; expected at least {MinInputSize}×{MinInputSize}.", nameof(height));
        }
    }

    /// <summary>Makes the pooled features (the Flatten after GlobalAveragePool) a second graph output; returns its name.</summary>
    private static string AddPooledOutput(ModelProto model)
    {
        var flatten = model.Graph.Node.Single(n => n.OpType == "Flatten");
        var logits = model.Graph.Output.Single();
        var features = logits.Clone();
        features.Name = flatten.Output[0];
        features.Type.TensorType.Shape.Dim[1].DimValue = model.Graph.Initializer.Single(i => i.Name == model.Graph.Node.Single(n => n.OpType == "Gemm").Input[1]).Dims[1];
        model.Graph.Output.Add(features);
        return features.Name;
    }
}

/// <summary>Entry point of the fast inference path.</summary>
public static partial class InferenceExtensions
{
    /// <summary>
    /// Builds an ONNX Runtime copy of <paramref name="model"/> for inference: BatchNorm folded into the convolutions
    /// (eval semantics whatever the model's training flag), all graph optimisations, float32 or calibrated int8. The
    /// source model is not changed.
    /// </summary>
    /// <param name="model">The network to copy.</param>
    /// <param name="options">Threads, device, precision; default <see cref="InferenceOptions"/>.</param>
    /// <exception cref="ArgumentException">The model cannot be lowered, or int8 is asked for without calibration.</exception>
    /// <exception cref="NotSupportedException">A CUDA device was asked for where ONNX Runtime's CUDA provider is not available, or a device type other than CPU or CUDA.</exception>
    public static OnnxRuntimeResNet ForInference(this ResNet model, InferenceOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return new OnnxRuntimeResNet(model, options ?? new InferenceOptions());
    }
}
