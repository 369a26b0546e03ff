#!/usr/bin/python3
"""Summarises the JSON lines written by tools/bench_all.sh: per configuration, the best (lowest) median latency
over the rounds, the images/s it gives, the fastest single iteration, and the highest peak RSS.

    /usr/bin/python3 tools/summarize_bench.py bench.jsonl
"""
import json
import sys
from collections import defaultdict

rows = defaultdict(list)
for line in open(sys.argv[1] if len(sys.argv) > 1 else "bench.jsonl"):
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    key = (r["name"], r["mode"], r["batch"], r.get("layout", "-"), r.get("tunedAllocator", False), r["threads"])
    rows[key].append(r)

print("| model | mode | batch | layout | allocator tuned | threads | rounds | best median ms | images/s (best median) | fastest iteration ms | peak RSS MiB (max) |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for key in sorted(rows, key=lambda k: (k[0], k[2], k[1], str(k[3]), k[4])):
    rs = rows[key]
    best = min(rs, key=lambda r: r["latencyMs"])
    fastest = min(r.get("minMs", r["latencyMs"]) for r in rs)
    name, mode, batch, layout, tuned, threads = key
    print(f"| {name} | {mode} | {batch} | {layout} | {'yes' if tuned else 'no'} | {threads} | {len(rs)} | "
          f"{best['latencyMs']:.0f} | {batch / best['latencyMs'] * 1000:.2f} | {fastest:.0f} | {max(r['peakRssMiB'] for r in rs):.0f} |")
