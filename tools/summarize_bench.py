#!/usr/bin/python3
"""Summarises the JSON lines written by tools/bench_all.sh: per configuration, the best (lowest) median latency
over the rounds, the images/s it gives, the fastest single iteration, the highest peak RSS, the micro-batch, and
(for inference) the GFLOP/s that best median reaches and its fraction of the FMA peak measured in the same rounds
(the highest 'resnet peak' / '--peak' figure in the file).

    /usr/bin/python3 tools/summarize_bench.py bench.jsonl
"""
import json
import sys
from collections import defaultdict

rows = defaultdict(list)
peak = None
for line in open(sys.argv[1] if len(sys.argv) > 1 else "bench.jsonl"):
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    if "isa" in r:  # a 'resnet peak --json' line
        peak = max(peak or 0, r["gflops"])
        continue
    if r.get("peakGflops"):
        peak = max(peak or 0, r["peakGflops"])
    key = (r["name"], r["mode"], r["batch"], r.get("layout", "-"), r.get("tunedAllocator", False), r["threads"])
    rows[key].append(r)

if peak:
    print(f"fp32 FMA peak (highest measured): {peak:.1f} GFLOP/s\n")
print("| model | mode | batch | micro-batch | layout | allocator tuned | threads | rounds | best median ms | images/s (best median) | fastest iteration ms | peak RSS MiB (max) | GFLOP/s | of FMA peak |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for key in sorted(rows, key=lambda k: (k[0], k[2], k[1], str(k[3]), k[4])):
    rs = rows[key]
    best = min(rs, key=lambda r: r["latencyMs"])
    fastest = min(r.get("minMs", r["latencyMs"]) for r in rs)
    name, mode, batch, layout, tuned, threads = key
    ips = batch / best["latencyMs"] * 1000
    per_image = best.get("gflopsPerImage")
    gflops = ips * per_image if per_image and mode != "train" else None
    rate = f"{gflops:.0f}" if gflops else "-"
    share = f"{gflops / peak:.0%}" if gflops and peak else "-"
    print(f"| {name} | {mode} | {batch} | {best.get('microBatch', batch)} | {layout} | {'yes' if tuned else 'no'} | {threads} | {len(rs)} | "
          f"{best['latencyMs']:.0f} | {ips:.2f} | {fastest:.0f} | {max(r['peakRssMiB'] for r in rs):.0f} | {rate} | {share} |")
