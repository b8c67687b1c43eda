"""Kernel interpolation, Eq. (3) and Table 3 of Zhang et al., "Understanding deep learning requires rethinking
generalization" (ICLR 2017, arXiv 1611.03530), Section 5 and Appendix D.

SGD on a linear model from w = 0 stays in the span of the data, w = X^T alpha, and if it interpolates then
K alpha = Y with K the Gram matrix (Eq. 3). The paper solves this n x n system exactly (no regularization)
for a kernel K and one-hot labels: MNIST 1.2% test error on pixels, 0.6% after a Gabor wavelet transform;
CIFAR-10 46% on pixels, 17% after random convolutional features, 15% with l2 regularization.

- Kernels: ``gaussian`` k(x, z) = exp(-||x - z||^2 / (2 sigma^2)) and ``laplacian`` k(x, z) =
  exp(-||x - z|| / sigma). The paper does not give its kernel or bandwidth [I]; the default sigma is a fixed
  fraction (:data:`BANDWIDTH_FRACTION`) of the median Euclidean distance between pairs of (up to 2,000)
  training points: a quarter of it for the Gaussian, all of it for the Laplacian. The quarter was measured
  (Fashion-MNIST raw pixels, n = 10,000, true labels, test error for sigma = median x 1, 0.71, 0.5, 0.35,
  0.25, 0.18: 14.4, 14.2, 13.6, 13.3, 13.0, 14.0%) and it keeps K far better conditioned: the smallest
  float32 Cholesky pivot^2 is 0.017 against 1.7e-4 with the plain median, which at n = 60,000 leaves no
  positive float32 factor at all (bench/RESULTS.md). On the standardized features of
  :mod:`~shattering.theory.features` the plain median stays the default (:data:`TRANSFORMED_BANDWIDTH_FRACTION`;
  n = 2,000 Fashion-MNIST, test error with 1 / 0.5 / 0.25 x the median: Gabor 16.4 / 14.4 / 15.6%,
  scattering 13.4 / 13.1 / 14.1%, random conv 16.8 / 17.3 / 21.1%).
- Kernel values are computed in float64, tile by tile (:class:`KernelEvaluator`). Inputs on the 8-bit pixel
  grid (every value k/255, as raw images scaled to [0, 1]) are taken as exactly k/255: their squared distances
  are then exact integers (in units of 1/255^2) from an int8 matrix product (``torch._int_mm``, several times
  faster than a float64 product on CPUs with int8 dot-product instructions). Other inputs use a float64 product
  of centred data.
- Solve: one Cholesky factorization of K (+ ridge * I when asked), float64 by default, serves every label
  set (true, partially corrupted, random): ``alpha = K^-1 Y``, Y one-hot, predictions argmax K(x, X) alpha.
- Memory: :func:`blocked_cholesky_` factors in place, one block column at a time (diagonal block by
  ``torch.linalg.cholesky``, panel by triangular solves a few thousand rows at a time, trailing lower blocks by
  in-place ``addmm_``), so the whole solve holds one n x n matrix (28.8 GB at n = 60,000 in float64, 14.4 GB in
  float32) plus a few blocks. The size is checked against the memory available *before* anything is
  computed (:func:`check_memory`), with one sentence if it does not fit. Only the lower triangle is
  overwritten, and never by arithmetic on the strict upper triangle, which keeps K: in float64 as the mirror
  of the lower half, in float32 runs as 48-bit fixed point (:class:`FixedPointUpper`: int32 in those bits plus
  an int16 array, n^2 bytes more, kept when the memory allows).
- Interpolation is measured, never assumed. After the solve the training residual Y - K alpha is computed
  with K in float64 and refined by conjugate gradients on K alpha = Y preconditioned by the Cholesky factor
  (the same cost per step as iterative refinement alpha += (L L^T)^-1 (Y - K alpha) and faster: random
  Fashion-MNIST labels at n = 20,000 reach 5e-8 in 8 steps, iterative refinement 1e-4), until
  max |Y - K alpha| <= tol * max |Y| or the step limit. The steps of a float32 solve use the stored 48-bit
  kernel (error below 1e-14 per entry; about twice as fast as recomputing it) where there is
  one; the final residual is always recomputed from the kernel in float64, tile by tile, and never taken from
  the recurrence. float32 alone does not interpolate random labels at n = 60,000 (anchors.md, section 8); a
  result that did not reach the tolerance says ``interpolates: false`` with its residual.
- Norm of the solution: the RKHS norm sqrt(tr(alpha^T K alpha)) (the paper quotes the l2 norm of the
  min-norm solution: about 220 on MNIST pixels and 390 after the wavelet transform).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import ShatteringError
from ..validation import check_choice, check_choices, check_float, check_int, check_matrix, check_probability, one_hot

KERNELS = ("gaussian", "laplacian")
DTYPES = {"float64": torch.float64, "float32": torch.float32}
DEFAULT_BLOCK = 2048  # block size of the factorization
SOLVE_BLOCK = 1024  # block size of the triangular solves with a factor: memory-bound, faster in smaller blocks
# (n = 40,000 alone, float32, 20 right-hand sides: 1.37 s per solve in blocks of 4096, 0.42 s in blocks of 1024;
# inside the 60,000-point benchmark, beside 18 GB of other data, a pair took 8-11 s with either block size)
KERNEL_TILE = 2048  # side of the kernel tiles computed (or read from the stored kernel) at once
PANEL_ROWS = 8192  # rows of a Cholesky panel solved at once (bounds the temporary memory)
BANDWIDTH_SAMPLE = 2000  # points used by the median heuristic
BANDWIDTH_FRACTION = {"gaussian": 0.25, "laplacian": 1.0}  # default sigma = this * the median distance
TRANSFORMED_BANDWIDTH_FRACTION = 1.0  # ... of standardized Gabor, scattering or random-conv features
PIXEL_LEVELS = 255  # inputs on the grid k / PIXEL_LEVELS, 0 <= k <= 255, are treated as exact 8-bit pixels
REFINE_TOL = {"float64": 1e-10, "float32": 1e-7}  # refine until max |(K + ridge I) alpha - Y| <= tol * max |Y|
REFINE_STEPS = {"float64": 3, "float32": 50}  # ... or at most this many conjugate-gradient steps
INTERPOLATION_TOL = 1e-6  # "interpolates" means training accuracy 100% and max |K alpha - Y| below this
FLOAT32_SHIFT = 1e-6  # a float32 diagonal block with a non-positive pivot is refactored with this * 10^k added
MEMORY_SLACK = 512 * 2 ** 20  # bytes for the interpreter, torch and the data beyond what is counted


class KernelFactorizationError(ShatteringError, ArithmeticError):
    """The kernel matrix is not numerically positive definite."""


class KernelMemoryError(ShatteringError, MemoryError):
    """The kernel matrix would not fit in the memory available."""


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
    """k(x_i, z_j) for the Gaussian or Laplacian kernel of width ``bandwidth`` (float64; the plain formula)."""
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


def default_bandwidth(x, kernel: str = "gaussian", seed: int = 0, *,
                      fraction: float | None = None) -> tuple[float, str]:
    """The default sigma of ``kernel`` for the rows of ``x`` and the rule in words: ``fraction`` (default
    :data:`BANDWIDTH_FRACTION` of the kernel) times the median pairwise distance."""
    kernel = check_choice(kernel, "kernel", tuple(BANDWIDTH_FRACTION))
    fraction = BANDWIDTH_FRACTION[kernel] if fraction is None else check_float(fraction, "bandwidth_fraction",
                                                                                low=0.0, low_open=True)
    rule = "median heuristic" if fraction == 1.0 else f"{fraction:g} x the median pairwise distance"
    return fraction * median_bandwidth(x, seed=seed), rule


def pixel_codes(x: torch.Tensor) -> torch.Tensor | None:
    """``round(255 x) - 128`` as int8 if every value of ``x`` is k/255 for an integer 0 <= k <= 255 (raw pixels
    scaled to [0, 1], stored in float32 or float64), else None."""
    if x.numel() == 0 or float(x.min()) < 0.0 or float(x.max()) > 1.0:
        return None
    scaled = x * PIXEL_LEVELS
    codes = scaled.round()
    if float((scaled - codes).abs().max()) > 1e-4:
        return None
    return (codes - 128).to(torch.int8)


def _int8_matmul_works() -> bool:
    """Whether ``torch._int_mm`` (int8 x int8 -> int32) runs here and is exact."""
    try:
        a = torch.arange(-128, 128, dtype=torch.int8).reshape(16, 16)
        ref = a.to(torch.int64) @ a.to(torch.int64).T
        return bool(torch.equal(torch._int_mm(a, a.T).to(torch.int64), ref))
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


def _one_blas_thread():
    """A context in which numpy's OpenBLAS runs on one thread: the n x 20 tile products are memory-bound, and
    OpenBLAS threads that spin between calls would compete with torch's own threads for the cores."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


