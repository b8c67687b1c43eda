"""Table 2 and Figure 2a of Zhang et al. (ICLR 2017): Inception V3 on ImageNet with and without data
augmentation, dropout and weight decay, and on random labels; our numbers beside the paper's.

``render_table2`` writes ``table2.md``, ``table2.csv`` and the sidecar ``table2.json``; ``render_fig2a`` writes
``fig2a.png``, ``fig2a.svg``, ``fig2a.csv`` and ``fig2a.json`` (as the other renderers, byte-stable).

These runs train for their whole budget (the paper did not fit ImageNet's random labels either: 95.20%
top-1), so our cells are means over every finished run of a row (failed and diverged runs are shown on their
own), with the best test accuracy during training in parentheses, as the paper prints it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from matplotlib.lines import Line2D

from ..executors.outcome import Outcome
from ..experiments.presets import scale_claim
from ..runs import RunRecord
from .common import mean_ci, status_of, status_text, versions_of, write_records, write_sidecar, write_text
from .paper_numbers import TABLE2_ALEXNET_TOP5_TEST, TRUST, Table2Row, table2_row
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

SETTING_COLORS = {"aug, dropout, wd": "#1f77b4", "aug": "#2ca02c", "wd": "#ff7f0e", "none": "#d62728"}


class Accuracy(NamedTuple):
    """One accuracy of Table 2: its key (a :class:`~.paper_numbers.Table2Row` field), its column, the run
    summary's final value and best-so-far value it is read from (None: no best-so-far is shown)."""

    key: str
    column: str
    final: str
    best: str | None


ACCURACIES = (Accuracy("top1_train", "top-1 train %", "train_acc", None),
              Accuracy("top5_train", "top-5 train %", "train_acc_top5", None),
              Accuracy("top1_test", "top-1 test %", "test_acc", "best_test_acc"),
              Accuracy("top5_test", "top-5 test %", "test_acc_top5", "best_test_acc_top5"))
TABLE2_COLUMNS = ("data aug", "dropout", "weight decay", "labels", "top-1 train % (ours)", "top-1 train % (paper)",
                  "top-5 train % (ours)", "top-5 train % (paper)", "top-1 test % (ours)", "top-1 test % (paper)",
                  "top-5 test % (ours)", "top-5 test % (paper)", "status", "runs")
TABLE2_CSV_COLUMNS = ("data_aug", "dropout", "weight_decay", "labels",
                      *(f"{a.key}_{part}" for a in ACCURACIES
                        for part in ("ours", "ours_best", "paper", "paper_best", "paper_tag")),
                      "status", "n_runs", "run_ids")
FIG2A_COLUMNS = ("setting", "seed", "run_id", "status", "epoch", "step", "train_acc", "test_acc", "best_test_acc",
                 "test_acc_top5")


class Setting(NamedTuple):
    """A row of Table 2: which explicit regularizers are on, and whether the labels are random."""

    augmentation: bool
    dropout: bool
    weight_decay: bool
    random_labels: bool

    @property
    def name(self) -> str:
        """``aug, dropout, wd``, ``none``, ... (``, random labels`` appended)."""
        parts = [name for name, on in (("aug", self.augmentation), ("dropout", self.dropout),
                                       ("wd", self.weight_decay)) if on]
        return (", ".join(parts) or "none") + (", random labels" if self.random_labels else "")


@dataclass(frozen=True)
class Measured:
    """One of our cells: the mean (± CI) over a row's finished runs as text, the mean, and the mean best test
    accuracy during training (None where not measured)."""

    text: str
    mean: float | None
    best: float | None


@dataclass(frozen=True)
class Table2Result:
    """One row of Table 2 measured: its setting and runs, the paper's row, our four accuracies (keyed as
    :data:`ACCURACIES`), the largest dropout rate and weight decay of its runs, and how they ended."""

    setting: Setting
    runs: list[Outcome]
    paper: Table2Row | None
    cells: dict[str, Measured]
    dropout: float
    weight_decay: float
    status: str


def table2_results(outcomes: Sequence[Outcome]) -> list[Table2Result]:
    """One result per setting, in the order of the settings' first runs."""
    return [Table2Result(setting, runs, _paper_row(setting), {a.key: _cell(runs, a.final, a.best) for a in ACCURACIES},
                         max(o.config.dropout for o in runs), max(o.config.weight_decay for o in runs), _status(runs))
            for setting, runs in _settings(outcomes).items()]


