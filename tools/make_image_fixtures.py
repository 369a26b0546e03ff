#!/usr/bin/python3
"""Golden fixtures for ResNetSharp's image pipeline, computed by PIL + torchvision 0.14 (Debian's python3-torchvision).

Usage: /usr/bin/python3 tools/make_image_fixtures.py OUT_DIR [TORCHVISION_FIXTURES_DIR]

For real photographs shipped by python3-skimage (and a few files derived from them: grey, alpha, palette, WebP,
BMP, EXIF-rotated JPEG) it writes, next to a copy of each source file:
  <case>.decoded.u8   what PIL gives for Image.open(f).convert(mode) (after ImageOps.exif_transpose for EXIF cases)
  <case>.resized.u8   after torchvision's Resize(short side) on that PIL image
  <case>.tensor.f32   after Resize, CenterCrop, ToTensor, Normalize (C x S x S, float32, little-endian)
  <case>.logits.f32   a seeded torchvision resnet18's logits for that tensor (RGB ImageNet cases only); the weights
                      are the same seeded model tools/make_fixtures.py writes to weights_resnet18.safetensors
and index.json describing every case. Skipped when index.json is already there.
"""
import io
import json
import os
import shutil
import sys

import numpy as np
import torch
import torchvision
from PIL import Image, ImageOps
from torchvision import transforms
from torchvision.transforms import InterpolationMode

SKIMAGE = "/usr/lib/python3/dist-packages/skimage/data"
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
MODES = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC, "nearest": InterpolationMode.NEAREST}


