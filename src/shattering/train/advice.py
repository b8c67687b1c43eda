"""Why a run did not fit, measured from the run itself, and what to change, in the syntax of whatever started it.

Section 2.1 of Zhang et al. (ICLR 2017) fits random labels with the paper's procedure; a run of it that stops
short has a reason that its own numbers show: the training loss still at ln K (SGD never left chance), a
learning rate decayed to nothing (the budget lr0/(1-decay) spent), training accuracy still rising when the epoch
budget ended, augmentation or weight decay on (Tables 1 and 4: regularizers make fitting harder), or a loss that
diverged. :func:`diagnose` finds them; each :class:`Finding` states what was measured (``fact``) and the settings
that address it (``change``: RunConfig fields). :func:`phrase` words a change for the command line
(``shatter run`` flags), a TOML ``--config`` file (``shatter sweep`` / ``reproduce``, whose scale sets the
budget) or Python keywords (``shattering.run``). A run that fit gets no finding.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..config import RunConfig
from .schedule import lr_at, lr_budget

STYLES = ("flags", "config", "python")
AT_LN_K = 0.95  # a training loss above this fraction of ln K has not left chance
DECAYED = 0.05  # a learning rate below this fraction of lr0 has decayed to nothing
RISING = 0.01  # training accuracy up by at least this over the last fifth of the epochs: still rising
FALLING = 0.01  # or the training loss down by at least this fraction of ln K: still improving
AUGMENTATIONS = {"random_crop": "random crop", "flip_rotate": "random flip and rotation"}
SHORT_EPOCHS = 10  # a run that ended before this many epochs says its budget was too short, and no more
EXPLODED = 10.0  # a finite training loss above this many times ln K: the steps overshoot


@dataclass(frozen=True)
class Finding:
    """One measured reason a run did not fit: ``fact`` in words, ``change`` the settings that address it."""

    fact: str
    change: dict = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"fact": self.fact, "change": dict(self.change)}


def diagnose(cfg: RunConfig, history: Sequence[dict], num_classes: int, status: str,
             first_loss: float | None = None) -> list[Finding]:
    """The measured reasons a run of ``cfg`` ended ``status`` without fitting; ``history``: its epochs, in order,
    each ``{"epoch", "train_acc", "train_loss"}`` (as many as this process saw: a resumed run knows its last ones);
    ``first_loss``: the loss of its first step, before any update (None: not known). Empty for a run that fit."""
    if status == "fit" or not history:
        return []
    last = history[-1]
    epoch = last["epoch"]
    if first_loss is not None and not math.isfinite(first_loss):  # no step had been taken: not the learning rate
        return [Finding(f"the loss of the very first step, before any update, was {first_loss}: the model's output "
                        "as initialized is not finite, so no learning rate can help; check the model's forward pass "
                        "and initialization on these inputs")]
    if status == "diverged":
        return [Finding(f"the training loss became NaN or infinite at epoch {epoch} (lr {lr_at(cfg, epoch - 1):.3g}), "
                        f"after a first step at loss {first_loss:.3g}" if first_loss is not None else
                        f"the training loss became NaN or infinite at epoch {epoch} (lr {lr_at(cfg, epoch - 1):.3g})",
                        {"lr": _round(cfg.lr / 10)})]
    found = []
    ln_k = math.log(num_classes) if num_classes > 1 else 0.0
    loss, lr_now = last["train_loss"], lr_at(cfg, epoch)
    if ln_k and math.isfinite(loss) and loss > EXPLODED * ln_k:
        return [Finding(f"the training loss is {loss:.3g} at epoch {epoch}, {loss / ln_k:.3g} times ln K = "
                        f"{ln_k:.3f} (chance)" + (f", from {first_loss:.3g} at the first step" if first_loss is not None
                                                  else "") + f": the steps overshoot, so the learning rate {cfg.lr:g} "
                        "is too high", {"lr": _round(cfg.lr / 100)})]
    decayed = cfg.lr_decay < 1 and lr_now < DECAYED * cfg.lr
    window = history[-(max(1, len(history) // 5) + 1):]  # the last fifth of the epochs seen (at least two)
    first = window[0]
    gained = last["train_acc"] - first["train_acc"]
    dropped = first["train_loss"] - loss >= FALLING * max(ln_k, 1.0)
    improving = len(window) >= 2 and (gained >= RISING or (gained > -RISING and dropped))
    short = epoch < SHORT_EPOCHS and not decayed
    if short:
        start = history[0]
        found.append(Finding(f"the budget ended after only {epoch} epoch{'s' if epoch > 1 else ''}, too few to "
                             f"judge (training accuracy {_seen(start, last, 'train_acc')})",
                             {"epochs": 10 * cfg.epochs} | ({} if cfg.until == "fit" else {"until": "fit"})))
    elif ln_k and math.isfinite(loss) and loss >= AT_LN_K * ln_k and not improving and not decayed:
        found.append(Finding(f"the training loss is not below ln K = {ln_k:.3f} ({_seen(first, last, 'train_loss')}) "
                             f"with the learning rate still {lr_now:.3g}: {cfg.optimizer} does not leave chance, so "
                             f"the learning rate {cfg.lr:g} may be too high for this model",
                             {"lr": _round(cfg.lr / 10)}))
    if decayed:
        budget = lr_budget(cfg.lr, cfg.lr_decay)
        spent = 1 - cfg.lr_decay ** epoch
        found.append(Finding(f"the learning rate had decayed to {lr_now:.2g} (lr0 {cfg.lr:g} x{cfg.lr_decay:g} per "
                             f"epoch): {100 * spent:.0f}% of its budget lr0/(1-decay) = {budget:.3g} was spent, so "
                             "more epochs add little", {"lr_decay": 1.0}))
    if improving and not short:
        found.append(Finding(f"training was still improving when the {cfg.epochs}-epoch budget ended (accuracy "
                             f"{100 * first['train_acc']:.1f}% -> {100 * last['train_acc']:.1f}%, loss "
                             f"{first['train_loss']:.3f} -> {loss:.3f} from epoch {first['epoch']} to {epoch})",
                             {"epochs": 2 * cfg.epochs} | ({} if cfg.until == "fit" else {"until": "fit"})))
    augment = {name: False for name in AUGMENTATIONS if getattr(cfg, name)}
    if augment:
        found.append(Finding("data augmentation is on (" + " and ".join(AUGMENTATIONS[n] for n in augment)
                             + "): it enlarges the set to memorize", augment))
    if cfg.weight_decay > 0:
        found.append(Finding(f"weight decay is on ({cfg.weight_decay:g})", {"weight_decay": 0.0}))
    if cfg.model == "inception-small-nobn" and cfg.lr >= 0.05:
        found.append(Finding(f"Inception without batch norm trains at lr {cfg.lr:g}", {"lr": 0.01}))
    if not found:
        found.append(Finding(f"training accuracy had stopped rising ({_seen(first, last, 'train_acc')}) with the "
                             f"learning rate still {lr_now:.3g} and no regularizer on"))
    return found


def _seen(first: dict, last: dict, key: str) -> str:
    """A number at two epochs, "15.0% at epoch 3, 20.0% at epoch 9" (one where they are the same epoch)."""
    def shown(row: dict) -> str:
        value = f"{100 * row[key]:.1f}%" if key == "train_acc" else f"{row[key]:.3f}"
        return f"{value} at epoch {row['epoch']}"

    return shown(last) if first["epoch"] == last["epoch"] else f"{shown(first)}, {shown(last)}"


def _round(value: float) -> float:
    return float(f"{value:.3g}")


def _value(value, style: str) -> str:
    """A setting's value as a TOML file (``config``) or Python (``python``) spells it."""
    if style == "config" and isinstance(value, bool):
        return "true" if value else "false"
    if style == "config" and isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def _flag(name: str, value) -> str:
    meta = next(f.metadata for f in dataclasses.fields(RunConfig) if f.name == name)
    flag = meta.get("flag") or "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return flag if value else "--no-" + flag[2:]
    return f"{flag} {value}"


