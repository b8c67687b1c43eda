"""One run, start to end: :func:`run` opens the run's record, locks it, reuses its summary or resumes its
checkpoint, has the trainer of its data set train it (Section 2.1 of Zhang et al., ICLR 2017), and writes
the summary (the record's files: :mod:`shattering.runs.record`)."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import RunConfig
from ..data.catalogue import dataset_info
from ..data.dataset import ImageData
from ..devices import resolve_device
from ..errors import ConfigError
from ..lease import leased_threads, rebalance
from ..measures import selected, with_measures
from ..probes import PROBES_FOLDER, Probe, parse_probe, probe_specs
from ..train import distributed
from ..train.advice import advice_lines
from ..train.data import make_data, streamed
from ..train.in_memory import InMemoryTrainer
from ..train.stream import StreamTrainer
from ..train.trainer import Trainer
from ..tuning import Tuning, choose, process_plan
from ..validation import check_choice, must_be
from .provenance import reuse_facts, reuse_message
from .record import KEEP_CHECKPOINTS, RunRecord, record_for


@dataclass(frozen=True)
class RunResult:
    """What a run ended with: ``summary`` is the record's ``summary.json``; ``reused`` when it was read from a
    record made before (not trained by this call); ``moved_aside``: where a rerun moved the old record."""

    run_dir: Path
    summary: dict
    reused: bool = False
    moved_aside: Path | None = None
    damage: tuple[str, ...] = ()  # what was damaged in the record that a rerun moved aside (then trained again)
    probes_missing: tuple[str, ...] = ()  # probes asked for that the reused record was made without

    @property
    def status(self) -> str:
        return self.summary["status"]

    @property
    def fit(self) -> bool:
        return bool(self.summary["fit"])

    @property
    def message(self) -> str:
        """The run's message; a reused record's says when and by which code it was made."""
        text = reuse_message(self.summary) if self.reused else self.summary["message"]
        if self.moved_aside is not None and self.damage:
            text += (f" The record held damaged files ({'; '.join(self.damage)}): it was moved aside to "
                     f"{self.moved_aside} and the run trained again.")
        elif self.moved_aside is not None:
            text += f" The old record was moved aside to {self.moved_aside}."
        if self.probes_missing:
            text += (f" The record was made without the probe(s) {', '.join(self.probes_missing)} asked for now: "
                     "--rerun (rerun=True) trains it again with them.")
        return text

    def facts(self) -> dict:
        """The summary with how this call got it (what ``--json`` prints): ``reused`` (and when and by which
        code the record was made), and where a rerun moved the old record."""
        return {**self.summary, "reused": self.reused, "reuse": reuse_facts(self.summary) if self.reused else None,
                "moved_aside": str(self.moved_aside) if self.moved_aside is not None else None,
                "damage": list(self.damage)}

    @property
    def advice(self) -> list[str]:
        """Why the run did not fit, as its numbers show, each with the keywords of :func:`run` to change (empty
        for a run that fit, and for a record written before runs were diagnosed)."""
        return advice_lines(self.summary.get("advice") or [], "python")

    @property
    def train_acc(self) -> float:
        return self.summary["final"]["train_acc"]

    @property
    def test_acc(self) -> float:
        return self.summary["final"]["test_acc"]

    def __getitem__(self, key: str) -> Any:
        return self.summary[key]

    def __str__(self) -> str:
        return self.message


def as_config(config: RunConfig | dict | None = None, **overrides) -> RunConfig:
    """A :class:`RunConfig` from a config, a dict of its fields or None (the defaults), with ``overrides``."""
    if config is None:
        config = RunConfig()
    elif isinstance(config, dict):
        config = RunConfig.from_dict(config)
    elif not isinstance(config, RunConfig):
        raise ConfigError(must_be("config", "a RunConfig, a dict or None", config, of="run",
                                  shown=type(config).__name__))
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = [k for k in overrides if k not in fields]
    if unknown:
        names = [*fields, *RUN_OPTIONS]
        near = [m for k in unknown
                for m in ([CLI_ONLY[k]] if k in CLI_ONLY else difflib.get_close_matches(k, names, 1))]
        raise ConfigError(f"run() has no argument {', '.join(repr(k) for k in unknown)}"
                          + (f" (did you mean {', '.join(repr(m) for m in near)}?)" if near else "")
                          + f"; it takes {', '.join(RUN_OPTIONS)} and the fields of RunConfig: "
                          + f"{', '.join(sorted(fields))}.")
    return config.replace(**overrides) if overrides else config


RUN_OPTIONS = ("progress", "data", "rerun", "keep_checkpoints")  # run()'s own keywords, beside the config's fields
CLI_ONLY = {"quiet": "progress=False, the default", "json": "the RunResult it returns"}  # `shatter run` flags


def trainer_class(cfg: RunConfig) -> type[Trainer]:
    """The trainer for ``cfg``'s data set: streamed from disk (ImageNet) or held as tensors (the others)."""
    return StreamTrainer if streamed(cfg) else InMemoryTrainer


