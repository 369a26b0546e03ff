#!/usr/bin/python3
"""Export a torchvision ResNet's state dict to safetensors, using only PyTorch.

The safetensors format is written here directly (8-byte little-endian header length, a JSON header
{name: {dtype, shape, data_offsets}}, then the raw tensor bytes), so the `safetensors` package is not needed.
ResNetSharp loads the result with `model.LoadWeights(path)`.

Examples:
    # ImageNet weights (downloads them once into torch's cache; needs network access)
    python3 tools/export_torchvision.py resnet50 resnet50.safetensors --weights DEFAULT
    # A checkpoint you already have (a state dict saved with torch.save, or a dict holding one under "state_dict"/"model")
    python3 tools/export_torchvision.py resnet50 tuned.safetensors --checkpoint tuned.pth --num-classes 10
    # Seeded random weights, stored as bfloat16
    python3 tools/export_torchvision.py resnet18 r18.safetensors --seed 0 --dtype bf16
"""
import argparse
import json
import os
import struct
import sys

import torch

DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}


def _tensor_bytes(t):
    """Raw little-endian bytes of a tensor, row-major."""
    flat = t.detach().cpu().contiguous().reshape(-1)
    if flat.numel() == 0:
        return b""
    raw = flat.view(torch.uint8) if flat.dtype != torch.bool else flat.to(torch.uint8)
    try:
        return raw.numpy().tobytes()
    except (ImportError, RuntimeError):  # PyTorch built without numpy
        return bytes(raw.tolist())


def write_safetensors(path, tensors, metadata=None):
    """Write {name: tensor} to `path` as safetensors, atomically (temporary file, fsync, rename)."""
    if sys.byteorder != "little":
        raise RuntimeError("safetensors data is little-endian; this writer only runs on little-endian machines")
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        if t.dtype not in DTYPES:
            raise ValueError(f"{name}: dtype {t.dtype} cannot be stored")
        data = _tensor_bytes(t)
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * ((8 - len(encoded) % 8) % 8)  # data starts 8-byte aligned
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(encoded)))
            f.write(encoded)
            for data in blobs:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def convert_floats(state_dict, dtype):
    """Cast floating-point tensors to `dtype`; integer buffers (num_batches_tracked) keep theirs."""
    return {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state_dict.items()}


def main():
    import torchvision

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="torchvision builder name: resnet18 ... resnet152, resnext50_32x4d, wide_resnet50_2, ...")
    p.add_argument("output", help="the .safetensors file to write")
    p.add_argument("--weights", default=None,
                   help="torchvision weights enum name, e.g. DEFAULT or IMAGENET1K_V2 (downloads); default: none (random)")
    p.add_argument("--checkpoint", default=None, help="load this torch.save'd state dict into the model first")
    p.add_argument("--num-classes", type=int, default=None, help="classifier size when it differs from 1000")
    p.add_argument("--seed", type=int, default=None, help="seed the random init (when no weights are given)")
    p.add_argument("--dtype", choices=["f32", "f16", "bf16"], default="f32", help="store floats as this type (default f32)")
    a = p.parse_args()

    builder = getattr(torchvision.models, a.model, None)
    if builder is None or not callable(builder):
        sys.exit(f"unknown torchvision model '{a.model}'")
    if a.seed is not None:
        torch.manual_seed(a.seed)
    kwargs = {}
    if a.weights:
        kwargs["weights"] = a.weights
    if a.num_classes is not None:
        kwargs["num_classes"] = a.num_classes
    try:
        model = builder(**kwargs)
    except OSError as e:  # urllib's URLError included: no network, proxy, ...
        sys.exit(f"could not fetch torchvision weights '{a.weights}' for {a.model}: {e}. "
                 "Download them where there is network access, or pass --checkpoint with a state dict you have.")
    if a.checkpoint:
        state = torch.load(a.checkpoint, map_location="cpu")
        for key in ("state_dict", "model"):
            if isinstance(state, dict) and key in state and isinstance(state[key], dict):
                state = state[key]
        model.load_state_dict(state, strict=True)
    sd = model.state_dict()
    sd = convert_floats(sd, {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[a.dtype])
    meta = {"model": a.model, "weights": a.weights or (a.checkpoint or "random"), "torchvision": torchvision.__version__,
            "format": "pt"}
    write_safetensors(a.output, sd, meta)
    total = sum(t.numel() * t.element_size() for t in sd.values())
    print(f"wrote {a.output}: {len(sd)} tensors, {total / 1e6:.1f} MB ({a.model}, {a.dtype})")


if __name__ == "__main__":
    main()
