#!/usr/bin/env bash
# Packs ResNetSharp into a local folder, builds QuickStart against that package (not the project) and runs it:
# proves the package carries the library, its docs and the native-load fix to a consumer app.
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
for f in README.md lib/net10.0/ResNetSharp.dll lib/net10.0/ResNetSharp.xml buildTransitive/ResNetSharp.targets buildTransitive/PatchLibTorchSharpTask.cs; do
  unzip -l "$pkg" | grep -q " $f\$" || { echo "package lacks $f" >&2; exit 1; }
done
[ -f "$out/feed/ResNetSharp.$version.snupkg" ] || { echo "no symbol package" >&2; exit 1; }

echo "== building QuickStart against the package =="
# The version is unique to this run, so the global package cache cannot hand back a stale ResNetSharp.
dotnet build samples/QuickStart/QuickStart.csproj -c Release -nologo -v q \
  -p:UseResNetSharpPackage=true -p:ResNetSharpPackageVersion="$version" \
  -p:BaseIntermediateOutputPath="$out/obj/" -p:OutDir="$out/bin/" -p:RestoreAdditionalProjectSources="$out/feed"
grep -q '"ResNetSharp/'"$version"'"' "$out/bin/QuickStart.deps.json" || { echo "QuickStart did not use the package" >&2; exit 1; }

echo "== running QuickStart from the package build =="
dotnet "$out/bin/QuickStart.dll" | tee "$out/quickstart.log" | head -20
grep -q "resnet101 .*1 + 99 + 1 = 101" "$out/quickstart.log" || { echo "QuickStart output is not what the package should give" >&2; exit 1; }
echo "package check passed: $pkg"
