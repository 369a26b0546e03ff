#!/usr/bin/python3
"""Plots a degradation run's curves so far from its metrics.jsonl files, in the paper's Fig. 6 layout.

Error (%) against iterations; thin dashed = training error, bold = test error; plain nets left, ResNets right.
Used for runs still in progress (the CLI draws the same figure when `resnet experiment degradation` ends).

    /usr/bin/python3 tools/plot_degradation.py RUN_FOLDER ITERATIONS_PER_EPOCH OUT.png
"""
import json
import os
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(folder, per_epoch, out):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    colours = {"20": "tab:orange", "56": "tab:red"}
    for name in ["plain20", "plain56", "resnet20", "resnet56"]:
        path = os.path.join(folder, name, "metrics.jsonl")
        rows = [json.loads(line) for line in open(path)] if os.path.exists(path) else []
        if not rows:
            continue
        ax = axes[0 if name.startswith("plain") else 1]
        x = [r["epoch"] * per_epoch for r in rows]
        c = colours[name[-2:]]
        ax.plot(x, [100 * r["trainError"] for r in rows], "--", color=c, linewidth=1, label=f"{name} train")
        ax.plot(x, [100 * (1 - r["testTop1"]) for r in rows], "-", color=c, linewidth=2.5, label=f"{name} test")
    for ax, title in zip(axes, ["plain networks", "ResNets"]):
        ax.set_title(title)
        ax.set_xlabel("iterations")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("error (%)")
    fig.tight_layout()
    fig.savefig(out, dpi=100)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
