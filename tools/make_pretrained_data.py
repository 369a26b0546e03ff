#!/usr/bin/python3
"""Writes the data behind ResNetSharp's weights registry from torchvision's own weight enums.

Run once with Debian's python3-torchvision (torchvision 0.14); the output is committed:
    /usr/bin/python3 tools/make_pretrained_data.py src/ResNetSharp/Pretrained

- imagenet_classes.txt: ImageNet-1k's 1,000 class names, one a line, in class-index order
  (torchvision's weights.meta["categories"], the same list for every ImageNet weight).
- torchvision_resnet.json: every ResNet / ResNeXt / Wide ResNet weight torchvision publishes: URL, the
  SHA-256 prefix torchvision puts in each file name (torch.hub checks downloads against it), accuracy,
  parameter count, recipe and the eval transform (crop, resize, interpolation, mean, std).
Nothing is downloaded: only the enums' fields are read.
"""
import json
import os
import re
import sys

import torchvision
from torchvision.models import resnet

ENUMS = [
    ("resnet18", resnet.ResNet18_Weights), ("resnet34", resnet.ResNet34_Weights),
    ("resnet50", resnet.ResNet50_Weights), ("resnet101", resnet.ResNet101_Weights),
    ("resnet152", resnet.ResNet152_Weights), ("resnext50_32x4d", resnet.ResNeXt50_32X4D_Weights),
    ("resnext101_32x8d", resnet.ResNeXt101_32X8D_Weights), ("resnext101_64x4d", resnet.ResNeXt101_64X4D_Weights),
    ("wide_resnet50_2", resnet.Wide_ResNet50_2_Weights), ("wide_resnet101_2", resnet.Wide_ResNet101_2_Weights),
]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "src/ResNetSharp/Pretrained"
    os.makedirs(out, exist_ok=True)
    categories = None
    entries = []
    for arch, enum in ENUMS:
        for w in enum:
            meta = w.meta
            if categories is None:
                categories = list(meta["categories"])
            assert list(meta["categories"]) == categories, "all ResNet weights share ImageNet's class list"
            t = w.transforms()
            name = os.path.basename(w.url)
            prefix = re.search(r"-([0-9a-f]{8,})\.pth$", name).group(1)
            metrics = meta["_metrics"]["ImageNet-1K"]
            entries.append({
                "name": f"{arch}.{w.name.lower()}",
                "torchvision": f"{enum.__name__}.{w.name}",
                "architecture": arch,
                "url": w.url,
                "sha256_prefix": prefix,
                "acc1": metrics["acc@1"],
                "acc5": metrics["acc@5"],
                "num_params": meta["num_params"],
                "recipe": meta["recipe"],
                "crop_size": t.crop_size[0],
                "resize_size": t.resize_size[0],
                "interpolation": t.interpolation.value,
                "mean": list(t.mean),
                "std": list(t.std),
                "default": enum.DEFAULT == w,
            })
    with open(os.path.join(out, "imagenet_classes.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(categories) + "\n")
    doc = {"source": f"torchvision {torchvision.__version__} torchvision.models.resnet weight enums",
           "made_by": "tools/make_pretrained_data.py", "weights": entries}
    with open(os.path.join(out, "torchvision_resnet.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"{len(categories)} classes, {len(entries)} weights written to {out}")


if __name__ == "__main__":
    main()
