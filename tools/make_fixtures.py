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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_torchvision import convert_floats, write_safetensors  # noqa: E402  (the shipped writer, tested here)

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


def roi_ops(out):
    """torchvision.ops.roi_align / roi_pool outputs (and roi_align's input gradient) on a small seeded map."""
    path = os.path.join(out, "roi_ops.json")
    if os.path.exists(path):
        return
    from torchvision.ops import roi_align, roi_pool
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(2, 3, 10, 12, generator=g)
    # image-coordinate boxes (image 4x the map): inside, partly outside, wholly outside, zero-size, tiny, whole map
    boxes = torch.tensor([
        [0, 4.0, 6.0, 30.0, 22.0],
        [1, -10.0, -6.0, 14.0, 18.0],
        [0, 30.0, 20.0, 60.0, 50.0],
        [1, 100.0, 90.0, 130.0, 120.0],
        [0, 12.0, 12.0, 12.0, 12.0],
        [1, 8.5, 3.25, 9.75, 5.0],
        [0, 0.0, 0.0, 47.0, 39.0],
        [1, 21.3, 2.7, 44.9, 37.1],
    ])
    cases = []
    for scale, size, ratio, aligned in [(0.25, (2, 2), 2, False), (0.25, (3, 4), -1, False), (0.25, (7, 7), 0, True),
                                        (0.25, (2, 3), 1, True), (0.5, (4, 4), 2, False), (0.125, (5, 3), -1, True)]:
        xi = x.clone().requires_grad_(True)
        y = roi_align(xi, boxes, size, spatial_scale=scale, sampling_ratio=ratio, aligned=aligned)
        w = torch.randn(y.shape, generator=g)
        (y * w).sum().backward()
        cases.append({"op": "align", "scale": scale, "size": list(size), "samplingRatio": ratio, "aligned": aligned,
                      "output": y.detach().flatten().tolist(), "outputShape": list(y.shape),
                      "gradWeights": w.flatten().tolist(), "inputGrad": xi.grad.flatten().tolist()})
    for scale, size in [(0.25, (2, 2)), (0.25, (3, 4)), (0.5, (4, 4)), (0.125, (2, 5))]:
        y = roi_pool(x, boxes, size, spatial_scale=scale)
        cases.append({"op": "pool", "scale": scale, "size": list(size), "output": y.flatten().tolist(), "outputShape": list(y.shape)})
    result = {"torchvision": torchvision.__version__, "inputShape": list(x.shape), "input": x.flatten().tolist(),
              "boxes": boxes.tolist(), "cases": cases}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, path)


EQUIVALENCE_MODELS = ["resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2"]


def _randomised(name, seed):
    """A torchvision model with seeded random weights, random BN affine and non-trivial BN running statistics."""
    torch.manual_seed(seed)
    model = getattr(torchvision.models, name)()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)
                m.momentum = None  # running stats = plain average over the training batches below
        model.fc.bias.normal_(0.0, 0.1)
        model.train()
        for _ in range(3):
            model(torch.randn(4, 3, 64, 64) * 1.5 + 0.3)
    model.eval()
    return model


def torchvision_weights(out):
    """Per model: its state dict (safetensors) and torchvision's eval-mode input, stage outputs and logits."""
    for i, name in enumerate(EQUIVALENCE_MODELS):
        weights = os.path.join(out, f"weights_{name}.safetensors")
        io = os.path.join(out, f"weights_{name}_io.safetensors")
        if os.path.exists(weights) and os.path.exists(io):
            continue
        model = _randomised(name, seed=1000 + i)
        torch.manual_seed(2000 + i)
        x = torch.randn(2, 3, 64, 64)
        outputs = {"input": x}
        with torch.no_grad():
            y = model.maxpool(model.relu(model.bn1(model.conv1(x))))
            for stage in ("layer1", "layer2", "layer3", "layer4"):
                y = getattr(model, stage)(y)
                outputs[stage] = y
            logits = model.fc(torch.flatten(model.avgpool(y), 1))
            outputs["logits"] = logits
            assert torch.allclose(logits, model(x), rtol=0, atol=1e-5)
        meta = {"model": name, "torch": torch.__version__, "torchvision": torchvision.__version__}
        write_safetensors(weights, model.state_dict(), meta)
        write_safetensors(io, outputs, meta)
        if name == "resnet18":
            for tag, dtype in (("f16", torch.float16), ("bf16", torch.bfloat16)):
                write_safetensors(os.path.join(out, f"weights_resnet18_{tag}.safetensors"),
                                  convert_floats(model.state_dict(), dtype), meta)


