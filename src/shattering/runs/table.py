"""Every run record under a folder as one table: the randomization tests of Section 2.1 of Zhang et al. (ICLR 2017)
as rows a notebook can filter, group and pivot (test error by model and p, the steps to fit, ...).

:func:`load_runs` gives one row per run: every :class:`~shattering.config.RunConfig` field (in the class's
order), then how the run ended (``status``: fit / not-fit / diverged, or unfinished for a record without a
complete summary), when it fit, its final and best accuracies (train, test, the clean and the corrupted part of
the training set, against the original labels), the label noise actually drawn, the data fingerprint and the
code version. :func:`load_curves` gives every run's per-epoch metrics in long form, one row per (run, evaluated
epoch; ``running=True`` adds the epochs without a full evaluation, whose accuracy columns are blank).

Only files are read (``config.json``, ``summary.json``, ``metrics.jsonl``; never a checkpoint, never a model).
A record without a summary is a row with status ``unfinished`` whose numbers are its last recorded epoch
(progress, not a result); a record with a damaged file (:meth:`~shattering.runs.record.RunRecord.damage`) is a
row with status ``damaged``, its message naming the file and line, and a warning; a folder with no readable
config and summary is skipped with a warning. Records written by another version show blanks where they hold
something unexpected.
"""

from __future__ import annotations

import dataclasses
import numbers
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import RunConfig
from ..errors import ConfigError, RecordError
from ..files import json_text
from ..measures import measures as registered_measures
from ..validation import must_be
from .record import RunRecord, evaluated, moved_aside

if TYPE_CHECKING:
    import pandas as pd

CONFIG_COLUMNS = tuple(f.name for f in dataclasses.fields(RunConfig))
# What a run measures at every evaluated epoch (train/evaluate.py); the table has each one's final and best value.
ACCURACIES = ("train_acc", "test_acc", "train_acc_clean", "train_acc_corrupted", "train_acc_original",
              "test_acc_corrupted_labels")
RESULT_COLUMNS = (
    "run_id", "run_name", "run_dir", "status", "fit", "epochs_trained", "steps", "seconds", "fit_epoch", "fit_step",
    "fit_seconds", *ACCURACIES, *(f"best_{name}" for name in ACCURACIES), "train_loss", "test_loss", "train_errors",
    "n_train", "n_test", "label_noise", "test_label_noise", "corrupted_fraction", "data_fingerprint", "version",
    "torch_version", "ran_on", "finished_at", "message",
)
_INTS = ("epochs_trained", "steps", "fit_epoch", "fit_step", "train_errors", "n_train", "n_test", "epoch", "step")
# The kind of value each column holds (int, float, bool or str): a column keeps its kind when every cell is blank.
KINDS = {f.name: f.type.replace(" | None", "") for f in dataclasses.fields(RunConfig)} | {
    "fit": "bool", **dict.fromkeys(_INTS, "int"),
    **dict.fromkeys(("seconds", "fit_seconds", "train_loss", "test_loss", "label_noise", "test_label_noise",
                     "corrupted_fraction", "lr", "train_loss_clean", "train_loss_corrupted", "epoch_seconds",
                     "eval_seconds", *ACCURACIES, *(f"best_{name}" for name in ACCURACIES), "measures_seconds"),
                  "float")}
# The columns of load_curves that say which run a row is of, then the metrics in the order a row is written.
CURVE_KEYS = ("run_id", "dataset", "model", "corruption", "p", "seed", "status")
METRICS = ("epoch", "step", "lr", "train_loss", "train_acc", "train_errors", "train_acc_clean", "train_acc_corrupted",
           "train_acc_original", "train_loss_clean", "train_loss_corrupted", "test_loss", "test_acc",
           "test_acc_corrupted_labels", "best_test_acc", "seconds", "epoch_seconds", "eval_seconds")
RECORD_FILES = ("summary.json", "config.json", "checkpoint.pt", "checkpoint.prev.pt", "metrics.jsonl")
MISSING_WORDS = ("", "none", "null", "nan", "na")


