"""K networks of one configuration, each trained on its own subset of the training set: what the per-example
memorization and consistency scores need (Feldman and Zhang, NeurIPS 2020; Jiang, Zhang, Talwar and Mozer, ICML
2021; the estimators are :mod:`shattering.influence`).

Network k trains exactly as a separate run of the configuration would on the examples ``masks[k]`` (the labels
the run's corruption made): its own initialization and batch order (from its own seed), the run's optimizer,
schedule (lr0 * decay**epoch), batch size and precision, until it classifies every example of its subset correctly
(eval mode, fp32; ``until="fit"``) or the epoch budget ends. Every subset has the same size, so every member takes
the same number of steps per epoch: the MLPs of a group train as one packed model
(:class:`~shattering.train.packed.PackedMLP`: each member its own batch, one batched product per layer), the
members differing only in their initialization and the examples they see; other models train one after another.
A member's numbers do not depend on which others share its pack (:func:`~shattering.train.packed.packed_forward`).

When a member ends, it is evaluated on the whole training set (all N examples, those it saw and those it did not,
against the label it would have been trained on) and the test set (against the true test labels), in eval mode
and fp32: per example, right or wrong and the softmax probability of that label.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import RunConfig
from ..data.dataset import ImageData
from ..devices import autocast, prepare_device, resolve_device
from ..errors import ConfigError
from ..optimizers import model_groups, param_groups, run_optimizer, select_state
from .in_memory import device_tensors
from .packed import PackedMLP, packed_forward
from .schedule import lr_at
from .trainer import init_model

UNSUPPORTED = ("random_crop", "flip_rotate", "aux_logits")  # per-batch augmentation and a second loss: not here


@dataclass(frozen=True)
class SubsetResult:
    """What K networks trained on subsets leave: one row per network, one column per example.

    ``train_correct`` (K, N) bool: network k classifies training example i as the label it was trained on (the
    possibly corrupted one), whether or not i was in its subset; ``train_prob`` (K, N) float32: the softmax
    probability of that label; ``test_correct`` and ``test_prob`` (K, M) against the true test labels;
    ``fit_epoch`` (K,) the epoch (1-based) at which network k classified its whole subset correctly, -1 if it never
    did; ``epochs`` (K,) epochs trained; ``diverged`` (K,) bool: its loss stopped being finite; ``seconds``: wall
    time of the whole group."""

    train_correct: np.ndarray
    train_prob: np.ndarray
    test_correct: np.ndarray
    test_prob: np.ndarray
    fit_epoch: np.ndarray
    epochs: np.ndarray
    diverged: np.ndarray
    seconds: float


def check_subset_config(cfg: RunConfig) -> None:
    """Refuse, in one sentence, a configuration the subset trainer does not train as a run would."""
    on = [name for name in UNSUPPORTED if getattr(cfg, name)]
    if on:
        raise ConfigError(f"Subset training does not apply {', '.join(on)} (per-batch augmentation or a second "
                          "loss); train the scores' networks without it (leave --random-crop, --flip-rotate and "
                          "--aux-logits off).")


def train_subsets(cfg: RunConfig, data: ImageData, masks: np.ndarray, seeds: Sequence[int], *,
                  packed: bool) -> SubsetResult:
    """Train one network per row of ``masks`` (bool (K, N), every row the same number of Trues) on those
    training examples of ``data``, network k initialized and shuffled from ``seeds[k]``; ``packed``: the MLPs as
    one :class:`~shattering.train.packed.PackedMLP` (the caller decides whether the configuration packs), else one
    after another. See the module docstring for what each network does and what is returned."""
    cfg = cfg.resolved()
    check_subset_config(cfg)
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 2 or masks.shape[1] != len(data.y_train) or len(seeds) != len(masks):
        raise ConfigError(f"train_subsets: masks must be (networks, {len(data.y_train)}) with one seed per row; "
                          f"got masks of shape {masks.shape} and {len(seeds)} seeds.")
    sizes = set(masks.sum(axis=1).tolist())
    if len(sizes) != 1 or 0 in sizes:
        raise ConfigError(f"train_subsets: every subset must hold the same, non-zero number of examples; got sizes "
                          f"{sorted(sizes)}.")
    device = resolve_device(cfg.device)
    prepare_device(device)
    tensors = device_tensors(data, device)
    start = time.perf_counter()
    groups = [list(range(len(masks)))] if packed else [[k] for k in range(len(masks))]
    parts = [_train_group(cfg, data, tensors, masks[g], [seeds[k] for k in g], packed, device) for g in groups]
    joined = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    return SubsetResult(**joined, seconds=time.perf_counter() - start)


class _Nets:
    """The networks of a group as the loop sees them: ``forward`` (K', B, ...) -> (K', B, classes), the parameters
    in optimizer groups, ``select`` (keep members), ``logits`` (members' eval-mode fp32 logits on a batch every
    member sees) and the module (for train/eval mode)."""

    def __init__(self, cfg: RunConfig, data: ImageData, seeds: Sequence[int], packed: bool, device: torch.device):
        members = [init_model(cfg.replace(seed=int(s)), data) for s in seeds]
        self.packed = packed
        if packed:
            self.module: nn.Module = PackedMLP(members).to(device)
            self.params = list(self.module.weights) + list(self.module.biases)
            n = len(self.module.weights)
            self.groups = param_groups(self.params[:n], self.params[n:], cfg.weight_decay)
        else:
            if len(members) != 1:
                raise RuntimeError("an unpacked group holds one network")  # train_subsets makes them so
            self.module = members[0].to(device)
            self.params = [p for p in self.module.parameters() if p.requires_grad]
            self.groups = model_groups(self.module, cfg.weight_decay)

    def forward(self, xb: torch.Tensor) -> torch.Tensor:
        if self.packed:
            return self.module(xb.flatten(2))
        return self.module(xb[0]).unsqueeze(0)

    @torch.no_grad()
    def logits(self, chosen: list[int], x: torch.Tensor) -> torch.Tensor:
        if self.packed:
            return packed_forward([w[chosen] for w in self.module.weights], [b[chosen] for b in self.module.biases],
                                  x.flatten(1)).float()
        return self.module(x).float().unsqueeze(0)

    def select(self, keep: list[int], optimizer: torch.optim.Optimizer) -> None:
        if self.packed:
            self.module.select(keep)
            select_state(optimizer, self.params, keep)


def _evaluate(nets: _Nets, chosen: list[int], x: torch.Tensor, y: torch.Tensor,
              batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Members ``chosen``'s eval-mode fp32 correctness and probability of ``y`` (labels (K', n) or (n,)) on ``x``:
    two (K', n) tensors."""
    nets.module.eval()
    correct, prob = [], []
    for s in range(0, len(x), batch):
        logits = nets.logits(chosen, x[s:s + batch])  # (K', b, C)
        yb = y[..., s:s + batch].expand(logits.shape[0], -1)
        correct.append(logits.argmax(dim=2) == yb)
        prob.append(torch.softmax(logits, dim=2).gather(2, yb.unsqueeze(2)).squeeze(2))
    return torch.cat(correct, 1), torch.cat(prob, 1)


