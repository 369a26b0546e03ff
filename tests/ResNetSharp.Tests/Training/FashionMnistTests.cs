using System.IO;
using System.Linq;
using FluentAssertions;
using ResNetSharp.Training;
using Xunit;

namespace ResNetSharp.Tests.Training;

/// <summary>
/// The real dataset from Debian's dataset-fashion-mnist (scripts/test.sh installs it). Expected figures are the
/// dataset's published ones (60,000 / 10,000, 6,000 / 1,000 per class) and values read with numpy from the same
/// files: the first training label is 9 (Ankle boot), the first test labels 9, 2, 1, 1, 6, the training pixel mean
/// 0.286041 and std 0.353024, the first training image's byte sum 76,247.
/// </summary>
public class FashionMnistTests
{

    [Fact]
    public void Load_Train_HasSixtyThousandBalancedImagesAndKnownLabels()
    {
        TrainingTestData.RequireFashionMnist();

        var train = FashionMnist.Train();

        (train.Count, train.Channels, train.Height, train.Width).Should().Be((60_000, 1, 28, 28));
        train.ClassNames[train.GetLabel(0)].Should().Be("Ankle boot");
        Enumerable.Range(0, train.Count).GroupBy(train.GetLabel).Select(g => g.Count()).Should().AllBeEquivalentTo(6000);
        var first = new float[784];
        train.ReadImage(0, first);
        first.Sum(v => (double)v * 255).Should().BeApproximately(76_247, 0.5);
        var (mean, std) = train.ComputeMeanStd();
        mean[0].Should().BeApproximately(0.286041, 1e-6);
        std[0].Should().BeApproximately(0.353024, 1e-6);
    }

    [Fact]
    public void Load_Test_HasTenThousandImagesAndKnownLabels()
    {
        TrainingTestData.RequireFashionMnist();

        var test = FashionMnist.Test();

        test.Count.Should().Be(10_000);
        Enumerable.Range(0, 5).Select(test.GetLabel).Should().Equal(9, 2, 1, 1, 6);
        test.ClassNames.Should().Equal("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot");
    }

    [Fact]
    public void Load_MissingFolder_ThrowsSayingHowToGetIt()
    {
        var act = () => FashionMnist.Train("/nonexistent/fashion");

        act.Should().Throw<FileNotFoundException>().WithMessage("*'/nonexistent/fashion'*apt-get install dataset-fashion-mnist*");
    }
}
