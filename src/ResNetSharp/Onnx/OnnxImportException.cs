using System;
using System.IO;

namespace ResNetSharp.Onnx;

/// <summary>
/// An ONNX file that <see cref="OnnxImporter"/> cannot map onto a <see cref="ResNet"/>: not ONNX, truncated, opset too
/// old, an operator or a pattern the importer does not know, or shapes that do not fit. The message names the file,
/// the node (name, operator, index) where it applies, and what was expected. No model is returned when it is thrown.
/// </summary>
public sealed class OnnxImportException : IOException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="file">The ONNX file (or source name).</param>
    /// <param name="message">What is wrong and what was expected.</param>
    /// <param name="nodeName">The node's name, or null when the problem is not at a node.</param>
    /// <param name="opType">The node's operator.</param>
    /// <param name="nodeIndex">The node's index in the graph.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public OnnxImportException(string file, string message, string? nodeName = null, string? opType = null, int? nodeIndex = null,
        Exception? inner = null)
        : base(Format(file, message, nodeName, opType, nodeIndex), inner)
    {
        File = file;
        NodeName = nodeName;
        OpType = opType;
        NodeIndex = nodeIndex;
    }

    /// <summary>The ONNX file (or source name).</summary>
    public string File { get; }

    /// <summary>The offending node's name ("" when the node is unnamed), or null when the problem is not at a node.</summary>
    public string? NodeName { get; }

    /// <summary>The offending node's operator, or null.</summary>
    public string? OpType { get; }

    /// <summary>The offending node's index in the graph's node list, or null.</summary>
    public int? NodeIndex { get; }

    private static string Format(string file, string message, string? nodeName, string? opType, int? nodeIndex) =>
        nodeIndex is null && opType is null
            ? $"{file}: {message}"
            : $"{file}: node '{nodeName}' ({opType}, #{nodeIndex}): {message}";
}
