"""Checkpoints where epochs are short: after the first epoch that ends a set time after the last checkpoint, and
always after the last epoch (shattering.train.book.RunBook.checkpoint_due); results do not change, a crash costs
at most that time. (conftest.py sets a checkpoint after every epoch for the other tests.)"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from shattering.errors import ConfigError
from shattering.executors.sweep import run_sweep
from shattering.runs import RunRecord, run
from shattering.train import book

RUN = dict(dataset="digits", model="mlp-1x512", corruption="random-labels", train_size=200, test_size=100,
           batch_size=16, until="epochs", epochs=4, precision="fp32", device="cpu", threads=1)
FLAGS = ["--dataset", "digits", "--model", "mlp-1x512", "--corruption", "random-labels", "--train-size", "200",
         "--test-size", "100", "--batch-size", "16", "--until", "epochs", "--epochs", "4", "--precision", "fp32",
         "--device", "cpu", "--threads", "1", "--quiet"]


@pytest.fixture
def saves(monkeypatch):
    """The run folders of every checkpoint written, in order."""
    written = []
    original = RunRecord.save_checkpoint

    def counted(self, state):
        written.append(self.dir.name)
        return original(self, state)

    monkeypatch.setattr(RunRecord, "save_checkpoint", counted)
    return written


def _facts(summary):
    return (summary["status"], summary["epochs"], summary["steps"],
            {k: v for k, v in summary["final"].items() if not k.endswith("seconds")})


def test_short_epochs_write_one_checkpoint_and_train_the_same(tmp_path, monkeypatch, saves):
    every = run(**RUN, out=str(tmp_path / "every"))
    assert len(saves) == 4  # conftest: after every epoch
    monkeypatch.setenv(book.CHECKPOINT_EVERY_ENV, "3600")
    saves.clear()
    sparse = run(**RUN, out=str(tmp_path / "sparse"))
    assert len(saves) == 1  # the last epoch's: the trained network stays for `shatter measures`
    assert (sparse.run_dir / "checkpoint.pt").exists()
    assert _facts(sparse.summary) == _facts(every.summary)


def test_packed_members_checkpoint_on_the_same_clock(tmp_path, monkeypatch, saves):
    monkeypatch.setenv(book.CHECKPOINT_EVERY_ENV, "3600")
    cfgs = [dict(RUN, seed=s, out=str(tmp_path)) for s in (0, 1)]
    from shattering.config import RunConfig

    outcomes = run_sweep([RunConfig(**c) for c in cfgs], progress=False)
    assert all(o.ok and o.summary["packed"]["members"] == 2 for o in outcomes)
    assert sorted(saves) == sorted(o.run_dir.name for o in outcomes)  # one each, at its last epoch


def test_the_default_interval_grows_with_the_writing_time_and_a_bad_one_is_refused(monkeypatch, tmp_path):
    monkeypatch.delenv(book.CHECKPOINT_EVERY_ENV)
    assert book.checkpoint_every() is None  # not set: chosen by the book
    from shattering.config import RunConfig
    from shattering.train.data import make_data

    cfg = RunConfig(**RUN, out=str(tmp_path))
    ledger = book.RunBook(cfg.resolved(), make_data(cfg.resolved()), record=None)
    assert ledger.checkpoint_interval() == book.CHECKPOINT_EVERY_S == 1.0
    clock = iter([10.0, 12.0])  # a checkpoint that takes 2 s to write
    monkeypatch.setattr(book.time, "perf_counter", lambda: next(clock))
    assert ledger.checkpoint(lambda: None, ended=True)
    assert ledger.checkpoint_write_seconds == 2.0
    assert ledger.checkpoint_interval() == book.CHECKPOINT_WORK_RATIO * 2.0 == 20.0  # at most a tenth of the time
    monkeypatch.setattr(book.time, "perf_counter", lambda: 12.0 + 19.0)
    assert not ledger.checkpoint(lambda: pytest.fail("not due"), ended=False)
    monkeypatch.setenv(book.CHECKPOINT_EVERY_ENV, "3600")
    assert book.checkpoint_every() == 3600.0
    for bad in ("soon", "-1", "nan"):
        monkeypatch.setenv(book.CHECKPOINT_EVERY_ENV, bad)
        with pytest.raises(ConfigError, match="SHATTERING_CHECKPOINT_EVERY_S.*seconds >= 0"):
            book.checkpoint_every()


def test_a_run_killed_before_its_first_checkpoint_starts_again_and_ends_the_same(tmp_path):
    env = {**os.environ, book.CHECKPOINT_EVERY_ENV: "3600", "SHATTERING_FAULT": "step:30"}  # epoch 3 of 4
    killed = subprocess.run([sys.executable, "-m", "shattering", "run", *FLAGS, "--out", str(tmp_path / "killed")],
                            env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    (folder,) = (tmp_path / "killed").iterdir()
    assert not (folder / "checkpoint.pt").exists()  # two epochs ended, neither wrote one
    resumed = run(**RUN, out=str(tmp_path / "killed"))
    reference = run(**RUN, out=str(tmp_path / "reference"))
    assert resumed.run_dir == folder and _facts(resumed.summary) == _facts(reference.summary)
