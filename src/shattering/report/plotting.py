"""What every figure of the report shares (Figures 1a, 1b/1c, 2a and 2b of Zhang et al., ICLR 2017): the style,
the page (title on top, saying what the scale may claim; legends beside the axes, off the data), the step axis,
the accuracy curves of Figure 2, and byte-stable PNG (200 dpi), SVG and PDF files (no dates or software versions
in their metadata).

The provenance (the notes, how each run ended, where the records are) is the figure's caption: it goes in the
JSON sidecar, the HTML page and the Markdown, not into the figure, so the figure can go into a paper as it is;
``provenance=True`` draws it under the axes as well.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..executors.outcome import Outcome
from ..experiments.presets import SMOKE_CAVEAT, scale_claim
from .common import (
    mean_ci,
    status_counts,
    status_of,
    status_text,
    unfit_lines,
    versions_of,
    wrap_lines,
    write_bytes,
    write_records,
    write_sidecar,
)

RC = {
    "svg.hashsalt": "shattering",  # fixed ids in the SVG: the same figure gives the same bytes
    "svg.fonttype": "none",  # text stays text (searchable, smaller)
    "font.size": 8.5,
    "axes.titlesize": 9.5,
    "axes.labelsize": 8.5,
    "legend.fontsize": 7.5,
    "legend.framealpha": 0.85,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
}
PNG_DPI = 200  # print quality (a journal asks for 200-300 dpi)
FORMATS = ("png", "svg", "pdf")
MAX_CAPTION_RUNS = 6  # list runs that did not fit one per line up to this many; beyond, point to the sidecar


def figure(ncols: int, preset: Any, caption: Sequence[str], panel_w: float = 4.7, panel_h: float = 3.4, *,
           scale: str | None = None, provenance: bool = False, legend_w: float = 0.0,
           nrows: int = 1) -> tuple[Figure, Sequence[Axes]]:
    """A figure of ``ncols`` panels on each of ``nrows`` rows (the axes come row after row), sized in inches,
    with the title on top (what ``scale`` may claim: :func:`~shattering.experiments.presets.scale_claim`) and
    ``legend_w`` inches right of the last panel for a legend off the data. The caption (provenance) is drawn
    below the axes only with ``provenance=True``."""
    width = max(7.0, panel_w * ncols + 1.0 + legend_w)
    lines = wrap_lines(caption, int(width * 19)) if provenance else []
    cap_h = 0.135 * len(lines) + 0.15 if lines else 0.05
    title = [f"Zhang et al. (ICLR 2017), {preset.paper_ref}: {scale_claim(scale, short=True)}",
             *wrap_lines([preset.title], int(width * 13)), *([f"({SMOKE_CAVEAT})"] if scale == "smoke" else [])]
    top_h = 0.45 + 0.2 * len(title)
    xlab_h = 0.5
    height = top_h + panel_h * nrows + (xlab_h + 0.25) * (nrows - 1) + xlab_h + cap_h
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=0.7 / width, right=1 - (0.25 + legend_w) / width, top=1 - top_h / height,
                        bottom=(xlab_h + cap_h) / height, wspace=0.25, hspace=(xlab_h + 0.25) / panel_h)
    axes = list(fig.subplots(nrows, ncols, squeeze=False).flat)
    fig.text(0.5, 1 - 0.12 / height, title[0], ha="center", va="top", fontsize=10.5, weight="bold")
    if len(title) > 1:
        fig.text(0.5, 1 - 0.34 / height, "\n".join(title[1:]), ha="center", va="top", fontsize=9)
    if lines:
        fig.text(0.012, (cap_h - 0.08) / height, "\n".join(lines), ha="left", va="top", fontsize=7,
                 color="#333333", linespacing=1.3)
    return fig, axes


def legend_beside(ax: Axes, handles: list) -> None:
    """The legend right of ``ax``, outside the axes: it never covers a curve (room made by ``legend_w``)."""
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


_METADATA = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None},
             "pdf": {"Creator": None, "Producer": None, "CreationDate": None}}


def save(fig: Figure, out_dir: Path, stem: str, preset: Any = None, caption: Sequence[str] = (),
         scale: str | None = None) -> list[Path]:
    """``stem.png`` (at :data:`PNG_DPI`), ``stem.svg`` and ``stem.pdf``, without dates or software versions in
    their metadata (the same figure gives the same bytes); with ``preset``, also ``stem.md``: the figure with
    its caption (the provenance) below it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in FORMATS:
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=PNG_DPI, metadata=_METADATA[fmt])
        paths.append(write_bytes(out_dir / f"{stem}.{fmt}", buf.getvalue()))
    if preset is not None:
        lines = [f"# Zhang et al. (ICLR 2017), {preset.paper_ref}: {scale_claim(scale)}", "",
                 f"**{preset.title}**", "", f"![{preset.paper_ref}]({stem}.png)", "",
                 *(f"- {line}" for line in caption), ""]
        paths.append(write_bytes(out_dir / f"{stem}.md", "\n".join(lines).encode()))
    return paths


