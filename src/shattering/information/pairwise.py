"""The pass over a layer's N x N squared distances that the pairwise estimators share (:func:`pairwise_sums`):
the Kolchinsky-Tracey log-sums of :func:`shattering.information.kde_information_bounds` and the neighbour counts
of :func:`shattering.information.knn_label_information`.

The N x N matrices are the probe's cost, and every pass over them is memory-bound. The distances are float64
wherever neighbours are counted (their ties must fall as exact arithmetic puts them) and on layers of up to
:data:`FLOAT32_UNITS` units, where the product is cheap; the Kolchinsky-Tracey sums alone of a wider layer take
them in float32, where the product is most of the work, at a cost in bits stated in :func:`squared_distance_blocks`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

ROW_BLOCK = 1000  # at most this many rows of the N x N distance matrix held at once...
BLOCK_ENTRIES = 5_000_000  # ...and at most this many entries (40 MB of float64: 1000 rows up to N = 5000)
FLOAT32_UNITS = 128  # wider layers: their distances for the KDE sums alone in float32 (squared_distance_blocks)
EXP_FLOOR = -87.0  # the exponents of pairwise_sums' float32 exponentials are floored here (its docstring)


def squared_distance_blocks(t: np.ndarray, dtype: torch.dtype) -> Iterator[tuple[int, torch.Tensor]]:
    """The N x N matrix of squared Euclidean distances ||t_i - t_j||^2 by row blocks: (first row, block).

    The rows are centred first (t less its column means, in float64: no distance changes, the norms shrink, and
    with them the rounding of the product form), then taken in ``dtype``. Each entry is ||a||^2 + ||b||^2 - 2 a.b
    (one matrix product per block, torch's threads), clipped at 0, the diagonal exactly 0; a block has at most
    :data:`ROW_BLOCK` rows and :data:`BLOCK_ENTRIES` entries. In float32 an entry errs by about u sqrt(D)
    (||a||^2 + ||b||^2), u = 6e-8, for D units (at most (D + 4) u (||a|| + ||b||)^2: Higham, "Accuracy and
    stability of numerical algorithms", 2002, Section 3.1): at most 2.3e-5 measured on a trained 1024-unit tanh
    layer whose median squared distance is 43, so that a term exp(-D_ij / s) moves by about 1e-4 of itself at
    s = 0.2 and a value by less (2e-6 bits in the tests' 300-unit case, against the formulas in float64)."""
    import torch

    n = len(t)
    rows = max(1, min(ROW_BLOCK, BLOCK_ENTRIES // n))
    centred = np.asarray(t, dtype=np.float64)
    centred = torch.from_numpy(centred - centred.mean(axis=0)).to(dtype)
    norms = (centred * centred).sum(dim=1)
    for start in range(0, n, rows):
        block = centred[start:start + rows]
        sq = torch.addmm(norms[start:start + len(block), None], block, centred.T, alpha=-2.0)
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
    k-th neighbour is counted). The distances are float64 where neighbours are counted or the layer has at most
    :data:`FLOAT32_UNITS` units, float32 otherwise (:func:`squared_distance_blocks`).

    The examples are taken in the order of their labels (a stable sort; the results come back in the given
    order), so that each class is a contiguous block of columns: its sums and neighbours are read from slices,
    without masks. The exponentials exp(-D_ij / s) and their sums within a class are float32 (the logarithms of the
    row sums float64): every row's sum is at least exp(0) = 1, so their relative error, at most N_y x 6e-8 for a
    class of N_y examples and about 1e-7 in practice, moves each value by as many bits; an error e in D_ij moves a
    term by e / s of itself. The exponents are floored at :data:`EXP_FLOOR`: a term below exp(-87) = 1.6e-38 is
    nothing beside a row's 1, and torch's float32 exp takes a slow path for results below float32's normal range
    (12-36x slower, measured on AMD EPYC with AVX2)."""
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
    dtype = torch.float64 if k is not None or t.shape[1] <= FLOAT32_UNITS else torch.float32
    terms = None
    for start, sq in squared_distance_blocks(t, dtype):
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
