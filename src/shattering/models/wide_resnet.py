"""Wide Residual Networks (Zagoruyko and Komodakis, BMVC 2016), WRN-d-k: pre-activation residual blocks, three
stages k times wider than ResNet's. The paper's first author demonstrates the randomization test of Section 2.1
with a WRN-28-1 on CIFAR-10 (369,498 parameters at 32x32x3 and 10 classes); WRN-28-10 has 36,479,194.

Any (C, H, W) input works: strides round up and the head pools globally.
"""

from __future__ import annotations

import torch
from torch import nn


class WideBlock(nn.Module):
    """A pre-activation block of a Wide ResNet: BN-ReLU-conv3x3, BN-ReLU-conv3x3, plus the input (a 1x1
    convolution of the activated input when the width or the resolution changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int, dropout: float = 0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.projection = None
        if stride != 1 or c_in != c_out:
            self.projection = nn.Conv2d(c_in, c_out, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = torch.relu(self.bn1(x))
        out = self.conv1(activated)
        out = self.conv2(self.dropout(torch.relu(self.bn2(out))))
        return out + (x if self.projection is None else self.projection(activated))


class WideResNet(nn.Module):
    """WRN-``depth``-``width``: a 3x3 stem of 16 channels, three stages of (depth - 4) / 6 blocks at 16k, 32k
    and 64k channels (strides 1, 2, 2), then BN-ReLU, global average pooling and a linear layer."""

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, depth: int = 28, width: int = 10,
                 dropout: float = 0.0):
        super().__init__()
        if (depth - 4) % 6 or depth < 10:
            raise ValueError(f"A Wide ResNet's depth must be 6n + 4 (10, 16, 22, 28, ...); got {depth}.")
        n = (depth - 4) // 6
        self.stem = nn.Conv2d(input_shape[0], 16, 3, 1, 1, bias=False)
        blocks, c = [], 16
        for stage, stride in zip((16 * width, 32 * width, 64 * width), (1, 2, 2), strict=True):
            for j in range(n):
                blocks.append(WideBlock(c, stage, stride if j == 0 else 1, dropout))
                c = stage
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(c)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.blocks(self.stem(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
