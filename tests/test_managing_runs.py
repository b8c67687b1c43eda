"""Managing runs (issue 14, item 5): a reused record says so, and says when other code made it; ``rerun`` trains
again with the old record moved aside; a run that never started leaves no folder; a sweep waits for a run another
process is training, so two copies of one sweep share the work; a finished run keeps the checkpoints asked for."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import shattering
from shattering.cli import main
from shattering.config import RunConfig
from shattering.errors import DataNotFoundError, ShatteringError
from shattering.executors.sweep import run_sweep
from shattering.runs import RunRecord, load_runs
from shattering.versions import code_version

FAST = {"dataset": "digits", "corruption": "random-labels", "train_size": 200, "test_size": 100, "epochs": 3,
        "until": "epochs", "precision": "fp32", "device": "cpu"}
CLI_FAST = ["--dataset", "digits", "--corruption", "random-labels", "--train-size", "200", "--test-size", "100",
            "--epochs", "3", "--until", "epochs", "--precision", "fp32", "--device", "cpu", "--quiet"]
TIMINGS = {"seconds", "train_seconds", "eval_seconds", "fit_seconds", "finished_at", "epoch_seconds", "resumes",
           "measures_seconds", "pack_seconds",
           "execution"}  # how this machine ran it (threads, layout, cores): measured, like the seconds
SRC = str(Path(shattering.__file__).resolve().parents[1])


def release_and_commit(version: str) -> str:
    release, _, commit = version.partition("+g")
    return f"shattering {release}" + (f" (commit {commit})" if commit else "")


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in TIMINGS}
    return value


# -- 1. a reused record says so -----------------------------------------------------------------------------


def test_a_reused_record_says_when_and_by_which_code_it_was_made(tmp_path, capsys):
    first = shattering.run(**FAST, out=str(tmp_path))
    assert not first.reused and not first.message.startswith("done before")
    assert first.facts()["reused"] is False and first.facts()["reuse"] is None
    again = shattering.run(**FAST, out=str(tmp_path))
    assert again.reused and again.summary == first.summary  # the record itself is unchanged
    when = first.summary["finished_at"][:16].replace("T", " ") + " UTC"
    assert again.message == (f"done before, on {when}, by {release_and_commit(code_version())}: "
                             f"{first.summary['message']}")
    assert "other code" not in again.message
    facts = again.facts()
    assert facts["reused"] is True and facts["reuse"]["other_code"] is False
    assert facts["reuse"]["made_by"] == code_version() and facts["reuse"]["finished_at"] == first.summary["finished_at"]
    # the command line: the printed message and --json say it too
    assert main(["run", *CLI_FAST, "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"done before, on {when}, by shattering ")
    assert "when the record was made (nothing trained now)" in printed
    assert main(["run", *CLI_FAST, "--out", str(tmp_path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["reused"] is True and printed["reuse"]["note"] == again.message
    # a sweep that meets the finished run says the same
    (outcome,) = run_sweep([RunConfig(**FAST, out=str(tmp_path))], progress=False)
    assert outcome.skipped and outcome.line() == again.message


def test_a_record_made_by_other_code_says_so(tmp_path):
    first = shattering.run(**FAST, out=str(tmp_path))
    record = RunRecord(first.run_dir)
    summary = record.read_summary()
    summary["versions"]["shattering"] = "0.0.1+gdeadbee"
    record.write_summary(summary)
    again = shattering.run(**FAST, out=str(tmp_path))
    assert again.reused and "by shattering 0.0.1 (commit deadbee): " in again.message
    assert (f"made by other code than the code running now ({release_and_commit(code_version())})"
            in again.message) and "--rerun" in again.message
    assert again.facts()["reuse"]["other_code"] is True and again.facts()["reuse"]["made_by"] == "0.0.1+gdeadbee"
    summary.pop("versions")  # a record that states no version at all
    record.write_summary(summary)
    assert "unknown version" in shattering.run(**FAST, out=str(tmp_path)).message


# -- 2. --rerun ------------------------------------------------------------------------------------------------


def test_rerun_trains_again_and_moves_the_old_record_aside(tmp_path, capsys):
    first = shattering.run(**FAST, out=str(tmp_path))
    old_summary = first.run_dir / "summary.json"
    old_bytes = old_summary.read_bytes()
    again = shattering.run(**FAST, out=str(tmp_path), rerun=True)
    assert not again.reused and again.run_dir == first.run_dir
    moved = again.moved_aside
    assert moved is not None and moved.parent == tmp_path and moved.name.startswith(first.run_dir.name + ".old-")
    assert (moved / "summary.json").read_bytes() == old_bytes  # kept, never deleted
    assert str(moved) in again.message and again.facts()["moved_aside"] == str(moved)
    assert _strip(again.summary) == _strip(first.summary)  # trained again, to the same numbers
    assert again.summary["finished_at"] >= first.summary["finished_at"]
    assert len(load_runs(tmp_path)) == 1  # the old record is not a run of the folder any more
    # the command line: shatter run --rerun says where the old record went
    assert main(["run", *CLI_FAST, "--out", str(tmp_path), "--rerun"]) == 0
    out = capsys.readouterr().out
    assert "moved aside to " + str(tmp_path / (first.run_dir.name + ".old-")) in out
    assert len(list(tmp_path.glob("*.old-*"))) == 2
    # a sweep with rerun: every run again, each old record moved aside, said in its line
    lines = []
    (outcome,) = run_sweep([RunConfig(**FAST, out=str(tmp_path))], progress=False, log=lines.append, rerun=True)
    assert outcome.ok and not outcome.skipped and outcome.moved_aside is not None
    assert outcome.moved_aside.is_dir() and f"moved aside to {outcome.moved_aside}" in lines[-1]
    assert len(list(tmp_path.glob("*.old-*"))) == 3 and len(load_runs(tmp_path)) == 1


def test_rerun_flags_reach_sweep_and_reproduce():
    from shattering.cli import build_parser
    for command in ("sweep", "reproduce"):
        args = build_parser().parse_args([command, "fig1a", "--rerun", "--keep-checkpoints", "none"])
        assert args.rerun and args.keep_checkpoints == "none"
        args = build_parser().parse_args([command, "fig1a"])
        assert not args.rerun and args.keep_checkpoints == "last"


# -- 3. a run that never started leaves nothing ---------------------------------------------------------------


NETS = textwrap.dedent("""
    import torch
    from torch import nn


    class FailsInTraining(nn.Module):
        '''Builds and passes the build check (a batch of 2), then fails on the first training batch.'''

        def __init__(self, input_shape, num_classes, dropout=0.0):
            super().__init__()
            c, h, w = input_shape
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, num_classes))

        def forward(self, x):
            if x.shape[0] > 2:
                raise RuntimeError("this layer breaks on a real batch")
            return self.net(x)
