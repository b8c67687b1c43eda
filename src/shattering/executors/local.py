"""The local executor (the default): the runs of a sweep on this machine, one after another in this process, or
spread over W worker processes of T threads each (W x T <= the cores), and MLP runs packed into one model
(:mod:`shattering.executors.packing`).

W and T are measured (:func:`shattering.tuning.plan_workers`): a few training steps of the sweep's model at
each thread count say whether a second thread speeds a step up enough to be worth a core (big CNNs) or whether
more one-thread workers train more runs at once (the MLPs and small data of Section 2.1 of Zhang et al., ICLR
2017). ``SHATTERING_SWEEP_WORKERS`` (or ``workers=``) fixes W. With W = 1 every run trains in this process, as
it always did. Workers are spawned (never forked: torch's threads do not survive a fork), take one group (a run
or a pack) at a time from a queue, and send each outcome back as its run ends. A run of arrays held in this
process (:class:`shattering.ArrayData`) or of a model registered by code in this process cannot be sent to a
worker and trains here after the others. How many runs a pack holds on the workers is measured too
(:mod:`shattering.executors.pack_size`).
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing as mp
import os
import queue
import traceback
from collections.abc import Iterator, Sequence

import torch

from .._openmp import PLANNED_ENV, process_entry
from ..config import RunConfig
from ..data.user_data import in_memory
from ..errors import ConfigError
from ..formatting import guard_closed_pipes, on_terminal
from ..lease import cores_held_elsewhere, cpu_cores, leased_threads, warn
from ..measures.registry import from_elsewhere as measures_from_elsewhere
from ..models import is_builtin, is_import_path
from ..probes import from_elsewhere as probes_from_elsewhere
from ..runs import RunRecord
from ..runs.lifecycle import choose_execution
from ..tuning import Tuning, WorkerPlan, plan_workers, set_process_threads
from ..validation import must_be
from .outcome import Outcome, run_one
from .pack_size import PackChoice, budget_steps, choose_pack_size
from .packing import MAX_PACK, packed_groups, run_packed_group

WORKERS_ENV = "SHATTERING_SWEEP_WORKERS"
_POLL_S = 0.5  # how often the sweep looks whether a worker died while it waits for outcomes


def run_local(configs: Sequence[RunConfig], pack: int | None = None, keep_checkpoints: str = "last",
              progress: bool = False, workers: int | None = None) -> Iterator[Outcome]:
    """Run ``configs`` here; yield one :class:`~shattering.executors.outcome.Outcome` per config as runs end
    (``locked`` for a run another process is training: :mod:`shattering.executors.shared` comes back to it).
    ``progress``: show each run's (or pack's) epochs as it trains. ``workers``: how many processes (default:
    ``$SHATTERING_SWEEP_WORKERS``, else measured)."""
    configs = list(configs)
    shippable = [c for c in configs if _shippable(c)]
    plan = sweep_plan(shippable, pack, workers)
    if plan.workers <= 1:
        yield from _run_here(configs, pack, keep_checkpoints, progress)
        return
    choice = pack_choice(shippable, pack, plan)
    groups = packed_groups(shippable, choice.limit)
    # epoch lines from the workers, never their bars (several bars on one terminal overwrite each other)
    yield from _run_workers(groups, plan, plan.facts() | {"pack": choice.facts()}, keep_checkpoints,
                            progress and not on_terminal())
    yield from _run_here([c for c in configs if not _shippable(c)], pack, keep_checkpoints, progress)


def pack_choice(configs: Sequence[RunConfig], pack: int | None, plan: WorkerPlan) -> PackChoice:
    """The pack size of a sweep on ``plan``'s workers: ``pack`` where given, else measured
    (:func:`shattering.executors.pack_size.choose_pack_size`); where the measurement fails, packs small enough that
    every worker has about :data:`PACKS_PER_WORKER` of them."""
    if pack is not None:
        return PackChoice(int(pack), f"packs of up to {pack}, as asked for")
    pending = [c for c in configs if RunRecord(c.run_dir()).read_summary() is None] or list(configs)
    try:
        return choose_pack_size(pending, plan.workers, plan.threads,
                                lambda cfg: choose_execution(cfg).step_seconds(plan.threads))
    except Exception as exc:  # a measurement must never cost the sweep
        limit = min(MAX_PACK, max(1, math.ceil(len(pending) / (PACKS_PER_WORKER * plan.workers))))
        warn(f"could not time packed steps ({type(exc).__name__}: {exc}); packs of up to {limit}.")
        return PackChoice(limit, f"no measurement ({type(exc).__name__}): about {PACKS_PER_WORKER} packs per worker")


def _run_here(configs: Sequence[RunConfig], pack: int | None, keep_checkpoints: str,
              progress: bool) -> Iterator[Outcome]:
    for group in packed_groups(configs, pack):
        if len(group) == 1:
            yield run_one(group[0], progress, keep_checkpoints=keep_checkpoints)
        else:
            yield from _packed_with_lease(group, keep_checkpoints, progress)


def _packed_with_lease(group: list[RunConfig], keep_checkpoints: str, progress: bool) -> Iterator[Outcome]:
    """A packed group, with the threads measured for its model and the cores the lease gives."""
    try:
        tune = choose_execution(group[0].replace(compile="off"))
    except Exception:  # a model that does not build fails in the group itself, with its message
        tune = Tuning(1, "contiguous", source="set", why="no measurement: the model did not build")
    if group[0].compile != "off":
        tune = dataclasses.replace(tune, compile_why="not used: a pack of MLPs trains eager")
    with leased_threads(tune.threads) as lease:
        yield from run_packed_group(group, keep_checkpoints, progress, _execution(tune, lease, None))


def _execution(tune: Tuning, lease, plan: dict | None) -> dict:
    """A packed group's ``execution`` summary entry (a lone run's is written by :func:`shattering.runs.run`)."""
    return {**tune.facts(), "lease": lease.facts(), "sweep": plan or {"workers": 1, "why": "trained in-process"}}


def _shippable(cfg: RunConfig) -> bool:
    """Whether a worker process can run ``cfg``: its data, model, measures and probes exist outside this process's
    memory (none was registered by code in this process)."""
    return (not in_memory(cfg.dataset) and (is_builtin(cfg.model) or is_import_path(cfg.model))
            and not measures_from_elsewhere(cfg.measures) and not probes_from_elsewhere(cfg.probes))


def sweep_plan(configs: Sequence[RunConfig], pack: int | None = None, workers: int | None = None,
               cores: int | None = None) -> WorkerPlan:
    """How many workers of how many threads run ``configs`` (the unfinished ones count)."""
    cores = cpu_cores() if cores is None else cores
    pending = [c for c in configs if RunRecord(c.run_dir()).read_summary() is None]
    if workers is None and os.environ.get(WORKERS_ENV):
        text = os.environ[WORKERS_ENV]
        if not text.isdigit() or int(text) < 1:
            raise ConfigError(must_be(WORKERS_ENV, "a positive whole number of worker processes", text))
        workers = int(text)
    if workers is not None and workers < 1:
        raise ConfigError(must_be("workers", "a positive whole number of worker processes", workers, of="run_local"))
    if len(pending) <= 1 or workers == 1:
        return WorkerPlan(1, 0, "one run to train" if len(pending) <= 1 else "one worker asked for")
    if any(_on_gpu(c) for c in pending):
        return WorkerPlan(1, 0, "a GPU sweep trains in one process")
    try:
        tuning = _heaviest(pending)
    except Exception as exc:  # a model that does not build fails in its own run, with its message
        return WorkerPlan(1, 0, f"no measurement ({type(exc).__name__}): one worker")
    if workers is not None:
        t = max(1, cores // workers)
        return WorkerPlan(workers, t, f"{workers} worker(s) asked for, {t} thread(s) each on {cores} core(s)")
    plan = plan_workers(tuning, len(pending), cores)
    work = budget_seconds(pending, tuning)
    if plan.workers > 1 and work is not None and work < WORTH_WORKERS * WORKER_START_SECONDS:
        return WorkerPlan(1, 0, f"the whole sweep is at most {work:.1f} s of training at one thread (its epoch "
                                f"budgets at the measured step time): less than {WORTH_WORKERS} x the "
                                f"{WORKER_START_SECONDS:g} s a worker process takes to start, so it trains here")
    return plan


PACKS_PER_WORKER = 3  # where the pack size cannot be measured: a worker whose packs end early takes another
# A spawned worker imports torch and shattering before its first step: about 3 s where measured
# (bench/RESULTS.md, "Figures moved from the code").
WORKER_START_SECONDS = 3.0
WORTH_WORKERS = 4  # workers only where the training could take this many start-ups or more


def budget_seconds(configs: Sequence[RunConfig], tuning: Tuning) -> float | None:
    """An upper bound of the sweep's training time at one thread: each run's epoch budget times its steps per
    epoch times the measured step time of the sweep's slowest model (None where no step time was measured)."""
    step = tuning.step_seconds(1) or min(tuning.timings.values(), default=None)
    if not step:
        return None
    steps = [budget_steps(cfg) for cfg in configs]
    if any(n is None for n in steps):  # a data set whose size is not known before it loads: no bound
        return None
    return sum(steps) * step


