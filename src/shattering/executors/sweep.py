"""Sweeps: many runs, each skipped when finished, resumed when broken, and none stopping the others.

A sweep is a list of :class:`~shattering.config.RunConfig` (a preset's grid, expanded in code). An executor
runs them and yields one :class:`~shattering.executors.outcome.Outcome` per config, in order:

- ``local`` (default, :mod:`shattering.executors.local`): on this machine, in this process or in W worker
  processes of T threads (measured), one run after another or several runs packed into one model
  (:mod:`shattering.executors.packing`).
- ``ray``: each run (or packed group) is a Ray task with its resources, on this machine or a cluster; a task
  whose worker dies is retried and resumes from its checkpoint (:mod:`shattering.executors.ray_executor`).

A run that raises (bad data, a full disk, a bug) is reported at the end and does not stop the sweep. A run
another process is training is waited for and counted done when it finishes, so two copies of one sweep on one
folder share the work (:mod:`shattering.executors.shared`). ``rerun`` moves every old record aside first
(``<name>.old-<timestamp>``, never deleted) and trains the runs again; ``keep_checkpoints`` is what each
finished run keeps (``last``, ``all``, ``none``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from tqdm.auto import tqdm

from ..config import RunConfig
from ..errors import ConfigError, RunLockedError
from ..formatting import on_terminal
from ..runs import KEEP_CHECKPOINTS, RunRecord
from ..train.distributed import launched_by_torchrun
from ..validation import check_choice
from . import EXECUTORS
from .local import run_local
from .outcome import Outcome
from .ray_executor import RayOptions, import_ray, run_ray
from .shared import sharing_work


def run_sweep(configs: Iterable[RunConfig], *, executor: str = "local", progress: bool = True,
              log=None, pack: int | None = None, executor_options: dict | None = None, rerun: bool = False,
              keep_checkpoints: str = "last", local_workers: int | None = None) -> list[Outcome]:
    """Run every config (finished ones are read, broken ones resumed) and return one outcome per config, in
    the order of ``configs``.

    Duplicate configs (same run id) run once. ``log`` receives one line per run as it ends; with
    ``progress`` the lines go to stderr instead, with each run's epochs as it trains (under an overall progress
    bar on a terminal; plain lines, never a carriage return, elsewhere). ``pack`` caps how many runs
    train together as one packed model (1: never; None: the rule of :mod:`shattering.executors.packing`).
    ``executor_options``: for ``ray``, the fields of :class:`~shattering.executors.ray_executor.RayOptions`
    (``address``, ``cpus_per_run``, ``gpus_per_run``, ``max_retries``). ``rerun``: train every run again,
    its old record moved aside first; ``keep_checkpoints``: ``last``, ``all`` or ``none`` (see
    :func:`shattering.runs.run`). ``local_workers``: the local executor's processes (default: measured, see
    :mod:`shattering.executors.local`).
    """
    check_choice(keep_checkpoints, "keep_checkpoints", KEEP_CHECKPOINTS, of="run_sweep")
    if executor not in EXECUTORS:
        raise ConfigError(f"Unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}.")
    if launched_by_torchrun():
        raise ConfigError("Sweeps do not run under torchrun (every process would run the whole sweep): torchrun "
                          "trains one run (`shatter run`); spread a sweep with --executor ray.")
    if executor != "local" and local_workers is not None:
        raise ConfigError("--local-workers applies to --executor local only; a Ray cluster schedules its own "
                          "tasks (use --cpus-per-run).")
    if executor == "local" and executor_options:
        raise ConfigError(f"Option(s) {', '.join(sorted(executor_options))} apply to --executor ray only.")
    unique: dict[str, RunConfig] = {}
    for cfg in configs:
        unique.setdefault(cfg.run_id(), cfg)
    configs = list(unique.values())
    if executor == "ray":
        options = RayOptions.from_dict(executor_options)
        import_ray()  # the install command now, before any progress bar

        def execute(cs: list[RunConfig]):
            return run_ray(cs, pack, options, keep_checkpoints)
    else:

        def execute(cs: list[RunConfig]):
            return run_local(cs, pack, keep_checkpoints, progress, local_workers)
    moved = _move_aside(configs) if rerun else {}
    outcomes = []
    # The bar only on a terminal; elsewhere each run's line alone (tqdm.write: never on the bar's line).
    with tqdm(total=len(configs), disable=not (progress and on_terminal()), unit="run", desc="sweep",
              file=sys.stderr) as bar:

        def say(text: str) -> None:
            if progress:
                bar.write(text, file=sys.stderr)
            elif log is not None:
                log(text)

        for i, outcome in enumerate(sharing_work(execute, configs, say), 1):
            outcome.moved_aside = moved.get(outcome.config.run_id()) or outcome.moved_aside
            outcomes.append(outcome)
            bar.update(1)
            say(f"[{i}/{len(configs)}] {outcome.line(brief=True)}")
    order = {cfg.run_id(): i for i, cfg in enumerate(configs)}
    return sorted(outcomes, key=lambda o: order.get(o.config.run_id(), len(order)))


def _move_aside(configs: list[RunConfig]) -> dict:
    """Move the old record of every config aside (run id -> where it went); one another process is training
    stays (the sweep waits for it)."""
    moved = {}
    for cfg in configs:
        try:
            path = RunRecord(cfg.run_dir()).move_aside()
        except RunLockedError:
            continue
        if path is not None:
            moved[cfg.run_id()] = path
    return moved