""")


def test_a_run_that_never_started_leaves_no_folder(tmp_path, monkeypatch):
    out = tmp_path / "runs"
    out.mkdir()
    with pytest.raises(DataNotFoundError):  # the data set's files are missing
        shattering.run(dataset="mnist", data_dir=str(tmp_path / "empty"), out=str(out))
    assert list(out.iterdir()) == []
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "breaking.py").write_text(NETS)
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    with pytest.raises(RuntimeError, match="breaks on a real batch"):  # a model that fails in its first step
        shattering.run(**FAST, model="breaking:FailsInTraining", out=str(out))
    assert list(out.iterdir()) == []
    # the same from the command line, and from a sweep (packed MLPs, and a run alone)
    assert main(["run", "--dataset", "mnist", "--data-dir", str(tmp_path / "empty"), "--out", str(out)]) == 2
    configs = [RunConfig(dataset="mnist", data_dir=str(tmp_path / "empty"), corruption="random-labels", seed=s,
                         out=str(out)) for s in (0, 1)]
    outcomes = run_sweep([*configs, RunConfig(**FAST, model="breaking:FailsInTraining", out=str(out))],
                         progress=False)
    assert [o.ok for o in outcomes] == [False] * 3 and list(out.iterdir()) == []
    sys.modules.pop("breaking", None)


def test_a_failed_start_keeps_a_folder_it_did_not_create_or_that_holds_more(tmp_path):
    out = tmp_path / "runs"
    cfg = RunConfig(dataset="mnist", data_dir=str(tmp_path / "empty"), out=str(out))
    folder = cfg.resolved().run_dir()
    folder.mkdir(parents=True)  # made by someone else: left alone
    with pytest.raises(ShatteringError):
        shattering.run(cfg)
    assert folder.is_dir() and [p.name for p in folder.iterdir()] == ["lock"]
    record = RunRecord(folder)
    (folder / "notes.txt").write_text("mine")  # a file a run does not write: never removed
    with record.lock():
        assert not record.discard_unstarted()
    assert (folder / "notes.txt").exists()
    (folder / "notes.txt").unlink()
    (folder / "config.json").write_text("{}")
    (folder / "metrics.jsonl").write_text('{"epoch": 1}\n')  # an epoch was recorded: the run started
    with record.lock():
        assert not record.discard_unstarted()
    (folder / "metrics.jsonl").write_text("")
    with record.lock():
        assert record.discard_unstarted()
    assert not folder.exists()


# -- 4. a sweep waits for a run another process is training ---------------------------------------------------


def test_a_sweep_waits_for_a_locked_run_and_counts_it_done(tmp_path):
    configs = [RunConfig(**FAST, seed=s, out=str(tmp_path)) for s in (0, 1, 2)]
    held = RunRecord(configs[0].resolved().run_dir())
    held.create()
    fh = open(held.lock_path, "a+")  # noqa: SIM115 -- "another process" holds the lock for a while
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    released = threading.Event()

    def release():
        time.sleep(2.0)
        released.set()
        fh.close()

    threading.Thread(target=release, daemon=True).start()
    lines = []
    outcomes = run_sweep(configs, progress=False, log=lines.append, pack=1)
    assert released.is_set()
    assert [o.ok for o in outcomes] == [True] * 3 and not any(o.locked for o in outcomes)
    assert any(line.startswith("waiting for digits mlp-1x512 random-labels seed 0") for line in lines)
    done = [line for line in lines if line.startswith("[")]
    assert len(done) == 3 and done[-1].startswith("[3/3] ")  # the others went on; the held run came last
    assert RunRecord(configs[0].resolved().run_dir()).read_summary()["epochs"] == FAST["epochs"]


CHILD = """
import json, os, sys, time
from shattering.config import RunConfig
from shattering.executors.sweep import run_sweep
rows = json.loads(sys.argv[1])
open(sys.argv[2] + ".ready-" + str(os.getpid()), "w").close()
while not os.path.exists(sys.argv[2]):  # both copies start together
    time.sleep(0.01)
