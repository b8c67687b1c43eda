"""Kernel interpolation, Eq. (3) and Table 3 of Zhang et al., "Understanding deep learning requires rethinking
generalization" (ICLR 2017, arXiv 1611.03530), Section 5 and Appendix D.

SGD on a linear model from w = 0 stays in the span of the data, w = X^T alpha, and if it interpolates then
K alpha = Y with K the Gram matrix (Eq. 3). The paper solves this n x n system exactly (no regularization)
for a kernel K and one-hot labels: MNIST 1.2% test error on pixels, 0.6% after a Gabor wavelet transform;
CIFAR-10 46% on pixels, 17% after random convolutional features, 15% with l2 regularization.

- Kernels: ``gaussian`` k(x, z) = exp(-||x - z||^2 / (2 sigma^2)) and ``laplacian`` k(x, z) =
  exp(-||x - z|| / sigma). The paper does not give its kernel or bandwidth [I]; the default sigma is the median
  heuristic: the median Euclidean distance between pairs of (up to 2,000) training points.
- Solve: one Cholesky factorization of K (+ ridge * I when asked), float64 by default, serves every label
  set (true, partially corrupted, random): ``alpha = K^-1 Y``, Y one-hot, predictions argmax K(x, X) alpha.
- Interpolation is measured, never assumed: the training residual max |K alpha - Y| and the training accuracy
  are computed after the solve with K in float64, and iterative refinement (alpha += K^-1 (Y - K alpha)) runs
  while the residual is above tolerance. A float32 factorization does not interpolate random labels at
  n = 60,000 (anchors.md, section 8); the result then says ``interpolates: false`` with the residual.
- Norm of the solution: the RKHS norm sqrt(tr(alpha^T K alpha)) (the paper quotes the l2 norm of the
  min-norm solution: about 220 on MNIST pixels and 390 after the wavelet transform).
- Memory: :func:`blocked_cholesky_` factors in place, one block column at a time (diagonal block by
  ``torch.linalg.cholesky``, panel by a triangular solve, trailing lower blocks by in-place ``addmm_``), so the
  whole solve holds about one n x n matrix (28.8 GB at n = 60,000 in float64, 14.4 GB in float32). Only the
  lower triangle is written: the strict upper triangle still holds K, so K alpha (residuals, refinement, the
  norm) needs no second matrix and no kernel recomputation.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import ShatteringError
from ._checks import check_choice, check_choices, check_float, check_int, check_matrix, check_probability, one_hot

KERNELS = ("gaussian", "laplacian")
DTYPES = {"float64": torch.float64, "float32": torch.float32}
DEFAULT_BLOCK = 2048  # block size of the factorization, the solves and the kernel products
BANDWIDTH_SAMPLE = 2000  # points used by the median heuristic
REFINE_STEPS = 3  # at most this many iterative-refinement steps per solve
REFINE_TOL = 1e-10  # ... until max |(K + ridge I) alpha - Y| <= REFINE_TOL * max |Y|
INTERPOLATION_TOL = 1e-6  # "interpolates" means training accuracy 100% and max |K alpha - Y| below this


class KernelFactorizationError(ShatteringError, ArithmeticError):
    """The kernel matrix is not numerically positive definite."""


# --------------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------------


def _as_tensor(x) -> torch.Tensor:
    return x.to(torch.float64) if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x, dtype=np.float64))


def squared_distances(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """||x_i - z_j||^2 for rows of x (m, d) and z (k, d), as ||x||^2 + ||z||^2 - 2 x z^T clamped at 0."""
    d2 = (x * x).sum(1)[:, None] + (z * z).sum(1)[None, :] - 2.0 * (x @ z.T)  # (m, k)
    return d2.clamp_min_(0.0)


def kernel_block(x: torch.Tensor, z: torch.Tensor, kernel: str, bandwidth: float) -> torch.Tensor:
    """k(x_i, z_j) for the Gaussian or Laplacian kernel of width ``bandwidth`` (float64)."""
    d2 = squared_distances(x, z)
    if kernel == "gaussian":
        return d2.mul_(-0.5 / bandwidth ** 2).exp_()
    return d2.sqrt_().mul_(-1.0 / bandwidth).exp_()


def median_bandwidth(x, sample: int = BANDWIDTH_SAMPLE, seed: int = 0) -> float:
    """The median Euclidean distance between distinct pairs of (at most ``sample``) rows of ``x``."""
    x = _as_tensor(x)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 301]))
    idx = np.sort(rng.choice(len(x), size=min(len(x), sample), replace=False))
    xs = x[torch.from_numpy(idx)]
    d2 = squared_distances(xs, xs)
    iu = torch.triu_indices(len(xs), len(xs), offset=1)
    dist = d2[iu[0], iu[1]].sqrt()
    med = float(np.median(dist.numpy())) if dist.numel() else 0.0  # (torch's median is the lower one)
    if not med > 0:
        raise ShatteringError("The median distance between training points is 0 (most points are identical); "
                              "pass an explicit bandwidth.")
    return med


def kernel_matrix(x, kernel: str = "gaussian", bandwidth: float = 1.0, *, dtype: torch.dtype = torch.float64,
                  block_size: int = DEFAULT_BLOCK) -> torch.Tensor:
    """The symmetric n x n kernel matrix of the rows of ``x``, built block by block (computed in float64, stored
    in ``dtype``); each off-diagonal block is computed once and mirrored, so the result is exactly symmetric."""
    x = _as_tensor(x)
    n = len(x)
    out = torch.empty((n, n), dtype=dtype)
    for i0 in range(0, n, block_size):
        i1 = min(i0 + block_size, n)
        for j0 in range(0, i0 + 1, block_size):
            j1 = min(j0 + block_size, n)
            blk = kernel_block(x[i0:i1], x[j0:j1], kernel, bandwidth)
            if i0 == j0:  # symmetric to the last bit, with k(x, x) = 1 exactly
                blk = torch.tril(blk, -1)
                blk = blk + blk.T
                blk.fill_diagonal_(1.0)
            out[i0:i1, j0:j1] = blk
            if i0 != j0:
                out[j0:j1, i0:i1] = blk.T
    return out


def kernel_product(x_rows, x_cols, alpha: torch.Tensor, kernel: str, bandwidth: float,
                   block_size: int = DEFAULT_BLOCK) -> torch.Tensor:
    """K(x_rows, x_cols) @ alpha in float64, a block of rows at a time, without storing the kernel matrix."""
    x_rows, x_cols = _as_tensor(x_rows), _as_tensor(x_cols)
    alpha = alpha.to(torch.float64)
    out = torch.empty((len(x_rows),) + tuple(alpha.shape[1:]), dtype=torch.float64)
    for i0 in range(0, len(x_rows), block_size):
        i1 = min(i0 + block_size, len(x_rows))
        out[i0:i1] = kernel_block(x_rows[i0:i1], x_cols, kernel, bandwidth) @ alpha
    return out


# --------------------------------------------------------------------------------------------------
# Blocked, in-place Cholesky and triangular solves
# --------------------------------------------------------------------------------------------------


def blocked_cholesky_(a: torch.Tensor, block_size: int = DEFAULT_BLOCK) -> torch.Tensor:
    """Factor the symmetric positive definite ``a`` = L L^T in place, one block column at a time.

    Only the lower triangle of ``a`` is read, and only the lower triangle (with the diagonal) is overwritten,
    by L; the strict upper triangle is left as it was (for a symmetric input: the input itself). Extra memory:
    a few blocks of ``block_size`` rows. Returns ``a``; ``torch.tril(a)`` equals ``torch.linalg.cholesky`` of
    the input.

    Raises
    ------
    KernelFactorizationError
        If a pivot is not positive (the matrix is not numerically positive definite).
    """
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ShatteringError(f"blocked_cholesky_ needs a square matrix; got shape {tuple(a.shape)}.")
    n = a.shape[0]
    block_size = check_int(block_size, "block_size")
    for k0 in range(0, n, block_size):
        k1 = min(k0 + block_size, n)
        diag = a[k0:k1, k0:k1]
        low = torch.tril(diag)
        l11, info = torch.linalg.cholesky_ex(low + torch.tril(diag, -1).T)  # the symmetric block, from its lower half
        if int(info) != 0:
            raise KernelFactorizationError(
                f"The matrix is not numerically positive definite (pivot {k0 + int(info)} of {n}): duplicate "
                "points, too wide a bandwidth or float32; use float64, a smaller bandwidth or a small ridge.")
        diag.copy_(l11 + torch.triu(diag, 1))  # write L11 below and on the diagonal, keep the upper triangle
        if k1 == n:
            break
        panel = a[k1:, k0:k1]  # (n - k1, b): L21 = A21 L11^-T
        panel.copy_(torch.linalg.solve_triangular(l11.T, panel, upper=True, left=False))
        for i0 in range(k1, n, block_size):  # A22 -= L21 L21^T, lower block triangle only
            i1 = min(i0 + block_size, n)
            rows = a[i0:i1, k0:k1]
            if i0 > k1:
                a[i0:i1, k1:i0].addmm_(rows, a[k1:i0, k0:k1].T, alpha=-1.0)
            a[i0:i1, i0:i1].sub_(torch.tril(rows @ rows.T))
    return a


def solve_lower_(a: torch.Tensor, b: torch.Tensor, block_size: int = DEFAULT_BLOCK) -> torch.Tensor:
    """b <- L^-1 b by blocked forward substitution, L the lower triangle of ``a``."""
    n = a.shape[0]
    for i0 in range(0, n, block_size):
        i1 = min(i0 + block_size, n)
        if i0:
            b[i0:i1] -= a[i0:i1, :i0] @ b[:i0]
        b[i0:i1] = torch.linalg.solve_triangular(torch.tril(a[i0:i1, i0:i1]), b[i0:i1], upper=False)
    return b


def solve_lower_transpose_(a: torch.Tensor, b: torch.Tensor, block_size: int = DEFAULT_BLOCK) -> torch.Tensor:
    """b <- L^-T b by blocked back substitution, L the lower triangle of ``a``."""
    n = a.shape[0]
    starts = list(range(0, n, block_size))
    for i0 in reversed(starts):
        i1 = min(i0 + block_size, n)
        if i1 < n:
            b[i0:i1] -= a[i1:, i0:i1].T @ b[i1:]
        b[i0:i1] = torch.linalg.solve_triangular(torch.tril(a[i0:i1, i0:i1]).T, b[i0:i1], upper=True)
    return b


def symmetric_product_from_upper(a: torch.Tensor, diag: torch.Tensor, v: torch.Tensor,
                                 block_size: int = DEFAULT_BLOCK) -> torch.Tensor:
    """S v for the symmetric S whose strict upper triangle is that of ``a`` and whose diagonal is ``diag``.

    After :func:`blocked_cholesky_` the strict upper triangle still holds the factored matrix, so this is
    K v without a second n x n matrix.
    """
    n = a.shape[0]
    v = v.to(a.dtype)
    out = diag.to(a.dtype)[:, None] * v if v.ndim == 2 else diag.to(a.dtype) * v
    for i0 in range(0, n, block_size):
        i1 = min(i0 + block_size, n)
        upper = torch.triu(a[i0:i1, i0:i1], 1)
        out[i0:i1] += upper @ v[i0:i1] + upper.T @ v[i0:i1]
        if i1 < n:
            right = a[i0:i1, i1:]  # (b, n - i1), above the diagonal
            out[i0:i1] += right @ v[i1:]
            out[i1:] += right.T @ v[i0:i1]
    return out


# --------------------------------------------------------------------------------------------------
# Factor once, solve many
# --------------------------------------------------------------------------------------------------


def physical_memory() -> int | None:
    """Bytes of RAM on this machine, or None where the OS does not say."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(n: int, dtype: torch.dtype) -> None:
    """Refuse, before allocating, an n x n matrix that cannot fit in this machine's RAM."""
    need = n * n * torch.finfo(dtype).bits // 8
    have = physical_memory()
    if have is not None and need > 0.9 * have:
        other = "float32 with refinement (half the memory), " if dtype == torch.float64 else ""
        name = str(dtype).replace("torch.", "")
        raise ShatteringError(f"The {n:,} x {n:,} kernel matrix needs {need / 2**30:.1f} GiB in {name} but this "
                              f"machine has {have / 2**30:.1f} GiB; use {other}fewer training points or a larger "
                              "machine.")


