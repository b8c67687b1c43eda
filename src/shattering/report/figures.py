"""Figures 1a and 1b/1c of Zhang et al. (ICLR 2017), Section 2.1, drawn from run records; the style every
figure shares (each setting's and each model's colour and marker). Figure 2b is in :mod:`.batchnorm`.

Each ``render_*`` takes ``(preset, outcomes, out_dir, notes)``, writes ``<stem>.png``, ``<stem>.svg``,
``<stem>.csv`` (the plotted numbers, one row per run and point) and ``<stem>.json`` (the sidecar: notes, and
every run behind the figure with its config hash and data fingerprint), and returns the paths. The notes
(where the run differs from the paper) are printed under the axes as a caption.

Output is byte-stable: the same records give the same files (no dates in the metadata, fixed SVG ids).
Only runs that fit are averaged; runs that did not fit are drawn on their own, dashed or hollow, and
labelled; failed runs are listed in the caption.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import matplotlib
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..executors.outcome import Outcome
from ..experiments.presets import FIG1A_SETTINGS, FIG1BC_MODELS
from ..runs import RunRecord
from .common import mean_ci, status_of, write_records, write_sidecar
from .paper_numbers import FIG1B_CLAIM, FIG1B_P1, FIG1C_P0, FIG1C_P1, MODEL_TITLES
from .plotting import (
    RC,
    figure,
    integer_steps,
    legend_beside,
    notes_line,
    save,
    status_caption,
    step_axis,
)

SETTING_LABELS = {"true-labels": "true labels", "random-labels": "random labels",
                  "shuffled-pixels": "shuffled pixels", "random-pixels": "random pixels", "gaussian": "gaussian",
                  "partial-labels": "partially corrupted labels"}
SETTING_COLORS = {"true-labels": "#1f77b4", "random-labels": "#d62728", "shuffled-pixels": "#2ca02c",
                  "random-pixels": "#9467bd", "gaussian": "#ff7f0e", "partial-labels": "#8c564b"}
LEGEND_W = 2.6  # inches right of the axes for the legend (off the data)
# Fig. 1b/1c: each model its own marker, and the models' points a little apart in p, so that no series hides
# another (the small Inception and AlexNet reach nearly the same test error).
MODEL_MARKERS = {"inception-small": "o", "alexnet-small": "s", "mlp-1x512": "D", "inception-small-nobn": "v",
                 "mlp-3x512": "P"}
P_OFFSET = 0.022
MODEL_COLORS = {"inception-small": "#1f77b4", "alexnet-small": "#2ca02c", "mlp-1x512": "#d62728",
                "inception-small-nobn": "#ff7f0e", "mlp-3x512": "#9467bd"}



# --------------------------------------------------------------------------------------------------
# Figure 1a: training loss against steps
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LossCurve:
    """One run's training loss against steps: from its step log (``steps.csv``), or, for a run that logged
    fewer steps than ``log_every``, the loss of the whole training set at its evaluated epochs
    (``metrics.jsonl``)."""

    outcome: Outcome
    steps: list[int]
    losses: list[float]
    source: str

    @property
    def setting(self) -> str:
        return self.outcome.config.corruption

    @property
    def status(self) -> str:
        return status_of(self.outcome)


FIG1A_COLUMNS = ("setting", "seed", "run_id", "status", "source", "step", "loss")


def fig1a_curves(outcomes: Sequence[Outcome]) -> list[LossCurve]:
    """The loss curve of every finished run, read from its record."""
    curves = []
    for o in outcomes:
        if o.summary is None:
            continue
        record = RunRecord(o.run_dir)
        rows = record.read_steps()
        if rows:
            curves.append(LossCurve(o, [r["step"] for r in rows], [r["loss"] for r in rows], "steps.csv"))
        else:  # fewer steps than log_every: the epoch-end evaluation of the whole training set
            rows = record.read_evaluated_metrics()
            curves.append(LossCurve(o, [r["step"] for r in rows], [r["train_loss"] for r in rows], "metrics.jsonl"))
    return curves


def render_fig1a(preset, outcomes: Sequence[Outcome], out_dir: Path, notes: Sequence[str], *,
                 scale: str | None = None, provenance: bool = False) -> list[Path]:
    """Figure 1a: training loss against steps, one curve per setting (true labels ... gaussian)."""
    out_dir = Path(out_dir)
    curves = fig1a_curves(outcomes)
    fallback = sum(c.source == "metrics.jsonl" for c in curves)
    extra = []
    if fallback:
        extra.append(f"{fallback} run(s) logged fewer steps than log_every: their curve is the training "
                     "loss of the whole training set at the epochs evaluated in full (metrics.jsonl).")
    caption = [*notes_line(notes), *extra, *status_caption(outcomes, _fig1a_label, "fig1a")]
    with matplotlib.rc_context(RC):
        fig, (ax,) = figure(1, preset, caption, panel_w=6.2, scale=scale, provenance=provenance, legend_w=LEGEND_W)
        _draw_fig1a(ax, curves)
        paths = save(fig, out_dir, "fig1a", preset, caption, scale)
    paths.append(write_records(out_dir / "fig1a.csv", FIG1A_COLUMNS, _fig1a_records(curves)))
    paths.append(write_sidecar(out_dir, "fig1a", preset, outcomes, [*notes, *extra], paths, scale=scale,
                               caption=caption))
    return paths


def _draw_fig1a(ax, curves: Sequence[LossCurve]) -> None:
    """Per setting, the mean curve of the runs that fit (with a band) and each other run on its own."""
    unit, xlabel = step_axis(max((max(c.steps) for c in curves if c.steps), default=0))
    settings = [s for s in FIG1A_SETTINGS if any(c.setting == s for c in curves)]
    settings += sorted({c.setting for c in curves} - set(settings))
    handles, band = [], False
    for setting in settings:
        color = SETTING_COLORS.get(setting, "#555555")
        mine = [c for c in curves if c.setting == setting]
        fitted = [c for c in mine if c.status == "fit"]
        band |= _mean_curve(ax, fitted, unit, color)
        for c in mine:
            if c.status != "fit":
                _unfit_curve(ax, c.status, [x / unit for x in c.steps], c.losses, color)
        handles.append(Line2D([], [], color=color, lw=1.8,
                              label=f"{SETTING_LABELS.get(setting, setting)} ({len(fitted)}/{len(mine)} fit)"))
    handles += _status_handles({c.status for c in curves}, band)
    legend_beside(ax, handles)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("average training loss (cross-entropy)")
    ax.set_title("(a) learning curves", loc="left")
    top = max((y for c in curves for y in c.losses if math.isfinite(y)), default=2.5)
    ax.set_ylim(0, min(top, 20.0) * 1.08)
    ax.set_xlim(left=0)
    integer_steps(ax, unit)
    ax.grid(alpha=0.3)


def _fig1a_records(curves: Sequence[LossCurve]) -> Iterator[dict]:
    for c in curves:
        for step, loss in zip(c.steps, c.losses, strict=True):
            yield {"setting": c.setting, "seed": c.outcome.config.seed, "run_id": c.outcome.config.run_id(),
                   "status": c.status, "source": c.source, "step": step, "loss": loss}


# --------------------------------------------------------------------------------------------------
# Figures 1b and 1c: time to fit and test error against the label corruption p
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fig1bcRun:
    """One run of Figures 1b/1c (a row of ``fig1bc.csv``): its time to fit relative to the mean time to fit at
    p = 0 (runs that fit), or its steps over that time (a lower bound: runs that did not fit), and its test
    error; ``in_mean``: whether it fit, so that it is averaged in."""

    model: str
    p: float
    seed: int
    run_id: str
    status: str
    fit_step: int | None
    steps: int | None
    relative_time: float | None
    relative_time_lower_bound: float | None
    test_error: float | None
    in_mean: bool


@dataclass(frozen=True)
class Fig1bcPoint:
    """One model at one p: the means (and 95% confidence half-widths) over its runs that fit, None where none
    did (the sidecar's ``series``)."""

    model: str
    p: float
    n_runs: int
    n_fit: int
    relative_time_mean: float | None
    relative_time_ci: float | None
    test_error_mean: float | None
    test_error_ci: float | None


@dataclass(frozen=True)
class Fig1bcData:
    """What Figures 1b/1c draw: the models in the paper's order, chance error 1 - 1/K, the points, the runs,
    and the models whose runs at p = 0 did not fit (no reference time)."""

    models: list[str]
    chance: float
    points: list[Fig1bcPoint]
    runs: list[Fig1bcRun]
    no_reference: list[str]


FIG1BC_COLUMNS = tuple(f.name for f in fields(Fig1bcRun))


def fig1bc_data(outcomes: Sequence[Outcome]) -> Fig1bcData:
    """Per model and p, the time to fit relative to p = 0 and the test error at fit; runs that fit only."""
    models = [m for m in FIG1BC_MODELS if any(o.config.model == m for o in outcomes)]
    models += sorted({o.config.model for o in outcomes} - set(models))
    points, runs, no_reference = [], [], []
    for model in models:
        mine = [o for o in outcomes if o.config.model == model]
        base_runs = [o for o in mine if _p(o) == 0 and status_of(o) == "fit"]
        base = mean_ci([o.summary["fit_step"] for o in base_runs]).mean if base_runs else None
        if not base:
            base = None
            no_reference.append(MODEL_TITLES.get(model, model))
        for p in sorted({_p(o) for o in mine}):
            at_p = [o for o in mine if _p(o) == p]
            fit = [o for o in at_p if status_of(o) == "fit"]
            rel = mean_ci([o.summary["fit_step"] / base for o in fit]) if base and fit else None
            err = mean_ci([1 - o.summary["final"]["test_acc"] for o in fit]) if fit else None
            points.append(Fig1bcPoint(model, p, len(at_p), len(fit), rel.mean if rel else None,
                                      rel.ci if rel else None, err.mean if err else None, err.ci if err else None))
            runs += [_fig1bc_run(o, model, p, base) for o in at_p]
    return Fig1bcData(models, _chance(outcomes), points, runs, no_reference)


def render_fig1bc(preset, outcomes: Sequence[Outcome], out_dir: Path, notes: Sequence[str], *,
                  scale: str | None = None, provenance: bool = False) -> list[Path]:
    """Figures 1b and 1c: time to fit relative to p = 0, and test error at fit, against label corruption p."""
    out_dir = Path(out_dir)
    data = fig1bc_data(outcomes)
    extra = [f"No run at p = 0 fit for {', '.join(data.no_reference)}: time to fit has no reference, so panel (b) "
             "shows nothing for them."] if data.no_reference else []
    caption = [*notes_line(notes), *extra,
               "Filled markers: mean over the runs that fit (bars: 95% confidence interval over seeds). Hollow "
               "markers: runs that did not fit, never averaged in; in (b) at steps run / reference steps, a lower "
               "bound; in (c) at their test error when the budget ended.",
               *status_caption(outcomes, _fig1bc_label, "fig1bc")]
    with matplotlib.rc_context(RC):
        fig, (axb, axc) = figure(2, preset, caption, scale=scale, provenance=provenance)
        _draw_fig1bc(axb, axc, data)
        paths = save(fig, out_dir, "fig1bc", preset, caption, scale)
    paths.append(write_records(out_dir / "fig1bc.csv", FIG1BC_COLUMNS, (asdict(r) for r in data.runs)))
    paths.append(write_sidecar(
        out_dir, "fig1bc", preset, outcomes, [*notes, *extra], paths, scale=scale, caption=caption,
        series=[asdict(p) for p in data.points], chance_error=data.chance,
        paper={"fig1b_p1": {"low": FIG1B_P1.low, "high": FIG1B_P1.high, "tag": FIG1B_P1.tag,
                            "source": FIG1B_P1.source},
               "fig1b_claim": {"text": FIG1B_CLAIM.source, "tag": FIG1B_CLAIM.tag},
               "fig1c_p0": {m: {"value": a.value, "tag": a.tag, "source": a.source} for m, a in FIG1C_P0.items()},
               "fig1c_p1": {"value": FIG1C_P1.value, "tag": FIG1C_P1.tag, "source": FIG1C_P1.source}}))
    return paths


def _fig1bc_run(o: Outcome, model: str, p: float, base: float | None) -> Fig1bcRun:
    s = o.summary
    fitted = status_of(o) == "fit"
    return Fig1bcRun(model, p, o.config.seed, o.config.run_id(), status_of(o),
                     s["fit_step"] if s else None, s["steps"] if s else None,
                     s["fit_step"] / base if fitted and base else None,
                     s["steps"] / base if s and not fitted and base else None,
                     1 - s["final"]["test_acc"] if s and s.get("final") else None, fitted)


def _draw_fig1bc(axb, axc, data: Fig1bcData) -> None:
    """Panel (b): relative time to fit; panel (c): test error; each model a little apart in p, the paper's
    references and chance drawn beside them."""
    offsets = {m: (i - (len(data.models) - 1) / 2) * P_OFFSET for i, m in enumerate(data.models)}
    for model in data.models:
        color, dx = MODEL_COLORS.get(model, "#555555"), offsets[model]
        mine = [pt for pt in data.points if pt.model == model]
        timed = [pt for pt in mine if pt.relative_time_mean is not None]
        errors = [pt for pt in mine if pt.test_error_mean is not None]
        for ax, xs, ys, cis in ((axb, [pt.p + dx for pt in timed], [pt.relative_time_mean for pt in timed],
                                 [pt.relative_time_ci for pt in timed]),
                                (axc, [pt.p + dx for pt in errors], [pt.test_error_mean for pt in errors],
                                 [pt.test_error_ci for pt in errors])):
            if xs:
                ax.errorbar(xs, ys, yerr=cis, color=color, marker=MODEL_MARKERS.get(model, "o"), ms=5, lw=1.5,
                            capsize=2.5, mfc=color, mec="white", mew=0.6)
        unfit = [r for r in data.runs if r.model == model and not r.in_mean and r.status == "not-fit"]
        bounds = [r for r in unfit if r.relative_time_lower_bound is not None]
        if bounds:
            axb.plot([r.p + dx for r in bounds], [r.relative_time_lower_bound for r in bounds], ls="none",
                     marker="^", ms=6, mfc="none", mec=color, mew=1.3)
        ended = [r for r in unfit if r.test_error is not None]
        if ended:
            axc.plot([r.p + dx for r in ended], [r.test_error for r in ended], ls="none", marker="o", ms=6,
                     mfc="none", mec=color, mew=1.3)
        if model in FIG1C_P0:
            axc.plot([0], [FIG1C_P0[model].value], ls="none", marker="*", ms=10, mfc="white", mec=color, mew=1.2)

    # Paper references
    axb.axhline(1.0, color="#888888", lw=0.8, ls=":")
    axb.errorbar([1.0], [FIG1B_P1.value], yerr=[[FIG1B_P1.value - FIG1B_P1.low], [FIG1B_P1.high - FIG1B_P1.value]],
                 fmt="none", ecolor="#999999", elinewidth=7, alpha=0.35)
    axc.axhline(data.chance, color="#444444", lw=1.0, ls="--")
    axc.plot([1.0], [FIG1C_P1.value], ls="none", marker="*", ms=11, mfc="#444444", mec="#444444")
    if not any(pt.relative_time_mean is not None for pt in data.points):
        axb.text(0.5, 0.5, "no reference: no run at p = 0 fit", transform=axb.transAxes, ha="center",
                 va="center", color="#aa0000")
    model_handles = [Line2D([], [], color=MODEL_COLORS.get(m, "#555555"), marker=MODEL_MARKERS.get(m, "o"), ms=5,
                            lw=1.5, label=MODEL_TITLES.get(m, m)) for m in data.models]
    hb = [*model_handles,
          Line2D([], [], ls="none", marker="^", mfc="none", mec="#333333", label="did not fit (lower bound)"),
          Patch(color="#999999", alpha=0.35,
                label=f"paper: {FIG1B_P1.low:g}-{FIG1B_P1.high:g}x at p = 1 [{FIG1B_P1.tag}]")]
    axb.legend(handles=hb, loc="upper left")
    hc = [*model_handles,
          Line2D([], [], ls="none", marker="o", mfc="none", mec="#333333", label="did not fit (not averaged)"),
          Line2D([], [], color="#444444", ls="--", label=f"chance, 1 - 1/K = {data.chance:.2f}"),
          Line2D([], [], ls="none", marker="*", ms=9, mfc="white", mec="#333333",
                 label=f"paper at p = 0 (1 - Table 1) [{FIG1C_P0['inception-small'].tag}]"),
          Line2D([], [], ls="none", marker="*", ms=9, mfc="#444444", mec="#444444",
                 label=f"paper at p = 1: {FIG1C_P1.value:.2f} [{FIG1C_P1.tag}]")]
    axc.legend(handles=hc, loc="lower right")
    axb.set_title("(b) convergence slowdown", loc="left")
    axb.set_xlabel("label corruption p")
    axb.set_ylabel("time to fit (steps) relative to p = 0")
    axb.set_ylim(bottom=0)
    axc.set_title("(c) generalization error growth", loc="left")
    axc.set_xlabel("label corruption p")
    axc.set_ylabel("test error at fit (1 - test accuracy)")
    axc.set_ylim(0, 1)
    for ax in (axb, axc):
        ax.set_xlim(-0.06, 1.06)
        ax.grid(alpha=0.3)


# INTERNAL UTILITIES -------------------------------------------------------------------------------


def _mean_curve(ax, curves: Sequence[LossCurve], scale: float, color: str) -> bool:
    """Mean of the fitted curves over their common steps, with a confidence band; each run's tail beyond the
    shortest is drawn thin. Returns whether a band was drawn."""
    if not curves:
        return False
    n = min(len(c.steps) for c in curves)
    xs = [x / scale for x in curves[0].steps[:n]]
    stats = [mean_ci([c.losses[i] for c in curves]) for i in range(n)]
    ax.plot(xs, [s.mean for s in stats], color=color, lw=1.6)
    band = len(curves) > 1
    if band:
        ax.fill_between(xs, [s.mean - s.ci for s in stats], [s.mean + s.ci for s in stats], color=color, alpha=0.2,
                        lw=0)
        for c in curves:
            if len(c.steps) > n:
                ax.plot([x / scale for x in c.steps[n - 1:]], c.losses[n - 1:], color=color, lw=0.8, alpha=0.6)
    return band


def _unfit_curve(ax, status: str, xs: list, ys: list, color: str) -> None:
    if not xs:
        return
    if status == "diverged":
        finite = [(x, y) for x, y in zip(xs, ys, strict=True) if math.isfinite(y)]
        ax.plot([x for x, _ in finite], [y for _, y in finite], color=color, lw=1.0, ls=":")
        if finite:
            last_x, last_y = finite[-1]
            ax.plot([last_x], [last_y], marker="x", color=color, ms=7)
        return
    ax.plot(xs, ys, color=color, lw=1.1, ls="--")
    ax.plot([xs[-1]], [ys[-1]], marker="o", ms=6, mfc="none", mec=color, mew=1.3)


def _status_handles(statuses: set[str], band: bool) -> list:
    handles = []
    if "not-fit" in statuses:
        handles.append(Line2D([], [], color="#555555", lw=1.1, ls="--", marker="o", mfc="none",
                              label="did not fit (hollow: where the budget ended)"))
    if "diverged" in statuses:
        handles.append(Line2D([], [], color="#555555", lw=1.0, ls=":", marker="x", label="diverged"))
    if band:
        handles.append(Patch(color="#555555", alpha=0.2, label="95% confidence band over seeds"))
    return handles


def _fig1a_label(o: Outcome) -> str:
    return SETTING_LABELS.get(o.config.corruption, o.config.corruption)


def _fig1bc_label(o: Outcome) -> str:
    return f"{MODEL_TITLES.get(o.config.model, o.config.model)} p = {_p(o):g}"


def _p(o: Outcome) -> float:
    return float(o.config.resolved().p)


def _chance(outcomes: Sequence[Outcome]) -> float:
    for o in outcomes:
        if o.summary and o.summary.get("data", {}).get("classes"):
            return 1 - 1 / o.summary["data"]["classes"]
    return 0.9
