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
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..config import RunConfig
from ..corruptions import randomize
from ..data.dataset import ImageData, load_dataset
from ..data.preprocess import per_image_whitening
from ..errors import ConfigError
from ..models import CONVOLUTIONAL, build_model
from ..runs import RunRecord
from .augment import crop_windows, flip_rotate, pad_and_crop
from .book import RunBook
from .evaluate import measure
from .precision import autocast, resolve_device
from .schedule import lr_at

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


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------


def device_tensors(data: ImageData, device: torch.device, memory_format=torch.contiguous_format) -> dict:
    """The arrays of ``data`` as tensors on ``device`` (images in ``memory_format``), as the loop uses them."""

    def ints(a):  # read-only numpy arrays are copied: torch tensors must be writable
        return torch.from_numpy(np.require(a, requirements=["C", "W"])).to(device)

    def images(a):
        return ints(a).contiguous(memory_format=memory_format)

    return {"x_train": images(data.x_train), "y_train": ints(data.y_train),
            "y_train_original": ints(data.y_train_original), "train_changed": ints(data.train_changed),
            "x_test": images(data.x_test), "y_test": ints(data.y_test), "y_test_clean": ints(data.y_test_original)}


def sgd(model: torch.nn.Module, cfg: RunConfig) -> torch.optim.SGD:
    """SGD with momentum; weight decay on the weights only (not biases or batch-norm offsets)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)


def init_model(cfg: RunConfig, data: ImageData) -> torch.nn.Module:
    """The model of ``cfg``, initialized from ``cfg.seed`` alone (PyTorch's default initialization)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return build_model(cfg.model, data.shape, data.num_classes, cfg.dropout)


class _Trainer:
    """One run being trained: model, optimizer and random generator; the :class:`RunBook` keeps the rest."""

    def __init__(self, cfg: RunConfig, data: ImageData, record: RunRecord, progress: bool):
        self.cfg, self.data, self.progress = cfg, data, progress
        self.book = RunBook(cfg, data, record, progress)
        self.device = resolve_device(cfg.device)
        self.memory_format = torch.channels_last if cfg.model in CONVOLUTIONAL else torch.contiguous_format
        self.model = init_model(cfg, data).to(self.device, memory_format=self.memory_format)
        self.optimizer = sgd(self.model, cfg)
        self.generator = torch.Generator().manual_seed(cfg.seed)  # batch order and augmentation
        self.tensors = device_tensors(data, self.device, self.memory_format)
        self.crop_source = None
        if cfg.random_crop and data.source_train is not None:
            self._prepare_crop_source()

    def _prepare_crop_source(self) -> None:
        """Keep the uncropped images: CIFAR's random crop takes a 28x28 window of the full 32x32 image, then
        whitens it (crop, then per-image whitening, as the TensorFlow tutorial the paper builds on)."""
        pre, dev = self.data.preprocessing, self.device
        self.crop_source = torch.from_numpy(np.require(self.data.source_train, requirements=["C", "W"])).to(dev)
        self.source_scale = float(pre["pixel_scale"])
        self.source_whitening = pre["whitening"]
        if pre["whitening"] == "per-channel":
            self.channel_mean = torch.tensor(pre["channel_mean"], device=dev)[None, :, None, None]
            self.channel_std = torch.tensor(pre["channel_std"], device=dev).clamp_min(1e-8)[None, :, None, None]

    def _train_batch(self, idx: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        if self.crop_source is not None:
            x = self.crop_source[idx].float() / self.source_scale
            x = crop_windows(x, self.data.shape[-2], self.data.shape[-1], self.generator)
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
        return {**self.book.counters(), "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(), "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None}

    def restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state["cuda_rng"])

    # -- the loop ------------------------------------------------------------------------------------
    def train(self) -> dict:
        book, cfg = self.book, self.cfg
        state = book.open()
        if state is not None:
            self.restore(state)
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.epochs, initial=book.epoch, disable=not self.progress, unit="epoch", leave=False,
                   desc=f"{cfg.dataset} {cfg.model} {cfg.corruption}", file=sys.stderr)
        status = None
        try:
            while status is None and not book.done:
                lr = lr_at(cfg, book.epoch)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                t0 = time.perf_counter()
                step_rows, diverged = self._train_epoch(lr)
                t1 = time.perf_counter()
                metrics = measure(self.model, self.tensors, cfg.eval_batch_size, cfg.precision)
                status = book.end_epoch(lr, metrics, step_rows, t1 - t0, time.perf_counter() - t1, diverged)
                book.record.save_checkpoint(self.state())
                bar.update(1)
                bar.set_postfix_str(f"loss {metrics['train_loss']:.3f} train {100 * metrics['train_acc']:.1f}% "
                                    f"test {100 * metrics['test_acc']:.1f}%")
        finally:
            bar.close()
        return book.summary(status or book.final_status(), str(self.device))

    def _train_epoch(self, lr: float) -> tuple[list, bool]:
        cfg, t, book = self.cfg, self.tensors, self.book
        n = len(t["y_train"])
        self.model.train()
        order = torch.randperm(n, generator=self.generator)
        rows, diverged = [], False
        running, count = torch.zeros((), device=self.device), 0
        for start in range(0, n, cfg.batch_size):
            idx = order[start:start + cfg.batch_size].to(self.device, non_blocking=True)
            xb = self._train_batch(idx)
            with autocast(self.device, cfg.precision):
                logits = self.model(xb)
            # per-example losses, then the mean: the reduction a packed run uses (same rounding)
            loss = F.cross_entropy(logits.float(), t["y_train"][idx], reduction="none").mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            book.steps += 1
            running += loss.detach()
            count += 1
            if book.steps % cfg.log_every == 0:
                value = float(running) / count
                rows.append((book.steps, book.epoch + 1, value, lr))
                running.zero_()
                count = 0
                if not math.isfinite(value):
                    diverged = True
                    break
        return rows, diverged


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
        with torch.random.fork_rng(devices=[torch.cuda.current_device()] if cfg.device != "cpu"
                                   and torch.cuda.is_available() else []):
            torch.manual_seed(cfg.seed)  # dropout's draws; restored on resume, isolated from the caller's RNG
            trainer = _Trainer(cfg, data, record, progress)
            trainer.book.write_config()
            summary = trainer.train()
        record.write_summary(summary)
    return RunResult(record.dir, summary)
