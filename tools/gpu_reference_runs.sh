#!/usr/bin/env bash
# Runs tools/torch_reference.py for the Fashion-MNIST experiments on one CUDA GPU, all configurations at once (one
# process each), and packs every run's metrics into OUT/results.tgz.
#   usage: tools/gpu_reference_runs.sh DATA_DIR OUT_DIR [DEADLINE_SECONDS [ONLY]]
# DATA_DIR holds the four Fashion-MNIST IDX files (.gz or not). Runs still going at the deadline are stopped; the epochs
# they finished are in their .jsonl. The nets are small enough that one process leaves most of the GPU idle, so the
# script tries CUDA MPS first (kernels of different processes then share the GPU) and goes on without it if MPS does
# not start.
set -uo pipefail
data=$1; out=$2; deadline=${3:-420}; only=${4:-.}  # ONLY: a regex of the run names to start
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d); mkdir -p "$out"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))" | tee "$work/env.txt"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >> "$work/env.txt" 2>&1
nproc >> "$work/env.txt"

export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log
mkdir -p $CUDA_MPS_PIPE_DIRECTORY $CUDA_MPS_LOG_DIRECTORY
if command -v nvidia-cuda-mps-control >/dev/null && nvidia-cuda-mps-control -d 2>>"$work/env.txt" \
   && timeout 90 python3 -c "import torch; torch.ones(1, device='cuda').add_(1); torch.cuda.synchronize()"; then
  echo "MPS: on" | tee -a "$work/env.txt"
else
  echo quit | nvidia-cuda-mps-control 2>/dev/null
  unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
  echo "MPS: off" | tee -a "$work/env.txt"
fi

step="--schedule step --lr 0.1 --weight-decay 1e-4"                  # the paper's CIFAR recipe (/10 at 50 %, 75 %)
acc="--schedule onecycle --lr 0.2 --weight-decay 5e-4 --random-erasing 0.5 --label-smoothing 0.1 --no-decay-norm-bias --nesterov"
runs=(
  "d48-resnet20|--model resnet20 --epochs 48 $step"    # 22,512 iterations: our CPU run's budget
  "d48-resnet56|--model resnet56 --epochs 48 $step"
  "d48-plain20|--model plain20 --epochs 48 $step"
  "d48-plain56|--model plain56 --epochs 48 $step"
  "d137-resnet20|--model resnet20 --epochs 137 $step"  # 64,253 iterations: the paper's 64k
  "d137-resnet56|--model resnet56 --epochs 137 $step"
  "a40-resnet56-s0|--model resnet56 --epochs 40 $acc --seed 0"   # `resnet train`'s 95 % recipe
  "a40-resnet56-s1|--model resnet56 --epochs 40 $acc --seed 1"
  "a40-resnet110-s0|--model resnet110 --epochs 40 $acc --seed 0"
)
pids=()
for r in "${runs[@]}"; do
  name=${r%%|*}; args=${r#*|}
  [[ $name =~ $only ]] || continue
  ( timeout "$deadline" python3 "$here/torch_reference.py" --data "$data" $args --out "$work/$name.jsonl" > "$work/$name.log" 2>&1 \
    || { grep -q "rerun with --eager" "$work/$name.log" && rm -f "$work/$name.jsonl" && \
         timeout "$deadline" python3 "$here/torch_reference.py" --data "$data" $args --eager --out "$work/$name.jsonl" >> "$work/$name.log" 2>&1; } ) &
  pids+=($!)
done
start=$(date +%s)
( while sleep 60; do echo "t+$(( $(date +%s) - start ))s $(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader)"; \
    for f in "$work"/*.jsonl; do printf '  %s %s\n' "$(basename "$f" .jsonl)" "$(wc -l < "$f")"; done; done ) >> "$work/progress.txt" 2>&1 &
watcher=$!
wait "${pids[@]}"
kill $watcher 2>/dev/null
echo "finished after $(( $(date +%s) - start )) s" | tee -a "$work/env.txt"
echo quit | nvidia-cuda-mps-control 2>/dev/null
tar -czf "$out/results.tgz" -C "$work" .
for f in "$work"/*.jsonl; do printf '%s %s epochs, last: %s\n' "$(basename "$f" .jsonl)" "$(wc -l < "$f")" "$(tail -1 "$f")"; done
tail -q -n 3 "$work"/*.log | grep -i -E 'error|fail|Traceback' | head -20
