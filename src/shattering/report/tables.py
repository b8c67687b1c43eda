"""Tables 1 and 4 of Zhang et al. (ICLR 2017): our numbers beside the paper's, as Markdown and CSV.

Each ``render_*`` takes ``(preset, outcomes, out_dir, notes)`` and writes ``<stem>.md`` (the notes above the
table, the paper's trust tags below it), ``<stem>.csv`` (one row per setting, plain numbers) and ``<stem>.json``
(the sidecar: notes, the table as displayed, every run behind it). Our cells are means over the runs of a
setting that fit; a setting whose runs did not fit shows their own numbers with the status beside them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from ..executors.outcome import Outcome
from ..experiments.presets import scale_claim
from ..models import build_model, paper_param_count
from .common import mean_ci, status_of, status_text, versions_of, write_records, write_sidecar, write_text
from .paper_numbers import (
    MODEL_TITLES,
    PARAMS_TAG,
    TABLE4_REGULARIZERS,
    TRUST,
    Table1Row,
    Table4Row,
    table1_row,
    table4_row,
)

TABLE1_COLUMNS = ("model", "# params (ours)", "# params (paper)", "random crop", "weight decay", "labels",
                  "train acc % (ours)", "train acc % (paper)", "test acc % (ours)", "test acc % (paper)", "status",
                  "runs")
TABLE1_CSV_COLUMNS = ("model", "model_title", "random_crop", "weight_decay", "labels", "params_ours", "params_paper",
                      "train_acc_ours", "train_acc_paper", "test_acc_ours", "test_acc_paper", "paper_tag", "status",
                      "n_runs", "n_fit", "run_ids")
TABLE4_COLUMNS = ("model", "regularizer", "train acc % (ours)", "train acc % (paper)", "test acc % (ours)", "status",
                  "runs")
TABLE4_CSV_COLUMNS = ("model", "model_title", "regularizer", "train_acc_ours", "train_acc_paper", "paper_text",
                      "paper_tag", "test_acc_ours", "status", "n_runs", "n_fit", "run_ids")


class Table1Setting(NamedTuple):
    """A row of Table 1: the model, random crop and weight decay on or off, true or random labels."""

    model: str
    random_crop: bool
    weight_decay: bool
    random_labels: bool


class Table4Setting(NamedTuple):
    """A row of Table 4: the model and the one regularizer on while fitting random labels."""

    model: str
    regularizer: str  # a key of TABLE4_REGULARIZERS, or "none"


@dataclass(frozen=True)
class TableResult:
    """One row of Table 1 or 4 measured: its setting and runs, the paper's row (None where the paper has
    none), our cells (:func:`_cells`), our parameter count (Table 1) and the largest weight decay of its runs."""

    setting: Table1Setting | Table4Setting
    runs: list[Outcome]
    paper: Table1Row | Table4Row | None
    cells: dict
    params: int | None = None
    weight_decay: float = 0.0


def table1_results(outcomes: Sequence[Outcome]) -> list[TableResult]:
    """One result per setting of Table 1, in the order of the settings' first runs."""
    return [TableResult(s, runs, table1_row(s.model, s.random_crop, s.weight_decay, s.random_labels), _cells(runs),
                        _our_params(runs), max(o.config.weight_decay for o in runs))
            for s, runs in _settings(outcomes, _table1_key).items()]


def table4_results(outcomes: Sequence[Outcome]) -> list[TableResult]:
    """One result per setting of Table 4, in the order of the settings' first runs."""
    return [TableResult(s, runs, table4_row(s.model, s.regularizer), _cells(runs))
            for s, runs in _settings(outcomes, _table4_key).items()]


def render_table1(preset, outcomes: Sequence[Outcome], out_dir: Path, notes: Sequence[str], *,
                  scale: str | None = None, provenance: bool = False) -> list[Path]:
    """Table 1: train and test accuracy with and without random crop and weight decay, and random labels."""
    out_dir = Path(out_dir)
    results = table1_results(outcomes)
    display = [[_table1_display(r)[c] for c in TABLE1_COLUMNS] for r in results]
    paths = [_markdown(out_dir / "table1.md", preset, "Table 1", notes, TABLE1_COLUMNS, display, outcomes, scale,
                       extra=["Random-label rows: test accuracy is measured on the true test labels (chance: "
                              "1/K).",
                              f"Parameter counts: ours are the trainable parameters of the model built for this "
                              f"data's input shape; the paper's are Table 1's for 28x28x3 inputs, which shattering's "
                              f"models reproduce exactly on that shape [{PARAMS_TAG}]."])]
    paths.append(write_records(out_dir / "table1.csv", TABLE1_CSV_COLUMNS, (_table1_csv(r) for r in results)))
    paths.append(write_sidecar(out_dir, "table1", preset, outcomes, notes, paths, scale=scale,
                               table={"columns": list(TABLE1_COLUMNS), "rows": display}))
    return paths


