using System;
using System.CommandLine;
using System.IO;
using System.Linq;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ResNetSharp.Cli;

/// <summary>Shared plumbing: one error line on stderr and a non-zero exit for every failure.</summary>
internal static class Cli
{
    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static int Run(RootCommand root, string[] args)
    {
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            Console.Error.WriteLine($"resnet: error: {parsed.Errors[0].Message} (see 'resnet --help')");
            return 2;
        }

        return parsed.Invoke();
    }

    /// <summary>Runs a command body, turning expected failures into one line on stderr and exit code 1.</summary>
    public static int Guard(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidDataException or IOException or InvalidOperationException
                                       or UnauthorizedAccessException or NotSupportedException or FormatException)
        {
            string message = ex is ArgumentException { ParamName: { } p } && ex.Message.EndsWith($" (Parameter '{p}')", StringComparison.Ordinal)
                ? ex.Message[..^$" (Parameter '{p}')".Length]
                : ex.Message;
            Console.Error.WriteLine($"resnet: error: {message.Split('\n').First().Trim()}");
            return 1;
        }
    }

    public static void WriteJson<T>(T value) => Console.WriteLine(JsonSerializer.Serialize(value, Json));

    /// <summary>The input size a model is meant for: 32 for CIFAR stems, 224 (the paper's crop) otherwise.</summary>
    public static int NaturalInputSize(ResNet model) => model.Table.Stem == StemKind.Cifar ? 32 : 224;

    public static StridePlacement ParseVariant(string? variant) => variant?.Trim().ToLowerInvariant() switch
    {
        null or "" or "v1.5" or "v1_5" or "1.5" => StridePlacement.V1_5,
        "v1" or "1" => StridePlacement.V1,
        _ => throw new ArgumentException($"Unknown variant '{variant}': expected v1 or v1.5."),
    };
}
