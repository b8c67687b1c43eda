"""How well a complexity measure ranks the generalization gap of many trained networks, judged as Jiang, Neyshabur,
Mobahi, Krishnan and Bengio (ICLR 2020, "Fantastic generalization measures and where to find them") and
Dziugaite et al. (NeurIPS 2020, "In search of robust measures of generalization") judge it.

The runs are rows of a table (a pandas DataFrame, or anything ``pandas.DataFrame`` takes): one column per
hyper-parameter axis (any hashable values: the model, the optimizer, the batch size, ...), the gap, and the
measures. Every statistic compares runs in pairs:

- Kendall's tau-a over the pairs, Jiang et al.'s tau (their Eq. 2): tau = (1 / (n (n - 1))) sum over ordered
  pairs i != j of sign(mu_i - mu_j) sign(g_i - g_j). No self-pairs; a pair tied on either side adds 0 and still
  counts in the denominator (a measure blind to a difference is not credited for it). :func:`kendall_tau_b`
  (ties left out of the denominator, as scipy's kendalltau) is here too, for the tables that use it.
- The granulated tau (their Eq. 3): for axis i, the runs grouped by their values on every other axis (a cell:
  runs that differ in axis i only), tau within each cell of two or more runs, averaged over the cells (psi_i);
  Psi the mean of psi_i over the axes.
- The conditional mutual information (their Section 6): over ordered pairs of runs, V_mu = sign(mu_i - mu_j)
  and V_g = sign(g_i - g_j); for a set S of at most two axes, U_S = the two runs' values on S; I(V_mu; V_g | U_S)
  = sum_u p(u) I(V_mu; V_g | U_S = u), every cell weighted by its share of the pairs, normalized by H(V_g | U_S);
  the measure's score is the smallest over S (S empty: the plain mutual information). Pairs tied on the gap carry
  no sign to predict and are left out; a tie on the measure is a third value of V_mu (a constant measure has
  V_mu = 0 always, and so no information). A set S that decides V_g alone (H(V_g | U_S) = 0) leaves nothing to
  explain and is skipped, and said.
- The worst case over environments (Dziugaite et al.): an environment is a cell of the granulated tau (runs that
  differ in one axis only, the others fixed); in each, the sign error is the share of its pairs (gap not tied)
  whose measure orders them against the gap, a tie on the measure counting one half; the measure is judged by the
  largest sign error over the environments, an average hiding what the worst case shows.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError


def _finite(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)


def _sign(v: float) -> int:
    return int(v > 0) - int(v < 0)


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's tau-b of the pairs (x[i], y[i]) (ties counted as in scipy.stats.kendalltau); None for fewer
    than two pairs or where either side is constant (no ranking to correlate). Pairs with a value that is not a
    finite number are left out."""
    if len(x) != len(y):
        raise ValueError(f"kendall_tau_b needs as many x as y values; got {len(x)} and {len(y)}.")
    pairs = [(a, b) for a, b in zip(x, y, strict=True) if _finite(a) and _finite(b)]
    concordant = discordant = tied_x = tied_y = 0
    for i, (xi, yi) in enumerate(pairs):
        for xj, yj in pairs[i + 1:]:
            dx, dy = _sign(xi - xj), _sign(yi - yj)
            if dx == 0 and dy == 0:
                tied_x += 1
                tied_y += 1
            elif dx == 0:
                tied_x += 1
            elif dy == 0:
                tied_y += 1
            elif dx == dy:
                concordant += 1
            else:
                discordant += 1
    total = len(pairs) * (len(pairs) - 1) // 2
    denominator = math.sqrt((total - tied_x) * (total - tied_y))
    if denominator == 0:
        return None
    return (concordant - discordant) / denominator


