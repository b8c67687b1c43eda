"""Tests for `shattering/tuning.py`, `shattering/lease.py` and the local executor's workers
(`shattering/executors/local.py`): measured choices cached per machine, overrides, a corrupt or unwritable cache,
disjoint core leases, W x T <= cores, and a sweep on two spawned workers that ends as it does in one process."""

from __future__ import annotations

import json

import pytest

from shattering import lease, tuning
from shattering.config import RunConfig
from shattering.errors import ConfigError
from shattering.executors import local
from shattering.executors.local import run_local
from shattering.executors.sweep import run_sweep
from shattering.runs import RunRecord, run
from shattering.tuning import Tuning, WorkerPlan, choose, plan_workers

MLP = dict(model="mlp-1x512", input_shape=(1, 8, 8), num_classes=10, batch_size=32, device="cpu",
           precision="fp32")


@pytest.fixture
def machine(monkeypatch):
    """The machine key, settable by the test."""
    box = {"key": "test machine A"}
    monkeypatch.setattr(tuning, "machine_key", lambda device="cpu": box["key"])
    return box


def _cache():
    return json.loads(tuning.cache_path().read_text())


def test_cache_written_then_read_and_keyed_by_machine(machine, tmp_path):
    assert tuning.cache_path().parent == tmp_path / "user-cache"  # conftest: never the user's own cache
    first = choose(**MLP)
    assert first.source == "measured"
    assert set(first.timings) == {f"contiguous x{t}" for t in tuning.thread_candidates(lease.cpu_cores())}
    assert first.threads in tuning.thread_candidates(lease.cpu_cores()) and first.layout == "contiguous"
    assert list(_cache()) == ["test machine A"]
    again = choose(**MLP)
    assert again.source == "cached" and again.timings == first.timings and again.threads == first.threads
    machine["key"] = "test machine B"  # another CPU (or torch version): measured again, both kept
    assert choose(**MLP).source == "measured"
    assert sorted(_cache()) == ["test machine A", "test machine B"]


def test_a_convolutional_net_measures_both_layouts(machine):
    chosen = choose("alexnet-small", (3, 28, 28), 10, 8, "cpu", "fp32", threads=1)
    assert set(chosen.timings) == {"channels_last x1", "contiguous x1"}
    assert chosen.threads == 1 and chosen.layout in ("channels_last", "contiguous")


def test_overrides_win(machine):
    given = choose(**MLP, layout="contiguous", threads="1")
    assert (given.threads, given.layout, given.source) == (1, "contiguous", "set")
    assert not tuning.cache_path().exists()  # nothing measured
    one = choose(**MLP, threads=2)  # the layout alone is chosen, at the threads given
    assert one.threads == 2 and set(one.timings) == {"contiguous x2"}


def test_a_run_records_the_choice_and_honours_the_flags(machine, tmp_path):
    result = run(dataset="digits", model="mlp-1x512", train_size=100, test_size=50, epochs=1, until="epochs",
                 precision="fp32", threads="1", layout="contiguous", out=str(tmp_path / "runs"))
    execution = result.summary["execution"]
    assert (execution["threads"], execution["layout"], execution["source"]) == (1, "contiguous", "set")
    assert execution["lease"]["threads"] == 1 and len(execution["lease"]["cores"]) == 1
    assert execution["sweep"]["workers"] == 1
    same = RunConfig(dataset="digits", model="mlp-1x512", train_size=100, test_size=50, epochs=1, until="epochs",
                     precision="fp32")
    assert same.run_id() == RunConfig(**{**same.to_dict(), "threads": "2", "layout": "channels_last"}).run_id()


