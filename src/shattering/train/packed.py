"""Many runs at once: runs of a sweep that share an MLP architecture, data and schedule (corruption levels,
seeds) are trained together as one packed model, exactly K independent SGD runs.

Each member keeps everything a separate run has: its own initialization (from its seed), batch order (its own
generator), labels, optimizer state and run record; the K weight matrices of a layer are stacked and applied
with one batched matrix product (``baddbmm``), which keeps the cores busy where K small matrix products
leave them idle. In fp32 a packed run produces the same metrics as the separate run: bit for bit at the
paper's batch size on the CPU tested (a batched product of one model can round differently from one of
several for a few small batch sizes, so in general equal up to float rounding); a member computes the same
numbers however many others share its pack, so a resumed pack equals an uninterrupted one. Its checkpoint is
written in the separate run's format, so either can resume the other. A member that is
done (fit, out of budget, diverged) writes its summary and leaves the pack.

The rule (``pack=None``): MLPs are packed (up to ``MAX_PACK`` runs); the convolutional models run one after
another -- on a 2-core CPU one run already saturates the cores, and grouped convolutions measured slower
than separate runs (bench/RESULTS.md; PyTorch issue #73764 on CUDA). ``pack=1`` turns packing off and
``pack=K`` caps a pack at K runs.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import RunConfig
from ..corruptions import LABEL_CORRUPTIONS
from ..errors import ShatteringError
from ..models import model_info
from ..runs import RunRecord
from .book import RunBook
from .evaluate import metrics_from_predictions
from .loop import device_tensors, init_model, make_data, sgd, streamed
from .precision import autocast, resolve_device
from .schedule import lr_at

MAX_PACK = 16
# Fields that may differ inside a pack (everything else must be equal).
_FREE = ("seed", "data_seed", "corruption", "p", "exclude_true_class", "corrupt_test_labels")


def pack_key(cfg: RunConfig) -> tuple | None:
    """Runs with equal keys can share a pack; None when ``cfg`` cannot be packed."""
    r = cfg.resolved()
    if (not model_info(r.model).packable or r.corruption not in LABEL_CORRUPTIONS or r.dropout > 0 or r.random_crop
            or r.flip_rotate or streamed(r)):  # streamed data (ImageNet) has no tensors to share
        return None
    fields = {k: v for k, v in r.to_dict().items() if k not in _FREE}
    if r.train_size or r.test_size:  # the data seed picks the subset: members must share it
        fields["data_seed"] = r.data_seed
    return tuple(sorted(fields.items()))


def packed_groups(configs: Sequence[RunConfig], pack: int | None = None) -> list[list[RunConfig]]:
    """Split ``configs`` into packs (lists of configs, in order of first appearance)."""
    limit = MAX_PACK if pack is None else int(pack)
    groups: list[list[RunConfig]] = []
    open_group: dict[tuple, list[RunConfig]] = {}
    for cfg in configs:
        key = pack_key(cfg) if limit > 1 else None
        if key is None:
            groups.append([cfg])
            continue
        group = open_group.get(key)
        if group is None or len(group) >= limit:
            group = []
            open_group[key] = group
            groups.append(group)
        group.append(cfg)
    return groups


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
        """x: (K, B, D) flattened images, one batch per member; returns logits (K, B, classes)."""
        alone = x.shape[0] == 1
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if alone:
                # A batch of one model takes another kernel than a batch of two or more, which rounds
                # differently for some batch sizes: pad with a detached copy so that a member computes the same
                # numbers however many others share its pack (and a resumed pack equals an uninterrupted one).
                w, b = torch.cat([w, w.detach()]), torch.cat([b, b.detach()])
                x = torch.cat([x, x.detach()]) if x.shape[0] == 1 else x
            x = torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))  # (K, B, out) = b + x @ W^T per member
            if i < last:
                x = torch.relu(x)
        return x[:1] if alone else x

    def select(self, keep: list[int]) -> None:
        """Keep only members ``keep`` (their parameters; the caller slices optimizer state alike)."""
        for plist in (self.weights, self.biases):
            for p in plist:
                p.data = p.data[keep].contiguous()


@dataclass
class _Member:
    cfg: RunConfig
    book: RunBook
    model: nn.Module  # the member as a separate run would build it (for checkpoints in that format)
    optimizer: torch.optim.SGD
    generator: torch.Generator
    tensors: dict
    torch_rng: torch.Tensor


def _member_params(model: nn.Module) -> list[nn.Parameter]:
    """The member's parameters in the packed order: weight of layer 0, 1, ..., then bias of layer 0, 1, ..."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return [lin.weight for lin in linears] + [lin.bias for lin in linears]


