"""Tables 1 and 4 of Zhang et al. (ICLR 2017): our numbers beside the paper's, as Markdown and CSV.

Each ``render_*`` takes ``(preset, outcomes, out_dir, notes)`` and writes ``<stem>.md`` (the notes above the
table, the paper's trust tags below it), ``<stem>.csv`` (one row per setting, plain numbers) and ``<stem>.json``
(the sidecar: notes, the table as displayed, every run behind it). Our cells are means over the runs of a
setting that fit; a setting whose runs did not fit shows their own numbers with the status beside them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from ..executors.outcome import Outcome
from ..experiments.presets import scale_claim
from ..models import build_model, paper_param_count
from .common import mean_ci, status_of, status_text, versions_of, write_csv, write_sidecar, write_text
from .paper_numbers import MODEL_TITLES, PARAMS_TAG, TABLE4_REGULARIZERS, TRUST, table1_row, table4_row


def render_table1(preset, outcomes: Sequence[Outcome], out_dir: Path, notes: Sequence[str], *,
                  scale: str | None = None, provenance: bool = False) -> list[Path]:
    """Table 1: train and test accuracy with and without random crop and weight decay, and random labels."""
    out_dir = Path(out_dir)
    columns = ("model", "# params (ours)", "# params (paper)", "random crop", "weight decay", "labels",
               "train acc % (ours)", "train acc % (paper)", "test acc % (ours)", "test acc % (paper)", "status",
               "runs")
    display, csv_rows = [], []
    for key, runs in _settings(outcomes, _table1_key).items():
        model, crop, wd, random_labels = key
        paper = table1_row(model, crop, wd, random_labels)
        cells = _cells(runs)
        params = _our_params(runs)
        wd_value = max(o.config.weight_decay for o in runs)
        display.append((
            MODEL_TITLES.get(model, model), _int(params), f"{paper.params:,} [{PARAMS_TAG}]" if paper else "—",
            _yes(crop), f"yes ({wd_value:g})" if wd else "no", "random" if random_labels else "true",
            cells["train"], _paper(paper.train_acc if paper else None, paper), cells["test"],
            _paper(paper.test_acc if paper else None, paper), cells["status"], cells["runs"]))
        csv_rows.append((model, MODEL_TITLES.get(model, model), crop, wd_value, "random" if random_labels else "true",
                         params, paper.params if paper else None, cells["train_mean"],
                         paper.train_acc if paper else None, cells["test_mean"], paper.test_acc if paper else None,
                         paper.tag if paper else None, cells["status"], len(runs), cells["n_fit"], cells["run_ids"]))
    paths = [_markdown(out_dir / "table1.md", preset, "Table 1", notes, columns, display, outcomes, scale,
                       extra=["Random-label rows: test accuracy is measured on the true test labels (chance: "
                              "1/K).",
                              f"Parameter counts: ours are the trainable parameters of the model built for this "
                              f"data's input shape; the paper's are Table 1's for 28x28x3 inputs, which shattering's "
                              f"models reproduce exactly on that shape [{PARAMS_TAG}]."])]
    paths.append(write_csv(out_dir / "table1.csv",
                           ("model", "model_title", "random_crop", "weight_decay", "labels", "params_ours",
                            "params_paper", "train_acc_ours", "train_acc_paper", "test_acc_ours", "test_acc_paper",
                            "paper_tag", "status", "n_runs", "n_fit", "run_ids"), csv_rows))
    paths.append(write_sidecar(out_dir, "table1", preset, outcomes, notes, paths, scale=scale,
                               table={"columns": list(columns), "rows": [list(r) for r in display]}))
    return paths


def render_table4(preset, outcomes: Sequence[Outcome], out_dir: Path, notes: Sequence[str], *,
                  scale: str | None = None, provenance: bool = False) -> list[Path]:
    """Table 4: training accuracy on random labels with weight decay, random cropping or augmentation."""
    out_dir = Path(out_dir)
    columns = ("model", "regularizer", "train acc % (ours)", "train acc % (paper)", "test acc % (ours)", "status",
               "runs")
    display, csv_rows = [], []
    for key, runs in _settings(outcomes, _table4_key).items():
        model, regularizer = key
        paper = table4_row(model, regularizer)
        cells = _cells(runs)
        paper_cell = "—" if paper is None else (
            f"{paper.train_acc:.2f} [{paper.tag}]" if paper.train_acc is not None else f"{paper.text} [{paper.tag}]")
        display.append((MODEL_TITLES.get(model, model), TABLE4_REGULARIZERS.get(regularizer, regularizer),
                        cells["train"], paper_cell, cells["test"], cells["status"], cells["runs"]))
        csv_rows.append((model, MODEL_TITLES.get(model, model), regularizer, cells["train_mean"],
                         paper.train_acc if paper else None, paper.text if paper else None,
                         paper.tag if paper else None, cells["test_mean"], cells["status"], len(runs), cells["n_fit"],
                         cells["run_ids"]))
    paths = [_markdown(out_dir / "table4.md", preset, "Table 4", notes, columns, display, outcomes, scale,
                       extra=["All rows fit random labels (p = 1); the paper reports training accuracy only. For "
                              "random cropping and augmentation the paper raised the per-epoch learning-rate decay "
                              "from 0.95 to 0.999 and trained longer."])]
    paths.append(write_csv(out_dir / "table4.csv",
                           ("model", "model_title", "regularizer", "train_acc_ours", "train_acc_paper", "paper_text",
                            "paper_tag", "test_acc_ours", "status", "n_runs", "n_fit", "run_ids"), csv_rows))
    paths.append(write_sidecar(out_dir, "table4", preset, outcomes, notes, paths, scale=scale,
                               table={"columns": list(columns), "rows": [list(r) for r in display]}))
    return paths


# INTERNAL UTILITIES -------------------------------------------------------------------------------


def _table1_key(o: Outcome) -> tuple:
    c = o.config
    return (c.model, bool(c.random_crop), c.weight_decay > 0, c.corruption == "random-labels")


def _table4_key(o: Outcome) -> tuple:
    c = o.config
    if c.flip_rotate:
        regularizer = "augmentation"
    elif c.random_crop:
        regularizer = "random cropping"
    elif c.weight_decay > 0:
        regularizer = "weight decay"
    else:
        regularizer = "none"
    return (c.model, regularizer)


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
