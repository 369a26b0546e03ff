using System;
using System.Collections.Generic;
using System.Linq;

namespace ResNetSharp.Weights;

/// <summary>
/// How <see cref="ResNet.LoadWeights(string, LoadOptions?)"/> matches a file to a
/// model. The default is strict: every model tensor must be in the file with the same shape, and every file tensor
/// must belong to the model. Relaxations are explicit and never silent.
/// </summary>
public sealed record LoadOptions
{
    /// <summary>The classifier's keys in torchvision's (and ResNetSharp's) naming.</summary>
    public static IReadOnlyList<string> ClassifierKeys { get; } = new[] { "fc.weight", "fc.bias" };

    /// <summary>
    /// Leave the classifier (<c>fc.weight</c>, <c>fc.bias</c>) as it is in the model and ignore it in the file, so
    /// ImageNet weights can start a model with a different number of classes (fine-tuning). Default false.
    /// </summary>
    public bool SkipClassifier { get; init; }

    /// <summary>
    /// Further state-dict keys to leave untouched in the model and ignore in the file. Every key named here must
    /// exist in the model or the file (a typo is an error, not a silent no-op). Default: none.
    /// </summary>
    public IReadOnlyCollection<string> SkipKeys { get; init; } = Array.Empty<string>();

    /// <summary>Format of the file; default <see cref="WeightFormat.Auto"/> (detected from the content).</summary>
    public WeightFormat Format { get; init; } = WeightFormat.Auto;

    /// <summary>Strict loading of everything (the default).</summary>
    public static LoadOptions Strict { get; } = new();

    /// <summary>Everything but the classifier.</summary>
    public static LoadOptions ExceptClassifier { get; } = new() { SkipClassifier = true };

    internal HashSet<string> SkippedKeys()
    {
        var set = new HashSet<string>(SkipKeys ?? Array.Empty<string>(), StringComparer.Ordinal);
        if (SkipClassifier)
        {
            set.UnionWith(ClassifierKeys);
        }

        return set;
    }
}

/// <summary>How <see cref="ResNet.SaveWeights(string, SaveOptions?)"/> writes a file.</summary>
public sealed record SaveOptions
{
    /// <summary>File format; default <see cref="WeightFormat.SafeTensors"/> (<see cref="WeightFormat.Auto"/> means the same).</summary>
    public WeightFormat Format { get; init; } = WeightFormat.SafeTensors;

    /// <summary>
    /// Store floating-point tensors as this type (<c>Float32</c>, <c>Float16</c>, <c>BFloat16</c> or <c>Float64</c>:
    /// safetensors' F32, F16, BF16, F64); null keeps each tensor's own type. Integer buffers such as
    /// <c>num_batches_tracked</c> are always kept as they are. Default null.
    /// </summary>
    public TorchSharp.torch.ScalarType? FloatType { get; init; }

    /// <summary><see cref="FloatType"/> as the file's element type.</summary>
    /// <exception cref="ArgumentException"><see cref="FloatType"/> is not a floating-point type a weight file stores.</exception>
    internal WeightDType? FileFloatType =>
        FloatType is not { } scalar ? null
        : WeightDTypes.TryFromScalarType(scalar, out var type) && type.IsFloatingPoint() ? type
        : throw new ArgumentException($"SaveOptions.FloatType must be Float32, Float16, BFloat16 or Float64, got {scalar}.");

    /// <summary>safetensors <c>__metadata__</c> pairs to store (ignored by the TorchSharp format). Default: none.</summary>
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }
}

/// <summary>A model tensor whose counterpart in the file has a different shape (public as <see cref="WeightCheck.Mismatched"/> keys and the report's text).</summary>
/// <param name="Key">State-dict key.</param>
/// <param name="ModelShape">Shape in the model.</param>
/// <param name="FileShape">Shape in the file.</param>
/// <param name="ModelType">Element type in the model.</param>
/// <param name="FileType">Element type in the file.</param>
internal sealed record TensorMismatch(string Key, IReadOnlyList<long> ModelShape, IReadOnlyList<long> FileShape, string ModelType, string FileType)
{
    /// <summary>"fc.weight: model [10, 512] Float32, file [1000, 512] F32".</summary>
    public override string ToString() =>
        $"{Key}: model [{string.Join(", ", ModelShape)}] {ModelType}, file [{string.Join(", ", FileShape)}] {FileType}";
}

