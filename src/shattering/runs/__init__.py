"""The runs layer: one run of Section 2.1 of Zhang et al. (ICLR 2017), start to end, and what it leaves behind.

- :mod:`~shattering.runs.record`: the files of one run's record (``RunRecord``), written so that nothing
  half-written is ever read back as a result.
- :mod:`~shattering.runs.lifecycle`: :func:`run` opens the record, locks it, reuses or resumes it, trains,
  and writes the summary (``RunResult``); :mod:`~shattering.runs.provenance`: when and by which code a reused
  record was made; :mod:`~shattering.runs.measured`: the complexity measures of a finished run, from its
  checkpoint (:func:`measure_run`); :mod:`~shattering.runs.trained`: a finished run's network read back
  (:func:`load_model`, :func:`read_checkpoint`).
- :mod:`~shattering.runs.table`: every record under a folder as a table (:func:`load_runs`) and every run's
  per-epoch metrics in long form (:func:`load_curves`), read from the files alone.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

# each name imported when first used (shattering._lazy): `shatter runs` reads the records without torch
__all__ = lazy_exports(__name__, {
    ".lifecycle": ("RunResult", "as_config", "run", "trainer_class"),
    ".measured": ("measure_run", "measure_runs"),
    ".provenance": ("reuse_message",),
    ".record": ("CHECKPOINT_MAGIC", "KEEP_CHECKPOINTS", "STATUSES", "FollowerRecord", "RunRecord", "evaluated",
                "moved_aside", "record_for"),
    ".table": ("load_curves", "load_runs", "select_runs"),
    ".trained": ("load_model", "read_checkpoint", "solution_distance", "trained_run"),
})

if TYPE_CHECKING:
    from .lifecycle import RunResult as RunResult
    from .lifecycle import as_config as as_config
    from .lifecycle import run as run
    from .lifecycle import trainer_class as trainer_class
    from .measured import measure_run as measure_run
    from .measured import measure_runs as measure_runs
    from .provenance import reuse_message as reuse_message
    from .record import CHECKPOINT_MAGIC as CHECKPOINT_MAGIC
    from .record import KEEP_CHECKPOINTS as KEEP_CHECKPOINTS
    from .record import STATUSES as STATUSES
    from .record import FollowerRecord as FollowerRecord
    from .record import RunRecord as RunRecord
    from .record import evaluated as evaluated
    from .record import moved_aside as moved_aside
    from .record import record_for as record_for
    from .table import load_curves as load_curves
    from .table import load_runs as load_runs
    from .table import select_runs as select_runs
    from .trained import load_model as load_model
    from .trained import read_checkpoint as read_checkpoint
    from .trained import solution_distance as solution_distance
    from .trained import trained_run as trained_run
