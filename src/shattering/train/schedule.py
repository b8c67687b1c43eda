"""The learning-rate schedule of Section 2.1 (lr0 x decay per epoch), its budget, and how runs describe it.

Why a run did not fit is :mod:`shattering.train.advice`'s to say."""

from __future__ import annotations

import math

from ..config import RunConfig
from ..data.catalogue import dataset_info
from ..formatting import plural
from ..models import is_builtin, model_info
from ..optimizers import SETTING_FIELDS, default_lr, describe


def lr_at(cfg: RunConfig, epoch: int) -> float:
    """The learning rate of epoch ``epoch`` (0-based): lr0 * decay**epoch."""
    return cfg.lr * cfg.lr_decay ** epoch


def lr_budget(lr: float, decay: float) -> float:
    """Total learning rate ever applied by ``lr * decay**epoch``: lr / (1 - decay) (infinite when constant)."""
    return math.inf if decay >= 1 else lr / (1 - decay)


def describe_schedule(cfg: RunConfig) -> dict:
    """The schedule of a (resolved) run: its settings, ``set`` (the settings that differ from the defaults of its
    model on its data set), ``text`` (one short line: what the schedule is, and why only where it is the
    default) and ``why`` (the measurement behind a default schedule, in full; None where the user set it)."""
    info = dataset_info(cfg.dataset)
    defaults = {"lr": default_lr(cfg.optimizer, model_info(cfg.model).lr),
                "lr_decay": info.default_lr_decay(cfg.model), "epochs": info.epochs}
    changed = [name for name, value in defaults.items() if getattr(cfg, name) != value]
    budget = lr_budget(cfg.lr, cfg.lr_decay)
    decay = "constant" if cfg.lr_decay >= 1 else (f"x{cfg.lr_decay:g} per epoch (lr budget lr0/(1-decay) = "
                                                  f"{budget:.3g})")
    optimizer = describe(cfg.optimizer, {f: getattr(cfg, f) for f in SETTING_FIELDS})
    text = (f"{optimizer}, lr {cfg.lr:g} {decay}, batch {cfg.batch_size}, "
            f"budget {plural(cfg.epochs, 'epoch')}")
    why = None
    if "lr_decay" not in changed:  # the default decay: say why, briefly (the measurement is in ``why``)
        why = info.schedule_reason(cfg.model)
        short = info.schedule_reason_short(cfg.model) if is_builtin(cfg.model) else (
            "the data set's default for its built-in models, not measured on this one")
        text += f"; {'the default' if not changed else 'the default decay'} for {cfg.model} on {cfg.dataset}: {short}"
    if changed:
        text += f" ({', '.join(changed)} set)"
    return {"optimizer": cfg.optimizer, "optimizer_text": optimizer, "lr": cfg.lr, "lr_decay": cfg.lr_decay,
            "epochs": cfg.epochs, "momentum": cfg.momentum,
            "batch_size": cfg.batch_size, "lr_budget": None if math.isinf(budget) else budget, "set": changed,
            "text": text, "why": why}
