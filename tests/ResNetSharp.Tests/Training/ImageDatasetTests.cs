using System;
using FluentAssertions;
using ResNetSharp.Training;
using Xunit;

namespace ResNetSharp.Tests.Training;

public class ImageDatasetTests
{
    [Fact]
    public void RepeatChannels_Grey_EveryChannelIsTheGreyPlane()
    {
        var pixels = new byte[] { 0, 51, 102, 255, 10, 20, 30, 40 }; // two 2 × 2 grey images
        var grey = new InMemoryImageDataset(pixels, new byte[] { 1, 0 }, 1, 2, 2, new[] { "a", "b" }, "grey");

        var rgb = grey.RepeatChannels(3);

        rgb.Channels.Should().Be(3);
        (rgb.Count, rgb.Height, rgb.Width, rgb.Name, rgb.GetLabel(0)).Should().Be((2, 2, 2, "grey", 1));
        rgb.ClassNames.Should().Equal("a", "b");
        var image = new float[rgb.SampleSize];
        rgb.ReadImage(0, image);
        image.Should().Equal(0f, 0.2f, 0.4f, 1f, 0f, 0.2f, 0.4f, 1f, 0f, 0.2f, 0.4f, 1f);
        grey.RepeatChannels(1).Should().BeSameAs(grey);
    }

    [Fact]
    public void RepeatChannels_RgbDataset_ThrowsNamingTheChannels()
    {
        var rgb = new InMemoryImageDataset(new byte[12], new byte[] { 0 }, 3, 2, 2, new[] { "a" }, "rgb");

        var act = () => rgb.RepeatChannels(4);

        act.Should().Throw<ArgumentException>().WithMessage("*rgb has 3 channel(s)*1-channel*");
    }
}