def _on_gpu(cfg: RunConfig) -> bool:
    return cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())


def _heaviest(configs: Sequence[RunConfig]) -> Tuning:
    """The tuning of the sweep's slowest model at one thread (the one that decides how the cores are used)."""
    seen: dict[tuple, Tuning] = {}
    for cfg in configs:
        r = cfg.resolved()
        key = (r.model, r.model_args, r.input_shape(), r.batch_size, r.precision, r.threads)
        if key not in seen:
            seen[key] = choose_execution(r)
    return max(seen.values(), key=lambda t: t.step_seconds(1) or min(t.timings.values(), default=0.0))


def _run_workers(groups: list[list[RunConfig]], plan: WorkerPlan, facts: dict, keep_checkpoints: str,
                 progress: bool) -> Iterator[Outcome]:
    """``groups`` on ``plan.workers`` spawned processes; outcomes as they come; a worker that dies reports the
    runs of its group that had not ended as failed; groups no worker was left to take train in this process.
    ``facts``: the plan and the pack choice, for every run's record."""
    ctx = mp.get_context("spawn")
    tasks, results = ctx.Queue(), ctx.Queue()
    for i, group in enumerate(groups):
        tasks.put((i, group))
    n = min(plan.workers, len(groups))
    for _ in range(n):
        tasks.put(None)
    # a worker starts in shattering._openmp.process_entry, which decides its OpenMP wait policy before _worker's
    # module (and torch) is imported
    procs = [ctx.Process(target=process_entry, args=(f"{__name__}:_worker", w, tasks, results, plan.threads, facts,
                                                     keep_checkpoints, progress), daemon=True) for w in range(n)]
    # workers planned on cores nobody else holds keep libgomp's spinning (W x T <= cores: no thread waits
    # for a core); on a machine already shared they decide for themselves (shattering._openmp)
    planned = os.environ.get(PLANNED_ENV)
    if cores_held_elsewhere() == 0:
        os.environ[PLANNED_ENV] = "1"  # a spawned process takes this process's environment as it starts
    try:
        for p in procs:
            p.start()
    finally:
        if planned is None:
            os.environ.pop(PLANNED_ENV, None)
        else:
            os.environ[PLANNED_ENV] = planned
    left = {i: {c.run_id(): c for c in g} for i, g in enumerate(groups)}  # runs not yet reported, by group
    running: dict[int, int] = {}  # worker -> the group it is training
    done_workers: set[int] = set()
    fallback: list[list[RunConfig]] = []
    try:
        while any(left.values()):
            try:
                kind, w, i, payload = results.get(timeout=_POLL_S)
            except queue.Empty:
                for w, p in enumerate(procs):
                    if w not in done_workers and not p.is_alive():
                        done_workers.add(w)
                        yield from _lost(left, running.pop(w, None), p.exitcode)
                if len(done_workers) == n and any(left.values()):  # every worker gone, groups never taken
                    fallback = [[c for c in groups[i] if c.run_id() in left[i]] for i in left if left[i]]
                    break
                continue
            if kind == "start":
                running[w] = i
            elif kind == "outcome":
                left[i].pop(payload.config.run_id(), None)
                yield payload
            elif kind == "end":
                running.pop(w, None)
                yield from _lost(left, i, None, payload or "its worker ended the group without reporting the run")
            elif kind == "exit":
                done_workers.add(w)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join(timeout=5)
        tasks.close()
        results.close()
    if fallback:  # e.g. a script that starts a sweep at its top level: each spawned worker re-runs it and fails
        warn(f"the sweep's worker processes ended before taking {len(fallback)} group(s) of runs; training them in "
             "this process (a script that starts a sweep must do so under `if __name__ == \"__main__\":`).")
        for group in fallback:
            yield from _run_here(group, len(group), keep_checkpoints, progress)


