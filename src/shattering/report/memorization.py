"""Memorization curves (Arpit et al., ICML 2017, "A closer look at memorization in deep networks", Section 3,
on the label corruption of Section 2.1 of Zhang et al., ICLR 2017): training accuracy on the examples whose
label was kept (clean) and on those whose label was changed (corrupted, against the label trained on), with the
test accuracy beside them, per evaluated epoch.

Arpit et al.'s claims, given a measured verdict on the runs: the network fits the clean examples first and the
corrupted ones later, and the test accuracy peaks before the corrupted examples are memorized (then falls).

Reads only the epochs a run evaluated in full (a metrics row holding the key); writes ``memorization.png``,
``.svg``, ``.pdf``, ``.md`` (the figure, the table and the verdicts), ``memorization.csv`` (the curves) and
``memorization.json`` (the sidecar).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import matplotlib
from matplotlib.lines import Line2D

from ..executors.outcome import Outcome
from ..runs import RunRecord
from .common import status_of, status_text, write_records, write_sidecar, write_text
from .figures import MODEL_COLORS
from .paper_numbers import MODEL_TITLES
from .plotting import RC, figure, legend_beside, notes_line, save, status_caption
from .verdicts import claim, claim_lines, tally

ARPIT = "Arpit et al. 2017, A closer look at memorization in deep networks, Section 3"

FIT_LEVEL = 0.99  # "fit": 99% of a part's examples predicted as labelled
CURVES = (("train_acc_clean", "clean examples (training)", "-"),
          ("train_acc_corrupted", "corrupted examples (training, their new label)", "--"),
          ("test_acc", "test", ":"))
COLUMNS = ("model", "p", "seed", "status", "epochs", "clean fits 99% (epoch)", "corrupted fits 99% (epoch)",
           "test peak (epoch: acc %)", "test at end %", "run")
CSV_COLUMNS = ("model", "p", "seed", "run_id", "status", "epoch", "train_acc_clean", "train_acc_corrupted", "test_acc")


class CurvePoint(NamedTuple):
    """One evaluated epoch of a curve: the epoch and the accuracy."""

    epoch: int
    value: float


def memorization_rows(outcomes: Sequence[Outcome]) -> list[dict]:
    """Per run, a dict: its evaluated curves (``curves[key]``: :class:`CurvePoint` s) and where they cross
    :data:`FIT_LEVEL` (``clean_fit_epoch``, ``corrupted_fit_epoch``), the test peak (``test_peak_epoch``,
    ``test_peak``), the test accuracy at the end (``test_end``) and the last epoch evaluated."""
    rows = []
    for o in outcomes:
        row = {"outcome": o, "model": o.config.model, "p": float(o.config.resolved().p), "seed": o.config.seed,
               "run_id": o.config.run_id(), "status": status_of(o), "curves": {k: [] for k, _, _ in CURVES}}
        if o.summary is not None:
            for m in RunRecord(o.run_dir).read_metrics():
                if not isinstance(m, dict) or not _number(m.get("epoch")):
                    continue
                for key in row["curves"]:
                    if _number(m.get(key)):
                        row["curves"][key].append(CurvePoint(int(m["epoch"]), float(m[key])))
        curves = row["curves"]
        row["clean_fit_epoch"] = _first_at(curves["train_acc_clean"], FIT_LEVEL)
        row["corrupted_fit_epoch"] = _first_at(curves["train_acc_corrupted"], FIT_LEVEL)
        test = curves["test_acc"]
        best = max(test, key=lambda point: point.value, default=None)  # the first epoch at the maximum
        row["test_peak_epoch"], row["test_peak"] = (best.epoch, best.value) if best else (None, None)
        row["test_end"] = test[-1].value if test else None
        row["last_epoch"] = max((e for c in curves.values() for e, _ in c), default=None)
        rows.append(row)
    return rows


def clean_first(row: dict) -> bool | None:
    """Whether the clean examples reached 99% before the corrupted ones (True where only they did); None where
    neither part did, or the run has no corrupted examples."""
    if not row["curves"]["train_acc_corrupted"]:
        return None
    clean, corrupted = row["clean_fit_epoch"], row["corrupted_fit_epoch"]
    if clean is None:
        return False if corrupted is not None else None
    return corrupted is None or clean < corrupted


def peak_before_memorized(row: dict) -> bool | None:
    """Whether the test accuracy peaked before the corrupted examples reached 99% (before the end of training
    where they never did) and ended below its peak; None without test or corrupted curves."""
    if row["test_peak_epoch"] is None or not row["curves"]["train_acc_corrupted"]:
        return None
    limit = row["corrupted_fit_epoch"] if row["corrupted_fit_epoch"] is not None else row["last_epoch"]
    return row["test_peak_epoch"] < limit and row["test_end"] < row["test_peak"]


def memorization_claims(rows: Sequence[dict]) -> list[dict]:
    """Arpit et al.'s two claims with their verdicts measured on ``rows`` (:func:`memorization_rows`)."""
    first, first_words = tally([clean_first(r) for r in rows])
    peak, peak_words = tally([peak_before_memorized(r) for r in rows])
    return [claim("the clean examples are fit (99%) before the corrupted ones", first, first_words, ARPIT),
            claim("test accuracy peaks before the corrupted examples are memorized (99%), and ends lower",
                  peak, peak_words, ARPIT)]


