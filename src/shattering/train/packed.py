"""Many runs at once: runs of a sweep that share an MLP architecture, data and schedule (corruption levels,
seeds of Section 2.1's experiments) trained together as one packed model, exactly K independent runs.

Each member keeps everything a separate run has: its own initialization (from its seed), batch order (its own
generator), labels, optimizer state and run record; the K weight matrices of a layer are stacked and applied
with one batched matrix product (``baddbmm``), which keeps the cores busy where K small matrix products
leave them idle. Members that see the same images in the same order (one seed, several corruption levels:
Fig. 1b/1c) differ only in labels, so their first layer is one wide product (B, D) @ (D, K*out), and so is
evaluation (every member sees the same images); the pack holds one copy of the images for all members.
In fp32 a packed run produces the same metrics as the separate run: bit for bit at the
paper's batch size on the CPU tested (a batched product of one model can round differently from one of
several for a few small batch sizes, so in general equal up to float rounding); a member computes the same
numbers however many others share its pack, so a resumed pack equals an uninterrupted one. Its checkpoint is
written in the separate run's format (:mod:`shattering.train.checkpoint`), so either can resume the other.

This module is the packed training only: the model, the packed epoch, its measurement and the pack's loop,
which yields each member's summary when it is done (fit, out of budget, diverged) and drops it from the
pack. Which runs share a pack, and opening, locking and summarizing their records, is scheduling
(:mod:`shattering.executors.packing`). Why a lone run is not a pack of one: see
:mod:`shattering.train.trainer`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import RunConfig
from ..data.dataset import ImageData
from ..devices import autocast, prepare_device, resolve_device
from ..faults import TIMING
from ..models.batched_linear import batched_linear
from ..optimizers import (
    Unpackable,
    build_optimizer,
    member_state,
    model_groups,
    param_groups,
    run_optimizer,
    select_state,
    stack_state,
)
from ..probes import Probe, ProbeSet, RunState
from ..tuning import seconds_per_call
from .book import Record, RunBook
from .checkpoint import checkpoint_state, restore_checkpoint
from .evaluate import clear_margin, fit_probe, in_doubt, metrics_from_predictions, probe, signed_margin
from .in_memory import device_tensors
from .progress import EpochProgress
from .schedule import lr_at
from .trainer import EpochResult, epoch_tally, init_model, run_probes, running_metrics


class PackedMLP(nn.Module):
    """K MLPs of one architecture as one module: layer l holds weights (K, out, in) and biases (K, out)."""

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        layers = [[m for m in member.modules() if isinstance(m, nn.Linear)] for member in members]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([ls[i].weight.detach() for ls in layers]).clone()) for i in range(len(layers[0])))
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([ls[i].bias.detach() for ls in layers]).clone()) for i in range(len(layers[0])))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (K, B, D) flattened images, one batch per member, or (B, D) one batch every member sees; returns
        logits (K, B, classes) (:func:`packed_forward`)."""
        return packed_forward(list(self.weights), list(self.biases), x)

    def select(self, keep: list[int]) -> None:
        """Keep only members ``keep`` (their parameters; the caller slices optimizer state alike)."""
        for plist in (self.weights, self.biases):
            for p in plist:
                p.data = p.data[keep].contiguous()


def shared_input_kernel(device: torch.device) -> str:
    """How the first layer of a pack applies K members to one shared batch: ``"wide"``, one (B, D) @ (D, K*out)
    matrix product, or ``"batched"``, the batch repeated K times through ``baddbmm``. Both compute the same
    function (equal up to float rounding). The default is ``"wide"`` on every device: it measured faster where
    compared (bench/RESULTS.md) and gathers each batch once instead of K times. ``bench/bench.py --only kernels``
    measures both on the machine at hand."""
    return "wide"


