"""Deterministic fault injection for the reliability suite (RELIABILITY.md, tests/test_faults*.py): kill this
process with SIGKILL the Nth time it reaches a named point, so that a test crashes a run exactly where it wants
instead of hoping a timer lands there.

Off unless ``SHATTERING_FAULT`` is set when this module is imported (or :func:`arm` is called); off, each
point costs one test of a module global. ``SHATTERING_FAULT="checkpoint-write:3"`` kills the process at its
third checkpoint write; several points are separated by commas (``"step:40,summary-write:1"``) and the first
one reached fires. Counts are per process: a resumed run counts from 1 again.

Points:

- ``step``: inside an optimizer step (gradients computed, weights not yet updated), any optimizer but one that
  times a step (marked :data:`TIMING`);
- ``eval``: inside a module's forward with gradients off (the per-epoch measurement);
- ``metrics-append`` / ``steps-append``: half of an append to ``metrics.jsonl`` / ``steps.csv`` written and
  flushed (a torn last line), then killed;
- ``checkpoint-write``: the new checkpoint's temporary file written, nothing renamed yet;
- ``checkpoint-rename``: the old checkpoint kept as ``checkpoint.prev.pt``, the new one not yet renamed;
- ``summary-write``: the summary's temporary file written, not yet renamed to ``summary.json``;
- ``truncate-logs``: on resume, ``metrics.jsonl`` cut back to the checkpoint, ``steps.csv`` not yet.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

from .errors import ConfigError

ENV = "SHATTERING_FAULT"
POINTS = ("step", "eval", "metrics-append", "steps-append", "checkpoint-write", "checkpoint-rename",
          "summary-write", "truncate-logs")

TIMING = "shattering_timing"  # an optimizer with this attribute true steps to time a step, not to train
_targets: dict[str, int] | None = None  # point -> the call that kills; None: off
_counts: dict[str, int] = {}
_hooks: list = []


def parse(spec: str) -> dict[str, int]:
    """``"name:N[,name:N]"`` as ``{name: N}``; a :class:`ConfigError` for anything else."""
    targets = {}
    for part in spec.split(","):
        name, _, count = part.strip().rpartition(":")
        if name not in POINTS or not count.isdigit() or int(count) < 1:
            raise ConfigError(f"{ENV} must be POINT:N[,POINT:N] with N >= 1 and POINT one of {', '.join(POINTS)}; "
                              f"got {spec!r}.")
        targets[name] = int(count)
    return targets


def arm(spec: str | None) -> None:
    """Arm the points of ``spec`` (see the module docstring), or switch every point off (None or "")."""
    global _targets
    for handle in _hooks:
        handle.remove()
    _hooks.clear()
    _counts.clear()
    _targets = parse(spec) if spec else None
    if not _targets:
        return
    import torch  # here, armed only: shattering.files imports this module, and `shatter --help` loads no torch
    from torch.nn.modules.module import register_module_forward_pre_hook
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    if "step" in _targets:
        _hooks.append(register_optimizer_step_pre_hook(  # a timed step of the tuning is not one of the run's
            lambda optimizer, args, kwargs: None if getattr(optimizer, TIMING, False) else point("step")))
    if "eval" in _targets:
        _hooks.append(register_module_forward_pre_hook(
            lambda module, inputs: None if torch.is_grad_enabled() else point("eval")))


def armed() -> bool:
    return _targets is not None


def point(name: str, before: Callable[[], object] | None = None) -> None:
    """Count a pass through point ``name``; at the armed count, run ``before`` (if any), then SIGKILL."""
    if _targets is None or name not in _targets:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] == _targets[name]:
        if before is not None:
            before()
        os.kill(os.getpid(), signal.SIGKILL)


try:
    arm(os.environ.get(ENV))
except ConfigError as exc:  # a test tool: say so and stay off rather than break every command
    print(f"shattering: fault injection off: {exc}", file=sys.stderr)
