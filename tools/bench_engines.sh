#!/usr/bin/env bash
# The engine decision of issue 15: the hand-made engine (ForHandMadeInference, Auto layout) against ONNX Runtime through
# ForInference(), ONNX Runtime run directly on the exported file, and torchvision 0.14 channels-last with and without
# glibc malloc tuning, for ResNet-18/50/101 at 224² and the CIFAR ResNet-20 at 32² (no torchvision peer: not a
# torchvision model), batches 1, 16 and 64. Every configuration runs in its own process (peak RSS is its own); for each
# model and batch the engines run back to back, and the whole matrix ROUNDS times, so that load from other processes
# hits all engines alike. One JSON line per configuration.
# The hand-made engine was deleted after this decision (docs/performance.md): its --optimized rows need the CLI of
# commit 5670582; with a later CLI those lines fail and are logged as FAILED.
# Usage: ROUNDS=2 THREADS=2 tools/bench_engines.sh [output.jsonl]   (build first: dotnet build samples/ResNet.Cli -c Release)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench-engines.jsonl}
R=${RESNET:-samples/ResNet.Cli/bin/Release/net10.0/resnet}
TV="/usr/bin/python3 tools/bench_torchvision.py"
T=${THREADS:-2}
log() { echo "# $(date -u +%H:%M:%S) load: $(cut -d' ' -f1-3 /proc/loadavg) :: $*" | tee -a "$OUT"; }
run() { log "$*"; "$@" | tee -a "$OUT" || log "FAILED: $*"; }
iters() { case $1 in 1) echo "--iterations 5 --warmup 2";; 16) echo "--iterations 3 --warmup 1";; *) echo "--iterations 2 --warmup 1";; esac; }
for round in $(seq "${ROUNDS:-2}"); do
  for b in 1 16 64; do
    I=$(iters $b)
    run $R bench resnet20 --input 32 --batch $b $I --threads "$T" --optimized --ort --ort-file --json
    for m in resnet18 resnet50 resnet101; do
      run $R bench $m --batch $b $I --threads "$T" --optimized --json
      run $R bench $m --batch $b $I --threads "$T" --ort --json
      run $R bench $m --batch $b $I --threads "$T" --ort-file --json
      run $TV $m --batch $b $I --threads "$T" --modes channels_last --json
      run env MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1073741824 $TV $m --batch $b $I --threads "$T" --modes channels_last --json
    done
  done
done
log done
