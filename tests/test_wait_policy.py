"""Tests for the measured OpenMP wait policy (`shattering/executors/wait_policy.py`, read by
`shattering/_openmp.py` where a `shatter` process starts, before torch loads): a process that starts alone takes
the policy measured on this machine, one that starts beside a lease holder sleeps whatever was measured, a choice
measured elsewhere or an unreadable file changes nothing but a warning, and `shatter tune --wait-policy` measures,
keeps and reports it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shattering import _openmp, lease
from shattering.cli import main
from shattering.errors import ShatteringError
from shattering.executors import wait_policy


def _new_process(cache: Path, **env) -> subprocess.CompletedProcess:
    """A new process that runs the ``shatter`` entry point (:func:`shattering.cli.main`) with ``cache`` as its user
    cache, then imports torch; prints policy | env var | why. The command, ``shatter runs`` of an empty folder,
    never asks for the policy itself, and a policy first read after torch loaded would be "as torch loaded it": what
    is printed is what the entry point decided before the command ran."""
    child = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", _openmp.CHOICE_ENV,
                                                              _openmp.PLANNED_ENV, _openmp.SET_ENV)}
    child |= {lease.CACHE_ENV: str(cache), **env}
    empty = cache.parent / "no-runs"
    empty.mkdir(parents=True, exist_ok=True)
    code = ("import contextlib, io, os, shattering._openmp as o\n"
            "from shattering.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    assert main(['runs', {str(empty)!r}]) == 0\n"
            "import torch\n"
            "print(o.WAIT_POLICY, os.environ.get('OMP_WAIT_POLICY'), o.WAIT_WHY, sep='|')")
    return subprocess.run([sys.executable, "-c", code], env=child, capture_output=True, text=True, check=True)


def _policy(cache: Path, **env) -> str:
    return "|".join(_new_process(cache, **env).stdout.strip().splitlines()[-1].split("|")[:2])


def _keep(cache: Path, policy: str, machine: str | None = None) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    choice = {"policy": policy, "why": f"{policy} measured by the test", "measured_at": "2026-12-03T12:00:00+00:00",
              "timings": {}}
    (cache / _openmp.CHOICE_NAME).write_text(json.dumps({machine or _openmp.machine_key(): choice}))


def test_a_process_alone_takes_the_policy_measured_on_this_machine(tmp_path):
    cache = tmp_path / "cache"
    assert _policy(cache) == "default|None"  # nothing measured: libgomp's spinning
    _keep(cache, "PASSIVE")
    out = _new_process(cache).stdout.strip().split("|")
    assert out[:2] == ["PASSIVE", "PASSIVE"] and "measured on this machine" in out[2] and "by the test" in out[2]
    assert _policy(cache, **{_openmp.CHOICE_ENV: "rule"}) == "default|None"  # the measurement's own jobs
    assert _policy(cache, OMP_WAIT_POLICY="ACTIVE") == "OMP_WAIT_POLICY=ACTIVE|ACTIVE"  # the user's word wins
    _keep(cache, "spin")
    assert _policy(cache) == "default|None"


def test_a_process_beside_a_holder_sleeps_whatever_was_measured(tmp_path):
    cache = tmp_path / "cache"
    _keep(cache, "spin")
    held = lease.lease_cores(lease.cpu_cores(), directory=cache)
    try:
        assert _policy(cache) == "PASSIVE|PASSIVE"
    finally:
        held.release()


def test_a_choice_measured_on_another_machine_is_not_taken(tmp_path):
    cache = tmp_path / "cache"
    _keep(cache, "PASSIVE", machine="Another CPU flags 00000000 x64 | torch 9.9")
    proc = _new_process(cache)
    assert proc.stdout.strip().split("|")[:2] == ["default", "None"] and "warning" not in proc.stderr


@pytest.mark.parametrize("text", ["{not json", json.dumps({"x": 1}), "[1, 2]"])
def test_an_unreadable_choice_costs_one_warning_and_the_process_spins(tmp_path, text):
    cache = tmp_path / "cache"
    cache.mkdir()
    if text == json.dumps({"x": 1}):  # an entry for this machine that is not a choice
        text = json.dumps({_openmp.machine_key(): {"policy": "sometimes"}})
    (cache / _openmp.CHOICE_NAME).write_text(text)
    proc = _new_process(cache)
    assert proc.stdout.strip().split("|")[:2] == ["default", "None"]
    warnings = [line for line in proc.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and _openmp.CHOICE_NAME in warnings[0] and "shatter tune --wait-policy" in warnings[0]


def test_the_cheaper_policy_is_chosen_and_spinning_keeps_a_near_tie():
    passive_wins = {"spin": {"alone_s": 11.2, "together_s": [14.4, 14.4]},
                    "PASSIVE": {"alone_s": 11.1, "together_s": [12.5, 12.2]}}  # the AVX2 AMD EPYC, bench part
    policy, why = wait_policy.choose_policy(passive_wins)
    assert policy == "PASSIVE" and "11.20" in why and "12.50" in why
    spin_wins = {"spin": {"alone_s": 6.5, "together_s": [7.6, 7.8]},
                 "PASSIVE": {"alone_s": 7.2, "together_s": [7.7, 7.9]}}  # the Xeon
    assert wait_policy.choose_policy(spin_wins)[0] == "spin"
    near_tie = {"spin": {"alone_s": 10.0, "together_s": [10.0, 10.0]},
                "PASSIVE": {"alone_s": 9.6, "together_s": [9.6, 9.6]}}  # 4% cheaper: noise
    policy, why = wait_policy.choose_policy(near_tie)
    assert policy == "spin" and "5% less" in why


def test_the_measurement_refuses_a_machine_where_another_process_holds_cores():
    held = lease.lease_cores(1, directory=lease.cache_dir())
    try:
        # this process's own lease counts as held elsewhere by the flock of another descriptor
        with pytest.raises(ShatteringError, match="another shattering process holds cores"):
            wait_policy.measure_wait_policy()
    finally:
        held.release()


@pytest.mark.slow
def test_the_measured_wait_policy_is_kept_and_reported_by_shatter_tune(capsys):
    short = ["--until", "epochs", "--epochs", "40"]  # `shatter tune --wait-policy` trains to fit: too long here
    measured = wait_policy.measure_wait_policy(until=short, repeats=1)
    assert main(["tune", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    choice = facts["measured_wait_policy"]
    assert choice == {k: v for k, v in measured.items() if k not in ("machine", "cache")}
    assert choice["policy"] in ("spin", "PASSIVE") and choice["job"][-4:] == short
    for policy in ("spin", "PASSIVE"):
        timing = choice["timings"][policy]
        assert timing["alone_s"] > 0 and len(timing["together_s"]) == 2 and min(timing["together_s"]) > 0
    assert choice["policy"] == wait_policy.choose_policy(choice["timings"])[0]
    kept = json.loads(Path(facts["wait_policy_cache"]).read_text())
    assert kept[_openmp.machine_key()]["policy"] == choice["policy"]
    expected = "PASSIVE|PASSIVE" if choice["policy"] == "PASSIVE" else "default|None"
    assert _policy(lease.cache_dir()) == expected  # what the next process alone takes
    assert main(["tune"]) == 0
    assert f"measured wait policy: {choice['policy']} for a process that starts alone" in capsys.readouterr().out
