"""The pass over a layer's N x N squared distances that the pairwise estimators share (:func:`pairwise_sums`):
the Kolchinsky-Tracey log-sums of :func:`shattering.information.kde_information_bounds` and the neighbour counts
of :func:`shattering.information.knn_label_information`.

The N x N matrices are the probe's cost, and every pass over them is memory-bound. The distances are float64 on
the rows as given wherever neighbours are counted (their ties must fall as exact arithmetic puts them) and on
layers of up to :data:`FLOAT32_UNITS` units, where the product is cheap. The Kolchinsky-Tracey sums alone of a wider
layer take them in float32 where the product is most of the work and its rounding moves a term by at most
:data:`FLOAT32_TERM_ERROR` of itself (:func:`squared_distance_blocks`); a layer whose spread would make it coarser,
or overflow float32, keeps float64.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

ROW_BLOCK = 1000  # at most this many rows of the N x N distance matrix held at once...
BLOCK_ENTRIES = 5_000_000  # ...and at most this many entries (40 MB of float64: 1000 rows up to N = 5000)
FLOAT32_UNITS = 128  # wider layers: their distances for the KDE sums alone in float32 (squared_distance_blocks)
FLOAT32_TERM_ERROR = 1e-3  # ...where float32's rounding moves a term exp(-D_ij / s) by about this part of itself
U32 = 2.0**-24  # float32's unit roundoff
EXP_FLOOR = -87.0  # the exponents of pairwise_sums' float32 exponentials are floored here (its docstring)


def squared_distance_blocks(t: np.ndarray, float32_error: float = 0.0) -> Iterator[tuple[int, torch.Tensor]]:
    """The N x N matrix of squared Euclidean distances ||t_i - t_j||^2 by row blocks: (first row, block).

    Each entry is ||a||^2 + ||b||^2 - 2 a.b (one matrix product per block, torch's threads), clipped at 0, the
    diagonal exactly 0; a block has at most :data:`ROW_BLOCK` rows and :data:`BLOCK_ENTRIES` entries. In float64
    by default, on the rows as given (integer-valued rows then give exact integers, ties included). With
    ``float32_error`` > 0, on a layer of more than :data:`FLOAT32_UNITS` units, the rows are centred (t less its
    column means, in float64: no distance changes, the norms shrink, and with them the rounding of the product
    form) and the product is float32 if its rounding, about u sqrt(D) (||a||^2 + ||b||^2) for D units and
    u = 6e-8 (at most (D + 4) u (||a|| + ||b||)^2: Higham, "Accuracy and stability of numerical algorithms",
    2002, Section 3.1), stays below ``float32_error`` for the largest centred norms; float64 otherwise (large or
    overflowing norms). Measured on a trained 1024-unit tanh layer, whose median squared distance is 43 and
    largest centred squared norm 38: at most 2.3e-5 off."""
    import torch

    n, units = t.shape
    rows = max(1, min(ROW_BLOCK, BLOCK_ENTRIES // n))
    values = np.asarray(t, dtype=np.float64)
    dtype = torch.float64
    if float32_error > 0 and units > FLOAT32_UNITS:
        centred = values - values.mean(axis=0)
        largest = float(np.einsum("ij,ij->i", centred, centred).max())
        if U32 * math.sqrt(units) * 2.0 * largest <= float32_error:
            values, dtype = centred, torch.float32
    rows_t = torch.from_numpy(np.ascontiguousarray(values)).to(dtype)
    norms = (rows_t * rows_t).sum(dim=1)
    for start in range(0, n, rows):
        block = rows_t[start:start + rows]
        sq = torch.addmm(norms[start:start + len(block), None], block, rows_t.T, alpha=-2.0)
        sq.add_(norms[None, :]).clamp_(min=0.0)
        sq[torch.arange(len(block)), torch.arange(start, start + len(block))] = 0.0
        yield start, sq


@dataclass(frozen=True)
class PairwiseSums:
    """What one pass over the squared distances gives (:func:`pairwise_sums`): per scale s, ``all[s]`` the sum
    over i of ln sum_j exp(-D_ij / s) and ``same[s]`` (N,) the same sum over j of i's class only; ``counts`` the
    kNN counts m_i of :func:`shattering.information.knn_label_information` (None unless asked)."""

    all: dict[float, float]
    same: dict[float, np.ndarray]
    counts: np.ndarray | None


def pairwise_sums(t: np.ndarray, y: np.ndarray, scales: Sequence[float], k: np.ndarray | None = None) -> PairwiseSums:
    """One pass over the N x N squared distances D (:func:`squared_distance_blocks`) for every pairwise estimator
    of a layer: the Kolchinsky-Tracey log-sums at each of ``scales`` over all examples and over each example's
    class (the mixture and the class-conditional mixtures share every distance), and, with ``k`` (the neighbour
    count of each example), the kNN counts: the k_i-th smallest distance within i's class (i itself, at 0, the
    smallest), then the number of entries of the row at or below it, less i (both from the same numbers, so the
    k-th neighbour is counted). The distances are float64 where neighbours are counted; for the sums alone of a
    layer of more than :data:`FLOAT32_UNITS` units they are float32 where that moves a term exp(-D_ij / s) by at
    most :data:`FLOAT32_TERM_ERROR` of itself at the smallest scale (:func:`squared_distance_blocks`).

    The examples are taken in the order of their labels (a stable sort; the results come back in the given
    order), so that each class is a contiguous block of columns: its sums and neighbours are read from slices,
    without masks. The exponentials exp(-D_ij / s) and their sums within a class are float32 (the logarithms of the
    row sums float64): every row's sum is at least exp(0) = 1, so their relative error, at most N_y x 6e-8 for a
    class of N_y examples and about 1e-7 in practice, moves each value by as many bits; an error e in D_ij moves a
    term by e / s of itself. The exponents are floored at :data:`EXP_FLOOR`: a term below exp(-87) = 1.6e-38 is
    nothing beside a row's 1, and torch's float32 exp takes a slow path for results below float32's normal range
    (docs/information.md, "What the probe costs")."""
    import torch

    y = np.asarray(y, dtype=np.int64)
    order = np.argsort(y, kind="stable")
    t, y_sorted = np.asarray(t, dtype=np.float64)[order], y[order]
    first = np.unique(y_sorted, return_index=True)[1]
    scales = sorted(set(float(s) for s in scales), reverse=True)
    total = {s: 0.0 for s in scales}
    same = {s: np.empty(len(t)) for s in scales}
    counts = None if k is None else np.empty(len(t), dtype=np.int64)
    k_sorted = None if k is None else np.asarray(k)[order]
    ends = np.append(first[1:], len(y_sorted))
    # float32 distances for the KDE sums alone, where they move a term by at most FLOAT32_TERM_ERROR of itself
    float32_error = 0.0 if k is not None or not scales else FLOAT32_TERM_ERROR * min(scales)
    terms = None
    for start, sq in squared_distance_blocks(t, float32_error):
        stop = start + len(sq)
        rows, own = np.arange(len(sq)), np.searchsorted(first, np.arange(start, stop), side="right") - 1
        sq32 = sq.float() if scales and sq.dtype != torch.float32 else sq
        if scales and (terms is None or terms.shape != sq.shape):
            terms = torch.empty(sq.shape, dtype=torch.float32)
        for scale in scales:
            torch.mul(sq32, -1.0 / scale, out=terms).clamp_(min=EXP_FLOOR).exp_()
            # each row's sum over each class's columns: D >= 0 and D_ii = 0, so the largest term of every row is
            # exp(0) = 1 and the plain sum of the exponentials is the log-sum-exp's (nothing to subtract)
            by_class = np.add.reduceat(terms.numpy(), first, axis=1).astype(np.float64)
            total[scale] += float(np.log(by_class.sum(axis=1)).sum())
            same[scale][start:stop] = np.log(by_class[rows, own])
        if counts is not None:
            block = sq.numpy()
            kth = np.concatenate([  # one k per class (k, or N_y - 1 in a small class); i itself, at 0, is the 0th
                np.partition(block[r0:r1, a:b], int(k_sorted[start + r0]), axis=1)[:, int(k_sorted[start + r0])]
                for a, b in zip(first, ends, strict=True) if a < stop and b > start
                for r0, r1 in [(max(a, start) - start, min(b, stop) - start)]])
            counts[start:stop] = (sq <= torch.from_numpy(kth)[:, None]).sum(dim=1, dtype=torch.int32).numpy() - 1
    back = np.empty_like(order)
    back[order] = np.arange(len(order))  # sorted position of each given example
    return PairwiseSums(total, {s: v[back] for s, v in same.items()}, None if counts is None else counts[back])
