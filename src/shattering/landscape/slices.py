"""One- and two-dimensional slices of a loss landscape, and what is read off them.

- The line between two points (Goodfellow, Vinyals and Saxe, ICLR 2015, "Qualitatively characterizing neural
  network optimization problems"): theta(alpha) = (1 - alpha) theta_0 + alpha theta_1, from the initialization to
  the solution (alpha in [-0.5, 1.5]), or between two solutions (Im, Tao and Branson 2016).
- The barrier between two solutions: the largest rise of the loss above the straight line joining the end losses,
  max over alpha in [0, 1] of L(alpha) - ((1 - alpha) L(0) + alpha L(1)) (0 when the path never rises above it).
- A plane: theta + a d_1 + b d_2 over a grid of (a, b), d_1 and d_2 filter-normalized (Li et al. 2018).
- The curvature of a one-dimensional slice at its centre, by the central second difference
  (L(h) - 2 L(0) + L(-h)) / h^2 on the grid's spacing h (Li et al.'s reading of sharpness along random
  filter-normalized directions).
- A trajectory's principal directions (Li et al. 2018, Section 7): the snapshots theta_i minus the final theta_n,
  stacked as the rows of M; the two leading right singular vectors of M are the directions, each snapshot's
  coordinates its projections on them, with the share of the variance they explain.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..errors import ConfigError


def line_coefficients(alphas: Sequence[float]) -> torch.Tensor:
    """The line (1 - alpha) theta_0 + alpha theta_1 as theta_0 + alpha (theta_1 - theta_0): one coefficient per
    point, the direction theta_1 - theta_0."""
    return torch.as_tensor(list(alphas), dtype=torch.float64).reshape(-1, 1)


def grid_coefficients(a: Sequence[float], b: Sequence[float]) -> torch.Tensor:
    """Every (a_i, b_j) of a plane's grid, row by row (b varies fastest): shape (len(a) len(b), 2)."""
    aa, bb = torch.meshgrid(torch.as_tensor(list(a), dtype=torch.float64),
                            torch.as_tensor(list(b), dtype=torch.float64), indexing="ij")
    return torch.stack([aa.reshape(-1), bb.reshape(-1)], dim=1)


def barrier(alphas: Sequence[float], losses: Sequence[float]) -> dict:
    """The barrier of a line from alpha = 0 to 1 (module docstring): ``height`` and where (``alpha``); the
    points outside [0, 1] are ignored, and the ends must be on the grid."""
    a, loss = np.asarray(alphas, dtype=float), np.asarray(losses, dtype=float)
    ends = [np.flatnonzero(np.isclose(a, t)) for t in (0.0, 1.0)]
    if any(len(e) == 0 for e in ends):
        raise ConfigError("The line's alphas must include 0 and 1 (the two end points) to measure a barrier.")
    l0, l1 = loss[ends[0][0]], loss[ends[1][0]]
    inside = (a >= 0) & (a <= 1)
    rise = loss[inside] - ((1 - a[inside]) * l0 + a[inside] * l1)
    i = int(np.argmax(rise))
    return {"height": float(max(rise[i], 0.0)), "alpha": float(a[inside][i]), "loss_0": float(l0),
            "loss_1": float(l1)}


def largest_rise(alphas: Sequence[float], losses: Sequence[float]) -> dict:
    """Along a line from alpha = 0 to 1: the largest increase of the loss from one point to a later one,
    max_{i < j} L(alpha_j) - L(alpha_i) over the points in [0, 1] (0 where the loss never rises: Goodfellow et
    al.'s "decreases monotonically"), with where it starts and ends."""
    a, loss = np.asarray(alphas, dtype=float), np.asarray(losses, dtype=float)
    inside = np.flatnonzero((a >= 0) & (a <= 1))
    order = inside[np.argsort(a[inside])]
    best, lowest, at = 0.0, 0, (None, None)
    for k in range(1, len(order)):
        if loss[order[k - 1]] < loss[order[lowest]]:
            lowest = k - 1
        rise = loss[order[k]] - loss[order[lowest]]
        if rise > best:
            best, at = float(rise), (float(a[order[lowest]]), float(a[order[k]]))
    return {"rise": best, "from_alpha": at[0], "to_alpha": at[1]}


def central_curvature(coordinates: Sequence[float], losses: Sequence[float]) -> float:
    """(L(h) - 2 L(0) + L(-h)) / h^2 at the grid point 0, h the spacing to its neighbours (which must be equal)."""
    c, loss = np.asarray(coordinates, dtype=float), np.asarray(losses, dtype=float)
    order = np.argsort(c)
    c, loss = c[order], loss[order]
    zero = np.flatnonzero(np.isclose(c, 0.0))
    if len(zero) == 0 or zero[0] == 0 or zero[0] == len(c) - 1:
        raise ConfigError("A slice's curvature needs the point 0 and a neighbour on each side on its grid.")
    i = zero[0]
    h_left, h_right = c[i] - c[i - 1], c[i + 1] - c[i]
    if not np.isclose(h_left, h_right):
        raise ConfigError("A slice's curvature needs equal spacing on both sides of 0.")
    return float((loss[i + 1] - 2 * loss[i] + loss[i - 1]) / h_right ** 2)


def principal_directions(snapshots: torch.Tensor, final: torch.Tensor) -> dict:
    """Li et al.'s Section 7: the rows of ``snapshots`` (flat weight vectors) minus ``final``; the two leading
    right singular vectors (``directions``, each of unit norm), each snapshot's ``coordinates`` on them, and the
    ``explained`` share of the squared deviations each direction carries."""
    m = (snapshots.double() - final.double().reshape(1, -1))
    if m.shape[0] < 2:
        raise ConfigError("A trajectory's principal directions need at least two snapshots besides the final "
                          "weights; keep more (the snapshots probe, every= or epochs=).")
    _, s, vh = torch.linalg.svd(m, full_matrices=False)
    directions = vh[:2]
    coordinates = m @ directions.T
    total = float((s ** 2).sum())
    return {"directions": directions, "coordinates": coordinates,
            "explained": [float(v ** 2) / total if total > 0 else 0.0 for v in s[:2]]}