def _packed_params(packed: PackedMLP) -> list[nn.Parameter]:
    return list(packed.weights) + list(packed.biases)


def run_packed_group(configs: Sequence[RunConfig]) -> Iterator:
    """Train the runs of ``configs`` together; yield one :class:`~shattering.sweep.Outcome` per run."""
    from ..sweep import Outcome, run_one

    pending = []
    for cfg in (c.resolved() for c in configs):
        record = RunRecord(cfg.run_dir())
        summary = record.read_summary()
        if summary is not None:
            yield Outcome(cfg, record.dir, summary=summary, skipped=True)
        else:
            pending.append((cfg, record))
    if not pending:
        return
    with contextlib.ExitStack() as locks:
        members, alone = [], []
        x_ref = None
        for cfg, record in pending:
            try:
                locks.enter_context(record.lock())
                summary = record.read_summary()  # another process may have finished it while we looked
                if summary is not None:
                    yield Outcome(cfg, record.dir, summary=summary, skipped=True)
                    continue
                data = make_data(cfg)
            except ShatteringError as exc:
                yield Outcome(cfg, record.dir, error=str(exc))
                continue
            if x_ref is None:
                x_ref = (data.x_train, data.x_test)
            elif not (np.array_equal(x_ref[0], data.x_train) and np.array_equal(x_ref[1], data.x_test)):
                alone.append(cfg)  # other images: cannot share the inputs of the pack
                continue
            members.append(_open_member(cfg, data, record))
        by_epoch: dict[int, list[_Member]] = {}
        for m in members:
            by_epoch.setdefault(m.book.epoch, []).append(m)
        for group in by_epoch.values():
            yield from _train_pack(group)
    for cfg in alone:
        yield run_one(cfg)


def _open_member(cfg: RunConfig, data, record: RunRecord) -> _Member:
    device = resolve_device(cfg.device)
    book = RunBook(cfg, data, record)
    model = init_model(cfg, data).to(device)
    optimizer = sgd(model, cfg)
    generator = torch.Generator().manual_seed(cfg.seed)
    torch_rng = torch.Generator().manual_seed(cfg.seed).get_state()  # the global RNG a separate run would hold
    state = book.open()
    if state is None:
        book.write_config()
    else:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        torch_rng = state["torch_rng"]
    return _Member(cfg, book, model, optimizer, generator, device_tensors(data, device), torch_rng)


