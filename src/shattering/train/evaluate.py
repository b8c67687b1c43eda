"""Measurement: the whole training set re-evaluated in eval mode, and the test set, at the epochs the book
asks for (:meth:`shattering.train.book.RunBook.needs_evaluation`; always at the epoch of fit and the last one).

"Fit" is measured, not guessed: training accuracy is the share of *all* training examples that the model,
in eval mode (batch norm on running statistics, dropout off), assigns the label it was trained on. It is
reported separately on the corrupted and the clean part of the training set and against the original
labels (how much of the truth the model still predicts), and test accuracy is always measured against the
clean test labels.

Fit is decided on fp32 logits whatever the run's precision. Under bf16 autocast the logits of a digits MLP differ
from fp32 by up to 0.098 (measured) while the smallest fp32 margin of a fitted one was 0.047, so a bf16 pass alone
could declare fit an epoch early or late. An fp32 pass over the training set is several times slower than a bf16 one
where the CPU computes bf16 natively (bench/RESULTS.md), so the training set is evaluated in the run's precision and
only the examples in doubt are computed again in fp32 (:func:`predict_train`): those whose bf16 margin (the logit of
the label minus the largest other one) is within :data:`DOUBT_ABS` + :data:`DOUBT_REL` x their largest |logit| of
zero, 5x the largest difference measured. Their fp32 loss and prediction replace the bf16 ones, so every prediction
that could differ between bf16 and fp32 is the fp32 one, and ``train_errors`` (fit) is the fp32 count;
``train_fp32_checked`` in the metrics says how many were computed again. The test set keeps the run's precision (it
decides nothing). """

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..devices import autocast

DOUBT_ABS = 0.5  # logits: a bf16 margin this close to zero (plus DOUBT_REL of the largest |logit|) is
DOUBT_REL = 0.02  # computed again in fp32 (bf16 vs fp32 logits measured to differ by up to 0.098 on digits)


CLEAR_MARGIN = 1e-3  # a probed example this far on the wrong side is wrong in every batch shape (fp32 rounds ~1e-6)


def signed_margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The logit of the label minus the largest other logit (positive: the label is predicted), per example;
    ``logits`` (..., C) float, ``y`` (...)."""
    own = logits.gather(-1, y.unsqueeze(-1)).squeeze(-1)
    others = logits.scatter(-1, y.unsqueeze(-1), float("-inf")).amax(dim=-1)
    return own - others


def doubt_bound(logits: torch.Tensor) -> torch.Tensor:
    """Per example, how far from zero a bf16 margin must be for its prediction to be the fp32 one:
    :data:`DOUBT_ABS` + :data:`DOUBT_REL` x the largest |logit| (see the module docstring)."""
    return DOUBT_ABS + DOUBT_REL * logits.abs().amax(dim=-1)


def in_doubt(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Which examples' bf16 prediction could differ from the fp32 one (see the module docstring)."""
    return signed_margin(logits, y).abs() <= doubt_bound(logits)


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
            precision: str, doubt: bool = False):
    """Per-example cross-entropy against ``y`` (float32) and predicted classes, in eval mode; with ``doubt``
    also which examples are :func:`in_doubt` (all False in fp32)."""
    was_training = model.training
    model.eval()
    losses, preds, doubts = [], [], []
    try:
        for start in range(0, len(x), batch_size):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            with autocast(x.device, precision):
                logits = model(xb)
            logits = logits.float()
            losses.append(F.cross_entropy(logits, yb, reduction="none"))
            preds.append(logits.argmax(dim=1))
            if doubt:
                doubts.append(in_doubt(logits, yb) if precision != "fp32" else torch.zeros_like(yb, dtype=torch.bool))
    finally:
        model.train(was_training)
    if doubt:
        return torch.cat(losses), torch.cat(preds), torch.cat(doubts)
    return torch.cat(losses), torch.cat(preds)