def wide_first_layer(weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The first layer of K members on one batch x (B, D) as ONE matrix product (B, D) @ (D, K*out): the K weight
    matrices, stacked, are one wide matrix, and the backward's weight gradient is one product too (x^T @ grad,
    (D, B) @ (B, K*out)). Returns the hidden layer (K, B, out), activated if not the last layer."""
    w, b = weights[0], biases[0]
    k, out = w.shape[0], w.shape[1]
    h = F.linear(x, w.reshape(k * out, -1), b.reshape(k * out)).view(x.shape[0], k, out).transpose(0, 1)
    return torch.relu(h) if len(weights) > 1 else h


def packed_forward(weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The packed MLP of layer weights (K, out, in) and biases (K, out) on x: (K, B, D), one batch per member, or
    (B, D), one batch every member sees (members sharing a seed, and evaluation); logits (K, B, classes)."""
    start = 0
    if x.dim() == 2:
        if shared_input_kernel(x.device) == "wide":
            x, start = wide_first_layer(weights, biases, x), 1
        else:
            x = x.unsqueeze(0).expand(weights[0].shape[0], -1, -1)
    alone = x.shape[0] == 1
    last = len(weights) - 1
    for i in range(start, last + 1):
        w, b = weights[i], biases[i]
        if alone:
            # A batch of one model takes another kernel than a batch of two or more, which rounds
            # differently for some batch sizes: pad with a detached copy so that a member computes the same
            # numbers however many others share its pack (and a resumed pack equals an uninterrupted one).
            w, b = torch.cat([w, w.detach()]), torch.cat([b, b.detach()])
            x = torch.cat([x, x.detach()]) if x.shape[0] == 1 else x
        x = batched_linear(x, w, b.unsqueeze(1))  # (K, B, out) = b + x @ W^T per member
        if i < last:
            x = torch.relu(x)
    return x[:1] if alone else x


@dataclass
class Member:
    """One run of a pack: its config, book, its own model and optimizer (in a separate run's form, for its
    checkpoints and probes), generator and data tensors, the global RNG state a separate run would hold, its data
    and its probes."""

    cfg: RunConfig
    book: RunBook
    model: nn.Module  # the member as a separate run would build it (for checkpoints in that format)
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    tensors: dict
    torch_rng: torch.Tensor
    data: ImageData
    probes: ProbeSet  # the run's own probes (:mod:`shattering.probes`)
    resumed: bool


def _member_params(model: nn.Module) -> list[nn.Parameter]:
    """The member's parameters in the packed order: weight of layer 0, 1, ..., then bias of layer 0, 1, ..."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return [lin.weight for lin in linears] + [lin.bias for lin in linears]


def _packed_params(packed: PackedMLP) -> list[nn.Parameter]:
    return list(packed.weights) + list(packed.biases)


def open_member(cfg: RunConfig, data: ImageData, record: Record, images: Member | None = None) -> Member:
    """A member of a pack, resumed from the newest intact checkpoint in ``record`` (or starting, its config
    written). ``images``: a member of the same pack whose training and test images (equal to ``data``'s, the
    caller checks) this one shares: members keep their own labels but one copy of the images (at CIFAR size
    about 470 MB a copy)."""
    device = resolve_device(cfg.device)
    book = RunBook(cfg, data, record)
    model = init_model(cfg, data).to(device)
    optimizer = run_optimizer(cfg, model_groups(model, cfg.weight_decay), device)
    generator = torch.Generator().manual_seed(cfg.seed)
    torch_rng = torch.Generator().manual_seed(cfg.seed).get_state()  # the global RNG a separate run would hold
    state = book.open()
    if state is None:
        book.write_config()
    else:
        restore_checkpoint(state, model, optimizer, generator)
        torch_rng = state["torch_rng"]
    shared = None if images is None else {key: images.tensors[key] for key in ("x_train", "x_test")}
    return Member(cfg, book, model, optimizer, generator, device_tensors(data, device, images=shared), torch_rng,
                  data, run_probes(cfg), state is not None)


def train_pack(members: list[Member], progress: bool = False,
               hooks: Sequence[Probe] = ()) -> Iterator[tuple[Member, dict, float]]:
    """Train ``members`` (all at the same epoch) together; yield ``(member, summary, seconds)`` as each one
    ends, before the next is booked: the caller writes the summary. A member's ``seconds`` (and its summary's,
    and ``fit_seconds``) are its share of the pack's time: each epoch's training time divided by the members
    alive in it, and its evaluation time by the members evaluated or probed in it, summed; the pack's wall time
    until the member ended is its summary's ``packed.pack_seconds``. ``progress``: show the pack's epochs
    (:class:`~shattering.train.progress.EpochProgress`). Each member's probes are called at its epochs with its
    network as a separate module; ``hooks``: the pack's own step hooks (the core lease)."""
    cfg0 = members[0].cfg
    device = resolve_device(cfg0.device)
    for m in [m for m in members if m.book.done]:  # resumed after its last epoch (killed before its summary)
        yield m, m.book.summary(m.book.final_status(), str(device)), 0.0
    members = [m for m in members if not m.book.done]
    if not members:
        return
    prepare_device(device)
    packed = PackedMLP([m.model for m in members]).to(device)
    params = _packed_params(packed)
    n_layers = len(packed.weights)
    optimizer = run_optimizer(cfg0, param_groups(params[:n_layers], params[n_layers:], cfg0.weight_decay), device)
    try:  # each member's state as a separate run holds it (after a resume), stacked
        stack_state(optimizer, params, [[m.optimizer.state.get(q, {}) for q in _member_params(m.model)]
                                        for m in members])
    except Unpackable as exc:  # the executor packs only members at one epoch of one config: a bug if reached
        raise RuntimeError(f"the pack of {cfg0.model} cannot hold its members' optimizer states: {exc}") from None
    x_train = members[0].tensors["x_train"].flatten(1)  # (N, D), shared by every member
    x_test = members[0].tensors["x_test"].flatten(1)
    for m in members:
        m.book.extra["packed"] = {"members": len(members), "run_ids": [o.cfg.run_id() for o in members]}
    start = time.perf_counter()
    shown = EpochProgress(f"pack of {len(members)} {cfg0.dataset} {cfg0.model}", cfg0.epochs,
                          initial=members[0].book.epoch, enabled=progress)
    for m in members:
        if m.resumed:
            m.probes.resume(_probe_state(m, m.book.epoch, None, {}, None, device))
        else:
            m.probes.epoch_end(lambda m=m: _probe_state(m, 0, None, {}, None, device), 0, False)
    step_hooks = [h.on_step_end for h in hooks] + [h for m in members for h in m.probes.step_hooks]
    try:
        yield from _train_packed(packed, optimizer, params, members, x_train, x_test, start, shown, step_hooks)
    finally:
        shown.close()
        for m in members:
            m.probes.close()


