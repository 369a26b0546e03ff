#!/usr/bin/env bash
# Issue 16's acceptance run: does `mpiexec -n 2 resnet train` reach the accuracy of one process, within seed noise?
# ResNet-20 on Fashion-MNIST (the first SUBSET training images, all 10,000 test images), EPOCHS epochs, onecycle, the
# same global batch of 128: one process × 2 threads at batch 128, and 2 MPICH ranks × 1 thread at 64 each, for each
# seed in SEEDS. Writes each run's metrics.jsonl under OUT and a Markdown table to OUT/results.md.
#
#   RESNET="dotnet /path/to/resnet.dll" SUBSET=12800 EPOCHS=4 SEEDS="0 1" OUT=docs/scale-out-accuracy bash tools/ddp_accuracy.sh
set -euo pipefail
RESNET=${RESNET:-"dotnet samples/ResNet.Cli/bin/Release/net10.0/resnet.dll"}
SUBSET=${SUBSET:-12800}
EPOCHS=${EPOCHS:-4}
SEEDS=${SEEDS:-"0 1"}
OUT=${OUT:-docs/scale-out-accuracy}
mkdir -p "$OUT"
common=(train resnet20 --dataset fashion-mnist --subset "$SUBSET" --test-subset 10000 --epochs "$EPOCHS" --schedule onecycle --json)
for seed in $SEEDS; do
  dir="$OUT/1proc-seed$seed"
  [ -f "$dir/metrics.jsonl" ] && [ "$(wc -l < "$dir/metrics.jsonl")" -ge "$EPOCHS" ] || \
    $RESNET "${common[@]}" --batch 128 --threads 2 --seed "$seed" --out "$dir" > "$dir.log" 2>&1
  dir="$OUT/2ranks-seed$seed"
  [ -f "$dir/metrics.jsonl" ] && [ "$(wc -l < "$dir/metrics.jsonl")" -ge "$EPOCHS" ] || \
    OMP_NUM_THREADS=1 mpiexec.mpich -n 2 $RESNET "${common[@]}" --batch 64 --threads 1 --seed "$seed" --out "$dir" > "$dir.log" 2>&1
done
{
  echo "| run | seed | test top-1 after epoch 1 … $EPOCHS | final | best | images/s (last epoch) |"
  echo "|---|---|---|---|---|---|"
  for run in 1proc 2ranks; do
    for seed in $SEEDS; do
      /usr/bin/python3 - "$OUT/$run-seed$seed/metrics.jsonl" "$run" "$seed" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
name = {"1proc": "1 process × 2 threads, batch 128", "2ranks": "2 MPICH ranks × 1 thread, 64 each"}[sys.argv[2]]
tops = [100 * r["testTop1"] for r in rows]
print(f"| {name} | {sys.argv[3]} | {', '.join(f'{t:.2f}' for t in tops)} | {tops[-1]:.2f} % | {max(tops):.2f} % | {rows[-1]['imagesPerSecond']:.0f} |")
PY
    done
  done
} > "$OUT/results.md"
cat "$OUT/results.md"
