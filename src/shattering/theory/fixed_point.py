"""The kernel matrix stored in 48-bit fixed point beside its float32 Cholesky factor, for the refinement of
the exact kernel interpolation of Eq. (3) in Zhang et al., "Understanding deep learning requires rethinking
generalization" (ICLR 2017, arXiv 1611.03530), Section 5 and Appendix D.

Only the lower triangle of the matrix is overwritten by :func:`~shattering.theory.linear_algebra.blocked_cholesky_`
and never by arithmetic on the strict upper triangle, which therefore keeps K: in float64 runs as the mirror of
the lower half, in float32 runs as 48-bit fixed point (:class:`FixedPointUpper`: int32 in those bits plus an
int16 array, n^2 bytes more, kept when the memory allows).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ShatteringError
from .kernel_evaluator import KERNEL_TILE, one_blas_thread


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
        with one_blas_thread():
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
