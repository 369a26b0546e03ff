namespace ResNetSharp.Runtime;

/// <summary>
/// Memory layout of a <see cref="ResNet"/>'s activations in forward passes that record gradients (training, or any
/// pass outside <c>no_grad</c>). Shapes stay N×C×H×W either way and outputs are the same up to float rounding;
/// only the order of the numbers in memory, and so the convolution kernels libtorch picks, differ.
/// </summary>
internal enum TrainingLayout
{
    /// <summary>
    /// Channels-last for float32 networks of basic blocks on the CPU (ResNet-18/34, the CIFAR ResNets, plain and
    /// pre-activation variants) where <see cref="LibTorchQuirks.TrainsChannelsLast"/> says so; channels-first otherwise.
    /// </summary>
    Auto,

    /// <summary>NCHW: every tensor contiguous, as libtorch makes them.</summary>
    ChannelsFirst,

    /// <summary>
    /// NHWC memory (N×C×H×W shape): the input is copied once into channels-last order and the layout carries through
    /// the 3×3 convolutions, BatchNorm, ReLU and the residual adds. 1×1 convolutions (projection shortcuts, bottleneck
    /// convs) go through <see cref="LibTorchQuirks.Convolve"/>. Feature maps handed back to the caller are contiguous.
    /// </summary>
    ChannelsLast,
}
