namespace ResNetSharp;

/// <summary>
/// Describes one feature map a <see cref="ResNet"/> can return from <see cref="ResNet.ForwardFeatureMaps"/>.
/// </summary>
/// <param name="Index">Position in <see cref="ResNet.FeatureInfo"/>: 0 is the stem, 1 … N the stages.</param>
/// <param name="Name">Module name: <c>stem</c>, <c>layer1</c> … <c>layerN</c>.</param>
/// <param name="Level">Detection name: <c>C1</c> (stem) … <c>C5</c>; the map has 1/<see cref="Stride"/> of the input's resolution.</param>
/// <param name="Channels">Channels of the map (e.g. 256, 512, 1024, 2048 for ResNet-50's C2 … C5).</param>
/// <param name="Stride">Input pixels per map cell: 2, 4, 8, 16, 32 for an ImageNet network without dilation.</param>
/// <param name="Dilation">Dilation of the part's last convolutions (1 unless strides were replaced by dilation).</param>
public sealed record FeatureInfo(int Index, string Name, string Level, long Channels, int Stride, int Dilation);
