"""SGD finds the minimum-norm interpolant: Section 5 of Zhang et al., "Understanding deep learning requires
rethinking generalization" (ICLR 2017, arXiv 1611.03530), "Implicit regularization: an appeal to linear models".

For over-parameterized least squares (d > n, rank X = n) every labelling y has infinitely many interpolants
Xw = y. The SGD update w_{t+1} = w_t - eta_t e_t x_{i_t} (e_t the prediction error) only ever adds multiples of
data points, so from w_0 = 0 every iterate lies in the row space of X, w = X^T alpha; if it interpolates then
X X^T alpha = y (Eq. 3) and w is the **minimum l2-norm solution**, pinv(X) y. From a start w_0 != 0 the
component of w_0 in the null space of X is never touched, so SGD converges to pinv(X) y + (I - pinv(X) X) w_0,
an interpolant whose squared norm is larger by exactly ||(I - pinv(X) X) w_0||^2.

:func:`shattering.experiments.min_norm.min_norm_experiment` measures all three statements: ||w_t - w*|| / ||w*||
shrinking over epochs, the training residual going to 0, and the larger norm of the interpolant found from a
non-zero start.

Step size [I]: the paper leaves eta_t open. The default is the constant eta = 1 / max_i ||x_i||^2, for which
every single-example step contracts the error along x_i (randomized Kaczmarz when all rows have equal norm).
Convergence is linear at a rate set by the smallest singular value of X: fast for random features, slow for raw
images, whose Gram matrix is badly conditioned (measured in ``docs/theory.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

from ..errors import ConfigError
from ..validation import check_float, check_int, check_matrix, check_targets


def min_norm_solution(x, y) -> np.ndarray:
    """w* = pinv(X) y, the minimum-norm least-squares solution (LAPACK ``gelsd``, SVD based).

    Parameters
    ----------
    x : array-like of shape (n, d)
    y : array-like of shape (n,) or (n, k)

    Returns
    -------
    ndarray of shape (d,) or (d, k)
    """
    x = check_matrix(x, "x")
    y = check_targets(y, len(x))
    # w* = argmin ||w|| subject to ||Xw - y|| minimal; = X^T (X X^T)^-1 y when rank X = n
    return scipy.linalg.lstsq(x, y, lapack_driver="gelsd", check_finite=False)[0]


def null_space_component(x, v) -> np.ndarray:
    """(I - pinv(X) X) v: the part of ``v`` that no gradient step on X can change."""
    x = check_matrix(x, "x")
    v = np.asarray(v, dtype=np.float64)
    return v - min_norm_solution(x, x @ v)


@dataclass
class SGDTrace:
    """Per-epoch record of a least-squares SGD run (epoch 0 is the start)."""

    epochs: list[int] = field(default_factory=list)
    distance: list[float] = field(default_factory=list)  # ||w_t - reference|| / ||reference||
    residual: list[float] = field(default_factory=list)  # ||X w_t - y|| / ||y||
    norm: list[float] = field(default_factory=list)  # ||w_t||

    def as_dict(self) -> dict:
        return {"epochs": self.epochs, "distance": self.distance, "residual": self.residual, "norm": self.norm}


def _record_epochs(epochs: int) -> set[int]:
    """0, 1, 2, 5, 10, 20, 50, ... and the last epoch."""
    marks = {0, epochs}
    scale = 1
    while scale <= epochs:
        marks.update(m * scale for m in (1, 2, 5) if m * scale <= epochs)
        scale *= 10
    return marks


def sgd_least_squares(x, y, *, w0=None, epochs: int = 300, lr: float | None = None, batch_size: int = 1,
                      seed: int = 0, reference=None, tol: float = 1e-12) -> tuple[np.ndarray, SGDTrace]:
    """Minimize (1/2) sum_i ||x_i^T W - y_i||^2 by SGD: W <- W - lr * mean_{i in batch} x_i (x_i^T W - y_i).

    Parameters
    ----------
    x : array-like of shape (n, d)
    y : array-like of shape (n,) or (n, k)
    w0 : array-like of shape (d,) or (d, k), default=None
        Starting point (zeros when None).
    epochs : int, default=300
        Passes over the data, each in a fresh random order.
    lr : float or None, default=None
        Step size; None means 1 / max_i ||x_i||^2 (every step contracts along the sampled rows).
    batch_size : int, default=1
        Examples per step; 1 is the paper's update.
    seed : int, default=0
        Seed of the example order.
    reference : array-like, default=None
        Point to measure the distance to (the minimum-norm solution when None).
    tol : float, default=1e-12
        Stop early once the relative training residual ||Xw - y|| / ||y|| is below ``tol`` (checked each epoch;
        0 runs every epoch).

    Returns
    -------
    w : ndarray of shape (d,) or (d, k)
    trace : SGDTrace
    """
    x = check_matrix(x, "x")
    y = check_targets(y, len(x))
    n, d = x.shape
    epochs = check_int(epochs, "epochs", minimum=0)
    batch_size = check_int(batch_size, "batch_size", maximum=n)
    row_norms = np.einsum("ij,ij->i", x, x)
    if not row_norms.max() > 0:
        raise ConfigError("x is all zeros; SGD on least squares needs at least one non-zero row.")
    lr = 1.0 / row_norms.max() if lr is None else check_float(lr, "lr", low=0.0, low_open=True)
    shape = (d,) + y.shape[1:]
    w = np.zeros(shape) if w0 is None else np.array(w0, dtype=np.float64)
    if w.shape != shape:
        raise ConfigError(f"w0 must have shape {shape} to match x and y; got {w.shape}.")
    ref = min_norm_solution(x, y) if reference is None else np.asarray(reference, dtype=np.float64)
    ref_norm = float(np.linalg.norm(ref)) or 1.0
    y_norm = float(np.linalg.norm(y)) or 1.0
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 202]))
    marks = _record_epochs(epochs)
    trace = SGDTrace()

    def record(epoch: int) -> None:
        trace.epochs.append(epoch)
        trace.distance.append(float(np.linalg.norm(w - ref)) / ref_norm)
        trace.residual.append(float(np.linalg.norm(x @ w - y)) / y_norm)
        trace.norm.append(float(np.linalg.norm(w)))

    tol = check_float(tol, "tol", low=0.0)
    record(0)
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n)
        if batch_size == 1:
            for i in order:
                xi = x[i]
                err = xi @ w - y[i]  # prediction error e_t, shape () or (k,)
                w -= lr * (xi * err if w.ndim == 1 else np.outer(xi, err))
        else:
            for start in range(0, n, batch_size):
                idx = order[start:start + batch_size]
                xb = x[idx]
                w -= (lr / len(idx)) * (xb.T @ (xb @ w - y[idx]))
        done = tol > 0 and float(np.linalg.norm(x @ w - y)) / y_norm < tol
        if epoch in marks or done:
            record(epoch)
        if done:
            break
    return w, trace


def random_fourier_features(x: np.ndarray, x_test: np.ndarray, width: int,
                            seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random Fourier features sqrt(2/D) cos(x W + c), W ~ N(0, 1/s^2), c ~ U[0, 2 pi), s the median row norm."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 203]))
    scale = float(np.median(np.linalg.norm(x, axis=1))) or 1.0
    proj = rng.standard_normal((x.shape[1], width)) / scale
    shift = rng.uniform(0, 2 * np.pi, width)
    f = np.sqrt(2.0 / width)
    return f * np.cos(x @ proj + shift), f * np.cos(x_test @ proj + shift)
