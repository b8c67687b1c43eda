"""The bookkeeping of one run, whoever trains it (alone or packed with others): counters, fit detection
(Section 2.1: "fit" is 100% training accuracy, measured), the stuck-at-chance and divergence checks, the
per-epoch record rows and the honest summary.

When an epoch is evaluated (:meth:`RunBook.needs_evaluation`): a full eval-mode pass over the training set
stays the definition of fit, but it costs a sizeable share of an epoch (bench/RESULTS.md). It runs every
``eval_every`` epochs, at the budget's last epoch, on divergence, and at
the epoch the stuck-at-chance check reads where the training pass's running accuracy is itself at chance (a
run whose own pass is above it is not stuck); in between, until the run has fit, a *fit probe* decides
whether the epoch could have fit. The training pass marks, for free, every example its batch logits got wrong
(just before the example's own step, in train mode) and keeps every example's loss; the probe evaluates
those suspects, in eval mode and fp32. One of them still clearly wrong proves the epoch did not fit, and the
full pass is skipped; if none is (or there are no suspects), the in-memory and packed trainers go on through
the other examples, the largest training loss first, in the run's precision, counting only errors the full pass would
count too (:func:`shattering.train.evaluate.fit_probe`); if none of them is clearly wrong either, the
full pass runs and decides. So no epoch that could fit goes unevaluated,
and a run reports the fit epoch that evaluating every epoch reports, exactly, not by a threshold on a running
accuracy (which lags: it is measured on moving weights, and on digits MLPs it sat at 1-14 errors for up to
90 epochs before the fit epoch). Unevaluated epochs still write a row, with the running numbers under their
own names (``running_train_acc``, ``running_train_loss``, ``fit_probe_suspects`` (the examples the
training pass got wrong), ``fit_probe_checked``, ``fit_probe_wrong``,
``"evaluated": false``) and no ``train_acc`` or ``test_acc``; the summary's ``final`` is always an evaluated
epoch (the last one always is).

The book writes through the record it is handed: any object with the few methods of :class:`Record`
(the runs layer's :class:`shattering.runs.RunRecord`, or its stand-in on torchrun processes 1..N-1).
Training never opens, locks or summarizes a record itself; that is :func:`shattering.runs.run`'s.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm.auto import tqdm

from ..config import RunConfig
from ..data.dataset import ImageData
from ..errors import ConfigError, RecordError
from ..formatting import pct, plural
from ..validation import must_be
from ..versions import versions
from .advice import diagnose
from .schedule import describe_schedule

CHECKPOINT_EVERY_ENV = "SHATTERING_CHECKPOINT_EVERY_S"
# A checkpoint after every epoch, or after the first epoch that ends this many seconds after the last checkpoint
# where epochs are shorter, and always after the run's last epoch: short epochs of small MLPs spent a large share of
# their time writing checkpoints (bench/RESULTS.md, "Figures moved from the code").
CHECKPOINT_EVERY_S = 1.0
# ... and at least this many times the last checkpoint's writing time: a large network's checkpoint can take as long
# as an epoch of a small training set to write.
CHECKPOINT_WORK_RATIO = 10  # checkpoints cost at most about a tenth of the training
STUCK_EPOCHS = 5  # after this many epochs at chance, print the usual causes
_COUNTERS = ("epoch", "steps", "seconds", "train_seconds", "eval_seconds", "best_test_acc", "fit_at", "warnings",
             "resumes", "last", "diverged", "eval_passes", "fit_probes", "first_loss")
_OPTIONAL = {"diverged": False, "eval_passes": None, "fit_probes": None, "first_loss": None}  # older checkpoints


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_label(cfg: RunConfig) -> str:
    """A run in a few words, as its summary and progress lines name it: data set, model, corruption, p where the
    corruption takes one, and the seed where it is not 0 (so two runs of one sweep never read alike)."""
    return (f"{cfg.dataset} {cfg.model} {cfg.corruption}"
            + (f" p={cfg.p:g}" if cfg.corruption == "partial-labels" or 0 < (cfg.p or 0) < 1 else "")
            + (f" seed {cfg.seed}" if cfg.seed else ""))


class Record(Protocol):
    """What training needs of a run's record: the logs it appends, the checkpoints it writes and reads back,
    the config it states (:class:`shattering.runs.RunRecord` is the implementation)."""

    dir: Path

    def write_config(self, config: dict) -> None: ...

    def append_metrics(self, row: dict) -> None: ...

    def append_steps(self, rows: list[tuple]) -> None: ...

    def truncate_logs(self, epoch: int, step: int) -> None: ...

    def reset_logs(self) -> None: ...

    def save_checkpoint(self, state: dict) -> None: ...

    def load_checkpoint(self) -> tuple[dict | None, list[str]]: ...


def checkpoint_every() -> float | None:
    """Seconds between checkpoints where epochs are short, as ``$SHATTERING_CHECKPOINT_EVERY_S`` sets them (0: after
    every epoch); None where it is not set: :data:`CHECKPOINT_EVERY_S`, or :data:`CHECKPOINT_WORK_RATIO` times the
    last checkpoint's writing time where that is longer."""
    text = os.environ.get(CHECKPOINT_EVERY_ENV, "")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        raise ConfigError(must_be(CHECKPOINT_EVERY_ENV, "a number of seconds >= 0 (0: a checkpoint after every epoch)",
                                  text))
    return value


