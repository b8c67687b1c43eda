"""The local executor (the default): every run of a sweep in this process, one after another, or several MLP
runs packed into one model (:mod:`shattering.executors.packing`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ..config import RunConfig
from .outcome import Outcome, run_one
from .packing import packed_groups, run_packed_group


def run_local(configs: Sequence[RunConfig], pack: int | None = None, keep_checkpoints: str = "last",
              progress: bool = False) -> Iterator[Outcome]:
    """Run ``configs`` here; yield one :class:`~shattering.executors.outcome.Outcome` per config as runs end
    (``locked`` for a run another process is training: :mod:`shattering.executors.shared` comes back to it).
    ``progress``: show each run's (or pack's) epochs as it trains."""
    for group in packed_groups(configs, pack):
        if len(group) == 1:
            yield run_one(group[0], progress, keep_checkpoints=keep_checkpoints)
        else:
            yield from run_packed_group(group, keep_checkpoints, progress)
