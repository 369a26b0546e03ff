#!/usr/bin/python3
"""Times one PyTorch training step with the same protocol and fields as `resnet bench --train --json`.

A step is: zero_grad, forward, cross-entropy, backward, SGD step (lr 0.01, momentum 0.9, weight decay 1e-4), eager,
model in train mode, random input and fixed random labels. images/s = batch / median step time over --iterations
steps after --warmup untimed ones. Each configuration (model x memory format) runs in a fresh child process.

Models:
  resnet20   the paper's CIFAR ResNet-20 (He et al. 2015, section 4.2): 3x3 stem of 16, three stages of 3 basic
             blocks with 16/32/64 channels, option A shortcuts (subsample by 2, zero-pad the new channels), global
             average pool, 10 classes; written here, with --in-channels input channels (1 for Fashion-MNIST).
  resnet18   torchvision's resnet18 (1000 classes, 3 input channels), as in tools/bench_torchvision.py.

Memory formats: contiguous (NCHW) and channels_last (model and input converted with torch.channels_last).

    /usr/bin/python3 tools/bench_train_torch.py resnet20 --batch 128 --input 32 --in-channels 1 --threads 2 --json
    /usr/bin/python3 tools/bench_train_torch.py resnet18 --batch 16 --input 224 --threads 2 --json
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def cifar_resnet(depth, in_channels, num_classes=10):
    """The paper's CIFAR ResNet (option A shortcuts), from the one PyTorch definition the fixtures also use."""
    from torch_cifar_resnet import CifarNet
    return CifarNet(n=(depth - 2) // 6, in_channels=in_channels, classes=num_classes)


def build(name, in_channels):
    if name == "resnet20":
        return cifar_resnet(20, in_channels), 10
    import torchvision
    if in_channels != 3:
        raise SystemExit("torchvision's ImageNet models take 3 input channels")
    return getattr(torchvision.models, name)(weights=None), 1000


def measure(name, fmt, batch, size, in_channels, threads, warmup, iterations):
    import torch
    import torch.nn.functional as F

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    model, classes = build(name, in_channels)
    model.train()
    x = torch.randn(batch, in_channels, size, size)
    labels = torch.randint(classes, (batch,))
    if fmt == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    elif fmt != "contiguous":
        raise SystemExit(f"unknown memory format {fmt!r}: expected contiguous or channels_last")
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    times = []
    for i in range(warmup + iterations):
        start = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(model(x), labels)
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    median = statistics.median(times)
    p90 = times[min(len(times) - 1, -(-9 * len(times) // 10) - 1)]
    return {
        "name": name, "mode": "torch-train-" + fmt, "batch": batch, "inputSize": size, "inChannels": in_channels,
        "threads": torch.get_num_threads(), "device": "cpu", "warmup": warmup, "iterations": iterations,
        "tunedAllocator": os.environ.get("MALLOC_MMAP_MAX_") == "0",
        "latencyMs": round(median, 2), "p90Ms": round(p90, 2), "minMs": round(times[0], 2),
        "imagesPerSecond": round(batch / (median / 1000), 3),
        "peakRssMiB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),  # KiB on Linux
        "torch": torch.__version__,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=["resnet20", "resnet18", "resnet34", "resnet50"])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--input", type=int, default=32)
    p.add_argument("--in-channels", type=int, default=None, help="default: 1 for resnet20, 3 otherwise")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--formats", default="contiguous,channels_last")
    p.add_argument("--json", action="store_true")
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args()
    channels = a.in_channels if a.in_channels is not None else (1 if a.name == "resnet20" else 3)
    if a.child:
        print(json.dumps(measure(a.name, a.child, a.batch, a.input, channels, a.threads, a.warmup, a.iterations)))
        return
    if not a.json:
        print(f"{'model':<10} {'mode':<26} {'batch':>5} {'input':>5} {'thr':>3} {'median ms':>10} {'p90 ms':>10} {'images/s':>9}")
    for fmt in a.formats.split(","):
        cmd = [sys.executable, os.path.abspath(__file__), a.name, "--batch", str(a.batch), "--input", str(a.input),
               "--in-channels", str(channels), "--threads", str(a.threads), "--iterations", str(a.iterations),
               "--warmup", str(a.warmup), "--child", fmt]
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        if a.json:
            print(json.dumps(r), flush=True)
        else:
            print(f"{r['name']:<10} {r['mode']:<26} {r['batch']:>5} {r['inputSize']:>5} {r['threads']:>3} "
                  f"{r['latencyMs']:>10.1f} {r['p90Ms']:>10.1f} {r['imagesPerSecond']:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
