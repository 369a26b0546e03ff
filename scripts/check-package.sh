#!/usr/bin/env bash
# Packs every ResNetSharp package into a local feed, then, OUTSIDE the repository (so none of its MSBuild files apply):
#  1. builds a model-only consumer against the core package alone and proves its dependency closure has nothing heavy
#     (no SkiaSharp native assets, ONNX Runtime, Spectre.Console, ScottPlot or the other ResNetSharp packages);
#  2. builds QuickStart's Program.cs against the packages it needs and runs it.
# Proves the packages carry the library, its docs, symbols and the native-load fix to an app that only references them.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out="$root/artifacts/package-check"
rm -rf "$out"
mkdir -p "$out/feed"
version="0.1.0-local.$(date +%s)"

packages=(ResNetSharp ResNetSharp.Images ResNetSharp.Training ResNetSharp.OnnxRuntime ResNetSharp.Distributed)
for p in "${packages[@]}"; do
  echo "== dotnet pack $p $version =="
  dotnet pack "src/$p/$p.csproj" -c Release -o "$out/feed" -p:Version="$version" -v q -nologo
  [ -f "$out/feed/$p.$version.nupkg" ] || { echo "no package $p" >&2; exit 1; }
  [ -f "$out/feed/$p.$version.snupkg" ] || { echo "no symbol package for $p" >&2; exit 1; }
  # Into a variable first: grep -q closing the pipe early would fail the pipeline (SIGPIPE) under pipefail.
  contents=$(unzip -l "$out/feed/$p.$version.nupkg")
  grep -q " lib/net10.0/$p.xml\$" <<<"$contents" || { echo "$p lacks its XML docs" >&2; exit 1; }
done
pkg="$out/feed/ResNetSharp.$version.nupkg"
listing=$(unzip -l "$pkg")
for f in README.md lib/net10.0/ResNetSharp.dll lib/net10.0/ResNetSharp.xml buildTransitive/ResNetSharp.targets buildTransitive/PatchLibTorchSharpTask.cs; do
  grep -q " $f\$" <<<"$listing" || { echo "package lacks $f" >&2; exit 1; }
done
# The core package names no heavy dependency itself. (TorchSharp 0.107 itself depends on the managed SkiaSharp 2.88 and
# Google.Protobuf; those come with TorchSharp to every TorchSharp app, and without SkiaSharp's native library.)
nuspec=$(unzip -p "$pkg" ResNetSharp.nuspec)
for heavy in SkiaSharp Microsoft.ML.OnnxRuntime Spectre.Console ScottPlot; do
  if grep -q "id=\"$heavy" <<<"$nuspec"; then echo "the core package depends on $heavy" >&2; exit 1; fi
done

consumer=$(mktemp -d /tmp/resnetsharp-consumer.XXXXXX)
core=$(mktemp -d /tmp/resnetsharp-core.XXXXXX)
trap 'rm -rf "$consumer" "$core"' EXIT
for dir in "$core" "$consumer"; do cat > "$dir/NuGet.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="resnetsharp-local" value="$out/feed" />
  </packageSources>
</configuration>
XML
done

echo "== a model-only app against the core package alone =="
cat > "$core/Program.cs" <<'CS'
using System;
using ResNetSharp;
using ResNetSharp.Introspection;
using ResNetSharp.Onnx;
using ResNetSharp.Weights;

using var model = ResNetFactory.ResNet18();
string dir = args[0];
model.SaveWeights(System.IO.Path.Combine(dir, "r18.safetensors"));
using var back = ResNetFactory.FromWeights(System.IO.Path.Combine(dir, "r18.safetensors"));
model.ExportOnnx(System.IO.Path.Combine(dir, "r18.onnx"));
Console.WriteLine($"core-only: {back.Summarize(224).LayerFormula} layers, {ModelInspector.CountParameters(back):N0} parameters, exported ONNX");
CS
cat > "$core/Core.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="ResNetSharp" Version="$version" />
    <PackageReference Include="TorchSharp-cpu" Version="0.107.0" />
  </ItemGroup>
