"""Points and directions in a network's weight space, as dicts of tensors keyed by parameter name (the form
``torch.func.functional_call`` takes).

Filter normalization (Li, Xu, Taylor, Studer and Goldstein, NeurIPS 2018, "Visualizing the loss landscape of
neural nets", Section 4): a direction d is drawn from N(0, I) with the shapes of the weights theta, then each
filter of d (a slice along the first dimension of a weight of two or more dimensions: a convolution's output
channel, a linear layer's output unit) is rescaled to the norm of the corresponding filter of theta,

    d_{i,j} <- d_{i,j} / ||d_{i,j}|| * ||theta_{i,j}||,

so that a step along d is the same relative step in every filter, and plots of networks of different scales
(or of one network whose layers' scales differ, which batch norm makes meaningless) compare. Biases and batch
norm's weights and biases (one-dimensional parameters) are zeroed (``ignore="biasbn"``, the reference
implementation's default and the one used here), or included (``ignore="none"``): then, as in the reference
implementation, their direction is the weights themselves (a one-dimensional parameter's filter is one number).
Batch norm's running statistics are buffers, never part of a direction: a random direction moves the weights
only (the reference implementation's ``dir_type='weights'``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from ..errors import ConfigError
from ..validation import must_be

Point = dict[str, torch.Tensor]
IGNORE = ("biasbn", "none")


def weights_of(model: nn.Module) -> Point:
    """The trainable parameters of ``model``, detached copies keyed by name."""
    return {k: p.detach().clone() for k, p in model.named_parameters() if p.requires_grad}


def same_shapes(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], what: str = "the two networks") -> None:
    """Refuse, in one sentence, two points of networks with different parameters."""
    if {k: tuple(v.shape) for k, v in a.items()} != {k: tuple(v.shape) for k, v in b.items()}:
        names = sorted(set(a) ^ set(b)) or sorted(k for k in a if tuple(a[k].shape) != tuple(b[k].shape))
        raise ConfigError(f"{what} have different parameters (first difference: {names[0]!r}); compare networks of "
                          "one architecture.")


def combine(terms: Iterable[tuple[float, Mapping[str, torch.Tensor]]]) -> Point:
    """sum_t c_t p_t over (coefficient, point) pairs of one architecture."""
    out: Point = {}
    for c, p in terms:
        for k, v in p.items():
            out[k] = out[k] + c * v if k in out else c * v
    return out


def random_direction(theta: Mapping[str, torch.Tensor], seed: int, ignore: str = "biasbn") -> Point:
    """A Gaussian direction drawn from ``seed`` (a generator of its own: the global random state is not touched),
    filter-normalized against ``theta`` (module docstring); ``ignore``: ``"biasbn"`` zeroes the one-dimensional
    parameters, ``"none"`` gives them the weights themselves."""
    if ignore not in IGNORE:
        raise ConfigError(must_be("ignore", f"one of {', '.join(IGNORE)}", ignore, of="random_direction"))
    g = torch.Generator().manual_seed(int(seed))
    out: Point = {}
    for k, w in theta.items():
        d = torch.randn(w.shape, generator=g, dtype=torch.float64).to(w.dtype)
        if w.dim() <= 1:
            out[k] = torch.zeros_like(w) if ignore == "biasbn" else w.detach().clone()
        else:
            out[k] = filter_normalized(d, w)
    return out


def filter_normalized(d: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``d`` with each filter (slice along dimension 0) rescaled to the norm of ``w``'s filter."""
    dims = tuple(range(1, w.dim()))
    d_norm = torch.linalg.vector_norm(d, dim=dims, keepdim=True)
    w_norm = torch.linalg.vector_norm(w, dim=dims, keepdim=True)
    return d / torch.where(d_norm > 0, d_norm, torch.ones_like(d_norm)) * w_norm


def flatten(p: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The point as one float64 vector (parameters in their order)."""
    return torch.cat([v.detach().reshape(-1).double() for v in p.values()])


def unflatten(vector: torch.Tensor, like: Mapping[str, torch.Tensor]) -> Point:
    """A vector back into a point shaped as ``like`` (its dtype)."""
    out, i = {}, 0
    for k, v in like.items():
        out[k] = vector[i:i + v.numel()].reshape(v.shape).to(v.dtype)
        i += v.numel()
    return out
