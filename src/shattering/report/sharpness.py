"""Which minima: the ``sharpness`` artefact. Per model, SGD and Adam with a small and a large batch on true labels
and SGD on random labels (Keskar et al., ICLR 2017; Im, Tao and Branson 2016), each run's training and test
accuracy beside the sharpness of the minimum it reached (Keskar et al.'s Metric 2.1 in the full space and in a
random 100-dimensional subspace at eps = 1e-3 and 5e-4, the adaptive worst case of Andriushchenko et al. 2023) and
the Hessian's top eigenvalue, trace and spectral density (:mod:`shattering.measures.curvature`).

Writes ``sharpness.png``/``.svg``/``.pdf`` (per model: sharpness, top eigenvalue and accuracies of each run),
``hessian-density.png``/``.svg``/``.pdf`` (each run's spectral density, side by side, one row per model),
``sharpness.md`` (the figures, the table and the claims' verdicts), ``sharpness.csv`` (one row per run) and
``sharpness.json`` (the sidecar). A measure a run could not compute is "not measured", with its reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.patches import Patch

from ..executors.outcome import Outcome
from ..measures.builtin import KESKAR_MEASURE, TOP_EIGENVALUE_MEASURE
from ..measures.curvature import DENSITY_SMOOTHING, spectral_density
from ..measures.registry import get_measure, groups
from .common import status_text, write_records, write_sidecar, write_text
from .paper_numbers import MODEL_TITLES
from .plotting import RC, figure, legend_beside, notes_line, save, status_caption

NOT_MEASURED = "not measured"
GROUPS = ("sharpness", "hessian")  # the registry's groups whose measures the table shows, in this order
RUN_COLUMNS = ("model", "run", "run id", "status", "train acc", "test acc", "gap (points)", "f(x)")
CSV_RUN_COLUMNS = ("model", "optimizer", "batch_size", "labels", "seed", "run_id", "status", "train_acc", "test_acc",
                   "gap", "loss_at_minimum")
CONDITION_COLORS = ("#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#d62728", "#9467bd", "#8c564b", "#7f7f7f")


def measure_columns() -> tuple[tuple[str, str], ...]:
    """(name, heading) of every measure of the groups :data:`GROUPS`, from the registry as it is now (a measure
    registered into a group appears too)."""
    found = groups()
    return tuple((name, get_measure(name).heading or name) for g in GROUPS for name in found.get(g, ()))


def condition(o: Outcome) -> str:
    """What varies within a model: ``sgd 32``, ``adam 200``, ``sgd 32 random labels`` (and the seed past 0)."""
    c = o.config
    return (f"{c.optimizer} {c.batch_size}" + (" random labels" if c.corruption == "random-labels" else "")
            + (f" seed {c.seed}" if c.seed else ""))


def run_rows(outcomes: Sequence[Outcome]) -> list[dict]:
    """One row per run: what it is, how it ended, its accuracies and gap, f(x) and every sharpness and curvature
    measure (None: not measured), and its top eigenvalues and density quadrature where measured."""
    rows = []
    for o in outcomes:
        s = o.summary or {}
        m = s.get("measures") or {}
        final = s.get("final") or {}
        train, test = final.get("train_acc"), final.get("test_acc")
        hessian = m.get("hessian") if isinstance(m.get("hessian"), dict) else {}
        sharp = m.get("sharpness") if isinstance(m.get("sharpness"), dict) else {}
        rows.append({
            "model": o.config.model, "optimizer": o.config.optimizer, "batch_size": o.config.batch_size,
            "labels": "random" if o.config.corruption == "random-labels" else "true", "seed": o.config.seed,
            "run_id": o.config.run_id(), "condition": condition(o), "status": status_text(o),
            "train_acc": train, "test_acc": test,
            "gap": train - test if train is not None and test is not None else None,
            "loss_at_minimum": sharp.get("f0"),
            **{k: _number(m.get(k)) for k, _ in measure_columns()},
            "top_eigenvalues": hessian.get("top_eigenvalues"), "density": hessian.get("density"),
            "why": {k: v for k, v in (m.get("unavailable") or {}).items() if k in dict(measure_columns())}
            or ({"all": s.get("measures_error")} if s.get("measures_error") else {}),
        })
    return rows


def render_sharpness(preset, outcomes: Sequence[Outcome], out_dir: Path, notes: Sequence[str], *,
                     scale: str | None = None, provenance: bool = False) -> list[Path]:
    """The two figures, the table and the sidecar of the sharpness artefact."""
    out_dir = Path(out_dir)
    rows = run_rows(outcomes)
    models = list(dict.fromkeys(r["model"] for r in rows))
    conditions = list(dict.fromkeys(r["condition"] for r in rows))
    colors = {c: CONDITION_COLORS[i % len(CONDITION_COLORS)] for i, c in enumerate(conditions)}
    why = sorted({f"{k}: {v}" for r in rows for k, v in r["why"].items()})
    caption = [*notes_line(notes),
               "Sharpness: Keskar et al.'s 100 (max f(x + Ay) - f(x)) / (1 + f(x)) over the box |y_i| <= eps "
               "(|(A+x)_i| + 1), A = I, maximized by L-BFGS-B for 10 iterations from y = 0 (a lower bound on the "
               "maximum); f the mean cross-entropy on 500 training examples (eval mode). Hessian: the top "
               "eigenvalue (eigsh, tolerance 1e-3) on the same examples; density: stochastic Lanczos quadrature, "
               f"Gaussian smoothing sigma = {DENSITY_SMOOTHING:g} x each run's spectral range.",
               *(["not measured: " + "; ".join(why)] if why else []),
               *status_caption(outcomes, lambda o: f"{o.config.model} {condition(o)}", "sharpness")]
    with matplotlib.rc_context(RC):
        fig, axes = figure(3, preset, caption, panel_w=4.0, panel_h=2.9, scale=scale, provenance=provenance,
                           legend_w=2.4, nrows=len(models) or 1)
        for i, model in enumerate(models or [None]):
            mine = [r for r in rows if r["model"] == model]
            _bars(axes[3 * i], mine, colors, KESKAR_MEASURE, "Keskar sharpness (ε 1e-3, full space)", model)
            _bars(axes[3 * i + 1], mine, colors, TOP_EIGENVALUE_MEASURE, "Hessian top eigenvalue λmax", model)
            _accuracies(axes[3 * i + 2], mine, colors, model)
        legend_beside(axes[2], [Patch(color=colors[c], label=c) for c in conditions])
        paths = save(fig, out_dir, "sharpness", preset, caption, scale)
        ncols = max([sum(r["model"] == m for r in rows) for m in models] or [1])
        fig, axes = figure(ncols, preset, caption, panel_w=3.0, panel_h=2.4, scale=scale, provenance=provenance,
                           nrows=len(models) or 1)
        for i, model in enumerate(models or [None]):
            mine = [r for r in rows if r["model"] == model]
            for j in range(ncols):
                _density(axes[i * ncols + j], mine[j] if j < len(mine) else None, colors)
        paths += save(fig, out_dir, "hessian-density", None, caption, scale)
    display = [_display(r) for r in rows]
    columns = (*RUN_COLUMNS, *(h for _, h in measure_columns()))
    md = out_dir / "sharpness.md"
    table = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    table += ["| " + " | ".join(row) + " |" for row in display]
    write_text(md, md.read_text() + "\n![the Hessian's spectral density of each run](hessian-density.png)\n\n"
               + "\n".join(table) + "\n")
    csv_columns = (*CSV_RUN_COLUMNS, *(k for k, _ in measure_columns()), "top_eigenvalues")
    paths.append(write_records(out_dir / "sharpness.csv", csv_columns,
                               ({**r, "top_eigenvalues": " ".join(f"{e:.6g}" for e in r["top_eigenvalues"] or ())}
                                for r in rows)))
    paths.append(write_sidecar(out_dir, "sharpness", preset, outcomes, notes, paths, scale=scale, caption=caption,
                               table={"columns": list(columns), "rows": display},
                               series=[{k: v for k, v in r.items() if k != "why"} for r in rows]))
    return paths


# INTERNAL UTILITIES -------------------------------------------------------------------------------


def _number(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _title(model: str | None) -> str:
    return MODEL_TITLES.get(model, model) if model else "no runs"


def _bars(ax, rows: Sequence[dict], colors: dict, key: str, what: str, model: str | None) -> None:
    """One bar per run (its condition's colour); a run not measured gets no bar and says so on the axis."""
    for x, r in enumerate(rows):
        if r[key] is not None:
            ax.bar(x, r[key], color=colors[r["condition"]], width=0.75)
        else:
            ax.text(x, 0, NOT_MEASURED, rotation=90, ha="center", va="bottom", fontsize=7, color="#777777")
    ax.set_xticks(range(len(rows)), [r["condition"].replace(" random labels", "\nrandom") for r in rows],
                  fontsize=7)
    ax.set_title(f"{_title(model)}: {what}", loc="left", fontsize=9)
    ax.grid(alpha=0.3, axis="y")


def _accuracies(ax, rows: Sequence[dict], colors: dict, model: str | None) -> None:
    """Training (hatched) and test accuracy of each run."""
    for x, r in enumerate(rows):
        for dx, key, hatch in ((-0.2, "train_acc", "//"), (0.2, "test_acc", "")):
            if r[key] is not None:
                ax.bar(x + dx, 100 * r[key], width=0.38, color=colors[r["condition"]], hatch=hatch,
                       edgecolor="white")
    ax.set_xticks(range(len(rows)), [r["condition"].replace(" random labels", "\nrandom") for r in rows],
                  fontsize=7)
    ax.set_ylim(0, 100)
    ax.set_title(f"{_title(model)}: accuracy % (hatched: training)", loc="left", fontsize=9)
    ax.grid(alpha=0.3, axis="y")


def _density(ax, row: dict | None, colors: dict) -> None:
    """One run's spectral density on a log axis, over its nodes' range with a margin."""
    if row is None:
        ax.axis("off")
        return
    density = row["density"]
    ax.set_title(f"{_title(row['model'])}: {row['condition']}", loc="left", fontsize=8)
    if not density:
        ax.text(0.5, 0.5, NOT_MEASURED + "\n" + "\n".join(row["why"].values())[:120], ha="center", va="center",
                fontsize=7, color="#777777", transform=ax.transAxes, wrap=True)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    every = np.concatenate([np.asarray(n, dtype=float) for n in density["nodes"]])
    low, high = float(every.min()), float(every.max())
    pad = 0.05 * max(high - low, 1e-12)
    grid = np.linspace(low - pad, high + pad, 800)
    phi = spectral_density(density["nodes"], density["weights"], grid)
    ax.semilogy(grid, np.maximum(phi, 1e-12), color=colors[row["condition"]], lw=1.2)
    ax.set_ylim(bottom=max(1e-8, float(phi.max()) * 1e-8))
    ax.set_xlabel("eigenvalue", fontsize=8)
    ax.grid(alpha=0.3)


def _display(r: dict) -> list[str]:
    def pct(v):
        return "—" if v is None else f"{100 * v:.2f}%"

    def num(v):
        return NOT_MEASURED if v is None else f"{v:.4g}"

    return [_title(r["model"]), r["condition"], f"`{r['run_id']}`", r["status"], pct(r["train_acc"]),
            pct(r["test_acc"]),
            "—" if r["gap"] is None else f"{100 * r['gap']:.2f}",
            "—" if r["loss_at_minimum"] is None else f"{r['loss_at_minimum']:.4g}",
            *(num(r[k]) for k, _ in measure_columns())]
