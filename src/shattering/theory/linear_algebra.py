"""Blocked, in-place Cholesky factorization and triangular solves: the linear algebra of the exact kernel
interpolation of Eq. (3) in Zhang et al., "Understanding deep learning requires rethinking generalization"
(ICLR 2017, arXiv 1611.03530), Section 5 and Appendix D, where one n x n matrix must serve every label set.

:func:`blocked_cholesky_` factors in place, one block column at a time (diagonal block by
``torch.linalg.cholesky``, panel by triangular solves a few thousand rows at a time, trailing lower blocks by
in-place ``addmm_``), so the whole solve holds one n x n matrix (28.8 GB at n = 60,000 in float64, 14.4 GB in
float32) plus a few blocks. Only the lower triangle is overwritten, and never by arithmetic on the strict upper
triangle, which keeps the factored matrix (:func:`symmetric_product_from_upper` multiplies by it).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import ShatteringError
from ..validation import check_int

DEFAULT_BLOCK = 2048  # block size of the factorization
PANEL_ROWS = 8192  # rows of a Cholesky panel solved at once (bounds the temporary memory)


class KernelFactorizationError(ShatteringError, ArithmeticError):
    """The kernel matrix is not numerically positive definite."""


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