@dataclass
class _Points:
    """Rows prepared for kernel tiles.

    ``codes``: int8 pixel codes, x = (codes + 128) / 255, with ``norms`` = ||codes||^2 (exact integers); or
    ``centred``: x - centre in float64 with ``norms`` = ||x - centre||^2. ``scale``: for the Gaussian kernel,
    u = exp(-||x - centre||^2 / (2 sigma^2)), so that k(x, z) = u_x u_z exp(<x - centre, z - centre> / sigma^2)
    and a tile needs one exponential per entry and no squared distances (None where u would underflow).
    """

    codes: torch.Tensor | None
    centred: torch.Tensor | None
    norms: torch.Tensor
    scale: torch.Tensor | None

    def __len__(self) -> int:
        return len(self.norms)

    def rows(self, i0: int, i1: int) -> _Points:
        def cut(t):
            return None if t is None else t[i0:i1]

        return _Points(cut(self.codes), cut(self.centred), self.norms[i0:i1], cut(self.scale))


class KernelEvaluator:
    """k(x_i, x_j) and kernel-matrix products in float64, for training points ``x``, a tile at a time.

    Never stores more than one ``tile`` x ``tile`` block of the kernel. Raw pixels (every value k/255) take
    the exact int8 path described in the module docstring; anything else a float64 product of data centred on
    the training mean. ``exact_pixels=False`` forces the float64 path. Products with tiles use OpenBLAS through
    numpy (several times faster than torch's MKL for n x 20 right-hand sides on AMD CPUs).
    """

    MAX_EXPONENT = 300.0  # |log u| above this: squared distances instead of the factored Gaussian

    def __init__(self, x, kernel: str = "gaussian", bandwidth: float = 1.0, *, exact_pixels: bool = True):
        self.kernel = check_choice(kernel, "kernel", KERNELS)
        self.bandwidth = float(bandwidth)
        x = _as_tensor(x)
        self.d = x.shape[1]
        codes = pixel_codes(x) if exact_pixels and self.d * 128 ** 2 < 2 ** 31 else None
        self.mode = "int8 pixels" if codes is not None and _int8_matmul_works() else "float64"
        self.centre = torch.full((self.d,), 128.0 / PIXEL_LEVELS, dtype=torch.float64) if self.mode != "float64" \
            else x.mean(0)
        self.points = self.prepare(x)

    def __len__(self) -> int:
        return len(self.points)

    def prepare(self, x) -> _Points:
        """Rows of ``x`` in the form tiles use (pixel codes where this evaluator and ``x`` allow)."""
        if isinstance(x, _Points):
            return x
        x = _as_tensor(x)
        codes = pixel_codes(x) if self.mode != "float64" else None
        if codes is not None:
            c64 = codes.to(torch.int64)
            norms = (c64 * c64).sum(1).to(torch.float64)
            real = norms / PIXEL_LEVELS ** 2
            centred = None
        else:
            centred = x - self.centre
            norms = real = (centred * centred).sum(1)
        scale = None
        exponent = 0.5 * real / self.bandwidth ** 2
        if self.kernel == "gaussian" and (not len(real) or float(exponent.max()) <= self.MAX_EXPONENT):
            scale = torch.exp(-exponent)
        return _Points(codes, centred, norms, scale)

    @staticmethod
    def _centred(p: _Points) -> torch.Tensor:
        if p.centred is None:  # pixel codes paired with a float point set
            p.centred = p.codes.to(torch.float64) / PIXEL_LEVELS
        return p.centred

    def _core(self, a: _Points, b: _Points, out: torch.Tensor) -> bool:
        """Write E into ``out`` with k(a_i, b_j) = s_i E_ij t_j; returns True if s, t are the points' scales
        (the factored Gaussian), False if E is the kernel itself."""
        pixels = a.codes is not None and b.codes is not None
        unit = 1.0 / PIXEL_LEVELS ** 2 if pixels else 1.0
        if pixels:
            out.copy_(torch._int_mm(a.codes, b.codes.T))  # exact int32 dot products of the codes
        else:
            torch.mm(self._centred(a), self._centred(b).T, out=out)
        if a.scale is not None and b.scale is not None:
            out.mul_(unit / self.bandwidth ** 2).exp_()
            return True
        na = a.norms if pixels or a.codes is None else (self._centred(a) ** 2).sum(1)
        nb = b.norms if pixels or b.codes is None else (self._centred(b) ** 2).sum(1)
        out.mul_(-2.0).add_(na[:, None]).add_(nb[None, :]).clamp_min_(0.0)  # squared distances (x 255^2)
        if self.kernel == "gaussian":
            out.mul_(-0.5 * unit / self.bandwidth ** 2).exp_()
        else:
            out.sqrt_().mul_(-math.sqrt(unit) / self.bandwidth).exp_()
        return False

    def tile(self, a: _Points, b: _Points, out: torch.Tensor | None = None) -> torch.Tensor:
        """The (len(a), len(b)) float64 kernel block k(a_i, b_j), written into ``out`` if given."""
        out = torch.empty((len(a), len(b)), dtype=torch.float64) if out is None else out
        if self._core(a, b, out):
            out.mul_(a.scale[:, None]).mul_(b.scale[None, :])
        return out

    def _symmetric(self, t: torch.Tensor) -> torch.Tensor:
        """A diagonal tile of E made exactly symmetric (the float product need not be, to the last bit; the
        integer one is)."""
        if self.mode == "float64":
            t.copy_(torch.tril(t) + torch.tril(t, -1).T)
        return t

    @staticmethod
    def _buffer(tile: int) -> torch.Tensor:
        return torch.empty(tile * tile, dtype=torch.float64)

    @staticmethod
    def _view(buf: torch.Tensor, m: int, k: int) -> torch.Tensor:
        return buf[:m * k].view(m, k)

    def fill(self, out: torch.Tensor, tile: int = KERNEL_TILE, upper: FixedPointUpper | None = None) -> torch.Tensor:
        """Write the symmetric n x n kernel matrix of the training points into ``out`` (any float dtype), tile
        by tile: each off-diagonal tile is computed once (float64), rounded to ``out``'s dtype and mirrored;
        the diagonal is exactly 1. With ``upper`` (built on ``out`` with the same tile), the strict upper
        triangle receives K in 48-bit fixed point instead of the mirror."""
        n = len(self)
        buf = self._buffer(tile)
        for i0 in range(0, n, tile):
            i1 = min(i0 + tile, n)
            rows = self.points.rows(i0, i1)
            for j0 in range(0, i0, tile):
                j1 = min(j0 + tile, n)
                t = self.tile(rows, self.points.rows(j0, j1), self._view(buf, i1 - i0, j1 - j0))
                out[i0:i1, j0:j1] = t
                if upper is None:
                    out[j0:j1, i0:i1] = t.T
                else:
                    upper.write(j0, j1, i0, i1, t.T)
            t = self.tile(rows, rows, self._view(buf, i1 - i0, i1 - i0))
            t.copy_(torch.tril(t) + torch.tril(t, -1).T)  # symmetric to the last bit
            out[i0:i1, i0:i1] = t.fill_diagonal_(1.0)
            if upper is not None:
                upper.write(i0, i1, i0, i1, t)
        return out

    def product(self, v: torch.Tensor, tile: int = KERNEL_TILE) -> torch.Tensor:
        """K v in float64 for the training kernel K, without storing K: each tile below the diagonal is
        computed once and used twice (K is symmetric)."""
        n = len(self)
        v = v.to(torch.float64)
        flat = v.reshape(n, -1)
        scale = self.points.scale
        w = (flat if scale is None else flat * scale[:, None]).contiguous().numpy()
        acc = np.zeros(w.shape)
        buf = self._buffer(tile)
        with _one_blas_thread():
            for i0 in range(0, n, tile):
                i1 = min(i0 + tile, n)
                rows = self.points.rows(i0, i1)
                for j0 in range(0, i0, tile):
                    j1 = min(j0 + tile, n)
                    e = self._view(buf, i1 - i0, j1 - j0)
                    self._core(rows, self.points.rows(j0, j1), e)
                    e = e.numpy()
                    acc[i0:i1] += e @ w[j0:j1]
                    acc[j0:j1] += e.T @ w[i0:i1]
                e = self._view(buf, i1 - i0, i1 - i0)
                self._core(rows, rows, e)
                acc[i0:i1] += self._symmetric(e).numpy() @ w[i0:i1]
        out = torch.from_numpy(acc)
        return (out if scale is None else out * scale[:, None]).reshape(v.shape)

    def cross_product(self, x_new, v: torch.Tensor, tile: int = KERNEL_TILE) -> torch.Tensor:
        """K(x_new, x) v in float64, a tile at a time."""
        new = self.prepare(x_new)
        v = v.to(torch.float64)
        flat = v.reshape(len(self), -1)
        factored = new.scale is not None and self.points.scale is not None
        w = (flat * self.points.scale[:, None] if factored else flat).contiguous().numpy()
        acc = np.zeros((len(new), w.shape[1]))
        buf = self._buffer(tile)
        with _one_blas_thread():
            for i0 in range(0, len(new), tile):
                i1 = min(i0 + tile, len(new))
                rows = new.rows(i0, i1)
                for j0 in range(0, len(self), tile):
                    j1 = min(j0 + tile, len(self))
                    e = self._view(buf, i1 - i0, j1 - j0)
                    self._core(rows, self.points.rows(j0, j1), e)
                    acc[i0:i1] += e.numpy() @ w[j0:j1]
        out = torch.from_numpy(acc)
        return (out * new.scale[:, None] if factored else out).reshape((len(new),) + tuple(v.shape[1:]))


