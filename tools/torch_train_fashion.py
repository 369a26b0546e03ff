#!/usr/bin/python3
"""PyTorch's side of the time-to-accuracy comparison: the paper's CIFAR ResNet-20 (tools/torch_cifar_resnet.py, one
input channel) trained on Fashion-MNIST at 28x28 with the recipe `resnet train resnet20 --dataset fashion-mnist` uses
by default, so that the two runs differ only in the library:

  batch 128 (last partial batch kept), shuffled every epoch; pad 4 (zeros) + random 28x28 crop + horizontal flip,
  then normalisation by the training set's mean/std; SGD with Nesterov momentum and weight decay 5e-4 on every
  parameter; OneCycleLR to 0.2 over all iterations (30 % warm-up, PyTorch's default momentum cycle 0.85-0.95),
  stepped every iteration; cross-entropy; 15 epochs; test top-1 on the 10,000 test images after each epoch.

Augmentation runs on whole batches with tensor ops (like ResNetSharp's transforms), not per image in Python, so the
data pipeline does not handicap PyTorch on 2 cores. Prints one JSON line per epoch with the fields of ResNetSharp's
metrics.jsonl (epoch, trainLoss, trainError, testTop1, seconds) plus the cumulative wall-clock minutes of training
and evaluation.

    /usr/bin/python3 tools/torch_train_fashion.py --epochs 15 --threads 2 --seed 0 > runs/torch-r20.jsonl
"""
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_cifar_resnet import CifarNet  # noqa: E402


def read_idx(path):
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find(folder, stem):
    for name in (stem, stem + ".gz"):
        p = os.path.join(folder, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{stem}[.gz] not in {folder}")


def load(folder, split):
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(find(folder, f"{prefix}-images-idx3-ubyte"))
    y = read_idx(find(folder, f"{prefix}-labels-idx1-ubyte"))
    return torch.from_numpy(x.astype(np.float32) / 255).unsqueeze(1), torch.from_numpy(y.astype(np.int64))


def augment(x, gen):
    """Pad 4 + random crop + flip of a [0, 1] batch, every draw from `gen` on x's device."""
    n, c, h, w = x.shape
    dev = x.device
    padded = F.pad(x, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (n,), generator=gen, device=dev)
    dx = torch.randint(0, 9, (n,), generator=gen, device=dev)
    rows = (dy[:, None] + torch.arange(h, device=dev)[None, :])[:, None, :, None].expand(n, c, h, w + 8)
    out = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w, device=dev)[None, :])[:, None, None, :].expand(n, c, h, w)
    out = out.gather(3, cols)
    flip = torch.rand(n, generator=gen, device=dev) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(3), out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.2)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--depth", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--subset", type=int, default=0, help="train on the first N training images (0: all)")
    p.add_argument("--channels-last", action="store_true", help="train in channels-last memory format")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    xtr, ytr = load(a.data, "train")
    xte, yte = load(a.data, "test")
    if a.subset:
        xtr, ytr = xtr[:a.subset], ytr[:a.subset]
    mean, std = xtr.mean().item(), xtr.std().item()
    xte = (xte - mean) / std
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    model = CifarNet((a.depth - 2) // 6, in_channels=1, classes=10).to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, nesterov=True, weight_decay=a.weight_decay)
    steps_per_epoch = (len(xtr) + a.batch - 1) // a.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, a.lr, total_steps=a.epochs * steps_per_epoch, pct_start=0.3)
    wall = 0.0
    for epoch in range(1, a.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(len(xtr), generator=gen)
        loss_sum, wrong, seen = 0.0, 0, 0
        for i in range(steps_per_epoch):
            idx = order[i * a.batch:(i + 1) * a.batch]
            x = ((augment(xtr[idx], gen) - mean) / std).contiguous(memory_format=fmt)
            y = ytr[idx]
            out = model(x)
            loss = F.cross_entropy(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            wrong += (out.argmax(1) != y).sum().item()
            seen += len(idx)
        train_seconds = time.perf_counter() - t0
        model.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, len(xte), 500):
                correct += (model(xte[i:i + 500].contiguous(memory_format=fmt)).argmax(1) == yte[i:i + 500]).sum().item()
        seconds = time.perf_counter() - t0
        wall += seconds
        print(json.dumps({
            "epoch": epoch, "trainLoss": loss_sum / seen, "trainError": wrong / seen, "testTop1": correct / len(xte),
            "seconds": round(seconds, 2), "trainSeconds": round(train_seconds, 2), "minutes": round(wall / 60, 2),
            "imagesPerSecond": round(seen / train_seconds, 1), "torch": torch.__version__, "threads": a.threads,
            "channelsLast": a.channels_last,
        }), flush=True)


if __name__ == "__main__":
    main()