def render_table4(preset, outcomes: Sequence[Outcome], out_dir: Path, notes: Sequence[str], *,
                  scale: str | None = None, provenance: bool = False) -> list[Path]:
    """Table 4: training accuracy on random labels with weight decay, random cropping or augmentation."""
    out_dir = Path(out_dir)
    results = table4_results(outcomes)
    display = [[_table4_display(r)[c] for c in TABLE4_COLUMNS] for r in results]
    paths = [_markdown(out_dir / "table4.md", preset, "Table 4", notes, TABLE4_COLUMNS, display, outcomes, scale,
                       extra=["All rows fit random labels (p = 1); the paper reports training accuracy only. For "
                              "random cropping and augmentation the paper raised the per-epoch learning-rate decay "
                              "from 0.95 to 0.999 and trained longer."])]
    paths.append(write_records(out_dir / "table4.csv", TABLE4_CSV_COLUMNS, (_table4_csv(r) for r in results)))
    paths.append(write_sidecar(out_dir, "table4", preset, outcomes, notes, paths, scale=scale,
                               table={"columns": list(TABLE4_COLUMNS), "rows": display}))
    return paths


# INTERNAL UTILITIES -------------------------------------------------------------------------------


def _table1_display(r: TableResult) -> dict:
    """A row of Table 1 as displayed: ours beside the paper's (with its trust tag), column by column."""
    s, paper, cells = r.setting, r.paper, r.cells
    return {"model": MODEL_TITLES.get(s.model, s.model), "# params (ours)": _int(r.params),
            "# params (paper)": f"{paper.params:,} [{PARAMS_TAG}]" if paper else "—",
            "random crop": _yes(s.random_crop), "weight decay": f"yes ({r.weight_decay:g})" if s.weight_decay else "no",
            "labels": "random" if s.random_labels else "true", "train acc % (ours)": cells["train"],
            "train acc % (paper)": _paper(paper.train_acc if paper else None, paper),
            "test acc % (ours)": cells["test"], "test acc % (paper)": _paper(paper.test_acc if paper else None, paper),
            "status": cells["status"], "runs": cells["runs"]}


def _table1_csv(r: TableResult) -> dict:
    s, paper, cells = r.setting, r.paper, r.cells
    return {"model": s.model, "model_title": MODEL_TITLES.get(s.model, s.model), "random_crop": s.random_crop,
            "weight_decay": r.weight_decay, "labels": "random" if s.random_labels else "true",
            "params_ours": r.params, "params_paper": paper.params if paper else None,
            "train_acc_ours": cells["train_mean"], "train_acc_paper": paper.train_acc if paper else None,
            "test_acc_ours": cells["test_mean"], "test_acc_paper": paper.test_acc if paper else None,
            "paper_tag": paper.tag if paper else None, "status": cells["status"], "n_runs": len(r.runs),
            "n_fit": cells["n_fit"], "run_ids": cells["run_ids"]}


def _table4_display(r: TableResult) -> dict:
    """A row of Table 4 as displayed: the paper prints a number, or words where it has none."""
    s, paper, cells = r.setting, r.paper, r.cells
    paper_cell = "—" if paper is None else (
        f"{paper.train_acc:.2f} [{paper.tag}]" if paper.train_acc is not None else f"{paper.text} [{paper.tag}]")
    return {"model": MODEL_TITLES.get(s.model, s.model),
            "regularizer": TABLE4_REGULARIZERS.get(s.regularizer, s.regularizer), "train acc % (ours)": cells["train"],
            "train acc % (paper)": paper_cell, "test acc % (ours)": cells["test"], "status": cells["status"],
            "runs": cells["runs"]}


def _table4_csv(r: TableResult) -> dict:
    s, paper, cells = r.setting, r.paper, r.cells
    return {"model": s.model, "model_title": MODEL_TITLES.get(s.model, s.model), "regularizer": s.regularizer,
            "train_acc_ours": cells["train_mean"], "train_acc_paper": paper.train_acc if paper else None,
            "paper_text": paper.text if paper else None, "paper_tag": paper.tag if paper else None,
            "test_acc_ours": cells["test_mean"], "status": cells["status"], "n_runs": len(r.runs),
            "n_fit": cells["n_fit"], "run_ids": cells["run_ids"]}


