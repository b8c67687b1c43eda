"""Table 2 and Figure 2a of Zhang et al. (ICLR 2017): Inception V3 on ImageNet with and without data
augmentation, dropout and weight decay, and on random labels; our numbers beside the paper's.

``render_table2`` writes ``table2.md``, ``table2.csv`` and the sidecar ``table2.json``; ``render_fig2a`` writes
``fig2a.png``, ``fig2a.svg``, ``fig2a.csv`` and ``fig2a.json`` (as the other renderers, byte-stable).

These runs train for their whole budget (the paper did not fit ImageNet's random labels either: 95.20%
top-1), so our cells are means over every finished run of a row (failed and diverged runs are shown on their
own), with the best test accuracy during training in parentheses, as the paper prints it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..executors.outcome import Outcome
from ..experiments.presets import scale_claim
from ..runs import RunRecord
from .common import mean_ci, status_of, status_text, versions_of, write_csv, write_sidecar, write_text
from .paper_numbers import TABLE2_ALEXNET_TOP5_TEST, TRUST, table2_row
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

SETTING_COLORS = {"aug, dropout, wd": "#1f77b4", "aug": "#2ca02c", "wd": "#ff7f0e", "none": "#d62728"}


def render_table2(preset, outcomes: Sequence[Outcome], out_dir: Path, notes: Sequence[str], *,
                  scale: str | None = None, provenance: bool = False) -> list[Path]:
    """Table 2: top-1 and top-5 training and test accuracy; the best test accuracy so far in parentheses."""
    out_dir = Path(out_dir)
    columns = ("data aug", "dropout", "weight decay", "labels", "top-1 train % (ours)", "top-1 train % (paper)",
               "top-5 train % (ours)", "top-5 train % (paper)", "top-1 test % (ours)", "top-1 test % (paper)",
               "top-5 test % (ours)", "top-5 test % (paper)", "status", "runs")
    display, csv_rows = [], []
    for key, runs in _settings(outcomes).items():
        aug, drop, wd, random_labels = key
        paper = table2_row(aug, drop, wd, random_labels)
        cells = {name: _cell(runs, final, best) for name, final, best in (
            ("top1_train", "train_acc", None), ("top5_train", "train_acc_top5", None),
            ("top1_test", "test_acc", "best_test_acc"), ("top5_test", "test_acc_top5", "best_test_acc_top5"))}
        paper_text = {k: getattr(paper, k).text() if paper else "—" for k in cells}
        display.append((_yes(aug), _on(drop, runs, "dropout"), _on(wd, runs, "weight_decay"),
                        "random" if random_labels else "true",
                        cells["top1_train"]["text"], paper_text["top1_train"],
                        cells["top5_train"]["text"], paper_text["top5_train"],
                        cells["top1_test"]["text"], paper_text["top1_test"],
                        cells["top5_test"]["text"], paper_text["top5_test"],
                        _status(runs), ", ".join(o.config.run_id() for o in runs)))
        csv_rows.append((aug, max(o.config.dropout for o in runs), max(o.config.weight_decay for o in runs),
                         "random" if random_labels else "true",
                         *(v for k in cells for v in (cells[k]["mean"], cells[k]["best"],
                                                      getattr(paper, k).value if paper else None,
                                                      getattr(paper, k).best if paper else None,
                                                      getattr(paper, k).tag if paper else None)),
                         _status(runs), len(runs), " ".join(o.config.run_id() for o in runs)))
    display.append(("AlexNet (Krizhevsky et al. 2012), for reference", "", "", "true", "", "—", "", "—", "", "—",
                    "", TABLE2_ALEXNET_TOP5_TEST.text(1), "", ""))
    header = ["data_aug", "dropout", "weight_decay", "labels"]
    for k in ("top1_train", "top5_train", "top1_test", "top5_test"):
        header += [f"{k}_ours", f"{k}_ours_best", f"{k}_paper", f"{k}_paper_best", f"{k}_paper_tag"]
    header += ["status", "n_runs", "run_ids"]
    paths = [_markdown(out_dir / "table2.md", preset, notes, columns, display, outcomes, scale)]
    paths.append(write_csv(out_dir / "table2.csv", header, csv_rows))
    paths.append(write_sidecar(out_dir, "table2", preset, outcomes, notes, paths, scale=scale,
                               table={"columns": list(columns), "rows": [list(r) for r in display]}))
    return paths


def render_fig2a(preset, outcomes: Sequence[Outcome], out_dir: Path, notes: Sequence[str], *,
                 scale: str | None = None, provenance: bool = False) -> list[Path]:
    """Figure 2a: top-1 training (dashed) and test (solid) accuracy against steps for each regularization
    setting; shaded up to the best test accuracy so far."""
    out_dir = Path(out_dir)
    with matplotlib.rc_context(RC):
        metrics = {id(o): RunRecord(o.run_dir).read_evaluated_metrics() for o in outcomes if o.summary is not None}
        caption = [*notes_line(notes),
                   "Solid: top-1 test accuracy; dashed: top-1 training accuracy; shaded: up to the best test "
                   "accuracy so far (early stopping's reach); dotted: the paper's final top-1 test accuracy "
                   "(Table 2). Lines are means over seeds.",
                   *status_caption(outcomes, _label, "fig2a")]
        fig, (ax,) = figure(1, preset, caption, panel_w=6.2, scale=scale, provenance=provenance, legend_w=3.7)
        max_step = max((r["step"] for rows in metrics.values() for r in rows), default=0)
        unit, xlabel = step_axis(max_step)
        handles, rows_out = [], []
        for key, runs in _settings(outcomes).items():
            label = _setting_name(key)
            color = SETTING_COLORS.get(label, "#555555")
            finished = [o for o in runs if o.summary is not None and metrics.get(id(o))]
            if finished:
                draw_accuracy_curves(ax, finished, metrics, unit, color)
                handles.append(Line2D([], [], color=color, lw=1.6, label=f"{label} ({len(finished)} run"
                                                                          f"{'s' * (len(finished) != 1)})"))
                for o in finished:
                    rows_out += [(label, o.config.seed, o.config.run_id(), status_of(o), r["epoch"], r["step"],
                                  r["train_acc"], r["test_acc"], r["best_test_acc"], r.get("test_acc_top5"))
                                 for r in metrics[id(o)]]
            paper = table2_row(*key)
            if paper is not None and paper.top1_test.value is not None:
                ax.axhline(paper.top1_test.value / 100, color=color, lw=0.9, ls=":")
        handles += [Line2D([], [], color="#333333", lw=1.4, label="test accuracy (top-1)"),
                    Line2D([], [], color="#333333", lw=1.4, ls="--", label="training accuracy (top-1)"),
                    Patch(color="#333333", alpha=0.18, label="best test accuracy so far"),
                    Line2D([], [], color="#333333", lw=0.9, ls=":", label="paper's final test accuracy, Table 2")]
        legend_beside(ax, handles)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("accuracy")
        ax.set_title("(a) ImageNet: explicit regularizers on and off (true labels)", loc="left")
        ax.set_ylim(0, 1.02)
        ax.set_xlim(left=0)
        integer_steps(ax, unit)
        ax.grid(alpha=0.3)
        paths = save(fig, out_dir, "fig2a", preset, caption, scale)
        paths.append(write_csv(out_dir / "fig2a.csv", ("setting", "seed", "run_id", "status", "epoch", "step",
                                                       "train_acc", "test_acc", "best_test_acc", "test_acc_top5"),
                               rows_out))
        paths.append(write_sidecar(out_dir, "fig2a", preset, outcomes, notes, paths, scale=scale, caption=caption))
    return paths


# INTERNAL UTILITIES -------------------------------------------------------------------------------


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


def _key(o: Outcome) -> tuple:
    c = o.config
    return (bool(c.random_crop), c.dropout > 0, c.weight_decay > 0, c.corruption == "random-labels")


def _settings(outcomes: Sequence[Outcome]) -> dict[tuple, list[Outcome]]:
    groups: dict[tuple, list[Outcome]] = {}
    for o in outcomes:
        groups.setdefault(_key(o), []).append(o)
    return groups


def _setting_name(key: tuple) -> str:
    aug, drop, wd, random_labels = key
    parts = [name for name, on in (("aug", aug), ("dropout", drop), ("wd", wd)) if on]
    return (", ".join(parts) or "none") + (", random labels" if random_labels else "")


def _label(o: Outcome) -> str:
    return _setting_name(_key(o))


def _cell(runs: Sequence[Outcome], final_key: str, best_key: str | None) -> dict:
    """Mean (± CI) over the finished runs, the best-so-far mean in parentheses; a dash where not measured."""
    finished = [o for o in runs if o.summary is not None and status_of(o) != "diverged"]
    values = [100 * o.summary["final"][final_key] for o in finished if o.summary["final"].get(final_key) is not None]
    if not values:
        return {"text": "—", "mean": None, "best": None}
    mean, ci = mean_ci(values)
    text = f"{mean:.2f}" + (f" ± {ci:.2f}" if len(values) > 1 else "")
    best = None
    if best_key is not None:
        bests = [100 * o.summary[best_key] for o in finished if o.summary.get(best_key) is not None]
        if bests:
            best = mean_ci(bests)[0]
            text += f" ({best:.2f})"
    return {"text": text, "mean": mean, "best": best}


def _status(runs: Sequence[Outcome]) -> str:
    if len(runs) == 1:
        return status_text(runs[0])
    return "; ".join(f"seed {o.config.seed} {status_text(o)}" for o in runs)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _on(flag: bool, runs: Sequence[Outcome], field: str) -> str:
    return f"yes ({max(getattr(o.config, field) for o in runs):g})" if flag else "no"
