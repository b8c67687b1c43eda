"""Sweeps: many runs, each skipped when finished, resumed when broken, and none stopping the others.

A sweep is a list of :class:`~shattering.config.RunConfig` (a preset's grid, expanded in code). An executor
runs them and yields one :class:`Outcome` per config, in order:

- ``local`` (default): in this process, one run after another or several runs packed into one model
  (:mod:`shattering.train.packed`).
- ``ray``: each run (or packed group) is a Ray task with its resources, on this machine or a cluster; a task
  whose worker dies is retried and resumes from its checkpoint (:mod:`shattering.executors.ray_executor`).

A run that raises (bad data, a full disk, a bug) is reported at the end and does not stop the sweep.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .config import RunConfig
from .errors import ConfigError, ShatteringError
from .executors import EXECUTORS
from .runs import RunRecord


@dataclass
class Outcome:
    """How one run of a sweep ended: its summary, or the error that stopped it."""

    config: RunConfig
    run_dir: Path
    summary: dict | None = None
    error: str | None = None
    skipped: bool = False  # already finished before this sweep started
    seconds: float = 0.0
    details: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.summary is not None

    @property
    def status(self) -> str:
        return self.summary["status"] if self.summary else "failed"

    def line(self) -> str:
        if self.summary is not None:
            prefix = "done before: " if self.skipped else ""
            return prefix + self.summary["message"]
        return f"{describe(self.config)}: FAILED: {self.error}"


def describe(cfg: RunConfig) -> str:
    corr = cfg.corruption if cfg.p in (None, 0.0, 1.0) else f"{cfg.corruption} p={cfg.p:g}"
    regularizers = "".join(f" +{name}" for name, on in (
        ("crop", cfg.random_crop), ("flip-rotate", cfg.flip_rotate), (f"wd {cfg.weight_decay:g}", cfg.weight_decay),
        (f"dropout {cfg.dropout:g}", cfg.dropout)) if on)  # rows of Tables 1, 2 and 4 differ only in these
    return f"{cfg.dataset} {cfg.model} {corr} seed {cfg.seed}{regularizers}"


def run_one(cfg: RunConfig, progress: bool = False) -> Outcome:
    """Run ``cfg`` (or read its finished record); never raises for a failed run."""
    from .train import run

    record = RunRecord(cfg.run_dir())
    done = record.read_summary()
    if done is not None:
        return Outcome(cfg, record.dir, summary=done, skipped=True)
    t0 = time.perf_counter()
    try:
        result = run(cfg, progress=progress)
    except ShatteringError as exc:
        return Outcome(cfg, record.dir, error=str(exc), seconds=time.perf_counter() - t0)
    except Exception as exc:  # a bug must not cost the rest of the sweep; keep the trace for the report
        trace = traceback.format_exc(limit=6)
        return Outcome(cfg, record.dir, error=f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - t0,
                       details={"traceback": trace})
    return Outcome(cfg, result.run_dir, summary=result.summary, seconds=time.perf_counter() - t0)


def _local(configs: Sequence[RunConfig], pack: int | None) -> Iterator[Outcome]:
    from .train.packed import packed_groups, run_packed_group

    for group in packed_groups(configs, pack):
        if len(group) == 1:
            yield run_one(group[0])
        else:
            yield from run_packed_group(group)


def run_sweep(configs: Iterable[RunConfig], *, executor: str = "local", progress: bool = True,
              log=None, pack: int | None = None, executor_options: dict | None = None) -> list[Outcome]:
    """Run every config (finished ones are read, broken ones resumed) and return one outcome per config, in
    the order of ``configs``.

    Duplicate configs (same run id) run once. ``log`` receives one line per run as it ends; with
    ``progress`` the lines go under an overall progress bar on stderr instead. ``pack`` caps how many runs
    train together as one packed model (1: never; None: the rule of :mod:`shattering.train.packed`).
    ``executor_options``: for ``ray``, the fields of :class:`~shattering.executors.ray_executor.RayOptions`
    (``address``, ``cpus_per_run``, ``gpus_per_run``, ``max_retries``).
    """
    if executor not in EXECUTORS:
        raise ConfigError(f"Unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}.")
    from .distributed import launched_by_torchrun

    if launched_by_torchrun():
        raise ConfigError("Sweeps do not run under torchrun (every process would run the whole sweep): torchrun "
                          "trains one run (`shatter run`); spread a sweep with --executor ray.")
    if executor == "local" and executor_options:
        raise ConfigError(f"Option(s) {', '.join(sorted(executor_options))} apply to --executor ray only.")
    unique: dict[str, RunConfig] = {}
    for cfg in configs:
        unique.setdefault(cfg.run_id(), cfg)
    configs = list(unique.values())
    if executor == "ray":
        from .executors.ray_executor import RayOptions, import_ray, run_ray

        options = RayOptions.from_dict(executor_options)
        import_ray()  # the install command now, before any progress bar
        ending = run_ray(configs, pack, options)
    else:
        ending = _local(configs, pack)
    from tqdm.auto import tqdm

    outcomes = []
    with tqdm(total=len(configs), disable=not progress, unit="run", desc="sweep", file=sys.stderr) as bar:
        for i, outcome in enumerate(ending, 1):
            outcomes.append(outcome)
            bar.update(1)
            text = f"[{i}/{len(configs)}] {outcome.line()}"
            if progress:
                bar.write(text, file=sys.stderr)
            elif log is not None:
                log(text)
    order = {cfg.run_id(): i for i, cfg in enumerate(configs)}
    return sorted(outcomes, key=lambda o: order.get(o.config.run_id(), len(order)))


def failed(outcomes: Sequence[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if not o.ok]


def summary_table(outcomes: Sequence[Outcome]) -> str:
    """A plain-text table, one row per run: status, epochs to fit, accuracies, record."""
    rows = [("status", "run", "fit epoch", "train acc", "test acc", "record")]
    for o in outcomes:
        s = o.summary
        if s is None:
            rows.append(("FAILED", describe(o.config), "-", "-", "-", o.error or ""))
            continue
        final = s["final"]
        rows.append((s["status"], describe(o.config), str(s["fit_epoch"] or "-"),
                     f"{100 * final['train_acc']:.2f}%", f"{100 * final['test_acc']:.2f}%", o.run_dir.name))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)
