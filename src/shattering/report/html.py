"""``shatter report DIR``: every artefact and run record under a folder, as one self-contained HTML page.

The page needs nothing beside itself: figures are inlined as base64 PNG, styles are inline, there is no
script and no network access. For each artefact (found by its JSON sidecar) it shows the notes (where the
run differs from the paper), the figure or table, and the runs behind it with their config hash (run id),
data fingerprint, code version and how they ended; runs that did not fit, diverged or failed are marked as
such. Below, a table of every run found (every ``summary.json``), and of run folders with a checkpoint or a
config but no summary, listed as unfinished: never as results.

The page is byte-stable: the same folder gives the same page (no clock, no absolute paths).
"""

from __future__ import annotations

import base64
import math
from html import escape
from pathlib import Path

from .._version import __version__
from ..errors import ShatteringError
from ..files import read_json
from ..runs import RunRecord, moved_aside
from .common import ARTEFACT_FORMAT, pct, write_text

STATUS_LABELS = {"fit": "fit", "not-fit": "did not fit", "diverged": "diverged", "failed": "failed",
                 "unfinished": "unfinished"}
RECORD_FILES = ("summary.json", "config.json", "checkpoint.pt", "checkpoint.prev.pt", "metrics.jsonl")


class ReportError(ShatteringError, ValueError):
    """The folder to report on is missing or holds nothing to report."""


def write_report(root: str | Path, out: str | Path | None = None) -> Path:
    """Write the page for ``root`` to ``out`` (default ``<root>/report.html``) and return its path."""
    root = Path(root).expanduser()
    path = Path(out).expanduser() if out is not None else root / "report.html"
    write_text(path, build_report(root))
    return path


def build_report(root: str | Path) -> str:
    """The HTML page (a string) for every artefact and run record under ``root``."""
    root = Path(root).expanduser()
    artefacts, runs = collect(root)
    return render_page(root, artefacts, runs)


