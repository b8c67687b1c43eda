"""One sweep's work shared by several processes: two copies of a sweep (the runs of Section 2.1's Tables 1, 2
and 4 and Figures 1 and 2 of Zhang et al., ICLR 2017) started on one record folder, in two terminals or on two
machines that share storage, split the runs between them.

A run another process is training (its record's lock is held) is not a failure: the sweep goes on with the
others, then comes back to it, waits until the lock is released and reads the summary the other process wrote
(or, when that process died, resumes the run from its checkpoint). Both copies end with every run done, and
every record is the one an uninterrupted sweep would have written.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from ..config import RunConfig
from ..runs import RunRecord
from .outcome import Outcome, describe

try:
    import fcntl
except ImportError:  # no flock on this platform (Windows): runs are not locked, so none is met locked
    fcntl = None


def sharing_work(execute: Callable[[Sequence[RunConfig]], Iterable[Outcome]], configs: Sequence[RunConfig],
                 note: Callable[[str], None] | None = None) -> Iterator[Outcome]:
    """The outcomes of ``execute(configs)``, except that a run met ``locked`` is come back to: once the others
    are done, wait for each such run's lock and run it again (which reads the other process's summary).
    ``note`` receives a line for every run waited for."""
    pending = list(configs)
    while pending:
        locked = []
        for outcome in execute(pending):
            if outcome.locked:
                locked.append(outcome)
            else:
                yield outcome
        for outcome in locked:
            if note is not None:
                note(f"waiting for {describe(outcome.config)}: another process is training it ({outcome.run_dir})")
            wait_for_lock(RunRecord(outcome.run_dir))
        pending = [o.config for o in locked]


def wait_for_lock(record: RunRecord) -> None:
    """Return once no process holds ``record``'s lock (at once when it has none)."""
    if fcntl is None:
        return
    try:
        fd = os.open(Path(record.lock_path), os.O_RDONLY)
    except OSError:  # no lock file (the folder was removed: that run never started): nothing to wait for
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # blocks until the holder ends; released at once below
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
