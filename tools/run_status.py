#!/usr/bin/env python3
"""Markdown status tables of long training runs from their metrics.jsonl files (issue 18's notebooks).

  python3 tools/run_status.py degradation RUN_DIR ITERS_PER_EPOCH EPOCHS MODEL...   # per-model summary + per-epoch table
  python3 tools/run_status.py train RUN_DIR                                       # one run: epoch, test top-1, train error, lr, minutes
"""
import json
import os
import sys


def rows(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def degradation(run_dir, per_epoch, epochs, models):
    data = {m: rows(os.path.join(run_dir, m, "metrics.jsonl")) for m in models}
    print("| model | epochs done | iterations | final training error % | final test error % | best test top-1 % |")
    print("|---|---:|---:|---:|---:|---:|")
    for m in models:
        r = data[m]
        if not r:
            print(f"| {m} | 0 | 0 | – | – | – |")
            continue
        last = r[-1]
        print(f"| {m} | {len(r)} of {epochs} | {len(r) * per_epoch:,} | {100 * last['trainError']:.2f} | "
              f"{100 * (1 - last['testTop1']):.2f} | {100 * max(x['testTop1'] for x in r):.2f} |")
    print()
    print("| epoch | iterations | " + " | ".join(f"{m} train / test error %" for m in models) + " |")
    print("|---:|---:|" + "---:|" * len(models))
    for e in range(1, epochs + 1):
        cells = []
        for m in models:
            r = [x for x in data[m] if x["epoch"] == e]
            cells.append(f"{100 * r[0]['trainError']:.2f} / {100 * (1 - r[0]['testTop1']):.2f}" if r else "")
        print(f"| {e} | {e * per_epoch:,} | " + " | ".join(cells) + " |")


def train(run_dir):
    # minutes: the epoch's wall time on the shared machine (training + evaluation, pauses included; not a benchmark)
    print("| epoch | test top-1 % | training error % | learning rate at the epoch's end | minutes |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows(os.path.join(run_dir, "metrics.jsonl")):
        print(f"| {r['epoch']} | {100 * r['testTop1']:.2f} | {100 * r['trainError']:.2f} | {r['lr']:.4g} | {r['seconds'] / 60:.1f} |")


if __name__ == "__main__":
    if sys.argv[1] == "degradation":
        degradation(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:])
    else:
        train(sys.argv[2])
