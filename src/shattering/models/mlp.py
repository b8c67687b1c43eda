"""Multi-layer perceptrons of Table 1 (Zhang et al., ICLR 2017): "MLP 1x512 means one hidden layer with
512 hidden units"; ReLU activations; the input is the flattened image (28*28*3 = 2352 values on CIFAR-10).
``activation="tanh"`` swaps the ReLU for tanh, the switch Saxe et al. (ICLR 2018) turned to show that the
information plane's compression comes with saturating units: not the paper's model.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh}

class MLP(nn.Module):
    """``depth`` hidden layers of ``width`` ReLU (or ``activation="tanh"``) units on the flattened image (or hidden
    layers of the given ``widths``), then a linear output layer.

    The layers are ``nn.Linear`` modules applied as ``F.linear`` (the product and derivatives ``nn.Linear`` has).
    K runs packed into one model (:mod:`shattering.train.packed`) apply the same layers as batched products
    (:func:`~shattering.models.batched_linear.batched_linear`), which compute each member's numbers with the
    same dot products: a run alone equals its member of a pack bit for bit (tests/test_packed.py checks it on
    the CPU at hand; in general float rounding at most).
    """

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, depth: int = 1, width: int = 512,
                 dropout: float = 0.0, activation: str = "relu", widths: tuple[int, ...] | None = None):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ConfigError(f"The MLP's activation must be one of {', '.join(ACTIVATIONS)}; got {activation!r}.")
        self.activation = activation
        d = math.prod(input_shape)
        sizes = [d] + (list(widths) if widths is not None else [width] * depth) + [num_classes]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.representations(x)["output"]

    def representations(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each hidden layer's activations (``layers.0``, ...: after its ReLU or tanh) and the ``output`` logits:
        what the ``activations`` probe records (the layers are applied as products, not called, so no hook sees
        them)."""
        x = x.flatten(1)
        last = len(self.layers) - 1
        out = {}
        for i, layer in enumerate(self.layers):
            if i == last:
                x = self.dropout(x)
            x = F.linear(x, layer.weight, layer.bias)  # b + x W^T
            if i < last:
                x = ACTIVATIONS[self.activation](x)
                out[f"layers.{i}"] = x
        out["output"] = x
        return out
