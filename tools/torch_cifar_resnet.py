"""The paper's CIFAR ResNet (He et al. 2015, section 4.2) written directly in PyTorch: a 3x3 stem with 16 filters,
three stages of n basic blocks with 16/32/64 filters, option-A shortcuts (subsample by 2 and append zero channels),
global average pooling and a linear head: 6n+2 weighted layers; with shortcut=False, the paper's plain net of the
same depth. torchvision has no such model; the ONNX fixtures, the PyTorch training benchmark and the GPU reference
(torch_reference.py) all use this one definition."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class OptionA(nn.Module):
    """The paper's option A: subsample by 2 and append zero channels."""

    def __init__(self, extra):
        super().__init__()
        self.extra = extra

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 0, self.extra))


class CifarBlock(nn.Module):
    def __init__(self, cin, cout, stride, shortcut=True):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None if not shortcut else OptionA(cout - cin) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y if self.shortcut is None else y + self.shortcut(x))


class CifarNet(nn.Module):
    """6n+2 layers: n = 3 is ResNet-20. Kaiming (fan-out) init of the convs, as torchvision's ResNets."""

    def __init__(self, n=3, in_channels=3, classes=10, shortcut=True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for width, stride in ((16, 1), (32, 2), (64, 2)):
            for b in range(n):
                layers.append(CifarBlock(cin, width, stride if b == 0 else 1, shortcut))
                cin = width
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        y = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))
