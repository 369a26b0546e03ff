using Xunit;

namespace ResNetSharp.Tests;

/// <summary>
/// The tests that read process-wide memory (VmRSS, glibc's bytes in use). xUnit runs test classes in parallel, so
/// another test's tensors would count as this test's growth: CI once saw 5 MiB of malloc growth during a flat ONNX
/// Runtime loop while other classes ran beside it. Classes in this collection run alone, after the parallel ones.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessMemoryCollection
{
    /// <summary>The collection's name, for <see cref="CollectionAttribute"/>.</summary>
    public const string Name = "process-wide memory";
}
