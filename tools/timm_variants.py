#!/usr/bin/python3
"""An independent PyTorch definition of timm's ResNet-D and SE-ResNet families, for test fixtures.

Written from reading timm's models/resnet.py and layers/squeeze_excite.py (timm itself is not installed here):
the module names match timm's, so its state dicts load into ResNetSharp's models by name.

    resnet50d:          deep stem (3x3 convs 32, 32, 64; stride 2 on the first), avg-down shortcuts
    seresnet50:         torchvision's ResNet-50 with squeeze-and-excitation (`se.fc1`, `se.fc2`) after bn3
    resnext50d_32x4d:   resnet50d with 32 groups of width 4
    seresnext50_32x4d:  seresnet50 with 32 groups of width 4

Run with /usr/bin/python3 (PyTorch 1.13):  python3 tools/timm_variants.py   (prints parameter counts)
"""
import torch
from torch import nn


def make_divisible(value, divisor=8):
    """timm's rounding with round_limit=0 (what SE uses): nearest multiple of divisor, at least divisor."""
    return max(divisor, int(value + divisor / 2) // divisor * divisor)


class SqueezeExcite(nn.Module):
    def __init__(self, channels):
        super().__init__()
        reduced = make_divisible(channels / 16)
        self.fc1 = nn.Conv2d(channels, reduced, 1, bias=True)
        self.fc2 = nn.Conv2d(reduced, channels, 1, bias=True)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        s = self.fc2(torch.relu(self.fc1(s)))
        return x * torch.sigmoid(s)


class Block(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride, groups, base_width, se, downsample):
        super().__init__()
        width = (planes * base_width // 64) * groups
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.se = SqueezeExcite(out) if se else None
        self.downsample = downsample

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        if self.se is not None:
            y = self.se(y)
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.relu(y + shortcut)


class Net(nn.Module):
    def __init__(self, deep_stem=False, avg_down=False, se=False, groups=1, base_width=64, layers=(3, 4, 6, 3), num_classes=1000):
        super().__init__()
        if deep_stem:
            self.conv1 = nn.Sequential(
                nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                nn.Conv2d(32, 64, 3, padding=1, bias=False))
        else:
            self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = 64
        for i, (n, planes) in enumerate(zip(layers, (64, 128, 256, 512))):
            stride = 1 if i == 0 else 2
            out = planes * Block.expansion
            down = None
            if stride != 1 or inplanes != out:
                if avg_down:
                    pool = nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) if stride != 1 else nn.Identity()
                    down = nn.Sequential(pool, nn.Conv2d(inplanes, out, 1, bias=False), nn.BatchNorm2d(out))
                else:
                    down = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out))
            blocks = []
            for b in range(n):
                blocks.append(Block(inplanes, planes, stride if b == 0 else 1, groups, base_width, se, down if b == 0 else None))
                inplanes = out
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(inplanes, num_classes)

    def stem(self, x):
        return self.maxpool(torch.relu(self.bn1(self.conv1(x))))

    def forward(self, x):
        y = self.stem(x)
        for i in range(4):
            y = getattr(self, f"layer{i + 1}")(y)
        return self.fc(y.mean((2, 3)))


VARIANTS = {
    "resnet50d": dict(deep_stem=True, avg_down=True),
    "seresnet50": dict(se=True),
    "resnext50d_32x4d": dict(deep_stem=True, avg_down=True, groups=32, base_width=4),
    "seresnext50_32x4d": dict(se=True, groups=32, base_width=4),
}

# timm's published parameter counts (model cards); the fixture writer checks every build against them.
PARAMETERS = {"resnet50d": 25_576_264, "seresnet50": 28_088_024}


def build(name):
    return Net(**VARIANTS[name])


if __name__ == "__main__":
    for name in VARIANTS:
        count = sum(p.numel() for p in build(name).parameters())
        print(f"{name}: {count:,}" + (f" (timm: {PARAMETERS[name]:,})" if name in PARAMETERS else ""))
