"""Tests for the Ray executor (`shattering/executors/ray_executor.py`): on a local Ray cluster of 2 CPUs a sweep
ends with the local executor's summaries; a worker killed mid-run is retried, the run resumes from its
checkpoint and nothing is recorded twice; a run's own error is reported, not retried; without Ray the
command says how to install it."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
import threading
import time

import pytest

from shattering.cli import main
from shattering.config import RunConfig
from shattering.errors import ConfigError
from shattering.executors.outcome import summary_table
from shattering.executors.ray_executor import RayOptions, _run_group
from shattering.executors.sweep import run_sweep
from shattering.runs import RunRecord

RTOL = 1e-5  # a Ray task runs PyTorch on one thread, the test process on several: float sums may round apart
TIMING = {"seconds", "train_seconds", "eval_seconds", "epoch_seconds", "fit_seconds", "finished_at", "resumes",
          "measures_seconds", "pack_seconds",
          "execution"}  # how the process ran it (threads, cores): one Ray task's CPUs against the local measurement
SMALL = dict(dataset="digits", train_size=120, test_size=60, epochs=2, until="epochs", precision="fp32",
             device="cpu", log_every=2)


def _ray_problem() -> str | None:
    try:
        import ray  # noqa: F401
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


RAY_PROBLEM = _ray_problem()
needs_ray = pytest.mark.skipif(RAY_PROBLEM is not None,
                               reason=f"Ray cannot be imported here ({RAY_PROBLEM}); pip install 'shattering[ray]'")


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"SHATTERING_NO_DOWNLOAD": "1", "OMP_NUM_THREADS": "1"}})
    yield ray
    ray.shutdown()


def _close(a, b, path="") -> None:
    """Equal, floats up to RTOL, timing fields ignored."""
    if isinstance(a, dict):
        assert set(a) - TIMING == set(b) - TIMING, path
        for key in set(a) - TIMING:
            _close(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=RTOL, abs=1e-7), path
    else:
        assert a == b, path


def test_without_ray_the_command_names_the_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with contextlib.redirect_stdout(io.StringIO()):
        rc = main(["sweep", "table1", "--scale", "smoke", "--executor", "ray", "--out", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "pip install 'shattering[ray]'" in err
    assert not list(tmp_path.iterdir())  # nothing ran


def test_options_are_checked_together():
    with pytest.raises(ConfigError, match="'--cpus-per-run' parameter of the Ray executor must be a positive number; "
                                          "got 0 instead.* '--max-retries' parameter"):
        RayOptions(cpus_per_run=0, max_retries=-1)
    with pytest.raises(ConfigError, match="valid options: address, cpus_per_run"):
        RayOptions.from_dict({"gpus": 1})


def test_ray_options_without_the_ray_executor_are_refused(tmp_path, capsys):
    rc = main(["sweep", "table1", "--scale", "smoke", "--gpus-per-run", "0.5", "--out", str(tmp_path)])
    assert rc == 2 and "--gpus-per-run applies to --executor ray only" in capsys.readouterr().err
    assert RayOptions.from_dict({"gpus_per_run": 0.25, "address": None}) == RayOptions(gpus_per_run=0.25)


def test_a_task_that_cannot_see_the_records_folder_says_so(tmp_path):
    cfg = RunConfig(**SMALL, out=str(tmp_path))
    (outcome,) = _run_group([cfg], ".shattering-sweep-missing", 1)
    assert not outcome.ok and "shared storage" in outcome.error
    assert not list(tmp_path.iterdir())  # nothing written where nobody would read it


@needs_ray
@pytest.mark.slow
def test_ray_sweep_ends_with_the_local_summaries(tmp_path, ray_cluster):
    def grid(out):
        return [RunConfig(**SMALL, model="mlp-1x512", out=str(out)),  # these two train as one packed model
                RunConfig(**SMALL, model="mlp-1x512", corruption="random-labels", out=str(out)),
                RunConfig(**SMALL, model="alexnet-small", corruption="partial-labels", p=0.5, out=str(out)),
                RunConfig(**SMALL | {"dataset": "cifar10"}, data_dir=str(tmp_path / "empty"), out=str(out))]

    (tmp_path / "empty").mkdir()
    lines = []
    local = run_sweep(grid(tmp_path / "local"), progress=False)
    remote = run_sweep(grid(tmp_path / "ray"), executor="ray", progress=False, log=lines.append)
    assert len(lines) == 4 and all(line.startswith(f"[{i}/4]") for i, line in enumerate(lines, 1))
    for a, b in zip(local, remote, strict=True):
        assert a.config.run_id() == b.config.run_id() and a.run_dir.name == b.run_dir.name
        if a.summary is None:  # the missing CIFAR-10: the run's own error, reported and not retried
            assert b.summary is None and a.error == b.error and "CIFAR-10" in b.error
            continue
        _close(a.summary, b.summary)
        _close(RunRecord(a.run_dir).read_metrics(), RunRecord(b.run_dir).read_metrics())
    assert summary_table(local).splitlines()[0] == summary_table(remote).splitlines()[0]
    assert remote[0].summary["packed"]["members"] == 2
    assert not [p for p in (tmp_path / "ray").iterdir() if p.name.startswith(".shattering-sweep-")]


@needs_ray
@pytest.mark.slow
def test_killed_worker_is_retried_and_its_run_resumes_once(tmp_path, ray_cluster):
    settings = SMALL | dict(train_size=300, batch_size=8, epochs=10, corruption="random-labels")
    configs = [RunConfig(**settings, seed=s, out=str(tmp_path / "ray")) for s in range(3)]
    result: dict = {}
    sweep = threading.Thread(target=lambda: result.setdefault(
        "outcomes", run_sweep(configs, executor="ray", pack=1, progress=False)))
    sweep.start()
    killed, deadline = None, time.time() + 240
    while killed is None and time.time() < deadline and sweep.is_alive():
        for metrics in (tmp_path / "ray").glob("*/metrics.jsonl"):
            if len(metrics.read_text().splitlines()) >= 3 and not (metrics.parent / "summary.json").exists():
                pid = int((metrics.parent / "lock").read_text())  # the Ray worker training this run
                os.kill(pid, signal.SIGKILL)
                killed = metrics.parent
                break
        time.sleep(0.05)
    sweep.join(timeout=300)
    assert killed is not None and not sweep.is_alive()
    outcomes = result["outcomes"]
    assert all(o.ok and o.status == "not-fit" for o in outcomes), [o.error for o in outcomes]
    reference = run_sweep([c.replace(out=str(tmp_path / "local")) for c in configs], pack=1, progress=False)
    for ref, o in zip(reference, outcomes, strict=True):
        record = RunRecord(o.run_dir)
        rows = record.read_metrics()
        assert [r["epoch"] for r in rows] == list(range(1, 11))  # one row per epoch: nothing recorded twice
        steps = [r["step"] for r in record.read_steps()]
        assert steps == sorted(set(steps))
        assert len(record.read_summary()["resumes"]) == (1 if o.run_dir == killed else 0)
        _close(RunRecord(ref.run_dir).read_metrics(), rows)


@needs_ray
@pytest.mark.slow
def test_shatter_sweep_on_ray_from_the_command_line(tmp_path, ray_cluster):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["sweep", "fig2b", "--scale", "smoke", "--executor", "ray", "--cpus-per-run", "1",
                   "--max-retries", "1", "--out", str(tmp_path), "--quiet", "--device", "cpu"])
    text = out.getvalue()
    assert rc == 0, text
    assert text.count("[1/2]") == text.count("[2/2]") == 1 and "status" in text and "inception-small-nobn" in text
    assert len(list(tmp_path.glob("*/summary.json"))) == 2
