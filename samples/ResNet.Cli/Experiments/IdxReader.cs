using System.IO;
using ResNetSharp.Training;

namespace ResNetSharp.Cli.Experiments;

/// <summary>
/// The pointing-game experiment's view of MNIST-format IDX files, now read by the library's <see cref="IdxFile"/>
/// (gzip detected from the bytes; bad files named in an <see cref="InvalidDataException"/>).
/// </summary>
internal static class IdxReader
{
    public static (byte[] Pixels, int Count, int Rows, int Cols) ReadImages(string path)
    {
        var (shape, data) = Read(path);
        if (shape.Length != 3)
        {
            throw new InvalidDataException($"{path}: IDX images must be N × rows × cols, got [{string.Join(", ", shape)}].");
        }

        return (data, shape[0], shape[1], shape[2]);
    }

    public static byte[] ReadLabels(string path)
    {
        var (shape, data) = Read(path);
        if (shape.Length != 1)
        {
            throw new InvalidDataException($"{path}: IDX labels must be one-dimensional, got [{string.Join(", ", shape)}].");
        }

        return data;
    }

    private static (int[] Shape, byte[] Data) Read(string path) =>
        File.Exists(path)
            ? IdxFile.Read(path)
            : throw new FileNotFoundException($"{path} does not exist (Fashion-MNIST: apt-get install dataset-fashion-mnist).", path);
}
