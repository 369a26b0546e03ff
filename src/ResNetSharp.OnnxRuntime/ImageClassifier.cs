using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using ResNetSharp.Cam;
using ResNetSharp.Images;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace ResNetSharp.OnnxRuntime;


/// <summary>One class of a prediction.</summary>
/// <param name="Index">Output index of the classifier.</param>
/// <param name="Label">The class name from <see cref="ModelMetadata.ClassNames"/>, or the index as text when the model has none.</param>
/// <param name="Probability">Softmax probability.</param>
/// <param name="Logit">The raw logit.</param>
public readonly record struct ClassScore(int Index, string Label, float Probability, float Logit);

/// <summary>What the classifier says about one image: the top classes, most probable first.</summary>
/// <param name="Top">The <c>topK</c> most probable classes, in decreasing probability (ties: lower index first).</param>
/// <param name="Probabilities">Softmax over all classes.</param>
/// <param name="Logits">The raw logits.</param>
public sealed record Prediction(IReadOnlyList<ClassScore> Top, IReadOnlyList<float> Probabilities, IReadOnlyList<float> Logits)
{
    /// <summary>The most probable class.</summary>
    public ClassScore Best => Top[0];
}

/// <summary>Settings of an <see cref="ImageClassifier"/>.</summary>
public sealed record ImageClassifierOptions
{
    /// <summary>Images per forward call when many are classified at once. Default 16.</summary>
    public int MaxBatchSize { get; init; } = 16;

    /// <summary>Decoder limits (pixels, bytes, EXIF orientation). Default <see cref="ImageDecodeOptions.Default"/>.</summary>
    public ImageDecodeOptions Decode { get; init; } = ImageDecodeOptions.Default;

    /// <summary>Settings of the ONNX Runtime copy (<see cref="InferenceExtensions.ForInference"/>): threads, device, int8. Default: its defaults.</summary>
    public InferenceOptions? Inference { get; init; }
}

/// <summary>
/// Classifies images end to end: decode (<see cref="ImageDecoder"/>), torchvision's eval transform
/// (<see cref="ImageTransform"/>, from the model's <see cref="ModelMetadata"/>), the network on ONNX Runtime
/// (<see cref="OnnxRuntimeResNet"/>, fed plain floats: no tensor round trip), softmax and top-k — and returns plain managed results: nothing for the caller to
/// dispose but the classifier itself.
/// </summary>
/// <remarks>
/// <para><b>Thread safety.</b> Every public method may be called from any number of threads at once. Decoding and
/// preprocessing run on the calling thread, in parallel; the forward passes run concurrently in one ONNX Runtime
/// session (only <see cref="Explain"/>, which runs the TorchSharp model, is serialised by a lock), and each call runs
/// its own images as its own batches, so concurrent calls return exactly what the same calls made one after another return. <see cref="Dispose"/> must not race
/// with calls in flight; a call after it throws <see cref="ObjectDisposedException"/>.</para>
/// <para><b>Memory.</b> Every tensor a call creates is released before it returns; repeated calls do not grow the
/// process (tested over 10,000 calls).</para>
/// <para><b>Batching.</b> The <c>ClassifyMany</c> overloads decode lazily and run up to
/// <see cref="ImageClassifierOptions.MaxBatchSize"/> images per forward pass. Results of a batch equal per-image
/// results to float32 rounding (the convolution algorithm may depend on the batch size).</para>
/// </remarks>
public sealed class ImageClassifier : IDisposable
{
    private readonly object gate = new();
    private readonly ResNet model;
    private readonly bool ownsModel;
    private readonly OnnxRuntimeResNet fast;
    private readonly Device device;
    private volatile bool disposed;

