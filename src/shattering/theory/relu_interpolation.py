"""Finite-sample expressivity: Theorem 1 of Zhang et al., "Understanding deep learning requires rethinking
generalization" (ICLR 2017, arXiv 1611.03530), Section 4, with Lemma 1 and the depth-k variant of Appendix C.

**Theorem 1.** There exists a two-layer neural network with ReLU activations and 2n + d weights that can
represent any function on a sample of size n in d dimensions.

**Construction** (Lemma 1 and the proof). With a in R^d and b, w in R^n,

    c(x) = sum_j w_j * max(<a, x> - b_j, 0)                                              (d + n + n weights)

Project the distinct points z_i on a so that the x_i = <a, z_i> are distinct, sort them, and interleave
b_1 < x_1 < b_2 < x_2 < ... < b_n < x_n. Then c(z_i) = (A w)_i with A_ij = max(x_i - b_j, 0), a lower
triangular matrix with diagonal x_i - b_i > 0 (Lemma 1), so w = A^-1 y by forward substitution.

**Class labels.** :func:`fit_relu_interpolant` fits real targets of shape (n,) (2n + d weights, exactly the
theorem) or (n, K): one output per column, with a and b shared and w an n x K matrix, so n*K + n + d weights.
Class labels are fitted either way: as one real output equal to the class index (2n + d weights; predict by
rounding) or as K one-hot outputs (n*K + n + d weights; predict by argmax).

**Numerics** [I]. The paper's construction leaves a and b free; the choice decides whether float64 can hold
the fit. Two choices made here, both measured (see ``docs/theory.md``):

- ``a`` is the best of ``candidates`` random unit vectors, scored by the smallest gap between consecutive
  sorted projections relative to their range (a random a gives a relative gap near 1/n^2).
- ``b_i = x_{i-1} + offset * (x_i - x_{i-1})`` with a small ``offset`` (default 0.1), not the midpoint. On the
  segment [b_i, b_{i+1}] the network is linear with slope s_i = w_1 + ... + w_i, passing through (x_i, y_i);
  continuity at b_{i+1} gives the recurrence

      s_{i+1} = (y_{i+1} - y_i - s_i (b_{i+1} - x_i)) / (x_{i+1} - b_{i+1}),    w_i = s_i - s_{i-1},

  in which s_i (and any error in it) is multiplied by -offset / (1 - offset). Above offset 0.5 the exact
  weights grow geometrically (like 9^n at offset 0.9, overflowing float64 by n = 300), so ``offset`` is limited
  to (0, 0.5]. With midpoints (offset 0.5) errors never shrink and the slopes oscillate. As offset -> 0 the
  slopes become the secant slopes of the piecewise linear interpolant through the sorted (x_i, y_i), and w
  holds their differences (second divided differences); Lemma 1's diagonal min_i(x_i - b_i) = (1 - offset) *
  (smallest gap) is largest there too. Measured on 5,000 Fashion-MNIST images (one-hot targets, same a):
  midpoints give cond_1(A) ~ 4.5e14 and a max fit error 8.8e-5; offset 0.1 gives 8.2e10 and 3.8e-8.

Both solvers are exact in exact arithmetic and are cross-checked: ``method="triangular"`` forms A and runs
LAPACK's forward substitution (``dtrtrs``), ``method="recurrence"`` runs the O(n) recurrence above (used past
:data:`TRIANGULAR_MAX_N` points, where A would not fit in memory).

**Depth k** (Appendix C; the paper: "a depth k network in which each layer has only O(n/k) parameters").
:class:`DeepReLUInterpolant` computes the same function as the two-layer network with k - 1 hidden layers:
the n hidden units are split, in sorted order of b, into k - 1 groups of about n/(k - 1); hidden layer l holds
group l's units max(t - b_j, 0), the projection t carried as the pair (relu(t), relu(-t)) and the partial
output S carried as (relu(S), relu(-S)) (2K units). Its free parameters are exactly the two-layer network's
(a, b, w: d + n + nK); everything else is fixed +-1 wiring. Width is about n/(k - 1) + 2 + 2K. This is simpler
than the multiplexer sketch of Appendix C (which sums per-interval outputs through approximate indicators):
because c is already a sum over hidden units, partial sums can be passed forward exactly.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import scipy.linalg
import torch
from torch import nn

from ..errors import ConfigError
from ..validation import (
    check_choice,
    check_float,
    check_int,
    check_labels,
    check_matrix,
    check_targets,
    one_hot,
)

DEFAULT_CANDIDATES = 64  # random directions a tried; the one with the largest relative gap is kept
DEFAULT_OFFSET = 0.1  # b_i = x_{i-1} + offset (x_i - x_{i-1}); 0.5 is the midpoint
TRIANGULAR_MAX_N = 20_000  # A is n x n float64: 3.2 GB here; beyond it the O(n) recurrence is used
METHODS = ("auto", "triangular", "recurrence")
_CHUNK_ELEMENTS = 1 << 24  # hidden activations per chunk of the forward pass (128 MB in float64)


# --------------------------------------------------------------------------------------------------
# The construction
# --------------------------------------------------------------------------------------------------


def check_distinct(x: np.ndarray, y: np.ndarray | None = None) -> None:
    """Raise :class:`ConfigError` if two rows of ``x`` are identical (Theorem 1 needs distinct points)."""
    _, first, inverse, counts = np.unique(x, axis=0, return_index=True, return_inverse=True, return_counts=True)
    if len(first) == len(x):
        return
    inverse = inverse.reshape(-1)
    dup = next(j for j in range(len(x)) if first[inverse[j]] != j)
    i = int(first[inverse[dup]])
    clash = ""
    if y is not None and not np.array_equal(np.asarray(y)[i], np.asarray(y)[dup]):
        clash = " with different targets, which no function can fit"
    raise ConfigError(f"Points {i} and {dup} are identical{clash} ({int((counts - 1).sum())} duplicate row(s) in "
                      "all); Theorem 1 needs n distinct points, so remove the duplicates (np.unique(x, axis=0)).")


def choose_direction(x: np.ndarray, candidates: int = DEFAULT_CANDIDATES, seed: int = 0) -> tuple[np.ndarray, dict]:
    """The unit vector a, among ``candidates`` random ones, whose projections <a, x_i> are the most evenly spread.

    The score is the smallest gap between consecutive sorted projections divided by their range. Returns
    ``(a, info)`` with ``info`` holding the best and the median score of the candidates.
    """
    n, d = x.shape
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 101]))
    dirs = rng.standard_normal((d, candidates))
    dirs /= np.linalg.norm(dirs, axis=0, keepdims=True)
    proj = np.sort(x @ dirs, axis=0)  # (n, candidates)
    if n == 1:
        return dirs[:, 0], {"relative_gap": 1.0, "median_relative_gap": 1.0, "candidates": candidates}
    spread = proj[-1] - proj[0]
    gaps = np.diff(proj, axis=0).min(axis=0)
    score = np.where(spread > 0, gaps / np.where(spread > 0, spread, 1.0), 0.0)
    best = int(np.argmax(score))
    if not score[best] > 8 * np.finfo(np.float64).eps:
        raise ConfigError(f"None of {candidates} random directions separates the projections of the {n} points "
                          "(some points are equal or nearly so); remove near-duplicates or raise candidates.")
    return dirs[:, best], {"relative_gap": float(score[best]), "median_relative_gap": float(np.median(score)),
                           "candidates": candidates}


def interleave(x_sorted: np.ndarray, offset: float = DEFAULT_OFFSET) -> np.ndarray:
    """Biases b with b_1 < x_1 < b_2 < ... < b_n < x_n: b_i = x_{i-1} + offset (x_i - x_{i-1}).

    b_1 sits (1 - offset) times the first gap below x_1 (a virtual x_0 one gap below x_1).
    """
    x = np.asarray(x_sorted, dtype=np.float64)
    gaps = np.diff(x)
    first = gaps[0] if len(gaps) else 1.0
    b = np.empty_like(x)
    b[0] = x[0] - (1.0 - offset) * first
    b[1:] = x[:-1] + offset * gaps
    return b


def lemma1_matrix(x_sorted: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A_ij = max(x_i - b_j, 0): n x n, lower triangular when x and b interleave (Lemma 1)."""
    return np.maximum(x_sorted[:, None] - b[None, :], 0.0)