def render_table2(preset, outcomes: Sequence[Outcome], out_dir: Path, notes: Sequence[str], *,
                  scale: str | None = None, provenance: bool = False) -> list[Path]:
    """Table 2: top-1 and top-5 training and test accuracy; the best test accuracy so far in parentheses."""
    out_dir = Path(out_dir)
    results = table2_results(outcomes)
    display = [[_display(r)[c] for c in TABLE2_COLUMNS] for r in results]
    display.append(["AlexNet (Krizhevsky et al. 2012), for reference", "", "", "true", "", "—", "", "—", "", "—",
                    "", TABLE2_ALEXNET_TOP5_TEST.text(1), "", ""])
    paths = [_markdown(out_dir / "table2.md", preset, notes, TABLE2_COLUMNS, display, outcomes, scale)]
    paths.append(write_records(out_dir / "table2.csv", TABLE2_CSV_COLUMNS, (_csv_record(r) for r in results)))
    paths.append(write_sidecar(out_dir, "table2", preset, outcomes, notes, paths, scale=scale,
                               table={"columns": list(TABLE2_COLUMNS), "rows": display}))
    return paths


@dataclass(frozen=True)
class SettingCurves:
    """The runs of one setting drawn in Figure 2a: the finished ones with an evaluated epoch, their mean
    curves, and the paper's final top-1 test accuracy (a fraction; None where Table 2 has none)."""

    setting: Setting
    runs: list[Outcome]
    curves: AccuracyCurves | None
    paper_top1_test: float | None


@dataclass(frozen=True)
class Fig2aData:
    """What Figure 2a draws: every run's evaluated epochs (``metrics[id(run)]``) and the settings' curves."""

    metrics: dict
    settings: list[SettingCurves]

    @property
    def max_step(self) -> int:
        return max((r["step"] for rows in self.metrics.values() for r in rows), default=0)


def fig2a_data(outcomes: Sequence[Outcome]) -> Fig2aData:
    """The evaluated epochs of every finished run and, per setting, the mean curves of its finished runs."""
    metrics = {id(o): RunRecord(o.run_dir).read_evaluated_metrics() for o in outcomes if o.summary is not None}
    settings = []
    for setting, runs in _settings(outcomes).items():
        finished = [o for o in runs if o.summary is not None and metrics.get(id(o))]
        paper = _paper_row(setting)
        top1 = paper.top1_test.value if paper is not None else None
        settings.append(SettingCurves(setting, finished, mean_accuracy_curves(finished, metrics) if finished else None,
                                      top1 / 100 if top1 is not None else None))
    return Fig2aData(metrics, settings)


def render_fig2a(preset, outcomes: Sequence[Outcome], out_dir: Path, notes: Sequence[str], *,
                 scale: str | None = None, provenance: bool = False) -> list[Path]:
    """Figure 2a: top-1 training (dashed) and test (solid) accuracy against steps for each regularization
    setting; shaded up to the best test accuracy so far."""
    data = fig2a_data(outcomes)
    caption = [*notes_line(notes),
               "Solid: top-1 test accuracy; dashed: top-1 training accuracy; shaded: up to the best test "
               "accuracy so far (early stopping's reach); dotted: the paper's final top-1 test accuracy "
               "(Table 2). Lines are means over seeds.",
               *status_caption(outcomes, _label, "fig2a")]
    return render_step_curves("fig2a", preset, outcomes, out_dir, notes, caption, lambda ax: _draw_fig2a(ax, data),
                              FIG2A_COLUMNS, _fig2a_records(data), scale=scale, provenance=provenance)


# INTERNAL UTILITIES -------------------------------------------------------------------------------


def _draw_fig2a(ax, data: Fig2aData) -> None:
    """Each setting's mean curves, and the paper's final top-1 test accuracy dotted in its colour."""
    unit, xlabel = step_axis(data.max_step)
    handles = []
    for s in data.settings:
        label = s.setting.name
        color = SETTING_COLORS.get(label, "#555555")
        if s.curves is not None:
            draw_accuracy_curves(ax, s.curves, unit, color)
            handles.append(Line2D([], [], color=color, lw=1.6, label=f"{label} ({len(s.runs)} run"
                                                                      f"{'s' * (len(s.runs) != 1)})"))
        if s.paper_top1_test is not None:
            ax.axhline(s.paper_top1_test, color=color, lw=0.9, ls=":")
    finish_step_axes(ax, handles, "(a) ImageNet: explicit regularizers on and off (true labels)", unit, xlabel,
                     accuracy=" (top-1)", paper="Table 2")


def _fig2a_records(data: Fig2aData) -> Iterator[dict]:
    """Every evaluated epoch of every run drawn."""
    for s in data.settings:
        for o in s.runs:
            for r in data.metrics[id(o)]:
                yield {"setting": s.setting.name, "seed": o.config.seed, "run_id": o.config.run_id(),
                       "status": status_of(o), "epoch": r["epoch"], "step": r["step"], "train_acc": r["train_acc"],
                       "test_acc": r["test_acc"], "best_test_acc": r["best_test_acc"],
                       "test_acc_top5": r.get("test_acc_top5")}


