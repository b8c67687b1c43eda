"""``shatter report DIR``: one self-contained HTML page with every artefact, theory result and run record under
DIR (the paper's figures and tables as ``shatter reproduce`` drew them, Table 3 included, the theory commands'
``--out`` results, and the runs behind each with their learning curves)."""

from __future__ import annotations

from pathlib import Path

from ..files import file_problem


def register(sub) -> None:
    p = sub.add_parser("report", help="one self-contained HTML page with every figure, table and run under DIR",
                       description="Gather every artefact (written by `shatter reproduce`) and every run record "
                                   "under DIR into one HTML page that needs no other file: figures inlined, the "
                                   "runs behind each with their config hash and data fingerprint, and runs that "
                                   "did not fit, diverged, failed or are unfinished marked as such.")
    p.add_argument("dir", metavar="DIR", help="folder to scan (the --out of `shatter reproduce` / `shatter sweep`)")
    p.add_argument("--out", metavar="FILE", default=None, help="where to write the page (default: DIR/report.html)")
    p.add_argument("--title", default=None, help="the page's title (default: from the artefacts it holds, e.g. "
                                                 "'Zhang et al. (ICLR 2017): Figure 1a, Table 1 (reproduced)')")
    p.set_defaults(func=_cmd_report)


def _cmd_report(args) -> int:
    from ..report.common import write_text  # here: `shatter --help` loads no torch
    from ..report.html import ReportError, collect, render_page

    root = Path(args.dir).expanduser()
    path = Path(args.out).expanduser() if args.out else root / "report.html"
    problem = file_problem(path)
    if problem:
        raise ReportError(problem)
    artefacts, runs, theory = collect(root)
    write_text(path, render_page(root, artefacts, runs, theory, title=args.title))
    unfinished = sum(r["status"] == "unfinished" for r in runs)
    print(f"report: {path} ({len(artefacts)} artefact(s), {len(theory)} theory result(s), {len(runs)} run record(s)"
          + (f", {unfinished} unfinished" if unfinished else "") + ")")
    return 0
