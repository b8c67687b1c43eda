"""Kernel matrices and kernel-matrix products in float64, a tile at a time: the evaluator behind the exact
kernel interpolation of Eq. (3) in Zhang et al., "Understanding deep learning requires rethinking
generalization" (ICLR 2017, arXiv 1611.03530), Section 5 and Appendix D (Table 3).

Kernel values are computed in float64, tile by tile (:class:`KernelEvaluator`), never more than one tile of
the kernel at a time. Inputs on the 8-bit pixel grid (every value k/255, as raw images scaled to [0, 1]) are
taken as exactly k/255: with codes c = 255 x - 128 in [-128, 127], their squared distances are exact integers
(in units of 1/255^2) from a product of the codes, and three products give them exactly:

- ``int8``: ``torch._int_mm`` (int8 x int8 -> int32), exact while d 128^2 < 2^31;
- ``float32``: float32 products of column blocks of at most 1,024 codes, summed in float64: every partial sum
  of a block is an integer below 1,024 x 128^2 = 2^24, which float32 holds exactly, in any summation order;
- ``float64``: a float64 product (partial sums below 2^53).

Which is fastest depends on the machine (int8 dot-product instructions make the first fastest on some CPUs and
the slowest on others), so it is measured once per machine and torch version on a tile of pixel codes and cached
(:func:`pixel_product`). Other inputs use a float64 product of centred data.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from .. import _openmp
from ..files import atomic_write_json, read_json
from ..lease import cache_dir, warn
from ..validation import check_choice, check_int
from .kernel_functions import KERNELS, as_float64

try:  # threadpoolctl comes with scikit-learn; without it the tile products run on OpenBLAS's own threads
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

if TYPE_CHECKING:  # FixedPointUpper imports this module's tile size
    from .fixed_point import FixedPointUpper

KERNEL_TILE = 2048  # side of the kernel tiles computed (or read from the stored kernel) at once
PIXEL_LEVELS = 255  # inputs on the grid k / PIXEL_LEVELS, 0 <= k <= 255, are treated as exact 8-bit pixels


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


PRODUCTS = ("int8", "float32", "float64")  # the exact products of pixel codes (the module docstring)
FLOAT32_BLOCK = 1024  # columns per float32 block: 1,024 x 128^2 = 2^24, float32's last exact integer
PRODUCT_CACHE = "kernel_product.json"
PRODUCT_TILE = (512, 784)  # the timed product: a 512 x 512 tile of 784 codes (an MNIST-sized image)


@functools.lru_cache(maxsize=1)
def _int8_matmul_works() -> bool:
    """Whether ``torch._int_mm`` (int8 x int8 -> int32) runs here and is exact."""
    try:
        a = torch.arange(-128, 128, dtype=torch.int8).reshape(16, 16)
        ref = a.to(torch.int64) @ a.to(torch.int64).T
        return bool(torch.equal(torch._int_mm(a, a.T).to(torch.int64), ref))
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


def codes_as(codes: torch.Tensor, product: str) -> torch.Tensor:
    """Pixel codes (int8) in the dtype ``product`` multiplies."""
    return codes if product == "int8" else codes.to(torch.float32 if product == "float32" else torch.float64)


def codes_product(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, product: str) -> torch.Tensor:
    """``out`` (float64) = a b^T for pixel codes ``a``, ``b`` held as :func:`codes_as` gives them, exactly."""
    if product == "int8":
        return out.copy_(torch._int_mm(a, b.T))
    if product == "float64":
        return torch.mm(a, b.T, out=out)
    d = a.shape[1]
    out.copy_(a[:, :FLOAT32_BLOCK] @ b[:, :FLOAT32_BLOCK].T)
    for c in range(FLOAT32_BLOCK, d, FLOAT32_BLOCK):  # each block's sum exact in float32; the blocks' in float64
        out.add_((a[:, c:c + FLOAT32_BLOCK] @ b[:, c:c + FLOAT32_BLOCK].T).to(torch.float64))
    return out


def _time_products(candidates: tuple[str, ...]) -> dict[str, float]:
    """Seconds of one :data:`PRODUCT_TILE` product of pixel codes by each candidate (best of 3, after a warm-up),
    interleaved; the global random state is left alone."""
    n, d = PRODUCT_TILE
    codes = torch.randint(-128, 128, (n, d), dtype=torch.int8, generator=torch.Generator().manual_seed(0))
    held = {name: codes_as(codes, name) for name in candidates}
    out = torch.empty((n, n), dtype=torch.float64)
    best = dict.fromkeys(candidates, math.inf)
    for round_ in range(4):
        for name in candidates:
            start = time.perf_counter()
            codes_product(held[name], held[name], out, name)
            if round_:
                best[name] = min(best[name], time.perf_counter() - start)
    return best


@functools.lru_cache(maxsize=1)
def pixel_product() -> dict:
    """The exact product of pixel codes this machine computes fastest: ``{"product": name, "seconds": {name:
    seconds of a 512 x 512 x 784 tile}, "source": "measured" | "cache"}``. Measured once per CPU (model, flags,
    cores) and torch version, cached in ``<cache>/kernel_product.json``; a cache that cannot be read or written
    costs one warning and the measurement is used as it is."""
    key = f"{_openmp.cpu_identity()} | torch {torch.__version__}"
    path = cache_dir() / PRODUCT_CACHE
    cached = (read_json(path) or {}).get(key)
    if isinstance(cached, dict) and cached.get("product") in PRODUCTS and isinstance(cached.get("seconds"), dict):
        return {**cached, "source": "cache"}
    candidates = PRODUCTS if _int8_matmul_works() else PRODUCTS[1:]
    seconds = _time_products(candidates)
    choice = {"product": min(seconds, key=seconds.get), "seconds": seconds}
    try:
        atomic_write_json(path, {**(read_json(path) or {}), key: choice})
    except OSError as exc:
        warn(f"could not cache the kernel product's timing in {path} ({exc.strerror or exc}); measured again "
             "next time.")
    return {**choice, "source": "measured"}


def one_blas_thread():
    """A context in which numpy's OpenBLAS runs on one thread: the n x 20 tile products are memory-bound, and
    OpenBLAS threads that spin between calls would compete with torch's own threads for the cores."""
    if threadpool_limits is None:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


