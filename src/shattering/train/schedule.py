"""The learning-rate schedule of Section 2.1 (lr0 x decay per epoch), its budget, and how runs describe it.

Why a run did not fit is :mod:`shattering.train.advice`'s to say."""

from __future__ import annotations

import math

from ..config import RunConfig
from ..data.catalogue import dataset_info


def lr_at(cfg: RunConfig, epoch: int) -> float:
    """The learning rate of epoch ``epoch`` (0-based): lr0 * decay**epoch."""
    return cfg.lr * cfg.lr_decay ** epoch


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
