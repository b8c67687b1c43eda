"""What every renderer shares: how a run ended (in words), means with confidence intervals over seeds, the
sidecar JSON beside each artefact, and byte-stable file writing.

One rule holds in every figure and table: a mean pools only runs that fit. A run that did not fit, diverged
or failed is shown on its own and labelled as such.
"""

from __future__ import annotations

import csv
import io
import math
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from ..executors.outcome import Outcome, describe
from ..experiments.presets import scale_claim
from ..files import atomic_write_bytes, json_text
from ..formatting import pct as pct

ARTEFACT_FORMAT = 1  # the "shattering_artefact" key of a sidecar: its format version
CONFIDENCE = 0.95


# --------------------------------------------------------------------------------------------------
# How a run ended
# --------------------------------------------------------------------------------------------------


def status_of(outcome: Outcome) -> str:
    """``fit``, ``not-fit``, ``diverged`` or ``failed``."""
    return outcome.summary["status"] if outcome.summary is not None else "failed"


def status_text(outcome: Outcome) -> str:
    """How the run ended, in a few words: ``fit``, ``did not fit: 98.70%``, ``diverged``, ``failed: ...``."""
    s = outcome.summary
    if s is None:
        return f"failed: {outcome.error or 'unknown error'}"
    if s["status"] == "fit":
        return "fit"
    if s["status"] == "diverged":
        return f"diverged at epoch {s.get('epochs', '?')}"
    return f"did not fit: {pct(s['final']['train_acc'])}"


def run_entry(outcome: Outcome) -> dict:
    """What an artefact's sidecar says about one run behind it (no paths, no clocks: byte-stable)."""
    cfg, s = outcome.config, outcome.summary
    entry = {
        "run_name": outcome.run_dir.name,
        "run_id": cfg.run_id(),
        "describe": describe(cfg),
        "status": status_of(outcome),
        "status_text": status_text(outcome),
        "dataset": cfg.dataset,
        "model": cfg.model,
        "corruption": cfg.corruption,
        "p": cfg.resolved().p,
        "seed": cfg.seed,
    }
    if s is not None:
        entry.update({
            "data_fingerprint": s.get("data_fingerprint"),
            "version": s.get("versions", {}).get("shattering"),
            "epochs": s.get("epochs"),
            "steps": s.get("steps"),
            "fit_step": s.get("fit_step"),
            "train_acc": s["final"].get("train_acc") if s.get("final") else None,
            "test_acc": s["final"].get("test_acc") if s.get("final") else None,
            "schedule": s.get("schedule", {}).get("text"),
        })
    else:
        entry["error"] = outcome.error
    return entry


class MeanCI(NamedTuple):
    """A mean over seeds and the half-width of its confidence interval."""

    mean: float
    ci: float


def mean_ci(values: Sequence[float]) -> MeanCI:
    """Mean and the half-width of its Student-t confidence interval at :data:`CONFIDENCE`,
    t_{(1 + c)/2, n-1} * s / sqrt(n) with s the sample standard deviation (0 for a single value)."""
    n = len(values)
    if n == 0:
        return MeanCI(math.nan, math.nan)
    mean = sum(values) / n
    if n == 1:
        return MeanCI(mean, 0.0)
    from scipy import stats  # slow to import (bench/RESULTS.md): only when several seeds are averaged

    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return MeanCI(mean, float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * sd / math.sqrt(n))


def versions_of(outcomes: Iterable[Outcome]) -> list[str]:
    return sorted({o.summary.get("versions", {}).get("shattering", "?") for o in outcomes if o.summary})


def status_counts(outcomes: Sequence[Outcome]) -> str:
    """``fit 3, did not fit 2, failed 1`` (only the statuses present)."""
    names = {"fit": "fit", "not-fit": "did not fit", "diverged": "diverged", "failed": "failed"}
    counts = {k: 0 for k in names}
    for o in outcomes:
        counts[status_of(o)] = counts.get(status_of(o), 0) + 1
    return ", ".join(f"{names.get(k, k)} {v}" for k, v in counts.items() if v)


def unfit_lines(outcomes: Sequence[Outcome], label) -> list[str]:
    """One caption line per run that did not fit, diverged or failed (``label(outcome)`` names it)."""
    lines = []
    for o in outcomes:
        if status_of(o) != "fit":
            lines.append(f"{label(o)}, seed {o.config.seed}: {status_text(o)}")
    return lines


# --------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` atomically (readable by others as the umask allows: artefacts are meant to be shared)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)
    return path


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode())


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence]) -> Path:
    """``header`` then one line per row (a row: the values in the header's order); None and NaN as empty cells,
    floats to 6 significant digits."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else _csv_value(v) for v in row])
    return write_text(path, buf.getvalue())


def write_records(path: Path, columns: Sequence[str], records: Iterable[Mapping]) -> Path:
    """:func:`write_csv` of named rows: each record's value for each of ``columns``, by name."""
    return write_csv(path, columns, ([record[c] for c in columns] for record in records))


def _csv_value(v):
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return v


def write_sidecar(out_dir: Path, stem: str, preset, outcomes: Sequence[Outcome], notes: Sequence[str],
                  files: Sequence[Path], *, scale: str | None = None, caption: Sequence[str] = (),
                  file_name: str | None = None, **extra) -> Path:
    """``<stem>.json`` (or ``file_name``): what the artefact is, at which scale and what that scale may claim,
    the notes, the caption (a figure's provenance, kept out of its image), its files and every run behind it."""
    data = {
        "shattering_artefact": ARTEFACT_FORMAT,
        "artefact": stem,
        "preset": preset.name,
        "title": preset.title,
        "paper_ref": preset.paper_ref,
        "kind": preset.kind,
        "scale": scale,
        "claim": scale_claim(scale),
        "notes": list(notes),
        "caption": list(caption),
        "files": [Path(f).name for f in files],
        "status_counts": status_counts(outcomes),
        "code_versions": versions_of(outcomes),
        "runs": [run_entry(o) for o in outcomes],
        **extra,
    }
    path = out_dir / (file_name or f"{stem}.json")
    return write_text(path, json_text(data, strict=True))


def wrap_lines(lines: Iterable[str], width: int) -> list[str]:
    out = []
    for line in lines:
        out.extend(textwrap.wrap(line, width=width, subsequent_indent="    ") or [""])
    return out
