"""The one checkpoint format of a run, whether it trains alone (:class:`~shattering.train.trainer.Trainer`)
or as a member of a pack (:mod:`shattering.train.packed`): either can resume the other.

A checkpoint holds the book's counters (:meth:`~shattering.train.book.RunBook.counters`), the model and
optimizer state as a separate run builds them, the run's own batch-order and augmentation generator, and
the global CPU and CUDA random states (dropout's draws), so that a resumed run continues exactly where an
uninterrupted one would be (Section 2.1's procedure, run by run). The record writes it to disk
(:meth:`shattering.runs.RunRecord.save_checkpoint`, a SHA-256 header over the payload).
"""

from __future__ import annotations

import torch

from .book import RunBook


def checkpoint_state(book: RunBook, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                     generator: torch.Generator, torch_rng: torch.Tensor,
                     cuda_rng: torch.Tensor | None) -> dict:
    """The checkpoint of one run: counters, model, optimizer, its generator and the global RNG states."""
    return {**book.counters(), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "generator": generator.get_state(), "torch_rng": torch_rng, "cuda_rng": cuda_rng}


def restore_checkpoint(state: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                       generator: torch.Generator) -> None:
    """Load a checkpoint's model, optimizer and generator; the book restores its counters
    (:meth:`~shattering.train.book.RunBook.open`) and the caller the global RNG states (``torch_rng``,
    ``cuda_rng``), which a lone run sets and a pack member keeps for its checkpoints."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"])
