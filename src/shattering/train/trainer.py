"""The trainer of one run: the paper's procedure (Section 2.1 of Zhang et al., ICLR 2017, and its Appendix
A), epoch after epoch, measured honestly and booked.

SGD with momentum 0.9, batch 128, initial learning rate 0.1 (Inceptions) or 0.01 (others), multiplied by
``lr_decay`` after every epoch, no explicit regularization unless switched on. Fit is 100% accuracy of the whole
training set re-evaluated in eval mode, decided on fp32 logits (:mod:`shattering.train.evaluate`). That pass (and
the test set's) runs every ``eval_every`` epochs, at the budget's last epoch, and at every epoch the fit probe
cannot rule out fit: the examples the training pass got wrong (marked for free from the batch logits) are re-
evaluated, and one still clearly wrong proves the epoch did not fit; where all of them are right now, the others
are, the largest training-pass loss first, in the run's precision
(:func:`shattering.train.evaluate.clear_errors_rest`; :meth:`shattering.train.book.RunBook.needs_evaluation`). So
the fit epoch is exactly the one evaluating every epoch finds. ``until="fit"`` stops at 100% training accuracy or
at the epoch budget, and the summary says which, with numbers.

:class:`Trainer` is the loop, the loss, the optimizer and the checkpoint; where batches come from and how an
epoch is measured are its subclasses': :class:`~shattering.train.in_memory.InMemoryTrainer` (the data set
held as tensors on the training device) and :class:`~shattering.train.stream.StreamTrainer` (ImageNet,
streamed from disk). The runs layer picks one (:func:`shattering.runs.trainer_class`). Under torchrun several
processes train one run (:mod:`shattering.train.distributed`: each takes a shard of every batch; process 0
writes).

Why a single run is not a pack of one: the packed loop (:mod:`shattering.train.packed`) stacks K MLPs into
batched matrix products and exists only for them. Convolutional models are never packed (grouped
convolutions measured slower than separate runs, bench/RESULTS.md), and a lone run also trains under
torchrun, on streamed data, with augmentation, dropout and Inception V3's auxiliary head, none of which a
pack takes. So there are two epoch loops, but one book (:class:`~shattering.train.book.RunBook`: counters,
fit, records, summary), one schedule and one checkpoint format (:mod:`shattering.train.checkpoint`).
"""

from __future__ import annotations

import abc
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import RunConfig
from ..data.dataset import LabelledSplits
from ..devices import autocast, optimizer_options, prepare_device, resolve_device
from ..models import build_model
from ..optimizers import model_groups, run_optimizer
from ..probes import Probe, ProbeSet, RunState, build_probes, probe_specs
from .book import Record, RunBook, run_label
from .checkpoint import checkpoint_state, restore_checkpoint
from .distributed import DistContext
from .evaluate import fit_probe
from .progress import EpochProgress, epoch_text
from .schedule import lr_at

AUX_LOSS_WEIGHT = 0.4  # Inception V3's auxiliary classifier, when on (TF and torchvision recipes) [I]


def init_model(cfg: RunConfig, data: LabelledSplits) -> torch.nn.Module:
    """The model of ``cfg``, initialized from ``cfg.seed`` alone (PyTorch's default initialization)."""
    options = {"aux_logits": True} if cfg.aux_logits else {}
    options.update(cfg.model_kwargs())  # a user model's factory arguments (--model-arg key=value)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return build_model(cfg.model, data.shape, data.num_classes, cfg.dropout, **options)


@dataclass
class EpochResult:
    """What one training epoch leaves: ``rows`` (the loss log's (step, epoch, loss, lr) rows), ``diverged`` (a
    logged loss was not finite), ``running`` (:func:`running_metrics`), ``wrong`` (which examples the training
    pass got wrong: a bool per example, on the device, the fit probe's suspects) and ``losses`` (each example's
    loss as the pass saw it: the order of the fit probe's second part, :func:`shattering.train.evaluate.
    fit_probe`). The packed trainer's holds one of each per member (lists, and (K, N) tensors)."""

    rows: list
    diverged: bool | list[bool]
    running: dict | list[dict]
    wrong: torch.Tensor
    losses: torch.Tensor