def _train_pack(members: list[_Member]) -> Iterator:
    from ..sweep import Outcome

    cfg0 = members[0].cfg
    device = resolve_device(cfg0.device)
    for m in [m for m in members if m.book.done]:  # resumed after its last epoch (killed before its summary)
        summary = m.book.summary(m.book.final_status(), str(device))
        m.book.record.write_summary(summary)
        yield Outcome(m.cfg, m.book.record.dir, summary=summary)
    members = [m for m in members if not m.book.done]
    if not members:
        return
    packed = PackedMLP([m.model for m in members]).to(device)
    params = _packed_params(packed)
    n_layers = len(packed.weights)
    groups = [{"params": params[:n_layers], "weight_decay": cfg0.weight_decay},
              {"params": params[n_layers:], "weight_decay": 0.0}]
    optimizer = torch.optim.SGD(groups, lr=cfg0.lr, momentum=cfg0.momentum)
    _stack_momentum(optimizer, params, members)
    x_train = members[0].tensors["x_train"].flatten(1)  # (N, D), shared by every member
    x_test = members[0].tensors["x_test"].flatten(1)
    for m in members:
        m.book.extra["packed"] = {"members": len(members), "run_ids": [o.cfg.run_id() for o in members]}
    start = time.perf_counter()
    while members:
        epoch = members[0].book.epoch
        lr = lr_at(cfg0, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        t0 = time.perf_counter()
        rows, diverged = _train_epoch(packed, optimizer, members, x_train, lr)
        t1 = time.perf_counter()
        metrics = _measure(packed, members, x_train, x_test, cfg0)
        t2 = time.perf_counter()
        keep = []
        for k, m in enumerate(members):
            status = m.book.end_epoch(lr, metrics[k], rows[k], t1 - t0, t2 - t1, diverged[k])
            _save_member(m, packed, optimizer, k)
            if status is None:
                keep.append(k)
            else:
                summary = m.book.summary(status, str(device))
                m.book.record.write_summary(summary)
                yield Outcome(m.cfg, m.book.record.dir, summary=summary, seconds=time.perf_counter() - start)
        if len(keep) < len(members):
            packed.select(keep)
            for p in params:
                buf = optimizer.state.get(p, {}).get("momentum_buffer")
                if buf is not None:
                    optimizer.state[p]["momentum_buffer"] = buf[keep].contiguous()
            members = [members[k] for k in keep]


def _stack_momentum(optimizer: torch.optim.SGD, params: list, members: list[_Member]) -> None:
    """Stack the members' momentum buffers (after a resume) into the packed optimizer's state."""
    per_member = [[m.optimizer.state.get(p, {}).get("momentum_buffer") for p in _member_params(m.model)]
                  for m in members]
    for i, p in enumerate(params):
        bufs = [row[i] for row in per_member]
        if all(b is not None for b in bufs):
            optimizer.state[p]["momentum_buffer"] = torch.stack(bufs).to(p.device)


def _train_epoch(packed: PackedMLP, optimizer, members: list[_Member], x_train: torch.Tensor, lr: float):
    cfg0 = members[0].cfg
    k, n = len(members), x_train.shape[0]
    device = x_train.device
    orders = torch.stack([torch.randperm(n, generator=m.generator) for m in members]).to(device)  # (K, N)
    labels = torch.stack([m.tensors["y_train"] for m in members])  # (K, N)
    rows: list[list] = [[] for _ in members]
    diverged = [False] * k
    running = torch.zeros(k, device=device)
    count = 0
    packed.train()
    for start in range(0, n, cfg0.batch_size):
        idx = orders[:, start:start + cfg0.batch_size]  # (K, B)
        xb = x_train[idx]  # (K, B, D)
        yb = labels.gather(1, idx)
        with autocast(device, cfg0.precision):
            logits = packed(xb)
        b = idx.shape[1]
        per_example = F.cross_entropy(logits.float().reshape(k * b, -1), yb.reshape(-1), reduction="none")
        loss = per_example.view(k, b).mean(dim=1)  # each member's mean over its batch
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()  # members share no parameter: each gets the gradient of its own loss
        optimizer.step()
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
    return rows, diverged


@torch.no_grad()
def _predict(packed: PackedMLP, x: torch.Tensor, labels: torch.Tensor, cfg0: RunConfig):
    """Per-member per-example losses and predictions: (K, N) each."""
    losses, preds = [], []
    k = labels.shape[0]
    for start in range(0, x.shape[0], cfg0.eval_batch_size):
        xb = x[start:start + cfg0.eval_batch_size]
        with autocast(x.device, cfg0.precision):
            logits = packed(xb.unsqueeze(0).expand(k, -1, -1)).float()  # (K, B, C)
        yb = labels[:, start:start + cfg0.eval_batch_size]
        losses.append(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb.reshape(-1),
                                      reduction="none").view(k, -1))
        preds.append(logits.argmax(dim=2))
    return torch.cat(losses, 1), torch.cat(preds, 1)


def _measure(packed: PackedMLP, members: list[_Member], x_train, x_test, cfg0: RunConfig) -> list[dict]:
    packed.eval()
    loss, pred = _predict(packed, x_train, torch.stack([m.tensors["y_train"] for m in members]), cfg0)
    test_loss, test_pred = _predict(packed, x_test, torch.stack([m.tensors["y_test_clean"] for m in members]), cfg0)
    return [metrics_from_predictions(loss[k], pred[k], test_loss[k], test_pred[k], m.tensors)
            for k, m in enumerate(members)]


def _save_member(m: _Member, packed: PackedMLP, optimizer, k: int) -> None:
    """Write member ``k``'s checkpoint in a separate run's format."""
    params = _packed_params(packed)
    with torch.no_grad():
        for mine, p in zip(_member_params(m.model), params, strict=True):
            mine.copy_(p[k])
    m.optimizer.state.clear()
    for mine, p in zip(_member_params(m.model), params, strict=True):
        buf = optimizer.state.get(p, {}).get("momentum_buffer")
        if buf is not None:
            m.optimizer.state[mine]["momentum_buffer"] = buf[k].clone()
    for group in m.optimizer.param_groups:
        group["lr"] = optimizer.param_groups[0]["lr"]
    state = {**m.book.counters(), "model": m.model.state_dict(), "optimizer": m.optimizer.state_dict(),
             "generator": m.generator.get_state(), "torch_rng": m.torch_rng, "cuda_rng": None}
    m.book.record.save_checkpoint(state)

