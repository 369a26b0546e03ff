#!/usr/bin/env bash
# A training step, ResNetSharp and PyTorch side by side in one run: ResNet-20 (the paper's CIFAR net, option A, 1 input
# channel, batch 128, 32² and 28²) and ResNet-18 (torchvision's, batch 16, 224²). Step = forward, cross-entropy,
# backward, SGD (momentum 0.9, weight decay 1e-4), eager; images/s = batch / median step time after warm-up.
# ResNetSharp runs in both training layouts (nchw, and auto = channels-last here), and in auto with glibc malloc tuned
# (--tune-allocator, what `resnet train` does by default); PyTorch (/usr/bin/python3, Debian's torch) in both memory
# formats, with glibc's default malloc and with the same tuning through the environment (MALLOC_MMAP_MAX_=0,
# MALLOC_TRIM_THRESHOLD_=1 GiB), so that the ratio is taken against PyTorch's best of all four. Every configuration runs in its own process, ROUNDS times interleaved, the load
# average logged before each; the table keeps each configuration's median over the rounds.
# Usage: ROUNDS=3 THREADS=2 tools/bench_train.sh [output.jsonl]     (build first: dotnet build samples/ResNet.Cli -c Release)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench-train.jsonl}
R=${RESNET:-samples/ResNet.Cli/bin/Release/net10.0/resnet}
PT="/usr/bin/python3 tools/bench_train_torch.py"
PTM="env MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1073741824 /usr/bin/python3 tools/bench_train_torch.py"
T=${THREADS:-2}
: > "$OUT"
log() { echo "# $(date -u +%H:%M:%S) load: $(cut -d' ' -f1-3 /proc/loadavg) :: $*" | tee -a "$OUT" >&2; }
run() { log "$*"; "$@" | grep '^{' | tee -a "$OUT" >/dev/null; }
for round in $(seq "${ROUNDS:-3}"); do
  for size in 32 28; do
    run $R bench resnet20 --train --batch 128 --input $size --in-channels 1 --iterations ${ITER20:-20} --warmup 3 --threads "$T" --layout nchw --json
    run $PT resnet20 --batch 128 --input $size --in-channels 1 --iterations ${ITER20:-20} --warmup 3 --threads "$T" --json
    run $R bench resnet20 --train --batch 128 --input $size --in-channels 1 --iterations ${ITER20:-20} --warmup 3 --threads "$T" --layout auto --json
    run $PTM resnet20 --batch 128 --input $size --in-channels 1 --iterations ${ITER20:-20} --warmup 3 --threads "$T" --json
    run $R bench resnet20 --train --batch 128 --input $size --in-channels 1 --iterations ${ITER20:-20} --warmup 3 --threads "$T" --layout auto --tune-allocator --json
  done
  run $R bench resnet18 --train --batch 16 --input 224 --iterations ${ITER18:-8} --warmup 2 --threads "$T" --layout nchw --json
  run $PT resnet18 --batch 16 --input 224 --iterations ${ITER18:-8} --warmup 2 --threads "$T" --json
  run $R bench resnet18 --train --batch 16 --input 224 --iterations ${ITER18:-8} --warmup 2 --threads "$T" --layout auto --json
  run $PTM resnet18 --batch 16 --input 224 --iterations ${ITER18:-8} --warmup 2 --threads "$T" --json
  run $R bench resnet18 --train --batch 16 --input 224 --iterations ${ITER18:-8} --warmup 2 --threads "$T" --layout auto --tune-allocator --json
done
log done
/usr/bin/python3 tools/summarize_train_bench.py "$OUT"
