"""``shatter report DIR``: every artefact, theory result and run record under a folder, as one self-contained
HTML page, titled after what it holds (the artefacts of Zhang et al., ICLR 2017, and the scale they were drawn
at) unless ``title`` says otherwise.

The page needs nothing beside itself: figures are inlined as base64 PNG, learning curves as inline SVG, styles
are inline, there is no script and no network access. For each artefact (found by its JSON sidecar; Table 3
included) it shows what its scale may claim (a smoke artefact checks the machinery; its numbers mean nothing),
the notes (where the run differs from the paper), the figure with its caption (the provenance) or the table,
and the runs behind it with their config hash (run id), data fingerprint, code version and how they ended.
Then the theory commands' results (their ``--out`` JSON). Below, "All runs": one row per run found (every
``summary.json``, and run folders with a checkpoint or a config but no summary, listed as unfinished: never as
results) with its schedule, weight decay and augmentation, and a folded row under it holding the long fields
and the run's learning curves. The page fits a 1,400-pixel window without scrolling sideways.

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
from .common import ARTEFACT_FORMAT, pct
from .run_curves import curves_svg
from .theory_results import find_theory_results, theory_html

STATUS_LABELS = {"fit": "fit", "not-fit": "did not fit", "diverged": "diverged", "failed": "failed",
                 "unfinished": "unfinished", "damaged": "damaged"}
RECORD_FILES = ("summary.json", "config.json", "checkpoint.pt", "checkpoint.prev.pt", "metrics.jsonl")


class ReportError(ShatteringError, ValueError):
    """The folder to report on is missing or holds nothing to report."""


def build_report(root: str | Path, *, title: str | None = None) -> str:
    """The HTML page (a string) for every artefact, theory result and run record under ``root``."""
    root = Path(root).expanduser()
    artefacts, runs, theory = collect(root)
    return render_page(root, artefacts, runs, theory, title=title)


def collect(root: str | Path) -> tuple[list[tuple[Path, dict]], list[dict], list[tuple[Path, str, dict]]]:
    """The artefact sidecars, the run rows and the theory results under ``root``; refuses a folder with none."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ReportError(f"{root} is not a folder; pass the --out folder of `shatter reproduce` or `shatter sweep`.")
    artefacts = find_artefacts(root)
    runs = find_runs(root)
    theory = find_theory_results(root)
    if not artefacts and not runs and not theory:
        raise ReportError(f"{root} holds no run records, artefacts or theory results; run `shatter reproduce "
                          f"PRESET --out {root}` first.")
    return artefacts, runs, theory


def default_title(artefacts: list[tuple[Path, dict]], runs: list[dict],
                  theory: list[tuple[Path, str, dict]] = ()) -> str:
    """The page's title from what it holds: the paper's artefacts and what their scale may claim (``Zhang et
    al. (ICLR 2017): Figure 1a, Table 3 (smoke: machinery check)``), else the runs' data sets and models."""
    if artefacts:
        refs = list(dict.fromkeys(d.get("paper_ref", "").split(", ")[-1] or d.get("artefact", "")
                                  for _, d in artefacts))
        claims = sorted({str(d.get("claim") or "") for _, d in artefacts} - {""})
        short = [c.split(" (")[0] for c in claims]
        return (f"Zhang et al. (ICLR 2017): {', '.join(refs)}" + (f" ({'; '.join(short)})" if short else ""))
    if runs:
        data = sorted({str(r["dataset"]) for r in runs if r.get("dataset")})
        models = sorted({str(r["model"]) for r in runs if r.get("model")})
        return f"{len(runs)} run(s): {', '.join(models) or '?'} on {', '.join(data) or '?'}"
    return "Theory results: " + ", ".join(dict.fromkeys(f"shatter {c}" for _, c, _ in theory))