def run_probes(cfg: RunConfig, extra: Sequence[Probe] = ()) -> ProbeSet:
    """The probes of run ``cfg`` (its ``probes`` setting, :mod:`shattering.probes`) and ``extra`` ones (the
    caller's: the core lease's step hook), with the run's epoch budget."""
    return ProbeSet([*build_probes(probe_specs(cfg.probes)), *extra], cfg.epochs)


def epoch_tally(wrong: torch.Tensor, losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The running numbers' sums over the epoch's training pass, per member of the last axis: examples the pass
    got wrong, and its loss sum (float64), read at the epoch's end from ``wrong`` and ``losses`` (an example
    not seen is neither wrong nor costs anything), not added up step by step: five small operations fewer per
    step (bench/RESULTS.md, "step profile")."""
    return wrong.sum(dim=-1, dtype=torch.float64).reshape(-1), losses.double().sum(dim=-1).reshape(-1)


def running_metrics(correct: float, loss_sum: float, examples: float) -> dict:
    """The running training accuracy and loss of an epoch: every batch scored by the model that stepped on it,
    just before its step, in train mode (so it lags the eval-mode accuracy at the epoch's end; never a fit)."""
    n = max(examples, 1.0)
    return {"running_train_acc": correct / n, "running_train_loss": loss_sum / n}


class Trainer(abc.ABC):
    """One run being trained: model, optimizer and random generator; the :class:`RunBook` keeps the rest.

    ``net`` is the model; ``model`` is what the loop calls (``net`` itself, or ``net`` wrapped for data
    parallelism under torchrun, ``dist``). ``hooks``: probes the caller adds to the run's own
    (:mod:`shattering.probes`; the runs layer's core lease acts after every step through one). Subclasses say
    where the data live (:meth:`_setup_data`), where batches come from (:meth:`_batches`) and how an epoch is
    measured (:meth:`_measure`)."""

    def __init__(self, cfg: RunConfig, data: LabelledSplits, record: Record, progress: bool,
                 dist: DistContext | None = None, hooks: Sequence[Probe] = ()):
        self.cfg, self.data, self.progress, self.dist = cfg, data, progress, dist
        self.probes = run_probes(cfg, hooks)  # the run's probes, and ``hooks``: the caller's step hooks
        self.book = RunBook(cfg, data, record, progress)
        self.device = dist.device if dist is not None else resolve_device(cfg.device)
        prepare_device(self.device)
        net = init_model(cfg, data)
        # channels_last for a network with 2-D convolutions unless the layout measured (or given) is contiguous
        self.memory_format = (torch.channels_last if cfg.layout != "contiguous" and any(
            isinstance(m, torch.nn.Conv2d) for m in net.modules()) else torch.contiguous_format)
        self.net = net.to(self.device, memory_format=self.memory_format)
        self.model = self.net if dist is None else dist.wrap(self.net, cfg.sync_bn)
        if cfg.compile == "on" and dist is None:  # the training step only: evaluation and probes use ``net``
            self.model = torch.compile(self.net)
        self.optimizer = run_optimizer(cfg, model_groups(self.net, cfg.weight_decay), self.device)
        self.generator = torch.Generator().manual_seed(cfg.seed)  # batch order and augmentation
        self._setup_data()

    # -- what subclasses provide ---------------------------------------------------------------------
    @abc.abstractmethod
    def _setup_data(self) -> None:
        """Prepare the data for :meth:`_batches` and :meth:`_measure` (called once, at the end of __init__)."""

    @abc.abstractmethod
    def _batches(self, order: torch.Tensor) -> Iterator[tuple[torch.Tensor, torch.Tensor, float | None]]:
        """The epoch's training batches in ``order``: ``(images, labels, scale, indices)``; ``scale`` is None
        alone, else the factor on this process's summed loss
        (:meth:`shattering.train.distributed.DistContext.shard`); ``indices``: the examples' positions in the
        training set, on the device."""

    @abc.abstractmethod
    def _measure(self) -> dict:
        """The epoch's metrics (:func:`shattering.train.evaluate.metrics_from_predictions` and more)."""

    @abc.abstractmethod
    def _clear_errors(self, idx: torch.Tensor) -> tuple[int, int]:
        """The fit probe over training examples ``idx`` (on the device): (checked, clearly wrong in eval mode,
        fp32) as :func:`shattering.train.evaluate.clear_errors` counts them; the same on every process."""

    def _clear_errors_rest(self, idx: torch.Tensor) -> tuple[int, int]:
        """The fit probe's second part, over the examples the training pass got right, ``idx`` (largest
        training loss first): (checked, clearly wrong) as :func:`shattering.train.evaluate.clear_errors_rest`
        counts them. By default (0, 0): nothing ruled out, so the full pass decides."""
        return 0, 0

    # -- checkpoints ---------------------------------------------------------------------------------
    def state(self) -> dict:
        """The checkpoint; of the GPUs' random states only the run's own device's (a run checkpointed on an
        8-GPU node resumes where fewer are visible)."""
        return checkpoint_state(self.book, self.net, self.optimizer, self.generator, torch.get_rng_state(),
                                torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None)

    def restore(self, state: dict) -> None:
        restore_checkpoint(state, self.net, self.optimizer, self.generator)
        fused = optimizer_options(self.device).get("fused")
        for group in self.optimizer.param_groups:  # the checkpoint's groups say fused where it was written
            group["fused"] = fused
        torch.set_rng_state(state["torch_rng"])
        cuda_rng = state.get("cuda_rng")
        if cuda_rng is None or self.device.type != "cuda":
            return
        if isinstance(cuda_rng, (list, tuple)):  # older checkpoints hold every visible GPU's state
            index = self.device.index if self.device.index is not None else torch.cuda.current_device()
            if index >= len(cuda_rng):
                note = (f"the checkpoint holds the random states of {len(cuda_rng)} GPU(s), not of GPU {index} "
                        "this run resumes on; its dropout draws continue from a fresh state")
                self.book.warnings.append(note)
                self.book.log(f"shattering: {note}")
                return
            cuda_rng = cuda_rng[index]
        torch.cuda.set_rng_state(cuda_rng, self.device)

    # -- the loop ------------------------------------------------------------------------------------
    def train(self) -> dict:
        """Train to the end (resuming from the newest intact checkpoint) and return the run's summary; the
        caller writes it."""
        book, cfg = self.book, self.cfg
        state = book.open()
        if self.dist is not None:  # process 0 read the checkpoint (the others' record reads nothing)
            state = self.dist.broadcast(state)
            if state is not None and not self.dist.is_main:
                book.restore_counters(state)
        if state is not None:
            self.restore(state)
        desc = run_label(cfg)
        status = None
        try:
            self._probe_start(resumed=state is not None)
            with EpochProgress(desc, cfg.epochs, initial=book.epoch, enabled=self.progress) as progress:
                while status is None and not book.done:
                    lr = lr_at(cfg, book.epoch)
                    for group in self.optimizer.param_groups:
                        group["lr"] = lr
                    t0 = time.perf_counter()
                    epoch = self._train_epoch(lr)
                    t1 = time.perf_counter()
                    running = epoch.running
                    evaluate = book.needs_evaluation(running, epoch.diverged)
                    if not evaluate and book.fit_at is None:  # the fit probe: the full pass only if it may fit
                        running |= fit_probe(self._clear_errors, self._clear_errors_rest, epoch.wrong, epoch.losses)
                        evaluate = running["fit_probe_wrong"] == 0
                    metrics = self._measure() if evaluate else None
                    status = book.end_epoch(lr, metrics, running, epoch.rows, t1 - t0, time.perf_counter() - t1,
                                            epoch.diverged)
                    book.checkpoint(lambda: book.record.save_checkpoint(self.state()), status is not None)
                    self._run_probes(book.epoch, metrics, running, status)
                    progress.update(book.epoch, epoch_text(metrics or running), last=status is not None)
        finally:
            self.probes.close()
        if self.dist is not None:
            book.extra["distributed"] = self.dist.describe()
        return book.summary(status or book.final_status(), str(self.device))

    # -- probes ----------------------------------------------------------------------------------------
    def _probe_state(self, epoch: int, metrics: dict | None, running: dict, status: str | None) -> RunState:
        return RunState(self.cfg, self.net, epoch, self.data, self.book.record.dir, metrics, running, status,
                        self.device)

    def _probe_start(self, resumed: bool) -> None:
        """Epoch 0 (the network as initialized) for a run that starts; a resumed one tells its probes where."""
        if self.dist is not None and not self.dist.is_main:
            return
        if resumed:
            self.probes.resume(self._probe_state(self.book.epoch, None, {}, None))
        else:
            self.probes.epoch_end(lambda: self._probe_state(0, None, {}, None), 0, False)

    def _run_probes(self, epoch: int, metrics: dict | None, running: dict, status: str | None) -> None:
        """The probes that asked for ``epoch`` (process 0 alone under torchrun)."""
        if self.dist is None or self.dist.is_main:
            self.probes.epoch_end(lambda: self._probe_state(epoch, metrics, running, status), epoch,
                                  status is not None)

    def _loss(self, out, yb: torch.Tensor, scale: float | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss to step on, and the per-example losses of the main head (what the running loss sums)."""
        logits, aux = out if isinstance(out, tuple) else (out, None)  # Inception V3's auxiliary head in training
        main = F.cross_entropy(logits.float(), yb, reduction="none")
        per_example = main
        if aux is not None:
            per_example = per_example + AUX_LOSS_WEIGHT * F.cross_entropy(aux.float(), yb, reduction="none")
        if scale is None:
            return per_example.mean(), main  # per-example losses, then the mean: the reduction a packed run uses
        return per_example.sum() * scale, main  # DDP averages over processes: the mean over the global batch

    def _logged_loss(self, running: torch.Tensor, count: int) -> float:
        if self.dist is None:
            return float(running) / count
        return float(self.dist.sum(running)) / (self.dist.world_size * count)

    def _train_epoch(self, lr: float) -> EpochResult:
        """One epoch of training at learning rate ``lr`` (:class:`EpochResult`; the running numbers count each
        batch as the model saw it just before its step)."""
        cfg, book = self.cfg, self.book
        hooks = self.probes.step_hooks
        self.model.train()
        order = torch.randperm(self.data.n_train, generator=self.generator)
        rows, diverged = [], False
        running, count = torch.zeros((), device=self.device), 0
        first = None  # the loss of the run's very first step, where this epoch holds it
        seen = 0  # examples counted: the running numbers are read from ``wrong`` and ``losses`` at the end
        wrong = torch.zeros(self.data.n_train, dtype=torch.bool, device=self.device)
        losses = torch.zeros(self.data.n_train, device=self.device)  # each example's loss as the pass saw it
        for xb, yb, scale, ib in self._batches(order):
            with autocast(self.device, cfg.precision):
                out = self.model(xb)
            loss, per_example = self._loss(out, yb, scale)
            if book.steps == 0:  # the model as initialized: a loss that is not finite here is the model's doing
                first = loss.detach().double().reshape(1)  # read with the epoch's numbers (no extra host read)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            for hook in hooks:  # the probes' step hooks (the core lease: a clock read)
                hook()
            book.steps += 1
            running += loss.detach()
            count += 1
            if scale != 0.0:  # (0: a stand-in example of a process whose shard is empty, not counted)
                logits = (out[0] if isinstance(out, tuple) else out).detach()
                wrong[ib] = logits.argmax(dim=1) != yb
                losses[ib] = per_example.detach()
                seen += len(yb)
            if book.steps % cfg.log_every == 0:
                value = self._logged_loss(running, count)
                rows.append((book.steps, book.epoch + 1, value, lr))
                running.zero_()
                count = 0
                if not math.isfinite(value):
                    diverged = True
                    break
        totals = torch.cat([torch.tensor([float(seen)], dtype=torch.float64, device=self.device),
                            *([first] if first is not None else [])])
        if self.dist is not None:
            totals = self.dist.sum(totals)  # every process books the same numbers (and evaluates alike)
            wrong = self.dist.sum(wrong.to(torch.int32)) > 0
            losses = self.dist.sum(losses)  # the shards are disjoint
        values = torch.cat([totals, *epoch_tally(wrong, losses)]).tolist()  # one host read
        if first is not None:
            book.first_loss = values[1] / (self.dist.world_size if self.dist is not None else 1)
        seen, errors, loss_sum = values[0], values[-2], values[-1]
        return EpochResult(rows, diverged, running_metrics(seen - errors, loss_sum, seen), wrong, losses)
