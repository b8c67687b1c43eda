"""An advisory lease on this machine's CPU cores, so that shattering processes started side by side (two
``shatter run`` in two terminals, the workers of one sweep) divide the cores instead of spinning against each
other: two torch processes of 2 threads each on 2 cores ran many times slower than either alone (bench/RESULTS.md:
the README main job, the randomization test of Section 2.1 of Zhang et al., ICLR 2017, on digits).

One lock file per core under the user cache (``<cache>/cores/core-<i>.lock``); a process takes as many free ones as
it wants threads (``fcntl.flock``, without waiting), at least one: when every core is held it runs with one thread
on a held core rather than not at all, and says so with a guest lock (``guest-<pid>.lock``). The leases are
rebalanced while runs train (:func:`rebalance`, called after every training step, looks at most twice a second): a
process holding several cores gives one back while a guest waits, a guest takes a core as soon as one is free, and
a process that gave cores back takes them again when no guest is left. The thread count changes with it
(``torch.set_num_threads``), and the run record lists every change. The locks die with the process, so a killed
process never keeps its cores. A cache folder that cannot be written costs a warning line, never the run: the
process then holds no core and keeps the threads it asked for.

Whether another process holds cores also decides OpenMP's wait policy before torch loads
(:mod:`shattering._openmp`, through :func:`cores_held_elsewhere`): this module imports torch only where it sets
threads.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

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


REBALANCE_S = 0.5  # a holder looks at the other leases at most this often (a look: a few non-blocking flocks)
GUEST_REBALANCE_S = 0.1  # a guest (1 thread on a shared core) looks for a free core this often


def _try_lock(path: Path) -> int | None:
    """An open descriptor of ``path`` holding its flock, or None when another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


ARRIVAL_S = 60.0  # a process that arrived on a busy machine counts as waiting this long before it trains
_arrival: tuple[Path, int] | None = None  # this process's arrival lock (announce_arrival)


def announce_arrival(directory: Path | None = None) -> None:
    """Say, before torch loads, that this process arrived while other processes hold every core it may want:
    a guest lock that the holders answer by giving a core back (:meth:`CoreLease.rebalance`) while this process
    still loads torch and its data. It ends when this process takes a lease, or after :data:`ARRIVAL_S`
    (a process that imported shattering and never trains stops counting)."""
    global _arrival
    if fcntl is None or _arrival is not None:
        return
    with contextlib.suppress(OSError):
        folder = (directory or cache_dir()) / "cores"
        path = folder / f"guest-arrival-{os.getpid()}.lock"
        fd = _try_lock(path)
        if fd is not None:
            _arrival = (path, fd)


def _end_arrival() -> None:
    global _arrival
    if _arrival is not None:
        path, fd = _arrival
        with contextlib.suppress(OSError):
            path.unlink()
        with contextlib.suppress(OSError):
            os.close(fd)
        _arrival = None


def _live_guests(folder: Path) -> int:
    """How many other processes wait as guests (their guest lock is held); stale guest files are removed."""
    live = 0
    own = _arrival[0] if _arrival is not None else None
    for path in folder.glob("guest-*.lock"):
        if path == own:
            continue
        if path.name.startswith("guest-arrival-"):
            with contextlib.suppress(OSError):
                if time.time() - path.stat().st_mtime > ARRIVAL_S:
                    continue
        try:
            fd = _try_lock(path)
        except OSError:
            continue
        if fd is None:
            live += 1
        else:  # its process is gone
            with contextlib.suppress(OSError):
                path.unlink()
            os.close(fd)
    return live


def cores_held_elsewhere(total: int | None = None, directory: Path | None = None) -> int:
    """How many of this machine's cores other processes hold a lease on now (0 where no lease can be read).
    Imports no torch: :mod:`shattering._openmp` asks it before torch loads."""
    if fcntl is None:
        return 0
    folder = (directory or cache_dir()) / "cores"
    held = 0
    try:
        for core in range(cpu_cores() if total is None else total):
            path = folder / f"core-{core}.lock"
            if not path.exists():
                continue
            fd = _try_lock(path)
            if fd is None:
                held += 1
            else:
                os.close(fd)
    except OSError:
        return 0
    return held