def render_page(root: Path, artefacts: list[tuple[Path, dict]], runs: list[dict],
                theory: list[tuple[Path, str, dict]] = (), *, title: str | None = None) -> str:
    """The page for what :func:`collect` found under ``root``, titled ``title`` (default: :func:`default_title`)."""
    title = title or default_title(artefacts, runs, theory)
    known = {r["run_id"] for r in runs if r.get("run_id") and r["status"] not in ("unfinished", "damaged")}
    toc = "".join(f'<li><a href="#artefact-{escape(d.get("preset", ""))}-{escape(d.get("artefact", ""))}">'
                  f"{escape(d.get('paper_ref', ''))}: {escape(d.get('title', ''))}</a></li>" for _, d in artefacts)
    toc += "".join(f'<li><a href="#theory-{escape(c)}-{len(p.parts)}-{escape(p.parent.name)}">Theory: '
                   f"shatter {escape(c)}</a></li>" for p, c, _ in theory)
    body = [f"<h1>{escape(title)}</h1>",
            "<p>Reproductions of Zhang et al., <em>Understanding deep learning requires rethinking generalization</em> "
            f"(ICLR 2017), from <code>{escape(root.name or str(root))}/</code>: {len(artefacts)} artefact(s), "
            f"{len(theory)} theory result(s), {len(runs)} run record(s). Every figure and table states "
            "where its runs differ from the paper; runs that did not fit, diverged or failed are marked and never "
            "averaged in.</p>"]
    if toc or runs:
        body.append(f"<nav><ul>{toc}<li><a href=\"#runs\">All runs</a></li></ul></nav>")
    body += [_artefact_html(root, path, data, known) for path, data in artefacts]
    body += [theory_html(root, path, command, result) for path, command, result in theory]
    body.append(_runs_html(runs))
    body.append(f'<footer class="files"><p>Made by <code>shatter report</code>, shattering {escape(__version__)}. '
                "Self-contained: no external files, scripts or network.</p></footer>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{_CSP}\">\n"
            f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
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
    metrics = [m for m in record.read_metrics() if isinstance(m, dict)]
    if summary is not None:
        cfg, final = _dict(summary.get("config")), _dict(summary.get("final"))
        return {"status": summary["status"], "run_name": d.name, "folder": rel, "run_id": summary.get("run_id"),
                **_settings(cfg), "epochs": summary.get("epochs"),
                "fit_epoch": summary.get("fit_epoch"), "train_acc": _number(final.get("train_acc")),
                "test_acc": _number(final.get("test_acc")), "fingerprint": summary.get("data_fingerprint"),
                "version": _dict(summary.get("versions")).get("shattering"),
                "schedule": _dict(summary.get("schedule")).get("text"),
                "message": str(summary.get("message", "")), "metrics": metrics}
    config = _dict(config)
    cfg = _dict(config.get("config"))
    shown = [m for m in metrics if m.get("evaluated", True) is not False]  # the last epoch with accuracies
    last = shown[-1] if shown else {}
    damage = record.damage()
    if damage:
        return {"status": "damaged", "run_name": d.name, "folder": rel, "run_id": config.get("run_id"),
                **_settings(cfg), "epochs": len(metrics), "fit_epoch": None, "train_acc": None, "test_acc": None,
                "fingerprint": config.get("data_fingerprint"),
                "version": _dict(config.get("versions")).get("shattering"), "schedule": None,
                "message": f"damaged: {'; '.join(damage)}. Not a result: run the same command again to repair it.",
                "metrics": metrics}
    return {"status": "unfinished", "run_name": d.name, "folder": rel, "run_id": config.get("run_id"),
            **_settings(cfg), "epochs": len(metrics), "fit_epoch": None,
            "train_acc": _number(last.get("train_acc")), "test_acc": _number(last.get("test_acc")),
            "fingerprint": config.get("data_fingerprint"),
            "version": _dict(config.get("versions")).get("shattering"), "schedule": None,
            "message": f"unfinished: {len(metrics)} epoch(s) recorded, no summary (interrupted, or still running); "
                       "run the same command again to resume it. Not a result.", "metrics": metrics}


def _settings(cfg: dict) -> dict:
    """What the runs table shows of a run's config: the data and model, the schedule (lr, lr decay), weight
    decay and augmentation."""
    augmentation = [name for key, name in (("random_crop", "random crop"), ("flip_rotate", "flip + rotate"))
                    if cfg.get(key) is True]
    return {"dataset": cfg.get("dataset"), "model": cfg.get("model"), "corruption": cfg.get("corruption"),
            "p": cfg.get("p"), "seed": cfg.get("seed"), "lr": _number(cfg.get("lr")),
            "lr_decay": _number(cfg.get("lr_decay")), "weight_decay": _number(cfg.get("weight_decay")),
            "augmentation": ", ".join(augmentation) or "none" if cfg else None}


def _clean_sidecar(data: dict) -> dict:
    """The fields of a sidecar the page shows, each of the type the renderers write (a sidecar edited by hand or
    written by another version shows blanks where it holds something else, and never breaks the page)."""
    def text(value) -> str:
        return value if isinstance(value, str) else ""

    def texts(value) -> list[str]:
        return [str(v) for v in value if v is not None] if isinstance(value, list) else []

    out = {**data, **{k: text(data.get(k)) for k in ("preset", "artefact", "title", "paper_ref", "status_counts")}}
    out["notes"], out["files"], out["code_versions"], out["caption"] = (
        texts(data.get(k)) for k in ("notes", "files", "code_versions", "caption"))
    out["scale"], out["claim"] = text(data.get("scale")) or None, text(data.get("claim"))
    claims = data.get("claims") if isinstance(data.get("claims"), list) else []
    out["claims"] = [{k: text(c.get(k)) for k in ("id", "words", "where", "verdict", "text")}
                     for c in claims if isinstance(c, dict)]
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
    claim = data.get("claim") or ""
    if claim:
        smoke = data.get("scale") == "smoke"
        parts.append(f'<p class="claim{" smoke" if smoke else ""}">{escape(claim)}</p>')
    claims = data.get("claims") or []
    if claims:
        parts.append('<div class="claims"><strong>Claims of the paper:</strong><ul>' + "".join(
            f'<li><span class="verdict">{escape(c["verdict"])}</span>: {escape(c["words"])} '
            f'({escape(c["where"])})<br>measured: {escape(c["text"])}</li>' for c in claims) + "</ul></div>")
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
            caption = "".join(f"<li>{escape(line)}</li>" for line in data.get("caption") or [])
            parts.append(f'<figure><img src="data:image/png;base64,{encoded}" alt="{escape(data.get("title", ""))}">'
                         f"<figcaption>{escape(name)}" + (f"<ul>{caption}</ul>" if caption else "")
                         + "</figcaption></figure>")
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
    if not runs:  # a computed artefact (Table 3): no training runs behind it
        parts.append("</section>")
        return "\n".join(parts)
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


RUN_COLUMNS = ("status", "run", "data set", "model", "corruption", "p", "seed", "lr", "lr decay", "weight decay",
               "augmentation", "epochs", "fit epoch", "train acc", "test acc")


def _runs_html(runs: list[dict]) -> str:
    """The "All runs" table: the settings and results on one row, the long fields (run id, data fingerprint,
    code version, folder, schedule, how it ended) and the learning curves folded in a details row under it."""
    rows, anchored = [], set()
    for r in runs:
        rid = r.get("run_id") or ""
        # one anchor per run id (a copied run folder appears twice; HTML ids must be unique)
        result = r["status"] not in ("unfinished", "damaged")
        anchor = f' id="run-{escape(rid)}"' if rid and rid not in anchored and result else ""
        anchored.add(rid)
        rows.append(
            f'<tr{anchor} class="{escape(r["status"])}" title="{escape(r.get("message", ""))}">'
            f"<td>{_badge(r['status'])}</td><td>{escape(r['run_name'])}</td>"
            f"<td>{_fmt(r['dataset'])}</td><td>{_fmt(r['model'])}</td><td>{_fmt(r['corruption'])}</td>"
            f"<td>{_fmt(r['p'])}</td><td>{_fmt(r['seed'])}</td><td>{_fmt(r['lr'])}</td><td>{_fmt(r['lr_decay'])}</td>"
            f"<td>{_fmt(r['weight_decay'])}</td><td>{_fmt(r['augmentation'])}</td><td>{_fmt(r['epochs'])}</td>"
            f"<td>{_fmt(r['fit_epoch'])}</td><td>{escape(pct(r['train_acc']))}</td>"
            f"<td>{escape(pct(r['test_acc']))}</td></tr>")
        svg = curves_svg(r.get("metrics") or [])
        facts = (f"<dl><dt>config hash (run id)</dt><dd><code>{_fmt(rid)}</code></dd><dt>data fingerprint</dt>"
                 f"<dd><code>{_fmt(r['fingerprint'])}</code></dd><dt>code</dt><dd>shattering {_fmt(r['version'])}</dd>"
                 f"<dt>folder</dt><dd><code>{escape(r['folder'])}</code></dd><dt>schedule</dt>"
                 f"<dd>{_fmt(r.get('schedule'))}</dd><dt>how it ended</dt><dd>{_fmt(r.get('message'))}</dd></dl>")
        curves = svg or "<p>No epoch recorded (no metrics.jsonl): no curves.</p>"
        rows.append(f'<tr class="more"><td colspan="{len(RUN_COLUMNS)}"><details><summary>learning curves and '
                    f"record</summary>{curves}{facts}</details></td></tr>")
    counts: dict[str, int] = {}
    for r in runs:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    summary = ", ".join(f"{STATUS_LABELS.get(k, k)} {v}" for k, v in sorted(counts.items()))
    unfinished = counts.get("unfinished", 0)
    warn = (f'<p class="missing">{unfinished} unfinished run(s): records without a summary (interrupted, or still '
            "running). They are not results; run the same command again to resume them.</p>") if unfinished else ""
    damaged = counts.get("damaged", 0)
    warn += (f'<p class="missing">{damaged} damaged run(s): records with a damaged file (named in each row). They '
             "are not results; run the same command again to repair them.</p>") if damaged else ""
    return (f'<section id="runs"><h2>All runs found ({len(runs)}: {escape(summary)})</h2>{warn}'
            '<table class="runs"><thead><tr>' + "".join(f"<th>{h}</th>" for h in RUN_COLUMNS)
            + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></section>")


# Nothing may load from outside the page: images are data: URIs, styles inline, no scripts.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1250px;padding:1em 2em;
color:#222;line-height:1.4}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
.ref,.files{color:#555;font-size:.9em}
.notes{background:#fff8e1;border-left:4px solid #f0b400;padding:.4em .9em;margin:.6em 0;font-size:.92em}
.notes ul{margin:.3em 0;padding-left:1.3em}
.claims{background:#eef6ff;border-left:4px solid #3b7dd8;padding:.4em .9em;margin:.6em 0;font-size:.92em}
.claims ul{margin:.3em 0;padding-left:1.3em}
.verdict{font-weight:600}
figure{margin:.8em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#777;font-size:.8em}
table{border-collapse:collapse;font-size:.82em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.2em .45em;text-align:left;vertical-align:top}th{background:#f4f4f4}
.scroll{overflow-x:auto}
.badge{display:inline-block;padding:0 .45em;border-radius:.6em;font-size:.85em;white-space:nowrap}
.badge.fit{background:#d9f2dd;color:#14591f}.badge.not-fit{background:#fde7c7;color:#7a4500}
.badge.diverged,.badge.failed,.badge.damaged{background:#f9d2d2;color:#8a1010}.badge.unfinished{background:#e4e4e4;color:#444}
td.fit{color:#14591f}td.not-fit{color:#7a4500;font-weight:600}td.diverged,td.failed{color:#8a1010;font-weight:600}
tr.unfinished td{color:#777;font-style:italic}
.missing{color:#8a1010}
nav ul{columns:2;font-size:.9em}
.claim{font-weight:600;color:#14591f}.claim.smoke{background:#eef2ff;border-left:4px solid #5468c7;color:#23306e;
padding:.3em .8em}
figcaption ul{margin:.2em 0;padding-left:1.2em;color:#444;font-size:1.05em}
table.runs{width:100%;table-layout:auto}table.runs td:nth-child(2){word-break:break-all;min-width:10em}
tr.more td{border-top:none;background:#fafafa;padding:.1em .45em}tr.more summary{color:#555;cursor:pointer}
tr.more dl{display:grid;grid-template-columns:max-content 1fr;gap:.1em .8em;margin:.3em 0}tr.more dd{margin:0;
overflow-wrap:anywhere}svg.curves{max-width:100%;height:auto;display:block;margin:.3em 0}
table.kv th{text-align:left;font-weight:normal;color:#444}pre.folded{max-height:20em;overflow:auto;
white-space:pre-wrap;word-break:break-all;font-size:.8em;background:#f7f7f7;padding:.4em}
"""