def solve_triangular(x_sorted: np.ndarray, b: np.ndarray, y_sorted: np.ndarray) -> np.ndarray:
    """w = A^-1 y by forward substitution (LAPACK ``dtrtrs`` on the dense lower-triangular A of Lemma 1)."""
    return scipy.linalg.solve_triangular(lemma1_matrix(x_sorted, b), y_sorted, lower=True, check_finite=False)


def solve_recurrence(x_sorted: np.ndarray, b: np.ndarray, y_sorted: np.ndarray) -> np.ndarray:
    """w = A^-1 y in O(n) through the slopes s_i = w_1 + ... + w_i (module docstring); exact for any interleaving."""
    x, y = x_sorted, np.asarray(y_sorted, dtype=np.float64)
    s = np.empty_like(y)
    s[0] = y[0] / (x[0] - b[0])  # c is zero left of b_1 and passes through (x_1, y_1)
    left = b[1:] - x[:-1]  # b_{i+1} - x_i > 0
    right = x[1:] - b[1:]  # x_{i+1} - b_{i+1} > 0
    for i in range(len(x) - 1):
        s[i + 1] = (y[i + 1] - y[i] - s[i] * left[i]) / right[i]
    w = s.copy()
    w[1:] -= s[:-1]
    return w


def condition_estimate(x_sorted: np.ndarray, b: np.ndarray) -> float | None:
    """LAPACK's estimate of cond_1(A) for the triangular A of Lemma 1 (``dtrcon``, O(n^2)); None past
    :data:`TRIANGULAR_MAX_N` points."""
    if len(x_sorted) > TRIANGULAR_MAX_N:
        return None
    a = np.asfortranarray(lemma1_matrix(x_sorted, b))
    rcond, info = scipy.linalg.lapack.dtrcon(a, norm="1", uplo="L")
    return float("inf") if info != 0 or rcond == 0 else float(1.0 / rcond)


