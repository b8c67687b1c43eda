"""``shatter runs PATH``: every run record under PATH as one table (the randomization tests of Section 2.1 of
Zhang et al., ICLR 2017, and how each ended), read from the files by :func:`shattering.runs.load_runs`.

The default is a fixed-width table of the most useful columns; ``--csv`` prints every column as CSV and
``--json`` a list of records (:func:`shattering.files.json_text`). ``--where column=value`` keeps the rows where
the column holds the value (repeatable: all must hold).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence

from ..files import json_text
from ..formatting import MISSING, pct
from ..runs.table import as_records, load_runs, select_runs
from .common import json_flag

# The columns of the readable table, and how each is printed.
SHOWN = ("run_id", "dataset", "model", "corruption", "p", "seed", "status", "epochs_trained", "fit_epoch",
         "train_acc", "test_acc", "best_test_acc", "label_noise")
PERCENT = {"train_acc", "test_acc", "best_test_acc", "label_noise"}
HEADINGS = {"epochs_trained": "epochs", "train_acc": "train", "test_acc": "test", "best_test_acc": "best test",
            "label_noise": "label noise"}


def register(sub) -> None:
    p = sub.add_parser("runs", help="every run record under PATH as one table (print, filter, CSV, JSON)",
                       description="Read every run record under PATH (the --out folder of `shatter run`, `sweep` "
                                   "or `reproduce`) into one table: every config field, how the run ended, when it "
                                   "fit, final and best accuracies, label noise, data fingerprint and code version. "
                                   "Records without a complete summary are listed as unfinished. In Python: "
                                   "shattering.load_runs(PATH) gives the same table as a pandas DataFrame.")
    p.add_argument("path", metavar="PATH", help="folder to read (searched recursively)")
    p.add_argument("--where", metavar="COLUMN=VALUE", action="append", default=[],
                   help="keep the runs whose COLUMN holds VALUE (a number, true/false, none or text); repeatable, "
                        "all must hold")
    fmt = p.add_mutually_exclusive_group()
    json_flag(fmt, "every column of the runs as a list of records")
    fmt.add_argument("--csv", action="store_true", help="print every column of the runs as CSV")
    p.set_defaults(func=_cmd_runs)


def _cmd_runs(args) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = load_runs(args.path)
    for warning in caught:
        print(f"shatter runs: warning: {warning.message}", file=sys.stderr)
    found = len(table)
    table = select_runs(table, args.where)
    if not found and (args.json or args.csv):
        print(f"shatter runs: no run records under {args.path}", file=sys.stderr)
    if args.json:
        return _emit(json_text(as_records(table), strict=True, sort_keys=False))
    if args.csv:
        return _emit(table.to_csv(index=False))
    if not found:
        return _emit(f"no run records under {args.path}\n")
    if table.empty:
        return _emit(f"none of the {found} run(s) under {args.path} has {' and '.join(args.where)}\n")
    return _emit(render(as_records(table)) + f"{len(table)} run(s)" + (f" of {found}" if len(table) < found else "")
                 + f" under {args.path}\n")


def render(rows: Sequence[dict], columns: Sequence[str] = SHOWN) -> str:
    """``rows`` as a fixed-width table of ``columns`` (numbers right-aligned, blanks as a dash)."""
    cells = [[HEADINGS.get(c, c) for c in columns]] + [[_show(c, row.get(c)) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    right = [c in PERCENT or c in ("p", "seed", "epochs_trained", "fit_epoch") for c in columns]
    return "".join("  ".join(text.rjust(w) if r else text.ljust(w) for text, w, r in zip(line, widths, right,
                                                                                          strict=True)).rstrip() + "\n"
                   for line in cells)


def _show(column: str, value) -> str:
    if value is None:
        return MISSING
    if column in PERCENT:
        return pct(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _emit(text: str) -> int:
    """Print ``text`` (a reader that closed the pipe is :func:`shattering.cli.main`'s to handle)."""
    sys.stdout.write(text)
    return 0
