"""Figures 1a, 1b/1c and 2b of Zhang et al. (ICLR 2017), drawn from run records.

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
from collections.abc import Sequence
from pathlib import Path

import matplotlib
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..executors.outcome import Outcome
from ..experiments.presets import FIG1A_SETTINGS, FIG1BC_MODELS
from ..runs import RunRecord
from .common import mean_ci, status_of, status_text, write_csv, write_sidecar
from .paper_numbers import FIG1B_CLAIM, FIG1B_P1, FIG1C_P0, FIG1C_P1, MODEL_TITLES, table1_row
from .plotting import (
    RC,
    draw_accuracy_curves,
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



def render_fig1a(preset, outcomes: Sequence[Outcome], out_dir: Path, notes: Sequence[str], *,
                 scale: str | None = None, provenance: bool = False) -> list[Path]:
    """Figure 1a: training loss against steps, one curve per setting (true labels ... gaussian)."""
    out_dir = Path(out_dir)
    with matplotlib.rc_context(RC):
        curves, fallback = [], []
        for o in outcomes:
            if o.summary is None:
                continue
            record = RunRecord(o.run_dir)
            rows = record.read_steps()
            if rows:
                xs, ys, source = [r["step"] for r in rows], [r["loss"] for r in rows], "steps.csv"
            else:  # fewer steps than log_every: the epoch-end evaluation of the whole training set
                rows = record.read_evaluated_metrics()
                xs, ys, source = [r["step"] for r in rows], [r["train_loss"] for r in rows], "metrics.jsonl"
                fallback.append(o)
            curves.append((o, xs, ys, source))
        max_step = max((max(xs) for _, xs, _, _ in curves if xs), default=0)
        unit, xlabel = step_axis(max_step)

        extra = []
        if fallback:
            extra.append(f"{len(fallback)} run(s) logged fewer steps than log_every: their curve is the training "
                         "loss of the whole training set at the epochs evaluated in full (metrics.jsonl).")
        caption = [*notes_line(notes), *extra, *status_caption(outcomes, _fig1a_label, "fig1a")]
        fig, (ax,) = figure(1, preset, caption, panel_w=6.2, scale=scale, provenance=provenance, legend_w=LEGEND_W)
        settings = [s for s in FIG1A_SETTINGS if any(o.config.corruption == s for o, *_ in curves)]
        settings += sorted({o.config.corruption for o, *_ in curves} - set(settings))
        handles, band = [], False
        for setting in settings:
            color = SETTING_COLORS.get(setting, "#555555")
            mine = [c for c in curves if c[0].config.corruption == setting]
            fitted = [c for c in mine if status_of(c[0]) == "fit"]
            band |= _mean_curve(ax, [(xs, ys) for _, xs, ys, _ in fitted], unit, color)
            for o, xs, ys, _ in mine:
                if status_of(o) != "fit":
                    _unfit_curve(ax, o, [x / unit for x in xs], ys, color)
            n_fit = len(fitted)
            handles.append(Line2D([], [], color=color, lw=1.8,
                                  label=f"{SETTING_LABELS.get(setting, setting)} ({n_fit}/{len(mine)} fit)"))
        handles += _status_handles(curves, band)
        legend_beside(ax, handles)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("average training loss (cross-entropy)")
        ax.set_title("(a) learning curves", loc="left")
        top = max((y for _, _, ys, _ in curves for y in ys if math.isfinite(y)), default=2.5)
        ax.set_ylim(0, min(top, 20.0) * 1.08)
        ax.set_xlim(left=0)
        integer_steps(ax, unit)
        ax.grid(alpha=0.3)

        paths = save(fig, out_dir, "fig1a", preset, caption, scale)
        paths.append(write_csv(out_dir / "fig1a.csv", ("setting", "seed", "run_id", "status", "source", "step", "loss"),
                               ((o.config.corruption, o.config.seed, o.config.run_id(), status_of(o), src, x, y)
                                for o, xs, ys, src in curves for x, y in zip(xs, ys, strict=True))))
        paths.append(write_sidecar(out_dir, "fig1a", preset, outcomes, [*notes, *extra], paths, scale=scale,
                                   caption=caption))
    return paths


def render_fig1bc(preset, outcomes: Sequence[Outcome], out_dir: Path, notes: Sequence[str], *,
                  scale: str | None = None, provenance: bool = False) -> list[Path]:
    """Figures 1b and 1c: time to fit relative to p = 0, and test error at fit, against label corruption p."""
    out_dir = Path(out_dir)
    with matplotlib.rc_context(RC):
        models = [m for m in FIG1BC_MODELS if any(o.config.model == m for o in outcomes)]
        models += sorted({o.config.model for o in outcomes} - set(models))
        chance = _chance(outcomes)
        offsets = {m: (i - (len(models) - 1) / 2) * P_OFFSET for i, m in enumerate(models)}
        series, rows, no_reference = [], [], []
        for model in models:
            runs = [o for o in outcomes if o.config.model == model]
            base_runs = [o for o in runs if _p(o) == 0 and status_of(o) == "fit"]
            base = mean_ci([o.summary["fit_step"] for o in base_runs])[0] if base_runs else None
            if not base:
                base = None
                no_reference.append(MODEL_TITLES.get(model, model))
            for p in sorted({_p(o) for o in runs}):
                at_p = [o for o in runs if _p(o) == p]
                fit = [o for o in at_p if status_of(o) == "fit"]
                rel = [o.summary["fit_step"] / base for o in fit] if base else []
                err = [1 - o.summary["final"]["test_acc"] for o in fit]
                rel_mean, rel_ci = mean_ci(rel)
                err_mean, err_ci = mean_ci(err)
                series.append({"model": model, "p": p, "n_runs": len(at_p), "n_fit": len(fit),
                               "relative_time_mean": rel_mean if rel else None, "relative_time_ci": rel_ci if rel
                               else None, "test_error_mean": err_mean if err else None,
                               "test_error_ci": err_ci if err else None})
                for o in at_p:
                    s = o.summary
                    fitted = status_of(o) == "fit"
                    rows.append((model, p, o.config.seed, o.config.run_id(), status_of(o),
                                 s["fit_step"] if s else None, s["steps"] if s else None,
                                 s["fit_step"] / base if fitted and base else None,
                                 s["steps"] / base if s and not fitted and base else None,
                                 1 - s["final"]["test_acc"] if s and s.get("final") else None, fitted))

        extra = [f"No run at p = 0 fit for {', '.join(no_reference)}: time to fit has no reference, so panel (b) "
                 "shows nothing for them."] if no_reference else []
        caption = [*notes_line(notes), *extra,
                   "Filled markers: mean over the runs that fit (bars: 95% confidence interval over seeds). Hollow "
                   "markers: runs that did not fit, never averaged in; in (b) at steps run / reference steps, a lower "
                   "bound; in (c) at their test error when the budget ended.",
                   *status_caption(outcomes, _fig1bc_label, "fig1bc")]
        fig, (axb, axc) = figure(2, preset, caption, scale=scale, provenance=provenance)
        for model in models:
            color, dx = MODEL_COLORS.get(model, "#555555"), offsets[model]
            mine = [s for s in series if s["model"] == model]
            pts_b = [(s["p"] + dx, s["relative_time_mean"], s["relative_time_ci"]) for s in mine
                     if s["relative_time_mean"] is not None]
            pts_c = [(s["p"] + dx, s["test_error_mean"], s["test_error_ci"]) for s in mine
                     if s["test_error_mean"] is not None]
            for ax, pts in ((axb, pts_b), (axc, pts_c)):
                if pts:
                    ax.errorbar([x for x, _, _ in pts], [y for _, y, _ in pts], yerr=[c for _, _, c in pts],
                                color=color, marker=MODEL_MARKERS.get(model, "o"), ms=5, lw=1.5, capsize=2.5,
                                mfc=color, mec="white", mew=0.6)
            unfit = [r for r in rows if r[0] == model and not r[-1] and r[4] == "not-fit"]
            lb = [(r[1] + dx, r[8]) for r in unfit if r[8] is not None]
            if lb:
                axb.plot([x for x, _ in lb], [y for _, y in lb], ls="none", marker="^", ms=6, mfc="none",
                         mec=color, mew=1.3)
            ce = [(r[1] + dx, r[9]) for r in unfit if r[9] is not None]
            if ce:
                axc.plot([x for x, _ in ce], [y for _, y in ce], ls="none", marker="o", ms=6, mfc="none",
                         mec=color, mew=1.3)
            if model in FIG1C_P0:
                axc.plot([0], [FIG1C_P0[model].value], ls="none", marker="*", ms=10, mfc="white", mec=color, mew=1.2)

        # Paper references
        axb.axhline(1.0, color="#888888", lw=0.8, ls=":")
        axb.errorbar([1.0], [FIG1B_P1.value], yerr=[[FIG1B_P1.value - FIG1B_P1.low], [FIG1B_P1.high - FIG1B_P1.value]],
                     fmt="none", ecolor="#999999", elinewidth=7, alpha=0.35)
        axc.axhline(chance, color="#444444", lw=1.0, ls="--")
        axc.plot([1.0], [FIG1C_P1.value], ls="none", marker="*", ms=11, mfc="#444444", mec="#444444")
        any_fit = any(s["relative_time_mean"] is not None for s in series)
        if not any_fit:
            axb.text(0.5, 0.5, "no reference: no run at p = 0 fit", transform=axb.transAxes, ha="center",
                     va="center", color="#aa0000")
        model_handles = [Line2D([], [], color=MODEL_COLORS.get(m, "#555555"), marker=MODEL_MARKERS.get(m, "o"), ms=5,
                                lw=1.5, label=MODEL_TITLES.get(m, m)) for m in models]
        hb = [*model_handles,
              Line2D([], [], ls="none", marker="^", mfc="none", mec="#333333", label="did not fit (lower bound)"),
              Patch(color="#999999", alpha=0.35,
                    label=f"paper: {FIG1B_P1.low:g}-{FIG1B_P1.high:g}x at p = 1 [{FIG1B_P1.tag}]")]
        axb.legend(handles=hb, loc="upper left")
        hc = [*model_handles,
              Line2D([], [], ls="none", marker="o", mfc="none", mec="#333333", label="did not fit (not averaged)"),
              Line2D([], [], color="#444444", ls="--", label=f"chance, 1 - 1/K = {chance:.2f}"),
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

        paths = save(fig, out_dir, "fig1bc", preset, caption, scale)
        paths.append(write_csv(out_dir / "fig1bc.csv",
                               ("model", "p", "seed", "run_id", "status", "fit_step", "steps", "relative_time",
                                "relative_time_lower_bound", "test_error", "in_mean"), rows))
        paths.append(write_sidecar(
            out_dir, "fig1bc", preset, outcomes, [*notes, *extra], paths, scale=scale, caption=caption, series=series,
            chance_error=chance,
            paper={"fig1b_p1": {"low": FIG1B_P1.low, "high": FIG1B_P1.high, "tag": FIG1B_P1.tag,
                                "source": FIG1B_P1.source},
                   "fig1b_claim": {"text": FIG1B_CLAIM.source, "tag": FIG1B_CLAIM.tag},
                   "fig1c_p0": {m: {"value": a.value, "tag": a.tag, "source": a.source} for m, a in FIG1C_P0.items()},
                   "fig1c_p1": {"value": FIG1C_P1.value, "tag": FIG1C_P1.tag, "source": FIG1C_P1.source}}))
    return paths


def render_fig2b(preset, outcomes: Sequence[Outcome], out_dir: Path, notes: Sequence[str], *,
                 scale: str | None = None, provenance: bool = False) -> list[Path]:
    """Figure 2b: training and test accuracy against steps, Inception with and without batch normalization;
    the shaded area reaches up to the best test accuracy so far (what early stopping could gain)."""
    out_dir = Path(out_dir)
    with matplotlib.rc_context(RC):
        models = [m for m in ("inception-small", "inception-small-nobn") if any(o.config.model == m for o in outcomes)]
        models += sorted({o.config.model for o in outcomes} - set(models))
        metrics = {id(o): RunRecord(o.run_dir).read_evaluated_metrics() for o in outcomes if o.summary is not None}
        caption = [*notes_line(notes),
                   "Solid: test accuracy; dashed: training accuracy; shaded: up to the best test accuracy so far "
                   "(early stopping's reach). Lines of runs that fit are means over seeds; a run that did not fit or "
                   "diverged is drawn on its own, thinner.",
                   *status_caption(outcomes, _fig2b_label, "fig2b")]
        fig, (ax,) = figure(1, preset, caption, panel_w=6.2, scale=scale, provenance=provenance, legend_w=3.7)
        max_step = max((r["step"] for rows in metrics.values() for r in rows), default=0)
        unit, xlabel = step_axis(max_step)
        handles, rows_out = [], []
        for index, model in enumerate(models):
            color = MODEL_COLORS.get(model, "#555555")
            mine = [o for o in outcomes if o.config.model == model and o.summary is not None]
            fitted = [o for o in mine if status_of(o) == "fit"]
            groups = ([(f"{MODEL_TITLES.get(model, model)}: fit ({len(fitted)} run{'s' * (len(fitted) != 1)})",
                        fitted, 1.0)] if fitted else [])
            groups += [(f"{MODEL_TITLES.get(model, model)}, seed {o.config.seed}: {status_text(o)}", [o], 0.7)
                       for o in mine if status_of(o) != "fit"]
            for label, runs, alpha in groups:
                # earlier models drawn wider, under the later ones: a curve that coincides with another shows as its rim
                lw = (1.6 if alpha == 1.0 else 1.0) + 1.4 * (len(models) - 1 - index)
                drawn = draw_accuracy_curves(ax, runs, metrics, unit, color, lw=lw, alpha=alpha)
                if drawn is None:
                    continue
                xs, curves = drawn
                if any(status_of(o) == "diverged" for o in runs):
                    ax.plot([xs[-1]], [curves["train_acc"][-1]], marker="x", color=color, ms=7)
                handles.append(Line2D([], [], color=color, lw=lw, alpha=alpha, label=label))
                for o in runs:
                    rows_out += [(model, o.config.seed, o.config.run_id(), status_of(o), r["epoch"], r["step"],
                                  r["train_acc"], r["test_acc"], r["best_test_acc"]) for r in metrics[id(o)]]
            paper = table1_row(model, False, False, False)
            if paper is not None:
                ax.axhline(paper.test_acc / 100, color=color, lw=0.9, ls=":")
        handles += [Line2D([], [], color="#333333", lw=1.4, label="test accuracy"),
                    Line2D([], [], color="#333333", lw=1.4, ls="--", label="training accuracy"),
                    Patch(color="#333333", alpha=0.18, label="best test accuracy so far"),
                    Line2D([], [], color="#333333", lw=0.9, ls=":", label="paper's final test accuracy, Table 1 "
                                                                          "(CIFAR-10) [S]")]
        legend_beside(ax, handles)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("accuracy")
        ax.set_title("(b) Inception with and without batch normalization (no explicit regularizer)", loc="left")
        ax.set_ylim(0, 1.02)
        ax.set_xlim(left=0)
        integer_steps(ax, unit)
        ax.grid(alpha=0.3)

        paths = save(fig, out_dir, "fig2b", preset, caption, scale)
        paths.append(write_csv(out_dir / "fig2b.csv", ("model", "seed", "run_id", "status", "epoch", "step",
                                                       "train_acc", "test_acc", "best_test_acc"), rows_out))
        paths.append(write_sidecar(out_dir, "fig2b", preset, outcomes, notes, paths, scale=scale, caption=caption))
    return paths


# INTERNAL UTILITIES -------------------------------------------------------------------------------


def _mean_curve(ax, curves: list[tuple[list, list]], scale: float, color: str) -> bool:
    """Mean of the fitted curves over their common steps, with a confidence band; each run's tail beyond the
    shortest is drawn thin. Returns whether a band was drawn."""
    if not curves:
        return False
    n = min(len(xs) for xs, _ in curves)
    xs = [x / scale for x in curves[0][0][:n]]
    stats = [mean_ci([ys[i] for _, ys in curves]) for i in range(n)]
    mean = [m for m, _ in stats]
    ax.plot(xs, mean, color=color, lw=1.6)
    band = len(curves) > 1
    if band:
        ax.fill_between(xs, [m - c for m, c in stats], [m + c for m, c in stats], color=color, alpha=0.2, lw=0)
        for cx, cy in curves:
            if len(cx) > n:
                ax.plot([x / scale for x in cx[n - 1:]], cy[n - 1:], color=color, lw=0.8, alpha=0.6)
    return band


def _unfit_curve(ax, outcome: Outcome, xs: list, ys: list, color: str) -> None:
    if not xs:
        return
    if status_of(outcome) == "diverged":
        finite = [(x, y) for x, y in zip(xs, ys, strict=True) if math.isfinite(y)]
        ax.plot([x for x, _ in finite], [y for _, y in finite], color=color, lw=1.0, ls=":")
        if finite:
            ax.plot([finite[-1][0]], [finite[-1][1]], marker="x", color=color, ms=7)
        return
    ax.plot(xs, ys, color=color, lw=1.1, ls="--")
    ax.plot([xs[-1]], [ys[-1]], marker="o", ms=6, mfc="none", mec=color, mew=1.3)


def _status_handles(curves, band: bool) -> list:
    handles = []
    statuses = {status_of(c[0]) for c in curves}
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


def _fig2b_label(o: Outcome) -> str:
    return MODEL_TITLES.get(o.config.model, o.config.model)


def _p(o: Outcome) -> float:
    return float(o.config.resolved().p)


def _chance(outcomes: Sequence[Outcome]) -> float:
    for o in outcomes:
        if o.summary and o.summary.get("data", {}).get("classes"):
            return 1 - 1 / o.summary["data"]["classes"]
    return 0.9
