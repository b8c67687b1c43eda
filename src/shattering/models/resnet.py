"""ResNet-18 in its CIFAR form (He et al., CVPR 2016; a 3x3 stem and no max-pool, so 32x32 inputs keep their
resolution in the first stage): one of the networks researchers run randomization tests on today, beside the
paper's models of Appendix A. 11,173,962 parameters at 32x32x3 and 10 classes.

Any (C, H, W) input works: strides round up and the head pools globally, so 8x8 digits and 1x40 MNIST-1D signals
pass too.
"""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 convolutions with batch norm, plus the input (a 1x1 projection when the
    width or the resolution changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """ResNet with basic blocks for small images: ``blocks`` per stage at widths 64, 128, 256, 512."""

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, blocks: tuple[int, ...] = (2, 2, 2, 2),
                 dropout: float = 0.0):
        super().__init__()
        c = input_shape[0]
        self.stem = nn.Sequential(nn.Conv2d(c, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True))
        stages, width = [], 64
        for i, n in enumerate(blocks):
            out = 64 * 2 ** i
            for j in range(n):
                stages.append(BasicBlock(width, out, 2 if (i > 0 and j == 0) else 1))
                width = out
        self.stages = nn.Sequential(*stages)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.fc(self.dropout(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)))