def _probe_state(m: Member, epoch: int, metrics: dict | None, running: dict, status: str | None,
                 device: torch.device) -> RunState:
    return RunState(m.cfg, m.model, epoch, m.data, m.book.record.dir, metrics, running, status, device)


def _copy_member(m: Member, packed: PackedMLP, k: int) -> None:
    """Member ``k``'s weights from the pack into its separate network ``m.model``."""
    with torch.no_grad():
        for mine, p in zip(_member_params(m.model), _packed_params(packed), strict=True):
            mine.copy_(p[k])


def _train_packed(packed: PackedMLP, optimizer: torch.optim.Optimizer, params: list, members: list[Member],
                  x_train: torch.Tensor, x_test: torch.Tensor, start: float, shown: EpochProgress,
                  step_hooks: list) -> Iterator[tuple[Member, dict, float]]:
    """The epochs of :func:`train_pack`, until every member has ended."""
    cfg0 = members[0].cfg
    device = resolve_device(cfg0.device)
    while members:
        epoch = members[0].book.epoch
        lr = lr_at(cfg0, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        t0 = time.perf_counter()
        result = train_epoch(packed, optimizer, members, x_train, lr, step_hooks)
        rows, diverged, running, wrong, losses = (result.rows, result.diverged, result.running, result.wrong,
                                                  result.losses)
        t1 = time.perf_counter()
        # each member is evaluated at the epochs it would be alone (its own schedule and fit probe)
        chosen = [k for k, m in enumerate(members) if m.book.needs_evaluation(running[k], diverged[k])]
        probed = [k for k, m in enumerate(members) if k not in chosen and m.book.fit_at is None]
        for k, probed_k in zip(probed, _clear_errors(packed, probed, x_train, members, wrong, losses), strict=True):
            running[k] |= probed_k
            if probed_k["fit_probe_wrong"] == 0:
                chosen.append(k)
        chosen.sort()
        metrics: list[dict | None] = [None] * len(members)
        for k, row in zip(chosen, measure_pack(packed, members, x_train, x_test, cfg0, chosen), strict=True):
            metrics[k] = row
        t2 = time.perf_counter()
        keep, alive = [], len(members)
        measured = sum(1 for k in range(alive) if metrics[k] is not None or k in probed)
        for k, m in enumerate(members):  # each member books its share of the epoch's training and evaluation
            evaluated = metrics[k] is not None or k in probed
            status = m.book.end_epoch(lr, metrics[k], running[k], rows[k], (t1 - t0) / alive,
                                      (t2 - t1) / measured if evaluated else 0.0, diverged[k])
            m.book.checkpoint(lambda m=m, k=k: _save_member(m, packed, optimizer, k), status is not None)
            if m.probes.wanted(m.book.epoch, status is not None):
                _copy_member(m, packed, k)
                state = _probe_state(m, m.book.epoch, metrics[k], running[k], status, device)
                m.probes.epoch_end(lambda state=state: state, m.book.epoch, status is not None)
            if status is None:
                keep.append(k)
            else:
                m.book.extra["packed"]["pack_seconds"] = time.perf_counter() - start  # the pack's wall time so far
                yield m, m.book.summary(status, str(device)), m.book.seconds
        accs = [100 * r["running_train_acc"] for r in running]
        shown.update(epoch + 1, f"{len(keep)} of {len(members)} still training; running train {min(accs):.1f}-"
                                f"{max(accs):.1f}%, {len(chosen)} evaluated", last=not keep)
        if len(keep) < len(members):
            packed.select(keep)
            select_state(optimizer, params, keep)
            members = [members[k] for k in keep]


def train_epoch(packed: PackedMLP, optimizer: torch.optim.Optimizer, members: list[Member], x_train: torch.Tensor,
                lr: float, step_hooks: Sequence = ()) -> EpochResult:
    """One epoch of every member: each its own batch order and labels, one batched step for all; returns each
    member's :class:`~shattering.train.trainer.EpochResult` numbers (lists of K, (K, N) tensors; the running
    ones counted on the device: one read at the epoch's end). ``step_hooks``: called after every step. Members
    that share a seed (the corruption levels of one seed in Fig. 1b/1c) draw the same order, so they see the
    same images in every batch and differ only in labels: then the batch is gathered once and the first layer
    is one wide product (:func:`wide_first_layer`); the check is made every epoch, so a pack of several seeds
    takes the batched path."""
    cfg0 = members[0].cfg
    k, n = len(members), x_train.shape[0]
    device = x_train.device
    orders = torch.stack([torch.randperm(n, generator=m.generator) for m in members]).to(device)  # (K, N)
    shared = bool((orders == orders[:1]).all())  # every member sees the same images in the same order
    labels = torch.stack([m.tensors["y_train"] for m in members])  # (K, N)
    rows: list[list] = [[] for _ in members]
    diverged = [False] * k
    running = torch.zeros(k, device=device)
    count = 0
    seen = 0  # examples per member: the running numbers are read from ``wrong`` and ``seen_losses`` at the end
    wrong = torch.zeros(k, n, dtype=torch.bool, device=device)
    seen_losses = torch.zeros(k, n, device=device)
    first = None  # each member's loss at the run's very first step, where this epoch holds it
    packed.train()
    for start in range(0, n, cfg0.batch_size):
        idx = orders[:, start:start + cfg0.batch_size]  # (K, B)
        xb = x_train[idx[0]] if shared else x_train[idx]  # (B, D) shared by every member, or (K, B, D)
        yb = labels.gather(1, idx)
        with autocast(device, cfg0.precision):
            logits = packed(xb)
        b = idx.shape[1]
        per_example = F.cross_entropy(logits.float().reshape(k * b, -1), yb.reshape(-1), reduction="none")
        loss = per_example.view(k, b).mean(dim=1)  # each member's mean over its batch
        if first is None and members[0].book.steps == 0:  # the members as initialized (see the single trainer)
            first = loss.detach().double()
        wrong.scatter_(1, idx, logits.detach().argmax(dim=2) != yb)
        seen_losses.scatter_(1, idx, per_example.detach().view(k, b))
        seen += b
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()  # members share no parameter: each gets the gradient of its own loss
        optimizer.step()
        for hook in step_hooks:  # the probes' step hooks (the core lease: a clock read)
            hook()
        running += loss.detach()
        count += 1
        for m in members:
            m.book.steps += 1
        steps = members[0].book.steps
        if steps % cfg0.log_every == 0:
            values = (running / count).tolist()
            for j, m in enumerate(members):
                rows[j].append((steps, m.book.epoch + 1, values[j], lr))
                diverged[j] = diverged[j] or not math.isfinite(values[j])
            running.zero_()
            count = 0
    errors, losses = epoch_tally(wrong, seen_losses)
    if first is not None:  # read with the epoch's numbers (no extra host read)
        errors, losses, firsts = torch.stack([errors, losses, first]).tolist()
        for m, value in zip(members, firsts, strict=True):
            m.book.first_loss = value
    else:
        errors, losses = torch.stack([errors, losses]).tolist()
    running = [running_metrics(seen - e, s, seen) for e, s in zip(errors, losses, strict=True)]
    return EpochResult(rows, diverged, running, wrong, seen_losses)


def packed_step_seconds(model: nn.Module, k: int, input_shape: Sequence[int], num_classes: int, batch_size: int,
                        precision: str, shared: bool) -> float:
    """Seconds per training step of ``k`` copies of ``model`` as one :class:`PackedMLP`, on random inputs on the
    CPU at this process's threads: :func:`train_epoch`'s step (one batch every member sees where ``shared``, else
    one per member; the members' losses summed; backward; an SGD step: the products decide the pack size, an
    optimizer's element-wise update is a small share). The global random state is left as it was. What a sweep
    weighs to choose its pack size (:func:`shattering.executors.packing.choose_pack_size`)."""
    cpu = torch.device("cpu")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        packed = PackedMLP([model] * k).train()
        optimizer = build_optimizer("sgd", model_groups(packed, 0.0), lr=1e-3, device=cpu)
        setattr(optimizer, TIMING, True)  # a fault counter sees only the run's own steps
        d = math.prod(input_shape)
        x = torch.randn(batch_size, d) if shared else torch.randn(k, batch_size, d)
        y = torch.randint(0, num_classes, (k * batch_size,))

        def step() -> None:
            with autocast(cpu, precision):
                logits = packed(x)
            per_example = F.cross_entropy(logits.float().reshape(k * batch_size, -1), y, reduction="none")
            optimizer.zero_grad(set_to_none=True)
            per_example.view(k, batch_size).mean(dim=1).sum().backward()
            optimizer.step()

        return seconds_per_call(step)


@torch.no_grad()
def _predict(packed: PackedMLP, chosen: list[int], x: torch.Tensor, labels: torch.Tensor, cfg0: RunConfig,
             precision: str):
    """Per-example losses, predictions and :func:`~shattering.train.evaluate.in_doubt` of members ``chosen``:
    (K', N) each (a member's numbers do not depend on which others are computed with it,
    :func:`packed_forward`)."""
    losses, preds, doubts = [], [], []
    k = labels.shape[0]
    every = chosen == list(range(len(packed.weights[0])))
    weights = list(packed.weights) if every else [w[chosen] for w in packed.weights]
    biases = list(packed.biases) if every else [b[chosen] for b in packed.biases]
    for start in range(0, x.shape[0], cfg0.eval_batch_size):
        xb = x[start:start + cfg0.eval_batch_size]
        with autocast(x.device, precision):
            logits = packed_forward(weights, biases, xb).float()  # (K', B, C): one batch every member sees
        yb = labels[:, start:start + cfg0.eval_batch_size]
        losses.append(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb.reshape(-1),
                                      reduction="none").view(k, -1))
        preds.append(logits.argmax(dim=2))
        doubts.append(in_doubt(logits, yb) if precision != "fp32" else torch.zeros_like(yb, dtype=torch.bool))
    return torch.cat(losses, 1), torch.cat(preds, 1), torch.cat(doubts, 1)