    /// <summary>
    /// A classifier over <paramref name="model"/>. Classification runs an inference copy made here; <see cref="Explain"/>
    /// runs the model itself, so it must stay alive as long as the classifier (it is not changed), unless
    /// <paramref name="disposeModel"/> hands it over.
    /// </summary>
    /// <param name="model">The trained network.</param>
    /// <param name="metadata">Input transform and class names; default the model's <see cref="ResNet.Metadata"/>.</param>
    /// <param name="options">Batch size, decoder limits, inference settings.</param>
    /// <param name="disposeModel">True: the classifier owns the model and disposes it with itself. Default false.</param>
    /// <exception cref="ArgumentException">The metadata does not match the model, the model takes neither 1 nor 3 channels, or it is headless (no classifier).</exception>
    /// <exception cref="InvalidOperationException">The metadata does not know the model's preprocessing (<see cref="ModelMetadata.PreprocessingKnown"/>): the classifier does not guess.</exception>
    public ImageClassifier(ResNet model, ModelMetadata? metadata = null, ImageClassifierOptions? options = null, bool disposeModel = false)
    {
        bool ownsModel = disposeModel;
        ArgumentNullException.ThrowIfNull(model);
        Options = options ?? new ImageClassifierOptions();
        if (Options.MaxBatchSize < 1)
        {
            throw new ArgumentException($"ImageClassifierOptions.MaxBatchSize must be ≥ 1, got {Options.MaxBatchSize}.", nameof(options));
        }

        Metadata = metadata ?? model.Metadata;
        Metadata.Validate(model);
        if (model.IsHeadless)
        {
            throw new ArgumentException(
                $"{model.ModelName} is headless: it has no classifier (NumClasses 0; e.g. a featurizer imported from ONNX), so there are no classes " +
                "to predict. Give it one trained for your classes (ResNet.ResetClassifier, then train it), or use model.ForInference() for its features.",
                nameof(model));
        }

        Transform = new ImageTransform(Metadata);
        this.model = model;
        this.ownsModel = ownsModel;
        device = model.Stem.weight.device;
        fast = model.ForInference(Options.Inference);
    }