/// <summary>The result of matching a weight file against a model, before (or without) loading it.</summary>
public sealed class WeightCheck
{
    internal WeightCheck(string source, IReadOnlyList<string> matched, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected,
        IReadOnlyList<TensorMismatch> mismatched, IReadOnlyList<string> skipped)
    {
        Source = source;
        Matched = matched;
        Missing = missing;
        Unexpected = unexpected;
        MismatchDetails = mismatched;
        Mismatched = mismatched.Select(m => m.Key).ToArray();
        Skipped = skipped;
    }

    /// <summary>The file (or stream) checked.</summary>
    public string Source { get; }

    /// <summary>Keys present in both with the same shape: these are (or would be) loaded, converted to the model's element type.</summary>
    public IReadOnlyList<string> Matched { get; }

    /// <summary>Model keys absent from the file.</summary>
    public IReadOnlyList<string> Missing { get; }

    /// <summary>File keys the model does not have.</summary>
    public IReadOnlyList<string> Unexpected { get; }

    /// <summary>Keys in both whose shape differs (both shapes and element types are in <see cref="ToString"/>).</summary>
    public IReadOnlyList<string> Mismatched { get; }

    /// <summary>The mismatches with both shapes and element types.</summary>
    internal IReadOnlyList<TensorMismatch> MismatchDetails { get; }

    /// <summary>Keys left alone because the options asked to skip them.</summary>
    public IReadOnlyList<string> Skipped { get; }

    /// <summary>True when nothing is missing, unexpected or mismatched: the file loads under these options.</summary>
    public bool IsLoadable => Missing.Count == 0 && Unexpected.Count == 0 && Mismatched.Count == 0;

    /// <summary>
    /// The report in one line: the source, counts, and the keys of each list; a shape mismatch reads
    /// <c>fc.weight: model [10, 512] Float32, file [1000, 512] F32</c>.
    /// </summary>
    public override string ToString() =>
        $"{Source}: {Matched.Count} matched" +
        (Missing.Count > 0 ? $"; missing: {string.Join(", ", Missing)}" : string.Empty) +
        (Unexpected.Count > 0 ? $"; unexpected: {string.Join(", ", Unexpected)}" : string.Empty) +
        (MismatchDetails.Count > 0 ? $"; different shape: {string.Join("; ", MismatchDetails)}" : string.Empty) +
        (Skipped.Count > 0 ? $"; skipped: {string.Join(", ", Skipped)}" : string.Empty);
}

/// <summary>
/// A weight file does not fit the model under the chosen <see cref="LoadOptions"/>. All problems are listed at once;
/// the model was not modified.
/// </summary>
public sealed class WeightMismatchException : InvalidOperationException
{
    /// <summary>Creates the exception from a failed check.</summary>
    public WeightMismatchException(WeightCheck check)
        : base(Describe(check ?? throw new ArgumentNullException(nameof(check))))
    {
        Source = check.Source;
        Missing = check.Missing;
        Unexpected = check.Unexpected;
        Mismatched = check.Mismatched;
    }

    /// <summary>The file (or stream) that did not fit.</summary>
    public new string Source { get; }

    /// <summary>Model keys absent from the file.</summary>
    public IReadOnlyList<string> Missing { get; }

    /// <summary>File keys the model does not have.</summary>
    public IReadOnlyList<string> Unexpected { get; }

    /// <summary>Keys whose shape differs between model and file (both shapes are in the message).</summary>
    public IReadOnlyList<string> Mismatched { get; }

    private static string Describe(WeightCheck c)
    {
        const int Shown = 20;
        static string List(IEnumerable<string> items, int count) =>
            string.Join(", ", items.Take(Shown)) + (count > Shown ? $", … ({count - Shown} more)" : string.Empty);

        var parts = new List<string>();
        if (c.Missing.Count > 0)
        {
            parts.Add($"{c.Missing.Count} missing from the file: {List(c.Missing, c.Missing.Count)}");
        }

        if (c.Unexpected.Count > 0)
        {
            parts.Add($"{c.Unexpected.Count} unexpected (not in the model): {List(c.Unexpected, c.Unexpected.Count)}");
        }

        if (c.Mismatched.Count > 0)
        {
            parts.Add($"{c.Mismatched.Count} with a different shape: {List(c.MismatchDetails.Select(m => m.ToString()), c.Mismatched.Count)}");
        }

        string hint = c.Mismatched.Any(LoadOptions.ClassifierKeys.Contains)
            ? " To load everything but the classifier (a different number of classes), pass LoadOptions { SkipClassifier = true }."
            : string.Empty;
        return $"{c.Source}: the weights do not fit the model; nothing was loaded. {string.Join("; ", parts)}.{hint}";
    }
}
