#!/usr/bin/env bash
# Packs ResNetSharp into a local feed, then builds QuickStart's Program.cs as a stand-alone consumer app OUTSIDE
# the repository (so none of the repository's MSBuild files apply) against that package, and runs it. Proves the
# package carries the library, its docs, symbols and the native-load fix to an app that only references it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out="$root/artifacts/package-check"
rm -rf "$out"
mkdir -p "$out/feed"
version="0.1.0-local.$(date +%s)"

echo "== dotnet pack ResNetSharp $version =="
dotnet pack src/ResNetSharp/ResNetSharp.csproj -c Release -o "$out/feed" -p:Version="$version" -v q -nologo
pkg="$out/feed/ResNetSharp.$version.nupkg"
listing=$(unzip -l "$pkg")
for f in README.md lib/net10.0/ResNetSharp.dll lib/net10.0/ResNetSharp.xml buildTransitive/ResNetSharp.targets buildTransitive/PatchLibTorchSharpTask.cs; do
  grep -q " $f\$" <<<"$listing" || { echo "package lacks $f" >&2; exit 1; }
done
[ -f "$out/feed/ResNetSharp.$version.snupkg" ] || { echo "no symbol package" >&2; exit 1; }

consumer=$(mktemp -d /tmp/resnetsharp-consumer.XXXXXX)
trap 'rm -rf "$consumer"' EXIT
cp samples/QuickStart/Program.cs "$consumer/"
cat > "$consumer/NuGet.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="resnetsharp-local" value="$out/feed" />
  </packageSources>
</configuration>
XML
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