class KernelSolver:
    """One factorization of K + ridge * I for training points ``x``; solves any number of label sets.

    Parameters
    ----------
    x : array-like of shape (n, d)
        Training features.
    kernel : {"gaussian", "laplacian"}, default="gaussian"
    bandwidth : float or None, default=None
        sigma; None uses the median heuristic (:func:`median_bandwidth`).
    ridge : float, default=0.0
        Added to the diagonal before factoring (0: exact interpolation, Eq. 3).
    dtype : {"float64", "float32"}, default="float64"
        Precision of the stored matrix and its factor. Residuals are computed in float64 either way.
    block_size : int, default=2048
        Block size of the factorization (small values exercise the blocked code on small matrices).
    seed : int, default=0
        Seed of the bandwidth sample.
    """

    def __init__(self, x, kernel: str = "gaussian", bandwidth: float | None = None, *, ridge: float = 0.0,
                 dtype: str = "float64", block_size: int = DEFAULT_BLOCK, seed: int = 0):
        self.kernel = check_choice(kernel, "kernel", KERNELS)
        self.x = _as_tensor(check_matrix(x, "x"))
        self.ridge = check_float(ridge, "ridge", low=0.0)
        self.dtype_name = check_choice(dtype, "dtype", tuple(DTYPES))
        self.block_size = check_int(block_size, "block_size")
        if bandwidth is None:
            self.bandwidth, self.bandwidth_rule = median_bandwidth(self.x, seed=seed), "median heuristic"
        else:
            self.bandwidth = check_float(bandwidth, "bandwidth", low=0.0, low_open=True)
            self.bandwidth_rule = "given"
        n = len(self.x)
        check_memory(n, DTYPES[self.dtype_name])
        t0 = time.perf_counter()
        self.factor = kernel_matrix(self.x, self.kernel, self.bandwidth, dtype=DTYPES[self.dtype_name],
                                    block_size=self.block_size)
        self.diag = torch.full((n,), 1.0 + self.ridge, dtype=torch.float64)  # k(x, x) = 1 for both kernels
        self.factor.diagonal().add_(self.ridge)
        t1 = time.perf_counter()
        blocked_cholesky_(self.factor, self.block_size)
        self.seconds = {"kernel": t1 - t0, "factorization": time.perf_counter() - t1}

    @property
    def n(self) -> int:
        return len(self.x)

    def system_product(self, alpha: torch.Tensor) -> torch.Tensor:
        """(K + ridge I) alpha in float64: from the stored upper triangle (float64), else recomputed."""
        if self.factor.dtype == torch.float64:
            return symmetric_product_from_upper(self.factor, self.diag, alpha, self.block_size)
        return kernel_product(self.x, self.x, alpha, self.kernel, self.bandwidth, self.block_size) + self.ridge * alpha

    def _solve_factored(self, b: torch.Tensor) -> torch.Tensor:
        z = b.to(self.factor.dtype).reshape(len(b), -1).clone()  # (n, columns)
        solve_lower_(self.factor, z, self.block_size)
        solve_lower_transpose_(self.factor, z, self.block_size)
        return z.to(torch.float64).reshape(b.shape)

    def solve(self, y, *, refine: int = REFINE_STEPS, tol: float = REFINE_TOL) -> tuple[torch.Tensor, dict]:
        """alpha with (K + ridge I) alpha = y, refined while max |residual| > tol * max |y|.

        Returns ``(alpha, info)``; ``info`` has the refinement steps taken and the final max residual of the
        system (for ridge = 0 this is the interpolation residual).
        """
        y = _as_tensor(y)
        alpha = self._solve_factored(y)
        scale = float(y.abs().max()) or 1.0
        steps = 0
        residual = y - self.system_product(alpha)
        while float(residual.abs().max()) > tol * scale and steps < refine:
            alpha += self._solve_factored(residual)
            residual = y - self.system_product(alpha)
            steps += 1
        return alpha, {"refinement_steps": steps, "system_residual": float(residual.abs().max())}

    def fitted(self, alpha: torch.Tensor) -> torch.Tensor:
        """K alpha on the training points (without the ridge)."""
        return self.system_product(alpha) - self.ridge * alpha.to(torch.float64)

    def predict(self, x_new, alpha: torch.Tensor) -> torch.Tensor:
        """K(x_new, x) alpha."""
        return kernel_product(x_new, self.x, alpha, self.kernel, self.bandwidth, self.block_size)

    def describe(self) -> dict:
        return {"kernel": self.kernel, "bandwidth": self.bandwidth, "bandwidth_rule": self.bandwidth_rule,
                "ridge": self.ridge, "dtype": self.dtype_name, "block_size": self.block_size, "n": self.n,
                "seconds": dict(self.seconds)}


