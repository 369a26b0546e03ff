using System.IO;
using ResNetSharp.Weights;

namespace ResNetSharp;

/// <summary>Weight files: loading into and saving from the network (the format code lives in <see cref="Weights"/>).</summary>
public sealed partial class ResNet
{
    /// <summary>
    /// Loads a state dict (torchvision's key names) from a file: PyTorch <c>.pth</c>, safetensors or TorchSharp's format,
    /// detected from the content. Strict by default and all-or-nothing: the file is read and checked completely, every
    /// tensor is converted to this model's dtype and device, and only then is anything copied in.
    /// </summary>
    /// <param name="path">The weight file.</param>
    /// <param name="options">Matching rules; default strict. <see cref="LoadOptions.ExceptClassifier"/> keeps this model's head.</param>
    /// <returns>What was matched and skipped.</returns>
    /// <exception cref="InvalidDataException">The file is malformed (the model is untouched).</exception>
    /// <exception cref="WeightMismatchException">Keys are missing, unexpected or mis-shaped; all are listed (the model is untouched).</exception>
    /// <exception cref="System.ArgumentException"><see cref="LoadOptions.SkipKeys"/> names a key that is in neither the model nor the file.</exception>
    public WeightCheck LoadWeights(string path, LoadOptions? options = null) => Checkpoint.LoadWeights(this, path, options);

    /// <summary>Loads a state dict from a stream (read to its end), as <see cref="LoadWeights(string, LoadOptions?)"/> does a file.</summary>
    /// <param name="stream">PyTorch .pth, safetensors or TorchSharp-format bytes.</param>
    /// <param name="options">Matching rules; default strict.</param>
    /// <param name="sourceName">Name used in messages. Default "stream".</param>
    /// <returns>What was matched and skipped.</returns>
    /// <exception cref="InvalidDataException">The bytes are malformed (the model is untouched).</exception>
    /// <exception cref="WeightMismatchException">Keys are missing, unexpected or mis-shaped; all are listed (the model is untouched).</exception>
    public WeightCheck LoadWeights(Stream stream, LoadOptions? options = null, string? sourceName = null) =>
        Checkpoint.LoadWeights(this, stream, options, sourceName);

    /// <summary>
    /// Saves the state dict and <see cref="Metadata"/> to a file, atomically: a temporary file in the same folder is
    /// written, flushed to disk and renamed over <paramref name="path"/>, so a crash mid-write leaves a previous file intact.
    /// </summary>
    /// <param name="path">Target file.</param>
    /// <param name="options">Format (default safetensors), float type and extra metadata.</param>
    public void SaveWeights(string path, SaveOptions? options = null) => Checkpoint.SaveWeights(this, path, options);

    /// <summary>Writes the state dict and metadata to a stream (left open; not atomic: the caller owns the stream).</summary>
    /// <param name="stream">The destination.</param>
    /// <param name="options">Format (default safetensors), float type and extra metadata.</param>
    public void SaveWeights(Stream stream, SaveOptions? options = null) => Checkpoint.SaveWeights(this, stream, options);
}
