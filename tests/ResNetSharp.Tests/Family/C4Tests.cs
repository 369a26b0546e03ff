using System.Linq;
using FluentAssertions;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ResNetSharp.Tests.Family;

public class C4Tests
{
    public C4Tests() => NativeBackend.EnsureLoaded();

    [Fact]
    public void ResNet101C4_BackboneIsStride16With1024Channels_HeadMaps14x14x1024To2048()
    {
        using var c4 = ResNetC4.Create("resnet101");
        c4.Model.eval();
        c4.FeatureStride.Should().Be(16);
        c4.BackboneChannels.Should().Be(1024);
        c4.HeadChannels.Should().Be(2048);

        using var noGrad = torch.no_grad();
        using var image = torch.randn(1, 3, 64, 96);
        using var map = c4.Backbone.call(image);
        map.shape.Should().Equal(1, 1024, 4, 6);

        using var pooled = torch.randn(3, 1024, 14, 14);
        using var boxFeatures = c4.Head.call(pooled);
        boxFeatures.shape.Should().Equal(3, 2048);

        // The head is conv5_x (the last 9 conv layers of ResNet-101) plus pooling.
        ModelInspector.CountWeightedLayers(c4.Head).Should().Be(9);
        ModelInspector.CountWeightedLayers(c4.Backbone).Should().Be(1 + (30 * 3));

        // The halves together are the classifier's feature path.
        using var whole = c4.Model.ForwardHead(c4.Model.ForwardFeatures(image), preLogits: true);
        using var split = c4.Head.call(map);
        split.allclose(whole, rtol: 1e-4, atol: 1e-5).Should().BeTrue();
    }

    [Fact]
    public void C4_SharesTheModelsParametersAndKeys_AndGradientsReachTheBackbone()
    {
        using var c4 = ResNetC4.Create("resnet50");
        c4.Backbone.state_dict().Keys.Should().OnlyContain(k => !k.StartsWith("layer4") && !k.StartsWith("fc"));
        c4.Head.state_dict().Keys.Should().OnlyContain(k => k.StartsWith("layer4."));
        (c4.Backbone.state_dict().Count + c4.Head.state_dict().Count + 2).Should().Be(c4.Model.state_dict().Count, "all but fc.weight and fc.bias");
        c4.Backbone.state_dict()["layer1.0.conv1.weight"].Handle.Should().Be(c4.Model.state_dict()["layer1.0.conv1.weight"].Handle);

        c4.Model.train();
        using var images = torch.randn(2, 3, 64, 64);
        using var boxes = torch.tensor(new float[] { 0, 0, 0, 40, 40, 1, 8, 16, 60, 50, 1, 10, 10, 10, 10 }, new long[] { 3, 5 });
        using var features = c4.ForwardBoxes(images, boxes, pooledSize: 14);
        features.shape.Should().Equal(3, 2048);
        using var loss = features.square().mean();
        loss.backward();
        c4.Backbone.parameters().Select(p => p.grad is not null && p.grad.abs().sum().item<float>() > 0).Should().AllBeEquivalentTo(true);
        c4.Head.parameters().Select(p => p.grad is not null).Should().AllBeEquivalentTo(true);

        using var none = torch.zeros(0, 5);
        using var empty = c4.ForwardBoxes(images, none);
        empty.shape.Should().Equal(0, 2048);
    }

    [Fact]
    public void C4_NeedsFourStages()
    {
        using var cifar = ResNetFactory.ResNet20();
        FluentActions.Invoking(() => new ResNetC4(cifar)).Should().Throw<System.ArgumentException>().WithMessage("*four-stage*");
    }
}