def _lost(left: dict, i: int | None, exitcode: int | None, error: str | None = None) -> Iterator[Outcome]:
    if i is None:
        return
    why = error or (f"its worker process ended (exit code {exitcode}) before the run did" if exitcode is not None
                    else "no worker process was left to train it")
    for cfg in left.pop(i, {}).values():
        yield Outcome(cfg, cfg.run_dir(), error=why)
    left[i] = {}


def _worker(w: int, tasks, results, threads: int, plan: dict, keep_checkpoints: str, progress: bool) -> None:
    """A worker process: groups from ``tasks`` until None, each run's outcome to ``results`` as it ends."""
    guard_closed_pipes()  # its epoch lines may go to a pipe its reader closed: the runs go on
    torch.set_num_threads(threads)
    set_process_threads(threads, plan)
    while True:
        item = tasks.get()
        if item is None:
            break
        i, group = item
        results.put(("start", w, i, None))
        error = None
        try:
            if len(group) == 1:
                results.put(("outcome", w, i, run_one(group[0], progress, keep_checkpoints=keep_checkpoints)))
            else:
                tune = Tuning(threads, "contiguous", source="set", why="the sweep's share of the cores")
                with leased_threads(threads) as lease:
                    for outcome in run_packed_group(group, keep_checkpoints, progress, _execution(tune, lease, plan)):
                        results.put(("outcome", w, i, outcome))
        except Exception as exc:  # reported as the group's failure, never a silent loss
            error = f"{type(exc).__name__}: {exc} ({traceback.format_exc(limit=3).splitlines()[-1]})"
        results.put(("end", w, i, error))
    results.put(("exit", w, -1, None))
