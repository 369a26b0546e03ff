using System;
using System.Linq;
using FluentAssertions;
using TorchSharp;
using Xunit;

namespace ResNetSharp.Tests;

public class ResNetTests
{
    [Fact]
    public void Forward_IsHeadOfFeatures_AndPreLogitsIsThePooledFeatures()
    {
        using var model = ResNetFactory.ResNet18(new ResNetOptions { NumClasses = 5 });
        model.eval();
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var x = torch.randn(3, 3, 64, 64);
        var features = model.ForwardFeatures(x);
        features.shape.Should().Equal(3, 512, 2, 2);
        var pre = model.ForwardHead(features, preLogits: true);
        pre.shape.Should().Equal(3, 512);
        var logits = model.call(x);
        torch.allclose(logits, model.Classifier!.call(pre), 1e-5, 1e-6).Should().BeTrue();
    }

    [Fact]
    public void ForwardHead_PreLogits_IsTheSpatialMean_HandComputed()
    {
        using var model = ResNetFactory.ResNet18(new ResNetOptions { NumClasses = 5 });
        model.eval();
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        // Channel c of image n holds n·1000 + c + {0, 1, 2, 3} over its 2×2 positions: the mean is n·1000 + c + 1.5.
        var features = (torch.arange(2).reshape(2, 1, 1, 1) * 1000 + torch.arange(512).reshape(1, 512, 1, 1) + torch.arange(4).reshape(1, 1, 2, 2))
            .to(torch.ScalarType.Float32);
        var pre = model.ForwardHead(features, preLogits: true);
        pre.shape.Should().Equal(2, 512);
        pre[1, 7].item<float>().Should().Be(1008.5f);
        pre[0, 511].item<float>().Should().Be(512.5f);
        pre[0, 0].item<float>().Should().Be(1.5f);
    }

    [Fact]
    public void Forward_DoesNotDisposeOrChangeTheCallersInput()
    {
        using var model = ResNetFactory.ResNet18();
        model.eval();
        using var noGrad = torch.no_grad();
        using var x = torch.randn(1, 3, 32, 32);
        using var copy = x.clone();
        using var y = model.call(x);
        torch.allclose(x, copy, 0, 0).Should().BeTrue();
    }

    [Fact]
    public void Forward_BadInput_ThrowsArgumentExceptionSayingWhatIsExpected()
    {
        using var model = ResNetFactory.ResNet18();
        using var wrongChannels = torch.zeros(1, 1, 64, 64);
        using var wrongRank = torch.zeros(3, 64, 64);
        using var tooSmall = torch.zeros(1, 3, 16, 64);
        using var integer = torch.zeros(new long[] { 1, 3, 64, 64 }, dtype: torch.int64);
        model.Invoking(m => m.call(wrongChannels)).Should().Throw<ArgumentException>().WithMessage("*expected 3 input channels, got 1*");
        model.Invoking(m => m.call(wrongRank)).Should().Throw<ArgumentException>().WithMessage("*expected a 4-D input N×3×H×W, got shape [3, 64, 64]*");
        model.Invoking(m => m.call(tooSmall)).Should().Throw<ArgumentException>().WithMessage("*16×64 is too small; expected at least 32×32*");
        model.Invoking(m => m.call(integer)).Should().Throw<ArgumentException>().WithMessage("*floating-point*");
        using var badFeatures = torch.zeros(1, 100, 2, 2);
        model.Invoking(m => m.ForwardHead(badFeatures, false)).Should().Throw<ArgumentException>().WithMessage("*N×512×h×w*");
    }

    [Fact]
    public void Create_CustomTable_BuildsTheDepthItDescribes()
    {
        // A user's own depth: ResNet-26 = 1 + 8 blocks × 3 + 1, narrow, 4 input channels.
        var table = new StageTable { Block = BlockKind.Bottleneck, Layers = new[] { 2, 2, 2, 2 }, Widths = new[] { 32, 64, 128, 256 } };
        using var model = ResNetFactory.Create(table, new ResNetOptions { InChannels = 4, NumClasses = 3 }, "resnet26-narrow");
        var summary = model.Summarize(64);
        summary.LayerFormula.Should().Be("1 + 24 + 1 = 26");
        model.FeatureChannels.Should().Be(1024);
        summary.Parts[^1].OutputShape.Should().Equal(3);
        summary.InputChannels.Should().Be(4);
    }

    [Fact]
    public void Options_DeviceAndDType_AreHonoured()
    {
        using var model = ResNetFactory.ResNet18(new ResNetOptions { DType = torch.float64, Device = TorchDevices.Resolve("cpu") });
        model.parameters().Should().OnlyContain(p => p.dtype == torch.float64);
        model.state_dict()["bn1.running_mean"].dtype.Should().Be(torch.float64);
        model.state_dict()["bn1.num_batches_tracked"].dtype.Should().Be(torch.int64, "torchvision keeps the BN counter int64");
        model.eval();
        using var noGrad = torch.no_grad();
        using var x = torch.randn(new long[] { 1, 3, 32, 32 }, dtype: torch.float64);
        using var y = model.call(x);
        y.dtype.Should().Be(torch.float64);

        // Moving an existing model with TorchSharp's own API keeps working.
        model.to(torch.float32);
        model.parameters().Should().OnlyContain(p => p.dtype == torch.float32);
    }

    [Fact]
    public void Options_Invalid_ThrowArgumentException()
    {
        FluentActions.Invoking(() => ResNetFactory.ResNet18(new ResNetOptions { NumClasses = -1 })).Should().Throw<ArgumentException>().WithMessage("*NumClasses must be ≥ 0*");
        FluentActions.Invoking(() => ResNetFactory.ResNet18(new ResNetOptions { InChannels = 0 })).Should().Throw<ArgumentException>().WithMessage("*InChannels*");
        FluentActions.Invoking(() => ResNetFactory.ResNet18(new ResNetOptions { DType = torch.int32 })).Should().Throw<ArgumentException>().WithMessage("*DType*");
    }

    [Fact]
    public void Summary_ToTable_ListsEveryStageWithMeasuredFigures()
    {
        using var model = ResNetFactory.ResNet50();
        string table = model.Summarize(224).ToTable();
        table.Should().Contain("1 + 48 + 1 = 50").And.Contain("25,557,032").And.Contain("4.0892 G");
        foreach (var stage in new[] { "conv2_x", "conv3_x", "conv4_x", "conv5_x" })
        {
            table.Should().Contain(stage);
        }

        table.Should().Contain("2048×7×7");
    }

    [Fact]
    public void Summarize_DoesNotChangeTrainingModeOrWeights()
    {
        using var model = ResNetFactory.ResNet18();
        model.train();
        var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        model.Summarize(64);
        model.training.Should().BeTrue();
        foreach (var (key, value) in model.state_dict())
        {
            torch.allclose(value, before[key], 0, 0).Should().BeTrue($"{key} must be untouched by Summarize");
        }
    }
}
