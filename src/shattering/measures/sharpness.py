"""Sharpness of a minimum: how far the training loss can rise within a small box around the trained weights.

Keskar, Mudigere, Nocedal, Smelyanskiy and Tang (ICLR 2017, "On large-batch training for deep learning:
generalization gap and sharp minima", Section 2.2.2, Metric 2.1): with f the training loss, x in R^n the
trained weights and A in R^(n x p),

    phi_{x,f}(eps, A) = 100 x (max_{y in C_eps} f(x + A y) - f(x)) / (1 + f(x)),
    C_eps = {z in R^p : -eps (|(A^+ x)_i| + 1) <= z_i <= eps (|(A^+ x)_i| + 1)},

A^+ the pseudo-inverse of A; A = I_n (p = n) is the full space, where the box's half-widths are
eps (|x_i| + 1). The maximum is approximated as they did: scipy's L-BFGS-B on -f from y = 0 with a budget of
:data:`MAXITER` iterations (their 10); the value is the largest f seen (a lower bound on the true maximum, and
so on phi: the estimate depends on the budget, recorded beside it). They used eps = 1e-3 and 5e-4 and a random
subspace of p = 100 dimensions; they do not state A's scale, so here A's p columns are i.i.d. N(0, 1) entries,
each column scaled to unit norm (drawn from :data:`SEED`: the same A for every network of the same size).

Andriushchenko, Croce, Müller, Hein and Flammarion (ICML 2023, "A modern look at the relationship between
sharpness and generalization") measure the adaptive worst-case sharpness
max_{|delta_i| <= rho |x_i|} f(x + delta) - f(x): the same box with half-widths rho |x_i| (no + 1; invariant to
rescaling a layer's weights), the raw rise of the loss. They maximize it by Auto-PGD; here it is the same L-BFGS-B
with the same budget, at rho = :data:`ADAPTIVE_RHO`.

f is the mean cross-entropy on a fixed subset of the training examples (the labels the network was trained on),
in eval mode (batch norm's running statistics, no dropout), in a fixed order: the network is never touched (the
perturbed weights go through ``torch.func.functional_call``), so no batch statistic leaks in and nothing of the
network changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

SHARPNESS_EXAMPLES = 500  # the first of the measured examples (a seeded random sample of the training set)
EPSILONS = (1e-3, 5e-4)  # Keskar et al.'s two box sizes
SUBSPACE_DIM = 100  # p of the random subspace (Keskar et al.)
MAXITER = 10  # L-BFGS-B iterations (Keskar et al.'s budget)
ADAPTIVE_RHO = 1e-3  # the adaptive box's relative half-width (ours: their rho varies by setting)
SEED = 0
BATCH = 500  # examples per evaluation batch

LossAndGrad = Callable[[np.ndarray], tuple[float, np.ndarray]]


def box_maximum(f: LossAndGrad, x: np.ndarray, half_width: np.ndarray, basis: np.ndarray | None = None,
                maxiter: int = MAXITER) -> dict:
    """max f(x + A y) over the box |y_i| <= half_width_i by L-BFGS-B on -f from y = 0 (``basis``: A, n x p; None:
    the identity, y in R^n). ``f(theta)`` returns the loss and its gradient at theta. Returns ``f0`` (f at x),
    ``fmax`` (the largest f seen inside the box), ``y`` (where), ``evaluations`` and ``iterations``."""
    from scipy.optimize import Bounds, minimize

    seen = {"fmax": -np.inf, "y": None, "evaluations": 0}
    a = None if basis is None else torch.as_tensor(basis, dtype=torch.float32)  # A y and A^T g in float32: the
    # weights' own precision, and no float64 copy of an n x 100 matrix per product

    def negative(y: np.ndarray) -> tuple[float, np.ndarray]:
        step = y if a is None else (a @ torch.as_tensor(y, dtype=torch.float32)).double().numpy()
        value, grad = f(x + step)
        seen["evaluations"] += 1
        if value > seen["fmax"]:
            seen["fmax"], seen["y"] = value, y.copy()
        back = grad if a is None else (a.T @ torch.as_tensor(grad, dtype=torch.float32)).double().numpy()
        return -value, -back

    y0 = np.zeros(len(half_width))
    f0 = -negative(y0)[0]
    result = minimize(negative, y0, jac=True, method="L-BFGS-B", bounds=Bounds(-half_width, half_width),
                      options={"maxiter": maxiter})
    return {"f0": f0, "fmax": float(seen["fmax"]), "y": seen["y"], "evaluations": seen["evaluations"],
            "iterations": int(result.nit)}


def keskar_phi(f0: float, fmax: float) -> float:
    """Keskar et al.'s normalization: 100 (fmax - f0) / (1 + f0)."""
    return 100.0 * (fmax - f0) / (1.0 + f0)


def random_subspace(n: int, p: int = SUBSPACE_DIM, seed: int = SEED) -> np.ndarray:
    """A (n x p, float32): i.i.d. N(0, 1) entries from ``seed``, each column scaled to unit norm."""
    a = np.random.default_rng(seed).standard_normal((n, p), dtype=np.float32)
    return a / np.linalg.norm(a, axis=0, keepdims=True)