def kendall_tau_a(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Jiang et al.'s tau (module docstring): the mean over pairs i < j of sign(x_i - x_j) sign(y_i - y_j), ties
    adding 0; None for fewer than two pairs. Pairs with a value that is not a finite number are left out."""
    if len(x) != len(y):
        raise ValueError(f"kendall_tau_a needs as many x as y values; got {len(x)} and {len(y)}.")
    pairs = np.array([(a, b) for a, b in zip(x, y, strict=True) if _finite(a) and _finite(b)], dtype=np.float64)
    if len(pairs) < 2:
        return None
    i, j = np.triu_indices(len(pairs), k=1)
    return float(np.mean(np.sign(pairs[i, 0] - pairs[j, 0]) * np.sign(pairs[i, 1] - pairs[j, 1])))


def _table(runs, measure: str, gap: str, axes: Sequence[str], of: str):
    import pandas as pd

    frame = runs if isinstance(runs, pd.DataFrame) else pd.DataFrame(runs)
    missing = [c for c in (measure, gap, *axes) if c not in frame.columns]
    if missing:
        raise ConfigError(f"{of}: the runs have no column {', '.join(repr(c) for c in missing)}; their columns: "
                          f"{', '.join(map(str, frame.columns))}.")
    if not axes:
        raise ConfigError(f"{of}: name at least one hyper-parameter axis (a column of the runs).")
    values = frame[[measure, gap]].apply(pd.to_numeric, errors="coerce")
    keep = np.isfinite(values[measure].to_numpy(float)) & np.isfinite(values[gap].to_numpy(float))
    return frame.loc[keep, list(axes)].reset_index(drop=True), values.loc[keep, measure].to_numpy(float), \
        values.loc[keep, gap].to_numpy(float)


def _cells(axes_frame, axis: str) -> list[np.ndarray]:
    """Row indices of each group of runs that agree on every axis but ``axis`` (two or more runs)."""
    others = [a for a in axes_frame.columns if a != axis]
    groups = [np.arange(len(axes_frame))] if not others else \
        [np.asarray(idx) for idx in axes_frame.groupby(others, sort=True, dropna=False).indices.values()]
    return [g for g in groups if len(g) >= 2]


@dataclass(frozen=True)
class GranulatedTau:
    """Jiang et al.'s granulated tau: ``per_axis`` psi_i (None where the axis has no cell of two runs), ``mean``
    Psi over the axes that have one, and ``cells`` the number of cells behind each psi_i."""

    per_axis: dict[str, float | None]
    mean: float | None
    cells: dict[str, int]


def granulated_kendall(runs, measure: str, gap: str, axes: Sequence[str]) -> GranulatedTau:
    """psi_i for each of ``axes`` and their mean Psi (module docstring), of column ``measure`` against ``gap``."""
    frame, mu, g = _table(runs, measure, gap, axes, "granulated_kendall")
    per, cells = {}, {}
    for axis in axes:
        taus = [kendall_tau_a(mu[c], g[c]) for c in _cells(frame, axis)]
        taus = [t for t in taus if t is not None]
        per[axis], cells[axis] = (float(np.mean(taus)) if taus else None), len(taus)
    known = [v for v in per.values() if v is not None]
    return GranulatedTau(per, float(np.mean(known)) if known else None, cells)


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


@dataclass(frozen=True)
class ConditionalInformation:
    """Jiang et al.'s conditional mutual information of the measure's and the gap's signs: ``score`` the smallest
    normalized I(V_mu; V_g | U_S) / H(V_g | U_S) over the sets S (None where none could be computed), ``argmin``
    that S, ``by_set`` every S's normalized value, ``skipped`` the sets that decide the gap's sign alone, and
    ``pairs`` the ordered pairs used (gap not tied)."""

    score: float | None
    argmin: tuple[str, ...] | None
    by_set: dict[tuple[str, ...], float]
    skipped: tuple[tuple[str, ...], ...]
    pairs: int


def conditional_mutual_information(runs, measure: str, gap: str, axes: Sequence[str],
                                   max_set: int = 2) -> ConditionalInformation:
    """The conditional mutual information of the module docstring, over every set of at most ``max_set`` of
    ``axes``, cells weighted by their share of the pairs."""
    frame, mu, g = _table(runs, measure, gap, axes, "conditional_mutual_information")
    i, j = np.nonzero(~np.eye(len(g), dtype=bool))
    v_g = np.sign(g[i] - g[j])
    keep = v_g != 0
    i, j, v_g = i[keep], j[keep], v_g[keep].astype(int)
    v_mu = np.sign(mu[i] - mu[j]).astype(int)
    codes = {a: frame[a].astype("category").cat.codes.to_numpy() for a in axes}
    by_set, skipped = {}, []
    for size in range(0, max_set + 1):
        for subset in itertools.combinations(axes, size):
            cell = np.zeros(len(i), dtype=np.int64)
            for a in subset:  # U_S: both runs' values on S, one code per distinct combination
                width = int(codes[a].max()) + 1
                cell = (cell * width + codes[a][i]) * width + codes[a][j]
            info = entropy = 0.0
            for u in np.unique(cell):
                mask = cell == u
                weight = mask.mean()
                joint = np.zeros((3, 3))
                np.add.at(joint, (v_mu[mask] + 1, v_g[mask] + 1), 1)
                h_g = _entropy(joint.sum(axis=0))
                info += weight * (_entropy(joint.sum(axis=1)) + h_g - _entropy(joint.ravel()))
                entropy += weight * h_g
            if entropy <= 1e-12:
                skipped.append(subset)
                continue
            by_set[subset] = max(info, 0.0) / entropy
    if not by_set:
        return ConditionalInformation(None, None, by_set, tuple(skipped), len(i))
    argmin = min(by_set, key=by_set.get)
    return ConditionalInformation(by_set[argmin], argmin, by_set, tuple(skipped), len(i))


@dataclass(frozen=True)
class SignError:
    """Dziugaite et al.'s robust judgement: ``worst`` the largest sign error over the environments, ``mean`` the
    average (what an average shows), ``environments`` how many had a pair, and ``where`` the worst one: (axis,
    the other axes' values)."""

    worst: float | None
    mean: float | None
    environments: int
    where: tuple[str, tuple[Hashable, ...]] | None


def worst_sign_error(runs, measure: str, gap: str, axes: Sequence[str]) -> SignError:
    """The sign error of ``measure`` in every environment (a cell of runs differing in one axis only) and the
    worst of them (module docstring)."""
    frame, mu, g = _table(runs, measure, gap, axes, "worst_sign_error")
    errors, worst, where = [], -1.0, None
    for axis in axes:
        others = [a for a in axes if a != axis]
        for cell in _cells(frame, axis):
            a, b = np.triu_indices(len(cell), k=1)
            dg = np.sign(g[cell[a]] - g[cell[b]])
            dm = np.sign(mu[cell[a]] - mu[cell[b]])
            used = dg != 0
            if not used.any():
                continue
            error = float(np.mean(np.where(dm[used] == 0, 0.5, (dm[used] != dg[used]).astype(float))))
            errors.append(error)
            if error > worst:
                worst, where = error, (axis, tuple(frame.loc[cell[0], others]) if others else ())
    if not errors:
        return SignError(None, None, 0, None)
    return SignError(worst, float(np.mean(errors)), len(errors), where)