@dataclass
class LabelSetResult:
    """The interpolant of one label set: how well it fits, how it generalizes, how large it is."""

    labels: str  # "true", "partial" or "random"
    label_noise: float  # share of training labels that differ from the true ones
    train_error: float  # share of training points misclassified by argmax K alpha
    max_residual: float  # max |K alpha - Y| on the training set (one-hot Y)
    relative_residual: float  # ||K alpha - Y||_F / ||Y||_F
    interpolates: bool  # train_error == 0 and max_residual < INTERPOLATION_TOL
    test_error: float | None  # against the clean test labels
    norm: float  # sqrt(tr(alpha^T K alpha))
    refinement_steps: int
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "extra"}
        return out | self.extra


def fit_label_sets(solver: KernelSolver, label_sets: dict[str, np.ndarray], num_classes: int, *,
                   true_labels: np.ndarray | None = None, x_test=None, y_test=None) -> list[LabelSetResult]:
    """Solve K alpha = one_hot(y) for every label set with ``solver``'s one factorization and measure each.

    The one-hot targets of all label sets are stacked side by side (n, K * sets), so the triangular solves,
    the refinement and the test-kernel products run once for all of them.
    """
    if not label_sets:
        return []
    ys = {name: np.asarray(y) for name, y in label_sets.items()}
    target = torch.from_numpy(np.concatenate([one_hot(y, num_classes) for y in ys.values()], axis=1))
    alpha, info = solver.solve(target)
    fitted = solver.fitted(alpha)
    test_out = None
    if x_test is not None and y_test is not None and len(y_test):
        test_out = solver.predict(x_test, alpha)
    results = []
    for i, (name, y) in enumerate(ys.items()):
        cols = slice(i * num_classes, (i + 1) * num_classes)
        a, f, t = alpha[:, cols], fitted[:, cols], target[:, cols]
        diff = f - t
        train_error = float((f.argmax(1).numpy() != y).mean())
        max_res = float(diff.abs().max())
        test_error = None
        if test_out is not None:
            test_error = float((test_out[:, cols].argmax(1).numpy() != np.asarray(y_test)).mean())
        results.append(LabelSetResult(
            labels=name, label_noise=float((y != true_labels).mean()) if true_labels is not None else 0.0,
            train_error=train_error, max_residual=max_res, relative_residual=float(diff.norm() / t.norm()),
            interpolates=train_error == 0.0 and max_res < INTERPOLATION_TOL, test_error=test_error,
            norm=math.sqrt(max(float((a * f).sum()), 0.0)), refinement_steps=info["refinement_steps"],
            extra={"system_residual": float((solver.ridge * a + diff).abs().max())}))
    return results


