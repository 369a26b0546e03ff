using System;
using FluentAssertions;
using TorchSharp;
using Xunit;

namespace ResNetSharp.Tests;

public class RuntimeTuningTests
{
    [Fact]
    public void TorchThreads_SetIntraOp_IsReported()
    {
        int before = TorchThreads.IntraOp;
        try
        {
            TorchThreads.SetIntraOp(1);
            TorchThreads.IntraOp.Should().Be(1);
        }
        finally
        {
            TorchThreads.SetIntraOp(before);
        }

        TorchThreads.IntraOp.Should().Be(before);
    }

    [Fact]
    public void TorchThreads_Zero_Throws()
    {
        Action act = () => TorchThreads.SetIntraOp(0);
        act.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*≥ 1*");
    }
}
