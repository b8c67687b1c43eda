"""Training on a data set held in memory (every data set but ImageNet): the whole (randomized) data set lives
as tensors on the training device and batches are index slices (Section 2.1 of Zhang et al., ICLR 2017),
augmented on the device when a regularizer of Section 3 asks (random crop, flip and rotation).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from ..data.dataset import ImageData
from ..data.preprocess import per_image_whitening
from .augment import crop_windows, flip_rotate, pad_and_crop
from .evaluate import clear_errors, clear_errors_rest, measure
from .trainer import Trainer


def device_tensors(data: ImageData, device: torch.device, memory_format=torch.contiguous_format,
                   images: dict | None = None) -> dict:
    """The arrays of ``data`` as tensors on ``device`` (images in ``memory_format``), as the loop uses them.
    ``images``: tensors ``x_train`` and ``x_test`` already on ``device`` (equal to ``data``'s) to use instead of
    another copy (the members of a pack share one)."""

    def ints(a):  # read-only numpy arrays are copied: torch tensors must be writable
        return torch.from_numpy(np.require(a, requirements=["C", "W"])).to(device)

    def to_images(a):
        return ints(a).contiguous(memory_format=memory_format)

    shared = images or {"x_train": to_images(data.x_train), "x_test": to_images(data.x_test)}
    return {"x_train": shared["x_train"], "y_train": ints(data.y_train),
            "y_train_original": ints(data.y_train_original), "train_changed": ints(data.train_changed),
            "x_test": shared["x_test"], "y_test": ints(data.y_test), "y_test_clean": ints(data.y_test_original)}


class InMemoryTrainer(Trainer):
    """A :class:`~shattering.train.trainer.Trainer` whose data set is an
    :class:`~shattering.data.dataset.ImageData`, held on the training device."""

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

    def _measure(self) -> dict:
        """The epoch's metrics; under torchrun process 0 measures and the others receive its numbers."""
        if self.dist is None:
            return measure(self.net, self.tensors, self.cfg.eval_batch_size, self.cfg.precision)
        metrics = measure(self.net, self.tensors, self.cfg.eval_batch_size, self.cfg.precision) \
            if self.dist.is_main else None
        return self.dist.broadcast(metrics)

    def _clear_errors(self, idx: torch.Tensor) -> tuple[int, int]:
        """The fit probe (:func:`shattering.train.evaluate.clear_errors`); under torchrun process 0 probes."""
        found = clear_errors(self.net, self.tensors["x_train"], self.tensors["y_train"], idx,
                             self.cfg.eval_batch_size) if self.dist is None or self.dist.is_main else None
        return found if self.dist is None else self.dist.broadcast(found)

    def _clear_errors_rest(self, idx: torch.Tensor) -> tuple[int, int]:
        """The fit probe's second part (:func:`shattering.train.evaluate.clear_errors_rest`); under torchrun
        process 0 probes."""
        found = clear_errors_rest(self.net, self.tensors["x_train"], self.tensors["y_train"], idx,
                                  self.cfg.eval_batch_size, self.cfg.precision) \
            if self.dist is None or self.dist.is_main else None
        return found if self.dist is None else self.dist.broadcast(found)

    def _batches(self, order: torch.Tensor) -> Iterator[tuple[torch.Tensor, torch.Tensor, float | None,
                                                                torch.Tensor]]:
        """The epoch's training batches in ``order`` (see :meth:`Trainer._batches`).

        Under torchrun every process augments the whole global batch (the same draws from the same generator,
        so the generator, which also draws the batch order, stays the same everywhere and the augmentation is
        the single-process one), then keeps its shard."""
        t = self.tensors
        for start in range(0, len(order), self.cfg.batch_size):
            idx = order[start:start + self.cfg.batch_size].to(self.device, non_blocking=True)
            xb, yb, scale = self._train_batch(idx), t["y_train"][idx], None
            if self.dist is not None:
                rows, scale = self.dist.shard(torch.arange(len(idx), device=self.device))
                xb, yb, idx = xb[rows], yb[rows], idx[rows]
            yield xb, yb, scale, idx
