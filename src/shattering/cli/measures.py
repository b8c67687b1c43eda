"""``shatter measures RUNS...``: the complexity measures of finished runs (Section 5 of Zhang et al., ICLR 2017,
asks which measure tells fitting true labels from fitting random ones), computed from each run's last checkpoint
by :func:`shattering.runs.measure_runs` and written into its summary; a table, or ``--json``.

Runs trained by this version measured themselves when they ended; this command is for older records, and to
measure again (for instance on another device).
"""

from __future__ import annotations

import sys

from ..files import json_text
from ..formatting import MISSING
from ..runs.measured import measure_runs
from .common import EXIT_USAGE, json_flag, one_line

# The columns of the table: (heading, measure key).
SHOWN = (("l2", "l2_norm"), ("dist init", "distance_from_init"), ("log spec prod", "log_spectral_product"),
         ("frob sum", "frobenius_sum"), ("path l2", "path_l2"), ("margin p10", "margin_p10"),
         ("norm margin", "normalized_margin"), ("pac-bayes sigma", "pac_bayes_sigma"))


def register(sub) -> None:
    p = sub.add_parser("measures", help="complexity measures of finished runs (norms, margins, flatness)",
                       description="Compute the complexity measures of every finished run under RUNS (run folders, "
                                   "or folders of runs) from its last checkpoint: l2 norm, distance from "
                                   "initialization, spectral and Frobenius norms, path-l2 norm, margins, normalized "
                                   "margin and PAC-Bayes flatness; write them into each run's summary.json and "
                                   "print a table. A run kept without a checkpoint cannot be measured. In Python: "
                                   "shattering.measure_run(RUN_DIR).")
    p.add_argument("runs", nargs="+", metavar="RUNS", help="run folders, or folders of runs (searched recursively)")
    p.add_argument("--device", default=None, help="where to compute (default: each run's own device setting)")
    p.add_argument("--no-write", dest="write", action="store_false",
                   help="print the measures without writing them into the runs' summaries")
    json_flag(p, "every run's summary with its measures")
    p.set_defaults(func=_cmd_measures)


def _cmd_measures(args) -> int:
    failed = []

    def report(run_dir, exc) -> None:  # one sentence per run that cannot be measured; the others are
        failed.append(run_dir)
        print(f"shatter measures: {one_line(str(exc))}", file=sys.stderr)

    summaries = measure_runs(args.runs, device=args.device, write=args.write, on_error=report)
    if args.json:
        sys.stdout.write(json_text(summaries) + "\n")
    elif summaries:
        sys.stdout.write(render(summaries))
    return EXIT_USAGE if failed else 0


def render(summaries: list[dict]) -> str:
    """One line per run: its name, status and the measures of :data:`SHOWN` (a dash where one is unavailable)."""
    cells = [["run", "status", *(h for h, _ in SHOWN), "seconds"]]
    for s in summaries:
        m = s.get("measures") or {}
        cells.append([str(s.get("run_name", "?")), str(s.get("status", "?")),
                      *(_show(m.get(key)) for _, key in SHOWN), _show(s.get("measures_seconds"))])
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
