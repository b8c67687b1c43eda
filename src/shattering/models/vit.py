"""A small Vision Transformer (Dosovitskiy et al. 2021) for CIFAR-sized images: 4x4 patches, a class token,
learned position embeddings and pre-norm transformer blocks. ``vit-tiny`` has width 192, depth 6, 3 heads and
an MLP of 384 (at 32x32x3 and 10 classes: 64 patches, 1,806,538 parameters).

Any (C, H, W) input works: images whose sides are not multiples of the patch are padded with zeros on the
bottom and right.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class TransformerBlock(nn.Module):
    """Pre-norm block: x + attention(LN(x)), then x + MLP(LN(x)) with a GELU."""

    def __init__(self, width: int, heads: int, mlp: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attention = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, mlp), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attention(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """ViT with ``patch`` x ``patch`` patches embedded linearly, a class token and ``depth`` blocks."""

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, patch: int = 4, width: int = 192,
                 depth: int = 6, heads: int = 3, mlp: int = 384, dropout: float = 0.0):
        super().__init__()
        c, h, w = input_shape
        self.patch = patch
        self.grid = (math.ceil(h / patch), math.ceil(w / patch))
        self.embed = nn.Conv2d(c, width, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, width))
        self.position = nn.Parameter(torch.randn(1, 1 + self.grid[0] * self.grid[1], width) * 0.02)
        self.blocks = nn.Sequential(*(TransformerBlock(width, heads, mlp, dropout) for _ in range(depth)))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad_h = self.grid[0] * self.patch - x.shape[-2]
        pad_w = self.grid[1] * self.patch - x.shape[-1]
        if pad_h or pad_w:
            x = nn.functional.pad(x, (0, pad_w, 0, pad_h))
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls.expand(len(x), -1, -1), tokens], dim=1) + self.position
        return self.head(self.norm(self.blocks(tokens))[:, 0])