def run(config: RunConfig | dict | None = None, /, *, progress: bool = False, data: ImageData | None = None,
        rerun: bool = False, keep_checkpoints: str = "last", **overrides) -> RunResult:
    """Train one run to the end (or resume it) and return its summary.

    ``config`` is a :class:`RunConfig`, a dict of its fields, or None for the defaults; keyword arguments
    override single fields. A run whose record already holds a summary is not trained again (the result is
    ``reused`` and its message says when and by which code it was made); one whose record holds a checkpoint
    resumes from it. ``rerun=True`` trains it again from nothing: the old record folder is moved aside to
    ``<name>.old-<timestamp>`` (``moved_aside``), never deleted. ``keep_checkpoints``: what the finished run
    keeps, ``last`` (``checkpoint.pt``), ``all`` (the previous one too) or ``none``. A run that fails before
    its first epoch (bad data, a model that does not build) removes the record folder it created.

    >>> result = run(dataset="digits", model="mlp-1x512", corruption="random-labels")  # doctest: +SKIP
    >>> result.fit, result.summary["fit_epoch"]  # doctest: +SKIP
    """
    check_choice(keep_checkpoints, "keep_checkpoints", KEEP_CHECKPOINTS, of="run")
    cfg = as_config(config, **overrides).resolved()
    selected(cfg.measures)  # a measure name unknown here is refused now, not after training
    dist = distributed.context(cfg.device)  # None unless started by torchrun (then process 0 writes the record)
    progress = progress and (dist is None or dist.is_main)
    record = record_for(cfg.run_dir(), dist)
    moved = distributed.agree(dist, record.move_aside() if rerun else None)
    summary = distributed.agree(dist, record.read_summary())
    if summary is not None:
        return RunResult(record.dir, summary, reused=True, probes_missing=_probes_missing(cfg, record))
    set_aside, damage = distributed.agree(dist, record.set_aside_if_damaged())  # never read back nor resumed over
    moved = set_aside or moved
    created = not record.dir.exists()
    with record.lock(), distributed.collective_work(dist):
        summary = distributed.agree(dist, record.read_summary())  # another process may have finished it
        if summary is not None:
            return RunResult(record.dir, summary, reused=True)
        try:
            summary = _train(cfg, record, data, progress, dist)
        except BaseException:
            if created:  # a run that never started leaves no folder behind
                record.discard_unstarted()
            raise
        record.write_summary(summary)
        record.prune_checkpoints(keep_checkpoints)
    return RunResult(record.dir, summary, moved_aside=moved, damage=tuple(damage))


def _probes_missing(cfg: RunConfig, record: RunRecord) -> tuple[str, ...]:
    """The probes ``cfg`` names that wrote nothing in ``record`` (made without them)."""
    names = [parse_probe(spec)[0] for spec in probe_specs(cfg.probes)]
    return tuple(n for n in names if not (record.dir / PROBES_FOLDER / n).is_dir())