def measure_columns() -> tuple[str, ...]:
    """The columns of the complexity measures of the trained network (``summary["measures"]``), one
    ``measure_<name>`` per measure of the registry (:mod:`shattering.measures.registry`; blank for a record
    without it), then ``measures_seconds``, the seconds they took."""
    return (*(f"measure_{m.name}" for m in registered_measures()), "measures_seconds")


def columns() -> tuple[str, ...]:
    """Every column of :func:`load_runs`: the config's fields, the results, the measures (:func:`measure_columns`:
    the registry's now, a measure registered later included)."""
    return CONFIG_COLUMNS + RESULT_COLUMNS + measure_columns()


def __getattr__(name: str) -> tuple[str, ...]:
    """``COLUMNS`` and ``MEASURE_COLUMNS``: :func:`columns` and :func:`measure_columns`, as the registry is now."""
    if name == "COLUMNS":
        return columns()
    if name == "MEASURE_COLUMNS":
        return measure_columns()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_runs(path: str | Path) -> pd.DataFrame:
    """One row per run record under ``path`` (searched recursively: the ``--out`` folder of ``shatter run``,
    ``sweep`` or ``reproduce``, or one run's folder), in the columns of :func:`columns`, sorted by folder.

    >>> df = load_runs("runs")  # doctest: +SKIP
    >>> (1 - df.pivot_table(index="p", columns="model", values="test_acc")).round(3)  # doctest: +SKIP
    """
    return _frame([row for row, _ in _records(path)], columns())


def load_curves(path: str | Path, running: bool = False) -> pd.DataFrame:
    """Every run's per-epoch metrics (``metrics.jsonl``) under ``path`` in long form: one row per (run, epoch),
    the run's ``run_id``, ``dataset``, ``model``, ``corruption``, ``p``, ``seed`` and ``status``, then the
    epoch's metrics (:data:`METRICS`, then any other a record holds).

    Only the epochs with a full eval-mode evaluation (every ``eval_every`` epochs, the last one, the one of fit:
    :mod:`shattering.train.book`) unless ``running``: then also the others, whose ``evaluated`` is False and
    which hold only ``running_train_acc``, ``running_train_loss`` and the fit probe (the accuracy columns blank,
    never a result). A run with the ``information`` probe has a column per layer and estimator,
    ``info_<layer>_<estimator>`` (bits; :class:`shattering.probes.Information`), at the epochs it probed (an
    epoch probed but not evaluated gets a row of its own, its metrics blank)."""
    from ..probes import load_information  # the information probe's files (probes/information/)

    rows, extra = [], set()
    for row, metrics in _records(path):
        keys = {key: row[key] for key in CURVE_KEYS}
        info = {epoch: {f"info_{layer}_{k}": v for layer, values in layers.items() if isinstance(values, dict)
                        for k, v in values.items()}
                for epoch, layers in load_information(row["run_dir"]).items()} if row.get("run_dir") else {}
        shown = list(metrics if running else evaluated(metrics))
        seen = {m.get("epoch") for m in shown}
        shown += [{"epoch": epoch} for epoch in sorted(info) if epoch not in seen]  # probed, not evaluated
        for m in sorted(shown, key=lambda m: m.get("epoch") if isinstance(m.get("epoch"), int) else -1):
            m = {**m, **info.get(m.get("epoch"), {})}
            extra.update(k for k in m if k not in METRICS)
            rows.append(keys | {k: _cell(v) for k, v in m.items()})
    return _frame(rows, CURVE_KEYS + METRICS + tuple(sorted(extra - set(CURVE_KEYS))))


def select_runs(table: pd.DataFrame, conditions: Mapping[str, Any] | Iterable[str | tuple[str, Any]]) -> pd.DataFrame:
    """The rows of ``table`` where every condition holds. A condition is ``"column=value"`` (what ``shatter runs
    --where`` takes) or a (column, value) pair; a value given as text is read as the column's cells are: a
    number, true/false, none (a blank cell) or text."""
    pairs = list(conditions.items()) if isinstance(conditions, Mapping) else [
        parse_condition(c) if isinstance(c, str) else tuple(c) for c in conditions]
    keep = np.ones(len(table), dtype=bool)
    for column, wanted in pairs:
        if column not in table.columns:
            raise ConfigError(f"The runs table has no column {column!r}; its columns are "
                              f"{', '.join(map(str, table.columns))}.")
        keep &= np.array([_matches(cell, wanted) for cell in table[column].tolist()], dtype=bool)
    return table[keep]


