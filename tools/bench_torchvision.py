#!/usr/bin/python3
"""Times torchvision's ResNets on the CPU with the same protocol and fields as `resnet bench --json`.

Each configuration (batch x mode) runs in a fresh child process, so peakRssMiB (ru_maxrss) is that
configuration's own peak. Modes: plain (NCHW, eval, no_grad) and channels_last (model and input in
torch.channels_last). Weights are random (the default init): timing does not depend on their values.
tunedAllocator is true when the process runs with MALLOC_MMAP_MAX_=0 (glibc's equivalent of ResNetSharp's
AllocatorTuning.Apply(); pair it with MALLOC_TRIM_THRESHOLD_=1073741824).

    /usr/bin/python3 tools/bench_torchvision.py resnet50 --batch 1,16 --input 224 --iterations 10 --json
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def measure(name, mode, batch, size, threads, warmup, iterations):
    import torch
    import torchvision

    if threads:
        torch.set_num_threads(threads)
    model = getattr(torchvision.models, name)(weights=None).eval()
    x = torch.randn(batch, 3, size, size)
    if mode == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    elif mode != "plain":
        raise SystemExit(f"unknown mode {mode!r}: expected plain or channels_last")
    times = []
    with torch.inference_mode():
        for i in range(warmup + iterations):
            start = time.perf_counter()
            model(x)
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1000)
    times.sort()
    median = statistics.median(times)
    p90 = times[min(len(times) - 1, -(-9 * len(times) // 10) - 1)]
    return {
        "name": name, "mode": "torchvision-" + mode, "batch": batch, "inputSize": size,
        "threads": torch.get_num_threads(), "device": "cpu", "warmup": warmup, "iterations": iterations,
        "tunedAllocator": os.environ.get("MALLOC_MMAP_MAX_") == "0",
        "latencyMs": round(median, 2), "p90Ms": round(p90, 2), "minMs": round(times[0], 2),
        "imagesPerSecond": round(batch / (median / 1000), 3),
        # ru_maxrss is in KiB on Linux.
        "peakRssMiB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "torch": torch.__version__, "torchvision": torchvision.__version__,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name")
    p.add_argument("--batch", default="1,16")
    p.add_argument("--input", type=int, default=224)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--modes", default="plain,channels_last")
    p.add_argument("--json", action="store_true")
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args()
    batches = [int(b) for b in a.batch.split(",") if b.strip()]
    if a.child:
        print(json.dumps(measure(a.name, a.child, batches[0], a.input, a.threads, a.warmup, a.iterations)))
        return
    if not a.json:
        print(f"{'model':<18} {'mode':<26} {'batch':>5} {'input':>5} {'thr':>3} {'median ms':>10} {'p90 ms':>10} {'images/s':>9} {'peak RSS MiB':>13}")
    for b in batches:
        for mode in a.modes.split(","):
            cmd = [sys.executable, os.path.abspath(__file__), a.name, "--batch", str(b), "--input", str(a.input),
                   "--threads", str(a.threads), "--iterations", str(a.iterations), "--warmup", str(a.warmup), "--child", mode]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            if a.json:
                print(json.dumps(r))
            else:
                print(f"{r['name']:<18} {r['mode']:<26} {r['batch']:>5} {r['inputSize']:>5} {r['threads']:>3} {r['latencyMs']:>10.1f} {r['p90Ms']:>10.1f} {r['imagesPerSecond']:>9.2f} {r['peakRssMiB']:>13.0f}")


if __name__ == "__main__":
    main()