def test_a_run_on_fewer_images_than_a_batch_is_timed_at_its_own_step(machine, monkeypatch, tmp_path):
    """40 training images and a batch of 128 train in steps of 40: the step timed is that one (timing 128 random
    images cost a WRN-28-10 run on 40 images three times its training)."""
    timed = []
    original = tuning._measure

    def spy(net, input_shape, num_classes, batch_size, *args):
        timed.append(batch_size)
        return original(net, input_shape, num_classes, batch_size, *args)

    monkeypatch.setattr(tuning, "_measure", spy)
    run(dataset="digits", model="mlp-1x512", train_size=40, test_size=20, epochs=1, until="epochs",
        precision="fp32", out=str(tmp_path / "runs"))
    assert timed == [40]
    cfg = RunConfig(dataset="digits", model="mlp-1x512", train_size=40)
    assert (cfg.batch_size, cfg.step_batch(), cfg.step_batch(1000), cfg.replace(train_size=None).step_batch()) \
        == (128, 40, 128, 128)


def test_bad_threads_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match="run setting 'threads' \\(--threads\\) must be auto or a positive whole"):
        RunConfig(threads="many")
    assert RunConfig(threads=3).threads == "3"  # TOML's threads = 3


def test_bf16_asked_for_where_the_cpu_only_emulates_it_is_said_once(machine, monkeypatch, capsys):
    """An AVX2-only CPU computes bf16 through emulation (0.9 GFLOP/s against 151 fp32 on a 2-core AMD EPYC): a run
    that asks for bf16 there is told once why it is slow and what to use; fp32, or a CPU with bf16, hears nothing."""
    monkeypatch.setattr(tuning, "cpu_has_native_bf16", lambda: False)
    tuning.warn_emulated_bf16.cache_clear()
    fixed = dict(MLP, layout="contiguous", threads="1")
    choose(**fixed)
    assert capsys.readouterr().err == ""
    choose(**(fixed | {"precision": "bf16"}))
    choose(**(fixed | {"precision": "bf16"}))
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no bf16 instructions" in err and "--precision fp32" in err
    tuning.warn_emulated_bf16.cache_clear()
    monkeypatch.setattr(tuning, "cpu_has_native_bf16", lambda: True)
    choose(**(fixed | {"precision": "bf16"}))
    assert capsys.readouterr().err == ""
    tuning.warn_emulated_bf16.cache_clear()


def test_a_corrupt_cache_is_measured_again_with_one_warning(machine, capsys):
    path = tuning.cache_path()
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    chosen = choose(**MLP)
    assert chosen.source == "measured"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tuning cache" in err and "measuring again" in err
    assert list(_cache()) == ["test machine A"]  # rewritten, whole
    path.write_text(json.dumps({"test machine A": ["a list, not a table"]}))
    assert choose(**MLP).source == "measured"


