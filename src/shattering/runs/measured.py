"""The complexity measures of finished runs, from their records (:mod:`shattering.measures`; the question of
Section 5 of Zhang et al., ICLR 2017): :func:`measure_run` reads a run's last checkpoint, rebuilds its data and
its network (and the initialization, from its seed), computes the measures and writes them into the run's
summary, atomically. A run trained by this version measured itself when it ended (the measures its setting
``measures`` selected); this is for the records made before, to measure again, and to add measures it did not
compute (``measures="pac_bayes_sigma"``): those measured now replace their old values, the others stay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import RecordError, ShatteringError
from ..measures import merge_measures, selected, with_measures
from ..train.in_memory import device_tensors
from .record import RunRecord
from .table import find_record_dirs
from .trained import trained_run


def measure_run(run_dir: str | Path, *, device: str | None = None, write: bool = True,
                measures: str | None = None) -> dict:
    """Measure the finished run in ``run_dir`` (:func:`shattering.measures.with_measures`) and return its summary
    with ``measures`` (merged into those it held: :func:`~shattering.measures.merge_measures`) and
    ``measures_seconds``; ``write``: store them in the record's ``summary.json`` (atomically). ``device``: where
    to compute (default: the run's own device setting). ``measures``: which, as the run setting takes them
    (``default``, ``cheap``, ``all``, ``none`` or names separated by commas; default: ``default``)."""
    selection = "default" if measures is None else measures
    selected(selection)  # an unknown name is refused before the checkpoint is read
    trained = trained_run(run_dir, device=device)
    record, cfg, summary, model = RunRecord(trained.run_dir), trained.config, trained.summary, trained.model
    data = trained.data()
    x = y = None
    if hasattr(data, "x_train"):
        tensors = device_tensors(data, next(model.parameters()).device)
        x, y = tensors["x_train"], tensors["y_train"]
    measured = with_measures(summary, cfg, model, data, x, y, measures=selection)
    summary = {**measured, "measures": merge_measures(summary.get("measures"), measured["measures"])}
    if write:
        with record.lock():
            record.write_summary(summary)
    return summary


def measure_runs(paths: Iterable[str | Path], *, device: str | None = None, write: bool = True,
                 on_error: Callable[[Path, ShatteringError], None] | None = None,
                 measures: str | None = None) -> list[dict]:
    """:func:`measure_run` (``measures``: which) for every run record under ``paths`` (run folders, or folders of
    runs), in order.
    A run that cannot be measured raises, or, given ``on_error``, is handed to it (its folder and the error)
    and the others are measured."""
    selected("default" if measures is None else measures)  # an unknown name: refused once, before any run
    out = []
    for path in paths:
        root = Path(path).expanduser()
        if not root.is_dir():
            raise RecordError(f"{root} is not a folder; pass a run's folder or a folder of runs.")
        dirs = find_record_dirs(root)
        if not dirs:
            raise RecordError(f"There is no run record under {root}; pass a run's folder or a folder of runs.")
        for d in dirs:
            try:
                out.append(measure_run(d, device=device, write=write, measures=measures))
            except ShatteringError as exc:
                if on_error is None:
                    raise
                on_error(d, exc)
    return out
