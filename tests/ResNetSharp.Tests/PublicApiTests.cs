using System;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Text;
using FluentAssertions;
using Xunit;

namespace ResNetSharp.Tests;

/// <summary>
/// The public API is tracked: any change to it shows up as a diff of PublicApi.approved.txt. To approve a deliberate
/// change, run the tests with RESNETSHARP_APPROVE_API=1 and commit the rewritten file.
/// </summary>
public class PublicApiTests
{
    /// <summary>Every package of the library, by one type it ships (the CLI and samples are apps, not API).</summary>
    internal static readonly Assembly[] Packages =
    [
        typeof(ResNet).Assembly,                    // ResNetSharp: model, blocks, weights, metadata, ONNX
        typeof(PixelImage).Assembly,                // ResNetSharp.Images: SkiaSharp
        typeof(Trainer).Assembly,                   // ResNetSharp.Training
        typeof(DataParallel).Assembly,              // ResNetSharp.Distributed: MPI
        typeof(OnnxRuntimeResNet).Assembly,         // ResNetSharp.OnnxRuntime: fast path, int8, classifier
    ];

    [Fact]
    public void PublicApi_MatchesTheApprovedListing()
    {
        string current = string.Concat(Packages.Select(a => $"assembly {a.GetName().Name}\n{Describe(a)}"));
        string approvedPath = Path.Combine(SourceDirectory(), "PublicApi.approved.txt");
        if (Environment.GetEnvironmentVariable("RESNETSHARP_APPROVE_API") == "1")
        {
            File.WriteAllText(approvedPath, current);
        }

        File.Exists(approvedPath).Should().BeTrue($"{approvedPath} must exist (run with RESNETSHARP_APPROVE_API=1 to create it)");
        string approved = File.ReadAllText(approvedPath).Replace("\r\n", "\n", StringComparison.Ordinal);
        var added = current.Split('\n').Except(approved.Split('\n')).ToList();
        var removed = approved.Split('\n').Except(current.Split('\n')).ToList();
        (added.Count + removed.Count).Should().Be(0,
            "the public API changed; approve it with RESNETSHARP_APPROVE_API=1 if deliberate.\nAdded:\n  {0}\nRemoved:\n  {1}",
            string.Join("\n  ", added), string.Join("\n  ", removed));
    }

    [Fact]
    public void PublicApi_HasNoNamespaceNamedLikeAType()
    {
        var types = Packages.SelectMany(a => a.GetExportedTypes()).ToList();
        var namespaces = types.Select(t => t.Namespace).Distinct().ToList();
        types.Select(t => t.Name).Intersect(namespaces.SelectMany(n => n!.Split('.'))).Should().BeEmpty();
    }

    private static string Describe(Assembly assembly)
    {
        var sb = new StringBuilder();
        foreach (var type in assembly.GetExportedTypes().OrderBy(t => t.FullName, StringComparer.Ordinal))
        {
            string kind = type.IsEnum ? "enum" : type.IsInterface ? "interface" : type.IsValueType ? "struct" : type.IsAbstract && type.IsSealed ? "static class" : "class";
            sb.Append(kind).Append(' ').Append(type.FullName);
            if (type.BaseType is { } b && b != typeof(object) && b != typeof(Enum) && b != typeof(ValueType))
            {
                sb.Append(" : ").Append(Name(b));
            }

            sb.Append('\n');
            var members = type.GetMembers(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly)
                .Where(m => m is not MethodInfo { IsSpecialName: true } && m is not Type)
                .Select(Member)
                .Where(s => s.Length > 0)
                .OrderBy(s => s, StringComparer.Ordinal);
            foreach (string m in members)
            {
                sb.Append("  ").Append(m).Append('\n');
            }
        }

        return sb.ToString();
    }

    private static string Member(MemberInfo m) => m switch
    {
        ConstructorInfo c => $"ctor({Params(c.GetParameters())})",
        MethodInfo mi => $"{(mi.IsStatic ? "static " : "")}{Name(mi.ReturnType)} {mi.Name}({Params(mi.GetParameters())})",
        PropertyInfo p => $"{Name(p.PropertyType)} {p.Name} {{{(p.GetMethod?.IsPublic == true ? " get;" : "")}{(p.SetMethod?.IsPublic == true ? " set;" : "")} }}",
        FieldInfo f => $"{(f.IsLiteral ? "const " : f.IsStatic ? "static " : "")}{Name(f.FieldType)} {f.Name}",
        EventInfo e => $"event {Name(e.EventHandlerType!)} {e.Name}",
        _ => "",
    };

    private static string Params(ParameterInfo[] ps) => string.Join(", ", ps.Select(p => $"{Name(p.ParameterType)} {p.Name}{(p.HasDefaultValue ? " = " + (p.DefaultValue ?? "null") : "")}"));

    private static string Name(Type t)
    {
        if (t.IsGenericType)
        {
            string n = t.Name[..t.Name.IndexOf('`', StringComparison.Ordinal)];
            return $"{n}<{string.Join(", ", t.GetGenericArguments().Select(Name))}>";
        }

        return t.IsArray ? Name(t.GetElementType()!) + "[]" : t.FullName?.Replace('+', '.') ?? t.Name;
    }

    // Not [CallerFilePath]: CI builds map source paths to /_/ (ContinuousIntegrationBuild).
    private static string SourceDirectory()
    {
        var d = new DirectoryInfo(AppContext.BaseDirectory);
        while (d is not null && !File.Exists(Path.Combine(d.FullName, "ResNet.sln")))
        {
            d = d.Parent;
        }

        return d is null
            ? throw new InvalidOperationException("repository root (ResNet.sln) not found above the test binaries")
            : Path.Combine(d.FullName, "tests", "ResNetSharp.Tests");
    }
}
