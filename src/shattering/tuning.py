"""Measured execution choices that do not change a run's results: the memory format of a convolutional net
(``channels_last`` or ``contiguous``) and the CPU threads of the training process, and for a sweep how many
worker processes of how many threads share the cores.

Section 2.1 of Zhang et al., ICLR 2017 fixes the procedure (SGD, batch 128, the epoch budget), not how the machine
runs it, and which way is fastest depends on the machine (the layout and thread count that won differed between the
CPUs measured: bench/RESULTS.md). So on first use of a (model, input shape, batch size, device, precision) on a
machine, a few training steps of each candidate are timed on random inputs (a fraction of a second each, in up to 3
interleaved rounds, the fastest kept; the global random state is left as it was) and the fastest is kept, cached per
machine (CPU model and flags, or GPU name, and the torch version) in ``<cache>/tuning.json``
(:func:`shattering.lease.cache_dir`). Precision is never chosen by speed (:mod:`shattering.devices`). A cache that
cannot be read or written costs one warning line; the run measures again (or keeps what it measured) and goes on.

``torch.compile`` of the model's training step is one more candidate (``compile``: off by default, on, or auto).
With auto the chosen layout and threads are timed compiled too, with the compile's own seconds, and the compiled
step is used only where it pays over the run's whole step budget:

    compile seconds x shapes + budget steps x compiled step  <  budget steps x eager step

(``shapes``: 2 where the epoch's last batch is smaller, which compiles again). It is off by default: on the CPUs
measured it paid on no paper model (bench/RESULTS.md, docs/speed.md).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import _openmp
from ._lazy import lazy_import
from .devices import autocast, cpu_has_native_bf16, resolve_device
from .errors import ConfigError
from .faults import TIMING
from .files import atomic_write_json, read_json
from .lease import cache_dir, cpu_cores, warn
from .models import MODELS, build_model, model_info
from .optimizers import build_optimizer, model_groups

torch = lazy_import("torch")  # imported when something is measured: the config reads LAYOUTS without torch
F = lazy_import("torch.nn.functional")

LAYOUTS = ("auto", "channels_last", "contiguous")
COMPILE_MODES = ("off", "auto", "on")
CACHE_NAME = "tuning.json"
STEP_BUDGET_S = 0.2  # timed seconds per candidate (after one warm-up step): a few steps of a small model
MAX_STEPS = 5
ROUNDS = 3  # each candidate is timed in this many interleaved rounds, the fastest kept (small models: noisy)
REPEAT_BELOW_S = 1.0  # ... while the first round took less than this (a big model's steps are steady enough)

_process_threads: int | None = None  # a sweep worker's share of the cores (set_process_threads)
_process_plan: dict | None = None  # and the sweep's plan (WorkerPlan.facts), for the run records


def set_process_threads(threads: int | None, plan: dict | None = None) -> None:
    """Fix the threads of every run in this process (a sweep worker's share of the cores; None: measure) and
    say which sweep plan (:meth:`WorkerPlan.facts`) it is part of."""
    global _process_threads, _process_plan
    _process_threads, _process_plan = threads, plan


def process_plan() -> dict | None:
    """The sweep plan this process is a worker of (None outside a sweep's workers)."""
    return _process_plan


def check_threads(value) -> bool:
    """``auto`` or a positive whole number (as text from the command line, or an int from TOML)."""
    text = str(value)
    return text == "auto" or (text.isdigit() and int(text) > 0)


@functools.lru_cache(maxsize=4)
def machine_key(device: str = "cpu") -> str:
    """What the timings depend on: the GPU's name, or the CPU's model name and a hash of its flags, the cores
    this process may use and OpenMP's wait policy; the torch version."""
    if device == "cuda":
        return f"cuda {torch.cuda.get_device_name()} | torch {torch.__version__}"
    wait = _openmp.WAIT_POLICY  # spinning or sleeping threads time differently
    return f"{_openmp.cpu_identity()} | torch {torch.__version__} | OpenMP wait {wait}"


def thread_candidates(cores: int) -> list[int]:
    """1, 2, 4, ... up to the cores, and the cores themselves (every count between is rarely better)."""
    counts, t = {cores}, 1
    while t < cores:
        counts.add(t)
        t *= 2
    return sorted(counts)


@dataclass(frozen=True)
class Tuning:
    """The choice for one run: ``threads`` and ``layout``; ``timings``: seconds per training step of every
    candidate measured (``"<layout> x<threads>"``; ``"compiled <layout> x<threads>"`` and ``"compile seconds
    ..."`` where compilation was weighed); ``source``: measured now, read from the cache, or set by the caller
    (``--threads``/``--layout``); ``why`` in words; ``compiled``: whether the training step is ``torch.compile``d,
    and ``compile_why``."""

    threads: int
    layout: str
    timings: dict = field(default_factory=dict)
    source: str = "measured"
    why: str = ""
    compiled: bool = False
    compile_why: str = "off (the default)"

    def facts(self) -> dict:
        return {"threads": self.threads, "layout": self.layout, "source": self.source, "why": self.why,
                "seconds_per_step": dict(self.timings), "openmp_wait": _openmp.WAIT_WHY,
                "compile": {"used": self.compiled, "why": self.compile_why}}

    def without_compile(self, why: str) -> Tuning:
        """This choice, trained eager for the reason ``why`` (a pack, torchrun)."""
        return dataclasses.replace(self, compiled=False, compile_why=why) if self.compiled else self

    def step_seconds(self, threads: int) -> float | None:
        """The fastest measured step at ``threads`` threads (any layout allowed by the choice)."""
        times = [s for k, s in self.timings.items() if k == _key(self.layout, threads)]
        return min(times) if times else None


def _key(name: str, t: int) -> str:
    return f"{name} x{t}"


def choose(model: str, input_shape: tuple[int, ...], num_classes: int, batch_size: int, device: str = "auto",
           precision: str = "fp32", *, layout: str = "auto", threads="auto", model_args: dict | None = None,
           convolutional: bool | None = None, compile: str = "off", budget: tuple[int, int] | None = None) -> Tuning:
    """The fastest layout and thread count for training ``model`` on this machine (measured once, then read
    from the cache); ``layout``/``threads`` other than ``auto`` are taken as given (and only the other is
    chosen). A sweep worker's share of the cores (:func:`set_process_threads`) caps the threads. ``compile``
    (:data:`COMPILE_MODES`) and ``budget`` (the run's steps, and how many batch shapes an epoch has): whether the
    step is compiled (module docstring)."""
    tune = _choose_eager(model, input_shape, num_classes, batch_size, device, precision, layout, threads,
                         model_args, convolutional)
    if compile == "off":
        return tune
    missing = resolve_device(device).type == "cpu" and not cpp_compiler()
    if compile == "on":
        if missing:
            raise ConfigError("compile on needs a C++ compiler on the CPU (torch.compile builds the step with one) "
                              "and none was found: install g++ (or set CXX), or use --compile off.")
        return dataclasses.replace(tune, compiled=True, compile_why="asked for (compile on)")
    if missing:
        return dataclasses.replace(tune, compile_why="not used: no C++ compiler here (g++, clang++ or $CXX)")
    return _weigh_compile(tune, model, input_shape, num_classes, batch_size, resolve_device(device), precision,
                          model_args, budget or (1, 1))


def cpp_compiler() -> str | None:
    """The C++ compiler ``torch.compile`` would build a CPU step with (``$CXX``, else g++ or clang++), or None."""
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++")


def _choose_eager(model, input_shape, num_classes, batch_size, device, precision, layout, threads, model_args,
                  convolutional) -> Tuning:
    dev = resolve_device(device)
    if precision == "bf16" and dev.type == "cpu" and not cpu_has_native_bf16():
        warn_emulated_bf16()
    cores = _process_threads or cpu_cores()
    fixed_threads = None if str(threads) == "auto" else int(threads)
    fixed_threads = fixed_threads if fixed_threads is not None else _process_threads
    if layout != "auto" and fixed_threads is not None:
        return Tuning(fixed_threads, layout, source="set", why="--layout and --threads given")
    try:
        return _choose(model, input_shape, num_classes, batch_size, dev, precision, layout, fixed_threads, cores,
                       model_args, convolutional)
    except Exception as exc:  # a measurement must never cost the run: it trains as it would have untuned
        warn(f"could not time training steps of {model} ({type(exc).__name__}: {exc}); training untuned.")
        threads = fixed_threads or max(1, min(torch.get_num_threads(), cores))
        return Tuning(threads, layout, source="untuned", why=f"the measurement failed ({type(exc).__name__})")


@functools.lru_cache(maxsize=1)
def warn_emulated_bf16() -> None:
    """Once per process: bf16 was asked for on a CPU without bf16 instructions, where torch emulates it."""
    warn("precision bf16 was asked for, but this CPU has no bf16 instructions (AVX512-BF16 or AMX), so torch "
         "emulates them, far slower than fp32 (bench/RESULTS.md); use --precision fp32, or auto, which picks fp32 "
         "here.")


def _choose(model: str, input_shape, num_classes: int, batch_size: int, dev: torch.device, precision: str,
            layout: str, fixed_threads: int | None, cores: int, model_args: dict | None,
            convolutional: bool | None) -> Tuning:
    net = None
    if convolutional is None and model in MODELS and not model_args:
        convolutional = model_info(model).convolutional  # the catalogue says: no model to build for a cache hit
    if convolutional is None:
        net = _build(model, input_shape, num_classes, model_args)
        convolutional = any(isinstance(m, torch.nn.Conv2d) for m in net.modules())
    conv = convolutional
    layouts = [layout] if layout != "auto" else (["channels_last", "contiguous"] if conv else ["contiguous"])
    counts = [fixed_threads] if fixed_threads is not None else (
        thread_candidates(cores) if dev.type == "cpu" else [torch.get_num_threads()])
    wanted = [_key(lay, t) for lay in layouts for t in counts]
    ident = _ident(model, input_shape, num_classes, batch_size, dev, precision, model_args)

    def measure(missing: list[str]) -> dict:
        built = net if net is not None else _build(model, input_shape, num_classes, model_args)
        return _measure(built, input_shape, num_classes, batch_size, dev, precision, missing)

    timings, measured = cached_timings(ident, wanted, measure, dev.type)
    best = min(wanted, key=lambda k: timings[k])
    best_layout, _, t = best.rpartition(" x")
    source = "measured" if measured else "cached"
    given = " (threads given)" if fixed_threads is not None else " (layout given)" if layout != "auto" else ""
    why = f"fastest of {len(wanted)} candidate(s){given}: {timings[best] * 1e3:.1f} ms per step"
    return Tuning(int(t), best_layout, timings, source, why)


def _ident(model, input_shape, num_classes, batch_size, dev, precision, model_args) -> str:
    return json.dumps([model, model_args or {}, list(input_shape), int(num_classes), int(batch_size), dev.type,
                       precision], sort_keys=True)


def _weigh_compile(tune: Tuning, model: str, input_shape, num_classes: int, batch_size: int, dev: torch.device,
                   precision: str, model_args: dict | None, budget: tuple[int, int]) -> Tuning:
    """``tune`` with the compiled step where it pays over ``budget`` = (steps, batch shapes) (module docstring),
    timed at the chosen layout and threads (cached like the other candidates); a compile that fails leaves the
    run eager, with the reason."""
    eager, compiled, seconds = (_key(name, tune.threads) for name in
                                (tune.layout, f"compiled {tune.layout}", f"compile seconds {tune.layout}"))

    def measure(missing: list[str]) -> dict:
        net = _build(model, input_shape, num_classes, model_args)
        out = _measure(net, input_shape, num_classes, batch_size, dev, precision, [eager]) if eager in missing \
            else {}
        return out | _measure_compiled(net, input_shape, num_classes, batch_size, dev, precision, tune.layout,
                                       tune.threads, compiled, seconds)

    try:
        timings, _ = cached_timings(_ident(model, input_shape, num_classes, batch_size, dev, precision, model_args),
                                    [eager, compiled, seconds], measure, dev.type)
    except Exception as exc:  # no C++ compiler, an unsupported operation: the run trains eager
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        return dataclasses.replace(tune, compile_why=f"not used: compiling failed here ({type(exc).__name__}: "
                                                     f"{reason})")
    steps, shapes = budget
    eager_s, compiled_s = steps * timings[eager], shapes * timings[seconds] + steps * timings[compiled]
    numbers = (f"{timings[compiled] * 1e3:.1f} ms per step compiled against {timings[eager] * 1e3:.1f} eager, "
               f"{timings[seconds]:.1f} s to compile x {shapes} batch shape(s), over {steps} steps: "
               f"{compiled_s:.3g} s against {eager_s:.3g} s")
    pays = compiled_s < eager_s
    return dataclasses.replace(tune, timings={**tune.timings, **timings}, compiled=pays,
                               compile_why=("used: " if pays else "not used: ") + numbers)


def _measure_compiled(net, input_shape, num_classes: int, batch_size: int, dev, precision: str, layout: str,
                      threads: int, key: str, seconds_key: str) -> dict:
    """Seconds per compiled training step (``key``) and seconds the first call spent compiling beyond a step
    (``seconds_key``), on a copy of ``net`` in ``layout`` at ``threads`` threads."""
    before = torch.get_num_threads()
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    devices = [torch.cuda.current_device()] if dev.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(0)
            if dev.type == "cpu":
                torch.set_num_threads(threads)
            model = torch.compile(copy.deepcopy(net).to(dev, memory_format=fmt).train())
            x = torch.randn(batch_size, *input_shape, device=dev).contiguous(memory_format=fmt)
            y = torch.randint(0, num_classes, (batch_size,), device=dev)
            step = _step(model, x, y, dev, precision)
            start = time.perf_counter()
            step()
            first = time.perf_counter() - start
            per_step = seconds_per_call(step)
    finally:
        torch.set_num_threads(before)
    return {key: per_step, seconds_key: max(0.0, first - per_step)}


def cached_timings(ident: str, wanted: list[str], measure: Callable[[list[str]], dict],
                   device_type: str = "cpu") -> tuple[dict, bool]:
    """The seconds of each candidate in ``wanted`` for the measurement ``ident`` on this machine: those in the cache
    read from it, the others timed by ``measure(missing)`` and cached; and whether any was timed now."""
    cache = _read_cache()
    machine = machine_key(device_type)
    known = dict(cache.get(machine, {}).get(ident, {}))
    missing = [k for k in wanted if k not in known]
    if missing:
        known.update(measure(missing))
        cache.setdefault(machine, {})[ident] = known
        _write_cache(cache)
    return {k: known[k] for k in wanted}, bool(missing)


def cached_entries(device_type: str = "cpu") -> dict:
    """Every measurement cached for this machine (``machine_key(device_type)``): {ident: {candidate: seconds}}."""
    return dict(_read_cache().get(machine_key(device_type), {}))


def _build(model: str, input_shape, num_classes: int, model_args: dict | None) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):  # the run's own initialization is drawn later, from its seed
        return build_model(model, tuple(input_shape), num_classes, **(model_args or {}))


def _measure(net: torch.nn.Module, input_shape, num_classes: int, batch_size: int, dev: torch.device,
             precision: str, candidates: list[str]) -> dict:
    """Seconds per SGD step of ``net`` for each ``"<layout> x<threads>"`` candidate, on random inputs: the
    fastest of :data:`ROUNDS` interleaved rounds (one where the first round took over :data:`REPEAT_BELOW_S`)."""
    before = torch.get_num_threads()
    out: dict[str, float] = {}
    devices = [torch.cuda.current_device()] if dev.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(0)
            start = time.perf_counter()
            for round_ in range(ROUNDS):
                if round_ and time.perf_counter() - start > REPEAT_BELOW_S:
                    break  # a big model: one round is long enough to be steady
                for cand in candidates:  # interleaved, so that a burst of other work hits every candidate alike
                    name, _, t = cand.rpartition(" x")
                    fmt = torch.channels_last if name == "channels_last" else torch.contiguous_format
                    if dev.type == "cpu":
                        torch.set_num_threads(int(t))
                    model = net.to(dev, memory_format=fmt).train()
                    x = torch.randn(batch_size, *input_shape, device=dev).contiguous(memory_format=fmt)
                    y = torch.randint(0, num_classes, (batch_size,), device=dev)
                    seconds = _time_steps(model, x, y, dev, precision)
                    out[cand] = min(out.get(cand, seconds), seconds)  # the quietest round
    finally:
        torch.set_num_threads(before)
    return out


def _time_steps(model, x, y, dev: torch.device, precision: str) -> float:
    """Seconds per training step (:func:`_step`)."""
    return seconds_per_call(_step(model, x, y, dev, precision))


def _step(model, x, y, dev: torch.device, precision: str) -> Callable[[], None]:
    """One training step with the paper's optimizer (SGD, momentum 0.9, :func:`shattering.optimizers.
    build_optimizer`), marked as a timing step (:data:`shattering.faults.TIMING`: a fault counter sees only the
    run's own steps)."""
    optimizer = build_optimizer("sgd", model_groups(model, 0.0), lr=1e-3, device=dev)
    setattr(optimizer, TIMING, True)

    def step():
        with autocast(dev, precision):
            logits = model(x)
        logits = logits[0] if isinstance(logits, tuple) else logits
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()

    return step


def seconds_per_call(step: Callable[[], None]) -> float:
    """Seconds per call of ``step`` after one warm-up call (allocations, kernel choice): up to :data:`MAX_STEPS`
    calls, fewer once :data:`STEP_BUDGET_S` has passed."""
    step()
    n, t0 = 0, time.perf_counter()
    while n < MAX_STEPS and (n == 0 or time.perf_counter() - t0 < STEP_BUDGET_S):
        step()
        n += 1
    return (time.perf_counter() - t0) / n


def cache_path() -> Path:
    return cache_dir() / CACHE_NAME


def _read_cache() -> dict:
    path = cache_path()
    if not path.exists():
        return {}
    data = read_json(path)
    if data is None or not all(isinstance(v, dict) and all(isinstance(e, dict) for e in v.values())
                               for v in data.values()):
        warn(f"the tuning cache {path} is not readable JSON; measuring again (it will be rewritten).")
        return {}
    return data


def _write_cache(cache: dict) -> None:
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, cache)
    except OSError as exc:
        warn(f"cannot write the tuning cache {path} ({exc.strerror or exc}); the choice is measured again next time.")