def collect(root: str | Path) -> tuple[list[tuple[Path, dict]], list[dict]]:
    """The artefact sidecars and the run rows under ``root``; refuses a folder with neither."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ReportError(f"{root} is not a folder; pass the --out folder of `shatter reproduce` or `shatter sweep`.")
    artefacts = find_artefacts(root)
    runs = find_runs(root)
    if not artefacts and not runs:
        raise ReportError(f"{root} holds no run records and no artefacts; run `shatter reproduce PRESET --out "
                          f"{root}` first.")
    return artefacts, runs


def render_page(root: Path, artefacts: list[tuple[Path, dict]], runs: list[dict]) -> str:
    """The page for what :func:`collect` found under ``root``."""
    known = {r["run_id"] for r in runs if r.get("run_id") and r["status"] != "unfinished"}
    toc = "".join(f'<li><a href="#artefact-{escape(d.get("preset", ""))}-{escape(d.get("artefact", ""))}">'
                  f"{escape(d.get('paper_ref', ''))}: {escape(d.get('title', ''))}</a></li>" for _, d in artefacts)
    body = [f"<h1>shattering report: {escape(root.name or str(root))}</h1>",
            "<p>Reproductions of Zhang et al., <em>Understanding deep learning requires rethinking generalization</em> "
            f"(ICLR 2017). {len(artefacts)} artefact(s), {len(runs)} run record(s). Every figure and table states "
            "where its runs differ from the paper; runs that did not fit, diverged or failed are marked and never "
            "averaged in.</p>"]
    if toc:
        body.append(f"<nav><ul>{toc}<li><a href=\"#runs\">All runs</a></li></ul></nav>")
    body += [_artefact_html(root, path, data, known) for path, data in artefacts]
    body.append(_runs_html(runs))
    body.append(f'<footer class="files"><p>Made by <code>shatter report</code>, shattering {escape(__version__)}. '
                "Self-contained: no external files, scripts or network.</p></footer>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{_CSP}\">\n"
            f"<title>shattering report: {escape(root.name or str(root))}</title>\n<style>{_CSS}</style>\n</head>\n"
            "<body>\n" + "\n".join(body) + "\n</body>\n</html>\n")


def find_artefacts(root: Path) -> list[tuple[Path, dict]]:
    """Every artefact sidecar under ``root`` (a JSON file with a ``shattering_artefact`` key), sorted by path."""
    found = []
    for path in sorted(root.rglob("*.json")):
        if path.name in ("summary.json", "config.json"):
            continue
        data = read_json(path)
        if data is not None and data.get("shattering_artefact") == ARTEFACT_FORMAT:
            found.append((path, _clean_sidecar(data)))
    return found


def find_runs(root: Path) -> list[dict]:
    """One row per run folder under ``root``: finished (a summary) or unfinished (a record without one)."""
    dirs = set()
    for name in RECORD_FILES:
        for path in root.rglob(name):
            if path.is_file() and not moved_aside(path.parent):  # an old record a rerun moved aside: not a run
                dirs.add(path.parent)
    rows = []
    for d in sorted(dirs):
        record = RunRecord(d)
        summary = record.read_summary()
        config = record.read_config()
        if summary is None and config is None and not record.has_checkpoint():
            continue  # a stray metrics.jsonl or config.json: not a run record
        if summary is None and config is not None and not isinstance(config.get("run_id"), str):
            continue  # some other config.json
        rows.append(_run_row(root, d, summary, config, record))
    return rows


# INTERNAL UTILITIES -------------------------------------------------------------------------------


def _run_row(root: Path, d: Path, summary: dict | None, config: dict | None, record: RunRecord) -> dict:
    """One row of the runs table. Every field is checked for its type: a record written by another version
    (or by hand) shows blanks where it holds something unexpected, and never breaks the page."""
    rel = d.relative_to(root).as_posix()
    if summary is not None:
        cfg, final = _dict(summary.get("config")), _dict(summary.get("final"))
        return {"status": summary["status"], "run_name": d.name, "folder": rel, "run_id": summary.get("run_id"),
                "dataset": cfg.get("dataset"), "model": cfg.get("model"), "corruption": cfg.get("corruption"),
                "p": cfg.get("p"), "seed": cfg.get("seed"), "epochs": summary.get("epochs"),
                "fit_epoch": summary.get("fit_epoch"), "train_acc": _number(final.get("train_acc")),
                "test_acc": _number(final.get("test_acc")), "fingerprint": summary.get("data_fingerprint"),
                "version": _dict(summary.get("versions")).get("shattering"),
                "message": str(summary.get("message", ""))}
    config = _dict(config)
    cfg = _dict(config.get("config"))
    metrics = record.read_metrics()
    last = metrics[-1] if metrics else {}
    return {"status": "unfinished", "run_name": d.name, "folder": rel, "run_id": config.get("run_id"),
            "dataset": cfg.get("dataset"), "model": cfg.get("model"), "corruption": cfg.get("corruption"),
            "p": cfg.get("p"), "seed": cfg.get("seed"), "epochs": len(metrics), "fit_epoch": None,
            "train_acc": _number(last.get("train_acc")), "test_acc": _number(last.get("test_acc")),
            "fingerprint": config.get("data_fingerprint"),
            "version": _dict(config.get("versions")).get("shattering"),
            "message": f"unfinished: {len(metrics)} epoch(s) recorded, no summary (interrupted, or still running); "
                       "run the same command again to resume it. Not a result."}


def _clean_sidecar(data: dict) -> dict:
    """The fields of a sidecar the page shows, each of the type the renderers write (a sidecar edited by hand or
    written by another version shows blanks where it holds something else, and never breaks the page)."""
    def text(value) -> str:
        return value if isinstance(value, str) else ""

    def texts(value) -> list[str]:
        return [str(v) for v in value if v is not None] if isinstance(value, list) else []

    out = {**data, **{k: text(data.get(k)) for k in ("preset", "artefact", "title", "paper_ref", "status_counts")}}
    out["notes"], out["files"], out["code_versions"] = (texts(data.get(k)) for k in ("notes", "files",
                                                                                      "code_versions"))
    table = _dict(data.get("table"))
    columns, rows = table.get("columns"), table.get("rows")
    out["table"] = ({"columns": [str(c) for c in columns], "rows": [r for r in rows if isinstance(r, list)]}
                    if isinstance(columns, list) and isinstance(rows, list) else None)
    runs = [r for r in data.get("runs") or [] if isinstance(r, dict)] if isinstance(data.get("runs"), list) else []
    out["runs"] = [{**r, **{k: text(r.get(k)) or None for k in ("run_name", "run_id", "status", "status_text",
                                                                 "error")}} for r in runs]
    return out


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _number(value) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def _badge(status: str) -> str:
    return f'<span class="badge {escape(status)}">{escape(STATUS_LABELS.get(status, status))}</span>'


def _fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    return escape(str(value))


def _artefact_html(root: Path, path: Path, data: dict, known_runs: set[str]) -> str:
    folder = path.parent
    anchor = f"artefact-{escape(data.get('preset', ''))}-{escape(data.get('artefact', ''))}"
    parts = [f'<section class="artefact" id="{anchor}">',
             f"<h2>{escape(data.get('title', data.get('artefact', '')))}</h2>",
             f'<p class="ref">{escape(data.get("paper_ref", ""))} &middot; preset '
             f'<code>{escape(data.get("preset", ""))}</code> &middot; '
             f"{escape(folder.relative_to(root).as_posix())}/</p>"]
    notes = data.get("notes") or []
    if notes:
        parts.append('<div class="notes"><strong>Where this differs from the paper:</strong><ul>'
                     + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul></div>")
    files = data.get("files") or []
    pngs = [f for f in files if f.endswith(".png")]
    for name in pngs:
        file = folder / name
        if file.is_file():
            encoded = base64.b64encode(file.read_bytes()).decode("ascii")
            parts.append(f'<figure><img src="data:image/png;base64,{encoded}" alt="{escape(data.get("title", ""))}">'
                         f"<figcaption>{escape(name)}</figcaption></figure>")
        else:
            parts.append(f'<p class="missing">{escape(name)} is missing: run <code>shatter reproduce '
                         f'{escape(data.get("preset", ""))}</code> again.</p>')
    table = data.get("table")
    if table:
        status_col = table["columns"].index("status") if "status" in table["columns"] else None
        head = "".join(f"<th>{escape(c)}</th>" for c in table["columns"])
        body = []
        for row in table["rows"]:
            cells = []
            for i, cell in enumerate(row):
                cls = f' class="{_status_class(str(cell))}"' if i == status_col else ""
                cells.append(f"<td{cls}>{escape(str(cell))}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        parts.append(f'<div class="scroll"><table class="result"><thead><tr>{head}</tr></thead><tbody>'
                     + "".join(body) + "</tbody></table></div>")
    parts.append(f'<p class="files">Files: {", ".join(f"<code>{escape(f)}</code>" for f in files)} '
                 f"&middot; shattering {escape(', '.join(data.get('code_versions') or ['?']))}</p>")
    runs = data.get("runs") or []
    rows = []
    for r in runs:
        name = escape(r.get("run_name") or "")
        link = f'<a href="#run-{escape(r.get("run_id", ""))}">{name}</a>' if r.get("run_id") in known_runs else name
        detail = r.get("error") if r.get("status") == "failed" else r.get("status_text")
        rows.append(f"<tr><td>{_badge(r.get('status') or '?')}</td><td>{link}</td>"
                    f"<td><code>{_fmt(r.get('run_id'))}</code></td><td>{_fmt(r.get('seed'))}</td>"
                    f"<td><code>{_fmt(r.get('data_fingerprint'))}</code></td><td>{_fmt(r.get('version'))}</td>"
                    f"<td>{_fmt(detail)}</td></tr>")
    parts.append(f"<details open><summary>Runs behind it: {len(runs)} ({escape(data.get('status_counts', ''))})"
                 "</summary><div class=\"scroll\"><table><thead><tr><th>status</th><th>run</th><th>config hash (run "
                 "id)</th><th>seed</th><th>data fingerprint</th><th>code</th><th>how it ended</th></tr></thead>"
                 f"<tbody>{''.join(rows)}</tbody></table></div></details>")
    parts.append("</section>")
    return "\n".join(parts)


def _status_class(text: str) -> str:
    if text.startswith("failed"):
        return "failed"
    if text.startswith("diverged"):
        return "diverged"
    if "did not fit" in text:
        return "not-fit"
    return "fit" if text.startswith("fit") else ""


def _runs_html(runs: list[dict]) -> str:
    head = ("status", "run", "data set", "model", "corruption", "p", "seed", "epochs", "fit epoch", "train acc",
            "test acc", "config hash (run id)", "data fingerprint", "code", "folder")
    rows, anchored = [], set()
    for r in runs:
        rid = r.get("run_id") or ""
        # one anchor per run id (a copied run folder appears twice; HTML ids must be unique)
        anchor = f' id="run-{escape(rid)}"' if rid and rid not in anchored and r["status"] != "unfinished" else ""
        anchored.add(rid)
        rows.append(
            f'<tr{anchor} class="{escape(r["status"])}" title="{escape(r.get("message", ""))}">'
            f"<td>{_badge(r['status'])}</td><td>{escape(r['run_name'])}</td><td>{_fmt(r['dataset'])}</td>"
            f"<td>{_fmt(r['model'])}</td><td>{_fmt(r['corruption'])}</td><td>{_fmt(r['p'])}</td>"
            f"<td>{_fmt(r['seed'])}</td><td>{_fmt(r['epochs'])}</td><td>{_fmt(r['fit_epoch'])}</td>"
            f"<td>{escape(pct(r['train_acc']))}</td><td>{escape(pct(r['test_acc']))}</td>"
            f"<td><code>{_fmt(rid)}</code></td><td><code>{_fmt(r['fingerprint'])}</code></td>"
            f"<td>{_fmt(r['version'])}</td><td><code>{escape(r['folder'])}</code></td></tr>")
    counts: dict[str, int] = {}
    for r in runs:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    summary = ", ".join(f"{STATUS_LABELS.get(k, k)} {v}" for k, v in sorted(counts.items()))
    unfinished = counts.get("unfinished", 0)
    warn = (f'<p class="missing">{unfinished} unfinished run(s): records without a summary (interrupted, or still '
            "running). They are not results; run the same command again to resume them.</p>") if unfinished else ""
    return (f'<section id="runs"><h2>All runs found ({len(runs)}: {escape(summary)})</h2>{warn}'
            '<div class="scroll"><table><thead><tr>' + "".join(f"<th>{h}</th>" for h in head)
            + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div></section>")


# Nothing may load from outside the page: images are data: URIs, styles inline, no scripts.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1250px;padding:1em 2em;
color:#222;line-height:1.4}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
.ref,.files{color:#555;font-size:.9em}
.notes{background:#fff8e1;border-left:4px solid #f0b400;padding:.4em .9em;margin:.6em 0;font-size:.92em}
.notes ul{margin:.3em 0;padding-left:1.3em}
figure{margin:.8em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#777;font-size:.8em}
table{border-collapse:collapse;font-size:.82em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.2em .45em;text-align:left;vertical-align:top}th{background:#f4f4f4}
.scroll{overflow-x:auto}
.badge{display:inline-block;padding:0 .45em;border-radius:.6em;font-size:.85em;white-space:nowrap}
.badge.fit{background:#d9f2dd;color:#14591f}.badge.not-fit{background:#fde7c7;color:#7a4500}
.badge.diverged,.badge.failed{background:#f9d2d2;color:#8a1010}.badge.unfinished{background:#e4e4e4;color:#444}
td.fit{color:#14591f}td.not-fit{color:#7a4500;font-weight:600}td.diverged,td.failed{color:#8a1010;font-weight:600}
tr.unfinished td{color:#777;font-style:italic}
.missing{color:#8a1010}
nav ul{columns:2;font-size:.9em}
"""