def _predict_train(packed: PackedMLP, chosen: list[int], x: torch.Tensor, labels: torch.Tensor,
                   cfg0: RunConfig) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """The training set of members ``chosen`` with fit decided in fp32, as a separate run decides it
    (:func:`shattering.train.evaluate.predict_train`): each member's examples in doubt take their fp32 loss and
    prediction. Returns losses, predictions (K', N) and how many each member computed again."""
    loss, pred, doubt = _predict(packed, chosen, x, labels, cfg0, cfg0.precision)
    rows = doubt.any(dim=0).nonzero().squeeze(1)  # the examples any member doubts, computed once for all
    if rows.numel():
        again_loss, again_pred, _ = _predict(packed, chosen, x[rows], labels[:, rows], cfg0, "fp32")
        mask = doubt[:, rows]
        loss[:, rows] = torch.where(mask, again_loss, loss[:, rows])
        pred[:, rows] = torch.where(mask, again_pred, pred[:, rows])
    return loss, pred, doubt.sum(dim=1).tolist()


@torch.no_grad()
def _clear_errors(packed: PackedMLP, probed: list[int], x: torch.Tensor, members: list[Member],
                  wrong: torch.Tensor, losses: torch.Tensor) -> list[dict]:
    """The fit probe of members ``probed`` (:func:`shattering.train.evaluate.fit_probe`'s row for each), as a separate
    run counts it (:func:`shattering.train.evaluate.clear_errors`: its own suspects, ``wrong[k]``, in the same
    chunks, stopping at the first chunk with a clear error; where none is, the others, the largest training loss
    first, in the run's precision: :func:`shattering.train.evaluate.clear_errors_rest`). Members are probed one
    at a time, the packed weights of one member padded as a pack of one (:func:`packed_forward`), so the numbers
    do not depend on the pack."""
    out = []
    if probed:
        packed.eval()
    size = members[0].cfg.eval_batch_size
    for k in probed:
        y = members[k].tensors["y_train"]
        weights, biases = [w[k:k + 1] for w in packed.weights], [b[k:k + 1] for b in packed.biases]

        def logits_of(rows, weights=weights, biases=biases):
            return packed_forward(weights, biases, x[rows].unsqueeze(0))[0]

        def suspects(idx, logits_of=logits_of, y=y):
            return probe(lambda rows: signed_margin(logits_of(rows).float(), y[rows]), idx, size)

        def rest(idx, logits_of=logits_of, y=y, precision=members[k].cfg.precision):
            def margins_of(rows):
                with autocast(x.device, precision):
                    logits = logits_of(rows)
                return clear_margin(logits.float(), y[rows], precision)

            return probe(margins_of, idx, size)

        out.append(fit_probe(suspects, rest, wrong[k], losses[k]))
    return out


