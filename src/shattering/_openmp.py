"""OpenMP's wait policy, decided before torch loads its OpenMP runtime (libgomp reads it once, when it loads).

libgomp's idle threads spin for a while (300,000 turns) between parallel regions before they sleep. Alone on
its cores that is what makes a step of several threads fast (``PASSIVE`` makes every wake-up a system call); on
cores that another process needs, spinning burns them (bench/RESULTS.md has both measurements).

So the policy follows the core lease (:mod:`shattering.lease`): a process that starts while another process holds a
shattering core lease on this machine sleeps (``PASSIVE``), and the holder gives it a core
(:func:`shattering.lease.rebalance`). A process that starts alone takes the policy measured on this machine
(``shatter tune --wait-policy``, :mod:`shattering.executors.wait_policy`, kept in ``<cache>/openmp_wait.json`` per
CPU, cores and torch version): the CPUs measured disagreed on which wins. Where nothing was measured it keeps
libgomp's default (spinning). The workers a sweep starts on cores nobody else holds spin (:data:`PLANNED_ENV`: their
plan never puts more threads than cores). A value the user set (``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``) is kept,
and a process that imported torch before the policy was decided keeps the runtime as it loaded.

The policy is decided where a process starts, never on ``import shattering``: by the ``shatter`` command
(:func:`shattering.cli.main`, once its arguments are parsed, before the command imports torch) and by the
processes shattering starts (a sweep's workers begin in :func:`process_entry`; the worker processes of a Ray
cluster that shattering starts or joins call :func:`set_openmp_wait_policy` as they start). A Python program that
wants the same calls :func:`set_openmp_wait_policy` (``shattering.set_openmp_wait_policy()``) before it imports
torch. :data:`WAIT_POLICY` says which policy this process runs under, and :data:`WAIT_WHY` why, for the
run records; where nothing decided it yet, the first read decides it.
"""

import hashlib
import importlib
import importlib.metadata
import json
import os
import sys
from pathlib import Path
from typing import Any

from . import lease  # imports no torch (nor may anything else here: shattering.files does, through faults)

PLANNED_ENV = "SHATTERING_PLANNED_CORES"  # set by the local executor for workers it planned on free cores
SET_ENV = "SHATTERING_SET_OMP_WAIT"  # marks an OMP_WAIT_POLICY that shattering set (children inherit it)
CHOICE_ENV = "SHATTERING_OPENMP_WAIT"  # "rule": ignore the measured choice (the measurement's own jobs set it)
CHOICE_NAME = "openmp_wait.json"
MEASURE_HINT = "`shatter tune --wait-policy` measures it"


def cpu_identity() -> str:
    """The CPU's model name, a hash of its flags and the cores this process may use (read without torch)."""
    name, flags = "unknown CPU", ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and name == "unknown CPU":
                    name = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = value.strip()
    except OSError:
        pass
    return f"{name} flags {hashlib.sha256(flags.encode()).hexdigest()[:8]} x{lease.cpu_cores()}"


def machine_key() -> str:
    """What a measured wait policy holds for: the CPU (:func:`cpu_identity`) and the installed torch."""
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return f"{cpu_identity()} | torch {version}"


def choice_path() -> Path:
    return lease.cache_dir() / CHOICE_NAME


def measured_choice() -> dict | None:
    """The wait policy measured on this machine (``policy``, ``why``, ``timings``, ``measured_at``), or None where
    none was measured, :data:`CHOICE_ENV` is ``rule``, or the file cannot be read (one warning line)."""
    if os.environ.get(CHOICE_ENV) == "rule":
        return None
    path = choice_path()
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = None
    entry = data.get(machine_key()) if isinstance(data, dict) else None
    if not isinstance(data, dict) or (entry is not None and (not isinstance(entry, dict) or entry.get("policy")
                                                             not in ("spin", "PASSIVE"))):
        lease.warn(f"the measured OpenMP wait policy in {path} is not readable; spinning alone until "
                   f"{MEASURE_HINT} again.")
        return None
    return entry


def _passive(why: str) -> tuple[str, str]:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ[SET_ENV] = "1"
    return "PASSIVE", why


def _decide() -> tuple[str, str]:
    """(policy, why): the policy as the tuning cache keys it, and why, in words."""
    if "torch" in sys.modules:
        policy = os.environ.get("OMP_WAIT_POLICY", "default")
        return policy, f"as torch loaded it, before shattering decided one (OMP_WAIT_POLICY {policy})"
    if os.environ.get(SET_ENV) and os.environ.get("OMP_WAIT_POLICY") == "PASSIVE":
        return "PASSIVE", "PASSIVE: inherited from the shattering process that started this one"
    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        if name in os.environ:
            return f"{name}={os.environ[name]}", f"{name}={os.environ[name]}, as the user set it"
    if os.environ.get(PLANNED_ENV):
        return "default", "spin (libgomp's default): a sweep worker on cores its plan leaves to it"
    held = lease.cores_held_elsewhere()
    if held:
        if held >= lease.cpu_cores():  # every core held: the holders give one back while this process loads
            lease.announce_arrival()
        return _passive(f"PASSIVE: another shattering process held {held} core(s) when this one started")
    choice = measured_choice()
    if choice is None:
        return "default", ("spin (libgomp's default): no other shattering process held a core when this one "
                           f"started, and no wait policy was measured on this machine ({MEASURE_HINT})")
    when = f"measured on this machine at {choice.get('measured_at', 'an unknown time')}: {choice.get('why', '')}"
    if choice["policy"] == "PASSIVE":
        return _passive(f"PASSIVE, alone on the cores: {when}")
    return "default", f"spin (libgomp's default), alone on the cores: {when}"


_decided: tuple[str, str] | None = None  # (policy, why) of this process, once decided


def set_openmp_wait_policy() -> tuple[str, str]:
    """Decide OpenMP's wait policy for this process and set it in the environment (``OMP_WAIT_POLICY=PASSIVE``
    where the process should sleep; the module's docstring says when); ``(policy, why)``. The first call decides,
    later calls return the same. Call it before torch is imported: torch's OpenMP runtime reads the policy once, as
    it loads, so a call after that changes nothing and says so. ``import shattering`` does not call it; the
    ``shatter`` command and the processes shattering starts do."""
    global _decided
    if _decided is None:
        _decided = _decide()
    return _decided


def process_entry(target: str, *args: Any) -> Any:
    """Where a process that shattering spawns begins (a sweep's worker): the wait policy decided before anything
    imports torch, then ``target`` (``"package.module:function"``, imported now) called with ``args``. Spawning
    ``target`` itself would import its module, and torch with it, first."""
    set_openmp_wait_policy()
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)(*args)


def __getattr__(name: str) -> str:
    """:data:`WAIT_POLICY` and :data:`WAIT_WHY`: this process's policy and why (decided now where nothing did)."""
    if name == "WAIT_POLICY":
        return set_openmp_wait_policy()[0]
    if name == "WAIT_WHY":
        return set_openmp_wait_policy()[1]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