def _display(r: Table2Result) -> dict[str, str]:
    """A row of Table 2 as displayed: ours beside the paper's, column by column."""
    s, paper = r.setting, r.paper
    cells = {"data aug": _yes(s.augmentation), "dropout": _on(s.dropout, r.dropout),
             "weight decay": _on(s.weight_decay, r.weight_decay), "labels": "random" if s.random_labels else "true",
             "status": r.status, "runs": ", ".join(o.config.run_id() for o in r.runs)}
    for a in ACCURACIES:
        cells[f"{a.column} (ours)"] = r.cells[a.key].text
        cells[f"{a.column} (paper)"] = getattr(paper, a.key).text() if paper else "—"
    return cells


def _csv_record(r: Table2Result) -> dict:
    """A row of ``table2.csv``: plain numbers, ours and the paper's with its trust tag."""
    record = {"data_aug": r.setting.augmentation, "dropout": r.dropout, "weight_decay": r.weight_decay,
              "labels": "random" if r.setting.random_labels else "true", "status": r.status, "n_runs": len(r.runs),
              "run_ids": " ".join(o.config.run_id() for o in r.runs)}
    for a in ACCURACIES:
        ours, paper = r.cells[a.key], getattr(r.paper, a.key) if r.paper else None
        record.update({f"{a.key}_ours": ours.mean, f"{a.key}_ours_best": ours.best,
                       f"{a.key}_paper": paper.value if paper else None,
                       f"{a.key}_paper_best": paper.best if paper else None,
                       f"{a.key}_paper_tag": paper.tag if paper else None})
    return record


def _markdown(path: Path, preset, notes: Sequence[str], columns, rows, outcomes, scale: str | None) -> Path:
    lines = [f"# Zhang et al. (ICLR 2017), Table 2, {scale_claim(scale)}", "",
             f"**{preset.title}** ({preset.paper_ref})", ""]
    if notes:
        lines += ["> **Where this run differs from the paper:**", ">", *(f"> - {_md(n)}" for n in notes), ""]
    lines += ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    lines += ["", "Ours: mean over the finished runs of a row (± 95% confidence interval over seeds when there are "
              "several); in parentheses the best test accuracy during training (what early stopping could gain), "
              "as the paper prints it. These runs train for their whole budget: \"did not fit\" is their usual "
              "status. Test accuracy is on the clean validation labels; chance is 0.1% top-1 and 0.5% top-5 on "
              "1000 classes.", "",
              "The paper gives neither the dropout rate, the weight-decay coefficient nor the schedule; shattering "
              "uses the TensorFlow Inception V3 defaults of the time [I] (each run's config states them).", "",
              "Trust tags of the paper's numbers:", ""]
    lines += [f"- [{tag}] {meaning}" for tag, meaning in TRUST.items() if tag in ("V", "S", "M", "I")]
    lines += ["", f"Runs: {len(outcomes)}; config hashes (run ids) in the last column; data fingerprints and "
              f"records in table2.json; shattering {', '.join(versions_of(outcomes)) or '?'}.", ""]
    return write_text(path, "\n".join(lines))


def _md(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _key(o: Outcome) -> Setting:
    c = o.config
    return Setting(bool(c.random_crop), c.dropout > 0, c.weight_decay > 0, c.corruption == "random-labels")


def _settings(outcomes: Sequence[Outcome]) -> dict[Setting, list[Outcome]]:
    groups: dict[Setting, list[Outcome]] = {}
    for o in outcomes:
        groups.setdefault(_key(o), []).append(o)
    return groups


def _paper_row(s: Setting) -> Table2Row | None:
    return table2_row(s.augmentation, s.dropout, s.weight_decay, s.random_labels)


def _label(o: Outcome) -> str:
    return _key(o).name


def _cell(runs: Sequence[Outcome], final_key: str, best_key: str | None) -> Measured:
    """Mean (± CI) over the finished runs, the best-so-far mean in parentheses; a dash where not measured."""
    finished = [o for o in runs if o.summary is not None and status_of(o) != "diverged"]
    values = [100 * o.summary["final"][final_key] for o in finished if o.summary["final"].get(final_key) is not None]
    if not values:
        return Measured("—", None, None)
    mean, ci = mean_ci(values)
    text = f"{mean:.2f}" + (f" ± {ci:.2f}" if len(values) > 1 else "")
    best = None
    if best_key is not None:
        bests = [100 * o.summary[best_key] for o in finished if o.summary.get(best_key) is not None]
        if bests:
            best = mean_ci(bests).mean
            text += f" ({best:.2f})"
    return Measured(text, mean, best)


def _status(runs: Sequence[Outcome]) -> str:
    if len(runs) == 1:
        return status_text(runs[0])
    return "; ".join(f"seed {o.config.seed} {status_text(o)}" for o in runs)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _on(flag: bool, value: float) -> str:
    return f"yes ({value:g})" if flag else "no"
