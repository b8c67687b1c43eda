"""Output margins of a trained network on its training examples (Bartlett, Foster and Telgarsky 2017,
"Spectrally-normalized margin bounds for neural networks"): the margin of example i is f(x_i)[y_i] -
max_{j != y_i} f(x_i)[j], the logit of the label it was trained on (a random one, for random labels) minus the
largest other logit, computed in eval mode in float32. Their bound uses a low quantile of the margins rather than
the minimum (the 10th percentile here, robust to a few examples); the normalized margin divides it by the
spectral complexity R_A and by the data's scale ||X||_F / sqrt(n) (the root mean square norm of an example).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def logits(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """``model``'s float32 logits on ``x`` in eval mode (no autocast), batch by batch."""
    model.eval()
    rows = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            out = model(x[start:start + batch_size].float())
            rows.append((out[0] if isinstance(out, tuple) else out).float())
    return torch.cat(rows)


def margins(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-example margins: the score of the label minus the largest score of another class."""
    own = scores.gather(1, labels[:, None].long())[:, 0]
    others = scores.scatter(1, labels[:, None].long(), float("-inf"))
    return own - others.max(dim=1).values


def margin_summary(values: torch.Tensor) -> dict:
    """``margin_min``, ``margin_p10`` (10th percentile, linear interpolation) and ``margin_median``."""
    v = values.double().cpu()
    return {"margin_min": float(v.min()), "margin_p10": float(torch.quantile(v, 0.1)),
            "margin_median": float(torch.quantile(v, 0.5))}


def data_scale(x: torch.Tensor) -> float:
    """||X||_F / sqrt(n): the root mean square of the examples' l2 norms."""
    return math.sqrt(float(x.double().square().sum()) / len(x))
