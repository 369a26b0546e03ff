#!/usr/bin/python3
"""Turns tools/bench_train.sh's JSON lines into a table: per configuration the median over rounds of each round's
median step, images/s from it, and the ratio to PyTorch's fastest configuration (memory format, with or without the malloc tuning) at the same
model and input size.

    /usr/bin/python3 tools/summarize_train_bench.py bench-train.jsonl
"""
import json
import statistics
import sys
from collections import defaultdict


def main(path):
    rows = defaultdict(list)
    loads = []
    for line in open(path):
        if line.startswith("# ") and "load:" in line:
            loads.append(float(line.split("load:")[1].split()[0]))
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        side = "PyTorch " + r["mode"].replace("torch-train-", "") if r["mode"].startswith("torch") else "ResNetSharp " + r["layout"]
        if r.get("tunedAllocator"):
            side += " + tuned malloc"
        rows[(r["name"], r["inputSize"], r["batch"], side)].append(r["imagesPerSecond"])
    best_torch = {}
    for (name, size, batch, side), v in rows.items():
        if side.startswith("PyTorch"):
            key = (name, size, batch)
            best_torch[key] = max(best_torch.get(key, 0), statistics.median(v))
    print("| model | input | batch | side | rounds | images/s (median of rounds) | range | vs PyTorch's best |")
    print("|---|---|---|---|---|---|---|---|")
    for (name, size, batch, side), v in sorted(rows.items()):
        med = statistics.median(v)
        ratio = med / best_torch[(name, size, batch)] if best_torch.get((name, size, batch)) else float("nan")
        print(f"| {name} | {size}² | {batch} | {side} | {len(v)} | {med:.1f} | {min(v):.1f}–{max(v):.1f} | {ratio:.2f}× |")
    if loads:
        print(f"\n1-minute load average before the runs: {min(loads):.1f}–{max(loads):.1f} (median {statistics.median(loads):.1f})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench-train.jsonl")