class FixedPointUpper:
    """The kernel above the diagonal in 48-bit fixed point, beside its float32 Cholesky factor below it.

    For i < j, K_ij = (H_ij + G_ij / 2^16) / 2^30 to within 2^-47 (7e-15): H (int32) is kept in the bits of the
    strict upper triangle of the float32 matrix, which :func:`blocked_cholesky_` never alters, and G (int16) in
    one array per block row of ``tile`` rows (about n^2 bytes: 3.6 GB at n = 60,000). A kernel product then
    reads 6 bytes per entry instead of computing a kernel value (an int8 product of d = 784 terms and an
    exponential), and its error is far below any interpolation tolerance. The diagonal is not stored (k(x, x)
    = 1 for both kernels).
    """

    HIGH = 2.0 ** 30
    LOW = 2.0 ** 16
    ENTRY_ERROR = 2.0 ** -46  # bounds |stored - float64 kernel value| (rounding to 2^-46, one clamped edge case)

    def __init__(self, matrix: torch.Tensor, tile: int = KERNEL_TILE):
        if matrix.dtype != torch.float32 or matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ShatteringError("FixedPointUpper needs a square float32 matrix.")
        n = len(matrix)
        self.n, self.tile = n, int(tile)
        self.ints = matrix.view(torch.int32)
        self.low = [torch.zeros((min(self.tile, n - i0), n - i0), dtype=torch.int16) for i0 in range(0, n, self.tile)]

    @staticmethod
    def nbytes(n: int, tile: int = KERNEL_TILE) -> int:
        """Bytes of the int16 arrays for n points."""
        return 2 * sum(min(tile, n - i0) * (n - i0) for i0 in range(0, n, tile))

    def write(self, i0: int, i1: int, j0: int, j1: int, t: torch.Tensor) -> None:
        """Store K[i0:i1, j0:j1] = ``t`` (float64) for a tile above the diagonal (i0 == j0: its strict upper
        part), i0 a multiple of the tile."""
        scaled = t * self.HIGH
        high = scaled.round()
        target = self.ints[i0:i1, j0:j1]
        if i0 == j0:  # a diagonal tile: leave its lower triangle (the float32 values) alone
            above = torch.ones(target.shape, dtype=torch.bool).triu_(1)
            target.copy_(torch.where(above, high.to(torch.int32), target))
        else:
            target.copy_(high)  # integers below 2^30: converted exactly
        low = scaled.sub_(high).mul_(self.LOW).round_().clamp_(-32768, 32767)
        self.low[i0 // self.tile][:, j0 - i0:j1 - i0].copy_(low)

    def product(self, v: torch.Tensor) -> torch.Tensor:
        """sum_{j != i} K_ij v_j for every i, in float64 (the off-diagonal part of K v)."""
        n, size = self.n, self.tile
        flat = v.to(torch.float64).reshape(n, -1)
        w = (flat / self.HIGH).contiguous().numpy()  # a power of two: exact
        acc = np.zeros(w.shape)
        high_buf, low_buf = torch.empty(size * size, dtype=torch.float64), torch.empty(size * size, dtype=torch.float64)
        with _one_blas_thread():
            for block, i0 in enumerate(range(0, n, size)):
                i1 = min(i0 + size, n)
                low = self.low[block]
                for j0 in range(i0, n, size):
                    j1 = min(j0 + size, n)
                    e = high_buf[:(i1 - i0) * (j1 - j0)].view(i1 - i0, j1 - j0)
                    f = low_buf[:(i1 - i0) * (j1 - j0)].view(i1 - i0, j1 - j0)
                    e.copy_(self.ints[i0:i1, j0:j1])
                    f.copy_(low[:, j0 - i0:j1 - i0])
                    e.add_(f, alpha=1.0 / self.LOW)  # H + G / 2^16: exact in float64 (47 bits)
                    if j0 == i0:
                        tri = e.triu_(1).numpy()
                        acc[i0:i1] += tri @ w[i0:i1] + tri.T @ w[i0:i1]
                    else:
                        en = e.numpy()
                        acc[i0:i1] += en @ w[j0:j1]
                        acc[j0:j1] += en.T @ w[i0:i1]
        return torch.from_numpy(acc).reshape(v.shape)


def kernel_matrix(x, kernel: str = "gaussian", bandwidth: float = 1.0, *, dtype: torch.dtype = torch.float64,
                  block_size: int = KERNEL_TILE) -> torch.Tensor:
    """The symmetric n x n kernel matrix of the rows of ``x``, built tile by tile (computed in float64, stored
    in ``dtype``); each off-diagonal tile is computed once and mirrored, so the result is exactly symmetric."""
    evaluator = KernelEvaluator(x, kernel, bandwidth)
    n = len(evaluator)
    return evaluator.fill(torch.empty((n, n), dtype=dtype), check_int(block_size, "block_size"))


def kernel_product(x_rows, x_cols, alpha: torch.Tensor, kernel: str, bandwidth: float,
                   block_size: int = KERNEL_TILE) -> torch.Tensor:
    """K(x_rows, x_cols) @ alpha in float64, a tile at a time, without storing the kernel matrix."""
    return KernelEvaluator(x_cols, kernel, bandwidth).cross_product(x_rows, alpha, block_size)


# --------------------------------------------------------------------------------------------------
# Blocked, in-place Cholesky and triangular solves
# --------------------------------------------------------------------------------------------------


def blocked_cholesky_(a: torch.Tensor, block_size: int = DEFAULT_BLOCK, *, panel_rows: int = PANEL_ROWS,
                      shift: float | None = None, shifts: list | None = None,
                      progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Factor the symmetric positive definite ``a`` = L L^T in place, one block column at a time.

    Only the lower triangle of ``a`` is read, and only the lower triangle (with the diagonal) is overwritten,
    by L; the strict upper triangle is left as it was (for a symmetric input: the input itself). Extra memory:
    a few ``block_size`` x ``block_size`` blocks and one ``panel_rows`` x ``block_size`` panel piece. Returns
    ``a``; ``torch.tril(a)`` equals ``torch.linalg.cholesky`` of the input. ``progress(done, n)`` is called
    after each block column.

    ``shift`` (for a factor used as a preconditioner): a diagonal block whose pivots are not all positive in
    this precision is factored again with ``shift`` * 10^k added to its diagonal, k = 0, 1, ..., 4, the first
    that works; the result is then the factor of the input plus a non-negative diagonal, and each such block
    is appended to ``shifts`` as ``(first_row, end_row, added)``.

    Raises
    ------
    KernelFactorizationError
        If a pivot is not positive (the matrix is not numerically positive definite), even after the shifts.
    """
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ShatteringError(f"blocked_cholesky_ needs a square matrix; got shape {tuple(a.shape)}.")
    n = a.shape[0]
    block_size = check_int(block_size, "block_size")
    panel_rows = check_int(panel_rows, "panel_rows")
    masks: dict[int, torch.Tensor] = {}

    def lower_mask(m: int) -> torch.Tensor:  # True on and below the diagonal of an m x m block
        if m not in masks:
            masks[m] = torch.ones((m, m), dtype=torch.bool).tril_()
        return masks[m]

    # Every write to a diagonal block selects (torch.where) instead of adding zeros, so the strict upper
    # triangle keeps its bits exactly, whatever they encode (KernelSolver keeps K there in fixed point).
    for k0 in range(0, n, block_size):
        k1 = min(k0 + block_size, n)
        diag = a[k0:k1, k0:k1]
        below = lower_mask(k1 - k0)
        block = torch.where(below, diag, diag.T)  # the symmetric block, from its lower half
        l11, info = torch.linalg.cholesky_ex(block)
        for power in range(5 if shift is not None and int(info) != 0 else 0):
            added = float(shift) * 10.0 ** power
            l11, info = torch.linalg.cholesky_ex(block + added * torch.eye(k1 - k0, dtype=a.dtype))
            if int(info) == 0:
                if shifts is not None:
                    shifts.append((k0, k1, added))
                break
        if int(info) != 0:
            tried = f", even with {float(shift) * 1e4:g} added to the diagonal" if shift is not None else ""
            raise KernelFactorizationError(
                f"The matrix is not numerically positive definite in {str(a.dtype).replace('torch.', '')} (pivot "
                f"{k0 + int(info):,} of {n:,}{tried}): duplicate points, too wide a bandwidth or too low a "
                "precision; use float64, fewer points, a smaller bandwidth or a ridge.")
        diag.copy_(torch.where(below, l11, diag))  # write L11 below and on the diagonal, keep the upper triangle
        if k1 < n:
            l11_t = l11.T
            for r0 in range(k1, n, panel_rows):  # L21 = A21 L11^-T, a few thousand rows at a time
                r1 = min(r0 + panel_rows, n)
                piece = a[r0:r1, k0:k1]
                piece.copy_(torch.linalg.solve_triangular(l11_t, piece, upper=True, left=False))
            for i0 in range(k1, n, block_size):  # A22 -= L21 L21^T, lower block triangle only
                i1 = min(i0 + block_size, n)
                rows = a[i0:i1, k0:k1]
                if i0 > k1:
                    a[i0:i1, k1:i0].addmm_(rows, a[k1:i0, k0:k1].T, alpha=-1.0)
                target = a[i0:i1, i0:i1]
                target.copy_(torch.where(lower_mask(i1 - i0), target - rows @ rows.T, target))
        if progress is not None:
            progress(k1, n)
    return a


def solve_lower_(a: torch.Tensor, b: torch.Tensor, block_size: int = DEFAULT_BLOCK) -> torch.Tensor:
    """b <- L^-1 b by blocked forward substitution, L the lower triangle of ``a``."""
    n = a.shape[0]
    for i0 in range(0, n, block_size):
        i1 = min(i0 + block_size, n)
        if i0:
            b[i0:i1].addmm_(a[i0:i1, :i0], b[:i0], alpha=-1.0)
        b[i0:i1] = torch.linalg.solve_triangular(torch.tril(a[i0:i1, i0:i1]), b[i0:i1], upper=False)
    return b


def solve_lower_transpose_(a: torch.Tensor, b: torch.Tensor, block_size: int = DEFAULT_BLOCK) -> torch.Tensor:
    """b <- L^-T b by blocked back substitution, L the lower triangle of ``a``."""
    n = a.shape[0]
    starts = list(range(0, n, block_size))
    for i0 in reversed(starts):
        i1 = min(i0 + block_size, n)
        if i1 < n:
            b[i0:i1].addmm_(a[i1:, i0:i1].T, b[i1:], alpha=-1.0)
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
# Memory: checked before anything heavy is computed
# --------------------------------------------------------------------------------------------------


def physical_memory() -> int | None:
    """Bytes of RAM on this machine, or None where the OS does not say."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def available_memory() -> int | None:
    """Bytes that can be allocated now without swapping: ``MemAvailable`` of /proc/meminfo (Linux), else the
    physical memory, else None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return physical_memory()


def memory_needed(n: int, dtype: torch.dtype, *, d: int = 0, block_size: int = DEFAULT_BLOCK,
                  tile: int = KERNEL_TILE, columns: int = 20) -> tuple[int, int]:
    """(bytes of the n x n matrix, bytes of everything else) for a :class:`KernelSolver` of n points in d
    dimensions: the matrix in ``dtype``; the data (float64 and int8), the Cholesky blocks and panel pieces,
    kernel tiles and a few n x ``columns`` float64 vectors of the conjugate-gradient solve."""
    item = torch.finfo(dtype).bits // 8
    b = min(block_size, n)
    tile = min(tile, n)
    factor = 6 * b * b * item + 2 * min(PANEL_ROWS, n) * b * item
    tiles = tile * tile * (8 + 4 + 8)  # float64 tile, int32 gram, one temporary
    data = n * d * (8 + 1)
    vectors = 8 * n * columns * 8
    return n * n * item, max(factor, tiles) + data + vectors + MEMORY_SLACK


def check_memory(n: int, dtype: torch.dtype, *, d: int = 0, block_size: int = DEFAULT_BLOCK,
                 tile: int = KERNEL_TILE, available: int | None = None) -> None:
    """Refuse, before allocating, an n x n kernel matrix that does not fit in the memory available now."""
    matrix, extra = memory_needed(n, dtype, d=d, block_size=block_size, tile=tile)
    have = available_memory() if available is None else available
    if have is not None and matrix + extra > have:
        other = "float32 (half the memory), " if dtype == torch.float64 else ""
        name = str(dtype).replace("torch.", "")
        raise KernelMemoryError(
            f"The {n:,} x {n:,} {name} kernel matrix needs {matrix / 1e9:.1f} GB (plus {extra / 1e9:.1f} GB of "
            f"workspace) but only {have / 1e9:.1f} GB of memory is available; use {other}fewer training points "
            "or a larger machine.")


# --------------------------------------------------------------------------------------------------
# Factor once, solve many
# --------------------------------------------------------------------------------------------------


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
        self.x = _as_tensor(x)
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
        y = _as_tensor(y)
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
                "kernel_arithmetic": self.evaluator.mode, "refinement_products": self.products,
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


# --------------------------------------------------------------------------------------------------
# The experiment behind ``shatter kernel``
# --------------------------------------------------------------------------------------------------

LABEL_CHOICES = ("true", "partial", "random")


def kernel_experiment(dataset: str = "fashion-mnist", *, kernel: str = "gaussian", features: str = "raw",
                      labels: str | list[str] = "true,random", p: float | None = None, n_train: int = 5000,
                      n_test: int | None = None, ridge: float = 0.0, bandwidth: float | None = None,
                      dtype: str = "float64", block_size: int = DEFAULT_BLOCK, whitening: str = "none",
                      seed: int = 0, feature_options: dict | None = None, tol: float | None = None,
                      max_steps: int | None = None) -> dict:
    """Interpolate ``n_train`` images of ``dataset`` with a kernel, for one or several label sets (one
    factorization), and report training error, residual, test error and norm for each.

    ``whitening="none"`` (default) is the paper's "no preprocessing": pixels scaled to [0, 1]. ``labels`` is a
    comma-separated list of "true", "partial" (needs ``p``) and "random". ``tol`` and ``max_steps`` bound the
    refinement (:meth:`KernelSolver.solve`). ``bandwidth=None``: :data:`BANDWIDTH_FRACTION` of the median
    pairwise distance on raw pixels, :data:`TRANSFORMED_BANDWIDTH_FRACTION` of it on transformed features.
    Every option, the size of the data set and the memory the kernel matrix needs are checked before anything
    is loaded or computed. Returns a JSON-ready dict.
    """
    from ..data import dataset_info
    from .features import compute_features
    from .sample import load_sample

    start = time.perf_counter()
    from .features import FEATURES

    check_choice(kernel, "kernel", KERNELS)
    check_choice(features, "features", FEATURES)
    names = check_choices(labels, "labels", LABEL_CHOICES)
    n_train = check_int(n_train, "n_train", maximum=dataset_info(dataset).n_train)
    p = None if p is None else check_probability(p)
    if ridge is not None:
        ridge = check_float(ridge, "ridge", low=0.0)
    check_choice(dtype, "dtype", tuple(DTYPES))
    block_size = check_int(block_size, "block_size")
    if tol is not None:
        check_float(tol, "tol", low=0.0)
    if max_steps is not None:
        check_int(max_steps, "max_steps", minimum=0)
    check_memory(n_train, DTYPES[dtype], block_size=block_size)
    sample = load_sample(dataset, n_train, n_test, seed=seed, whitening=whitening)
    label_sets = {name: sample.labels(name, p, seed) for name in names}
    t0 = time.perf_counter()
    f_train, f_test, finfo = compute_features(features, sample.data.x_train, sample.data.x_test, seed=seed,
                                              **(feature_options or {}))
    t_features = time.perf_counter() - t0
    solver = KernelSolver(f_train, kernel, bandwidth, ridge=ridge, dtype=dtype, block_size=block_size, seed=seed,
                          bandwidth_fraction=None if features == "raw" else TRANSFORMED_BANDWIDTH_FRACTION)
    results = fit_label_sets(solver, label_sets, sample.num_classes, true_labels=sample.data.y_train,
                             x_test=f_test, y_test=sample.data.y_test, tol=tol, max_steps=max_steps)
    solve_info = solver.describe()
    solve_info["seconds"]["features"] = t_features
    if results:
        first = results[0].extra
        solve_info["seconds"].update(solve=first["seconds_solve"], refinement=first["seconds_refinement"],
                                     predict=first["seconds_predict"])
    return {"dataset": sample.name, "n_train": sample.n_train, "n_test": sample.n_test, "classes": sample.num_classes,
            "whitening": whitening, "p": p, **finfo, **solve_info,
            "results": [r.as_dict() for r in results], "seconds_total": time.perf_counter() - start}
