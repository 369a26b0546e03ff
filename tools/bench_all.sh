#!/usr/bin/env bash
# Runs the measurements behind docs/performance.md: the fp32 FMA peak, ResNetSharp (plain, optimised in the Auto
# layout and in channels-last, with and without the allocator opt-in, ONNX Runtime through ForInference() and run
# directly on the exported file), torchvision 0.14 (plain, channels-last) and a
# ResNet-18 training step, one JSON line each,
# each configuration in its own process, ROUNDS times interleaved (so that load from other processes hits all
# configurations alike). Usage: ROUNDS=2 THREADS=2 tools/bench_all.sh [output.jsonl]
# Build the CLI first: dotnet build samples/ResNet.Cli -c Release
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench.jsonl}
R=samples/ResNet.Cli/bin/Release/net10.0/resnet
TV="/usr/bin/python3 tools/bench_torchvision.py"
T=${THREADS:-2}
log() { echo "# $(date -u +%H:%M:%S) load: $(cut -d' ' -f1-3 /proc/loadavg) :: $*" | tee -a "$OUT"; }
run() { log "$*"; "$@" | tee -a "$OUT"; }
for round in $(seq "${ROUNDS:-2}"); do
  run $R peak --threads "$T" --json
  run $R bench resnet50 --batch 16 --iterations 5 --warmup 2 --threads "$T" --json
  run $R bench resnet50 --batch 16 --iterations 5 --warmup 2 --threads "$T" --optimized --layout nhwc --json
  run $R bench resnet50 --batch 16 --iterations 5 --warmup 2 --threads "$T" --ort --json
  run $R bench resnet50 --batch 16 --iterations 5 --warmup 2 --threads "$T" --ort-file --json
  run $TV resnet50 --batch 16 --iterations 5 --warmup 2 --threads "$T" --json
  run $R bench resnet50 --batch 16 --iterations 5 --warmup 2 --threads "$T" --tune-allocator --json
  run env MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1073741824 $TV resnet50 --batch 16 --iterations 5 --warmup 2 --threads "$T" --modes channels_last --json
  run $R bench resnet50 --batch 1 --iterations 20 --warmup 3 --threads "$T" --json
  run $R bench resnet50 --batch 1 --iterations 20 --warmup 3 --threads "$T" --optimized --layout nhwc --json
  run $R bench resnet50 --batch 1 --iterations 20 --warmup 3 --threads "$T" --ort --json
  run $R bench resnet50 --batch 1 --iterations 20 --warmup 3 --threads "$T" --ort-file --json
  run $TV resnet50 --batch 1 --iterations 20 --warmup 3 --threads "$T" --json
  run env MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1073741824 $TV resnet50 --batch 1 --iterations 20 --warmup 3 --threads "$T" --modes channels_last --json
  run $R bench resnet50 --batch 1 --iterations 20 --warmup 3 --threads "$T" --tune-allocator --json
  run $R bench resnet18 --batch 16 --train --iterations 5 --warmup 2 --threads "$T" --json
  run $R bench resnet18 --batch 16 --train --iterations 5 --warmup 2 --threads "$T" --tune-allocator --json
done
log done
