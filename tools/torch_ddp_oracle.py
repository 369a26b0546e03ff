"""The independent oracle of ResNetSharp's data-parallel training: a real 2-process PyTorch DDP run (gloo backend,
torch.distributed, CPU) of the paper's CIFAR ResNet (torch_cifar_resnet.CifarNet) replaying a run of the test host.

Usage: torch_ddp_oracle.py RUN_DIR WORLD B STEPS OUT.bin
RUN_DIR holds what the C# run wrote: parameters.json (names and shapes in ResNetSharp's order), params-initial-rank0.bin
(the weights after the start-up broadcast, float64), images.bin (N x 1 x 8 x 8) and labels.bin (N), both float64.
Each of WORLD processes trains on its slice of B images of every global batch with SGD (lr 0.1, momentum 0.9,
weight decay 5e-4), StepLR(2, 0.5), per-replica BatchNorm (DDP's default), float32; rank 0 writes the final parameters
in ResNetSharp's order as float64 to OUT.bin."""
import json
import os
import re
import struct
import sys
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_cifar_resnet import CifarNet  # noqa: E402


def read_doubles(path):
    with open(path, "rb") as f:
        data = f.read()
    return torch.tensor(struct.unpack("<%dd" % (len(data) // 8), data), dtype=torch.float64)


def torch_name(name):
    """ResNetSharp's torchvision-style 'layer2.1.conv1.weight' is CifarNet's 'layers.4.conv1.weight' (3 blocks a stage)."""
    m = re.match(r"layer(\d+)\.(\d+)\.(.*)", name)
    return f"layers.{(int(m.group(1)) - 1) * 3 + int(m.group(2))}.{m.group(3)}" if m else name


def worker(rank, world, b, steps, run_dir, out, init_file):
    dist.init_process_group("gloo", init_method="file://" + init_file, rank=rank, world_size=world)
    torch.set_num_threads(1)
    torch.manual_seed(1000 + rank)  # different random weights per rank: only the loaded ones count
    model = CifarNet(n=3, in_channels=1, classes=10)
    with open(os.path.join(run_dir, "parameters.json")) as f:
        names = json.load(f)
    flat = read_doubles(os.path.join(run_dir, "params-initial-rank0.bin"))
    params = dict(model.named_parameters())
    offset = 0
    with torch.no_grad():
        for entry in names:
            p = params[torch_name(entry["name"])]
            assert list(p.shape) == entry["shape"], (entry, p.shape)
            n = p.numel()
            p.copy_(flat[offset:offset + n].view(p.shape))
            offset += n
    assert offset == flat.numel() and len(names) == len(params)
    images = read_doubles(os.path.join(run_dir, "images.bin")).float().view(-1, 1, 8, 8)
    labels = read_doubles(os.path.join(run_dir, "labels.bin")).long()
    ddp = DDP(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, 2, 0.5)
    for step in range(steps):
        start = step * world * b + rank * b
        opt.zero_grad()
        loss = F.cross_entropy(ddp(images[start:start + b]), labels[start:start + b])
        loss.backward()
        if os.environ.get("ORACLE_VERBOSE"):
            print(rank, step, loss.item(), file=sys.stderr)
        opt.step()
        sched.step()
    if rank == 0:
        with open(out, "wb") as f:
            for entry in names:
                f.write(struct.pack("<%dd" % params[torch_name(entry["name"])].numel(),
                                    *params[torch_name(entry["name"])].detach().double().flatten().tolist()))
    dist.destroy_process_group()


def main():
    run_dir, world, b, steps, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    init_file = os.path.join(tempfile.mkdtemp(), "gloo-init")
    mp.spawn(worker, args=(world, b, steps, run_dir, out, init_file), nprocs=world, join=True)


if __name__ == "__main__":
    main()