@dataclass(frozen=True)
class WorkerPlan:
    """How a sweep uses the cores: ``workers`` processes of ``threads`` threads each (workers x threads <= cores)."""

    workers: int
    threads: int
    why: str

    def facts(self) -> dict:
        return {"workers": self.workers, "threads": self.threads, "why": self.why}


def plan_workers(tuning: Tuning, units: int, cores: int | None = None) -> WorkerPlan:
    """The workers x threads that trains ``units`` runs (or packs) soonest, from ``tuning``'s step times: W
    workers of T threads train about W / step(T) steps per second (W = cores // T, at most ``units``), so many
    1-thread workers win where a second thread gains little (MLPs, small data) and fewer wider ones where it
    halves the step (big CNNs). Threads given by the caller (``source == "set"``) are kept."""
    cores = cpu_cores() if cores is None else cores
    units = max(1, units)
    if tuning.source == "set":
        t = max(1, min(tuning.threads, cores))
        w = max(1, min(cores // t, units))
        return WorkerPlan(w, t, f"--threads {t}: {w} worker(s) of {t} thread(s) on {cores} core(s)")
    rates = {}
    for t in thread_candidates(cores):
        step = tuning.step_seconds(t)
        if step:
            rates[t] = min(cores // t, units) / step
    if not rates:
        return WorkerPlan(1, max(1, min(tuning.threads, cores)), "no step times to plan by: one worker")
    t = max(rates, key=lambda k: (rates[k], -k))
    w = max(1, min(cores // t, units))
    return WorkerPlan(w, t, f"{w} worker(s) of {t} thread(s) on {cores} core(s): {rates[t]:.1f} steps/s, measured "
                            + ", ".join(f"x{k}: {v:.1f}" for k, v in sorted(rates.items())))