outcomes = run_sweep([RunConfig(**row) for row in rows], progress=False, log=print, pack=1)
sys.exit(1 if any(not o.ok for o in outcomes) else 0)
"""


def test_two_copies_of_one_sweep_share_the_work_and_both_exit_0(tmp_path):
    grid = [{**FAST, "seed": s, "corruption": c, "train_size": 800, "epochs": 4} for s in (0, 1) for c in
            ("random-labels", "true-labels", "shuffled-pixels")]
    shared, alone = tmp_path / "shared", tmp_path / "alone"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    rows = json.dumps([{**row, "out": str(shared)} for row in grid])
    go = tmp_path / "go"
    children = [subprocess.Popen([sys.executable, "-c", CHILD, rows, str(go)], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(2)]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("go.ready-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    go.touch()
    results = [child.communicate(timeout=600) for child in children]
    trained = []
    for child, (out, err) in zip(children, results, strict=True):
        assert child.returncode == 0, out + err
        assert "FAILED" not in out
        done = [line for line in out.splitlines() if line.startswith("[")]
        assert len(done) == len(grid)  # each copy counts every run done
        trained.append(sum("done before" not in line for line in done))
    assert sum(trained) == len(grid) and min(trained) > 0, results  # every run trained once, the work shared
    outcomes = run_sweep([RunConfig(**row, out=str(alone)) for row in grid], progress=False, pack=1)
    assert all(o.ok and not o.skipped for o in outcomes)
    for o in outcomes:
        mine = RunRecord(shared / o.run_dir.name)
        theirs, ours = _strip(mine.read_summary()), _strip(o.summary)
        # every record as one uninterrupted sweep wrote it; the measures to rounding, since a copy that ran alone
        # for a while held both cores, and a spectral norm summed over 2 threads differs from 1 in the last bit
        a, b = theirs.pop("measures"), ours.pop("measures")
        assert a.keys() == b.keys()
        assert all(a[k] == (pytest.approx(b[k], rel=1e-12) if isinstance(b[k], float) else b[k]) for k in a), (a, b)
        assert theirs == ours
        assert [_strip(r) for r in mine.read_metrics()] == [_strip(r) for r in RunRecord(o.run_dir).read_metrics()]
    assert sorted(p.name for p in shared.iterdir()) == sorted(o.run_dir.name for o in outcomes)


# -- 5. --keep-checkpoints -------------------------------------------------------------------------------------


@pytest.mark.parametrize("keep, left", [("last", ["checkpoint.pt"]), ("all", ["checkpoint.prev.pt", "checkpoint.pt"]),
                                        ("none", [])])
def test_a_finished_run_keeps_the_checkpoints_asked_for(tmp_path, capsys, keep, left):
    default = shattering.run(**FAST, out=str(tmp_path / "default"))
    result = shattering.run(**FAST, out=str(tmp_path / keep), keep_checkpoints=keep)
    assert result.run_dir.name == default.run_dir.name  # not in the run id
    assert sorted(p.name for p in default.run_dir.glob("checkpoint*")) == ["checkpoint.pt"]  # the default: last
    assert sorted(p.name for p in result.run_dir.glob("checkpoint*")) == left
    assert shattering.run(**FAST, out=str(tmp_path / keep)).reused  # the record is complete without them
    # the packed sweep and the command line do the same
    configs = [RunConfig(**FAST, seed=s, out=str(tmp_path / f"sweep-{keep}")) for s in (0, 1)]
    for o in run_sweep(configs, progress=False, keep_checkpoints=keep):
        assert o.ok and o.summary["packed"]["members"] == 2
        assert sorted(p.name for p in o.run_dir.glob("checkpoint*")) == left
    assert main(["run", *CLI_FAST, "--seed", "5", "--out", str(tmp_path / "cli"), "--keep-checkpoints", keep]) == 0
    capsys.readouterr()
    (folder,) = (tmp_path / "cli").iterdir()
    assert sorted(p.name for p in folder.glob("checkpoint*")) == left


def test_keep_checkpoints_refuses_another_word(tmp_path):
    with pytest.raises(ShatteringError, match="'keep_checkpoints' parameter of run must be one of last, all, none"):
        shattering.run(**FAST, out=str(tmp_path), keep_checkpoints="some")
    with pytest.raises(ShatteringError, match="'keep_checkpoints' parameter of run_sweep must be one of"):
        run_sweep([RunConfig(**FAST, out=str(tmp_path))], keep_checkpoints="some")
    assert not tmp_path.joinpath("x").exists() and list(tmp_path.iterdir()) == []