def render_memorization(preset, outcomes: Sequence[Outcome], out_dir: Path, notes: Sequence[str], *,
                        scale: str | None = None, provenance: bool = False) -> list[Path]:
    """The memorization figure (one panel per p), table and verdicts."""
    out_dir = Path(out_dir)
    rows = memorization_rows(outcomes)
    claims = memorization_claims(rows)
    display = [[_display(r)[c] for c in COLUMNS] for r in rows]
    ps = sorted({r["p"] for r in rows})
    caption = [*notes_line(notes),
               "Solid: training accuracy on the examples whose label was kept; dashed: on the examples whose "
               "label was changed, against their new label (memorization); dotted: test accuracy (true labels). "
               "Epochs without a full evaluation are not drawn.",
               *claim_lines(claims), *status_caption(outcomes, _label, "memorization")]
    with matplotlib.rc_context(RC):
        fig, axes = figure(max(len(ps), 1), preset, caption, panel_w=3.4, scale=scale, provenance=provenance,
                           legend_w=2.9)
        _draw(axes, rows, ps)
        paths = save(fig, out_dir, "memorization", preset, caption, scale)
    _append_table(out_dir / "memorization.md", display)
    paths.append(write_records(out_dir / "memorization.csv", CSV_COLUMNS, _curve_records(rows)))
    table = {"columns": list(COLUMNS), "rows": display}
    paths.append(write_sidecar(out_dir, "memorization", preset, outcomes, notes, paths, scale=scale,
                               caption=caption, table=table, claims=claims, fit_level=FIT_LEVEL,
                               series=[{k: r[k] for k in ("model", "p", "seed", "run_id", "clean_fit_epoch",
                                                          "corrupted_fit_epoch", "test_peak_epoch", "test_peak",
                                                          "test_end")} for r in rows]))
    return paths


# INTERNAL UTILITIES -------------------------------------------------------------------------------


def _draw(axes, rows: Sequence[dict], ps: Sequence[float]) -> None:
    """One panel per p: each run's three curves in its model's colour (thinner where it did not fit), its test
    peak marked, the 99% level dotted; the legend beside the last panel."""
    for ax, p in zip(axes, ps or [None], strict=True):
        for r in (r for r in rows if r["p"] == p):
            color = MODEL_COLORS.get(r["model"], "#555555")
            for key, _, ls in CURVES:
                pts = r["curves"][key]
                if pts:
                    ax.plot([pt.epoch for pt in pts], [pt.value for pt in pts], color=color, ls=ls, lw=1.3,
                            alpha=1.0 if r["status"] == "fit" else 0.6)
            if r["test_peak_epoch"] is not None:
                ax.plot([r["test_peak_epoch"]], [r["test_peak"]], marker="v", color=color, ms=5)
        ax.axhline(FIT_LEVEL, color="#888888", lw=0.7, ls=":")
        ax.set_title(f"p = {p:g}" if p is not None else "no runs", loc="left")
        ax.set_xlabel("epoch")
        ax.set_ylim(0, 1.02)
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    handles = [Line2D([], [], color=MODEL_COLORS.get(m, "#555555"), lw=1.6, label=MODEL_TITLES.get(m, m))
               for m in dict.fromkeys(r["model"] for r in rows)]
    handles += [Line2D([], [], color="#333333", ls=ls, lw=1.3, label=text) for _, text, ls in CURVES]
    handles.append(Line2D([], [], color="#333333", marker="v", ls="none", label="test accuracy peak"))
    legend_beside(axes[-1], handles)


def _display(r: dict) -> dict:
    """A run's row of the table, column by column (:data:`COLUMNS`)."""
    last = r["last_epoch"]
    never = f"not reached in {last}" if last is not None else "—"
    peak = f"{r['test_peak_epoch']}: {100 * r['test_peak']:.2f}" if r["test_peak_epoch"] is not None else "—"
    corrupted = (r["corrupted_fit_epoch"] if r["corrupted_fit_epoch"] is not None
                 else never if r["curves"]["train_acc_corrupted"] else "no corrupted examples")
    return {"model": MODEL_TITLES.get(r["model"], r["model"]), "p": f"{r['p']:g}", "seed": r["seed"],
            "status": status_text(r["outcome"]), "epochs": last if last is not None else "—",
            "clean fits 99% (epoch)": r["clean_fit_epoch"] if r["clean_fit_epoch"] is not None else never,
            "corrupted fits 99% (epoch)": corrupted, "test peak (epoch: acc %)": peak,
            "test at end %": f"{100 * r['test_end']:.2f}" if r["test_end"] is not None else "—", "run": r["run_id"]}


def _append_table(md: Path, display: list[list]) -> None:
    """The table under the figure in ``memorization.md`` (what the HTML page shows from the sidecar)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in display]
    write_text(md, md.read_text() + "\n" + "\n".join(lines) + "\n")


def _curve_records(rows: Sequence[dict]) -> Iterator[dict]:
    """Per run and evaluated epoch, the three accuracies (empty where not measured)."""
    for r in rows:
        by_epoch: dict[int, dict] = {}
        for key, pts in r["curves"].items():
            for pt in pts:
                by_epoch.setdefault(pt.epoch, {})[key] = pt.value
        for e in sorted(by_epoch):
            got = by_epoch[e]
            yield {"model": r["model"], "p": r["p"], "seed": r["seed"], "run_id": r["run_id"], "status": r["status"],
                   "epoch": e, **{key: got.get(key) for key, _, _ in CURVES}}


def _first_at(points: Sequence[CurvePoint], level: float) -> int | None:
    return next((pt.epoch for pt in points if pt.value >= level), None)


def _label(o: Outcome) -> str:
    return f"{MODEL_TITLES.get(o.config.model, o.config.model)} p = {float(o.config.resolved().p):g}"


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
