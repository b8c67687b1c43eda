"""Figure 2b of Zhang et al. (ICLR 2017), Section 3.1 (implicit regularizations): training and test accuracy
against steps of the small Inception on CIFAR-10 with and without batch normalization (no explicit regularizer),
shaded up to the best test accuracy so far: what early stopping could gain.

``render_fig2b`` takes ``(preset, outcomes, out_dir, notes)`` and writes ``fig2b.png``, ``.svg``, ``.pdf``,
``.md``, ``fig2b.csv`` (every evaluated epoch of every run drawn) and the sidecar ``fig2b.json``, byte-stable as
every figure (:mod:`~shattering.report.figures`). Runs that fit are averaged; a run that did not fit or
diverged is drawn on its own, thinner.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.lines import Line2D

from ..executors.outcome import Outcome
from ..runs import RunRecord
from .common import status_of, status_text
from .figures import MODEL_COLORS
from .paper_numbers import MODEL_TITLES, table1_row
from .plotting import (
    AccuracyCurves,
    draw_accuracy_curves,
    finish_step_axes,
    mean_accuracy_curves,
    notes_line,
    render_step_curves,
    status_caption,
    step_axis,
)


@dataclass(frozen=True)
class CurveGroup:
    """Runs drawn as one line of Figure 2b: a model's runs that fit (their mean curves), or one run that did
    not fit or diverged (drawn on its own, thinner)."""

    model: str
    label: str
    runs: list[Outcome]
    fitted: bool
    curves: AccuracyCurves | None  # None: a run without an evaluated epoch (nothing to draw)


@dataclass(frozen=True)
class Fig2bData:
    """What Figure 2b draws: the models (batch norm first), every run's evaluated epochs (``metrics[id(run)]``)
    and the curve groups, model by model."""

    models: list[str]
    metrics: dict
    groups: list[CurveGroup]

    @property
    def max_step(self) -> int:
        return max((r["step"] for rows in self.metrics.values() for r in rows), default=0)


FIG2B_COLUMNS = ("model", "seed", "run_id", "status", "epoch", "step", "train_acc", "test_acc", "best_test_acc")


def fig2b_data(outcomes: Sequence[Outcome]) -> Fig2bData:
    """The evaluated epochs of every finished run, and per model the mean curves of its runs that fit and the
    curves of each other run."""
    models = [m for m in ("inception-small", "inception-small-nobn") if any(o.config.model == m for o in outcomes)]
    models += sorted({o.config.model for o in outcomes} - set(models))
    metrics = {id(o): RunRecord(o.run_dir).read_evaluated_metrics() for o in outcomes if o.summary is not None}
    groups = []
    for model in models:
        title = MODEL_TITLES.get(model, model)
        mine = [o for o in outcomes if o.config.model == model and o.summary is not None]
        fitted = [o for o in mine if status_of(o) == "fit"]
        if fitted:
            groups.append(CurveGroup(model, f"{title}: fit ({len(fitted)} run{'s' * (len(fitted) != 1)})", fitted,
                                     True, mean_accuracy_curves(fitted, metrics)))
        groups += [CurveGroup(model, f"{title}, seed {o.config.seed}: {status_text(o)}", [o], False,
                              mean_accuracy_curves([o], metrics)) for o in mine if status_of(o) != "fit"]
    return Fig2bData(models, metrics, groups)


def render_fig2b(preset, outcomes: Sequence[Outcome], out_dir: Path, notes: Sequence[str], *,
                 scale: str | None = None, provenance: bool = False) -> list[Path]:
    """Figure 2b: training and test accuracy against steps, Inception with and without batch normalization;
    the shaded area reaches up to the best test accuracy so far (what early stopping could gain)."""
    data = fig2b_data(outcomes)
    caption = [*notes_line(notes),
               "Solid: test accuracy; dashed: training accuracy; shaded: up to the best test accuracy so far "
               "(early stopping's reach). Lines of runs that fit are means over seeds; a run that did not fit or "
               "diverged is drawn on its own, thinner.",
               *status_caption(outcomes, _fig2b_label, "fig2b")]
    return render_step_curves("fig2b", preset, outcomes, out_dir, notes, caption, lambda ax: _draw_fig2b(ax, data),
                              FIG2B_COLUMNS, _fig2b_records(data), scale=scale, provenance=provenance)


def _draw_fig2b(ax, data: Fig2bData) -> None:
    """Each group's curves, earlier models drawn wider under the later ones (a curve that coincides with
    another shows as its rim), a cross where a run diverged, and the paper's final test accuracy dotted."""
    unit, xlabel = step_axis(data.max_step)
    handles = []
    for index, model in enumerate(data.models):
        color = MODEL_COLORS.get(model, "#555555")
        for group in (g for g in data.groups if g.model == model and g.curves is not None):
            alpha = 1.0 if group.fitted else 0.7
            lw = (1.6 if group.fitted else 1.0) + 1.4 * (len(data.models) - 1 - index)
            xs = draw_accuracy_curves(ax, group.curves, unit, color, lw=lw, alpha=alpha)
            if any(status_of(o) == "diverged" for o in group.runs):
                ax.plot([xs[-1]], [group.curves.train_acc[-1]], marker="x", color=color, ms=7)
            handles.append(Line2D([], [], color=color, lw=lw, alpha=alpha, label=group.label))
        paper = table1_row(model, False, False, False)
        if paper is not None:
            ax.axhline(paper.test_acc / 100, color=color, lw=0.9, ls=":")
    finish_step_axes(ax, handles, "(b) Inception with and without batch normalization (no explicit regularizer)",
                     unit, xlabel, paper="Table 1 (CIFAR-10) [S]")


def _fig2b_records(data: Fig2bData) -> Iterator[dict]:
    """Every evaluated epoch of every run drawn."""
    for group in data.groups:
        if group.curves is None:
            continue
        for o in group.runs:
            for r in data.metrics[id(o)]:
                yield {"model": group.model, "seed": o.config.seed, "run_id": o.config.run_id(),
                       "status": status_of(o), "epoch": r["epoch"], "step": r["step"], "train_acc": r["train_acc"],
                       "test_acc": r["test_acc"], "best_test_acc": r["best_test_acc"]}


def _fig2b_label(o: Outcome) -> str:
    return MODEL_TITLES.get(o.config.model, o.config.model)
