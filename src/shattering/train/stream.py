"""Training on a data set streamed from disk (ImageNet, Table 2 and Figure 2a of Zhang et al., ICLR 2017).

The loop, the book, the records, resume and fit detection are :class:`~shattering.train.trainer.Trainer`'s; only
two things differ from a data set held as tensors (:mod:`shattering.train.in_memory`):

- **Batches** come from a torch ``DataLoader`` whose worker processes decode the images
  (:mod:`shattering.data.image_folder`), in the order of the same seeded permutation, one global batch of
  ``batch_size`` at a time (under torchrun each process loads only its shard). Augmentation is drawn per
  image from (seed, epoch, image), so it does not depend on the worker that decodes it, and a resumed run
  sees the same images as an uninterrupted one. Pixels travel as uint8 (pinned once by the loader when the
  run trains on a GPU, then copied without blocking) and are scaled and whitened on the training device.
- **Measurement** (at the epochs :meth:`~shattering.train.book.RunBook.needs_evaluation` names; fit decided in
  fp32, :mod:`shattering.train.evaluate`) streams both splits through the evaluation transform in eval mode,
  as the in-memory path does for its tensors (the whole training set against the labels trained on, the test
  set against clean labels), and adds the top-5 accuracies of Table 2 and the best top-5 test accuracy so far.
  Its batches are cut to what the loader's shared-memory budget allows
  (:func:`~shattering.data.image_folder.loader_sizes`: 2 GiB at most, or half the free space of /dev/shm).
  Under torchrun each process measures a contiguous shard of each split with process 0's batch-norm statistics
  and the per-example results are gathered, so all processes book the same numbers.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..data.image_folder import NO_AUGMENTATION, TEST, TRAIN, FolderImages, make_loader
from ..data.preprocess import per_image_whitening
from ..devices import autocast
from ..errors import DataFormatError
from .evaluate import clear_margin, in_doubt, metrics_from_predictions, probe
from .trainer import Trainer

TOP_K = 5


class StreamTrainer(Trainer):
    """A :class:`~shattering.train.trainer.Trainer` whose data stay on disk (a
    :class:`~shattering.data.folder_data.FolderData`)."""

    def _setup_data(self) -> None:
        data = self.data
        self.labels = {  # on the CPU: what the gathered per-example predictions are compared with
            "y_train": torch.from_numpy(np.asarray(data.y_train, dtype=np.int64)),
            "y_train_original": torch.from_numpy(np.asarray(data.y_train_original, dtype=np.int64)),
            "train_changed": torch.from_numpy(np.asarray(data.train_changed, dtype=bool)),
            "y_test": torch.from_numpy(np.asarray(data.y_test, dtype=np.int64)),
            "y_test_clean": torch.from_numpy(np.asarray(data.y_test_original, dtype=np.int64)),
        }
        self.y_train = self.labels["y_train"].to(self.device)
        cfg = self.cfg
        self.loader, self.plan, sizes = make_loader(FolderImages(data, cfg.seed), cfg.workers,
                                                    self.device.type == "cuda", cfg.batch_size, cfg.eval_batch_size)
        self.eval_batch_size = sizes.eval_batch_size  # within the shared-memory budget (not in the run id)
        self.best_test_acc_top5 = 0.0

    # -- batches -------------------------------------------------------------------------------------
    def _images(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 3, S, S) from the loader -> the float images the model sees, on the device."""
        x = x.to(self.device, non_blocking=True).float() / 255.0
        if self.cfg.whitening == "per-image":
            x = per_image_whitening(x)
        return x.contiguous(memory_format=self.memory_format)

    def _load(self):
        """Iterate the loader over ``self.plan.batches``; a bad image file is one sentence, not a worker trace."""
        try:
            yield from self.loader
        except DataFormatError as exc:
            lines = [line for line in str(exc).strip().splitlines() if line.strip()]
            raise DataFormatError(lines[-1].split("DataFormatError: ", 1)[-1]) from None

    def _batches(self, order: torch.Tensor):
        cfg = self.cfg
        epoch = self.book.epoch if cfg.random_crop else NO_AUGMENTATION
        batches, scales = [], []
        for start in range(0, len(order), cfg.batch_size):
            idx, scale = order[start:start + cfg.batch_size], None
            if self.dist is not None:
                idx, scale = self.dist.shard(idx)
            batches.append([(TRAIN, int(i), epoch) for i in idx])
            scales.append(scale)
        self.plan.batches = batches
        for (x, idx), scale in zip(self._load(), scales, strict=True):
            idx = idx.to(self.device, non_blocking=True)  # idx is pinned too
            yield self._images(x), self.y_train[idx], scale, idx

    # -- measurement ---------------------------------------------------------------------------------
    @torch.no_grad()
    def _predict(self, split: int, n: int, labels: torch.Tensor, precision: str, decide_fit: bool = False):
        """Per-example loss, predicted class and top-5 hit against ``labels`` over ``split`` (eval mode);
        ``decide_fit``: the examples in doubt are computed again in fp32
        (:func:`shattering.train.evaluate.predict_train`), and a fourth tensor holds how many (one per process)."""
        part = self.dist.split_range(n) if self.dist is not None else range(n)
        loss, pred, hit, doubt, _ = self._pass(split, list(part), labels, precision)
        if decide_fit and precision != "fp32":
            again = doubt.nonzero().squeeze(1)
            if again.numel():
                loss[again], pred[again], hit[again], *_ = self._pass(
                    split, [part.start + int(i) for i in again], labels, "fp32")
            out = [loss, pred, hit, torch.tensor([again.numel()])]
        else:
            out = [loss, pred, hit, torch.zeros(1, dtype=torch.long)]
        if self.dist is not None:
            out = [self.dist.gather_cat(t) for t in out]
        return out

    def _pass(self, split: int, indices: list[int], labels: torch.Tensor, precision: str):
        """One eval-mode pass over examples ``indices`` of ``split``: losses, predictions, top-5 hits, which
        are :func:`~shattering.train.evaluate.in_doubt` and the margins the fit probe reads
        (:func:`~shattering.train.evaluate.clear_margin`: the signed margins in fp32), on the CPU, in the order
        of ``indices``."""
        size = self.eval_batch_size  # within the shared-memory budget
        self.plan.batches = [[(split, i, NO_AUGMENTATION) for i in indices[s:s + size]]
                             for s in range(0, len(indices), size)]
        losses, preds = [torch.empty(0)], [torch.empty(0, dtype=torch.long)]
        hits, doubts = [torch.empty(0, dtype=torch.bool)], [torch.empty(0, dtype=torch.bool)]
        margins = [torch.empty(0)]
        was_training = self.net.training
        self.net.eval()
        try:
            for x, idx in self._load():
                with autocast(self.device, precision):
                    logits = self.net(self._images(x))
                logits = logits.float()
                y = labels[idx].to(self.device)
                losses.append(F.cross_entropy(logits, y, reduction="none").cpu())
                preds.append(logits.argmax(dim=1).cpu())
                k = min(TOP_K, logits.shape[1])
                hits.append((logits.topk(k, dim=1).indices == y[:, None]).any(dim=1).cpu())
                doubts.append(in_doubt(logits, y).cpu())
                margins.append(clear_margin(logits, y, precision).cpu())
        finally:
            self.net.train(was_training)
        return torch.cat(losses), torch.cat(preds), torch.cat(hits), torch.cat(doubts), torch.cat(margins)

    def _clear_errors(self, idx: torch.Tensor) -> tuple[int, int]:
        """The fit probe (:func:`shattering.train.evaluate.clear_errors`, chunk by chunk), in fp32."""
        return self._probe(idx, "fp32")

    def _clear_errors_rest(self, idx: torch.Tensor) -> tuple[int, int]:
        """The fit probe's second part (:func:`shattering.train.evaluate.clear_errors_rest`: the examples the
        training pass got right, largest loss first), in the run's precision."""
        return self._probe(idx, self.cfg.precision)

    def _probe(self, idx: torch.Tensor, precision: str) -> tuple[int, int]:
        """:func:`shattering.train.evaluate.probe` over training examples ``idx`` in ``precision``: every
        process probes the same examples with process 0's batch-norm statistics."""
        if self.dist is not None:
            self.dist.sync_buffers(self.net)
        return probe(lambda rows: self._pass(TRAIN, rows.tolist(), self.labels["y_train"], precision)[-1], idx,
                     self.eval_batch_size)

    def _measure(self) -> dict:
        if self.dist is not None:
            self.dist.sync_buffers(self.net)  # every process measures with process 0's running statistics
        data = self.data
        loss, pred, hit5, checked = self._predict(TRAIN, data.n_train, self.labels["y_train"], self.cfg.precision,
                                                  decide_fit=True)
        test_loss, test_pred, test_hit5, _ = self._predict(TEST, data.n_test, self.labels["y_test_clean"],
                                                           self.cfg.precision)
        metrics = metrics_from_predictions(loss, pred, test_loss, test_pred, self.labels)
        metrics["train_fp32_checked"] = int(checked.sum())
        metrics["train_acc_top5"] = float(hit5.float().mean()) if len(hit5) else None
        metrics["test_acc_top5"] = float(test_hit5.float().mean()) if len(test_hit5) else None
        self.best_test_acc_top5 = max(self.best_test_acc_top5, metrics["test_acc_top5"] or 0.0)
        metrics["best_test_acc_top5"] = self.best_test_acc_top5
        self.book.extra["best_test_acc_top5"] = self.best_test_acc_top5
        return metrics

    # -- checkpoints ---------------------------------------------------------------------------------
    def state(self) -> dict:
        return {**super().state(), "best_test_acc_top5": self.best_test_acc_top5}

    def restore(self, state: dict) -> None:
        super().restore(state)
        self.best_test_acc_top5 = state.get("best_test_acc_top5", 0.0)
        self.book.extra["best_test_acc_top5"] = self.best_test_acc_top5
