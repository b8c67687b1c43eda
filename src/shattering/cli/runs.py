"""``shatter runs PATH``: every run record under PATH as one table (the randomization tests of Section 2.1 of
Zhang et al., ICLR 2017, and how each ended), read from the files by :func:`shattering.runs.load_runs`.

The default is a fixed-width table of the most useful columns; ``--csv`` prints every column as CSV and
``--json`` a list of records (:func:`shattering.files.json_text`). ``--where column=value`` keeps the rows where
the column holds the value (repeatable: all must hold).
"""

from __future__ import annotations

import difflib
import sys
import warnings
from collections.abc import Sequence

from ..errors import ConfigError
from ..files import json_text
from ..formatting import MISSING, pct
from ..runs.table import CONFIG_COLUMNS, as_records, load_runs, select_runs
from .common import json_flag

# The columns of the readable table: the run id, the settings that vary across the runs listed (where none does,
# IDENTITY), then how each run ended; --columns chooses others.
IDENTITY = ("dataset", "model", "corruption")
RESULTS = ("status", "epochs_trained", "fit_epoch", "train_acc", "test_acc", "best_test_acc", "label_noise")
SHOWN = ("run_id", *IDENTITY, "p", "seed", *RESULTS)  # what the table showed before it chose by variation
# Settings that never tell two runs' results apart (where they ran, not what): never chosen as varying.
NOT_RESULTS = ("data_dir", "out", "device", "eval_batch_size", "workers", "layout", "threads", "compile",
               "model_digest", "data_digest")
PERCENT = {"train_acc", "test_acc", "best_test_acc", "label_noise"}
HEADINGS = {"epochs_trained": "epochs run", "train_acc": "train", "test_acc": "test", "best_test_acc": "best test",
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
    p.add_argument("--columns", metavar="A,B,...", default=None,
                   help="the columns of the table, comma-separated, of those --csv prints (default: the run id, the "
                        "settings that vary across the runs listed, and how each ended)")
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
    columns = chosen_columns(args.columns, list(table.columns)) if args.columns else None
    if not found and (args.json or args.csv):
        print(f"shatter runs: no run records under {args.path}", file=sys.stderr)
    if args.json:
        return _emit(json_text(as_records(table), strict=True, sort_keys=False))
    if args.csv:
        return _emit(table[list(columns)].to_csv(index=False) if columns else table.to_csv(index=False))
    if not found:
        return _emit(f"no run records under {args.path}\n")
    if table.empty:
        return _emit(f"none of the {found} run(s) under {args.path} has {' and '.join(args.where)}\n")
    rows = as_records(table)
    shown = render(rows, columns or varying_columns(rows))
    return _emit(shown + f"{len(table)} run(s)" + (f" of {found}" if len(table) < found else "")
                 + f" under {args.path}\n")


def varying_columns(rows: Sequence[dict]) -> tuple[str, ...]:
    """The default columns: the run id, every setting whose value differs between ``rows`` (in the config's
    order; :data:`IDENTITY` where none does), then :data:`RESULTS`."""
    varying = [c for c in CONFIG_COLUMNS if c not in NOT_RESULTS and len({repr(r.get(c)) for r in rows}) > 1]
    return ("run_id", *(varying or IDENTITY), *RESULTS)


def chosen_columns(text: str, known: Sequence[str]) -> tuple[str, ...]:
    """``--columns a,b,c`` as column names, each one the table has (one sentence naming the nearest otherwise)."""
    names = tuple(c.strip() for c in text.split(",") if c.strip())
    unknown = [c for c in names if c not in known]
    if not names or unknown:
        near = [m for c in unknown for m in difflib.get_close_matches(c, known, 1)]
        raise ConfigError("--columns takes the table's column names, comma-separated; "
                          + (f"{', '.join(map(repr, unknown))} {'is' if len(unknown) == 1 else 'are'} not one"
                             if unknown else "got none")
                          + (f" (did you mean {', '.join(map(repr, near))}?)" if near else "")
                          + f". The columns: {', '.join(known)}.")
    return names


def render(rows: Sequence[dict], columns: Sequence[str] = SHOWN) -> str:
    """``rows`` as a fixed-width table of ``columns`` (numbers right-aligned, blanks as a dash)."""
    cells = [[HEADINGS.get(c, c) for c in columns]] + [[_show(c, row.get(c)) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    right = [c in PERCENT or any(isinstance(row.get(c), (int, float)) and not isinstance(row.get(c), bool)
                                 for row in rows) for c in columns]
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