class _Tiny(torch.nn.Module):
    """ResNetSharp's two-stage test network (tests' WeightsTestSupport.TinyTable) built from torchvision's BasicBlock:
    3x3 stem with 8 channels and no max pool, one block of 8 and one of 16 channels (stride 2, projection), 5 classes."""

    def __init__(self):
        super().__init__()
        from torchvision.models.resnet import BasicBlock
        self.conv1 = torch.nn.Conv2d(3, 8, 3, 1, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.layer1 = torch.nn.Sequential(BasicBlock(8, 8))
        down = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 1, 2, bias=False), torch.nn.BatchNorm2d(16))
        self.layer2 = torch.nn.Sequential(BasicBlock(8, 16, stride=2, downsample=down))
        self.fc = torch.nn.Linear(16, 5)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))


def pytorch_checkpoints(out):
    """torch.save'd .pth files (zip format, as torchvision publishes its weights) and hostile ones, for the .pth reader.

    pth_resnet18.pth / _f16.pth: the randomised resnet18 state dict as fp32 and fp16; pth_resnet18_io.safetensors:
    a fixed input and torchvision's logits for each (the f16 logits from the f16-rounded weights).
    pth_tiny*.pth: the small test network's state dict, wrapped in a training checkpoint under 'state_dict', and in
    the legacy (pre-1.6, non-zip) format. pth_views.pth: non-contiguous views sharing one storage, with their values
    in pth_views_expected.safetensors. pth_evil_system.pth: a pickle that would call os.system. pth_truncated.pth:
    the first half of pth_tiny.pth."""
    done = os.path.join(out, "pth_done.json")
    if os.path.exists(done):
        return
    import collections
    model = _randomised("resnet18", seed=3000)
    torch.manual_seed(3001)
    x = torch.randn(2, 3, 64, 64)
    sd = model.state_dict()
    torch.save(sd, os.path.join(out, "pth_resnet18.pth"))
    half = collections.OrderedDict((k, v.half() if v.is_floating_point() else v) for k, v in sd.items())
    torch.save(half, os.path.join(out, "pth_resnet18_f16.pth"))
    with torch.no_grad():
        logits = model(x)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in half.items()})
        logits_f16 = model(x)
    meta = {"model": "resnet18", "torch": torch.__version__, "torchvision": torchvision.__version__}
    write_safetensors(os.path.join(out, "pth_resnet18_io.safetensors"),
                      {"input": x, "logits": logits, "logits_f16": logits_f16}, meta)

    torch.manual_seed(3002)
    tiny = _Tiny()
    with torch.no_grad():
        for m in tiny.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)
                m.running_mean.normal_(0.0, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(7)
    tiny.eval()
    tx = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        tlogits = tiny(tx)
    torch.save(tiny.state_dict(), os.path.join(out, "pth_tiny.pth"))
    write_safetensors(os.path.join(out, "pth_tiny_io.safetensors"), {"input": tx, "logits": tlogits}, meta)
    torch.save({"epoch": 7, "arch": "tiny", "best_acc1": 61.25, "state_dict": tiny.state_dict()},
               os.path.join(out, "pth_tiny_checkpoint.pth"))
    torch.save(tiny.state_dict(), os.path.join(out, "pth_tiny_legacy.pth"), _use_new_zipfile_serialization=False)

    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    views = collections.OrderedDict([("transposed", base.t()), ("rows", base[1:3]), ("columns", base[:, 2:5]),
                                     ("every_other", base[::2, ::3]), ("scalar", base[2, 3]),
                                     ("empty", base[:0]), ("int64", torch.tensor([5, -7, 1 << 40]))])
    torch.save(views, os.path.join(out, "pth_views.pth"))
    write_safetensors(os.path.join(out, "pth_views_expected.safetensors"),
                      collections.OrderedDict((k, v.contiguous()) for k, v in views.items()), meta)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo this should never run",))

    torch.save({"conv1.weight": torch.zeros(1), "payload": Evil()}, os.path.join(out, "pth_evil_system.pth"))
    with open(os.path.join(out, "pth_tiny.pth"), "rb") as f:
        data = f.read()
    with open(os.path.join(out, "pth_truncated.pth"), "wb") as f:
        f.write(data[: len(data) // 2])
    with open(done, "w") as f:
        json.dump(meta, f)


def torchvision_224(out):
    """ResNet-50 (the same seeded weights as weights_resnet50.safetensors) on a 2×3×224×224 batch: torchvision's
    logits and pooled features at the paper's crop, the reference for the ONNX export test."""
    path = os.path.join(out, "weights_resnet50_io224.safetensors")
    if os.path.exists(path):
        return
    model = _randomised("resnet50", seed=1000 + EQUIVALENCE_MODELS.index("resnet50"))
    torch.manual_seed(3001)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        y = model.conv1(x)
        y = model.maxpool(model.relu(model.bn1(y)))
        y = model.layer4(model.layer3(model.layer2(model.layer1(y))))
        pooled = torch.flatten(model.avgpool(y), 1)
        logits = model.fc(pooled)
        assert torch.allclose(logits, model(x), rtol=0, atol=1e-4)
    meta = {"model": "resnet50", "torch": torch.__version__, "torchvision": torchvision.__version__}
    write_safetensors(path, {"input": x, "pooled": pooled, "logits": logits}, meta)


TIMM_VARIANTS = ["resnet50d", "seresnet50"]


def timm_variant_weights(out):
    """Per timm variant (tools/timm_variants.py, an independent definition with timm's names): its seeded state dict
    and eval-mode input, stage outputs and logits on a 2x3x72x72 batch (odd 9x9 maps in layer2, so ResNet-D's
    ceil-mode average pool meets a partial window), and its parameter count, checked against timm's."""
    from timm_variants import PARAMETERS, build
    for i, name in enumerate(TIMM_VARIANTS):
        weights = os.path.join(out, f"weights_{name}.safetensors")
        io = os.path.join(out, f"weights_{name}_io.safetensors")
        if os.path.exists(weights) and os.path.exists(io):
            continue
        torch.manual_seed(3000 + i)
        model = build(name)
        count = sum(p.numel() for p in model.parameters())
        assert count == PARAMETERS[name], f"{name}: {count} parameters, timm has {PARAMETERS[name]}"
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.normal_(0.0, 0.2)
                    m.momentum = None
            model.fc.bias.normal_(0.0, 0.1)
            model.train()
            for _ in range(3):
                model(torch.randn(4, 3, 64, 64) * 1.5 + 0.3)
        model.eval()
        torch.manual_seed(4000 + i)
        x = torch.randn(2, 3, 72, 72)
        outputs = {"input": x}
        with torch.no_grad():
            y = model.stem(x)
            for stage in ("layer1", "layer2", "layer3", "layer4"):
                y = getattr(model, stage)(y)
                outputs[stage] = y
            outputs["logits"] = model(x)
        meta = {"model": name, "torch": torch.__version__, "parameters": str(count), "source": "tools/timm_variants.py"}
        write_safetensors(weights, model.state_dict(), meta)
        write_safetensors(io, outputs, meta)


def lr_schedules(out):
    """PyTorch's own schedulers over three SGD parameter groups with different rates: each group's rate and momentum
    before every one of 100 steps (the Trainer's schedules, stepped once per iteration)."""
    path = os.path.join(out, "lr_schedules.json")
    if os.path.exists(path):
        return
    from torch.optim import lr_scheduler as S
    rates = [0.2, 0.05, 0.1]

    def run(make):
        params = [torch.nn.Parameter(torch.zeros(1)) for _ in rates]
        opt = torch.optim.SGD([{"params": [p], "lr": r} for p, r in zip(params, rates)], lr=rates[0], momentum=0.9, nesterov=True)
        sched = make(opt)
        lr, momentum = [[] for _ in rates], [[] for _ in rates]
        for _ in range(100):
            for g, group in enumerate(opt.param_groups):
                lr[g].append(group["lr"])
                momentum[g].append(group["momentum"])
            opt.step()
            sched.step()
        return {"lr": lr, "momentum": momentum}

    result = {
        "rates": rates, "steps": 100,
        "step": run(lambda o: S.MultiStepLR(o, [50, 75], 0.1)),
        "cosine": run(lambda o: S.CosineAnnealingLR(o, 100, 0.0)),
        "cosine_warmup10": run(lambda o: S.SequentialLR(o, [S.LinearLR(o, 0.1, 1.0, 10), S.CosineAnnealingLR(o, 90, 0.0)], [10])),
        "onecycle": run(lambda o: S.OneCycleLR(o, rates, total_steps=100, pct_start=0.3)),
    }
    with open(path, "w") as f:
        json.dump(result, f)


PARTS = [state_dict_keys, torchvision_weights, torchvision_224, roi_ops, pytorch_checkpoints, timm_variant_weights, lr_schedules]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else ".fixtures"
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    for part in PARTS:
        part(out)
    print(f"fixtures ready in {out}")


if __name__ == "__main__":
    main()