@dataclass
class CoreLease:
    """The cores a process holds (their numbers) and the threads it runs with: ``len(cores)``, or 1 when every
    core was held by others (a guest), or what it asked for when no lease could be taken (``note`` says why).
    ``changes``: how :meth:`rebalance` changed it while the process ran."""

    wanted: int
    cores: tuple[int, ...] = ()
    note: str = ""
    total: int = 1
    folder: Path | None = None
    changes: list[dict] = field(default_factory=list)
    _fds: dict[int, int] = field(default_factory=dict, repr=False)  # core -> descriptor holding its flock
    _guest: tuple[Path, int] | None = field(default=None, repr=False)
    _started: float = field(default_factory=time.monotonic, repr=False)
    _looked: float = field(default_factory=time.monotonic, repr=False)

    @property
    def threads(self) -> int:
        if self.cores:
            return len(self.cores)
        return 1 if self.note == "busy" else self.wanted

    def facts(self) -> dict:
        """What the run record keeps: cores asked for, cores held, threads used and why, and every change
        since (the list is this lease's own, so a record written later shows the changes made until then)."""
        why = {"": f"held {len(self.cores)} free core(s) of the {self.wanted} wanted",
               "busy": "every core was held by another shattering process: 1 thread on a shared core",
               "unavailable": "no core lease on this platform or cache: the threads asked for"}[self.note]
        return {"wanted": self.wanted, "cores": list(self.cores), "threads": self.threads, "why": why,
                "changes": self.changes}

    def _take(self, n: int) -> int:
        """Take up to ``n`` more free cores; how many were taken."""
        taken = 0
        for core in range(self.total):
            if taken >= n:
                break
            if core in self._fds:
                continue
            fd = _try_lock(self.folder / f"core-{core}.lock")
            if fd is not None:
                self._fds[core] = fd
                taken += 1
        self.cores = tuple(sorted(self._fds))
        return taken

    def _give(self, core: int) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fds.pop(core))  # closing the last descriptor releases the flock
        self.cores = tuple(sorted(self._fds))

    def _become_guest(self) -> None:
        path = self.folder / f"guest-{os.getpid()}-{id(self)}.lock"
        fd = _try_lock(path)
        if fd is not None:
            self._guest = (path, fd)

    def _leave_guest(self) -> None:
        if self._guest is not None:
            path, fd = self._guest
            with contextlib.suppress(OSError):
                path.unlink()
            with contextlib.suppress(OSError):
                os.close(fd)
            self._guest = None

    def rebalance(self, now: float | None = None) -> bool:
        """Look at the other leases (at most every :data:`REBALANCE_S` seconds, a guest every
        :data:`GUEST_REBALANCE_S`): give one core back while another
        process waits as a guest, take a free core as a guest, take back cores given away when nobody waits.
        Returns whether the threads changed (the caller sets them: :func:`rebalance` does)."""
        now = time.monotonic() if now is None else now
        if now - self._looked < (GUEST_REBALANCE_S if self.note == "busy" else REBALANCE_S):
            return False
        if self.folder is None or self.note == "unavailable":
            return False
        self._looked = now
        before = self.threads
        try:
            if self.note == "busy":
                if self._take(1):
                    self._leave_guest()
                    self.note = ""
                    why = "a core became free: this guest took it"
                else:
                    return False
            else:
                guests = _live_guests(self.folder)
                if guests and len(self.cores) > 1:
                    self._give(self.cores[-1])
                    why = "another shattering process waited for a core: one was given back"
                elif not guests and len(self.cores) < self.wanted and self._take(self.wanted - len(self.cores)):
                    why = "no other process waits: free cores taken, up to the threads wanted"
                else:
                    return False
        except OSError:
            return False
        self.changes.append({"after_s": round(now - self._started, 3), "cores": list(self.cores),
                             "threads": self.threads, "why": why})
        return self.threads != before

    def release(self) -> None:
        for core in list(self._fds):
            self._give(core)
        self._leave_guest()
        self.cores = ()


def lease_cores(wanted: int, total: int | None = None, directory: Path | None = None) -> CoreLease:
    """Take up to ``wanted`` free cores of ``total`` (default: :func:`cpu_cores`), at least one when any is free
    (else wait as a guest, with one thread); release with :meth:`CoreLease.release` (or let the process end)."""
    total = cpu_cores() if total is None else total
    wanted = max(1, min(int(wanted), total))
    lease = CoreLease(wanted, total=total)
    if fcntl is None:
        lease.note = "unavailable"
        return lease
    folder = (directory or cache_dir()) / "cores"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lease.folder = folder
        lease._take(wanted)
        _end_arrival()
        if not lease.cores:
            lease.note = "busy"
            lease._become_guest()
    except OSError as exc:
        lease.release()
        warn(f"cannot take a core lease in {folder} ({exc.strerror or exc}); running with {wanted} thread(s). "
             f"Set {CACHE_ENV} to a writable folder to share cores with other shattering processes.")
        lease.note = "unavailable"
        lease.folder = None
        return lease
    return lease


_held: list[CoreLease] = []  # the leases of this process's :func:`leased_threads` blocks, innermost last


def rebalance() -> None:
    """Rebalance this process's innermost lease (:meth:`CoreLease.rebalance`) and set torch's threads to match;
    the trainers call it after every step (cheap: a clock read, and at most two looks a second)."""
    if _held and _held[-1].rebalance():
        import torch

        torch.set_num_threads(_held[-1].threads)


@contextlib.contextmanager
def leased_threads(wanted: int) -> Iterator[CoreLease]:
    """Hold a lease of up to ``wanted`` cores and run torch with that many threads inside the block (the
    previous thread count is restored after)."""
    import torch

    lease = lease_cores(wanted)
    before = torch.get_num_threads()
    torch.set_num_threads(lease.threads)
    _held.append(lease)
    try:
        yield lease
    finally:
        _held.remove(lease)
        torch.set_num_threads(before)
        lease.release()


@contextlib.contextmanager
def spare_threads() -> Iterator[int]:
    """Run torch inside the block with this process's threads plus one per core that no shattering process holds,
    those cores leased for the block (the previous thread count is restored after); yields the thread count.
    For work between training steps that parallelizes better than the step (the ``information`` probe's distance
    matrices, while a small network trains on one thread): it borrows only idle cores, so two runs side by side
    keep theirs."""
    import torch

    before, total = torch.get_num_threads(), cpu_cores()
    free = min(total - cores_held_elsewhere(), total - before)  # never more threads than cores (no lease held)
    if free <= 0:
        yield before
        return
    lease = lease_cores(free)
    threads = before + len(lease.cores)
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(before)
        lease.release()
