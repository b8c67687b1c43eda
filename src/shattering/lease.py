"""An advisory lease on this machine's CPU cores, so that shattering processes started side by side (two
``shatter run`` in two terminals, the workers of one sweep) divide the cores instead of spinning against each
other: two torch processes of 2 threads each on 2 cores measured about 15x slower than either alone (the README
main job, the randomization test of Section 2.1 of Zhang et al., ICLR 2017, on digits: 164 s each together
against 10.9 s alone; with 1 thread each, 11.2 s each).

One lock file per core under the user cache (``<cache>/cores/core-<i>.lock``); a process takes as many free
ones as it wants threads (``fcntl.flock``, without waiting), at least one: when every core is held it runs with
one thread on a held core rather than not at all. The locks die with the process, so a killed process never
keeps its cores. A cache folder that cannot be written costs a warning line, never the run: the process then
holds no core and keeps the threads it asked for.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs
import torch

try:
    import fcntl
except ImportError:  # no flock on this platform (Windows): no lease, every process takes what it asks for
    fcntl = None

CACHE_ENV = "SHATTERING_CACHE_DIR"


def cache_dir() -> Path:
    """The user cache of shattering: ``$SHATTERING_CACHE_DIR`` when set, else the platform's
    (``$XDG_CACHE_HOME/shattering``, ``~/.cache/shattering`` on Linux)."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path(platformdirs.user_cache_dir("shattering"))


def cpu_cores() -> int:
    """The cores this process may run on (its CPU affinity, as a container or ``taskset`` limits it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def warn(text: str) -> None:
    """One warning line on stderr (a tuning or lease problem never stops a run)."""
    print(f"shattering: warning: {text}", file=sys.stderr)


@dataclass
class CoreLease:
    """The cores a process holds (their numbers) and the threads it runs with: ``len(cores)``, or 1 when every
    core was held by others, or what it asked for when no lease could be taken (``note`` says why)."""

    wanted: int
    cores: tuple[int, ...] = ()
    note: str = ""
    _fds: list[int] = field(default_factory=list, repr=False)

    @property
    def threads(self) -> int:
        if self.cores:
            return len(self.cores)
        return 1 if self.note == "busy" else self.wanted

    def facts(self) -> dict:
        """What the run record keeps: cores asked for, cores held, threads used and why."""
        why = {"": f"held {len(self.cores)} free core(s) of the {self.wanted} wanted",
               "busy": "every core was held by another shattering process: 1 thread on a shared core",
               "unavailable": "no core lease on this platform or cache: the threads asked for"}[self.note]
        return {"wanted": self.wanted, "cores": list(self.cores), "threads": self.threads, "why": why}

    def release(self) -> None:
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)  # closing the last descriptor releases the flock
        self._fds.clear()
        self.cores = ()


def lease_cores(wanted: int, total: int | None = None, directory: Path | None = None) -> CoreLease:
    """Take up to ``wanted`` free cores of ``total`` (default: :func:`cpu_cores`), at least one when any is free;
    release with :meth:`CoreLease.release` (or let the process end)."""
    total = cpu_cores() if total is None else total
    wanted = max(1, min(int(wanted), total))
    lease = CoreLease(wanted)
    if fcntl is None:
        lease.note = "unavailable"
        return lease
    folder = (directory or cache_dir()) / "cores"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for core in range(total):
            if len(lease.cores) >= wanted:
                break
            fd = os.open(folder / f"core-{core}.lock", os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            lease._fds.append(fd)
            lease.cores = (*lease.cores, core)
    except OSError as exc:
        lease.release()
        warn(f"cannot take a core lease in {folder} ({exc.strerror or exc}); running with {wanted} thread(s). "
             f"Set {CACHE_ENV} to a writable folder to share cores with other shattering processes.")
        lease.note = "unavailable"
        return lease
    if not lease.cores:
        lease.note = "busy"
    return lease


@contextlib.contextmanager
def leased_threads(wanted: int) -> Iterator[CoreLease]:
    """Hold a lease of up to ``wanted`` cores and run torch with that many threads inside the block (the
    previous thread count is restored after)."""
    lease = lease_cores(wanted)
    before = torch.get_num_threads()
    torch.set_num_threads(lease.threads)
    try:
        yield lease
    finally:
        torch.set_num_threads(before)
        lease.release()
