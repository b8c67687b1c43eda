"""The pack size of a sweep on worker processes: measured per machine, scored by the sweep's estimated time
(shattering.executors.pack_size)."""

from __future__ import annotations

import math

import pytest

from shattering import tuning
from shattering.config import RunConfig
from shattering.executors import local, pack_size
from shattering.executors.local import run_local
from shattering.executors.pack_size import _makespan, budget_steps, choose_pack_size
from shattering.tuning import WorkerPlan

LEVELS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def _grid(out, seeds=(0, 1, 2), **extra):
    """Fig. 1b/1c's grid: 6 corruption levels x ``seeds`` of MLP 1x512 on a small digits subset."""
    base = dict(dataset="digits", model="mlp-1x512", corruption="partial-labels", train_size=256, test_size=64,
                epochs=2, until="epochs", precision="fp32", out=str(out))
    return [RunConfig(**(base | extra), p=p, seed=s) for s in seeds for p in LEVELS]


def _fake_steps(monkeypatch, per_step):
    """Pack step times from ``per_step(k)`` instead of the clock; returns the sizes that were 'measured'."""
    asked = []

    def fake(model, k, *args):
        asked.append(k)
        return per_step(k)

    monkeypatch.setattr(pack_size, "packed_step_seconds", fake)
    return asked


def test_the_makespan_is_the_queue_taken_by_the_first_free_worker():
    assert _makespan([5, 3, 5, 3, 5, 3], 2) == 13  # 5 | 3, 3+5=8 | 5+3=8, 8+5=13 | 8+3=11
    assert _makespan([4] * 6, 2) == 12 and _makespan([4] * 6, 4) == 8 and _makespan([], 3) == 0.0
    assert _makespan([1, 1, 1], 1) == 3


def test_a_pack_whose_step_costs_little_more_than_one_run_is_chosen_where_workers_stay_busy(monkeypatch, tmp_path):
    """Step time 1 + k: 18 runs (6 levels x 3 seeds) on 2 workers take 9 x 2 = 18 unpacked, 5 rounds x 3 = 15 in
    pairs, 3 x 4 = 12 in threes, 13 in packs of 4 (4 + 2 per seed) and 2 x 7 = 14 in packs of 6 (one per seed, a
    worker idle in the second round): threes."""
    asked = _fake_steps(monkeypatch, lambda k: 1.0 + k)
    cfgs = _grid(tmp_path)
    choice = choose_pack_size(cfgs, workers=2, threads=1)
    steps = budget_steps(cfgs[0])
    assert steps == 2 * math.ceil(256 / 128)
    assert choice.limit == 3
    assert {k: v / steps for k, v in choice.estimates.items()} == {1: 18.0, 2: 15.0, 3: 12.0, 4: 13.0, 6: 14.0}
    assert sorted(asked) == sorted([1, 2, 3, 4, 6] * tuning.ROUNDS)  # every pack size a candidate forms, once a round
    assert choice.seconds_per_step == {f"mlp-1x512 pack of {k} x1": 1.0 + k for k in (1, 2, 3, 4, 6)}
    assert "packs of up to 3" in choice.why and "2 worker(s) of 1 thread(s)" in choice.why
    facts = choice.facts()
    assert facts["limit"] == 3 and facts["estimated_seconds"]["6"] == 14.0 * steps
    again = choose_pack_size(cfgs, workers=2, threads=1)  # read from the machine's cache: nothing timed again
    assert again == choice and len(asked) == 5 * tuning.ROUNDS


def test_packing_that_saves_nothing_is_left_off(monkeypatch, tmp_path):
    """Step time k (a pack of k costs k runs): unpacked 9, threes 9, packs of 6 12: the smallest of the best."""
    _fake_steps(monkeypatch, lambda k: float(k))
    choice = choose_pack_size(_grid(tmp_path), workers=2, threads=1)
    assert choice.limit == 1
    _fake_steps(monkeypatch, lambda k: 1.0)  # a pack costs one run's step: one pack per seed, as wide as it goes
    tuning.cache_path().unlink()
    assert choose_pack_size(_grid(tmp_path), workers=3, threads=1).limit == 6


def test_runs_that_cannot_share_a_pack_need_no_measurement(monkeypatch, tmp_path):
    _fake_steps(monkeypatch, lambda k: pytest.fail("nothing to pack, nothing to time"))
    cnn = [RunConfig(dataset="digits", model="alexnet-small", seed=s, out=str(tmp_path)) for s in (0, 1)]
    choice = choose_pack_size(cnn, workers=2, threads=1)
    assert choice.limit == 1 and "no two runs" in choice.why


def test_the_real_measurement_times_each_pack_size_and_keeps_it(tmp_path):
    cfgs = _grid(tmp_path, seeds=(0,))[:4]
    choice = choose_pack_size(cfgs, workers=2, threads=1)
    assert set(choice.seconds_per_step) == {f"mlp-1x512 pack of {k} x1" for k in (1, 2, 3, 4)}
    assert all(s > 0 for s in choice.seconds_per_step.values()) and 1 <= choice.limit <= 4
    assert choose_pack_size(cfgs, workers=2, threads=1).seconds_per_step == choice.seconds_per_step  # cached


def test_a_failed_measurement_falls_back_to_packs_per_worker(monkeypatch, tmp_path, capsys):
    def broken(*args):
        raise RuntimeError("no clock")

    monkeypatch.setattr(pack_size, "packed_step_seconds", broken)
    choice = local.pack_choice(_grid(tmp_path), None, WorkerPlan(2, 1, "test"))
    assert choice.limit == 3 and "no measurement (RuntimeError)" in choice.why  # 18 runs / (3 per worker x 2)
    assert "could not time packed steps" in capsys.readouterr().err
    assert local.pack_choice(_grid(tmp_path), 5, WorkerPlan(2, 1, "test")).limit == 5  # --pack wins, untimed


@pytest.mark.slow
def test_a_sweep_on_workers_records_its_pack_choice(tmp_path, monkeypatch):
    monkeypatch.delenv("SHATTERING_SWEEP_WORKERS")
    monkeypatch.setattr(local, "plan_workers", lambda tune, units, cores=None: WorkerPlan(2, 1, "test: 2 x 1"))
    monkeypatch.setattr(local, "WORTH_WORKERS", 0)  # a tiny sweep, on workers all the same
    cfgs = _grid(tmp_path, seeds=(0, 1), epochs=1)
    outcomes = list(run_local(cfgs))
    assert len(outcomes) == 12 and all(o.ok for o in outcomes)
    chosen = {o.summary["execution"]["sweep"]["pack"]["limit"] for o in outcomes}
    assert len(chosen) == 1
    limit = chosen.pop()
    for o in outcomes:
        sweep = o.summary["execution"]["sweep"]
        assert sweep["workers"] == 2 and sweep["pack"]["seconds_per_step"]
        assert o.summary.get("packed", {"members": 1})["members"] <= limit
