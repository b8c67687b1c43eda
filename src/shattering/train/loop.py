"""One randomization test, end to end: train a paper model on a (randomized) data set, measure it honestly,
and record everything (Section 2.1 of Zhang et al., ICLR 2017, and its Appendix A).

The paper's procedure: SGD with momentum 0.9, batch 128, initial learning rate 0.1 (Inceptions) or 0.01
(others), multiplied by ``lr_decay`` after every epoch, no explicit regularization unless switched on. The
whole (randomized) data set lives as tensors on the training device and batches are index slices. After
every epoch the whole training set is re-evaluated in eval mode; ``until="fit"`` stops at 100% training
accuracy or at the epoch budget, and the summary says which, with numbers.

Two variants share this loop, the book (:class:`~shattering.train.book.RunBook`), the records and resume:
data sets too big for memory (ImageNet) stream their batches from disk (:mod:`shattering.train.stream`
overrides where batches come from and how the epoch is measured), and under torchrun several processes
train one run (:mod:`shattering.distributed`: each takes a shard of every batch; process 0 writes).
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

from .. import distributed
from ..config import RunConfig
from ..corruptions import randomize, randomize_folder
from ..data.catalogue import dataset_info
from ..data.dataset import ImageData, load_dataset
from ..data.folder_data import LABELS_FILE
from ..data.preprocess import per_image_whitening
from ..errors import ConfigError
from ..models import build_model, model_info
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


AUX_LOSS_WEIGHT = 0.4  # Inception V3's auxiliary classifier, when on (TF and torchvision recipes) [I]


def streamed(cfg: RunConfig) -> bool:
    """True for data sets read from disk batch by batch (image folders: ImageNet)."""
    return dataset_info(cfg.dataset).kind == "image-folder"


def make_data(config: RunConfig, progress: bool = False, *, record: RunRecord | None = None):
    """Load, prepare and randomize the data of a (resolved) config: the arrays the run trains on. A streamed
    data set (ImageNet) gives a :class:`~shattering.data.folder_data.FolderData` instead: files and labels, the
    labels kept in ``record``'s folder (``labels.npz``) when a record is given."""
    cfg = config.resolved()
    if streamed(cfg):
        if record is not None:
            record.create()
        return randomize_folder(cfg, record.dir / LABELS_FILE if record is not None else None)
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
    options = {"aux_logits": True} if cfg.aux_logits else {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return build_model(cfg.model, data.shape, data.num_classes, cfg.dropout, **options)


class _Trainer:
    """One run being trained: model, optimizer and random generator; the :class:`RunBook` keeps the rest.

    ``net`` is the model; ``model`` is what the loop calls (``net`` itself, or ``net`` wrapped for data
    parallelism under torchrun, ``dist``). Subclasses change where batches come from (:meth:`_batches`) and
    how an epoch is measured (:meth:`_measure`)."""

    def __init__(self, cfg: RunConfig, data: ImageData, record: RunRecord, progress: bool,
                 dist: distributed.DistContext | None = None):
        self.cfg, self.data, self.progress, self.dist = cfg, data, progress, dist
        self.book = RunBook(cfg, data, record, progress)
        self.device = dist.device if dist is not None else resolve_device(cfg.device)
        self.memory_format = torch.channels_last if model_info(cfg.model).convolutional else torch.contiguous_format
        self.net = init_model(cfg, data).to(self.device, memory_format=self.memory_format)
        self.model = self.net if dist is None else dist.wrap(self.net, cfg.sync_bn)
        self.optimizer = sgd(self.net, cfg)
        self.generator = torch.Generator().manual_seed(cfg.seed)  # batch order and augmentation
        self._setup_data()

    def _setup_data(self) -> None:
        data, cfg = self.data, self.cfg
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
        return {**self.book.counters(), "model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(), "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None}

    def restore(self, state: dict) -> None:
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state["cuda_rng"])

    # -- the loop ------------------------------------------------------------------------------------
    def train(self) -> dict:
        book, cfg = self.book, self.cfg
        state = book.open()
        if self.dist is not None:  # process 0 read the checkpoint (the others' record reads nothing)
            state = self.dist.broadcast(state)
            if state is not None and not self.dist.is_main:
                book.restore_counters(state)
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
                metrics = self._measure()
                status = book.end_epoch(lr, metrics, step_rows, t1 - t0, time.perf_counter() - t1, diverged)
                book.record.save_checkpoint(self.state())
                bar.update(1)
                bar.set_postfix_str(f"loss {metrics['train_loss']:.3f} train {100 * metrics['train_acc']:.1f}% "
                                    f"test {100 * metrics['test_acc']:.1f}%")
        finally:
            bar.close()
        if self.dist is not None:
            book.extra["distributed"] = self.dist.describe()
        return book.summary(status or book.final_status(), str(self.device))

    def _measure(self) -> dict:
        """The epoch's metrics; under torchrun process 0 measures and the others receive its numbers."""
        if self.dist is None:
            return measure(self.net, self.tensors, self.cfg.eval_batch_size, self.cfg.precision)
        metrics = measure(self.net, self.tensors, self.cfg.eval_batch_size, self.cfg.precision) \
            if self.dist.is_main else None
        return self.dist.broadcast(metrics)

    def _batches(self, order: torch.Tensor):
        """The epoch's training batches in ``order``: ``(images, labels, scale)``; ``scale`` is None alone, else
        the factor on this process's summed loss (:meth:`shattering.distributed.DistContext.shard`).

        Under torchrun every process augments the whole global batch (the same draws from the same generator,
        so the generator, which also draws the batch order, stays the same everywhere and the augmentation is
        the single-process one), then keeps its shard."""
        t = self.tensors
        for start in range(0, len(order), self.cfg.batch_size):
            idx = order[start:start + self.cfg.batch_size].to(self.device, non_blocking=True)
            xb, yb, scale = self._train_batch(idx), t["y_train"][idx], None
            if self.dist is not None:
                rows, scale = self.dist.shard(torch.arange(len(idx), device=self.device))
                xb, yb = xb[rows], yb[rows]
            yield xb, yb, scale

    def _loss(self, out, yb: torch.Tensor, scale: float | None) -> torch.Tensor:
        logits, aux = out if isinstance(out, tuple) else (out, None)  # Inception V3's auxiliary head in training
        per_example = F.cross_entropy(logits.float(), yb, reduction="none")
        if aux is not None:
            per_example = per_example + AUX_LOSS_WEIGHT * F.cross_entropy(aux.float(), yb, reduction="none")
        if scale is None:
            return per_example.mean()  # per-example losses, then the mean: the reduction a packed run uses
        return per_example.sum() * scale  # DDP averages over processes: the mean over the global batch

    def _logged_loss(self, running: torch.Tensor, count: int) -> float:
        if self.dist is None:
            return float(running) / count
        return float(self.dist.sum(running)) / (self.dist.world_size * count)

    def _train_epoch(self, lr: float) -> tuple[list, bool]:
        cfg, book = self.cfg, self.book
        self.model.train()
        order = torch.randperm(self.data.n_train, generator=self.generator)
        rows, diverged = [], False
        running, count = torch.zeros((), device=self.device), 0
        for xb, yb, scale in self._batches(order):
            with autocast(self.device, cfg.precision):
                out = self.model(xb)
            loss = self._loss(out, yb, scale)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            book.steps += 1
            running += loss.detach()
            count += 1
            if book.steps % cfg.log_every == 0:
                value = self._logged_loss(running, count)
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
    dist = distributed.context(cfg.device)  # None unless started by torchrun (then process 0 writes the record)
    progress = progress and (dist is None or dist.is_main)
    record = distributed.record_for(cfg.run_dir(), dist)
    summary = distributed.agree(dist, record.read_summary())
    if summary is not None:
        return RunResult(record.dir, summary)
    with record.lock():
        summary = distributed.agree(dist, record.read_summary())  # another process may have finished it
        if summary is not None:
            return RunResult(record.dir, summary)
        if data is None:
            data = distributed.share_data(dist, lambda: make_data(cfg, progress=progress, record=record),
                                          streamed(cfg))
        with torch.random.fork_rng(devices=[torch.cuda.current_device()] if cfg.device != "cpu"
                                   and torch.cuda.is_available() else []):
            torch.manual_seed(cfg.seed)  # dropout's draws; restored on resume, isolated from the caller's RNG
            trainer = _trainer_class(cfg)(cfg, data, record, progress, dist)
            trainer.book.write_config()
            summary = trainer.train()
        record.write_summary(summary)
    return RunResult(record.dir, summary)


def _trainer_class(cfg: RunConfig) -> type:
    if streamed(cfg):
        from .stream import StreamTrainer

        return StreamTrainer
    return _Trainer
