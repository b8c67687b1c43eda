"""The small Inception of Appendix A, Figure 3 (Zhang et al., ICLR 2017), for any C x H x W input.

Building blocks (Figure 3, left):

- Conv module C(k, ch, s): k x k convolution with ``ch`` channels and stride s (SAME padding), batch
  normalization, ReLU.
- Inception module I(ch1, ch3): a 1x1 and a 3x3 Conv module side by side, concatenated (ch1 + ch3 channels).
- Downsample module D(ch3): a 3x3 stride-2 Conv module beside a 3x3 stride-2 max-pool, concatenated.

Batch normalization follows TF-slim's default (``center=True, scale=False``): a learned offset beta per
channel and no learned scale, so the convolution needs no bias. Without batch normalization
(``inception-small-nobn``, "Inception w/o BatchNorm" in Table 1) the convolutions carry that bias instead.
Both readings give Table 1's 1,649,402 parameters for a 28x28x3 input and 10 classes.
"""

from __future__ import annotations

import torch
from torch import nn

# (kind, arguments) of Figure 3, right.
ARCHITECTURE = (
    ("conv", 96),
    ("inception", 32, 32),
    ("inception", 32, 48),
    ("downsample", 80),
    ("inception", 112, 48),
    ("inception", 96, 64),
    ("inception", 80, 80),
    ("inception", 48, 96),
    ("downsample", 96),
    ("inception", 176, 160),
    ("inception", 176, 160),
)


class ConvModule(nn.Sequential):
    """k x k convolution (SAME padding), batch norm with offset only (or a conv bias without BN), ReLU."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int = 1, batch_norm: bool = True):
        layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, bias=not batch_norm)]
        if batch_norm:
            bn = nn.BatchNorm2d(c_out)
            bn.weight.requires_grad_(False)  # scale fixed at 1: TF-slim's scale=False
            layers.append(bn)
        layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class InceptionModule(nn.Module):
    """I(ch1, ch3): 1x1 and 3x3 Conv modules on the same input, concatenated along channels."""

    def __init__(self, c_in: int, ch1: int, ch3: int, batch_norm: bool = True):
        super().__init__()
        self.branch1 = ConvModule(c_in, ch1, 1, batch_norm=batch_norm)
        self.branch3 = ConvModule(c_in, ch3, 3, batch_norm=batch_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch3(x)], dim=1)


class DownsampleModule(nn.Module):
    """D(ch3): a 3x3 stride-2 Conv module beside a 3x3 stride-2 max-pool; spatial size halves (rounded up)."""

    def __init__(self, c_in: int, ch3: int, batch_norm: bool = True):
        super().__init__()
        self.conv = ConvModule(c_in, ch3, 3, stride=2, batch_norm=batch_norm)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv(x), self.pool(x)], dim=1)


class InceptionSmall(nn.Module):
    """The small Inception of Figure 3: 11 modules, global mean pooling, one linear layer."""

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, batch_norm: bool = True,
                 dropout: float = 0.0):
        super().__init__()
        c = input_shape[0]
        layers: list[nn.Module] = []
        for kind, *args in ARCHITECTURE:
            if kind == "conv":
                layers.append(ConvModule(c, args[0], 3, batch_norm=batch_norm))
                c = args[0]
            elif kind == "inception":
                layers.append(InceptionModule(c, *args, batch_norm=batch_norm))
                c = sum(args)
            else:
                layers.append(DownsampleModule(c, args[0], batch_norm=batch_norm))
                c = c + args[0]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)  # the 7x7 mean pooling of Figure 3, for any input size
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)  # (B, 336)
        return self.classifier(self.dropout(x))
