"""The Ray executor: every run of a sweep (or packed group of runs) is a Ray task with its own resources, on
this machine or across the machines of a Ray cluster.

::

    pip install 'shattering[ray]'
    ray start --head                                   # on one machine; `ray start --address HEAD:6379` on others
    shatter sweep fig1bc --scale paper --executor ray --ray-address auto --gpus-per-run 0.25 --out /shared/runs

How it behaves:

- **Resources.** Each task asks for ``cpus_per_run`` CPUs and ``gpus_per_run`` GPUs; fractions are allowed,
  so ``--gpus-per-run 0.25`` lets four small runs share a card (Ray sets ``CUDA_VISIBLE_DEVICES``). A task
  that reserves no GPU (``--gpus-per-run 0``) trains on the CPU: Ray 2.x no longer hides the GPUs from such a
  task, so the driver sets its runs' ``device`` to ``cpu`` (``--device cuda`` with ``--gpus-per-run 0`` is
  refused), and a task that reserves a GPU gets ``device=cuda``. A GPU task runs in a fresh worker process
  (``max_calls=1``, set where the remote function is made: Ray ignores it in ``.options()``), since a reused
  worker would stay on the first card it opened. A packed group (several MLP runs trained as one model) is
  one task and asks for the resources of one run. PyTorch in a task uses ``max(1, int(cpus_per_run))``
  threads, and a streamed data set (ImageNet) as many image-decoding workers unless the run sets ``workers``.
- **Run ids.** ``precision=auto`` resolves to bf16 or fp32 for the device that trains the run, and the
  precision is part of the run id; so before anything is sent the driver asks one probe task, with the runs'
  resources, what ``auto`` gives there, and pins that precision in the configs it sends. The driver (perhaps a
  CPU machine) then computes the ids the workers write, and finds the finished runs among them. The probe
  speaks for the whole cluster: on a cluster of mixed GPUs (some without bf16) give ``--precision``.
- **Records.** Runs write to ``--out`` exactly as the local executor does (one folder per run). The folder
  must be shared storage mounted at the same path on every node (NFS, a cluster file system): the driver
  resolves it to an absolute path, leaves a marker file in it, and a task on a node that does not see the
  marker reports that ``--out`` is not shared instead of writing records nobody will read. ``--data-dir``
  likewise must hold the data at the same path on every node (or each node fetches into its own cache).
  shattering must be installed, at the same version, on every node.
- **Progress.** A line per finished run, as runs end, then the same summary table as the local executor.
  Finished runs are read by the driver and not submitted again.
- **Failures.** A task whose worker process dies (the node is lost, the process is killed, out of memory)
  is retried up to ``max_retries`` times; the retry resumes the run from its last checkpoint (``run()``
  always resumes), so nothing is trained or recorded twice. A run that fails with an error (bad data, a
  diverged or misconfigured run, a bug) is reported in the table and not retried: running the same command
  again retries it. Ctrl-C cancels the tasks; their records keep the last checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import RunConfig
from ..data.user_data import in_memory, not_shippable
from ..devices import resolve_precision
from ..errors import ConfigError
from ..files import atomic_write_bytes
from ..runs import RunRecord
from ..tuning import set_process_threads
from ..validation import must_be
from .outcome import Outcome, run_one
from .packing import packed_groups, run_packed_group

MARKER_PREFIX = ".shattering-sweep-"  # a file the driver leaves in --out; tasks check they see it


RAY = "the Ray executor"  # what a refused option's message names


@dataclass(frozen=True)
class RayOptions:
    """How the Ray executor runs a sweep (the ``--ray-address``, ``--cpus-per-run``, ``--gpus-per-run`` and
    ``--max-retries`` options)."""

    address: str | None = None  # the cluster: "auto", "HOST:6379", "ray://HOST:10001"; None: RAY_ADDRESS or local
    cpus_per_run: float = 1.0  # CPUs a task reserves
    gpus_per_run: float = 0.0  # GPUs a task reserves; fractions share a card
    max_retries: int = 3  # retries of a task whose worker died (each resumes from the checkpoint)

    def __post_init__(self):  # the command line's --cpus-per-run, --gpus-per-run, --max-retries
        problems = []
        if not (isinstance(self.cpus_per_run, (int, float)) and self.cpus_per_run > 0):
            problems.append(must_be("--cpus-per-run", "a positive number", self.cpus_per_run, of=RAY))
        if not (isinstance(self.gpus_per_run, (int, float)) and self.gpus_per_run >= 0):
            problems.append(must_be("--gpus-per-run", "zero or a positive number", self.gpus_per_run, of=RAY))
        elif self.gpus_per_run > 1 and self.gpus_per_run != int(self.gpus_per_run):
            problems.append(must_be("--gpus-per-run", "below 1 or a whole number of GPUs", self.gpus_per_run,
                                    of=RAY))
        if not (isinstance(self.max_retries, int) and self.max_retries >= 0):
            problems.append(must_be("--max-retries", "zero or a positive integer", self.max_retries, of=RAY))
        if problems:
            raise ConfigError(" ".join(problems))

    @classmethod
    def from_dict(cls, values: dict | None) -> RayOptions:
        values = {k: v for k, v in (values or {}).items() if v is not None}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"Unknown option(s) {', '.join(unknown)} for executor 'ray'; valid options: "
                              f"{', '.join(sorted(known))}.")
        return cls(**values)


def import_ray():
    """The ``ray`` module, or one sentence with the install command."""
    try:
        import ray  # optional and heavy (seconds to import): only when --executor ray is asked for
    except ImportError:
        raise ConfigError("--executor ray needs Ray, which is not installed here; install it with "
                          "`pip install 'shattering[ray]'`, or use the local executor.") from None
    return ray


def run_ray(configs: Sequence[RunConfig], pack: int | None = None,
            options: RayOptions | dict | None = None, keep_checkpoints: str = "last") -> Iterator[Outcome]:
    """Run ``configs`` as Ray tasks; yield one :class:`~shattering.executors.outcome.Outcome` per config as
    runs end.

    Connects to ``options.address`` (or reuses a Ray already initialized in this process, or starts a local
    one) and shuts down only what it started.
    """
    options = options if isinstance(options, RayOptions) else RayOptions.from_dict(options)
    for cfg in configs:
        if in_memory(cfg.dataset):
            raise ConfigError(not_shippable(cfg.dataset, "Ray workers"))
    ray = import_ray()
    configs = [_on_task_device(_absolute(cfg), options) for cfg in configs]
    probe = any(cfg.precision == "auto" for cfg in configs)
    started = _connect(ray, options.address) if probe else None  # asked now: the ids depend on the answer
    markers: list[Path] = []
    pending: dict = {}
    try:
        if probe:
            configs = _pin_precision(ray, configs, options)
        pending_cfgs = []
        for cfg in configs:  # finished runs are read here, not sent to the cluster
            summary = RunRecord(cfg.run_dir()).read_summary()
            if summary is not None:
                yield Outcome(cfg, cfg.run_dir(), summary=summary, skipped=True)
            else:
                pending_cfgs.append(cfg)
        if not pending_cfgs:
            return
        marker = f"{MARKER_PREFIX}{uuid.uuid4().hex[:12]}"
        markers = _leave_markers(pending_cfgs, marker)
        if started is None:
            started = _connect(ray, options.address)
        _check_gpus(ray, options)
        task = _remote(ray, _run_group, options)
        threads = max(1, int(options.cpus_per_run))
        for group in packed_groups(pending_cfgs, pack):
            pending[task.remote(group, marker, threads, keep_checkpoints)] = group
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            group = pending.pop(ref)
            try:
                outcomes = ray.get(ref)
            except ray.exceptions.RayError as exc:
                error = _task_error(ray, exc, options.max_retries)
                outcomes = [Outcome(cfg, cfg.run_dir(), error=error) for cfg in group]
            yield from outcomes
    except KeyboardInterrupt:
        for ref in pending:
            with contextlib.suppress(Exception):  # already finished or unknown to the cluster
                ray.cancel(ref, force=True)
        raise
    finally:
        for path in markers:
            path.unlink(missing_ok=True)
        if started:
            ray.shutdown()


# INTERNAL UTILITIES -------------------------------------------------------------------------------


def _remote(ray, function, options: RayOptions):
    """``function`` as a Ray remote function with the runs' resources; a task that reserves a GPU runs in a
    fresh worker (``max_calls=1``: Ray honours it only here, where the remote function is made, not in
    ``.options()``), since a reused worker stays on the card it first opened."""
    gpu = {"num_gpus": options.gpus_per_run, "max_calls": 1} if options.gpus_per_run > 0 else {"num_gpus": 0}
    return ray.remote(num_cpus=options.cpus_per_run, max_retries=options.max_retries, retry_exceptions=False,
                      **gpu)(function)


def _on_task_device(cfg: RunConfig, options: RayOptions) -> RunConfig:
    """The config with the device its task trains on: ``cpu`` for a task that reserves no GPU (Ray 2.x does not
    hide the node's GPUs from it, so ``auto`` would put every such run on GPU 0), ``cuda`` for ``auto`` in a
    task that reserves one. The device is not in the run id."""
    if options.gpus_per_run == 0:
        if cfg.device == "cuda":
            raise ConfigError("--device cuda with --gpus-per-run 0: a Ray task that reserves no GPU trains on the "
                              "CPU; give --gpus-per-run (e.g. 1, or 0.25 to share a card) or --device cpu.")
        return cfg.replace(device="cpu") if cfg.device != "cpu" else cfg
    return cfg.replace(device="cuda") if cfg.device == "auto" else cfg


def _check_gpus(ray, options: RayOptions) -> None:
    """Refuse a GPU reservation the cluster cannot meet (its tasks would wait forever)."""
    if options.gpus_per_run > 0:
        have = float(ray.cluster_resources().get("GPU", 0))
        if have < options.gpus_per_run:
            raise ConfigError(f"--gpus-per-run {options.gpus_per_run:g} asks for more GPUs than the Ray cluster "
                              f"has ({have:g}); give --gpus-per-run 0 to train on the CPUs, or add GPU nodes.")


def _probe_precision(device: str) -> str:
    """The Ray probe task: what ``precision=auto`` resolves to on ``device`` where the runs will train."""
    return resolve_precision("auto", device)


def _pin_precision(ray, configs: list[RunConfig], options: RayOptions) -> list[RunConfig]:
    """``precision=auto`` replaced by what one probe task with the runs' resources resolves it to, per device,
    so that the driver computes the run ids the workers write."""
    _check_gpus(ray, options)
    probe = _remote(ray, _probe_precision, options)
    devices = sorted({cfg.device for cfg in configs if cfg.precision == "auto"})
    resolved = {device: ray.get(probe.remote(device)) for device in devices}
    return [cfg.replace(precision=resolved[cfg.device]) if cfg.precision == "auto" else cfg for cfg in configs]


def _run_group(group: list[RunConfig], marker: str, threads: int, keep_checkpoints: str = "last") -> list[Outcome]:
    """The Ray task: one run, or a packed group; never raises for a failed run (it is an outcome)."""
    unseen = [cfg for cfg in group if not (Path(cfg.out) / marker).is_file()]
    if unseen:
        out = unseen[0].out
        error = (f"the records folder {out} on node {socket.gethostname()} is not the driver's (its marker file "
                 f"{marker} is missing): --out must be shared storage mounted at the same path on every node")
        return [Outcome(cfg, cfg.run_dir(), error=error) for cfg in group]
    torch.set_num_threads(threads)
    plan = {"workers": "ray", "threads": threads, "why": "a Ray task of --cpus-per-run CPUs"}
    set_process_threads(threads, plan)  # the task's CPUs, never more (tuning chooses the layout alone)
    group = [cfg if cfg.workers is not None else cfg.replace(workers=threads) for cfg in group]  # not in the id
    if len(group) == 1:
        return [run_one(group[0], keep_checkpoints=keep_checkpoints)]
    execution = {"threads": threads, "layout": "contiguous", "source": "set", "why": plan["why"], "sweep": plan}
    return list(run_packed_group(group, keep_checkpoints, execution=execution))


def _absolute(cfg: RunConfig) -> RunConfig:
    """Paths as the driver sees them, so that a worker with another working directory writes the same place."""
    changes = {"out": str(Path(os.path.expanduser(cfg.out)).resolve())}
    if cfg.data_dir is not None:
        changes["data_dir"] = str(Path(os.path.expanduser(cfg.data_dir)).resolve())
    return cfg.replace(**changes)


def _leave_markers(configs: Sequence[RunConfig], marker: str) -> list[Path]:
    paths = []
    for out in sorted({cfg.out for cfg in configs}):
        Path(out).mkdir(parents=True, exist_ok=True)
        path = Path(out) / marker
        atomic_write_bytes(path, f"written by the shattering sweep driver on {socket.gethostname()}\n".encode())
        paths.append(path)
    return paths


def _connect(ray, address: str | None) -> bool:
    """Join the cluster (or reuse this process's Ray); True when this call started it."""
    if ray.is_initialized():
        return False
    try:
        # every worker process of the job decides its OpenMP wait policy as it starts, before a task imports torch
        # (shattering._openmp); the workers of a Ray the caller initialized decide only if it passed the same hook
        ray.init(address=address, ignore_reinit_error=True,
                 runtime_env={"worker_process_setup_hook": "shattering._openmp.set_openmp_wait_policy"})
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"at {address}" if address else "(RAY_ADDRESS or a new local one)"
        raise ConfigError(f"Could not start or reach the Ray cluster {where}: {exc}; check the address "
                          "(`ray status` on the head node prints it) or leave --ray-address out to start "
                          "a local cluster.") from None
    return True


def _task_error(ray, exc: Exception, max_retries: int) -> str:
    if isinstance(exc, ray.exceptions.RayTaskError):  # the task raised (a bug: run_one reports run errors)
        cause = getattr(exc, "cause", None) or exc
        return f"{type(cause).__name__}: {str(cause).strip().splitlines()[-1] if str(cause).strip() else ''}"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (f"its Ray worker died {max_retries + 1} time(s) ({type(exc).__name__}: {first}); the record keeps "
            "the last checkpoint: run the same command again to resume")
