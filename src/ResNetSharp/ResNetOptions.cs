using System;
using TorchSharp;

namespace ResNetSharp;

/// <summary>Construction options that are not part of the stage table: head size, input channels, init, device.</summary>
public sealed record ResNetOptions
{
    /// <summary>
    /// Outputs of the classifier. Default: null, meaning the table's own: 1000 (the paper's ImageNet fc) for
    /// ImageNet stems, 10 for CIFAR stems.
    /// </summary>
    public int? NumClasses { get; init; }

    /// <summary>Channels of the input image. Default: 3 (RGB).</summary>
    public int InChannels { get; init; } = 3;

    /// <summary>
    /// Zero-initialise the last BN of every residual branch so that each block starts as an identity map
    /// (Goyal et al., 2017). Default: false, as in torchvision.
    /// </summary>
    public bool ZeroInitResidual { get; init; }

    /// <summary>Device to create the model on. Default: null, the CPU.</summary>
    public torch.Device? Device { get; init; }

    /// <summary>Floating-point type of parameters and buffers. Default: null, float32.</summary>
    public torch.ScalarType? DType { get; init; }

    /// <summary>The classifier size for a given table: <see cref="NumClasses"/> or the table's default.</summary>
    public int ResolveNumClasses(StageTable table) => NumClasses ?? (table?.Stem == StemKind.Cifar ? 10 : 1000);

    /// <summary>Checks the options.</summary>
    /// <exception cref="ArgumentException">A field is out of range; the message says what is allowed.</exception>
    public void Validate()
    {
        if (NumClasses is < 1)
        {
            throw new ArgumentException($"ResNetOptions.NumClasses must be ≥ 1, got {NumClasses}.");
        }

        if (InChannels < 1)
        {
            throw new ArgumentException($"ResNetOptions.InChannels must be ≥ 1, got {InChannels}.");
        }

        if (DType is { } t && t is not (torch.ScalarType.Float32 or torch.ScalarType.Float64 or torch.ScalarType.Float16 or torch.ScalarType.BFloat16))
        {
            throw new ArgumentException($"ResNetOptions.DType must be Float32, Float64, Float16 or BFloat16, got {t}.");
        }
    }
}