class ReLUInterpolant(nn.Module):
    """c(x) = sum_j w_j max(<a, x> - b_j, 0): Theorem 1's two-layer ReLU network, in float64.

    Parameters
    ----------
    a : array of shape (d,)
        The input weight shared by every hidden unit.
    b : array of shape (n,)
        Hidden biases (the unit computes max(<a, x> - b_j, 0)).
    w : array of shape (n,) or (n, K)
        Output weights; one column per output.

    The number of weights is d + n + n (= 2n + d) for one output and d + n + nK for K outputs.
    """

    def __init__(self, a, b, w):
        super().__init__()
        self.a = nn.Parameter(torch.as_tensor(np.asarray(a), dtype=torch.float64).clone())
        self.b = nn.Parameter(torch.as_tensor(np.asarray(b), dtype=torch.float64).clone())
        self.w = nn.Parameter(torch.as_tensor(np.asarray(w), dtype=torch.float64).clone())

    @property
    def num_hidden(self) -> int:
        return int(self.b.numel())

    @property
    def num_outputs(self) -> int:
        return 1 if self.w.ndim == 1 else int(self.w.shape[1])

    @property
    def num_weights(self) -> int:
        """d + n + n*K: every weight and bias of the network (2n + d for one output)."""
        return sum(p.numel() for p in self.parameters())

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """<a, x> for each row of ``x`` (any shape (N, ...), flattened), in float64."""
        return x.reshape(len(x), -1).to(torch.float64) @ self.a

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.project(x)  # (N,)
        rows = max(1, _CHUNK_ELEMENTS // self.num_hidden)
        parts = [torch.relu(t[i:i + rows, None] - self.b) @ self.w for i in range(0, len(t), rows)]
        return torch.cat(parts) if parts else t.new_zeros((0, *self.w.shape[1:]))

    def deepen(self, depth: int) -> DeepReLUInterpolant:
        """The same function as a depth-``depth`` network (Appendix C); depth 2 is this network's layout."""
        depth = check_int(depth, "depth", minimum=2, maximum=self.num_hidden + 1)
        groups = np.array_split(np.arange(self.num_hidden), depth - 1)
        with torch.no_grad():
            return DeepReLUInterpolant(self.a.detach().numpy(),
                                       [(self.b[g].detach().numpy(), self.w[g].detach().numpy()) for g in groups])


class DeepReLUInterpolant(nn.Module):
    """Appendix C's depth-k network: the two-layer interpolant spread over k - 1 hidden layers (module docstring).

    Parameters
    ----------
    a : array of shape (d,)
        Shared input weight.
    groups : list of (b, w)
        One (biases (n_l,), output weights (n_l,) or (n_l, K)) pair per hidden layer.
    """

    def __init__(self, a, groups: list[tuple[np.ndarray, np.ndarray]]):
        super().__init__()
        if not groups:
            raise ConfigError("A deep interpolant needs at least one group of hidden units; got none.")
        self.a = nn.Parameter(torch.as_tensor(np.asarray(a), dtype=torch.float64).clone())
        self.biases = nn.ParameterList([torch.as_tensor(np.asarray(b), dtype=torch.float64).clone()
                                        for b, _ in groups])
        self.weights = nn.ParameterList([torch.as_tensor(np.asarray(w), dtype=torch.float64).clone()
                                         for _, w in groups])

    @property
    def depth(self) -> int:
        """Weight layers (hidden layers + 1), the paper's convention: Theorem 1's network has depth 2."""
        return len(self.biases) + 1

    @property
    def num_outputs(self) -> int:
        w = self.weights[0]
        return 1 if w.ndim == 1 else int(w.shape[1])

    @property
    def num_weights(self) -> int:
        """Free parameters: d + n + n*K, the same as the two-layer network."""
        return sum(p.numel() for p in self.parameters())

    @property
    def widths(self) -> list[int]:
        """Units per hidden layer: group units + (relu(t), relu(-t)) + (relu(S), relu(-S)) from layer 2 on."""
        k = self.num_outputs
        return [len(b) + 2 + (2 * k if i else 0) for i, b in enumerate(self.biases)]

    @property
    def fixed_connections(self) -> int:
        """Non-zero +-1 connections that are wiring, not parameters (carrying t and the partial sums)."""
        k, layers = self.num_outputs, len(self.biases)
        count = sum(2 * len(b) + 4 + (4 * k if i >= 2 else 0) for i, b in enumerate(self.biases) if i >= 1)
        return count + (2 * k if layers >= 2 else 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.reshape(len(x), -1).to(torch.float64) @ self.a  # (N,)
        # hidden layer 1: the first group's units and the projection carried as two ReLUs
        h = torch.relu(t[:, None] - self.biases[0])  # (N, n_1)
        u, v = torch.relu(t), torch.relu(-t)
        sp = sm = None
        for b, w_prev in zip(self.biases[1:], self.weights[:-1], strict=True):
            s = h @ w_prev if sp is None else sp - sm + h @ w_prev  # partial output S (pre-activation)
            t = u - v
            h = torch.relu(t[:, None] - b)
            u, v = torch.relu(t), torch.relu(-t)
            sp, sm = torch.relu(s), torch.relu(-s)
        out = h @ self.weights[-1]
        return out if sp is None else sp - sm + out


@dataclass(frozen=True)
class FitInfo:
    """What :func:`fit_relu_interpolant` chose and measured."""

    n: int  # points
    d: int  # input dimension
    outputs: int  # columns of the target
    num_weights: int  # d + n + n * outputs
    method: str  # solver used: "triangular" or "recurrence"
    offset: float  # b_i = x_{i-1} + offset (x_i - x_{i-1})
    min_gap: float  # min_i (x_i - b_i): Lemma 1's smallest eigenvalue of A
    projection_gap: float  # smallest gap between consecutive sorted projections
    relative_gap: float  # projection_gap / range of the projections
    max_abs_weight: float  # max |w_j|
    candidates: int  # random directions tried for a
    seconds: float  # wall time of the fit

    def as_dict(self) -> dict:
        return asdict(self)


def fit_relu_interpolant(x, y, *, num_classes: int | None = None, candidates: int = DEFAULT_CANDIDATES,
                         offset: float = DEFAULT_OFFSET, method: str = "auto",
                         seed: int = 0) -> tuple[ReLUInterpolant, FitInfo]:
    """Build Theorem 1's network that reproduces every target on the sample.

    Parameters
    ----------
    x : array-like of shape (n, d) or (n, C, H, W)
        n distinct points (images are flattened).
    y : array-like of shape (n,) or (n, K)
        Real targets; or integer class labels of shape (n,) when ``num_classes`` is given, fitted as K one-hot
        outputs (n*K + n + d weights). For one output per label, pass the labels as floats.
    num_classes : int or None, default=None
        Treat ``y`` as class labels with this many classes.
    candidates : int, default=64
        Random unit directions tried for a.
    offset : float in (0, 0.5], default=0.1
        Where b_i sits between x_{i-1} and x_i (0.5 is the midpoint; beyond it the weights grow geometrically).
    method : {"auto", "triangular", "recurrence"}, default="auto"
        Forward substitution on the dense A (n <= 20,000 under "auto") or the O(n) slope recurrence.
    seed : int, default=0
        Seed of the candidate directions.

    Returns
    -------
    model : ReLUInterpolant
    info : FitInfo

    References
    ----------
    Zhang et al., ICLR 2017, Section 4 (Theorem 1) and Appendix C (Lemma 1).

    Examples
    --------
    >>> import numpy as np, torch
    >>> x = np.random.default_rng(0).standard_normal((50, 3)); y = np.sin(np.arange(50.0))
    >>> model, info = fit_relu_interpolant(x, y)
    >>> info.num_weights == 2 * 50 + 3
    True
    >>> bool(np.abs(model(torch.from_numpy(x)).detach().numpy() - y).max() < 1e-8)
    True
    """
    start = time.perf_counter()
    x = np.asarray(x)
    x = check_matrix(x.reshape(len(x), -1) if x.ndim > 2 else x, "x")
    n, d = x.shape
    if num_classes is not None:
        num_classes = check_int(num_classes, "num_classes", minimum=2)
        targets = one_hot(check_labels(y, n, num_classes), num_classes)
    else:
        targets = check_targets(y, n)
    candidates = check_int(candidates, "candidates")
    offset = check_float(offset, "offset", low=0.0, high=0.5, low_open=True)  # above 0.5 w grows geometrically
    method = check_choice(method, "method", METHODS)
    if method == "auto":
        method = "triangular" if n <= TRIANGULAR_MAX_N else "recurrence"
    if method == "triangular" and n > TRIANGULAR_MAX_N:
        raise ConfigError(f"method='triangular' forms the dense {n} x {n} matrix A; above {TRIANGULAR_MAX_N} points "
                          "use method='recurrence' (or 'auto').")
    check_distinct(x, targets)

    a, direction = choose_direction(x, candidates, seed)
    proj = x @ a
    order = np.argsort(proj, kind="stable")
    xs = proj[order]
    b = interleave(xs, offset)
    ys = targets[order]
    w = solve_triangular(xs, b, ys) if method == "triangular" else solve_recurrence(xs, b, ys)
    model = ReLUInterpolant(a, b, w)
    gaps = np.diff(xs)
    info = FitInfo(n=n, d=d, outputs=1 if targets.ndim == 1 else targets.shape[1], num_weights=model.num_weights,
                   method=method, offset=offset, min_gap=float(np.min(xs - b)),
                   projection_gap=float(gaps.min()) if n > 1 else float("inf"),
                   relative_gap=direction["relative_gap"], max_abs_weight=float(np.abs(w).max()),
                   candidates=candidates, seconds=time.perf_counter() - start)
    return model, info


def predict(model: nn.Module, x) -> np.ndarray:
    """The network's outputs on ``x`` (numpy in, numpy out, no gradients)."""
    x = np.asarray(x)
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))).numpy()


def weight_counts(n: int, d: int, num_classes: int) -> dict:
    """Theorem 1's count (2n + d) and the one-output-per-class count (nK + n + d)."""
    return {"theorem_1": 2 * n + d, "one_per_class": n * num_classes + n + d}
