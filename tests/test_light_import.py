"""Tests for a light `import shattering` (`shattering/__init__.py`, `shattering/_lazy.py`): `shatter --help` and
`shatter runs` start without torch or scikit-learn (the modules a child process holds are checked, not timings),
importing the package leaves OpenMP's wait policy alone even where another process holds the cores, every name it
exports still loads on use, and a worker process a sweep spawns decides its policy before torch loads
(`shattering._openmp.process_entry`). That the `shatter` entry point decides it: tests/test_wait_policy.py."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
from pathlib import Path

import pytest

import shattering
from shattering import _openmp, lease

HEAVY = ("torch", "sklearn")
# Run in a child after its work: the heavy modules it holds, and its OpenMP variables, as the last line of stdout.
REPORT = ("import json as _j, os as _o, sys as _s\n"
          f"print(_j.dumps({{'heavy': sorted(m for m in _s.modules if m.split('.')[0] in {HEAVY!r}),\n"
          f"                'omp': _o.environ.get('OMP_WAIT_POLICY'), 'set': _o.environ.get({_openmp.SET_ENV!r})}}))\n")


def _clean_env(cache: Path) -> dict[str, str]:
    """This environment without OpenMP settings, with ``cache`` as the user cache (where the core leases are)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", _openmp.SET_ENV,
                                                            _openmp.PLANNED_ENV, _openmp.CHOICE_ENV)}
    return env | {lease.CACHE_ENV: str(cache)}


def _child(code: str, cache: Path) -> tuple[dict, str]:
    """Run ``code`` then :data:`REPORT` in a new Python process; (the report, the rest of stdout)."""
    proc = subprocess.run([sys.executable, "-c", code + "\n" + REPORT], env=_clean_env(cache), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    *out, last = proc.stdout.strip().splitlines()
    return json.loads(last), "\n".join(out)


def _shatter(argv: list[str], cache: Path) -> tuple[dict, str]:
    """``python -m shattering ARGV`` (as ``shatter`` runs it), then :data:`REPORT`."""
    code = ("import runpy, sys\n"
            f"sys.argv = ['shatter', *{argv!r}]\n"
            "try:\n"
            "    runpy.run_module('shattering', run_name='__main__', alter_sys=True)\n"
            "except SystemExit as exc:\n"
            "    assert exc.code in (0, None), exc.code\n")
    return _child(code, cache)


@pytest.fixture
def held_cores(tmp_path):
    """Every core leased by this process, as another shattering process training would hold them."""
    cache = tmp_path / "cache"
    held = lease.lease_cores(lease.cpu_cores(), directory=cache)
    yield cache
    held.release()


def test_import_shattering_loads_no_torch_and_leaves_the_environment_alone(held_cores):
    # where a process that decided would sleep (PASSIVE): importing the package decides nothing
    report, _ = _child("import shattering\nassert shattering.__version__", held_cores)
    assert report == {"heavy": [], "omp": None, "set": None}
    # ... until the program asks, before it imports torch
    report, out = _child("import shattering\nprint(shattering.set_openmp_wait_policy()[0])", held_cores)
    assert out == "PASSIVE" and report == {"heavy": [], "omp": "PASSIVE", "set": "1"}


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"]])
def test_shatter_help_imports_no_torch(argv, tmp_path):
    report, out = _shatter(argv, tmp_path / "cache")
    assert report["heavy"] == [] and "usage: shatter" in out


def test_shatter_runs_imports_no_torch(tmp_path):
    out_dir = tmp_path / "runs"
    result = shattering.run(shattering.RunConfig(dataset="digits", model="mlp-1x512", corruption="random-labels",
                                                 train_size=200, test_size=100, epochs=2, until="epochs",
                                                 out=str(out_dir)))
    report, out = _shatter(["runs", str(out_dir)], tmp_path / "cache")
    assert report["heavy"] == [] and result.run_dir.name.rsplit("_", 1)[-1] in out and "1 run(s)" in out


def test_every_export_loads_on_use():
    names = set(shattering.__all__)
    assert names <= set(dir(shattering)) and {"RunConfig", "run", "load_runs", "set_openmp_wait_policy"} <= names
    for name in sorted(names):
        assert getattr(shattering, name) is not None
    from shattering import RunResult, reproduce  # noqa: F401  (the `from` form too)

    assert shattering.runs.run is shattering.run  # a submodule, as the eager imports left it
    with pytest.raises(AttributeError):
        shattering.not_a_name  # noqa: B018
    from shattering.experiments import expressivity
    from shattering.experiments.expressivity import expressivity as function

    assert expressivity is function  # the export, not its submodule of the same name


def _report_policy(queue) -> None:
    """A spawned process's target (through :func:`shattering._openmp.process_entry`): what it starts with."""
    queue.put((os.environ.get("OMP_WAIT_POLICY"), _openmp.WAIT_WHY, "torch" in sys.modules))


def test_a_spawned_worker_decides_its_policy_before_torch(held_cores, monkeypatch):
    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", _openmp.SET_ENV, _openmp.PLANNED_ENV, _openmp.CHOICE_ENV):
        monkeypatch.delenv(name, raising=False)  # a spawned process starts with this process's environment
    monkeypatch.setenv(lease.CACHE_ENV, str(held_cores))
    ctx = mp.get_context("spawn")  # as shattering.executors.local starts its workers
    queue = ctx.Queue()
    proc = ctx.Process(target=_openmp.process_entry, args=(f"{__name__}:_report_policy", queue))
    proc.start()
    try:
        env, why, torch_loaded = queue.get(timeout=120)
    finally:
        proc.join(timeout=30)
    assert env == "PASSIVE" and "another shattering process held" in why and not torch_loaded
