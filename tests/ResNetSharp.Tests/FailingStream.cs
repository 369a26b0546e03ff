using System;
using System.IO;

namespace ResNetSharp.Tests;

/// <summary>Passes writes through until <c>failAfter</c> bytes, then throws: a disk that fills up mid-save.</summary>
internal sealed class FailingStream(Stream inner, long failAfter) : Stream
{
    private long written;

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => written;

    public override long Position { get => written; set => throw new NotSupportedException(); }

    public override void Flush() => inner.Flush();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (written + buffer.Length > failAfter)
        {
            int part = (int)Math.Max(0, failAfter - written);
            inner.Write(buffer[..part]);
            written += part;
            throw new IOException($"injected failure after {written} bytes");
        }

        inner.Write(buffer);
        written += buffer.Length;
    }
}