@dataclass
class _Points:
    """Rows prepared for kernel tiles.

    ``codes``: pixel codes, x = (codes + 128) / 255 (int8, or float where that product is faster), with
    ``norms`` = ||codes||^2 (exact integers); or
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
    the exact path of pixel codes described in the module docstring (``mode`` "pixel codes", multiplied by
    ``code_product``: the one measured fastest here, :func:`pixel_product`, unless given); anything else a float64
    product of data centred on the training mean (``mode`` "float64"). ``exact_pixels=False`` forces the float64
    path. Products with tiles use OpenBLAS through numpy (several times faster than torch's MKL for n x 20
    right-hand sides on some CPUs).
    """

    MAX_EXPONENT = 300.0  # |log u| above this: squared distances instead of the factored Gaussian

    def __init__(self, x, kernel: str = "gaussian", bandwidth: float = 1.0, *, exact_pixels: bool = True,
                 product: str | None = None):
        self.kernel = check_choice(kernel, "kernel", KERNELS)
        self.bandwidth = float(bandwidth)
        x = as_float64(x)
        self.d = x.shape[1]
        int8_fits = self.d * 128 ** 2 < 2 ** 31 and _int8_matmul_works()  # int32 partial sums, and int8 here
        if product is not None:
            check_choice(product, "product", PRODUCTS if int8_fits else PRODUCTS[1:], of="KernelEvaluator")
        codes = pixel_codes(x) if exact_pixels else None
        self.code_product = None
        if codes is not None:
            measured = pixel_product()
            allowed = {k: s for k, s in measured["seconds"].items() if k != "int8" or int8_fits}
            self.code_product = product or min(allowed, key=allowed.get)
        self.mode = "pixel codes" if codes is not None else "float64"
        self.centre = torch.full((self.d,), 128.0 / PIXEL_LEVELS, dtype=torch.float64) if self.mode != "float64" \
            else x.mean(0)
        self.points = self.prepare(x)

    def __len__(self) -> int:
        return len(self.points)

    def prepare(self, x) -> _Points:
        """Rows of ``x`` in the form tiles use (pixel codes where this evaluator and ``x`` allow)."""
        if isinstance(x, _Points):
            return x
        x = as_float64(x)
        codes = pixel_codes(x) if self.mode != "float64" else None
        if codes is not None:
            c64 = codes.to(torch.int64)
            norms = (c64 * c64).sum(1).to(torch.float64)
            real = norms / PIXEL_LEVELS ** 2
            codes, centred = codes_as(codes, self.code_product), None
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
            codes_product(a.codes, b.codes, out, self.code_product)  # exact integer dot products of the codes
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
        with one_blas_thread():
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
        with one_blas_thread():
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