def as_records(table: pd.DataFrame) -> list[dict]:
    """The rows of ``table`` as plain dicts of Python values, a blank cell as None (what ``--json`` prints)."""
    return [{column: None if _blank(cell) else cell.item() if isinstance(cell, np.generic) else cell
             for column, cell in zip(table.columns, row, strict=True)}
            for row in table.astype(object).itertuples(index=False, name=None)]


def parse_condition(text: str) -> tuple[str, str]:
    """``"column=value"`` as the pair (column, value text)."""
    column, sep, value = text.partition("=")
    if not sep or not column.strip():
        raise ConfigError(must_be("where", "column=value (for example model=mlp-1x512 or p=0.5)", text))
    return column.strip(), value.strip()


def find_record_dirs(root: Path) -> list[Path]:
    """Every folder under ``root`` (``root`` included) holding a file of a run record, sorted (old records a
    rerun moved aside are not runs of the folder: left out)."""
    found = {path.parent for name in RECORD_FILES for path in root.rglob(name) if path.is_file()
             and not any(moved_aside(part) for part in path.parent.relative_to(root).parts)}
    return sorted(found)


# INTERNAL UTILITIES -------------------------------------------------------------------------------


def _records(path: str | Path) -> list[tuple[dict, list[dict]]]:
    """(table row, metrics rows) of every record under ``path``."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise RecordError(f"{root} is not a folder; pass the --out folder of `shatter run`, `shatter sweep` or "
                          "`shatter reproduce`, or one run's folder.")
    out = []
    for d in find_record_dirs(root):
        record = RunRecord(d)
        summary, config = record.summary_file(), record.read_config()
        if summary is None and not (config is not None and isinstance(config.get("run_id"), str)):
            if config is None and (record.has_checkpoint() or record.summary_path.exists()):
                warnings.warn(f"{d} holds a run's files but no readable config.json or summary.json; skipped "
                              "(run its command again to finish it).", stacklevel=3)
            continue  # else a stray metrics.jsonl or some other tool's config.json: not a run record
        damage = record.damage(summary)
        if damage:
            warnings.warn(f"{d} is damaged ({'; '.join(damage)}); listed as damaged, not as a result (run its "
                          "command again to repair it).",
                          stacklevel=3)
        metrics = record.read_metrics()
        out.append((_row(d, record, summary, config if isinstance(config, dict) else {}, metrics, damage), metrics))
    return out


def _row(d: Path, record: RunRecord, summary: dict | None, config: dict, metrics: list[dict],
         damage: list[str]) -> dict:
    """One row of :func:`load_runs`; every value is checked for its type, so a record edited by hand or written
    by another version shows blanks where it holds something unexpected, and never breaks the table."""
    finished = summary is not None
    source = summary if finished else config
    settings = _dict(config.get("config")) | (_dict(summary.get("config")) if finished else {})
    shown = evaluated(metrics)  # an unfinished run's numbers: its last evaluated epoch
    last = _dict(summary.get("final")) if finished else (shown[-1] if shown else {})
    data = _dict(source.get("data")) or _dict(config.get("data"))
    versions = _dict(source.get("versions")) or _dict(config.get("versions"))
    row = {name: _cell(settings.get(name)) for name in CONFIG_COLUMNS}
    row |= {
        "run_id": _text(source.get("run_id")), "run_name": d.name, "run_dir": str(d.absolute()),
        "status": "damaged" if damage else summary["status"] if finished else "unfinished",
        "fit": bool(finished and not damage and summary.get("fit")),
        "epochs_trained": _int(summary.get("epochs")) if finished else _int(last.get("epoch")),
        "steps": _int(summary.get("steps")) if finished else _int(last.get("step")),
        "seconds": _number(summary.get("seconds")) if finished else _number(last.get("seconds")),
    }
    for key in ("fit_epoch", "fit_step"):
        row[key] = _int(summary.get(key)) if finished else None
    row["fit_seconds"] = _number(summary.get("fit_seconds")) if finished else None
    for name in ACCURACIES:
        row[name] = _number(last.get(name))
        seen = [v for v in (_number(m.get(name)) for m in [*metrics, last]) if v is not None]
        if name == "test_acc" and finished and _number(summary.get("best_test_acc")) is not None:
            seen.append(_number(summary.get("best_test_acc")))
        row[f"best_{name}"] = max(seen) if seen else None
    row |= {"train_loss": _number(last.get("train_loss")), "test_loss": _number(last.get("test_loss")),
            "train_errors": _int(last.get("train_errors"))}
    row |= {"n_train": _int(data.get("n_train")), "n_test": _int(data.get("n_test")),
            **{key: _number(data.get(key)) for key in ("label_noise", "test_label_noise", "corrupted_fraction")}}
    row |= {"data_fingerprint": _text(source.get("data_fingerprint")), "version": _text(versions.get("shattering")),
            "torch_version": _text(versions.get("torch")), "ran_on": _text(summary.get("device")) if finished else None,
            "finished_at": _text(summary.get("finished_at")) if finished else None}
    measures = _dict(summary.get("measures")) if finished else {}
    for measure in registered_measures():
        value = measures.get(measure.name)
        row[f"measure_{measure.name}"] = value if isinstance(value, bool) else _number(value)
    row["measures_seconds"] = _number(summary.get("measures_seconds")) if finished else None
    if damage:
        row["message"] = (f"damaged: {'; '.join(damage)}. Not a result: run the same command again to repair it.")
    elif finished:
        row["message"] = _text(summary.get("message"))
    else:
        row["message"] = (f"unfinished: {len(metrics)} epoch(s) recorded, no summary (interrupted, or still "
                          "running); run the same command again to resume it. Not a result.")
    return row


def _frame(rows: list[dict], columns: tuple[str, ...]) -> pd.DataFrame:
    """A DataFrame of ``rows`` in ``columns``, each column of the type its values share: integers stay integers
    and booleans booleans where some cells are blank (pandas' nullable Int64 and boolean)."""
    import pandas as pd  # here, not at the top: an import every other `shatter` command would pay

    columns_ = {}
    for c in columns:
        values = [r.get(c) for r in rows]
        columns_[c] = pd.Series(values, dtype=_dtype(values, KINDS.get(c) or _measure_kind(c)), name=c)
    return pd.DataFrame(columns_, columns=list(columns))


def _measure_kind(column: str) -> str | None:
    """The kind of a ``measure_<name>`` column: bool for a flag, else float (None: not a measure's column)."""
    kinds = {f"measure_{m.name}": "bool" if m.kind == "flag" else "float" for m in registered_measures()}
    return kinds.get(column)


def _dtype(values: list, kind: str | None) -> str:
    """The column type of ``values``: the declared ``kind``'s where every cell is of it, else what they share."""
    present = [v for v in values if v is not None]
    blanks = len(present) < len(values)
    bools = all(isinstance(v, bool) for v in present)
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in present)
    numbers_ = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)
    if bools and (present or kind == "bool"):
        return "boolean" if blanks else "bool"
    if ints and (present or kind == "int"):
        return "Int64" if blanks else "int64"
    if numbers_ and (present or kind == "float"):
        return "float64"
    return "object"


def _matches(cell: Any, wanted: Any) -> bool:
    """Whether a table cell holds ``wanted`` (text is read the way the cell is: number, bool, none or text)."""
    blank = _blank(cell)
    if not isinstance(wanted, str):
        return blank if wanted is None else (not blank and bool(cell == wanted))
    if wanted.lower() in MISSING_WORDS:
        return blank
    if blank:
        return False
    if isinstance(cell, (bool, np.bool_)):
        return wanted.lower() in (("true", "yes") if cell else ("false", "no"))
    if isinstance(cell, numbers.Number):
        try:
            return float(wanted) == float(cell)
        except ValueError:
            return False
    return str(cell) == wanted


def _blank(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN
    except TypeError:  # pandas' NA (a blank Int64 or boolean cell) refuses bool()
        return True


def _cell(value: Any) -> Any:
    """A record's value as one table cell: a scalar as it is, anything else as its JSON text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json_text(value, indent=None)


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
