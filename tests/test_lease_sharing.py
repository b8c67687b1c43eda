"""Tests for how `shattering/lease.py` and `shattering/_openmp.py` share the cores between processes: a holder
gives a core back to a process waiting as a guest and takes it again when nobody waits, a stale guest file
counts for nothing, an arriving process counts as waiting only for a while, and OpenMP's wait policy is
libgomp's spinning for a process alone and PASSIVE for one that starts while another holds the cores."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import shattering
from shattering import _openmp, lease
from shattering.runs import run


def _later(seconds: float = 10.0) -> float:
    return time.monotonic() + seconds


def _hold(path: Path) -> int:
    """A flock on ``path`` through its own descriptor (to flock, another process)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def test_a_holder_gives_a_core_to_a_guest_and_takes_it_back(tmp_path):
    first = lease.lease_cores(2, total=2, directory=tmp_path)
    guest = lease.lease_cores(1, total=2, directory=tmp_path)
    assert first.cores == (0, 1) and guest.cores == () and guest.note == "busy" and guest.threads == 1
    assert len(list((tmp_path / "cores").glob("guest-*.lock"))) == 1
    assert guest.rebalance(_later()) is False  # no core is free yet
    assert first.rebalance(_later()) is True
    assert first.cores == (0,) and first.threads == 1
    assert first.changes[-1]["threads"] == 1 and "waited for a core" in first.changes[-1]["why"]
    guest.rebalance(_later(20))
    assert guest.cores == (1,) and guest.note == "" and not list((tmp_path / "cores").glob("guest-*.lock"))
    assert "this guest took it" in guest.changes[-1]["why"]
    assert first.rebalance(_later(30)) is False  # the core is the former guest's now
    guest.release()
    assert first.rebalance(_later(40)) is True and first.cores == (0, 1) and first.threads == 2
    assert [c["threads"] for c in first.facts()["changes"]] == [1, 2]
    first.release()


def test_a_holder_looks_at_most_every_half_second(tmp_path):
    first = lease.lease_cores(2, total=2, directory=tmp_path)
    fd = _hold(tmp_path / "cores" / "guest-elsewhere.lock")
    try:
        assert first.rebalance(first._looked + lease.REBALANCE_S / 2) is False and first.cores == (0, 1)
        assert first.rebalance(first._looked + lease.REBALANCE_S) is True and first.cores == (0,)
    finally:
        os.close(fd)
        first.release()


def test_a_stale_guest_file_counts_for_nothing_and_is_removed(tmp_path):
    first = lease.lease_cores(2, total=2, directory=tmp_path)
    stale = tmp_path / "cores" / "guest-12345-1.lock"
    stale.write_text("")  # its process died: nobody holds the flock
    assert first.rebalance(_later()) is False and first.cores == (0, 1)
    assert not stale.exists()
    first.release()


def test_an_arrival_counts_as_waiting_only_for_a_while(tmp_path):
    first = lease.lease_cores(2, total=2, directory=tmp_path)
    arrival = tmp_path / "cores" / "guest-arrival-999.lock"
    fd = _hold(arrival)
    try:
        old = time.time() - lease.ARRIVAL_S - 1
        os.utime(arrival, (old, old))
        assert first.rebalance(_later()) is False  # arrived over a minute ago and never trained
        os.utime(arrival, None)
        assert first.rebalance(_later(20)) is True and first.cores == (0,)
    finally:
        os.close(fd)
        first.release()


def test_cores_held_elsewhere_counts_held_cores_not_guests(tmp_path):
    assert lease.cores_held_elsewhere(total=2, directory=tmp_path) == 0
    first = lease.lease_cores(1, total=2, directory=tmp_path)
    assert lease.cores_held_elsewhere(total=2, directory=tmp_path) == 1
    second = lease.lease_cores(1, total=2, directory=tmp_path)
    guest = lease.lease_cores(1, total=2, directory=tmp_path)
    assert lease.cores_held_elsewhere(total=2, directory=tmp_path) == 2
    for held in (first, second, guest):
        held.release()
    assert lease.cores_held_elsewhere(total=2, directory=tmp_path) == 0