def render_step_curves(stem: str, preset: Any, outcomes: Sequence[Outcome], out_dir: Path, notes: Sequence[str],
                       caption: Sequence[str], draw: Callable[[Axes], None], columns: Sequence[str], records,
                       *, scale: str | None, provenance: bool) -> list[Path]:
    """One wide panel of curves against steps (Figures 2a and 2b): drawn by ``draw(ax)``, saved as ``stem``, its
    numbers as ``<stem>.csv`` (``columns`` of ``records``) and its sidecar; the paths written."""
    out_dir = Path(out_dir)
    with matplotlib.rc_context(RC):
        fig, (ax,) = figure(1, preset, caption, panel_w=6.2, scale=scale, provenance=provenance, legend_w=3.7)
        draw(ax)
        paths = save(fig, out_dir, stem, preset, caption, scale)
    paths.append(write_records(out_dir / f"{stem}.csv", columns, records))
    paths.append(write_sidecar(out_dir, stem, preset, outcomes, notes, paths, scale=scale, caption=caption))
    return paths


def finish_step_axes(ax: Axes, handles: list, title: str, unit: float, xlabel: str, *, accuracy: str = "",
                     paper: str) -> None:
    """The legend (``handles`` and the line styles: test solid, training dashed, the best test accuracy so far
    shaded, the paper's final test accuracy dotted, ``paper`` naming its table), axis labels and limits of a
    panel of accuracy curves against steps (Figures 2a and 2b). ``accuracy``: " (top-1)" where it is top-1."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [*handles, Line2D([], [], color="#333333", lw=1.4, label=f"test accuracy{accuracy}"),
               Line2D([], [], color="#333333", lw=1.4, ls="--", label=f"training accuracy{accuracy}"),
               Patch(color="#333333", alpha=0.18, label="best test accuracy so far"),
               Line2D([], [], color="#333333", lw=0.9, ls=":", label=f"paper's final test accuracy, {paper}")]
    legend_beside(ax, handles)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy")
    ax.set_title(title, loc="left")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    integer_steps(ax, unit)
    ax.grid(alpha=0.3)


def integer_steps(ax: Axes, scale: float) -> None:
    if scale == 1:  # a handful of steps: no fractional ticks
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def step_axis(max_step: float) -> tuple[float, str]:
    if max_step >= 2000:
        return 1000.0, "training steps (thousands)"
    return 1.0, "training steps"


def notes_line(notes: Sequence[str]) -> list[str]:
    return [f"Differs from the paper: {'; '.join(notes)}."] if notes else []


def status_caption(outcomes: Sequence[Outcome], label: Callable[[Outcome], str], stem: str) -> list[str]:
    lines = []
    unfit = [o for o in outcomes if status_of(o) != "fit"]
    if unfit and len(unfit) <= MAX_CAPTION_RUNS:
        lines += unfit_lines(outcomes, label)
    elif unfit:
        failed = [o for o in unfit if status_of(o) == "failed"]
        lines.append(f"{len(unfit) - len(failed)} run(s) did not fit or diverged (marked in the plot; listed in "
                     f"{stem}.json).")
        lines += [f"{label(o)}, seed {o.config.seed}: {status_text(o)}" for o in failed]
    versions = ", ".join(versions_of(outcomes)) or "?"
    lines.append(f"{len(outcomes)} runs ({status_counts(outcomes)}); their config hashes, data fingerprints and "
                 f"records are listed in {stem}.json; shattering {versions}.")
    return lines


@dataclass(frozen=True)
class AccuracyCurves:
    """The mean accuracy curves of some runs at the epochs they all evaluated (Figure 2): the steps, and the
    training, test and best-so-far test accuracy at each."""

    steps: list[int]
    train_acc: list[float]
    test_acc: list[float]
    best_test_acc: list[float]


def mean_accuracy_curves(runs: Sequence[Outcome], metrics: dict) -> AccuracyCurves | None:
    """The mean training, test and best-so-far test accuracy of ``runs`` over their common evaluated epochs
    (``metrics[id(run)]``: a run's evaluated metrics rows); None when a run has no epoch."""
    n = min(len(metrics[id(o)]) for o in runs)
    if n == 0:
        return None

    def mean(key: str) -> list[float]:
        return [mean_ci([metrics[id(o)][i][key] for o in runs]).mean for i in range(n)]

    return AccuracyCurves([r["step"] for r in metrics[id(runs[0])][:n]], mean("train_acc"), mean("test_acc"),
                          mean("best_test_acc"))


def draw_accuracy_curves(ax: Axes, curves: AccuracyCurves, scale: float, color: str, *, lw: float = 1.6,
                         alpha: float = 1.0) -> list[float]:
    """Test (solid) and training (dashed) accuracy against steps / ``scale``, shaded from the test accuracy up to
    the best test accuracy so far (Figure 2); returns the x positions drawn."""
    xs = [step / scale for step in curves.steps]
    ax.fill_between(xs, curves.test_acc, curves.best_test_acc, color=color, alpha=0.18 * alpha, lw=0)
    ax.plot(xs, curves.test_acc, color=color, lw=lw, alpha=alpha)
    ax.plot(xs, curves.train_acc, color=color, lw=lw, ls="--", alpha=alpha)
    return xs