def phrase(change: dict, style: str, fixed: Mapping[str, str] | None = None) -> str:
    """``change`` (RunConfig fields -> values) in the syntax of ``style``: ``flags`` (``--lr-decay 1.0``),
    ``config`` (a ``--config`` file's ``lr_decay = 1.0``) or ``python`` (``lr_decay=1.0``). ``fixed``: for
    ``config``, the settings a preset sets itself, each with what sets it (``"scale"``: a larger ``--scale``
    changes it; ``"grid"``: it is what the preset measures, so nothing is suggested). Empty when nothing
    can be changed."""
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}; got {style!r}")
    if style == "flags":
        return " ".join(_flag(k, v) for k, v in change.items())
    if style == "python":
        return ", ".join(f"{k}={_value(v, style)}" for k, v in change.items())
    fixed = fixed or {}
    free = [f"{k} = {_value(v, style)}" for k, v in change.items() if k not in fixed]
    parts = [f"`{', '.join(free)}` in a --config FILE.toml"] if free else []
    scaled = [k for k in change if fixed.get(k) == "scale"]
    if scaled:
        parts.append(f"a larger --scale (the scale sets {', '.join(scaled)})")
    return " or ".join(parts)


def advice_lines(findings: Sequence[dict], style: str, fixed: Mapping[str, str] | None = None) -> list[str]:
    """One line per finding of a summary's ``advice``: what was measured, then what to change in ``style``
    (see :func:`phrase`); a finding about a setting the preset's grid sets says so instead."""
    lines = []
    for f in findings:
        change = f.get("change") or {}
        words = phrase(change, style, fixed) if change else ""
        if words:
            lines.append(f"{f['fact']} (try {words})")
        elif change:
            lines.append(f"{f['fact']} (set by the preset's grid: part of what it measures)")
        else:
            lines.append(f["fact"])
    return lines
