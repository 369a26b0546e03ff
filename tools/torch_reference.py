#!/usr/bin/env python3
"""PyTorch reference for the Fashion-MNIST runs of `resnet train` and `resnet experiment degradation`.

The same recipe, written independently in PyTorch, so that our library's long CPU runs can be set beside a second
implementation (and, on a GPU, run ahead of them):

- data: the Fashion-MNIST IDX files, pixels / 255, normalised with the training set's mean and std;
- training augmentation: zero-pad 4, random 28x28 crop, horizontal flip, normalise, then (optionally) torchvision's
  RandomErasing (p, area 0.02-0.33, aspect 0.3-3.3, value 0) -- all on the device, batch-wise;
- the paper's CIFAR nets or their plain counterparts: torch_cifar_resnet.CifarNet (6n+2 layers, widths 16/32/64,
  option-A shortcuts, He fan-out init), the definition the ONNX fixtures and the DDP oracle use; the data loading and
  crop + flip are torch_train_fashion's;
- SGD (momentum 0.9, dampening 0, optionally Nesterov, weight decay as L2 on the gradient, optionally none on
  BatchNorm weights and biases), stepped per iteration by the paper's step schedule (/10 at 50 % and 75 % of the iterations) or
  PyTorch's one-cycle formula (two phases, cosine, div 25, final div 1e4, momentum 0.95 -> 0.85 -> 0.95);
- label smoothing in the cross-entropy;
- per epoch: mean loss and error over the augmented training batches (train mode), and the test set's loss and top-1
  (eval mode) -- the figures our metrics.jsonl holds.

On CUDA the whole training step (forward, backward, SGD update) is captured once as a CUDA graph and replayed,
because the nets are so small that eager PyTorch is bound by kernel launches; the update then reads its rate and
momentum from device scalars. Without CUDA, or if capture fails, the same step runs eagerly.

Usage: torch_reference.py --data DIR --model resnet56 --epochs 48 --schedule step --lr 0.1 --weight-decay 1e-4
       --out run.jsonl [--random-erasing 0.5 --label-smoothing 0.1 --no-decay-norm-bias --seed 0 --subset N]
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_cifar_resnet import CifarNet  # noqa: E402
from torch_train_fashion import augment as crop_and_flip, load  # noqa: E402


def build(name):
    for prefix, shortcut in (("resnet", True), ("plain", False)):
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            depth = int(name[len(prefix):])
            if (depth - 2) % 6 == 0 and depth >= 8:
                return CifarNet((depth - 2) // 6, in_channels=1, shortcut=shortcut)
    raise SystemExit(f"unknown model '{name}': resnetD or plainD with D = 6n+2 (20, 32, 44, 56, 110)")


def augment(x, mean, std, erasing, gen):
    """Pad-4 crop + flip on [0,1] pixels, normalise, then random erasing; every draw from `gen` on the device."""
    n, c, h, w = x.shape
    dev = x.device
    x = crop_and_flip(x, gen)
    x = (x - mean) / std
    if erasing > 0:
        area = h * w * (0.02 + 0.31 * torch.rand(n, 10, device=dev, generator=gen))
        ratio = torch.exp(math.log(0.3) + (math.log(3.3) - math.log(0.3)) * torch.rand(n, 10, device=dev, generator=gen))
        eh = torch.sqrt(area * ratio).round().long()
        ew = torch.sqrt(area / ratio).round().long()
        ok = (eh < h) & (ew < w)
        first = ok.float().argmax(1)
        pick = lambda t: t.gather(1, first[:, None]).squeeze(1)
        eh, ew = pick(eh), pick(ew)
        top = (torch.rand(n, device=dev, generator=gen) * (h - eh + 1).float()).long()
        left = (torch.rand(n, device=dev, generator=gen) * (w - ew + 1).float()).long()
        apply = (torch.rand(n, device=dev, generator=gen) < erasing) & ok.any(1)
        r = torch.arange(h, device=dev)[None, :, None]
        q = torch.arange(w, device=dev)[None, None, :]
        box = (r >= top[:, None, None]) & (r < (top + eh)[:, None, None]) & (q >= left[:, None, None]) & (q < (left + ew)[:, None, None])
        x = x.masked_fill((box & apply[:, None, None])[:, None], 0.0)
    return x


def rate_and_momentum(args, step, total):
    if args.schedule == "step":
        drops = sum(step >= round(f * total) for f in (0.5, 0.75))
        return args.lr * 0.1 ** drops, 0.9
    # PyTorch's OneCycleLR defaults: pct_start 0.3, cosine, div 25, final div 1e4, momentum 0.85-0.95.
    warm_end = 0.3 * total - 1
    last = total - 1
    initial, low = args.lr / 25, args.lr / 25 / 1e4
    cos = lambda a, b, p: b + (a - b) / 2 * (math.cos(math.pi * p) + 1)
    if step <= warm_end:
        p = step / warm_end
        return cos(initial, args.lr, p), cos(0.95, 0.85, p)
    p = (step - warm_end) / (last - warm_end)
    return cos(args.lr, low, p), cos(0.85, 0.95, p)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--epochs", type=int, required=True)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--schedule", choices=["step", "onecycle"], default="step")
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--no-decay-norm-bias", action="store_true")
    ap.add_argument("--nesterov", action="store_true", help="Nesterov momentum (`resnet train`'s default)")
    ap.add_argument("--label-smoothing", type=float, default=0.0)
    ap.add_argument("--random-erasing", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--subset", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--eager", action="store_true", help="never capture a CUDA graph")
    ap.add_argument("--stop-after", type=int, default=0, help="stop after this many epochs (the schedule still spans --epochs)")
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads on the CPU (0: PyTorch's choice)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        # PyTorch's defaults otherwise: TF32 convolutions (cudnn.allow_tf32), fp32 matrix products.
    train_x, train_y = load(args.data, "train")
    test_x, test_y = load(args.data, "test")
    if args.subset:
        train_x, train_y = train_x[:args.subset], train_y[:args.subset]
        test_x, test_y = test_x[:min(args.subset, 10000)], test_y[:min(args.subset, 10000)]
    mean, std = train_x.mean().item(), train_x.std().item()
    train_x, train_y, test_x, test_y = (t.to(dev) for t in (train_x, train_y, test_x, test_y))
    test_x = (test_x - mean) / std

    model = build(args.model).to(dev)
    params = [p for p in model.parameters()]
    decay = [p.dim() > 1 or not args.no_decay_norm_bias for p in params]
    bufs = [torch.zeros_like(p) for p in params]
    lr_t = torch.zeros((), device=dev)
    mom_t = torch.zeros((), device=dev)
    criterion = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    n, b = train_x.shape[0], args.batch
    steps_per_epoch = n // b + (n % b > 0)
    total = steps_per_epoch * args.epochs
    gen = torch.Generator(device=dev)
    gen.manual_seed(args.seed)

    static_x = torch.zeros((b,) + tuple(train_x.shape[1:]), device=dev)
    static_y = torch.zeros(b, dtype=torch.long, device=dev)

    try:  # multi-tensor SGD with device-scalar rate and momentum (PyTorch >= 2.1); else one tensor at a time
        torch._foreach_mul_([torch.ones(1, device=dev)], mom_t)
        fused = True
    except (TypeError, RuntimeError):
        fused = False

    def step_body(x, y):
        logits = model(x)
        loss = criterion(logits, y)
        loss.backward()
        with torch.no_grad():
            grads = [p.grad for p in params]
            if fused:
                if args.weight_decay:
                    torch._foreach_add_([g for g, d in zip(grads, decay) if d], [p for p, d in zip(params, decay) if d], alpha=args.weight_decay)
                torch._foreach_mul_(bufs, mom_t)
                torch._foreach_add_(bufs, grads)
                step = torch._foreach_add(grads, torch._foreach_mul(bufs, mom_t)) if args.nesterov else bufs
                torch._foreach_sub_(params, torch._foreach_mul(step, lr_t))
            else:
                for p, g, buf, d in zip(params, grads, bufs, decay):
                    if d and args.weight_decay:
                        g = g.add(p, alpha=args.weight_decay)
                    buf.mul_(mom_t).add_(g)
                    p.sub_((g + buf * mom_t if args.nesterov else buf) * lr_t)
            for p in params:
                p.grad = None
        return loss.detach(), (logits.argmax(1) != y).sum()

    graph = None
    if dev.type == "cuda" and not args.eager:
        try:
            snapshot = {k: v.clone() for k, v in model.state_dict().items()}
            lr_t.fill_(0.0)
            mom_t.fill_(0.0)
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    step_body(static_x, static_y)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_loss, static_wrong = step_body(static_x, static_y)
            with torch.no_grad():  # undo the warm-up's BatchNorm statistics and momentum, in place
                for k, v in model.state_dict().items():
                    v.copy_(snapshot[k])
                for buf in bufs:
                    buf.zero_()
        except Exception as e:  # noqa: BLE001 - the driver reruns with --eager
            raise SystemExit(f"CUDA graph capture failed ({type(e).__name__}: {e}); rerun with --eager") from e

    out = open(args.out, "a")
    global_step = 0
    for epoch in range(args.stop_after or args.epochs):
        start = time.time()
        model.train()
        perm = torch.randperm(n, device=dev, generator=gen)
        loss_sum = torch.zeros((), device=dev, dtype=torch.float64)
        wrong_sum = torch.zeros((), device=dev, dtype=torch.long)
        seen = 0
        for i in range(steps_per_epoch):
            idx = perm[i * b:(i + 1) * b]
            x = augment(train_x[idx], mean, std, args.random_erasing, gen)
            y = train_y[idx]
            lr, mom = rate_and_momentum(args, global_step, total)
            lr_t.fill_(lr)
            mom_t.fill_(mom)
            if graph is not None and x.shape[0] == b:
                static_x.copy_(x)
                static_y.copy_(y)
                graph.replay()
                loss, wrong = static_loss, static_wrong
            else:
                loss, wrong = step_body(x, y)
            loss_sum += loss.double() * x.shape[0]
            wrong_sum += wrong
            seen += x.shape[0]
            global_step += 1
        model.eval()
        test_loss, test_right = 0.0, 0
        with torch.no_grad():
            for i in range(0, test_x.shape[0], 1000):
                logits = model(test_x[i:i + 1000])
                test_loss += F.cross_entropy(logits, test_y[i:i + 1000], reduction="sum").item()
                test_right += (logits.argmax(1) == test_y[i:i + 1000]).sum().item()
        record = {
            "epoch": epoch + 1, "iterations": global_step, "train_loss": loss_sum.item() / seen,
            "train_error": wrong_sum.item() / seen, "test_loss": test_loss / test_x.shape[0],
            "test_top1": test_right / test_x.shape[0], "lr": lr, "seconds": round(time.time() - start, 2),
        }
        out.write(json.dumps(record) + "\n")
        out.flush()
        print(args.model, json.dumps(record), flush=True)
    out.close()


if __name__ == "__main__":
    main()