    /// <summary>Builds the model a weight file describes (<see cref="ResNetFactory.FromWeights"/>) and a classifier that owns it.</summary>
    /// <param name="path">A safetensors file saved by ResNetSharp (it carries the architecture, transform and class names).</param>
    /// <param name="options">Batch size, decoder limits, inference settings.</param>
    /// <exception cref="InvalidDataException">The file is not a weight file with ResNetSharp metadata.</exception>
    public static ImageClassifier FromWeights(string path, ImageClassifierOptions? options = null)
    {
        var model = ResNetFactory.FromWeights(path);
        try
        {
            return new ImageClassifier(model, null, options, disposeModel: true);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The transform and class names used.</summary>
    public ModelMetadata Metadata { get; }

    /// <summary>The eval transform (from <see cref="Metadata"/>).</summary>
    public ImageTransform Transform { get; }

    /// <summary>The settings.</summary>
    public ImageClassifierOptions Options { get; }

    /// <summary>Classes the model predicts.</summary>
    public int NumClasses => Metadata.NumClasses;

    /// <summary>The network (for <see cref="ClassActivationMaps"/>). Owned by the classifier when built by <see cref="FromWeights"/> or with <c>disposeModel</c>.</summary>
    public ResNet Model => model;

    /// <summary>The label of class <paramref name="index"/>: its name, or the index as text.</summary>
    /// <param name="index">A class index.</param>
    public string Label(int index) => Metadata.ClassNames is { } names && index >= 0 && index < names.Count
        ? names[index]
        : index.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The class whose label is <paramref name="labelOrIndex"/>, or that index.</summary>
    /// <param name="labelOrIndex">A class name (ordinal, then case-insensitive) or an index.</param>
    /// <exception cref="ArgumentException">Neither a known class name nor an index in range.</exception>
    public int ClassIndex(string labelOrIndex)
    {
        ArgumentNullException.ThrowIfNull(labelOrIndex);
        if (Metadata.ClassNames is { } names)
        {
            int i = names.ToList().IndexOf(labelOrIndex);
            if (i < 0)
            {
                i = names.ToList().FindIndex(n => string.Equals(n, labelOrIndex, StringComparison.OrdinalIgnoreCase));
            }

            if (i >= 0)
            {
                return i;
            }
        }

        if (int.TryParse(labelOrIndex, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out int index) &&
            index >= 0 && index < NumClasses)
        {
            return index;
        }

        throw new ArgumentException(
            $"'{labelOrIndex}' is not a class of this model: expected an index in 0 … {NumClasses - 1}" +
            (Metadata.ClassNames is null ? "." : " or one of its class names."), nameof(labelOrIndex));
    }

    /// <summary>Classifies an image file.</summary>
    /// <param name="path">PNG, JPEG, WebP, BMP or GIF.</param>
    /// <param name="topK">Classes returned in <see cref="Prediction.Top"/> (clamped to the class count). Default 5.</param>
    /// <exception cref="System.IO.InvalidDataException">The file is not a decodable image.</exception>
    public Prediction Classify(string path, int topK = 5) => ClassifyImages(new[] { Decode(path) }, topK)[0];

    /// <summary>Classifies an encoded image read from a stream (to its end).</summary>
    /// <param name="stream">The encoded image.</param>
    /// <param name="topK">Classes returned. Default 5.</param>
    /// <param name="sourceName">A label for error messages.</param>
    public Prediction Classify(Stream stream, int topK = 5, string sourceName = "stream") =>
        ClassifyImages(new[] { ImageDecoder.Decode(stream, sourceName, Transform.Channels, Options.Decode) }, topK)[0];

    /// <summary>Classifies an encoded image held in memory (the bytes of a PNG, JPEG … file).</summary>
    /// <param name="encoded">The file's bytes.</param>
    /// <param name="topK">Classes returned. Default 5.</param>
    /// <param name="sourceName">A label for error messages.</param>
    public Prediction Classify(byte[] encoded, int topK = 5, string sourceName = "buffer") =>
        ClassifyImages(new[] { ImageDecoder.Decode(encoded, sourceName, Transform.Channels, Options.Decode) }, topK)[0];

    /// <summary>Classifies a SkiaSharp bitmap (not changed).</summary>
    /// <param name="bitmap">Any colour type; alpha is dropped.</param>
    /// <param name="topK">Classes returned. Default 5.</param>
    public Prediction Classify(SKBitmap bitmap, int topK = 5) => ClassifyImages(new[] { ImageDecoder.FromBitmap(bitmap, Transform.Channels) }, topK)[0];

    /// <summary>Classifies a decoded image.</summary>
    /// <param name="image">An image with the model's channel count (<see cref="ImageTransform.Channels"/>).</param>
    /// <param name="topK">Classes returned. Default 5.</param>
    public Prediction Classify(PixelImage image, int topK = 5) => ClassifyImages(new[] { image }, topK)[0];

    /// <summary>Classifies many files, decoding lazily, <see cref="ImageClassifierOptions.MaxBatchSize"/> per forward pass.</summary>
    /// <param name="paths">Image files.</param>
    /// <param name="topK">Classes returned per image. Default 5.</param>
    /// <returns>One prediction per file, in order.</returns>
    /// <exception cref="System.IO.InvalidDataException">A file is not a decodable image (no result is returned for any).</exception>
    public IReadOnlyList<Prediction> ClassifyMany(IEnumerable<string> paths, int topK = 5)
    {
        ArgumentNullException.ThrowIfNull(paths);
        return ClassifyImages(paths.Select(Decode), topK);
    }

    /// <summary>Classifies many decoded images, <see cref="ImageClassifierOptions.MaxBatchSize"/> per forward pass.</summary>
    /// <param name="images">Images with the model's channel count.</param>
    /// <param name="topK">Classes returned per image. Default 5.</param>
    public IReadOnlyList<Prediction> ClassifyMany(IEnumerable<PixelImage> images, int topK = 5)
    {
        ArgumentNullException.ThrowIfNull(images);
        return ClassifyImages(images, topK);
    }

    /// <summary>Classifies an already preprocessed batch (N × C × S × S, normalised as <see cref="Transform"/> does); the tensor stays the caller's.</summary>
    /// <param name="batch">Floating-point input on any device (ONNX Runtime reads it from the CPU).</param>
    /// <param name="topK">Classes returned per image. Default 5.</param>
    /// <exception cref="ArgumentException">The tensor is not a batch the network accepts.</exception>
    public IReadOnlyList<Prediction> Classify(Tensor batch, int topK = 5)
    {
        ArgumentNullException.ThrowIfNull(batch);
        CheckTopK(topK);
        if (batch.dim() != 4 || batch.shape[1] != Transform.Channels)
        {
            throw new ArgumentException(
                $"Expected a batch N×{Transform.Channels}×H×W, got [{string.Join(", ", batch.shape)}].", nameof(batch));
        }

        var results = new List<Prediction>((int)batch.shape[0]);
        for (long start = 0; start < batch.shape[0]; start += Options.MaxBatchSize)
        {
            long n = Math.Min(Options.MaxBatchSize, batch.shape[0] - start);
            ObjectDisposedException.ThrowIf(disposed, this);
            float[] logits;
            using (var scope = torch.NewDisposeScope())
            {
                var x = batch.narrow(0, start, n).to(ScalarType.Float32);
                logits = fast.Forward(x).cpu().data<float>().ToArray();
            }

            AddPredictions(results, logits, (int)n, topK);
        }

        return results;
    }

    /// <summary>
    /// CAM (Zhou et al. 2016) of one image: Σₖ w_c,k fₖ over the last feature maps, signed (the logit is its mean plus
    /// the bias), at the feature map's resolution. The forward pass is serialised with the classifier's others. Draw it
    /// with <see cref="PixelImage.Overlay"/> and this classifier's <see cref="Transform"/>.
    /// </summary>
    /// <param name="image">A decoded image with the model's channel count.</param>
    /// <param name="classIndex">The class to explain; default the predicted one.</param>
    public ActivationMap Explain(PixelImage image, int? classIndex = null) =>
        RunCam(image, x => ClassActivationMaps.Cam(model, x, classIndex));

    /// <summary>
    /// Grad-CAM (Selvaraju et al. 2017) of one image: ReLU(Σₖ αₖ fₖ), αₖ the spatial mean of the class logit's gradient
    /// over feature map <paramref name="layer"/>. The passes are serialised with the classifier's others.
    /// </summary>
    /// <param name="image">A decoded image with the model's channel count.</param>
    /// <param name="classIndex">The class to explain; default the predicted one.</param>
    /// <param name="layer">The feature map: 0 = stem, 1 … N = layer1 … layerN, −1 = the last.</param>
    public ActivationMap ExplainGradCam(PixelImage image, int? classIndex = null, int layer = -1) =>
        RunCam(image, x => ClassActivationMaps.GradCam(model, x, classIndex, layer));

    private ActivationMap RunCam(PixelImage image, Func<Tensor, ActivationMap> run)
    {
        ArgumentNullException.ThrowIfNull(image);
        float[] input = Transform.Apply(image);
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            using var scope = torch.NewDisposeScope();
            var x = torch.tensor(input, new long[] { 1, Transform.Channels, Transform.InputSize, Transform.InputSize }).to(device);
            return run(x);
        }
    }

    /// <summary>Decodes a file as this classifier would (the model's channel count, its decoder limits).</summary>
    /// <param name="path">The image file.</param>
    public PixelImage Decode(string path) => ImageDecoder.Decode(path, Transform.Channels, Options.Decode);

    /// <summary>Releases the ONNX Runtime session (and the model, when the classifier owns it).</summary>
    public void Dispose()
    {
        lock (gate)
        {
            if (disposed)
            {
                return;
            }

            disposed = true;
            fast.Dispose();
            if (ownsModel)
            {
                model.Dispose();
            }
        }
    }

    private IReadOnlyList<Prediction> ClassifyImages(IEnumerable<PixelImage> images, int topK)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        CheckTopK(topK);

        var results = new List<Prediction>();
        int length = Transform.Length, s = Transform.InputSize;
        var buffer = new float[Options.MaxBatchSize * length];
        int n = 0;
        void Flush()
        {
            if (n == 0)
            {
                return;
            }

            ObjectDisposedException.ThrowIf(disposed, this);
            float[] logits = fast.Forward(buffer.AsSpan(0, n * length), n, s, s);

            AddPredictions(results, logits, n, topK);
            n = 0;
        }

        foreach (var image in images)
        {
            Transform.Apply(image, buffer.AsSpan(n * length, length));
            if (++n == Options.MaxBatchSize)
            {
                Flush();
            }
        }

        Flush();
        return results;
    }

    private static void CheckTopK(int topK)
    {
        if (topK < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(topK), topK, "topK must be at least 1.");
        }
    }

    private void AddPredictions(List<Prediction> results, float[] logits, int n, int topK)
    {
        int k = Math.Min(topK, NumClasses);
        for (int i = 0; i < n; i++)
        {
            var row = logits.AsSpan(i * NumClasses, NumClasses).ToArray();
            float max = row.Max();
            double sum = 0;
            foreach (float v in row)
            {
                sum += Math.Exp(v - max);
            }

            var probabilities = row.Select(v => (float)(Math.Exp(v - max) / sum)).ToArray();
            var top = Enumerable.Range(0, NumClasses)
                .OrderByDescending(j => row[j]).ThenBy(j => j)
                .Take(k)
                .Select(j => new ClassScore(j, Label(j), probabilities[j], row[j]))
                .ToArray();
            results.Add(new Prediction(top, probabilities, row));
        }
    }
}