def derived_files(out):
    """Source files: copies of skimage's photographs plus files made from them. Returns {file: description}."""
    files = {}
    for name in ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "camera.png", "logo.png", "green_palette.png"):
        shutil.copyfile(os.path.join(SKIMAGE, name), os.path.join(out, name))
        files[name] = "skimage " + name
    chelsea = Image.open(os.path.join(SKIMAGE, "chelsea.png")).convert("RGB")
    # RGBA whose transparent half hides a coloured gradient: convert("RGB") must keep the colours, not composite them.
    rgba = chelsea.convert("RGBA")
    alpha = np.tile(np.linspace(0, 255, chelsea.width).astype(np.uint8), (chelsea.height, 1))
    alpha[:, : chelsea.width // 3] = 0
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(os.path.join(out, "chelsea_alpha.png"))
    files["chelsea_alpha.png"] = "chelsea with an alpha ramp, a third fully transparent"
    chelsea.save(os.path.join(out, "chelsea_lossless.webp"), lossless=True)
    files["chelsea_lossless.webp"] = "chelsea as lossless WebP"
    chelsea.save(os.path.join(out, "chelsea_lossy.webp"), quality=80)
    files["chelsea_lossy.webp"] = "chelsea as lossy WebP (quality 80)"
    chelsea.save(os.path.join(out, "chelsea.bmp"))
    files["chelsea.bmp"] = "chelsea as 24-bit BMP"
    # A JPEG stored sideways with EXIF orientation 6 ("rotate 90 clockwise to display") and one with 3 (180 degrees).
    for orientation, stored in ((6, chelsea.transpose(Image.Transpose.ROTATE_90)), (3, chelsea.transpose(Image.Transpose.ROTATE_180)),
                                (8, chelsea.transpose(Image.Transpose.ROTATE_270))):
        exif = Image.Exif()
        exif[0x0112] = orientation
        name = f"chelsea_exif{orientation}.jpg"
        stored.save(os.path.join(out, name), quality=95, exif=exif.tobytes())
        files[name] = f"chelsea stored rotated, EXIF orientation {orientation}"
    return files


def write(path, array):
    array = np.ascontiguousarray(array)
    with open(path + ".tmp", "wb") as f:
        f.write(array.tobytes())
    os.replace(path + ".tmp", path)


def seeded_resnet18():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from make_fixtures import _randomised  # the same seeded weights as weights_resnet18.safetensors
    return _randomised("resnet18", seed=1000)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else ".fixtures/images"
    index_path = os.path.join(out, "index.json")
    if os.path.exists(index_path):
        print(f"image fixtures already in {out}")
        return
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    files = derived_files(out)
    model = seeded_resnet18()

    # (case, file, channels, exif, input size, crop pct, interpolation, mean, std, run resnet18)
    imagenet = dict(channels=3, input_size=224, crop_pct=0.875, interpolation="bilinear", mean=IMAGENET_MEAN, std=IMAGENET_STD, model=True)
    cases = [dict(case=os.path.splitext(f)[0].replace(".", "_") + "_" + os.path.splitext(f)[1][1:], file=f, exif=f.startswith("chelsea_exif"), **imagenet)
             for f in files]
    cases += [
        dict(case="chelsea_bicubic", file="chelsea.png", exif=False, channels=3, input_size=224, crop_pct=0.875, interpolation="bicubic",
             mean=IMAGENET_MEAN, std=IMAGENET_STD, model=False),
        dict(case="coffee_nearest", file="coffee.png", exif=False, channels=3, input_size=224, crop_pct=0.875, interpolation="nearest",
             mean=IMAGENET_MEAN, std=IMAGENET_STD, model=False),
        # A grey model at CIFAR scale: 1 channel, 32 x 32, no crop margin; camera is grey, astronaut is RGB -> L.
        dict(case="camera_grey32", file="camera.png", exif=False, channels=1, input_size=32, crop_pct=1.0, interpolation="bilinear",
             mean=[0.5], std=[0.5], model=False),
        dict(case="astronaut_grey64", file="astronaut.png", exif=False, channels=1, input_size=64, crop_pct=0.875, interpolation="bilinear",
             mean=[0.5], std=[0.5], model=False),
        # Upscaling (a 300-pixel short side to 342): the filter keeps its unit support.
        dict(case="chelsea_up299", file="chelsea.png", exif=False, channels=3, input_size=299, crop_pct=0.875, interpolation="bilinear",
             mean=IMAGENET_MEAN, std=IMAGENET_STD, model=False),
    ]

    index = {"torch": torch.__version__, "torchvision": torchvision.__version__, "pil": Image.__version__, "cases": []}
    for c in cases:
        image = Image.open(os.path.join(out, c["file"]))
        if c["exif"]:
            image = ImageOps.exif_transpose(image)
        image = image.convert("RGB" if c["channels"] == 3 else "L")
        resize = int(c["input_size"] / c["crop_pct"] + 1e-9)
        resized = transforms.Resize(resize, interpolation=MODES[c["interpolation"]])(image)
        tensor = transforms.Compose([transforms.CenterCrop(c["input_size"]), transforms.ToTensor(),
                                     transforms.Normalize(c["mean"], c["std"])])(resized)
        prefix = os.path.join(out, c["case"])
        write(prefix + ".decoded.u8", np.asarray(image, dtype=np.uint8))
        write(prefix + ".resized.u8", np.asarray(resized, dtype=np.uint8))
        write(prefix + ".tensor.f32", tensor.numpy().astype("<f4"))
        entry = dict(c, decoded=[image.height, image.width], resized=[resized.height, resized.width], resize_size=resize,
                     tensor=list(tensor.shape))
        del entry["model"]
        if c["model"]:
            with torch.no_grad():
                logits = model(tensor.unsqueeze(0))[0]
            write(prefix + ".logits.f32", logits.numpy().astype("<f4"))
            top = torch.topk(logits, 6)
            entry["top5"] = top.indices[:5].tolist()
            entry["top5_margin"] = float(top.values[4] - top.values[5])  # how far the 5th is from the 6th
        index["cases"].append(entry)

    with open(index_path + ".tmp", "w") as f:
        json.dump(index, f, indent=1)
    os.replace(index_path + ".tmp", index_path)
    print(f"image fixtures ready in {out} ({len(cases)} cases)")


if __name__ == "__main__":
    main()
