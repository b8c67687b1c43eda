"""Multi-layer perceptrons of Table 1 (Zhang et al., ICLR 2017): "MLP 1x512 means one hidden layer with
512 hidden units"; ReLU activations; the input is the flattened image (28*28*3 = 2352 values on CIFAR-10).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, depth: int = 1, width: int = 512,
                 dropout: float = 0.0):
        super().__init__()
        d = math.prod(input_shape)
        layers: list[nn.Module] = [nn.Flatten()]
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.ReLU(inplace=True)]
            d = width
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(d, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
