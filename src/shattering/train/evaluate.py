"""Measurement: the whole training set re-evaluated in eval mode, and the test set, at the epochs the book
asks for (:meth:`shattering.train.book.RunBook.needs_evaluation`; always at the epoch of fit and the last one).

"Fit" is measured, not guessed: training accuracy is the share of *all* training examples that the model,
in eval mode (batch norm on running statistics, dropout off), assigns the label it was trained on. It is
reported separately on the corrupted and the clean part of the training set and against the original
labels (how much of the truth the model still predicts), and test accuracy is always measured against the
clean test labels.

The training set is evaluated in fp32 whatever the run's precision (:data:`FIT_PRECISION`): fit is decided on
fp32 logits. Under bf16 autocast the logits of a digits MLP differ from fp32 by up to 0.098 (measured) while
the smallest fp32 margin of a fitted one was 0.047, so a bf16 pass could declare fit an epoch early or late.
Of the two exact ways (the training set always in fp32, or a bf16 pass re-checked in fp32 wherever an
example's bf16 margin is within the bf16 error), fp32 always is the one kept: it needs no error bound for
bf16, and since the full pass now runs only on a few epochs its extra cost is small. The test set keeps the
run's precision (it decides nothing).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..devices import autocast

FIT_PRECISION = "fp32"  # the precision of every training-set evaluation (the fit decision)


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
            precision: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example cross-entropy against ``y`` (float32) and predicted classes, in eval mode."""
    was_training = model.training
    model.eval()
    losses, preds = [], []
    try:
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size]
            with autocast(x.device, precision):
                logits = model(xb)
            logits = logits.float()
            losses.append(F.cross_entropy(logits, y[start:start + batch_size], reduction="none"))
            preds.append(logits.argmax(dim=1))
    finally:
        model.train(was_training)
    return torch.cat(losses), torch.cat(preds)


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
    """Every per-epoch metric of the run (see the module docstring): the training set in fp32, the test set
    in ``precision``.

    ``tensors`` holds ``x_train, y_train, y_train_original, train_changed, x_test, y_test, y_test_clean`` on
    the training device.
    """
    loss, pred = predict(model, tensors["x_train"], tensors["y_train"], batch_size, FIT_PRECISION)
    test_loss, test_pred = predict(model, tensors["x_test"], tensors["y_test_clean"], batch_size, precision)
    return metrics_from_predictions(loss, pred, test_loss, test_pred, tensors)