def _train_group(cfg: RunConfig, data: ImageData, tensors: dict, masks: np.ndarray, seeds: Sequence[int],
                 packed: bool, device: torch.device) -> dict[str, np.ndarray]:
    """The loop of :func:`train_subsets` for one group (a pack, or one network)."""
    k, n = masks.shape
    nets = _Nets(cfg, data, seeds, packed, device)
    optimizer = run_optimizer(cfg, nets.groups, device)
    x_train, y_train = tensors["x_train"], tensors["y_train"]
    x_test, y_test = tensors["x_test"], tensors["y_test_clean"]
    subsets = [torch.from_numpy(np.flatnonzero(row)) for row in masks]
    generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
    inside = torch.from_numpy(masks).to(device)
    out = {"train_correct": np.zeros((k, n), bool), "train_prob": np.zeros((k, n), np.float32),
           "test_correct": np.zeros((k, len(y_test)), bool), "test_prob": np.zeros((k, len(y_test)), np.float32),
           "fit_epoch": np.full(k, -1, np.int64), "epochs": np.zeros(k, np.int64), "diverged": np.zeros(k, bool)}
    alive = list(range(k))

    def finish(chosen: list[int], correct: torch.Tensor, prob: torch.Tensor) -> None:
        members = [alive[j] for j in chosen]
        out["train_correct"][members], out["train_prob"][members] = correct.cpu().numpy(), prob.cpu().numpy()
        test_correct, test_prob = _evaluate(nets, chosen, x_test, y_test, cfg.eval_batch_size)
        out["test_correct"][members], out["test_prob"][members] = test_correct.cpu().numpy(), test_prob.cpu().numpy()

    for epoch in range(cfg.epochs):
        lr = lr_at(cfg, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        clean, finite = _epoch(nets, optimizer, [subsets[m] for m in alive], [generators[m] for m in alive],
                               x_train, y_train, cfg, device)
        out["epochs"][alive] += 1
        last = epoch == cfg.epochs - 1
        out["diverged"][alive] = ~np.asarray(finite)
        # a member ends when it diverged, at the budget's end, or (until fit) when its subset is fit: checked
        # exactly (eval mode, fp32) only where the training pass made no error
        candidates = [j for j in range(len(alive)) if last or not finite[j] or (cfg.until == "fit" and clean[j])]
        if not candidates:
            continue
        correct, prob = _evaluate(nets, candidates, x_train, y_train, cfg.eval_batch_size)
        fit = (correct | ~inside[[alive[j] for j in candidates]]).all(dim=1).tolist()
        for j, ok in zip(candidates, fit, strict=True):
            if ok:
                out["fit_epoch"][alive[j]] = epoch + 1
        ending = [i for i, j in enumerate(candidates) if last or not finite[j] or fit[i]]
        if not ending:
            continue
        finish([candidates[i] for i in ending], correct[ending], prob[ending])
        ended = {candidates[i] for i in ending}
        keep = [j for j in range(len(alive)) if j not in ended]
        if keep:
            nets.select(keep, optimizer)
        alive = [alive[j] for j in keep]
        if not alive:
            break
    return out


def _epoch(nets: _Nets, optimizer: torch.optim.Optimizer, subsets: list[torch.Tensor],
           generators: list[torch.Generator], x: torch.Tensor, y: torch.Tensor, cfg: RunConfig,
           device: torch.device) -> tuple[list[bool], list[bool]]:
    """One epoch of every member on its own subset in its own order; returns per member whether the training pass
    (train mode, each batch scored just before its step) got every example right, and whether its loss stayed
    finite."""
    k = len(subsets)
    orders = torch.stack([s[torch.randperm(len(s), generator=g)] for s, g in zip(subsets, generators,
                                                                                strict=True)]).to(device)
    wrong = torch.zeros(k, dtype=torch.bool, device=device)
    finite = torch.ones(k, dtype=torch.bool, device=device)
    nets.module.train()
    for start in range(0, orders.shape[1], cfg.batch_size):
        idx = orders[:, start:start + cfg.batch_size]  # (K, B)
        xb, yb = x[idx], y[idx]
        with autocast(device, cfg.precision):
            logits = nets.forward(xb)
        b = idx.shape[1]
        per_example = F.cross_entropy(logits.float().reshape(k * b, -1), yb.reshape(-1), reduction="none")
        loss = per_example.view(k, b).mean(dim=1)  # each member's mean over its batch
        wrong |= (logits.detach().argmax(dim=2) != yb).any(dim=1)
        finite &= torch.isfinite(loss.detach())
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()  # members share no parameter: each gets the gradient of its own loss
        optimizer.step()
    return (~wrong).tolist(), finite.tolist()


def member_seeds(seed: int, study_seed: int, k: int) -> list[int]:
    """The seeds of K subset networks of a run of seed ``seed``: distinct, reproducible, independent of how the
    networks are grouped (numpy's ``SeedSequence([seed, study_seed])``, 63 bits each)."""
    words = np.random.SeedSequence([seed, study_seed]).generate_state(2 * k, np.uint32).astype(np.uint64)
    return [int(((hi & 0x7FFFFFFF) << 32) | lo) for hi, lo in zip(words[0::2], words[1::2], strict=True)]

