"""Norm-based complexity measures of a trained network (the measures Zhang et al., ICLR 2017, Section 5, ask for:
"a characterization of complexity" that tells the networks that fit true labels from those that fit random ones).

- ``l2_norm``: ||w||_2 = sqrt(sum of the squared trained parameters), weights and biases (every parameter SGD
  updates; a parameter frozen at its initial value, such as the Inceptions' batch-norm scale fixed at 1, is not
  counted). Jiang et al. 2020, "Fantastic generalization measures", Section C ("l2").
- ``distance_from_init``: ||w - w0||_2 over the same parameters, w0 the run's initialization rebuilt from its seed
  (Nagarajan and Kolter 2019; Jiang et al. 2020, "dist.l2").
- ``spectral_product``: prod_i ||A_i||_sigma over the weighted layers (:mod:`.layers`: batch norm folded, a
  convolution's operator norm on its input shape), and ``log_spectral_product`` = sum_i log ||A_i||_sigma
  (the product overflows for deep networks). Bartlett, Foster and Telgarsky 2017.
- ``frobenius_sum``: sum_i ||A_i||_F^2 over the weighted layers' matrices (a convolution's kernel), the quantity
  whose product bounds the capacity in Neyshabur, Tomioka and Srebro 2015 (Theorem 1), and
  ``log_frobenius_product`` = sum_i log ||A_i||_F.
- ``spectral_complexity``: Bartlett et al.'s R_A = (prod_i ||A_i||_sigma) * (sum_i (||A_i^T - M_i^T||_{2,1} /
  ||A_i||_sigma)^(2/3))^(3/2) with reference matrices M_i = 0, ||A^T||_{2,1} the sum of the l2 norms of A's rows
  (a convolution's kernel rows, one per output channel, as Jiang et al. compute it), as a logarithm
  ``log_spectral_complexity``.
- ``path_l2``: the path-l2 norm of Neyshabur, Salakhutdinov and Srebro 2015 ("Path-SGD"): sqrt(sum over the
  paths from an input to an output of prod of the squared weights on the path), by one forward pass in float64,
  in eval mode, of the network with every weight squared and every bias zero on an all-ones input (Jiang et
  al.'s recipe): ReLU passes the non-negative values untouched, so each output is its sum over paths. Batch norm
  is the per-channel factor s^2 (s folded into the neighbouring layer, as eval mode computes it); pooling and
  dropout stay as the network has them (average pooling's 1/k is its structure, not a weight; max pooling makes
  it Jiang et al.'s proxy rather than a sum over all paths). Networks whose modules cannot be squared this way
  (attention, layer norm, local response normalization, a module of unknown forward) have no path norm.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from .layers import BATCH_NORMS, Layer, Unmeasurable, bn_scale, spectral_norm

# Modules whose forward the squared network may run: linear maps, batch norm, ReLU, pooling and the like.
PATH_LEAVES = (nn.Linear, nn.Conv1d, nn.Conv2d, *BATCH_NORMS, nn.ReLU, nn.Identity, nn.Dropout, nn.MaxPool2d,
               nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Flatten)
PATH_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
# shattering's own networks whose forward composes, concatenates and adds modules with ReLU and pooling only.
PATH_MODELS = ("shattering.models.mlp", "shattering.models.alexnet", "shattering.models.inception",
               "shattering.models.resnet", "shattering.models.wide_resnet")


def trained_parameters(model: nn.Module) -> list[torch.Tensor]:
    """The parameters SGD updates (``requires_grad``), in declaration order."""
    return [p.detach().float() for p in model.parameters() if p.requires_grad]


def l2_norm(model: nn.Module) -> float:
    """||w||_2 = sqrt(sum_j w_j^2) over the trained parameters, weights and biases (Jiang et al. 2020)."""
    return math.sqrt(sum(float(p.double().square().sum()) for p in trained_parameters(model)))


def distance_from_init(model: nn.Module, init: nn.Module) -> float:
    """||w - w0||_2 over the trained parameters; ``init`` is the same network at its initialization
    (Nagarajan and Kolter 2019; Jiang et al. 2020, "dist.l2")."""
    pairs = zip(trained_parameters(model), trained_parameters(init.to(next(model.parameters()).device)),
                strict=True)
    return math.sqrt(sum(float((p.double() - q.double()).square().sum()) for p, q in pairs))


def layer_norms(layers: list[Layer], iterations: int = 50) -> dict:
    """The measures of ``layers`` A_1..A_L: ``log_spectral_product`` = sum_i log ||A_i||_sigma (and its exp,
    ``spectral_product``; Bartlett, Foster and Telgarsky 2017), ``frobenius_sum`` = sum_i ||A_i||_F^2 and
    ``log_frobenius_product`` = sum_i log ||A_i||_F (Neyshabur, Tomioka and Srebro 2015), and
    ``log_spectral_complexity`` = log R_A, R_A = prod_i ||A_i||_sigma * (sum_i (||A_i^T||_{2,1} /
    ||A_i||_sigma)^(2/3))^(3/2) (Bartlett et al. 2017, reference matrices M_i = 0)."""
    spectral = [spectral_norm(layer, iterations) for layer in layers]
    frobenius = [float(layer.matrix().double().norm()) for layer in layers]
    two_one = [float(layer.matrix().double().norm(dim=1).sum()) for layer in layers]
    out: dict = {"weighted_layers": len(layers)}
    if min(spectral) <= 0:
        raise Unmeasurable("a layer has all its weights zero")
    log_spectral = sum(math.log(s) for s in spectral)
    out["log_spectral_product"] = log_spectral
    out["spectral_product"] = math.exp(log_spectral) if log_spectral < 700 else None
    out["frobenius_sum"] = sum(f * f for f in frobenius)
    out["log_frobenius_product"] = sum(math.log(f) for f in frobenius)
    ratio = sum((t / s) ** (2 / 3) for t, s in zip(two_one, spectral, strict=True))
    out["log_spectral_complexity"] = log_spectral + 1.5 * math.log(ratio)
    return out


def check_path_structure(model: nn.Module) -> None:
    """Raise :class:`Unmeasurable` naming the first module the squared forward pass cannot run."""
    for name, module in model.named_modules():
        if isinstance(module, PATH_LEAVES):
            continue
        if isinstance(module, PATH_CONTAINERS) or type(module).__module__ in PATH_MODELS:
            if list(module.parameters(recurse=False)):
                raise Unmeasurable(f"module {name or 'the network'!r} ({type(module).__name__}) holds weights "
                                   "of its own")
            continue
        raise Unmeasurable(f"module {name or 'the network'!r} ({type(module).__name__}) cannot be squared into "
                           "a sum over paths (only linear, convolutional, batch-norm, ReLU and pooling layers can)")


def path_l2(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """The path-l2 norm sqrt(sum over input-output paths p of prod_{edges e in p} w_e^2) of ``model`` on inputs
    of ``input_shape`` (Neyshabur, Salakhutdinov and Srebro 2015): the sum of the outputs of the network with
    squared weights, zero biases and batch norm as s^2, on an all-ones input (see the module docstring)."""
    check_path_structure(model)
    squared = copy.deepcopy(model).cpu().double().eval()
    with torch.no_grad():
        for module in squared.modules():
            if isinstance(module, BATCH_NORMS):
                factor = bn_scale(module).double().square()
                module.eps = 0.0  # y = (x - 0) / sqrt(1 / s^4) = s^2 x
                module.running_mean.zero_()
                module.running_var.copy_(factor.pow(-2))
                if module.weight is not None:
                    module.weight.fill_(1.0)
                    module.bias.zero_()
            elif isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
                module.weight.square_()
                if module.bias is not None:
                    module.bias.zero_()
        out = squared(torch.ones((1, *input_shape), dtype=torch.float64))
    out = out[0] if isinstance(out, tuple) else out
    return math.sqrt(float(out.sum()))
