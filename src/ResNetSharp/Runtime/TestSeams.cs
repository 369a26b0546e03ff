using System;
using System.IO;
using System.Threading;

namespace ResNetSharp.Runtime;

/// <summary>
/// The one place where tests reach into the library's I/O: a wrapper around every atomic write's stream (to fail it
/// mid-write) and a callback after each tensor a weight load copies (to fail it half-way). Scoped to the calling
/// async flow, so parallel tests do not see each other's seams, and no production signature carries a test parameter.
/// </summary>
internal static class TestSeams
{
    private static readonly AsyncLocal<Func<Stream, Stream>?> WrapWriteSlot = new();
    private static readonly AsyncLocal<Action<int>?> AfterWeightCopySlot = new();

    /// <summary>Wraps the temporary file's stream of every <see cref="Weights.AtomicFile"/> write in this flow; null in production.</summary>
    internal static Func<Stream, Stream>? WrapWrite => WrapWriteSlot.Value;

    /// <summary>Called with the count of tensors copied so far, after each copy of a weight load in this flow; null in production.</summary>
    internal static Action<int>? AfterWeightCopy => AfterWeightCopySlot.Value;

    /// <summary>Installs seams until the returned scope is disposed.</summary>
    internal static IDisposable Inject(Func<Stream, Stream>? wrapWrite = null, Action<int>? afterWeightCopy = null)
    {
        var previous = (WrapWriteSlot.Value, AfterWeightCopySlot.Value);
        WrapWriteSlot.Value = wrapWrite;
        AfterWeightCopySlot.Value = afterWeightCopy;
        return new Scope(previous);
    }

    private sealed class Scope((Func<Stream, Stream>?, Action<int>?) previous) : IDisposable
    {
        public void Dispose()
        {
            WrapWriteSlot.Value = previous.Item1;
            AfterWeightCopySlot.Value = previous.Item2;
        }
    }
}