def _policy_of_a_new_process(cache: Path, **env) -> str:
    child = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT",
                                                              _openmp.PLANNED_ENV, "SHATTERING_SET_OMP_WAIT")}
    child |= {"SHATTERING_CACHE_DIR": str(cache), **env}
    code = "import os, shattering._openmp as o; print(o.WAIT_POLICY, os.environ.get('OMP_WAIT_POLICY'), sep='|')"
    out = subprocess.run([sys.executable, "-c", code], env=child, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def test_a_process_spins_alone_and_sleeps_where_the_cores_are_held(tmp_path):
    cache = tmp_path / "cache"
    assert _policy_of_a_new_process(cache) == "default|None"  # alone: libgomp's spinning, nothing set
    held = lease.lease_cores(lease.cpu_cores(), directory=cache)
    try:
        assert _policy_of_a_new_process(cache) == "PASSIVE|PASSIVE"
        assert _policy_of_a_new_process(cache, **{_openmp.PLANNED_ENV: "1"}) == "default|None"  # a planned worker
        assert _policy_of_a_new_process(cache, OMP_WAIT_POLICY="ACTIVE") == "OMP_WAIT_POLICY=ACTIVE|ACTIVE"
    finally:
        held.release()


@pytest.mark.skipif(lease.cpu_cores() < 2, reason="a core can be given back only by a process holding two")
def test_a_run_gives_a_core_to_a_waiting_process_and_its_record_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(lease, "REBALANCE_S", 0.0)
    folder = lease.cache_dir() / "cores"
    folder.mkdir(parents=True, exist_ok=True)
    fd = _hold(folder / "guest-elsewhere.lock")
    try:
        result = run(shattering.RunConfig(dataset="digits", model="mlp-1x512", corruption="random-labels",
                                          until="epochs", epochs=1, threads="2", out=str(tmp_path / "runs")))
    finally:
        os.close(fd)
    lease_facts = result.summary["execution"]["lease"]
    assert lease_facts["threads"] == 2 and lease_facts["cores"] == [0, 1]  # as it started
    assert lease_facts["changes"][0]["threads"] == 1 and "waited for a core" in lease_facts["changes"][0]["why"]
    assert "openmp_wait" in result.summary["execution"]


def test_spare_threads_borrow_only_the_idle_cores_and_give_them_back(tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("SHATTERING_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(lease, "cpu_cores", lambda: 3)
    (tmp_path / "cores").mkdir()
    held = [_hold(tmp_path / "cores" / f"core-{i}.lock") for i in (0, 1)]  # another process holds two of three
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with lease.spare_threads() as threads:
            assert threads == torch.get_num_threads() == 2  # its own thread and the one idle core
            assert lease.cores_held_elsewhere(total=3, directory=tmp_path) == 3  # leased while borrowed
        assert torch.get_num_threads() == 1 and lease.cores_held_elsewhere(total=3, directory=tmp_path) == 2
        held.append(_hold(tmp_path / "cores" / "core-2.lock"))  # now every core is held: nothing to borrow
        with lease.spare_threads() as threads:
            assert threads == torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
        for fd in held:
            os.close(fd)


def test_spare_threads_never_run_more_threads_than_cores(tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("SHATTERING_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(lease, "cpu_cores", lambda: 2)
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # a process with two threads and no lease: no core looks held
    try:
        with lease.spare_threads() as threads:
            assert threads == torch.get_num_threads() == 2
        torch.set_num_threads(1)
        with lease.spare_threads() as threads:
            assert threads == torch.get_num_threads() == 2
        assert torch.get_num_threads() == 1 and lease.cores_held_elsewhere(total=2, directory=tmp_path) == 0
    finally:
        torch.set_num_threads(before)
