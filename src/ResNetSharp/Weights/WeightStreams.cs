using System;
using System.Buffers.Binary;
using System.IO;

namespace ResNetSharp.Weights;

/// <summary>Stream helpers shared by the format readers: bounded reads whose failures become <see cref="InvalidDataException"/>.</summary>
internal static class WeightStreams
{
    /// <summary>Opens <paramref name="path"/> for one sequential read and parses it with <paramref name="read"/> (the path names the source in messages).</summary>
    public static WeightFile ReadFile(string path, Func<Stream, string, WeightFile> read)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        return read(stream, path);
    }

    /// <summary>Parses <paramref name="stream"/> with <paramref name="readSeekable"/>, copying a non-seekable stream into memory first.</summary>
    public static WeightFile ReadStream(Stream stream, string? sourceName, Func<Stream, string, WeightFile> readSeekable)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var s = EnsureSeekable(stream, out var owned);
        try
        {
            return readSeekable(s, sourceName ?? "stream");
        }
        finally
        {
            owned?.Dispose();
        }
    }

    /// <summary>Returns <paramref name="stream"/> when it can seek; otherwise copies it into memory (growing with the bytes actually read, never with a size the data claims).</summary>
    public static Stream EnsureSeekable(Stream stream, out Stream? owned)
    {
        if (stream.CanSeek)
        {
            owned = null;
            return stream;
        }

        var memory = new MemoryStream();
        stream.CopyTo(memory);
        memory.Position = 0;
        owned = memory;
        return memory;
    }

    /// <summary>Fills <paramref name="buffer"/> or throws <see cref="InvalidDataException"/> naming what was being read.</summary>
    public static void ReadExactly(Stream stream, Span<byte> buffer, string source, string what)
    {
        try
        {
            stream.ReadExactly(buffer);
        }
        catch (EndOfStreamException ex)
        {
            throw Bad(source, $"unexpected end of data while reading {what} (truncated file?)", ex);
        }
    }

    public static ulong ReadUInt64LittleEndian(Stream stream, string source, string what)
    {
        Span<byte> bytes = stackalloc byte[8];
        ReadExactly(stream, bytes, source, what);
        return BinaryPrimitives.ReadUInt64LittleEndian(bytes);
    }

    public static InvalidDataException Bad(string source, string problem, Exception? inner = null) =>
        new($"{source}: {problem}", inner);
}

/// <summary>
/// Writes a file atomically: the content goes to a temporary file in the same folder (so the rename cannot cross
/// file systems), is flushed to disk, and only then renamed over the target. A failure at any point leaves the
/// previous file as it was and removes the temporary file. On Linux and macOS the folder is fsynced after the rename,
/// so the rename itself survives a power cut.
/// </summary>
internal static class AtomicFile
{
    public static void Write(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(full) ?? throw new ArgumentException($"'{path}' has no folder.", nameof(path));
        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"Cannot save '{full}': folder '{directory}' does not exist.");
        }

        string temp = Path.Combine(directory, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                var target = Runtime.TestSeams.WrapWrite?.Invoke(file) ?? file;
                write(target);
                target.Flush();
                file.Flush(flushToDisk: true); // fsync: the rename must never expose a file whose bytes are still in the page cache only
            }

            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }

        SyncDirectory(directory);
    }

    /// <summary>fsync(2) on the folder: makes the rename durable (a no-op on Windows, where NTFS journals renames).</summary>
    internal static void SyncDirectory(string directory)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        int fd = Posix.open(System.Text.Encoding.UTF8.GetBytes(directory + "\0"), 0 /* O_RDONLY */);
        if (fd < 0)
        {
            return; // best effort: some file systems refuse to open folders; the data itself is already on disk
        }

        try
        {
            Posix.fsync(fd);
        }
        finally
        {
            Posix.close(fd);
        }
    }

    private static class Posix
    {
        [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
        internal static extern int open(byte[] path, int flags);

        [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
        internal static extern int fsync(int fd);

        [System.Runtime.InteropServices.DllImport("libc")]
        internal static extern int close(int fd);
    }

    private static void TryDelete(string temp)
    {
        try
        {
            File.Delete(temp);
        }
        catch (IOException)
        {
            // Best effort: the original exception is the one that matters.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