def measure_pack(packed: PackedMLP, members: list[Member], x_train: torch.Tensor, x_test: torch.Tensor,
                 cfg0: RunConfig, chosen: list[int] | None = None) -> list[dict]:
    """The per-epoch metrics (:func:`shattering.train.evaluate.metrics_from_predictions`) of members ``chosen``
    (default: all), in that order; fit decided in fp32 (:func:`_predict_train`), the test set in the run's
    precision."""
    chosen = list(range(len(members))) if chosen is None else chosen
    if not chosen:
        return []
    mine = [members[k] for k in chosen]
    packed.eval()
    loss, pred, checked = _predict_train(packed, chosen, x_train, torch.stack([m.tensors["y_train"] for m in mine]),
                                         cfg0)
    test_loss, test_pred, _ = _predict(packed, chosen, x_test,
                                       torch.stack([m.tensors["y_test_clean"] for m in mine]), cfg0, cfg0.precision)
    return [metrics_from_predictions(loss[j], pred[j], test_loss[j], test_pred[j], m.tensors)
            | {"train_fp32_checked": checked[j]} for j, m in enumerate(mine)]


def _save_member(m: Member, packed: PackedMLP, optimizer: torch.optim.Optimizer, k: int) -> None:
    """Write member ``k``'s checkpoint in a separate run's format."""
    params = _packed_params(packed)
    _copy_member(m, packed, k)
    m.optimizer.state.clear()
    for mine, p in zip(_member_params(m.model), params, strict=True):
        state = member_state(optimizer, p, k)
        if state:
            m.optimizer.state[mine] = state
    for group in m.optimizer.param_groups:
        group["lr"] = optimizer.param_groups[0]["lr"]
    m.book.record.save_checkpoint(checkpoint_state(m.book, m.model, m.optimizer, m.generator, m.torch_rng, None))

