"""The factorial study: the ``factors`` artefact (:mod:`shattering.experiments.factors`). Which factor drives the
test error and the generalization gap (an analysis of variance by statsmodels: main effects and two-way
interactions, partial eta squared, F-test p-values), and how each complexity measure ranks the gap over the grid:
Kendall's tau-b over all runs, Jiang et al.'s (ICLR 2020) granulated tau per axis and its mean, their conditional
mutual information over conditioning sets of at most two axes, and Dziugaite et al.'s (NeurIPS 2020) worst sign
error over environments.

Writes ``factors.png``/``.svg``/``.pdf`` (the effect sizes on the test error and on the gap; the granulated tau of
every measure on every axis), ``factors.md`` (the figure, both analyses of variance, the measures' table and the
claims' verdicts), ``factors.csv`` (one row per run) and ``factors.json`` (the sidecar).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np

from ..executors.outcome import Outcome
from ..experiments.claims import facts_of
from ..experiments.factors import (
    AXES,
    RESPONSES,
    effects,
    levels,
    measure_names,
    measure_ranking,
    run_table,
    varied_axes,
)
from .common import status_text, write_records, write_sidecar, write_text
from .plotting import RC, figure, notes_line, save, status_caption

SHOWN_TERMS = 10  # the largest effects drawn per response (every term is in the tables)
RUN_COLUMNS = ("run_id", *AXES, "seed", "status", "train_acc", "test_acc", "test_error", "gap", "loss_gap")


def anova_rows(result) -> list[dict]:
    """An analysis of variance as rows (term, df, sum of squares, F, p, partial eta squared), largest effect first,
    the residual last."""
    if result is None:
        return []
    table = result.table
    rows = [{"term": str(t), "df": float(r["df"]), "sum_sq": float(r["sum_sq"]), "F": _finite(r.get("F")),
             "p": _finite(r.get("p")), "partial_eta_sq": _finite(r["partial_eta_sq"])} for t, r in table.iterrows()]
    terms = sorted((r for r in rows if r["term"] != "Residual"), key=lambda r: -(r["partial_eta_sq"] or 0.0))
    return terms + [r for r in rows if r["term"] == "Residual"]


def render_factors(preset, outcomes: Sequence[Outcome], out_dir: Path, notes: Sequence[str], *,
                   scale: str | None = None, provenance: bool = False) -> list[Path]:
    """The figure, the tables and the sidecar of the factors artefact."""
    out_dir = Path(out_dir)
    rows = run_table(facts_of(outcomes))
    axes = varied_axes(rows)
    analyses = {key: effects(rows, key) for key in RESPONSES}
    ranking = measure_ranking(rows)
    caption = [*notes_line(notes),
               f"{len(rows)} finished runs; axes varied: {', '.join(axes) or 'none'}. Effect size: partial eta "
               "squared SS_term / (SS_term + SS_residual) of an ordinary least-squares analysis of variance "
               "(statsmodels, Type II), every axis categorical, two-way interactions where the residual keeps "
               "degrees of freedom. Granulated tau (Jiang et al. 2020): per axis, the mean Kendall tau of the "
               "measure and the gap over groups of runs that differ in that axis only; a measure where smaller "
               "means more complex (margins) is negated first (-name).",
               *status_caption(outcomes, lambda o: f"{o.config.model} {o.config.optimizer} {o.config.batch_size}",
                               "factors")]
    with matplotlib.rc_context(RC):
        fig, panels = figure(3, preset, caption, panel_w=4.4, panel_h=3.6, scale=scale, provenance=provenance,
                             legend_w=0.9)
        for ax, key in zip(panels[:2], ("test_error", "gap"), strict=True):
            _effects_panel(ax, anova_rows(analyses[key]), RESPONSES[key])
        _tau_panel(panels[2], ranking, axes)
        paths = save(fig, out_dir, "factors", preset, caption, scale)
    md = out_dir / "factors.md"
    lines = [md.read_text()]
    for key, label in RESPONSES.items():
        lines += ["", f"## What drives the {label}", "", *_anova_table(analyses[key])]
    lines += ["", "## How each measure ranks the gap", "", *_ranking_table(ranking, axes)]
    lines += ["", "## The runs", "", *_runs_table(outcomes, rows)]
    write_text(md, "\n".join(lines) + "\n")
    columns = (*RUN_COLUMNS, *(f"measure:{m}" for m in measure_names(rows)))
    paths.append(write_records(out_dir / "factors.csv", columns, ({c: r.get(c) for c in columns} for r in rows)))
    paths.append(write_sidecar(out_dir, "factors", preset, outcomes, notes, paths, scale=scale, caption=caption,
                               anova={k: anova_rows(v) for k, v in analyses.items()},
                               formulas={k: (v.formula if v is not None else None) for k, v in analyses.items()},
                               measures=ranking, runs_table=rows))
    return paths


# INTERNAL UTILITIES -------------------------------------------------------------------------------


def _finite(v) -> float | None:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _number(v, fmt: str = ".3f") -> str:
    return "—" if v is None else format(v, fmt)


def _anova_table(result) -> list[str]:
    if result is None:
        return ["Not analysed: no axis varies over runs with this response."]
    out = [f"`{result.formula}` over {result.runs} runs"
           + (f"; left out (one level): {', '.join(result.dropped)}" if result.dropped else "")
           + ("" if result.interactions else "; no interactions (too few runs for their degrees of freedom)") + ".",
           "", "| term | df | F | p | partial eta² |", "|---|---|---|---|---|"]
    for r in anova_rows(result):
        out.append(f"| {r['term']} | {r['df']:g} | {_number(r['F'], '.2f')} | {_number(r['p'], '.2g')} | "
                   f"{_number(r['partial_eta_sq'])} |")
    return out


def _runs_table(outcomes: Sequence[Outcome], rows: Sequence[dict]) -> list[str]:
    """Every run behind the artefact, finished or not: its config hash, levels, status, test accuracy and gap."""
    by_id = {r["run_id"]: r for r in rows}
    out = ["| run id | " + " | ".join(AXES) + " | seed | status | test acc | gap |", "|" + "---|" * (len(AXES) + 5)]
    for o in outcomes:
        c, r = o.config, by_id.get(o.config.run_id(), {})
        shown = levels(c)
        test, gap = r.get("test_acc"), r.get("gap")
        cells = [f"`{c.run_id()}`", *(str(shown[a]) for a in AXES), str(c.seed), status_text(o),
                 "—" if test is None else f"{100 * test:.2f}%", "—" if gap is None else f"{100 * gap:.2f}"]
        out.append("| " + " | ".join(cells) + " |")
    return out


def _ranking_table(ranking: Sequence[dict], axes: Sequence[str]) -> list[str]:
    if not ranking:
        return ["No measure was recorded by two runs or more."]
    head = ["measure (oriented)", "runs", "tau-b", *(f"psi {a}" for a in axes), "Psi", "CMI (set)",
            "worst sign error"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in ranking:
        cmi = "—" if m["cmi"] is None else f"{m['cmi']:.3f} ({', '.join(m['cmi_set']) or 'none'})"
        name = m["measure"] if m["orientation"] > 0 else f"-{m['measure']}"
        cells = [name, str(m["runs"]), _number(m["tau"]), *(_number(m["psi"].get(a)) for a in axes),
                 _number(m["Psi"]), cmi, _number(m["worst_sign_error"], ".2f")]
        out.append("| " + " | ".join(cells) + " |")
    return out


def _effects_panel(ax, rows: Sequence[dict], label: str) -> None:
    """Horizontal bars: the partial eta squared of the largest terms, main effects dark, interactions light."""
    terms = [r for r in rows if r["term"] != "Residual" and r["partial_eta_sq"] is not None][:SHOWN_TERMS]
    if not terms:
        ax.text(0.5, 0.5, "not analysed", ha="center", va="center", transform=ax.transAxes, color="#777777")
        ax.set_axis_off()
        return
    y = np.arange(len(terms))[::-1]
    colors = ["#1f77b4" if ":" not in r["term"] else "#aec7e8" for r in terms]
    ax.barh(y, [r["partial_eta_sq"] for r in terms], color=colors)
    for yi, r in zip(y, terms, strict=True):  # the term's name on its bar: long names never leave the panel
        ax.text(0.01, yi, r["term"].replace(":", " x "), va="center", ha="left", fontsize=7)
    ax.set_yticks([])
    ax.set_xlim(0, 1)
    ax.set_xlabel("partial eta² (light: interaction)", fontsize=8)
    ax.set_title(f"What drives the {label}", loc="left", fontsize=9)
    ax.grid(alpha=0.3, axis="x")


def _tau_panel(ax, ranking: Sequence[dict], axes: Sequence[str]) -> None:
    """The granulated tau of each measure (rows) on each axis (columns), -1 (red) to +1 (blue)."""
    if not ranking or not axes:
        ax.text(0.5, 0.5, "no measure recorded", ha="center", va="center", transform=ax.transAxes, color="#777777")
        ax.set_axis_off()
        return
    grid = np.array([[np.nan if m["psi"].get(a) is None else m["psi"][a] for a in axes] for m in ranking])
    image = ax.imshow(grid, cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(len(axes)), axes, fontsize=7, rotation=30, ha="right")
    ax.set_yticks(range(len(ranking)), [("" if m["orientation"] > 0 else "-") + m["measure"] for m in ranking],
                  fontsize=6)
    for (i, j), v in np.ndenumerate(grid):
        if math.isfinite(v):
            ax.text(j, i, f"{v:+.2f}", ha="center", va="center", fontsize=5)
    ax.set_title("Granulated tau with the gap", loc="left", fontsize=9)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
