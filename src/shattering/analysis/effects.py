"""Which factor drives a response (the test error, the generalization gap) over a grid of runs: an analysis of
variance by statsmodels (``ols`` and ``anova_lm``, the field's library for it), main effects and two-way
interactions, with effect sizes.

The model is response ~ C(f1) + C(f2) + ... + C(f1):C(f2) + ... (every factor categorical), fitted by least
squares; ``anova_lm(typ=2)`` gives each term's sum of squares with the other terms of its order in the model
(Type II: for a balanced grid it equals the classical decomposition, and a main effect's sum of squares is
sum_level n_level (mean_level - grand mean)^2). The effect size is the partial eta squared,
SS_term / (SS_term + SS_residual): the share of the variance not explained by the other terms that this one
explains (0: no effect). The F statistic and its p-value are statsmodels'. A factor with one level is dropped,
and said; interactions are left out where the residual would have no degrees of freedom left (no replicates).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError


@dataclass(frozen=True)
class FactorEffects:
    """The analysis of variance: ``table`` (a pandas DataFrame, one row per term, ``a`` or ``a:b``, and the
    residual; columns ``sum_sq``, ``df``, ``F``, ``p``, ``partial_eta_sq``), the ``formula`` fitted, the
    ``runs`` used, the factors ``dropped`` (one level) and whether the ``interactions`` are in."""

    table: object
    formula: str
    runs: int
    dropped: tuple[str, ...]
    interactions: bool

    def largest(self) -> str | None:
        """The term of the largest effect size (None when there is none)."""
        terms = self.table.drop(index="Residual", errors="ignore")["partial_eta_sq"].dropna()
        return None if terms.empty else str(terms.idxmax())


def _quoted(name: str) -> str:
    return f'C(Q("{name}"))'


def factor_effects(runs, response: str, factors: Sequence[str], interactions: bool = True) -> FactorEffects:
    """The analysis of variance of column ``response`` of ``runs`` (a pandas DataFrame, or what it takes) on the
    categorical ``factors`` (module docstring); rows whose response is not a finite number are left out."""
    import pandas as pd
    from statsmodels.formula.api import ols
    from statsmodels.stats.anova import anova_lm

    frame = runs if isinstance(runs, pd.DataFrame) else pd.DataFrame(runs)
    missing = [c for c in (response, *factors) if c not in frame.columns]
    if missing:
        raise ConfigError(f"factor_effects: the runs have no column {', '.join(repr(c) for c in missing)}; their "
                          f"columns: {', '.join(map(str, frame.columns))}.")
    if any('"' in f for f in (response, *factors)):
        raise ConfigError("factor_effects: a column name holds a double quote; rename it.")
    values = pd.to_numeric(frame[response], errors="coerce")
    frame = frame.loc[np.isfinite(values.to_numpy(float))].copy()
    frame[response] = values.loc[frame.index].astype(float)
    frame[list(factors)] = frame[list(factors)].astype(str)  # categorical, whatever their type
    kept = [f for f in factors if frame[f].nunique() > 1]
    dropped = tuple(f for f in factors if f not in kept)
    if not kept:
        raise ConfigError(f"factor_effects: no factor takes two values over the {len(frame)} runs (dropped: "
                          f"{', '.join(dropped) or 'none'}); vary at least one.")
    terms = [_quoted(f) for f in kept]
    main_df = sum(frame[f].nunique() - 1 for f in kept)
    pairs = list(itertools.combinations(kept, 2))
    pair_df = sum((frame[a].nunique() - 1) * (frame[b].nunique() - 1) for a, b in pairs)
    with_pairs = interactions and bool(pairs) and len(frame) - 1 - main_df - pair_df > 0
    if with_pairs:
        terms += [f"{_quoted(a)}:{_quoted(b)}" for a, b in pairs]
    formula = f'Q("{response}") ~ ' + " + ".join(terms)
    table = anova_lm(ols(formula, data=frame).fit(), typ=2)
    residual = float(table.loc["Residual", "sum_sq"])
    names = {_quoted(f): f for f in kept}
    table.index = [":".join(names.get(part, part) for part in str(term).split(":")) for term in table.index]
    table = table.rename(columns={"PR(>F)": "p"})
    with np.errstate(invalid="ignore", divide="ignore"):
        table["partial_eta_sq"] = table["sum_sq"] / (table["sum_sq"] + residual)
    table.loc["Residual", "partial_eta_sq"] = np.nan
    return FactorEffects(table, formula, len(frame), dropped, with_pairs)
