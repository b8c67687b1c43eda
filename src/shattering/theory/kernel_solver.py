"""Factor once, solve many: exact kernel interpolation, Eq. (3) and Table 3 of Zhang et al., "Understanding deep
learning requires rethinking generalization" (ICLR 2017, arXiv 1611.03530), Section 5 and Appendix D.

SGD on a linear model from w = 0 stays in the span of the data, w = X^T alpha, and if it interpolates then
K alpha = Y with K the Gram matrix (Eq. 3). The paper solves this n x n system exactly (no regularization)
for a kernel K and one-hot labels: MNIST 1.2% test error on pixels, 0.6% after a Gabor wavelet transform;
CIFAR-10 46% on pixels, 17% after random convolutional features, 15% with l2 regularization.

- Solve: one Cholesky factorization of K (+ ridge * I when asked), float64 by default, serves every label
  set (true, partially corrupted, random): ``alpha = K^-1 Y``, Y one-hot, predictions argmax K(x, X) alpha.
  The kernel comes from :mod:`~shattering.theory.kernel_evaluator`, the factorization from
  :mod:`~shattering.theory.linear_algebra`; the memory it needs is checked first
  (:mod:`~shattering.theory.memory`).
- Interpolation is measured, never assumed. After the solve the training residual Y - K alpha is computed
  with K in float64 and refined by conjugate gradients on K alpha = Y preconditioned by the Cholesky factor
  (the same cost per step as iterative refinement alpha += (L L^T)^-1 (Y - K alpha) and faster: random
  Fashion-MNIST labels at n = 20,000 reach 5e-8 in 8 steps, iterative refinement 1e-4), until
  max |Y - K alpha| <= tol * max |Y| or the step limit. The steps of a float32 solve use the stored 48-bit
  kernel (:class:`~shattering.theory.fixed_point.FixedPointUpper`; error below 1e-14 per entry; about twice
  as fast as recomputing it) where there is one; the final residual is always recomputed from the kernel in
  float64, tile by tile, and never taken from the recurrence. float32 alone does not interpolate random labels
  at n = 60,000; a result that did not reach the tolerance says ``interpolates: false`` with its residual.
- Norm of the solution: the RKHS norm sqrt(tr(alpha^T K alpha)) (the paper quotes the l2 norm of the
  min-norm solution: about 220 on MNIST pixels and 390 after the wavelet transform).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import ShatteringError
from ..validation import check_choice, check_float, check_int, check_matrix, one_hot
from .fixed_point import FixedPointUpper
from .kernel_evaluator import KERNEL_TILE, KernelEvaluator
from .kernel_functions import KERNELS, as_float64, default_bandwidth
from .linear_algebra import (
    DEFAULT_BLOCK,
    blocked_cholesky_,
    solve_lower_,
    solve_lower_transpose_,
    symmetric_product_from_upper,
)
from .memory import KernelMemoryError, available_memory, check_memory, memory_needed

DTYPES = {"float64": torch.float64, "float32": torch.float32}
SOLVE_BLOCK = 1024  # block size of the triangular solves with a factor: memory-bound, faster in smaller blocks
# where measured (bench/RESULTS.md, "Figures moved from the code")
REFINE_TOL = {"float64": 1e-10, "float32": 1e-7}  # refine until max |(K + ridge I) alpha - Y| <= tol * max |Y|
REFINE_STEPS = {"float64": 3, "float32": 50}  # ... or at most this many conjugate-gradient steps
INTERPOLATION_TOL = 1e-6  # "interpolates" means training accuracy 100% and max |K alpha - Y| below this
FLOAT32_SHIFT = 1e-6  # a float32 diagonal block with a non-positive pivot is refactored with this * 10^k added


class KernelSolver:
    """One factorization of K + ridge * I for training points ``x``; solves any number of label sets.

    Parameters
    ----------
    x : array-like of shape (n, d)
        Training features.
    kernel : {"gaussian", "laplacian"}, default="gaussian"
    bandwidth : float or None, default=None
        sigma; None uses :func:`default_bandwidth` (a fraction of the median pairwise distance).
    bandwidth_fraction : float or None, default=None
        That fraction when ``bandwidth`` is None (default :data:`BANDWIDTH_FRACTION` of the kernel).
    ridge : float, default=0.0
        Added to the diagonal before factoring (0: exact interpolation, Eq. 3).
    dtype : {"float64", "float32"}, default="float64"
        Precision of the stored matrix and its factor. Residuals are computed in float64 either way, and
        solutions are refined to the tolerance of :meth:`solve`. In float32 the factor is only a
        preconditioner: a diagonal block whose pivots are not positive in float32 (K nearly singular) is
        factored with a small diagonal shift instead (``shifts``), and the refinement still solves K alpha = Y.
    block_size : int, default=2048
        Block size of the factorization (small values exercise the blocked code on small matrices).
    tile : int, default=2048
        Side of the kernel tiles computed at once (building the matrix, float64 products, predictions).
    stored_products : bool or None, default=None
        float32 only: keep K above the diagonal in 48-bit fixed point (:class:`FixedPointUpper`, n^2 more
        bytes), so that refinement steps read it instead of recomputing the kernel; the final residual is still
        computed from the kernel in float64. None: when the memory available allows it; True: refuse if not.
    seed : int, default=0
        Seed of the bandwidth sample.
    progress : callable or None
        ``progress(phase, done, total)`` during the long phases ("kernel", "factorization").

    Attributes
    ----------
    seconds : dict
        Seconds spent building the kernel matrix and factoring it.
    factorizations : int
        How many times a matrix was factored (one per solver: every label set reuses it).
    upper : FixedPointUpper or None
        The stored kernel of the float32 refinement, where there was memory for it.
    shifts : list of (first_row, end_row, added)
        float32: the diagonal blocks factored with ``added`` on their diagonal (see :func:`blocked_cholesky_`).
    """

    def __init__(self, x, kernel: str = "gaussian", bandwidth: float | None = None, *, ridge: float = 0.0,
                 dtype: str = "float64", block_size: int = DEFAULT_BLOCK, tile: int = KERNEL_TILE,
                 stored_products: bool | None = None, seed: int = 0, bandwidth_fraction: float | None = None,
                 progress: Callable[[str, int, int], None] | None = None):
        self.kernel = check_choice(kernel, "kernel", KERNELS)
        self.ridge = check_float(ridge, "ridge", low=0.0)
        self.dtype_name = check_choice(dtype, "dtype", tuple(DTYPES))
        self.block_size = check_int(block_size, "block_size")
        self.tile = check_int(tile, "tile")
        x = check_matrix(x, "x")
        n = len(x)
        dtype_t = DTYPES[self.dtype_name]
        check_memory(n, dtype_t, d=x.shape[1], block_size=self.block_size, tile=self.tile)  # before any work
        store = self.dtype_name == "float32" and stored_products is not False
        if store:
            matrix, extra = memory_needed(n, dtype_t, d=x.shape[1], block_size=self.block_size, tile=self.tile)
            more, have = FixedPointUpper.nbytes(n, self.tile), available_memory()
            store = have is None or matrix + extra + more <= have
            if stored_products and not store:
                raise KernelMemoryError(
                    f"Keeping the {n:,}-point kernel for fast refinement needs {more / 1e9:.1f} GB beyond the "
                    f"{(matrix + extra) / 1e9:.1f} GB of the solve, but only {have / 1e9:.1f} GB of memory is "
                    "available; pass stored_products=None or False to recompute the kernel instead.")
        self.x = as_float64(x)
        if bandwidth is None:
            self.bandwidth, self.bandwidth_rule = default_bandwidth(self.x, self.kernel, seed=seed,
                                                                    fraction=bandwidth_fraction)
        else:
            self.bandwidth = check_float(bandwidth, "bandwidth", low=0.0, low_open=True)
            self.bandwidth_rule = "given"
        self.evaluator = KernelEvaluator(self.x, self.kernel, self.bandwidth)
        self.factorizations = 0
        t0 = time.perf_counter()
        self.factor = torch.empty((n, n), dtype=dtype_t)
        self.upper = FixedPointUpper(self.factor, self.tile) if store else None
        self.evaluator.fill(self.factor, self.tile, upper=self.upper)
        self.diag = torch.full((n,), 1.0 + self.ridge, dtype=torch.float64)  # k(x, x) = 1 for both kernels
        self.factor.diagonal().add_(self.ridge)
        t1 = time.perf_counter()
        if progress is not None:
            progress("kernel", n, n)
        self.shifts: list[tuple[int, int, float]] = []  # float32: blocks factored with a diagonal shift
        blocked_cholesky_(self.factor, self.block_size,
                          shift=FLOAT32_SHIFT * (1.0 + self.ridge) if self.dtype_name == "float32" else None,
                          shifts=self.shifts,
                          progress=None if progress is None else (lambda done, total: progress("factorization",
                                                                                               done, total)))
        self.factorizations += 1
        self.seconds = {"kernel": t1 - t0, "factorization": time.perf_counter() - t1}

    @property
    def n(self) -> int:
        return len(self.x)

    @property
    def products(self) -> str:
        """How refinement computes K v: from the stored float64 matrix, the stored 48-bit kernel, or recomputed."""
        if self.factor.dtype == torch.float64:
            return "stored float64 kernel"
        return "stored 48-bit kernel" if self.upper is not None else "float64 kernel recomputed"

    def system_product(self, alpha: torch.Tensor, *, exact: bool = True) -> torch.Tensor:
        """(K + ridge I) alpha in float64: from the stored upper triangle (float64), else recomputed tile by
        tile from the data; ``exact=False`` allows the stored 48-bit kernel (error below 1e-14 per entry)."""
        alpha = alpha.to(torch.float64)
        if self.factor.dtype == torch.float64:
            return symmetric_product_from_upper(self.factor, self.diag, alpha, self.block_size)
        if self.upper is not None and not exact:
            return self.upper.product(alpha) + (1.0 + self.ridge) * alpha
        return self.evaluator.product(alpha, self.tile) + self.ridge * alpha

    def _solve_factored(self, b: torch.Tensor) -> torch.Tensor:
        """(L L^T)^-1 b with the stored factor (in its precision), returned in float64."""
        z = b.to(self.factor.dtype).reshape(len(b), -1).clone()  # (n, columns)
        solve_lower_(self.factor, z, SOLVE_BLOCK)
        solve_lower_transpose_(self.factor, z, SOLVE_BLOCK)
        return z.to(torch.float64).reshape(b.shape)

    def solve(self, y, *, tol: float | None = None, max_steps: int | None = None,
              max_seconds: float | None = None, final_check: str = "auto") -> tuple[torch.Tensor, dict]:
        """alpha with (K + ridge I) alpha = y, refined until max |residual| <= tol * max |y| (per column).

        The factor gives a first solution; conjugate gradients preconditioned by the factor then reduce the
        residual y - (K + ridge I) alpha, one kernel product and one pair of triangular solves per step, for at
        most ``max_steps`` steps (default 3 in float64, 50 in float32) or until ``max_seconds`` of refinement
        have passed. Products come from the stored 48-bit kernel where there is one (float32), else from the
        kernel in float64. The final residual is checked against the kernel: ``final_check="kernel"``
        recomputes it in float64 (a pass as long as building the kernel); ``"auto"`` (default) accepts the
        residual from the stored 48-bit kernel when it is below the tolerance by more than the worst error the
        storage can cause, ``FixedPointUpper.ENTRY_ERROR * ||alpha||_1`` per column (then a second label set
        costs seconds, not another kernel pass), else recomputes. If the residual is above the tolerance the
        steps go on with float64 products.

        Returns ``(alpha, info)``: ``info`` has ``converged``, ``refinement_steps``, ``products`` (float64
        kernel products computed) and ``stored_products`` (products from the stored kernel),
        ``system_residual`` (final max |residual|), ``final_check`` (how it was checked), ``storage_bound``
        (the largest error the storage can cause in that residual; 0 for a float64 check), ``history``
        (max |residual| after the first solve and after each step, with how it was computed and the seconds),
        ``tol``, ``seconds`` (``solve``: the first
        solution; ``refinement``: the rest) and ``system_product`` ((K + ridge I) alpha, float64).
        """
        start = time.perf_counter()
        y = as_float64(y)
        if y.shape[0] != self.n:
            raise ShatteringError(f"The targets have {y.shape[0]} rows but the solver has {self.n} points.")
        tol = REFINE_TOL[self.dtype_name] if tol is None else check_float(tol, "tol", low=0.0)
        max_steps = REFINE_STEPS[self.dtype_name] if max_steps is None else check_int(max_steps, "max_steps",
                                                                                      minimum=0)
        target = y.reshape(self.n, -1)
        scale = target.abs().amax(0)
        limit = tol * torch.where(scale > 0, scale, torch.ones_like(scale))  # per column
        alpha = self._solve_factored(target)
        t_solve = time.perf_counter()
        deadline = None if max_seconds is None else t_solve + float(max_seconds)
        counts = {"products": 0, "stored_products": 0, "steps": 0}
        history: list[dict] = []
        stored = self.upper is not None  # the first pass of steps uses the stored kernel

        def product(v: torch.Tensor, exact: bool) -> torch.Tensor:
            counts["products" if exact or not stored else "stored_products"] += 1
            return self.system_product(v, exact=exact)

        def record(residual: torch.Tensor, how: str) -> torch.Tensor:
            res = residual.abs().amax(0)
            history.append({"step": counts["steps"], "max_residual": float(res.max()), "residual": how,
                            "seconds": time.perf_counter() - start})
            return res

        def out_of_time() -> bool:
            return counts["steps"] >= max_steps or (deadline is not None and time.perf_counter() >= deadline)

        final_check = check_choice(final_check, "final_check", ("auto", "kernel"))
        fitted = product(alpha, exact=not stored)
        residual = target - fitted
        verified = not stored
        bound = torch.zeros_like(limit)
        rechecked = False  # the residual after the first round of steps was recomputed from the stored kernel
        res = record(residual, "explicit" if verified else "stored kernel")
        while True:
            if not bool((res > limit).any()) or out_of_time():
                if verified:
                    break
                if final_check == "auto" and not bool((res > limit).any()):
                    bound = FixedPointUpper.ENTRY_ERROR * alpha.abs().sum(0)  # |(K_stored - K) alpha| <= this
                    if not bool((res + bound > limit).any()):
                        break  # below the tolerance whatever the storage error: proven without a kernel pass
                    bound = torch.zeros_like(limit)
                fitted = product(alpha, exact=True)  # the kernel itself decides the final answer
                residual = target - fitted
                verified = True
                res = record(residual, "explicit")
                continue
            exact = verified or not stored  # after a float64 check, the steps use float64 products too
            active = res > limit  # conjugate gradients, restarted from each explicit residual
            z = self._solve_factored(residual) * active
            p = z.clone()
            rz = (residual * z).sum(0)
            while not out_of_time():
                q = product(p, exact=exact)
                counts["steps"] += 1
                pq = (p * q).sum(0)
                step = torch.where(active & (pq > 0), rz / torch.where(pq > 0, pq, torch.ones_like(pq)), 0.0)
                alpha += step * p
                residual -= step * q
                res = record(residual, "recurrence")
                active &= (res > limit) & (pq > 0)
                if not bool(active.any()):
                    break
                z_new = self._solve_factored(residual) * active
                beta = torch.where(active, (residual * (z_new - z)).sum(0) / torch.where(rz != 0, rz, 1.0), 0.0)
                rz = (residual * z_new).sum(0)
                p = z_new + beta * p
                z = z_new
            if final_check == "auto" and stored and not verified and not rechecked:  # once, from the stored kernel
                rechecked = True
                fitted = product(alpha, exact=False)
                residual = target - fitted
                res = record(residual, "stored kernel")
                continue
            fitted = product(alpha, exact=True)
            residual = target - fitted
            verified = True
            res = record(residual, "explicit")
        converged = not bool((res > limit).any())
        checked = ("float64 kernel" if verified else
                   f"stored 48-bit kernel (storage error at most {float(bound.max()):.1e})")
        info = {"converged": converged, "refinement_steps": counts["steps"], "products": counts["products"],
                "final_check": checked, "storage_bound": float(bound.max()),
                "stored_products": counts["stored_products"], "system_residual": float(res.max()), "tol": tol,
                "history": history, "products_from": self.products,
                "seconds": {"solve": t_solve - start, "refinement": time.perf_counter() - t_solve},
                "system_product": fitted.reshape(y.shape)}
        return alpha.reshape(y.shape), info

    def fitted(self, alpha: torch.Tensor) -> torch.Tensor:
        """K alpha on the training points (without the ridge), from the kernel in float64."""
        return self.system_product(alpha) - self.ridge * alpha.to(torch.float64)

    def predict(self, x_new, alpha: torch.Tensor) -> torch.Tensor:
        """K(x_new, x) alpha."""
        return self.evaluator.cross_product(x_new, alpha, self.tile)

    def describe(self) -> dict:
        matrix, extra = memory_needed(self.n, self.factor.dtype, d=self.x.shape[1], block_size=self.block_size,
                                      tile=self.tile)
        if self.upper is not None:
            extra += FixedPointUpper.nbytes(self.n, self.tile)
        return {"kernel": self.kernel, "bandwidth": self.bandwidth, "bandwidth_rule": self.bandwidth_rule,
                "ridge": self.ridge, "dtype": self.dtype_name, "block_size": self.block_size, "n": self.n,
                "kernel_arithmetic": self.evaluator.mode + (
                    f" ({self.evaluator.code_product} product)" if self.evaluator.code_product else ""),
                "refinement_products": self.products,
                "shifted_rows": sum(k1 - k0 for k0, k1, _ in self.shifts),
                "largest_shift": max((added for _, _, added in self.shifts), default=0.0),
                "memory_estimate_gb": (matrix + extra) / 1e9,
                "factorization_gflops": self.n ** 3 / 3 / 1e9 / max(self.seconds["factorization"], 1e-9),
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
                   true_labels: np.ndarray | None = None, x_test=None, y_test=None, tol: float | None = None,
                   max_steps: int | None = None, max_seconds: float | None = None) -> list[LabelSetResult]:
    """Solve K alpha = one_hot(y) for every label set with ``solver``'s one factorization and measure each.

    The one-hot targets of all label sets are stacked side by side (n, K * sets), so the triangular solves,
    the refinement (``tol``, ``max_steps``, ``max_seconds``: see :meth:`KernelSolver.solve`) and the
    test-kernel products run once for all of them.
    """
    if not label_sets:
        return []
    ys = {name: np.asarray(y) for name, y in label_sets.items()}
    target = torch.from_numpy(np.concatenate([one_hot(y, num_classes) for y in ys.values()], axis=1))
    alpha, info = solver.solve(target, tol=tol, max_steps=max_steps, max_seconds=max_seconds)
    fitted = info["system_product"] - solver.ridge * alpha  # K alpha from the last explicit product
    test_out = None
    t0 = time.perf_counter()
    if x_test is not None and y_test is not None and len(y_test):
        test_out = solver.predict(x_test, alpha)
    t_predict = time.perf_counter() - t0
    history = [h["max_residual"] for h in info["history"]]
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
            extra={"system_residual": float((solver.ridge * a + diff).abs().max()),
                   "refined_to_tolerance": info["converged"], "tol": info["tol"], "kernel_products": info["products"],
                   "stored_kernel_products": info["stored_products"], "products_from": info["products_from"],
                   "final_check": info["final_check"],
                   "residual_history": history, "seconds_solve": info["seconds"]["solve"],
                   "seconds_refinement": info["seconds"]["refinement"], "seconds_predict": t_predict}))
    return results