class CoreLease(Probe):
    """The core lease's step hook (:func:`shattering.lease.rebalance`, a clock read per step): a process waiting
    for a core gets one within about a second. Every run and pack the runs layer trains holds one."""

    name = "core_lease"  # not registered: not the user's to choose

    def on_step_end(self) -> None:
        rebalance()


def _train(cfg: RunConfig, record: RunRecord, data: ImageData | None, progress: bool,
           dist: distributed.DistContext | None) -> dict:
    """Load the data (unless given), train the run in ``record`` (locked) and return its summary, with the
    complexity measures of the trained network (:func:`shattering.measures.with_measures`)."""
    if data is None:
        data = distributed.share_data(dist, lambda: make_data(cfg, progress=progress, labels_dir=record.dir),
                                      streamed(cfg))
    tune = choose_execution(cfg if dist is None else cfg.replace(compile="off"), data.shape, data.num_classes,
                            data.n_train)
    if dist is not None and cfg.compile != "off":
        tune = dataclasses.replace(tune, compile_why="not used: under torchrun the step trains eager")
    with leased_threads(tune.threads) as lease, torch.random.fork_rng(devices=forked_gpus(cfg, dist)):
        torch.manual_seed(cfg.seed)  # dropout's draws; restored on resume, isolated from the caller's RNG
        trainer = trainer_class(cfg)(cfg.replace(layout=tune.layout, compile="on" if tune.compiled else "off"), data,
                                     record, progress, dist, hooks=[CoreLease()])
        trainer.book.extra["execution"] = {**tune.facts(), "lease": lease.facts(),
                                           "sweep": process_plan() or {"workers": 1, "why": "trained in-process"}}
        trainer.book.write_config()
        summary = trainer.train()
        if dist is not None and not dist.is_main:
            return summary  # process 0 writes the summary, and measures the network for it
        tensors = getattr(trainer, "tensors", None)  # held in memory (a streamed data set measures no examples)
        x, y = (tensors["x_train"], tensors["y_train"]) if tensors is not None else (None, None)
        return with_measures(summary, cfg, trainer.net, data, x, y)  # on the leased cores too


def forked_gpus(cfg: RunConfig, dist: distributed.DistContext | None) -> list[int]:
    """The GPU whose random state :func:`_train` forks: the run's own device (its process's under torchrun),
    not whichever is current; none for a run on the CPU."""
    if dist is not None:
        device = dist.device
    elif cfg.device == "cpu" or not torch.cuda.is_available():
        return []
    else:
        device = resolve_device(cfg.device)
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def choose_execution(cfg: RunConfig, shape: tuple[int, ...] | None = None, num_classes: int | None = None,
                     n_train: int | None = None) -> Tuning:
    """The measured (or given) threads, memory format and compilation for training ``cfg`` here
    (:mod:`shattering.tuning`); ``shape``, ``num_classes`` and ``n_train`` default to the config's data set's.
    Timed at the run's own step (:meth:`~shattering.config.RunConfig.step_batch`: 40 images where 40 are trained
    on, not a batch of 128); compilation weighed over the run's epoch budget of steps."""
    cfg = cfg.resolved()
    shape = shape if shape is not None else cfg.input_shape()
    num_classes = num_classes if num_classes is not None else dataset_info(cfg.dataset).num_classes
    batch, n = cfg.step_batch(n_train), n_train if n_train is not None else cfg.known_train_size()
    budget = (cfg.epochs * -(-n // batch), 1 + bool(n % batch)) if n else None
    return choose(cfg.model, shape, num_classes, batch, cfg.device, cfg.precision, layout=cfg.layout,
                  threads=cfg.threads, model_args=cfg.model_kwargs() or None, compile=cfg.compile, budget=budget)
