"""One randomization test, end to end: train a paper model on a (randomized) data set, measure it honestly,
and record everything (Section 2.1 of Zhang et al., ICLR 2017, and its Appendix A).

The paper's procedure: SGD with momentum 0.9, batch 128, initial learning rate 0.1 (Inceptions) or 0.01
(others), multiplied by ``lr_decay`` after every epoch, no explicit regularization unless switched on. The
whole (randomized) data set lives as tensors on the training device and batches are index slices. After
every epoch the whole training set is re-evaluated in eval mode; ``until="fit"`` stops at 100% training
accuracy or at the epoch budget, and the summary says which, with numbers.
"""

from __future__ import annotations

import math
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import __version__
from ..config import RunConfig
from ..corruptions import randomize
from ..data.dataset import ImageData, load_dataset
from ..data.preprocess import per_image_whitening
from ..data.registry import dataset_info
from ..errors import ConfigError, RecordError
from ..models import CONVOLUTIONAL, build_model
from ..runs import RunRecord
from .augment import crop_windows, flip_rotate, pad_and_crop
from .evaluate import measure
from .precision import autocast, resolve_device

STUCK_EPOCHS = 5  # after this many epochs at chance, print the usual causes


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunResult:
    """What a run ended with: ``summary`` is the record's ``summary.json``."""

    run_dir: Path
    summary: dict

    @property
    def status(self) -> str:
        return self.summary["status"]

    @property
    def fit(self) -> bool:
        return bool(self.summary["fit"])

    @property
    def message(self) -> str:
        return self.summary["message"]

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


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------


def make_data(config: RunConfig, progress: bool = False) -> ImageData:
    """Load, prepare and randomize the data of a (resolved) config: the arrays the run trains on."""
    cfg = config.resolved()
    data = load_dataset(cfg.dataset, data_dir=cfg.data_dir, train_size=cfg.train_size, test_size=cfg.test_size,
                        subset_seed=cfg.data_seed, crop=cfg.crop or None, whitening=cfg.whitening,
                        keep_source=cfg.random_crop, progress=progress)
    return randomize(data, cfg.corruption, cfg.p, cfg.data_seed, exclude_true_class=cfg.exclude_true_class,
                     corrupt_test_labels=cfg.corrupt_test_labels, pixel_unit=cfg.pixel_unit)