def test_an_unwritable_cache_never_fails_a_run(machine, monkeypatch, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("SHATTERING_CACHE_DIR", str(blocker / "cache"))  # below a file: nothing can be made
    chosen = choose(**MLP)
    assert chosen.source == "measured"
    held = lease.lease_cores(1)
    assert held.cores == () and held.threads == 1 and held.note == "unavailable"
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "tuning cache" in err[0] and "core lease" in err[1]


def test_two_leases_get_disjoint_cores(tmp_path):
    first = lease.lease_cores(2, total=3, directory=tmp_path)
    second = lease.lease_cores(2, total=3, directory=tmp_path)
    assert first.cores == (0, 1) and second.cores == (2,)
    third = lease.lease_cores(1, total=3, directory=tmp_path)  # every core held: one thread, on a shared core
    assert third.cores == () and third.threads == 1 and "held by another" in third.facts()["why"]
    first.release()
    fourth = lease.lease_cores(3, total=3, directory=tmp_path)
    assert fourth.cores == (0, 1) and fourth.threads == 2
    for held in (second, third, fourth):
        held.release()


def test_workers_times_threads_never_exceeds_the_cores():
    for cores in range(1, 17):
        counts = tuning.thread_candidates(cores)
        assert counts[0] == 1 and counts[-1] == cores
        for scaling in (0.0, 0.5, 0.9, 1.0):  # how much a thread shortens a step
            timings = {f"contiguous x{t}": 1.0 / (1 + scaling * (t - 1)) for t in counts}
            for units in (1, 2, 5, 64):
                plan = plan_workers(Tuning(1, "contiguous", timings), units, cores)
                assert 1 <= plan.workers <= units and plan.workers * plan.threads <= cores
    flat = {f"contiguous x{t}": 1.0 for t in (1, 2, 4)}  # threads gain nothing: one-thread workers
    assert (plan_workers(Tuning(1, "contiguous", flat), 18, 4).workers, plan_workers(
        Tuning(1, "contiguous", flat), 18, 4).threads) == (4, 1)
    linear = {f"contiguous x{t}": 1.0 / t for t in (1, 2, 4)}  # perfect scaling: as wide as the runs leave cores
    assert [plan_workers(Tuning(1, "contiguous", linear), units, 4).threads for units in (1, 2, 18)] == [4, 2, 1]
    assert plan_workers(Tuning(3, "contiguous", source="set"), 18, 4).threads == 3


def _configs(out, seeds=(0, 1, 2)):
    return [RunConfig(dataset="digits", model="mlp-1x512", corruption="random-labels", train_size=120,
                      test_size=40, epochs=2, until="epochs", precision="fp32", seed=s, out=str(out)) for s in seeds]


def _facts(summary):
    final = {k: v for k, v in summary["final"].items() if not k.endswith("seconds")}  # all but the timings
    return (summary["status"], summary["fit_epoch"], final, summary["config"])


@pytest.mark.slow
def test_a_sweep_on_two_workers_ends_as_in_one_process(tmp_path, monkeypatch):
    monkeypatch.delenv("SHATTERING_SWEEP_WORKERS")
    one = run_sweep([c.replace(threads="1") for c in _configs(tmp_path / "one")], pack=1, progress=False,
                    local_workers=1)
    monkeypatch.setattr(local, "plan_workers", lambda tune, units, cores=None: WorkerPlan(2, 1, "test: 2 x 1"))
    monkeypatch.setattr(local, "WORTH_WORKERS", 0)  # a tiny sweep, on workers all the same
    lines = []
    two = run_sweep(_configs(tmp_path / "two"), pack=1, progress=False, log=lines.append)
    assert len(lines) == 3 and all(o.ok and not o.skipped for o in two)
    for a, b in zip(one, two, strict=True):
        assert a.config.run_id() == b.config.run_id()
        assert _facts(a.summary) == _facts(b.summary)
        assert a.summary["execution"]["sweep"]["workers"] == 1
        sweep = b.summary["execution"]["sweep"]
        assert (sweep["workers"], sweep["threads"], sweep["why"]) == (2, 1, "test: 2 x 1")
        assert sweep["pack"]["limit"] == 1 and "as asked for" in sweep["pack"]["why"]
        assert b.summary["execution"]["threads"] == 1


@pytest.mark.slow
def test_locked_and_failed_runs_in_workers_are_reported(tmp_path, monkeypatch):
    good, busy = _configs(tmp_path, seeds=(0, 1))
    bad = good.replace(train_size=10**6, seed=2)  # more examples than digits has: fails when the data load
    with RunRecord(busy.run_dir()).lock():  # this process trains it: the worker meets it locked
        outcomes = list(run_local([good, busy, bad], pack=1, workers=2))
    by_seed = {o.config.seed: o for o in outcomes}
    assert sorted(by_seed) == [0, 1, 2] and len(outcomes) == 3
    assert by_seed[0].ok and by_seed[0].summary["execution"]["sweep"]["workers"] == 2
    assert by_seed[1].locked and not by_seed[1].ok
    assert not by_seed[2].ok and not by_seed[2].locked and "train_size" in by_seed[2].error


@pytest.mark.slow
def test_a_worker_that_dies_reports_its_runs_failed(tmp_path, monkeypatch):
    monkeypatch.setenv("SHATTERING_FAULT", "step:2")  # the spawned workers read it at import: killed mid-run
    outcomes = list(run_local(_configs(tmp_path, seeds=(0, 1)), pack=1, workers=2))
    assert len(outcomes) == 2 and all(not o.ok and not o.locked for o in outcomes)
    assert all("worker process ended (exit code -9)" in o.error for o in outcomes)


def test_in_memory_data_trains_in_this_process(tmp_path, monkeypatch):
    import numpy as np

    from shattering import ArrayData

    rng = np.random.default_rng(0)
    data = ArrayData(rng.random((40, 1, 4, 4), dtype=np.float32), rng.integers(0, 2, 40),
                     rng.random((10, 1, 4, 4), dtype=np.float32), rng.integers(0, 2, 10), name="tiny")
    cfgs = [RunConfig(dataset=data, model="mlp-1x512", epochs=1, until="epochs", precision="fp32", seed=s,
                      out=str(tmp_path)) for s in (0, 1)]
    monkeypatch.setattr(local, "_run_workers", lambda *a, **k: pytest.fail("arrays of this process were shipped"))
    assert local.sweep_plan([c for c in cfgs if local._shippable(c)], workers=2).workers == 1
    outcomes = list(run_local(cfgs, pack=1, workers=2))
    assert len(outcomes) == 2 and all(o.ok for o in outcomes)


def test_a_bad_worker_count_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("SHATTERING_SWEEP_WORKERS", "zero")
    with pytest.raises(ConfigError, match="SHATTERING_SWEEP_WORKERS"):
        local.sweep_plan(_configs(tmp_path))


def test_local_workers_is_refused_for_ray_and_below_one(tmp_path, capsys):
    with pytest.raises(ConfigError, match="--local-workers applies to --executor local only"):
        run_sweep(_configs(tmp_path), executor="ray", local_workers=2)
    from shattering.cli import main

    assert main(["sweep", "fig1bc", "--scale", "smoke", "--local-workers", "0", "--out", str(tmp_path)]) == 2
    assert "--local-workers" in capsys.readouterr().err


def test_a_packed_group_records_how_it_ran(tmp_path):
    outcomes = run_sweep(_configs(tmp_path, seeds=(0, 1)), progress=False)  # MLPs with random labels: one pack
    assert all(o.ok and o.summary["packed"]["members"] == 2 for o in outcomes)
    for o in outcomes:
        execution = o.summary["execution"]
        assert execution["sweep"]["workers"] == 1 and execution["lease"]["threads"] == execution["threads"]


def test_a_failed_measurement_trains_untuned(machine, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(tuning, "_measure", broken)
    chosen = choose(**MLP)
    assert chosen.source == "untuned" and chosen.layout == "auto" and chosen.threads >= 1
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.slow
def test_a_script_without_a_main_guard_still_runs_its_sweep(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"  # a spawned worker re-runs this file and cannot start workers itself
    script.write_text("import json\nfrom shattering.config import RunConfig\nfrom shattering.executors.sweep import "
                      "run_sweep\n"
                      f"cfgs = [RunConfig(dataset='digits', model='mlp-1x512', train_size=60, test_size=20, epochs=1, "
                      f"until='epochs', seed=s, out={str(tmp_path / 'runs')!r}) for s in (0, 1)]\n"
                      "print(json.dumps([o.ok for o in run_sweep(cfgs, pack=1, progress=False)]))\n")
    env = {**os.environ, "SHATTERING_SWEEP_WORKERS": "2", "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300,
                           cwd=tmp_path)
    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout.splitlines()[-1]) == [True, True]
    assert "training them in this process" in child.stderr and "__main__" in child.stderr


def test_a_sweep_too_short_to_pay_for_a_worker_trains_in_this_process(tmp_path, monkeypatch):
    """Workers only where the training could outlast their start-up: the epoch budgets at the measured step
    time bound the sweep's training, and a bound below WORTH_WORKERS start-ups keeps it in this process."""
    flat = {"contiguous x1": 0.001, "contiguous x2": 0.001}
    tune = Tuning(1, "contiguous", flat)
    short = _configs(tmp_path)  # 3 runs x 2 epochs x 1 step of 120 images
    assert local.budget_seconds(short, tune) == pytest.approx(3 * 2 * 1 * 0.001)
    long = [c.replace(epochs=100_000) for c in short]
    assert local.budget_seconds(long, tune) > local.WORTH_WORKERS * local.WORKER_START_SECONDS
    monkeypatch.delenv("SHATTERING_SWEEP_WORKERS")
    monkeypatch.setattr(local, "_heaviest", lambda configs: tune)
    monkeypatch.setattr(local, "plan_workers", lambda tune, units, cores=None: WorkerPlan(2, 1, "two"))
    plan = local.sweep_plan(short, cores=2)
    assert plan.workers == 1 and "start" in plan.why
    assert local.sweep_plan(long, cores=2).workers == 2


def test_compile_auto_pays_only_over_a_budget_long_enough(machine, monkeypatch):
    """auto weighs the compiled step with its compile time over the run's steps: 4 ms compiled against 5 ms eager
    and 2 s of compiling x 2 batch shapes pays over 10,000 steps (44 s against 50 s), not over 100 (4.4 against
    0.5 s); the numbers are in the reason, and they are cached like the other candidates (no second compile)."""
    compiles = []

    def fake_compiled(net, shape, classes, batch, dev, precision, layout, threads, key, seconds_key):
        compiles.append(key)
        return {key: 0.004, seconds_key: 2.0}

    monkeypatch.setattr(tuning, "_measure", lambda net, *a: {c: 0.005 for c in a[-1]})
    monkeypatch.setattr(tuning, "_measure_compiled", fake_compiled)
    monkeypatch.setattr(tuning, "cpp_compiler", lambda: "g++")
    long = choose(**MLP, compile="auto", budget=(10_000, 2))
    short = choose(**MLP, compile="auto", budget=(100, 2))
    assert long.compiled and long.compile_why.startswith("used:") and "50 s" in long.compile_why
    assert not short.compiled and "4.4 s against 0.5 s" in short.compile_why
    assert len(compiles) == 1 and long.facts()["compile"] == {"used": True, "why": long.compile_why}
    assert not choose(**MLP).compiled  # off by default: nothing weighed


def test_compile_without_a_compiler_is_refused_or_left_eager(machine, monkeypatch):
    monkeypatch.setattr(tuning, "cpp_compiler", lambda: None)
    with pytest.raises(ConfigError, match="compile on needs a C\\+\\+ compiler.*--compile off"):
        choose(**MLP, compile="on")
    auto = choose(**MLP, compile="auto")
    assert not auto.compiled and "no C++ compiler" in auto.compile_why


def test_a_compiled_run_trains_as_the_eager_one(machine, tmp_path):
    """compile on (torch.compile of the training step) changes how the step runs, not what it computes: the
    run's numbers equal the eager run's within float32 rounding, and the record says the step was compiled."""
    runs = {mode: run(dataset="digits", model="mlp-1x512", epochs=2, train_size=256, compile=mode,
                      out=str(tmp_path / mode), progress=False).summary for mode in ("off", "on")}
    assert runs["on"]["execution"]["compile"]["used"] and not runs["off"]["execution"]["compile"]["used"]
    assert runs["on"]["run_id"] == runs["off"]["run_id"]  # not in the run id
    for key in ("train_loss", "test_loss", "running_train_loss", "train_acc", "test_acc"):
        assert runs["on"]["final"][key] == pytest.approx(runs["off"]["final"][key], rel=1e-4, abs=1e-5)