# --------------------------------------------------------------------------------------------------
# The experiment behind ``shatter kernel``
# --------------------------------------------------------------------------------------------------

LABEL_CHOICES = ("true", "partial", "random")


def kernel_experiment(dataset: str = "fashion-mnist", *, kernel: str = "gaussian", features: str = "raw",
                      labels: str | list[str] = "true,random", p: float | None = None, n_train: int = 5000,
                      n_test: int | None = None, ridge: float = 0.0, bandwidth: float | None = None,
                      dtype: str = "float64", block_size: int = DEFAULT_BLOCK, whitening: str = "none",
                      seed: int = 0, feature_options: dict | None = None) -> dict:
    """Interpolate ``n_train`` images of ``dataset`` with a kernel, for one or several label sets (one
    factorization), and report training error, residual, test error and norm for each.

    ``whitening="none"`` (default) is the paper's "no preprocessing": pixels scaled to [0, 1]. ``labels`` is a
    comma-separated list of "true", "partial" (needs ``p``) and "random". Returns a JSON-ready dict.
    """
    from .features import compute_features
    from .sample import load_sample

    start = time.perf_counter()
    check_choice(kernel, "kernel", KERNELS)
    names = check_choices(labels, "labels", LABEL_CHOICES)
    n_train = check_int(n_train, "n_train")
    p = None if p is None else check_probability(p)
    if ridge is not None:
        ridge = check_float(ridge, "ridge", low=0.0)
    sample = load_sample(dataset, n_train, n_test, seed=seed, whitening=whitening)
    label_sets = {name: sample.labels(name, p, seed) for name in names}
    t0 = time.perf_counter()
    f_train, f_test, finfo = compute_features(features, sample.data.x_train, sample.data.x_test, seed=seed,
                                              **(feature_options or {}))
    t_features = time.perf_counter() - t0
    solver = KernelSolver(f_train, kernel, bandwidth, ridge=ridge, dtype=dtype, block_size=block_size, seed=seed)
    results = fit_label_sets(solver, label_sets, sample.num_classes, true_labels=sample.data.y_train,
                             x_test=f_test, y_test=sample.data.y_test)
    solve_info = solver.describe()
    solve_info["seconds"]["features"] = t_features
    return {"dataset": sample.name, "n_train": sample.n_train, "n_test": sample.n_test, "classes": sample.num_classes,
            "whitening": whitening, "p": p, **finfo, **solve_info,
            "results": [r.as_dict() for r in results], "seconds_total": time.perf_counter() - start}