def _code_version() -> str:
    version = __version__
    try:
        out = subprocess.run(["git", "-C", str(Path(__file__).parent), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5)
        if out.returncode == 0 and out.stdout.strip():
            version += f"+g{out.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    return version


def versions() -> dict:
    return {"shattering": _code_version(), "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def lr_budget(lr: float, decay: float) -> float:
    """Total learning rate ever applied by ``lr * decay**epoch``: lr / (1 - decay) (infinite when constant)."""
    return math.inf if decay >= 1 else lr / (1 - decay)


def describe_schedule(cfg: RunConfig) -> dict:
    info = dataset_info(cfg.dataset)
    budget = lr_budget(cfg.lr, cfg.lr_decay)
    if cfg.lr_decay == info.default_lr_decay(cfg.model):
        source = f"the default for {cfg.model} on {cfg.dataset}: {info.schedule_reason(cfg.model)}"
    else:
        source = "set by the user"
    return {"lr": cfg.lr, "lr_decay": cfg.lr_decay, "epochs": cfg.epochs, "momentum": cfg.momentum,
            "batch_size": cfg.batch_size, "lr_budget": None if math.isinf(budget) else budget,
            "text": (f"lr {cfg.lr:g} x{cfg.lr_decay:g} per epoch (lr budget lr0/(1-decay) = "
                     f"{'unbounded' if math.isinf(budget) else f'{budget:.3g}'}), momentum {cfg.momentum:g}, "
                     f"batch {cfg.batch_size}, budget {cfg.epochs} epochs; {source}")}


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------


class _Trainer:
    """The state of one run being trained; ``train()`` runs it to the end and returns the summary."""

    def __init__(self, cfg: RunConfig, data: ImageData, record: RunRecord, progress: bool):
        self.cfg, self.data, self.record, self.progress = cfg, data, record, progress
        self.device = resolve_device(cfg.device)
        self.conv = cfg.model in CONVOLUTIONAL
        self.memory_format = torch.channels_last if self.conv else torch.contiguous_format
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            model = build_model(cfg.model, data.shape, data.num_classes, cfg.dropout)
        self.model = model.to(self.device, memory_format=self.memory_format)
        decay, no_decay = [], []
        for p in self.model.parameters():
            if p.requires_grad:
                (decay if p.ndim > 1 else no_decay).append(p)
        groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        self.optimizer = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.tensors = self._tensors()
        # loop state (saved in every checkpoint)
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

    # -- data on the device --------------------------------------------------------------------------
    def _tensors(self) -> dict:
        d, dev = self.data, self.device

        def ints(a):  # read-only numpy arrays are copied: torch tensors must be writable
            return torch.from_numpy(np.require(a, requirements=["C", "W"])).to(dev)

        def images(a):
            return ints(a).contiguous(memory_format=self.memory_format)

        t = {"x_train": images(d.x_train), "y_train": ints(d.y_train), "y_train_original": ints(d.y_train_original),
             "train_changed": ints(d.train_changed), "x_test": images(d.x_test), "y_test": ints(d.y_test),
             "y_test_clean": ints(d.y_test_original)}
        self.crop_source = None
        if self.cfg.random_crop and d.source_train is not None:
            self.crop_source = ints(d.source_train)  # raw uint8/float, uncropped
            pre = d.preprocessing
            self.source_scale = float(pre["pixel_scale"])
            self.source_whitening = pre["whitening"]
            if pre["whitening"] == "per-channel":
                self.channel_mean = torch.tensor(pre["channel_mean"], device=dev)[None, :, None, None]
                self.channel_std = torch.tensor(pre["channel_std"], device=dev).clamp_min(1e-8)[None, :, None, None]
        return t

    def _train_batch(self, idx: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        if cfg.random_crop and self.crop_source is not None:
            size = self.data.shape[-1]
            x = self.crop_source[idx].float() / self.source_scale
            x = crop_windows(x, self.data.shape[-2], size, self.generator)
            if self.source_whitening == "per-image":
                x = per_image_whitening(x)
            elif self.source_whitening == "per-channel":
                x = (x - self.channel_mean) / self.channel_std
            x = x.contiguous(memory_format=self.memory_format)
        else:
            x = self.tensors["x_train"][idx]
            if cfg.random_crop:
                x = pad_and_crop(x, cfg.crop_padding, self.generator)
        if cfg.flip_rotate:
            x = flip_rotate(x, cfg.max_rotation, self.generator).contiguous(memory_format=self.memory_format)
        return x

    # -- checkpoints ---------------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "epoch": self.epoch, "steps": self.steps, "seconds": self.seconds, "train_seconds": self.train_seconds,
            "eval_seconds": self.eval_seconds, "best_test_acc": self.best_test_acc, "fit_at": self.fit_at,
            "warnings": self.warnings, "resumes": self.resumes, "last": self.last,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
            "fingerprint": self.data.fingerprint,
        }

    def restore(self, state: dict) -> None:
        if state.get("fingerprint") != self.data.fingerprint:
            raise RecordError(
                f"The checkpoint in {self.record.dir} was trained on other data (fingerprint "
                f"{state.get('fingerprint')}, now {self.data.fingerprint}); the data files changed since the run "
                "started. Delete the run folder to start again."
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        for key in ("epoch", "steps", "seconds", "train_seconds", "eval_seconds", "best_test_acc", "fit_at",
                    "warnings", "resumes", "last"):
            setattr(self, key, state[key])

    # -- the loop ------------------------------------------------------------------------------------
    def log(self, text: str) -> None:
        if self.progress:
            from tqdm.auto import tqdm

            tqdm.write(text, file=sys.stderr)

    def train(self) -> dict:
        record = self.record
        state, notes = record.load_checkpoint()
        for note in notes:
            self.log(f"shattering: {note}")
        if state is not None:
            self.restore(state)
            record.truncate_logs(self.epoch, self.steps)
            self.resumes.append({"epoch": self.epoch, "at": _now(), "notes": notes})
            self.log(f"shattering: resuming {record.dir.name} from the checkpoint of epoch {self.epoch}"
                     + (" (the newest checkpoint was damaged; used the previous one)" if notes else ""))
        else:
            if notes:
                self.log("shattering: no intact checkpoint; restarting this run from scratch")
                self.resumes.append({"epoch": 0, "at": _now(), "notes": notes + ["restarted from scratch"]})
            record.reset_logs()
        status = self._loop()
        return self._summary(status)

    def _loop(self) -> str:
        cfg, t = self.cfg, self.tensors
        n = len(t["y_train"])
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.epochs, initial=self.epoch, disable=not self.progress, unit="epoch", leave=False,
                   desc=f"{cfg.dataset} {cfg.model} {cfg.corruption}", file=sys.stderr)
        status = "running"
        chance = float(np.bincount(self.data.y_train, minlength=self.data.num_classes).max()) / max(n, 1)
        try:
            if self.fit_at is not None and cfg.until == "fit":
                return "fit"
            while self.epoch < cfg.epochs:
                lr = cfg.lr * cfg.lr_decay ** self.epoch
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                step_rows, diverged = self._train_epoch(n, lr)
                t0 = time.perf_counter()
                metrics = measure(self.model, t, cfg.eval_batch_size, cfg.precision)
                eval_s = time.perf_counter() - t0
                self.epoch += 1
                self.eval_seconds += eval_s
                self.seconds += eval_s
                self.best_test_acc = max(self.best_test_acc, metrics["test_acc"])
                row = {"epoch": self.epoch, "step": self.steps, "lr": lr, **metrics,
                       "best_test_acc": self.best_test_acc, "eval_seconds": eval_s,
                       "epoch_seconds": self._epoch_train_s + eval_s, "seconds": self.seconds}
                if not math.isfinite(metrics["train_loss"]):
                    diverged = True
                if metrics["train_errors"] == 0 and self.fit_at is None and not diverged:
                    self.fit_at = {"epoch": self.epoch, "step": self.steps, "seconds": self.seconds}
                self.last = row
                self.record.append_steps(step_rows)
                self.record.append_metrics(row)
                self.record.save_checkpoint(self.state())
                bar.update(1)
                bar.set_postfix_str(f"loss {metrics['train_loss']:.3f} train {100 * metrics['train_acc']:.1f}% "
                                    f"test {100 * metrics['test_acc']:.1f}%")
                if diverged:
                    status = "diverged"
                    break
                if self.fit_at is not None and cfg.until == "fit":
                    status = "fit"
                    break
                self._check_stuck(metrics["train_acc"], chance, n)
        finally:
            bar.close()
        if status == "running":
            status = "fit" if self.fit_at is not None else "not-fit"
        return status

    def _train_epoch(self, n: int, lr: float) -> tuple[list, bool]:
        cfg, t = self.cfg, self.tensors
        self.model.train()
        t0 = time.perf_counter()
        order = torch.randperm(n, generator=self.generator)
        rows, diverged = [], False
        running, count = torch.zeros((), device=self.device), 0
        for start in range(0, n, cfg.batch_size):
            idx = order[start:start + cfg.batch_size].to(self.device, non_blocking=True)
            xb = self._train_batch(idx)
            with autocast(self.device, cfg.precision):
                logits = self.model(xb)
            loss = F.cross_entropy(logits.float(), t["y_train"][idx])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.steps += 1
            running += loss.detach()
            count += 1
            if self.steps % cfg.log_every == 0:
                value = float(running) / count
                rows.append((self.steps, self.epoch + 1, value, lr))
                running.zero_()
                count = 0
                if not math.isfinite(value):
                    diverged = True
                    break
        self._epoch_train_s = time.perf_counter() - t0
        self.train_seconds += self._epoch_train_s
        self.seconds += self._epoch_train_s
        return rows, diverged

    def _check_stuck(self, train_acc: float, chance: float, n: int) -> None:
        if self.epoch != min(STUCK_EPOCHS, self.cfg.epochs) or any(w.startswith("stuck") for w in self.warnings):
            return
        margin = max(0.02, 3 * math.sqrt(chance * (1 - chance) / max(n, 1)))
        if train_acc > chance + margin:
            return
        message = (f"stuck at chance: training accuracy {100 * train_acc:.1f}% after {self.epoch} epochs "
                   f"(chance {100 * chance:.1f}%). {_causes(self.cfg)}")
        self.warnings.append(message)
        self.log(f"shattering: {message}")

    # -- the summary ---------------------------------------------------------------------------------
    def _summary(self, status: str) -> dict:
        cfg, last = self.cfg, self.last
        fit = self.fit_at is not None
        what = f"{cfg.dataset} {cfg.model} {cfg.corruption}" + (
            f" p={cfg.p:g}" if cfg.corruption in ("partial-labels",) or 0 < cfg.p < 1 else "")
        if status == "diverged":
            message = (f"{what}: DIVERGED at epoch {self.epoch} (step {self.steps}): the training loss became "
                       f"NaN or infinite. Lower the learning rate (now {cfg.lr:g}), or use a model with batch "
                       "normalization.")
        elif fit:
            f = self.fit_at
            message = (f"{what}: FIT (100.0% training accuracy) at epoch {f['epoch']}, step {f['step']}, "
                       f"after {f['seconds']:.1f} s; test accuracy {100 * last['test_acc']:.2f}% "
                       f"(best {100 * self.best_test_acc:.2f}%).")
            if cfg.until == "epochs" and last["train_errors"]:
                message += (f" At the end of the {self.epoch}-epoch budget training accuracy was "
                            f"{_pct(last['train_acc'])} ({last['train_errors']} wrong).")
        else:
            message = (f"{what}: DID NOT FIT: {_pct(last['train_acc'])} training accuracy "
                       f"({last['train_errors']} of {self.data.n_train} examples wrong) after {self.epoch} epochs "
                       f"(budget {cfg.epochs}); test accuracy {100 * last['test_acc']:.2f}%. {_causes(cfg)}")
        return {
            "status": status,
            "fit": fit,
            "message": message,
            "run_id": cfg.run_id(),
            "run_name": self.record.dir.name,
            "config": cfg.hashed_dict(),
            "data": {k: v for k, v in self.data.describe().items() if k not in ("class_names",)},
            "data_fingerprint": self.data.fingerprint,
            "schedule": describe_schedule(cfg),
            "epochs": self.epoch,
            "steps": self.steps,
            "seconds": self.seconds,
            "train_seconds": self.train_seconds,
            "eval_seconds": self.eval_seconds,
            "fit_epoch": self.fit_at["epoch"] if fit else None,
            "fit_step": self.fit_at["step"] if fit else None,
            "fit_seconds": self.fit_at["seconds"] if fit else None,
            "best_test_acc": self.best_test_acc,
            "final": last,
            "warnings": self.warnings,
            "resumes": self.resumes,
            "device": str(self.device),
            "precision": cfg.precision,
            "versions": versions(),
            "finished_at": _now(),
        }


def _pct(acc: float) -> str:
    """A percentage that never rounds a miss up to 100%."""
    value = 100 * acc
    text = f"{value:.2f}%"
    if acc < 1 and text == "100.00%":
        text = "99.99%"
    return text


def _causes(cfg: RunConfig) -> str:
    budget = lr_budget(cfg.lr, cfg.lr_decay)
    causes = []
    if not math.isinf(budget):
        causes.append(f"the learning-rate budget lr0/(1-decay) = {budget:.3g} runs out (try --lr-decay 0.98 or 1.0, "
                      "or more epochs)")
    else:
        causes.append(f"the epoch budget ({cfg.epochs}) is too small for this data (try --epochs)")
    if cfg.random_crop or cfg.flip_rotate:
        causes.append("data augmentation is on (it enlarges the set to memorize)")
    if cfg.weight_decay > 0:
        causes.append(f"weight decay is on ({cfg.weight_decay:g})")
    if cfg.model == "inception-small-nobn" and cfg.lr >= 0.05:
        causes.append(f"Inception without batch norm at lr {cfg.lr:g} (try --lr 0.01)")
    causes.append(f"the learning rate {cfg.lr:g} is too high if the loss stays at ln K")
    return "Usual causes: " + "; ".join(causes) + "."


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------


def as_config(config: RunConfig | dict | None = None, **overrides) -> RunConfig:
    if config is None:
        config = RunConfig()
    elif isinstance(config, dict):
        config = RunConfig.from_dict(config)
    elif not isinstance(config, RunConfig):
        raise ConfigError(f"config must be a RunConfig, a dict or None; got {type(config).__name__}.")
    return config.replace(**overrides) if overrides else config


def run(config: RunConfig | dict | None = None, /, *, progress: bool = False, data: ImageData | None = None,
        **overrides) -> RunResult:
    """Train one run to the end (or resume it) and return its summary.

    ``config`` is a :class:`RunConfig`, a dict of its fields, or None for the defaults; keyword arguments
    override single fields. A run whose record already holds a summary is not trained again; one whose
    record holds a checkpoint resumes from it.

    >>> result = run(dataset="digits", model="mlp-1x512", corruption="random-labels")  # doctest: +SKIP
    >>> result.fit, result.summary["fit_epoch"]  # doctest: +SKIP
    """
    cfg = as_config(config, **overrides).resolved()
    record = RunRecord(cfg.run_dir())
    summary = record.read_summary()
    if summary is not None:
        return RunResult(record.dir, summary)
    with record.lock():
        summary = record.read_summary()  # another process may have finished it while we waited
        if summary is not None:
            return RunResult(record.dir, summary)
        if data is None:
            data = make_data(cfg, progress=progress)
        record.write_config({"config": cfg.to_dict(), "run_id": cfg.run_id(), "data": data.describe(),
                             "data_fingerprint": data.fingerprint, "versions": versions(),
                             "schedule": describe_schedule(cfg), "created": _now()})
        with torch.random.fork_rng(devices=[torch.cuda.current_device()] if cfg.device != "cpu"
                                   and torch.cuda.is_available() else []):
            torch.manual_seed(cfg.seed)  # dropout's draws; restored on resume, isolated from the caller's RNG
            trainer = _Trainer(cfg, data, record, progress)
            summary = trainer.train()
        record.write_summary(summary)
    return RunResult(record.dir, summary)
