"""How many runs a pack holds when a sweep trains on several worker processes: measured on the machine, not a rule.

Packing K MLP runs of Section 2.1's sweeps (:mod:`shattering.executors.packing`) makes each training step do K
runs' work at once, which pays where one run's step leaves the cores idle (small matrices); on W workers the packs
must also be many enough that no worker idles while another trains the last one. Which K is best depends on the
machine (one measurement of Fig. 1b/1c's 18 runs on 2 workers: bench/RESULTS.md, "Figures moved from the code").

So on first use of a (model, input shape, batch, precision, threads) on a machine a few steps of a pack of each
size the sweep could form are timed (:func:`shattering.train.packed.packed_step_seconds`, in 3 interleaved rounds,
the fastest kept, cached beside the other timings: :func:`shattering.tuning.cached_timings`), and each candidate K
is scored by the sweep's estimated time: its groups (:func:`~shattering.executors.packing.packed_groups`), each
one's epoch budget at its pack's step time, taken in order by whichever worker is free first, as the workers take
them from the queue. The smallest K within
:data:`TOLERANCE` of the best wins: a run to fit ends before its budget, and smaller packs even out runs that end
early.
"""

from __future__ import annotations

import heapq
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from ..config import RunConfig
from ..data.catalogue import dataset_info
from ..models import build_model
from ..train.packed import packed_step_seconds
from ..tuning import ROUNDS, cached_timings
from .packing import MAX_PACK, pack_key, packed_groups

CANDIDATES = (1, 2, 3, 4, 6, 8, 12, 16)
TOLERANCE = 0.03  # a smaller pack within 3% of the best estimate is taken


@dataclass(frozen=True)
class PackChoice:
    """The pack size a sweep uses (``limit``), why, the measured seconds per step of each pack size
    (``"<model> pack of K x<threads>"``) and each candidate's estimated sweep seconds."""

    limit: int
    why: str
    seconds_per_step: dict = field(default_factory=dict)
    estimates: dict = field(default_factory=dict)

    def facts(self) -> dict:
        return {"limit": self.limit, "why": self.why, "seconds_per_step": dict(self.seconds_per_step),
                "estimated_seconds": {str(k): v for k, v in self.estimates.items()}}


def budget_steps(cfg: RunConfig) -> int | None:
    """The training steps of ``cfg``'s epoch budget (None where the data set's size is not known before it loads)."""
    r = cfg.resolved()
    n = r.known_train_size()
    if n is None:
        return None
    return r.epochs * math.ceil(max(int(n), 1) / r.batch_size)


def choose_pack_size(configs: Sequence[RunConfig], workers: int, threads: int,
                     single_step: Callable[[RunConfig], float | None] = lambda cfg: None) -> PackChoice:
    """The pack size for training ``configs`` (the unfinished runs) on ``workers`` processes of ``threads`` threads
    each; ``single_step``: the seconds per step of a run that cannot be packed (it occupies a worker all the same)."""
    configs = [c.resolved() for c in configs]
    widest = max((len(g) for g in packed_groups(configs, MAX_PACK) if pack_key(g[0]) is not None), default=1)
    if widest <= 1:
        return PackChoice(1, "no two runs of the sweep can share a pack")
    candidates = [k for k in CANDIDATES if k <= widest]
    if widest not in candidates and widest <= MAX_PACK:
        candidates.append(widest)
    groupings = {k: packed_groups(configs, k) for k in candidates}
    step_of = _pack_step_times(groupings, threads)
    estimates = {}
    for k, groups in groupings.items():
        work = []
        for g in groups:
            steps = budget_steps(g[0]) or 1
            per_step = step_of[_family(g[0])][len(g)] if pack_key(g[0]) is not None else (single_step(g[0]) or 0.0)
            work.append(steps * per_step)
        estimates[k] = _makespan(work, workers)
    best = min(estimates.values())
    limit = min(k for k, v in estimates.items() if v <= best * (1 + TOLERANCE))
    timings = {f"{fam[0]} pack of {size} x{threads}": s for fam, sizes in step_of.items() for size, s in sizes.items()}
    why = (f"packs of up to {limit}: the sweep estimated at {estimates[limit]:.1f} s at its epoch budgets on {workers} "
           f"worker(s) of {threads} thread(s) (each group's steps at the measured step time of its pack size, taken "
           "in order by the first free worker), against "
           + ", ".join(f"{k}: {v:.1f} s" for k, v in sorted(estimates.items()) if k != limit)
           + f"; the smallest within {TOLERANCE:.0%} of the best is taken")
    return PackChoice(limit, why, timings, estimates)


def _family(cfg: RunConfig) -> tuple:
    """What a pack's step time depends on: the model, its input, classes, batch and precision, and whether the
    members see one batch (one seed: the wide first layer) or one each."""
    return (cfg.model, json.dumps(cfg.model_kwargs() or {}, sort_keys=True), tuple(cfg.input_shape()),
            dataset_info(cfg.dataset).num_classes, cfg.step_batch(), cfg.precision)


def _pack_step_times(groupings: dict[int, list[list[RunConfig]]], threads: int) -> dict[tuple, dict[int, float]]:
    """Seconds per step of every pack size the groupings form, per family of packable runs (measured or cached)."""
    sizes: dict[tuple, set[int]] = {}
    shared: dict[tuple, bool] = {}
    for groups in groupings.values():
        for g in groups:
            if pack_key(g[0]) is None:
                continue
            fam = _family(g[0])
            sizes.setdefault(fam, set()).add(len(g))
            # members of one seed see the same batches (the wide first layer); packs of several seeds do not
            shared[fam] = shared.get(fam, True) and len({c.seed for c in g}) == 1
    out = {}
    for fam, wanted in sizes.items():
        model, args, shape, classes, batch, precision = fam
        ident = json.dumps(["packed step", model, json.loads(args), list(shape), classes, batch, precision,
                            shared[fam], threads])
        names = {size: f"pack of {size} x{threads}" for size in sorted(wanted)}

        def measure(missing: list[str], fam=fam, names=names) -> dict:
            return _measure(fam, shared[fam], threads, {s: n for s, n in names.items() if n in missing})

        timings, _ = cached_timings(ident, list(names.values()), measure)
        out[fam] = {size: timings[name] for size, name in names.items()}
    return out


def _measure(fam: tuple, shared: bool, threads: int, names: dict[int, str]) -> dict:
    model_name, args, shape, classes, batch, precision = fam
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]):
            model = build_model(model_name, shape, classes, **json.loads(args))
        out: dict[str, float] = {}
        for _ in range(ROUNDS):  # interleaved, the quietest round kept (tuning's rule: small steps are noisy)
            for size, name in names.items():
                seconds = packed_step_seconds(model, size, shape, classes, batch, precision, shared)
                out[name] = min(out.get(name, seconds), seconds)
        return out
    finally:
        torch.set_num_threads(before)


def _makespan(work: Sequence[float], workers: int) -> float:
    """When the last of ``work`` (seconds, in queue order) ends on ``workers`` workers that each take the next item
    as soon as they are free."""
    free = [0.0] * max(1, workers)
    for w in work:
        heapq.heappush(free, heapq.heappop(free) + w)
    return max(free)
