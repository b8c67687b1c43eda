"""``shatter report DIR``: one self-contained HTML page with every artefact and run record under DIR."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("report", help="one self-contained HTML page with every figure, table and run under DIR",
                       description="Gather every artefact (written by `shatter reproduce`) and every run record "
                                   "under DIR into one HTML page that needs no other file: figures inlined, the "
                                   "runs behind each with their config hash and data fingerprint, and runs that "
                                   "did not fit, diverged, failed or are unfinished marked as such.")
    p.add_argument("dir", metavar="DIR", help="folder to scan (the --out of `shatter reproduce` / `shatter sweep`)")
    p.add_argument("--output", "-o", metavar="FILE", default=None,
                   help="where to write the page (default: DIR/report.html)")
    p.set_defaults(func=_cmd_report)


def _cmd_report(args) -> int:
    from pathlib import Path

    from ..report.common import write_text
    from ..report.html import collect, render_page

    root = Path(args.dir).expanduser()
    artefacts, runs = collect(root)
    path = Path(args.output).expanduser() if args.output else root / "report.html"
    write_text(path, render_page(root, artefacts, runs))
    unfinished = sum(r["status"] == "unfinished" for r in runs)
    print(f"report: {path} ({len(artefacts)} artefact(s), {len(runs)} run record(s)"
          + (f", {unfinished} unfinished" if unfinished else "") + ")")
    return 0
