"""How each run of a sweep ended (:class:`Outcome`), the one way an executor runs a single config
(:func:`run_one`, which never raises for a failed run), and the end-of-sweep table. A sweep is a preset's
grid of runs (the rows of Tables 1, 2 and 4 and the curves of Figures 1 and 2 of Zhang et al., ICLR 2017).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..config import RunConfig
from ..errors import RunLockedError, ShatteringError
from ..runs import RunRecord, reuse_message, run


@dataclass
class Outcome:
    """How one run of a sweep ended: its summary, or the error that stopped it."""

    config: RunConfig
    run_dir: Path
    summary: dict | None = None
    error: str | None = None
    skipped: bool = False  # finished before (by an earlier sweep, or by another process): read, not trained
    seconds: float = 0.0
    details: dict = field(default_factory=dict)
    locked: bool = False  # another process is training the run: the sweep waits for it and comes back
    moved_aside: Path | None = None  # where a rerun moved the old record
    damage: tuple[str, ...] = ()  # what was damaged in the record moved aside (then trained again)

    @property
    def ok(self) -> bool:
        return self.summary is not None

    @property
    def status(self) -> str:
        return self.summary["status"] if self.summary else "failed"

    def line(self, brief: bool = False) -> str:
        """How the run ended, in its message's words; ``brief``: without the measured reasons a run did not fit
        (what a sweep's progress line shows: the sweep sums them up at its end)."""
        if self.summary is not None:
            text = reuse_message(self.summary) if self.skipped else self.summary["message"]
            if brief and " Measured: " in text:
                text = text.split(" Measured: ")[0]
            if self.moved_aside and self.damage:
                return text + (f" The record held damaged files ({'; '.join(self.damage)}): it was moved aside to "
                               f"{self.moved_aside} and the run trained again.")
            return text + (f" The old record was moved aside to {self.moved_aside}." if self.moved_aside else "")
        return f"{describe(self.config)}: FAILED: {self.error}"


def describe(cfg: RunConfig) -> str:
    """One run in words: data set, model, corruption, seed and the regularizers that are on."""
    corr = cfg.corruption if cfg.p in (None, 0.0, 1.0) else f"{cfg.corruption} p={cfg.p:g}"
    regularizers = "".join(f" +{name}" for name, on in (
        ("crop", cfg.random_crop), ("flip-rotate", cfg.flip_rotate), (f"wd {cfg.weight_decay:g}", cfg.weight_decay),
        (f"dropout {cfg.dropout:g}", cfg.dropout)) if on)  # rows of Tables 1, 2 and 4 differ only in these
    return f"{cfg.dataset} {cfg.model} {corr} seed {cfg.seed}{regularizers}"


def run_one(cfg: RunConfig, progress: bool = False, keep_checkpoints: str = "last") -> Outcome:
    """Run ``cfg`` (or read its finished record); never raises for a failed run (a run another process is
    training is an outcome too, ``locked``)."""
    record = RunRecord(cfg.run_dir())
    done = record.read_summary()
    if done is not None:
        return Outcome(cfg, record.dir, summary=done, skipped=True)
    t0 = time.perf_counter()
    try:
        result = run(cfg, progress=progress, keep_checkpoints=keep_checkpoints)
    except RunLockedError as exc:
        return Outcome(cfg, record.dir, error=str(exc), locked=True)
    except ShatteringError as exc:
        return Outcome(cfg, record.dir, error=str(exc), seconds=time.perf_counter() - t0)
    except Exception as exc:  # a bug must not cost the rest of the sweep; keep the trace for the report
        trace = traceback.format_exc(limit=6)
        return Outcome(cfg, record.dir, error=f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - t0,
                       details={"traceback": trace})
    return Outcome(cfg, result.run_dir, summary=result.summary, skipped=result.reused,
                   seconds=time.perf_counter() - t0, moved_aside=result.moved_aside, damage=result.damage)


def failed(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """The outcomes of runs that ended with an error (no summary)."""
    return [o for o in outcomes if not o.ok]


def summary_table(outcomes: Sequence[Outcome]) -> str:
    """A plain-text table, one row per run: status, epochs to fit, accuracies, run id (its record is the folder
    ending in it)."""
    rows = [("status", "run", "fit epoch", "train acc", "test acc", "run id")]
    for o in outcomes:
        s = o.summary
        if s is None:
            rows.append(("FAILED", describe(o.config), "-", "-", "-", o.error or ""))
            continue
        final = s["final"]
        rows.append((s["status"], describe(o.config), str(s["fit_epoch"] or "-"),
                     f"{100 * final['train_acc']:.2f}%", f"{100 * final['test_acc']:.2f}%", o.config.run_id()))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)
