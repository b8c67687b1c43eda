"""``shatter measures RUNS...``: the complexity measures of finished runs (Section 5 of Zhang et al., ICLR 2017,
asks which measure tells fitting true labels from fitting random ones), computed from each run's last checkpoint
by :func:`shattering.runs.measure_runs` and written into its summary; a table, or ``--json``.

Runs trained by this version measured themselves when they ended (the measures their setting ``measures``
selected); this command is for older records, to measure again (for instance on another device), and to add
measures a run did not compute (``--measures pac_bayes_sigma``: merged into the summary's others). The
measures, their columns and this help come from the registry (:mod:`shattering.measures.registry`).
"""

from __future__ import annotations

import sys

from ..files import json_text
from ..formatting import MISSING
from ..measures import measures
from ..measures.registry import SELECTIONS, groups, selection_help
from .common import EXIT_USAGE, json_flag, one_line


def shown(selection: str | None = None) -> tuple[tuple[str, str], ...]:
    """The columns of the table, (heading, measure name): every registered measure marked ``in_table``, and those
    ``selection`` names (by name or by group)."""
    named = {t.strip() for t in (selection or "").split(",")} - set(SELECTIONS)
    named |= {name for group, names in groups().items() if group in named for name in names}
    return tuple((m.heading or m.name, m.name) for m in measures() if m.in_table or m.name in named)


def register(sub) -> None:
    titles = ", ".join(m.title for m in measures())
    p = sub.add_parser("measures", help="complexity measures of finished runs (norms, margins, flatness)",
                       description=f"Compute the complexity measures of every finished run under RUNS (run folders, "
                                   f"or folders of runs) from its last checkpoint ({titles}); write them into each "
                                   "run's summary.json (over the ones it holds) and print a table. A run kept "
                                   "without a checkpoint cannot be measured. In Python: "
                                   "shattering.measure_run(RUN_DIR, measures=...).")
    p.add_argument("runs", nargs="+", metavar="RUNS", help="run folders, or folders of runs (searched recursively)")
    p.add_argument("--device", default=None, help="where to compute (default: each run's own device setting)")
    p.add_argument("--measures", default="default", metavar="NAMES",
                   help=f"which measures to compute: {selection_help()} (default: default)")
    p.add_argument("--no-write", dest="write", action="store_false",
                   help="print the measures without writing them into the runs' summaries")
    json_flag(p, "every run's summary with its measures")
    p.set_defaults(func=_cmd_measures)


def _cmd_measures(args) -> int:
    from ..runs.measured import measure_runs  # here: `shatter --help` loads no torch

    failed = []

    def report(run_dir, exc) -> None:  # one sentence per run that cannot be measured; the others are
        failed.append(run_dir)
        print(f"shatter measures: {one_line(str(exc))}", file=sys.stderr)

    summaries = measure_runs(args.runs, device=args.device, write=args.write, on_error=report,
                             measures=args.measures)
    if args.json:
        sys.stdout.write(json_text(summaries) + "\n")
    elif summaries:
        sys.stdout.write(render(summaries, shown(args.measures)))
    return EXIT_USAGE if failed else 0


def render(summaries: list[dict], columns: tuple[tuple[str, str], ...] | None = None) -> str:
    """One line per run: its name, status and the measures of ``columns`` ((heading, name) pairs; default
    :func:`shown`), a dash where one is unavailable."""
    columns = shown() if columns is None else columns
    cells = [["run", "status", *(h for h, _ in columns), "seconds"]]
    for s in summaries:
        m = s.get("measures") or {}
        cells.append([str(s.get("run_name", "?")), str(s.get("status", "?")),
                      *(_show(m.get(key)) for _, key in columns), _show(s.get("measures_seconds"))])
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(text.ljust(w) if i < 2 else text.rjust(w) for i, (text, w) in enumerate(zip(row, widths,
                                                                                                    strict=True)))
             .rstrip() for row in cells]
    errors = [f"{s.get('run_name', '?')}: {s['measures_error']}" for s in summaries if s.get("measures_error")]
    return "\n".join(lines + errors) + "\n"


def _show(value) -> str:
    if value is None:
        return MISSING
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
