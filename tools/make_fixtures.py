#!/usr/bin/python3
"""Writes test fixtures produced by torchvision itself (the independent peer) into a folder.

Run with Debian's python3-torchvision (PyTorch 1.13, torchvision 0.14):
    /usr/bin/python3 tools/make_fixtures.py .fixtures

Each part is a function writing one file; a part is skipped when its file already exists,
so the test script can call this on every run and only pay once.
"""
import json
import os
import sys

import torch
import torchvision

NAMES = [
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
    "wide_resnet50_2", "wide_resnet101_2",
]


def state_dict_keys(out):
    """torchvision's state-dict keys and shapes, and its parameter count, for every registered name."""
    path = os.path.join(out, "torchvision_state_dicts.json")
    if os.path.exists(path):
        return
    result = {"torch": torch.__version__, "torchvision": torchvision.__version__, "models": {}}
    for name in NAMES:
        model = getattr(torchvision.models, name)()
        sd = model.state_dict()
        result["models"][name] = {
            "keys": list(sd.keys()),
            "shapes": [list(t.shape) for t in sd.values()],
            "parameters": sum(p.numel() for p in model.parameters()),
        }
        del model
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, path)


PARTS = [state_dict_keys]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else ".fixtures"
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    for part in PARTS:
        part(out)
    print(f"fixtures ready in {out}")


if __name__ == "__main__":
    main()
