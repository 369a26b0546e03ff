#!/usr/bin/env bash
# Packs every ResNetSharp package into a local feed, then, OUTSIDE the repository (so none of its MSBuild files apply):
#  1. builds a model-only consumer against the core package alone and proves its dependency closure has nothing heavy
#     (no SkiaSharp native assets, ONNX Runtime, Spectre.Console, ScottPlot or the other ResNetSharp packages);
#  2. builds QuickStart's Program.cs against the packages it needs and runs it;
#  3. packs the resnet command as a .NET tool (ResNetSharp.Cli, RID-specific: a pointer package and ResNetSharp.Cli.linux-x64),
#     installs it with 'dotnet tool install' from the feed into a temporary folder and runs 'resnet list' and a short
#     'resnet train' on a small synthetic IDX data set, then 'resnet eval' on the weights it wrote.
# Proves the packages carry the library, its docs, symbols and the native-load fix to an app that only references them,
# and that the installed tool runs.
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
tooldir=$(mktemp -d /tmp/resnetsharp-tool.XXXXXX)
trap 'rm -rf "$consumer" "$core" "$tooldir"' EXIT
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
Console.WriteLine($"core-only: {back.Summarize(224).LayerFormula} layers, {back.Summarize(224).Parameters:N0} parameters, exported ONNX");
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

echo "== dotnet pack ResNetSharp.Cli $version (the resnet tool) =="
# Outside the same nuget cache entry as earlier runs: a tool version is installed once per version, and $version is new.
dotnet pack samples/ResNet.Cli/ResNet.Cli.csproj -c Release -o "$out/feed" -p:Version="$version" -v q -nologo
toolpkg="$out/feed/ResNetSharp.Cli.$version.nupkg"
ridpkg="$out/feed/ResNetSharp.Cli.linux-x64.$version.nupkg"
for f in "$toolpkg" "$ridpkg"; do [ -f "$f" ] || { echo "no tool package $f" >&2; exit 1; }; done
# nuget.org refuses packages over 250 MB (taken as 250,000,000 bytes, the stricter reading): the libtorch-carrying
# linux-x64 package (210 MB on 3 Dec 2026: libtorch_cpu.so 118 MB, ML.NET's ResNet-18 59 MB) must stay under it.
limit=250000000
for f in "$toolpkg" "$ridpkg"; do
  size=$(stat -c %s "$f")
  echo "$(basename "$f"): $((size / 1024 / 1024)) MiB ($size bytes)"
  [ "$size" -lt "$limit" ] || { echo "$(basename "$f") is over nuget.org's 250 MB limit" >&2; exit 1; }
done
toollisting=$(unzip -l "$ridpkg")
for f in tools/net10.0/linux-x64/resnet.dll tools/net10.0/linux-x64/DotnetToolSettings.xml tools/net10.0/linux-x64/libLibTorchSharp.so \
         tools/net10.0/linux-x64/libtorch_cpu.so tools/net10.0/linux-x64/DnnImageModels/ResNet18Onnx/ResNet18.onnx; do
  grep -q " $f\$" <<<"$toollisting" || { echo "the tool package lacks $f" >&2; exit 1; }
done

echo "== dotnet tool install ResNetSharp.Cli $version from the local feed =="
# From the temporary folder, so that no repository NuGet.config or global.json applies.
(cd "$tooldir" && dotnet tool install --tool-path "$tooldir/bin" --add-source "$out/feed" ResNetSharp.Cli --version "$version")
resnet="$tooldir/bin/resnet"
[ -x "$resnet" ] || { echo "dotnet tool install left no resnet command" >&2; exit 1; }
"$resnet" list > "$out/tool-list.log" 2>&1 || { cat "$out/tool-list.log" >&2; echo "the installed 'resnet list' failed" >&2; exit 1; }
for name in resnet50 resnet20 plain56; do
  grep -qE "^ *$name " "$out/tool-list.log" || { echo "'resnet list' of the installed tool does not name $name" >&2; exit 1; }
done

# A short training run that needs no dataset: 10 classes of 28×28 grey images (a bright band at a class-dependent row,
# plus noise), written in MNIST's IDX format, which 'resnet train --dataset FOLDER' reads like Fashion-MNIST.
data="$tooldir/idx"
/usr/bin/python3 - "$data" <<'PY'
import gzip, os, random, struct, sys
out = sys.argv[1]; os.makedirs(out, exist_ok=True); rng = random.Random(0)
def write(prefix, n):
    labels = [i % 10 for i in range(n)]
    pixels = bytearray()
    for k in labels:
        for y in range(28):
            for x in range(28):
                band = 2 + 2 * k <= y < 5 + 2 * k
                pixels.append(min(255, (200 if band else 20) + rng.randrange(40)))
    with gzip.open(os.path.join(out, f"{prefix}-images-idx3-ubyte.gz"), "wb") as f:
        f.write(struct.pack(">iiii", 2051, n, 28, 28) + bytes(pixels))
    with gzip.open(os.path.join(out, f"{prefix}-labels-idx1-ubyte.gz"), "wb") as f:
        f.write(struct.pack(">ii", 2049, n) + bytes(labels))
write("train", 640); write("t10k", 160)
PY
run="$tooldir/run"
echo "== the installed tool: resnet train resnet20 on 640 synthetic images, 1 epoch =="
start=$(date +%s)
"$resnet" train resnet20 --dataset "$data" --epochs 1 --batch 64 --threads 2 --out "$run" --json > "$out/tool-train.log" 2> "$out/tool-train.err" ||
  { cat "$out/tool-train.log" "$out/tool-train.err" >&2; echo "the installed 'resnet train' failed" >&2; exit 1; }
echo "took $(( $(date +%s) - start )) s"
cat "$out/tool-train.log"
grep -q '^{"epoch":1,.*"model":"resnet20"' "$out/tool-train.log" || { echo "the installed 'resnet train' printed no epoch line" >&2; exit 1; }
for f in model.safetensors best.safetensors checkpoint.safetensors metrics.jsonl curves.png; do
  [ -s "$run/$f" ] || { echo "the installed 'resnet train' did not write $f" >&2; exit 1; }
done
if grep -q NNPACK "$out/tool-train.err"; then echo "libtorch's NNPACK warnings reached the tool's console" >&2; exit 1; fi
"$resnet" eval --weights "$run/model.safetensors" --dataset "$data" --json > "$out/tool-eval.log" 2>&1 ||
  { cat "$out/tool-eval.log" >&2; echo "the installed 'resnet eval' could not read the weights it wrote" >&2; exit 1; }
grep -q '"count": *160' "$out/tool-eval.log" || { cat "$out/tool-eval.log" >&2; echo "the installed 'resnet eval' did not score the 160 test images" >&2; exit 1; }
echo "tool check passed: $(basename "$toolpkg") + $(basename "$ridpkg") install with 'dotnet tool install' and run"
echo "package check passed: $pkg"
