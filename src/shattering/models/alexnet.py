"""The small AlexNet of Section 2 / Appendix A (Zhang et al., ICLR 2017), for any C x H x W input.

Two modules of (5x5 convolution, ReLU, 3x3 max-pool, local response normalization), then fully connected
layers of 384 and 192 units and a linear output layer. The paper gives neither channel counts nor strides;
64 channels per convolution, SAME padding and stride-2 pooling (28 -> 14 -> 7) reproduce Table 1's
1,387,786 parameters exactly. This is the TensorFlow CIFAR-10 tutorial model, with the
paper's module order (pool before LRN in both modules). LRN constants are the tutorial's (depth radius 4,
bias 1, alpha 0.001/9, beta 0.75): PyTorch divides alpha by the window size, hence ``size=9, alpha=0.001``.
"""

from __future__ import annotations

import torch
from torch import nn


def _pooled(size: int) -> int:
    return (size + 1) // 2  # 3x3 stride-2 max-pool with SAME padding


class AlexNetSmall(nn.Module):
    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, dropout: float = 0.0,
                 channels: int = 64):
        super().__init__()
        c, h, w = input_shape
        self.features = nn.Sequential(
            nn.Conv2d(c, channels, 5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
            nn.LocalResponseNorm(size=9, alpha=0.001, beta=0.75, k=1.0),
            nn.Conv2d(channels, channels, 5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
            nn.LocalResponseNorm(size=9, alpha=0.001, beta=0.75, k=1.0),
        )
        flat = channels * _pooled(_pooled(h)) * _pooled(_pooled(w))  # 64 * 7 * 7 = 3136 for 28x28
        self.classifier = nn.Sequential(
            nn.Linear(flat, 384), nn.ReLU(inplace=True),
            nn.Linear(384, 192), nn.ReLU(inplace=True),
            nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
            nn.Linear(192, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))
