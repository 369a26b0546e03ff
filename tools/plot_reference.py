#!/usr/bin/env python3
"""Plots tools/torch_reference.py runs (one .jsonl per run) in the paper's Fig. 6 layout.

  plot_reference.py degradation OUT.png plain20=A.jsonl plain56=B.jsonl resnet20=C.jsonl resnet56=D.jsonl
      left panel plain nets, right panel ResNets; x: iterations, y: error (%); thin = training, bold = test.
  plot_reference.py accuracy OUT.png NAME=A.jsonl [NAME=B.jsonl ...] [--target 95]
      test top-1 (%) per epoch, one line per run, with the target as a dotted line.

Needs matplotlib (not Debian's python3 of the test suite: run it with a Python that has matplotlib).
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def runs(specs):
    out = {}
    for spec in specs:
        name, _, path = spec.partition("=")
        if not path:
            raise SystemExit(f"expected NAME=FILE.jsonl, got '{spec}'")
        out[name] = rows(path)
    return out


def degradation(png, specs):
    data = runs(specs)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    colours = {"20": "tab:orange", "32": "tab:blue", "44": "tab:green", "56": "tab:red", "110": "tab:purple"}
    for ax, family, title in ((axes[0], "plain", "plain networks"), (axes[1], "resnet", "ResNets")):
        for name, r in sorted(data.items()):
            if not name.startswith(family):
                continue
            depth = name[len(family):]
            it = [x["iterations"] / 1e4 for x in r]
            c = colours.get(depth, "black")
            ax.plot(it, [100 * x["train_error"] for x in r], color=c, linewidth=0.8, linestyle="--")
            ax.plot(it, [100 * (1 - x["test_top1"]) for x in r], color=c, linewidth=2.2, label=f"{family}-{depth}")
        ax.set_title(title)
        ax.set_xlabel("iterations (1e4)")
        ax.set_ylim(0, 20)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("error (%)  -- dashed: training, bold: test")
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def accuracy(png, specs, target):
    data = runs(specs)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, r in data.items():
        ax.plot([x["epoch"] for x in r], [100 * x["test_top1"] for x in r], marker=".", label=name)
    ax.axhline(target, color="black", linestyle=":", label=f"{target:g} %")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test top-1 (%)")
    ax.set_ylim(85, 96)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def main(argv):
    if len(argv) < 3 or argv[0] not in ("degradation", "accuracy"):
        raise SystemExit(__doc__)
    target = 95.0
    if "--target" in argv:
        i = argv.index("--target")
        target = float(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    if argv[0] == "degradation":
        degradation(argv[1], argv[2:])
    else:
        accuracy(argv[1], argv[2:], target)


if __name__ == "__main__":
    main(sys.argv[1:])