def pseudo_inverse_times(basis: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A^+ x = (A^T A)^-1 A^T x for A of full column rank (the normal equations, in float64 from float32
    products: A^T A of unit-norm random columns is close to the identity)."""
    a = torch.as_tensor(basis, dtype=torch.float32)
    gram = (a.T @ a).double()
    return torch.linalg.solve(gram, (a.T @ torch.as_tensor(x, dtype=torch.float32)).double()).numpy()


def keskar_sharpness(f: LossAndGrad, x: np.ndarray, eps: float, basis: np.ndarray | None = None,
                     maxiter: int = MAXITER) -> dict:
    """phi_{x,f}(eps, A) (module docstring) with its ``f0``, ``fmax``, ``evaluations`` and ``iterations``;
    ``basis`` A (None: the full space)."""
    center = np.abs(x if basis is None else pseudo_inverse_times(basis, x))  # |x| or |A^+ x|
    out = box_maximum(f, x, eps * (center + 1.0), basis, maxiter)
    return {"phi": keskar_phi(out["f0"], out["fmax"]), **{k: v for k, v in out.items() if k != "y"}}


def adaptive_sharpness(f: LossAndGrad, x: np.ndarray, rho: float = ADAPTIVE_RHO, maxiter: int = MAXITER) -> dict:
    """max_{|delta_i| <= rho |x_i|} f(x + delta) - f(x) (Andriushchenko et al. 2023; module docstring) as
    ``sharpness``, with ``f0``, ``fmax``, ``evaluations`` and ``iterations``."""
    out = box_maximum(f, x, rho * np.abs(x), None, maxiter)
    return {"sharpness": out["fmax"] - out["f0"], **{k: v for k, v in out.items() if k != "y"}}


def loss_function(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                  batch_size: int = BATCH) -> tuple[LossAndGrad, np.ndarray]:
    """f(theta) and its gradient for the flat vector of ``model``'s trainable parameters (the mean cross-entropy
    on ``x``, ``y`` in eval mode, batch by batch in the order given, summed in float64), and the trained theta.
    The model itself is not changed: theta goes in through ``functional_call``."""
    model.eval()
    named = [(k, p) for k, p in model.named_parameters() if p.requires_grad]
    shapes = [(k, p.shape, p.numel()) for k, p in named]
    dtype, device = named[0][1].dtype, named[0][1].device
    theta0 = torch.cat([p.detach().reshape(-1) for _, p in named]).double().cpu().numpy()
    n = len(x)

    def f(theta: np.ndarray) -> tuple[float, np.ndarray]:
        flat = torch.tensor(theta, dtype=dtype, device=device).requires_grad_(True)
        params, i = {}, 0
        for k, shape, size in shapes:
            params[k] = flat[i:i + size].view(shape)
            i += size
        total = 0.0
        grad = torch.zeros(len(theta), dtype=torch.float64, device=device)
        for s in range(0, n, batch_size):
            logits = functional_call(model, params, (x[s:s + batch_size],))
            loss = nn.functional.cross_entropy(logits.float(), y[s:s + batch_size], reduction="sum") / n
            (g,) = torch.autograd.grad(loss, flat)
            total += float(loss.detach())
            grad += g.double()
        return total, grad.cpu().numpy()

    return f, theta0


def sharpness_measures(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = BATCH) -> dict:
    """Keskar et al.'s phi in the full space and in the random subspace at each eps of :data:`EPSILONS`, and the
    adaptive sharpness, on the first :data:`SHARPNESS_EXAMPLES` of ``x``, ``y``: ``{"full": {eps: phi},
    "subspace": {eps: phi}, "adaptive": value, "facts": {...}}`` (facts: f(x), each maximization's fmax,
    evaluations, iterations and seconds)."""
    x, y = x[:SHARPNESS_EXAMPLES], y[:SHARPNESS_EXAMPLES]
    f, theta = loss_function(model, x, y, batch_size)
    basis = random_subspace(len(theta), min(SUBSPACE_DIM, len(theta)))
    out: dict = {"full": {}, "subspace": {}}
    runs: dict = {}
    for space, a in (("full", None), ("subspace", basis)):
        for eps in EPSILONS:
            start = time.perf_counter()
            result = keskar_sharpness(f, theta, eps, a)
            out[space][eps] = result["phi"]
            runs[f"{space} eps {eps:g}"] = {**{k: result[k] for k in ("phi", "fmax", "evaluations", "iterations")},
                                            "seconds": time.perf_counter() - start}
            f0 = result["f0"]
    start = time.perf_counter()
    adaptive = adaptive_sharpness(f, theta)
    out["adaptive"] = adaptive["sharpness"]
    runs[f"adaptive rho {ADAPTIVE_RHO:g}"] = {**{k: adaptive[k] for k in ("sharpness", "fmax", "evaluations",
                                                                         "iterations")},
                                              "seconds": time.perf_counter() - start}
    out["facts"] = {"examples": len(x), "f0": f0, "maxiter": MAXITER, "subspace_dim": basis.shape[1], "seed": SEED,
                    "optimizer": "scipy L-BFGS-B from y = 0", "maximizations": runs}
    return out