def probe_chunks(n: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, stop) of the fit probe's chunks over ``n`` suspects: 16, 32, 64, ... up to ``batch_size``, so
    that a run far from fit (most examples wrong) stops after a few examples, and one near fit (a handful of
    suspects) takes one batch."""
    chunks, start, size = [], 0, 16
    while start < n:
        chunks.append((start, min(n, start + size)))
        start, size = start + size, min(2 * size, batch_size)
    return chunks


def probe(margins_of: Callable[[torch.Tensor], torch.Tensor], idx: torch.Tensor,
          batch_size: int) -> tuple[int, int]:
    """The fit probe (:meth:`shattering.train.book.RunBook.needs_evaluation`) over training examples ``idx``:
    ``margins_of(rows)`` gives their :func:`signed_margin` in eval mode and fp32, asked chunk by chunk
    (:func:`probe_chunks`) until one is wrong by a clear margin (its label's logit below another by more than
    :data:`CLEAR_MARGIN`, so that no rounding of another batch shape could make it right): one is enough to
    know the epoch did not fit. Returns (examples checked, clearly wrong among them). Every trainer probes
    through this (in memory, streamed, packed); only where the margins come from differs."""
    checked = found = 0
    for start, stop in probe_chunks(len(idx), batch_size):
        found += int((margins_of(idx[start:stop]) < -CLEAR_MARGIN).sum())
        checked = stop
        if found:
            break
    return checked, found


@torch.no_grad()
def clear_errors(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor,
                 batch_size: int) -> tuple[int, int]:
    """:func:`probe` of ``model`` on the training examples ``x[idx]``, labels ``y[idx]``."""
    was_training = model.training
    model.eval()
    try:
        return probe(lambda rows: signed_margin(model(x[rows]).float(), y[rows]), idx, batch_size)
    finally:
        model.train(was_training)


@torch.no_grad()
def clear_errors_rest(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor,
                      batch_size: int, precision: str) -> tuple[int, int]:
    """The fit probe's second part, where the examples the training pass got wrong are all right now: the
    others, ``idx`` (the caller orders them by their training-pass loss, largest first), in the run's precision,
    until one is clearly wrong. In bf16 an example counts as clearly wrong only where its margin is below
    minus :func:`doubt_bound`, so that the full pass (:func:`predict_train`) would count it wrong too: it keeps
    the bf16 prediction of every example not in doubt. The fit epoch does not move; a near-fit epoch that did
    not fit costs a chunk or two instead of the whole training and test sets."""
    was_training = model.training
    model.eval()

    def margins_of(rows):
        with autocast(x.device, precision):
            logits = model(x[rows])
        return clear_margin(logits.float(), y[rows], precision)

    try:
        return probe(margins_of, idx, batch_size)
    finally:
        model.train(was_training)


def clear_margin(logits: torch.Tensor, y: torch.Tensor, precision: str) -> torch.Tensor:
    """The margin :func:`probe` reads from logits computed in ``precision``: the :func:`signed_margin` itself in
    fp32; in bf16 the margin plus its :func:`doubt_bound`, so that only an error the full pass keeps (not in
    doubt) counts as clear."""
    margin = signed_margin(logits, y)
    return margin if precision == "fp32" else margin + doubt_bound(logits)


def fit_probe(clear_suspects: Callable[[torch.Tensor], tuple[int, int]],
              clear_rest: Callable[[torch.Tensor], tuple[int, int]], wrong: torch.Tensor,
              losses: torch.Tensor) -> dict:
    """The whole fit probe of one run, as every trainer runs it: ``clear_suspects`` over the examples its
    training pass got wrong (``wrong``, bool per example), and where none of them is clearly wrong,
    ``clear_rest`` over the others, the largest training-pass loss (``losses``) first. Returns the row's
    ``fit_probe_suspects``, ``fit_probe_checked`` and ``fit_probe_wrong`` (0: the full pass must decide)."""
    suspects = wrong.nonzero().squeeze(1)
    checked, found = clear_suspects(suspects)
    if found == 0:
        rest = (~wrong).nonzero().squeeze(1)
        more, found = clear_rest(rest[losses[rest].argsort(descending=True, stable=True)])
        checked += more
    return {"fit_probe_suspects": len(suspects), "fit_probe_checked": checked, "fit_probe_wrong": found}


def predict_train(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                  precision: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The training set's per-example losses and predictions with fit decided in fp32 (the module
    docstring): the examples in doubt are computed again in fp32. Returns (losses, predictions, how many
    were computed again)."""
    loss, pred, doubt = predict(model, x, y, batch_size, precision, doubt=True)
    idx = doubt.nonzero().squeeze(1)
    if idx.numel():
        loss[idx], pred[idx] = predict(model, x[idx], y[idx], batch_size, "fp32")
    return loss, pred, int(idx.numel())


def _acc(correct: torch.Tensor, mask: torch.Tensor | None = None) -> float | None:
    if mask is not None:
        correct = correct[mask]
    return float(correct.float().mean()) if correct.numel() else None


def _mean(values: torch.Tensor) -> float:
    return float(values.mean()) if values.numel() else math.nan


def metrics_from_predictions(loss: torch.Tensor, pred: torch.Tensor, test_loss: torch.Tensor,
                             test_pred: torch.Tensor, tensors: dict) -> dict:
    """Every per-epoch metric from per-example training losses/predictions and test losses/predictions."""
    y, changed = tensors["y_train"], tensors["train_changed"]
    correct = pred == y
    n_correct = int(correct.sum())
    row = {
        "train_loss": _mean(loss),
        "train_acc": n_correct / len(y),
        "train_errors": len(y) - n_correct,
        "train_acc_corrupted": _acc(correct, changed),
        "train_acc_clean": _acc(correct, ~changed),
        "train_loss_corrupted": _mean(loss[changed]) if bool(changed.any()) else None,
        "train_loss_clean": _mean(loss[~changed]) if bool((~changed).any()) else None,
        "train_acc_original": _acc(pred == tensors["y_train_original"]),
        "test_loss": _mean(test_loss),
        "test_acc": _acc(test_pred == tensors["y_test_clean"]),
    }
    if not torch.equal(tensors["y_test"], tensors["y_test_clean"]):
        row["test_acc_corrupted_labels"] = _acc(test_pred == tensors["y_test"])
    return row


def measure(model, tensors: dict, batch_size: int, precision: str) -> dict:
    """Every per-epoch metric of the run (see the module docstring): fit decided in fp32
    (:func:`predict_train`), the test set in ``precision``.

    ``tensors`` holds ``x_train, y_train, y_train_original, train_changed, x_test, y_test, y_test_clean`` on
    the training device.
    """
    loss, pred, checked = predict_train(model, tensors["x_train"], tensors["y_train"], batch_size, precision)
    test_loss, test_pred = predict(model, tensors["x_test"], tensors["y_test_clean"], batch_size, precision)
    return metrics_from_predictions(loss, pred, test_loss, test_pred, tensors) | {"train_fp32_checked": checked}
