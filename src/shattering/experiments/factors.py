"""The factorial study of the ``factors`` preset: "rigorous experimentation to study the effect of the network
architecture, optimizer and the actual input independently on generalization" (the question Zhang et al., ICLR
2017, leave), on a grid of runs that vary one axis at a time.

Every finished run becomes one row: its level on each axis (:data:`AXES`), its seed, its responses (the test
error, the generalization gap train accuracy - test accuracy, and the loss gap test loss - training loss, all at
the run's end) and the value of every complexity measure it recorded. :func:`effects` is the analysis of variance
of a response on the axes that vary (:func:`shattering.analysis.factor_effects`: main effects and two-way
interactions, partial eta squared); :func:`measure_ranking` scores every measure against the gap as Jiang et al.
(ICLR 2020) and Dziugaite et al. (NeurIPS 2020) do (:mod:`shattering.analysis.ranking`).

The input and the label noise are one axis, ``data``: a run takes one randomization of Section 2.1 (true images
and labels, labels corrupted with probability p, random labels, shuffled pixels, random pixels, Gaussian), so
"label noise on shuffled pixels" is not a run this grid has.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the claims import this module
    from .claims.core import RunFacts

AXES = ("architecture", "optimizer", "batch", "data", "regularization")
RESPONSES = {"test_error": "test error", "gap": "generalization gap (train - test accuracy)",
             "loss_gap": "loss gap (test - training loss)"}
_DATA = {"true-labels": "true", "random-labels": "random labels", "shuffled-pixels": "shuffled pixels",
         "random-pixels": "random pixels", "gaussian": "gaussian"}


def data_level(cfg) -> str:
    """The run's randomization, as the ``data`` axis names it (``labels p=0.4`` for partially corrupted labels)."""
    if cfg.corruption == "partial-labels":
        return f"labels p={cfg.p:g}"
    return _DATA.get(cfg.corruption, cfg.corruption)


def levels(cfg) -> dict:
    """The run's level on each of :data:`AXES`."""
    return {"architecture": cfg.model, "optimizer": cfg.optimizer, "batch": cfg.batch_size, "data": data_level(cfg),
            "regularization": f"weight decay {cfg.weight_decay:g}" if cfg.weight_decay else "none"}


def _number(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def run_table(facts: Sequence[RunFacts]) -> list[dict]:
    """One row per finished run (module docstring); a run with no test accuracy has no responses (None)."""
    rows = []
    for f in facts:
        if f.summary is None:
            continue
        c = f.config
        final = f.summary.get("final") or {}
        train, test = _number(final.get("train_acc")), _number(final.get("test_acc"))
        train_loss, test_loss = _number(final.get("train_loss")), _number(final.get("test_loss"))
        measures = {k: _number(v) for k, v in ((f.summary.get("measures") or {}).items())}
        rows.append({
            **levels(c), "seed": c.seed, "run_id": c.run_id(), "status": f.summary.get("status"),
            "train_acc": train, "test_acc": test,
            "test_error": None if test is None else 1.0 - test,
            "gap": None if None in (train, test) else train - test,
            "loss_gap": None if None in (train_loss, test_loss) else test_loss - train_loss,
            **{f"measure:{k}": v for k, v in measures.items() if v is not None},
        })
    return rows


def varied_axes(rows: Sequence[dict]) -> list[str]:
    """The axes that take two or more levels over ``rows``."""
    return [a for a in AXES if len({r[a] for r in rows}) > 1]


def measure_names(rows: Sequence[dict]) -> list[str]:
    """Every measure recorded by at least two runs, in the order first seen."""
    seen: dict[str, int] = {}
    for r in rows:
        for k in r:
            if k.startswith("measure:"):
                seen[k] = seen.get(k, 0) + 1
    return [k.removeprefix("measure:") for k, n in seen.items() if n >= 2]


def effects(rows: Sequence[dict], response: str, axes: Sequence[str] | None = None):
    """The analysis of variance of ``response`` on ``axes`` (default: every axis that varies), or None where no
    axis varies or fewer than three runs have the response."""
    from ..analysis import factor_effects  # numpy, pandas and statsmodels: when analysed, not when listed

    axes = list(axes) if axes is not None else varied_axes(rows)
    have = [r for r in rows if r.get(response) is not None]
    varied = [a for a in axes if a in varied_axes(have)]
    return factor_effects(have, response, varied) if len(have) >= 3 and varied else None


def orientation(name: str) -> int:
    """+1 where a larger value of measure ``name`` means a more complex function (norms), -1 where a smaller one
    does (margins, PAC-Bayes sigma): the registry's sign; +1 for a measure it does not know."""
    from ..errors import ConfigError
    from ..measures.registry import get_measure

    try:
        return get_measure(name).sign
    except ConfigError:
        return 1


def measure_ranking(rows: Sequence[dict], gap: str = "gap") -> list[dict]:
    """Per measure, oriented so that larger means more complex (:func:`orientation`, as Jiang et al. orient
    margins): Kendall's tau-b with ``gap`` over all runs, the granulated tau per varied axis and their mean Psi, the
    conditional mutual information over conditioning sets of at most two axes (its smallest, and which set), and
    the worst and mean sign error over environments."""
    from ..analysis import conditional_mutual_information, granulated_kendall, kendall_tau_b, worst_sign_error

    axes = varied_axes(rows)
    out = []
    for name in measure_names(rows):
        column, oriented = f"measure:{name}", orientation(name)
        have = [{**{a: r[a] for a in axes}, "mu": oriented * r[column], "g": r[gap]} for r in rows
                if r.get(column) is not None and r.get(gap) is not None]
        if len(have) < 2 or not axes:
            continue
        psi = granulated_kendall(have, "mu", "g", axes)
        cmi = conditional_mutual_information(have, "mu", "g", axes)
        sign = worst_sign_error(have, "mu", "g", axes)
        out.append({"measure": name, "orientation": oriented, "runs": len(have),
                    "tau": kendall_tau_b([h["mu"] for h in have], [h["g"] for h in have]),
                    "psi": psi.per_axis, "Psi": psi.mean, "cmi": cmi.score,
                    "cmi_set": list(cmi.argmin) if cmi.argmin is not None else None,
                    "worst_sign_error": sign.worst, "mean_sign_error": sign.mean})
    return out