def _table1_key(o: Outcome) -> Table1Setting:
    c = o.config
    return Table1Setting(c.model, bool(c.random_crop), c.weight_decay > 0, c.corruption == "random-labels")


def _table4_key(o: Outcome) -> Table4Setting:
    c = o.config
    if c.flip_rotate:
        regularizer = "augmentation"
    elif c.random_crop:
        regularizer = "random cropping"
    elif c.weight_decay > 0:
        regularizer = "weight decay"
    else:
        regularizer = "none"
    return Table4Setting(c.model, regularizer)


def _settings(outcomes: Sequence[Outcome], key) -> dict[tuple, list[Outcome]]:
    """Runs grouped by table row, rows in the order of their first run (the preset's, the paper's order)."""
    groups: dict[tuple, list[Outcome]] = {}
    for o in outcomes:
        groups.setdefault(key(o), []).append(o)
    return groups


def _cells(runs: Sequence[Outcome]) -> dict:
    """Our cells for one row: means over runs that fit; else each run's own number, with its status.

    ``train_mean``/``test_mean`` (the CSV's numbers): the mean over runs that fit, else the number of a lone
    run that did not fit, else None (several runs, none fit: their numbers are in the text and the sidecar).
    """
    fitted = [o for o in runs if status_of(o) == "fit"]
    finished = [o for o in runs if o.summary is not None and status_of(o) != "diverged"]
    shown = fitted or finished

    def cell(key: str) -> tuple[str, float | None]:
        values = [100 * o.summary["final"][key] for o in shown]
        if not values:
            return "—", None
        if fitted:
            mean, ci = mean_ci(values)
            text = f"{mean:.2f}" + (f" ± {ci:.2f}" if len(values) > 1 else "")
            return text, mean
        # no run fit: each run's own number, never a mean (the CSV gets the number of a lone run)
        return ", ".join(_acc_text(v) for v in values), values[0] if len(values) == 1 else None

    train, train_mean = cell("train_acc")
    test, test_mean = cell("test_acc")
    if len(runs) == 1:
        status = status_text(runs[0])
    else:
        parts = [f"fit {len(fitted)}/{len(runs)}"] if fitted else []
        parts += [f"seed {o.config.seed} {status_text(o)}" for o in runs if status_of(o) != "fit"]
        status = "; ".join(parts)
    return {"train": train, "test": test, "train_mean": train_mean, "test_mean": test_mean, "status": status,
            "n_fit": len(fitted), "runs": ", ".join(o.config.run_id() for o in runs),
            "run_ids": " ".join(o.config.run_id() for o in runs)}


def _acc_text(value: float) -> str:
    text = f"{value:.2f}"
    return "99.99" if value < 100 and text == "100.00" else text


def _our_params(runs: Sequence[Outcome]) -> int | None:
    for o in runs:
        data = (o.summary or {}).get("data") or {}
        if data.get("shape") and data.get("classes"):
            return _param_count(o.config.model, tuple(data["shape"]), int(data["classes"]))
    return None


@functools.lru_cache(maxsize=64)
def _param_count(model: str, shape: tuple, classes: int) -> int:
    return paper_param_count(build_model(model, shape, classes))


def _paper(value: float | None, row) -> str:
    return "—" if value is None else f"{value:.2f} [{row.tag}]"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _int(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _md_cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _markdown(path: Path, preset, table_name: str, notes: Sequence[str], columns, rows, outcomes, scale: str | None,
              extra: Sequence[str]) -> Path:
    lines = [f"# Zhang et al. (ICLR 2017), {table_name}, {scale_claim(scale)}", "",
             f"**{preset.title}** ({preset.paper_ref})", ""]
    if notes:
        lines += ["> **Where this run differs from the paper:**", ">"]
        lines += [f"> - {_md_cell(n)}" for n in notes]
        lines.append("")
    lines += ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    lines += ["", "Ours: mean over the runs of a row that fit (± 95% confidence interval over seeds when there are "
              "several); runs that did not fit are never averaged in: their own numbers are shown with the status."]
    for text in extra:
        lines += ["", text]
    lines += ["", "Trust tags of the paper's numbers:", ""]
    lines += [f"- [{tag}] {meaning}" for tag, meaning in TRUST.items() if tag in ("S", "A", "V", "M")]
    versions = ", ".join(versions_of(outcomes)) or "?"
    lines += ["", f"Runs: {len(outcomes)}; config hashes (run ids) in the last column; data fingerprints and "
              f"records in {path.stem}.json; shattering {versions}.", ""]
    return write_text(path, "\n".join(lines))