</Project>
XML
dotnet build "$core/Core.csproj" -c Release -nologo -v q -o "$core/bin"
# The whole restore closure (every package, direct or transitive) of the model-only app, less what a bare TorchSharp app
# already gets (TorchSharp 0.107 depends on the managed SkiaSharp 2.88 and, through it, its macOS/Windows assets).
mkdir -p "$core/bare"
cat > "$core/bare/Bare.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><TargetFramework>net10.0</TargetFramework></PropertyGroup>
  <ItemGroup><PackageReference Include="TorchSharp-cpu" Version="0.107.0" /></ItemGroup>
</Project>
XML
dotnet restore "$core/bare/Bare.csproj" -v q --configfile "$core/NuGet.config" >/dev/null
closure() { /usr/bin/python3 -c 'import json,sys; print("\n".join(sorted(k.split("/")[0] for k in json.load(open(sys.argv[1]))["libraries"])))' "$1"; }
ours=$(comm -23 <(closure "$core/obj/project.assets.json") <(closure "$core/bare/obj/project.assets.json"))
echo "the core package adds to a TorchSharp app: $(tr '\n' ' ' <<<"$ours")"
bad=$(grep -iE "^(SkiaSharp|Microsoft\.ML\.OnnxRuntime|Spectre\.Console|ScottPlot|ResNetSharp\.)" <<<"$ours" || true)
[ -z "$bad" ] || { echo "the core package pulls heavy dependencies into a model-only app: $bad" >&2; exit 1; }
dotnet "$core/bin/Core.dll" "$core" | tee "$out/core.log"
grep -q "core-only: 1 + 16 + 1 = 18 layers, 11,689,512 parameters" "$out/core.log" || { echo "the model-only app did not run" >&2; exit 1; }

cp samples/QuickStart/Program.cs "$consumer/"
cat > "$consumer/Consumer.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <AssemblyName>QuickStart</AssemblyName>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="ResNetSharp" Version="$version" />
    <PackageReference Include="ResNetSharp.Images" Version="$version" />
    <PackageReference Include="ResNetSharp.Training" Version="$version" />
    <PackageReference Include="ResNetSharp.OnnxRuntime" Version="$version" />
    <PackageReference Include="TorchSharp-cpu" Version="0.107.0" />
  </ItemGroup>
</Project>
XML

echo "== building the consumer app against the package =="
dotnet build "$consumer/Consumer.csproj" -c Release -nologo -v q -o "$consumer/bin"
grep -q '"ResNetSharp/'"$version"'"' "$consumer/bin/QuickStart.deps.json" || { echo "the consumer did not use the package" >&2; exit 1; }

echo "== running the consumer app =="
# A tiny training budget here (the README's run trains on 10,000 images): this checks the package, not accuracy. Into the
# log first, then its head: piping through head could end the pipeline early with SIGPIPE (exit 141).
QUICKSTART_TRAIN_IMAGES="${QUICKSTART_TRAIN_IMAGES:-512}" dotnet "$consumer/bin/QuickStart.dll" > "$out/quickstart.log" 2>&1
head -20 "$out/quickstart.log"
# libtorch's "Could not initialize NNPACK" warnings must not reach a user's console through the package either.
if grep -q NNPACK "$out/quickstart.log"; then echo "libtorch's NNPACK warnings reached the consumer's console" >&2; exit 1; fi
grep -q "resnet101 .*1 + 99 + 1 = 101" "$out/quickstart.log" || { echo "the consumer's output is not what the package should give" >&2; exit 1; }
if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  grep -q "^test top-1 " "$out/quickstart.log" || { echo "the consumer did not train on Fashion-MNIST" >&2; exit 1; }
fi
# SkiaSharp's native library (libSkiaSharp.so) must reach the app through the package alone: QuickStart encodes and decodes a PNG.
grep -q "image classifier: .* PNG bytes -> 32² input -> top-3" "$out/quickstart.log" || { echo "the consumer could not decode an image through the package" >&2; exit 1; }
echo "package check passed: $pkg"