class RunBook:
    """Counters and records of one run. The trainer owns the model; the book owns everything else."""

    def __init__(self, cfg: RunConfig, data: ImageData, record: Record, progress: bool = False):
        self.cfg, self.data, self.record, self.progress = cfg, data, record, progress
        self.epoch = 0
        self.steps = 0
        self.seconds = 0.0
        self.train_seconds = 0.0
        self.eval_seconds = 0.0
        self.best_test_acc = 0.0
        self.fit_at: dict | None = None
        self.warnings: list[str] = []
        self.resumes: list[dict] = []
        self.last: dict = {}
        self.diverged = False  # an epoch diverged: the run is over (kept in the checkpoint, so a resume knows)
        self.eval_passes = 0  # full evaluations run (None: resumed from a checkpoint that did not count them)
        self.fit_probes = 0  # epochs the fit probe ran (alike)
        self.first_loss: float | None = None  # the loss of the run's first step, before any update
        self.extra: dict = {}  # more summary fields (e.g. packing)
        self.history: list[dict] = []  # this process's epochs (what the advice reads; not in the checkpoint)
        self.checkpoint_every = checkpoint_every()  # None: chosen from the writing time (checkpoint_interval)
        self.checkpoint_write_seconds = 0.0  # how long this process's last checkpoint took to write
        self._checkpointed_at = time.perf_counter()
        n = data.n_train
        self.chance = float(np.bincount(data.y_train, minlength=data.num_classes).max()) / max(n, 1)

    def log(self, text: str) -> None:
        if self.progress:
            tqdm.write(text, file=sys.stderr)

    # -- checkpoint contents -------------------------------------------------------------------------
    def checkpoint_interval(self) -> float:
        """Seconds from one checkpoint to the next where epochs are shorter: as set
        (``$SHATTERING_CHECKPOINT_EVERY_S``), else the larger of :data:`CHECKPOINT_EVERY_S` and
        :data:`CHECKPOINT_WORK_RATIO` times the last writing time."""
        if self.checkpoint_every is not None:
            return self.checkpoint_every
        return max(CHECKPOINT_EVERY_S, CHECKPOINT_WORK_RATIO * self.checkpoint_write_seconds)

    def checkpoint(self, save: Callable[[], None], ended: bool) -> bool:
        """Call ``save`` (write the checkpoint) if the epoch that just ended is due one, and say whether it was: the
        run's last epoch always; the others once :meth:`checkpoint_interval` seconds have passed since this
        process's last checkpoint (or its start), so every epoch where epochs are longer. A crash costs at most the
        epoch in flight, or that many seconds of training."""
        at = time.perf_counter()
        if not (ended or self.done or at - self._checkpointed_at >= self.checkpoint_interval()):
            return False
        save()
        self._checkpointed_at = time.perf_counter()
        self.checkpoint_write_seconds = self._checkpointed_at - at
        return True

    def counters(self) -> dict:
        return {key: getattr(self, key) for key in _COUNTERS} | {"fingerprint": self.data.fingerprint}

    def restore_counters(self, state: dict) -> None:
        if state.get("fingerprint") != self.data.fingerprint:
            raise RecordError(
                f"The checkpoint in {self.record.dir} was trained on other data (fingerprint "
                f"{state.get('fingerprint')}, now {self.data.fingerprint}); the data files changed since the run "
                "started. Delete the run folder to start again."
            )
        for key in _COUNTERS:
            setattr(self, key, state[key] if key in state or key not in _OPTIONAL else _OPTIONAL[key])

    def open(self) -> dict | None:
        """Load the newest intact checkpoint (or prepare a fresh start); return the checkpoint or None."""
        record = self.record
        state, notes = record.load_checkpoint()
        for note in notes:
            self.log(f"shattering: {note}")
        if state is not None:
            self.restore_counters(state)
            record.truncate_logs(self.epoch, self.steps)
            self.resumes.append({"epoch": self.epoch, "at": now(), "notes": notes})
            self.log(f"shattering: resuming {record.dir.name} from the checkpoint of epoch {self.epoch}"
                     + (" (the newest checkpoint was damaged; used the previous one)" if notes else ""))
            return state
        if notes:
            self.log("shattering: no intact checkpoint; restarting this run from scratch")
            self.resumes.append({"epoch": 0, "at": now(), "notes": [*notes, "restarted from scratch"]})
        record.reset_logs()
        return None

    @property
    def done(self) -> bool:
        """True when the run must not train another epoch (fit with --until fit, or budget spent)."""
        return (self.fit_at is not None and self.cfg.until == "fit") or self.epoch >= self.cfg.epochs or self.diverged

    # -- one epoch -----------------------------------------------------------------------------------
    def needs_evaluation(self, running: dict, diverged: bool = False) -> bool:
        """Whether the epoch now ending (``self.epoch + 1``) gets a full eval-mode pass over the training and
        test sets whatever the fit probe says (see the module docstring); ``running``: the epoch's
        ``running_train_acc`` and ``running_train_loss``. Depends on this run alone (a packed member evaluates
        when it would alone)."""
        cfg, epoch = self.cfg, self.epoch + 1
        stuck_check = epoch == min(STUCK_EPOCHS, cfg.epochs) and running["running_train_acc"] <= self._stuck_below()
        return (epoch % cfg.eval_every == 0 or epoch >= cfg.epochs or stuck_check
                or diverged or not math.isfinite(running["running_train_loss"]))

    def _stuck_below(self) -> float:
        """The training accuracy at or below which a run counts as stuck at chance: chance plus 2 points, or
        3 binomial standard deviations of the training set if more."""
        n, chance = self.data.n_train, self.chance
        return chance + max(0.02, 3 * math.sqrt(chance * (1 - chance) / max(n, 1)))

    def end_epoch(self, lr: float, metrics: dict | None, running: dict, step_rows: list, train_s: float,
                  eval_s: float, diverged: bool) -> str | None:
        """Book an epoch: counters, fit, records (the caller writes the checkpoint next). ``metrics``: the full
        evaluation, or None for an epoch that :meth:`needs_evaluation` let pass; ``running``: what the
        training pass counted. Returns the final status when the run is over (``fit``, ``not-fit``,
        ``diverged``), else None."""
        self.epoch += 1
        self.train_seconds += train_s
        self.eval_seconds += eval_s
        self.seconds += train_s + eval_s
        if "fit_probe_checked" in running and self.fit_probes is not None:
            self.fit_probes += 1
        if metrics is None:
            if diverged or not math.isfinite(running["running_train_loss"]):
                raise RuntimeError("a diverged epoch must be evaluated (RunBook.needs_evaluation)")
            self.record.append_steps(step_rows)
            self.record.append_metrics({"epoch": self.epoch, "step": self.steps, "lr": lr, "evaluated": False,
                                        **running, "epoch_seconds": train_s + eval_s, "seconds": self.seconds})
            if self.done:  # cannot happen: the budget's last epoch is evaluated, and fit is found only so
                raise RuntimeError("the last epoch of a run must be evaluated (RunBook.needs_evaluation)")
            return None
        if self.eval_passes is not None:
            self.eval_passes += 1
        self.best_test_acc = max(self.best_test_acc, metrics["test_acc"])
        if not math.isfinite(metrics["train_loss"]):
            diverged = True
        if metrics["train_errors"] == 0 and self.fit_at is None and not diverged:
            self.fit_at = {"epoch": self.epoch, "step": self.steps, "seconds": self.seconds}
        self.last = {"epoch": self.epoch, "step": self.steps, "lr": lr, "evaluated": True, **metrics, **running,
                     "best_test_acc": self.best_test_acc, "eval_seconds": eval_s,
                     "epoch_seconds": train_s + eval_s, "seconds": self.seconds}
        self.history.append({"epoch": self.epoch, "train_acc": metrics["train_acc"],
                             "train_loss": metrics["train_loss"]})
        self.record.append_steps(step_rows)
        self.record.append_metrics(self.last)
        if diverged:
            self.diverged = True
            return "diverged"
        if self.done:
            return "fit" if self.fit_at is not None else "not-fit"
        if self.epoch == min(STUCK_EPOCHS, self.cfg.epochs):
            self._check_stuck(metrics["train_acc"])
        return None

    def evaluation(self) -> dict:
        """The evaluation policy and what it cost, as the summary states it."""
        return {"policy": f"the whole training and test sets in eval mode every {self.cfg.eval_every} epoch(s), at "
                          "the budget's last epoch, and at every epoch a fit probe (the examples the training "
                          "pass got wrong, re-evaluated in fp32, then the others, largest training loss first) could "
                          "not rule out fit; fit decided in fp32; the best "
                          "test accuracy is the best of the epochs evaluated",
                "eval_every": self.cfg.eval_every, "passes": self.eval_passes, "fit_probes": self.fit_probes,
                "seconds": self.eval_seconds}

    def _check_stuck(self, train_acc: float) -> None:
        if any(w.startswith("stuck") for w in self.warnings):
            return
        if train_acc > self._stuck_below():
            return
        facts = [f.fact for f in diagnose(self.cfg, self.history, self.data.num_classes, "not-fit",
                                          self.first_loss)]
        message = (f"stuck at chance: training accuracy {100 * train_acc:.1f}% after {plural(self.epoch, 'epoch')} "
                   f"(chance {100 * self.chance:.1f}%). Measured: {'; '.join(facts)}.")
        self.warnings.append(message)
        self.log(f"shattering: {message}")

    def final_status(self) -> str:
        """The status of a run whose loop ended without an explicit one (resumed after its last epoch)."""
        if self.diverged:
            return "diverged"
        return "fit" if self.fit_at is not None else "not-fit"

    # -- the summary ---------------------------------------------------------------------------------
    def findings(self, status: str) -> list[dict]:
        """What the run's own numbers say about why it did not fit (:func:`shattering.train.advice.diagnose`);
        empty for a run that fit."""
        history = self.history or ([self.last] if self.last else [])
        return [f.as_dict() for f in diagnose(self.cfg, history, self.data.num_classes, status, self.first_loss)]

    def summary(self, status: str, device: str) -> dict:
        cfg, last = self.cfg, self.last
        fit = self.fit_at is not None
        advice = self.findings("fit" if fit else status)
        # a run that fit was not stuck: an early "stuck at chance" warning does not outlive the fit
        warnings = self.data.warnings() + [w for w in self.warnings if not (fit and w.startswith("stuck at chance"))]
        what = run_label(cfg)
        if status == "diverged":
            message = (f"{what}: DIVERGED at epoch {self.epoch} (step {self.steps}): the training loss became "
                       f"NaN or infinite. Measured: {'; '.join(f['fact'] for f in advice)}.")
        elif fit:
            f = self.fit_at
            message = (f"{what}: FIT (100.0% training accuracy) at epoch {f['epoch']}, step {f['step']}, "
                       f"after {f['seconds']:.1f} s; test accuracy {100 * last['test_acc']:.2f}% "
                       f"(best {100 * self.best_test_acc:.2f}%).")
            if cfg.until == "epochs" and last["train_errors"]:
                message += (f" At the end of the {self.epoch}-epoch budget training accuracy was "
                            f"{pct(last['train_acc'])} ({last['train_errors']} wrong).")
        else:
            message = (f"{what}: DID NOT FIT: {pct(last['train_acc'])} training accuracy "
                       f"({last['train_errors']} of {self.data.n_train} examples wrong) after "
                       f"{plural(self.epoch, 'epoch')} (budget {cfg.epochs}); test accuracy "
                       f"{100 * last['test_acc']:.2f}%. Measured: "
                       + "; ".join(f["fact"] for f in advice) + ".")
        return {
            "status": status,
            "fit": fit,
            "message": message,
            "run_id": cfg.run_id(),
            "run_name": self.record.dir.name,
            "config": cfg.hashed_dict(),
            "data": {k: v for k, v in self.data.describe().items() if k != "class_names"},
            "data_fingerprint": self.data.fingerprint,
            "schedule": describe_schedule(cfg),
            "epochs": self.epoch,
            "steps": self.steps,
            "seconds": self.seconds,
            "train_seconds": self.train_seconds,
            "eval_seconds": self.eval_seconds,
            "evaluation": self.evaluation(),
            "fit_epoch": self.fit_at["epoch"] if fit else None,
            "fit_step": self.fit_at["step"] if fit else None,
            "fit_seconds": self.fit_at["seconds"] if fit else None,
            "best_test_acc": self.best_test_acc,
            "final": last,
            "warnings": warnings,
            "advice": advice,
            "resumes": self.resumes,
            "device": device,
            "precision": cfg.precision,
            "versions": versions(),
            "finished_at": now(),
            **self.extra,
        }

    def write_config(self) -> None:
        cfg = self.cfg
        self.record.write_config({"config": cfg.to_dict(), "run_id": cfg.run_id(), "data": self.data.describe(),
                                  "data_fingerprint": self.data.fingerprint, "versions": versions(),
                                  "schedule": describe_schedule(cfg), "created": now()})
