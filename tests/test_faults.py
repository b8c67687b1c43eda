"""Fault injection on one run (RELIABILITY.md): SIGKILL at named moments and at random times, damaged
checkpoints, a full disk and two processes on one run. Every interrupted run, resumed, ends with the metrics
of the uninterrupted run of the same seed (every metrics row but its timing fields, and steps.csv).

The runs are forked from a "zygote" process that imported torch and shattering once (a fresh interpreter
costs seconds here, a fork milliseconds); each child is a real process, killed by a real SIGKILL, either by
:mod:`shattering.faults` at the Nth pass through a named point or by the test at a random time. Children use
one thread (``OMP_NUM_THREADS=1``), so that every run computes the same numbers.

With ``SHATTERING_RELIABILITY_LOG=FILE`` every test appends what it injected and what survived to FILE (one
JSON object a line); ``python bench/reliability.py FILE`` turns that into RELIABILITY.md's figures.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shattering.runs import RunRecord

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32",
                                reason="the fault tests fork their runs and use POSIX signals, flock and rlimits")
TIMING = {"seconds", "eval_seconds", "epoch_seconds"}
SUMMARY_KEYS = ("status", "fit", "epochs", "steps", "fit_epoch", "fit_step", "best_test_acc", "run_id", "config",
                "data_fingerprint", "run_name")
# One small run: digits, 200 training images, 13 steps an epoch, 6 epochs, a checkpoint after each.
RUN = ["run", "--dataset", "digits", "--model", "mlp-1x512", "--corruption", "random-labels", "--train-size", "200",
       "--test-size", "100", "--batch-size", "16", "--lr", "0.05", "--until", "epochs", "--epochs", "6",
       "--log-every", "3", "--precision", "fp32", "--eval-every", "1", "--device", "cpu", "--threads", "1", "--quiet"]
# bit for bit: on the CPU with one thread (a run's threads follow the core lease, which changes them when another
# process arrives, and a sum split over 2 threads differs in its last bits from 1); every epoch evaluated: every
# metrics row full size (the full-disk tests tear a row by a size limit above the config's)
STEPS_PER_EPOCH = 13
EPOCHS = 6


# --------------------------------------------------------------------------------------------------
# Figures for RELIABILITY.md
# --------------------------------------------------------------------------------------------------


def tally(category: str, *, injected: int = 0, survived: int = 0, examples: int = 0, lost: int = 0,
          **detail) -> None:
    """Append one line of figures to ``$SHATTERING_RELIABILITY_LOG`` (when set)."""
    path = os.environ.get("SHATTERING_RELIABILITY_LOG")
    if not path:
        return
    row = {"category": category, "injected": injected, "survived": survived, "examples": examples, "lost": lost,
           "test": os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0], **detail}
    with open(path, "a") as fh:
        fh.write(json.dumps(row, sort_keys=True) + "\n")


# --------------------------------------------------------------------------------------------------
# The zygote: forks runs on request
# --------------------------------------------------------------------------------------------------

_ZYGOTE = r"""
import json, os, resource, sys, traceback
import torch
torch.set_num_threads(1)
import shattering, shattering.cli, shattering.executors.sweep
from shattering import faults
# What a run imports lazily (seconds each): import it once here, not in every child.
import sklearn.datasets, sklearn.model_selection, tqdm.auto
torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
shattering.cli.build_parser()
reply = sys.stdout
for line in sys.stdin:
    req = json.loads(line)
    if req["op"] == "wait":
        _, status = os.waitpid(req["pid"], 0)
        reply.write(json.dumps({"rc": os.waitstatus_to_exitcode(status)}) + "\n")
        reply.flush()
        continue
    pid = os.fork()
    if pid:
        reply.write(json.dumps({"pid": pid}) + "\n")
        reply.flush()
        continue
    code = 99
    try:
        os.chdir(req["cwd"])
        for name, fd in (("stdout", 1), ("stderr", 2)):
            out = os.open(req[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(out, fd)
            os.close(out)
        os.environ.update(req.get("env", {}))
        if req.get("fsize"):
            resource.setrlimit(resource.RLIMIT_FSIZE, (req["fsize"], req["fsize"]))
        faults.arm(os.environ.get(faults.ENV))
        if "argv" in req:
            code = shattering.cli.main(req["argv"])
        else:
            exec(req["code"], {"__name__": "__child__"})
            code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
"""


class Zygote:
    """A Python process that imported shattering once and forks a child per run."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        env.pop("SHATTERING_FAULT", None)
        self.proc = subprocess.Popen([sys.executable, "-c", _ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open(folder / "zygote.err", "w"), text=True, env=env)  # noqa: SIM115
        self.count = 0

    def _ask(self, request: dict) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the zygote died: {(self.folder / 'zygote.err').read_text()}")
        return json.loads(line)

    def start(self, *, argv=None, code=None, fault: str | None = None, fsize: int | None = None,
              cwd: Path | None = None) -> Child:
        self.count += 1
        out, err = self.folder / f"{self.count}.out", self.folder / f"{self.count}.err"
        request = {"op": "start", "cwd": str(cwd or self.folder), "stdout": str(out), "stderr": str(err),
                   "env": {"SHATTERING_FAULT": fault or ""}, "fsize": fsize}
        request.update({"argv": list(argv)} if argv is not None else {"code": code})
        return Child(self, self._ask(request)["pid"], out, err)

    def run(self, **kwargs) -> Child:
        child = self.start(**kwargs)
        child.wait()
        return child

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


class Child:
    def __init__(self, zygote: Zygote, pid: int, out: Path, err: Path):
        self.zygote, self.pid, self.out_path, self.err_path = zygote, pid, out, err
        self.rc: int | None = None

    def wait(self) -> int:
        if self.rc is None:
            self.rc = self.zygote._ask({"op": "wait", "pid": self.pid})["rc"]
        return self.rc

    def kill(self) -> None:
        os.kill(self.pid, 9)

    @property
    def stdout(self) -> str:
        return self.out_path.read_text()

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    @property
    def killed(self) -> bool:
        return self.wait() == -9


@pytest.fixture(scope="module")
def zygote(tmp_path_factory):
    z = Zygote(tmp_path_factory.mktemp("zygote"))
    yield z
    z.close()


# --------------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------------


def strip(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def run_dir(out: Path) -> Path:
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    return folder


def same_run(a: Path, b: Path) -> None:
    """Run records ``a`` and ``b`` hold the same results: metrics rows (no timing), steps.csv and summary."""
    ra, rb = RunRecord(a), RunRecord(b)
    assert strip(ra.read_metrics()) == strip(rb.read_metrics())
    assert ra.steps_path.read_text() == rb.steps_path.read_text()
    sa, sb = ra.read_summary(), rb.read_summary()
    assert sa is not None and sb is not None
    assert {k: sa[k] for k in SUMMARY_KEYS} == {k: sb[k] for k in SUMMARY_KEYS}
    assert strip([sa["final"]]) == strip([sb["final"]])


def check_after_crash(folder: Path) -> int:
    """What a SIGKILL may leave: no summary, logs that read back, an intact checkpoint (or none), at most the
    epoch in flight beyond the checkpoint. Returns the checkpoint's epoch (0: none)."""
    record = RunRecord(folder)
    assert record.read_summary() is None
    state, notes = record.load_checkpoint()
    assert notes == [], notes  # a kill never damages a checkpoint: it is renamed into place whole
    epoch = state["epoch"] if state else 0
    rows = record.read_metrics()
    assert [r["epoch"] for r in rows][:epoch] == list(range(1, epoch + 1))
    assert len(rows) - epoch <= 1  # at most the epoch in flight is lost
    record.read_steps()
    return epoch


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture(scope="module")
def reference(zygote, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference")
    child = zygote.run(argv=[*RUN, "--out", str(out)])
    assert child.rc == 0, child.stderr
    return run_dir(out)


# --------------------------------------------------------------------------------------------------
# SIGKILL at named moments
# --------------------------------------------------------------------------------------------------

# Each case: the faults armed in successive processes (the last process always runs clean).
TARGETED = {
    "step-in-epoch-1": ["step:5"],  # before any checkpoint: restarts from scratch
    "step-in-epoch-4": [f"step:{3 * STEPS_PER_EPOCH + 6}"],
    "eval-of-epoch-1": ["eval:2"],
    "eval-of-epoch-3": ["eval:10"],
    "checkpoint-write-1": ["checkpoint-write:1"],  # the first checkpoint never lands
    "checkpoint-write-4": ["checkpoint-write:4"],
    "checkpoint-rename-3": ["checkpoint-rename:2"],
    "metrics-append-torn": ["metrics-append:3"],
    "steps-append-torn": ["steps-append:5"],
    "summary-write": ["summary-write:1"],  # every epoch done, the summary not yet in place
    "resume-crashes-while-truncating": [f"step:{2 * STEPS_PER_EPOCH + 4}", "truncate-logs:1"],
    "three-crashes-in-a-row": ["checkpoint-write:2", "step:20", "eval:9", "summary-write:1"],
}


@pytest.mark.parametrize("case", list(TARGETED))
def test_sigkill_at_a_named_moment_then_resume(zygote, reference, tmp_path, case):
    out = tmp_path / "runs"
    for fault in TARGETED[case]:
        child = zygote.run(argv=[*RUN, "--out", str(out)], fault=fault)
        assert child.killed, (fault, child.rc, child.stderr)
        check_after_crash(run_dir(out))
    resumed = zygote.run(argv=[*RUN, "--out", str(out)])
    assert resumed.rc == 0, resumed.stderr
    folder = run_dir(out)
    same_run(reference, folder)
    assert leftovers(folder) == []  # the temporary files of interrupted writes were cleaned up
    summary = RunRecord(folder).read_summary()
    assert all(r["notes"] == [] for r in summary["resumes"])  # nothing was ever damaged
    tally("sigkill-named", injected=len(TARGETED[case]), survived=len(TARGETED[case]), case=case)


def stratified(rng: random.Random, n: int) -> list[float]:
    """``n`` random fractions of a run's duration, one in each n-th of it, in random order."""
    delays = [(i + rng.random()) / n for i in range(n)]
    rng.shuffle(delays)
    return delays


def test_sigkill_at_random_times_then_resume(zygote, reference, tmp_path):
    """Kills at random times (seeded delays; where they land depends on the machine's speed), several per run."""
    rng = random.Random(20170101)
    t0 = time.perf_counter()
    probe = zygote.run(argv=[*RUN, "--out", str(tmp_path / "probe")])
    duration = time.perf_counter() - t0  # one whole run, with the fork and the data loading
    assert probe.rc == 0, probe.stderr
    injected, landed = 0, []  # landed: the checkpoint epoch each kill left (-1: before the run folder existed)
    delays = stratified(rng, 12)
    for trial in range(4):
        out = tmp_path / f"r{trial}"
        for _ in range(3):
            child = zygote.start(argv=[*RUN, "--out", str(out)])
            time.sleep(delays.pop() * duration)
            child.kill()
            rc = child.wait()
            started = out.exists() and any(p.is_dir() for p in out.iterdir())  # a kill may land before the run
            # folder exists (while the process imports, or measures its threads on first use)
            finished = started and RunRecord(run_dir(out)).read_summary() is not None
            if rc == 0 or finished:  # the run ended before the kill (or the kill hit it on its way out after
                assert finished  # the summary): the record must be complete
                break
            injected += 1
            assert rc == -9, child.stderr
            landed.append(check_after_crash(run_dir(out)) if started else -1)
        resumed = zygote.run(argv=[*RUN, "--out", str(out)])
        assert resumed.rc == 0, resumed.stderr
        same_run(reference, run_dir(out))
    tally("sigkill-random", injected=injected, survived=injected, landed=landed)


# --------------------------------------------------------------------------------------------------
# Damaged checkpoints
# --------------------------------------------------------------------------------------------------


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(random.Random(0).randbytes(path.stat().st_size))


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) * 2 // 3] ^= 0x01
    path.write_bytes(bytes(data))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


DAMAGE = {"truncated": _truncate, "garbage": _garbage, "one-bit-flipped": _flip_one_byte, "emptied": _empty}


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("which", ["newest", "both"])
def test_damaged_checkpoint_is_detected_said_and_survived(zygote, reference, tmp_path, damage, which):
    out = tmp_path / "runs"
    crash = zygote.run(argv=[*RUN, "--out", str(out)], fault="checkpoint-write:5")  # checkpoints of epochs 3, 4
    assert crash.killed
    record = RunRecord(run_dir(out))
    assert check_after_crash(record.dir) == 4
    DAMAGE[damage](record.checkpoint_path)
    if which == "both":
        DAMAGE[damage](record.prev_checkpoint_path)
    state, notes = record.load_checkpoint()
    assert notes[0].startswith("checkpoint.pt is damaged")
    assert (state["epoch"] == 3) if which == "newest" else (state is None and len(notes) == 2)
    resumed = zygote.run(argv=[*RUN, "--out", str(out)])
    assert resumed.rc == 0, resumed.stderr
    same_run(reference, record.dir)
    (resume,) = record.read_summary()["resumes"]
    assert resume["notes"][0].startswith("checkpoint.pt is damaged")
    if which == "newest":
        assert resume["epoch"] == 3 and len(resume["notes"]) == 1  # the fallback, checkpoint.prev.pt, said
    else:
        assert resume["epoch"] == 0 and resume["notes"][1].startswith("checkpoint.prev.pt is damaged")
        assert resume["notes"][-1] == "restarted from scratch"
    tally("damaged-checkpoint", injected=1 + (which == "both"), survived=1 + (which == "both"), damage=damage)


# --------------------------------------------------------------------------------------------------
# A full disk
# --------------------------------------------------------------------------------------------------


def _one_sentence_error(child: Child) -> str:
    assert child.rc == 2, (child.rc, child.stderr)
    err = child.stderr
    assert err.startswith("shatter: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def _crash_before_checkpoint(zygote, out: Path, n: int) -> RunRecord:
    crash = zygote.run(argv=[*RUN, "--out", str(out)], fault=f"checkpoint-write:{n}")
    assert crash.killed
    record = RunRecord(run_dir(out))
    assert check_after_crash(record.dir) == n - 1
    return record


def _finish_and_compare(zygote, reference: Path, out: Path, record: RunRecord) -> None:
    resumed = zygote.run(argv=[*RUN, "--out", str(out)])
    assert resumed.rc == 0, resumed.stderr
    same_run(reference, record.dir)
    assert leftovers(record.dir) == []


def test_full_disk_on_the_checkpoint_fails_cleanly_and_resumes(zygote, reference, tmp_path):
    out = tmp_path / "runs"
    record = _crash_before_checkpoint(zygote, out, 3)
    before = record.checkpoint_path.read_bytes()
    full = zygote.run(argv=[*RUN, "--out", str(out)], fsize=record.checkpoint_path.stat().st_size // 2)
    err = _one_sentence_error(full)
    assert "Could not write the checkpoint" in err and "file-size limit" in err and "intact" in err
    assert record.checkpoint_path.read_bytes() == before and leftovers(record.dir) == []
    assert record.load_checkpoint()[0]["epoch"] == 2 and record.read_summary() is None
    assert len(record.read_metrics()) == 3  # epoch 3 was measured; the resume cuts it back to the checkpoint
    _finish_and_compare(zygote, reference, out, record)
    tally("full-disk", injected=1, survived=1, where="checkpoint")


def test_full_disk_inside_a_metrics_append_fails_cleanly_and_resumes(zygote, reference, tmp_path):
    out = tmp_path / "runs"
    record = _crash_before_checkpoint(zygote, out, EPOCHS)  # epoch 6 measured, its checkpoint not written
    rows = record.read_metrics()[:EPOCHS - 1]  # what the resume keeps: the rows up to the checkpoint
    size = sum(len(json.dumps(r, sort_keys=True)) + 1 for r in rows)
    limit = size + len(json.dumps(rows[-1])) // 2  # the next row is torn by the limit
    assert limit > record.config_path.stat().st_size  # (the config is written again first)
    full = zygote.run(argv=[*RUN, "--out", str(out)], fsize=limit)
    err = _one_sentence_error(full)
    assert "Could not append to" in err and "metrics.jsonl" in err and "intact" in err
    assert record.metrics_path.stat().st_size == limit  # a torn row at the end ...
    assert record.read_metrics() == rows  # ... that is never read back
    assert record.load_checkpoint()[0]["epoch"] == EPOCHS - 1
    _finish_and_compare(zygote, reference, out, record)
    tally("full-disk", injected=1, survived=1, where="metrics-append")


def test_full_disk_on_the_summary_fails_cleanly_and_resumes(zygote, reference, tmp_path):
    out = tmp_path / "runs"
    crash = zygote.run(argv=[*RUN, "--out", str(out)], fault="summary-write:1")
    assert crash.killed
    record = RunRecord(run_dir(out))
    (tmp,) = [p for p in record.dir.iterdir() if p.name.startswith(".summary.json.")]
    summary_size = tmp.stat().st_size
    others = max(p.stat().st_size for p in (record.metrics_path, record.steps_path, record.config_path))
    assert others + 100 < summary_size
    full = zygote.run(argv=[*RUN, "--out", str(out)], fsize=(others + summary_size) // 2)
    err = _one_sentence_error(full)
    assert "summary.json" in err
    assert not record.summary_path.exists() and leftovers(record.dir) == []
    assert record.load_checkpoint()[0]["epoch"] == EPOCHS
    _finish_and_compare(zygote, reference, out, record)
    tally("full-disk", injected=1, survived=1, where="summary")


# --------------------------------------------------------------------------------------------------
# Two processes on one run
# --------------------------------------------------------------------------------------------------


def slowly(argv: list[str], seconds: float) -> str:
    """Child code: the CLI with ``argv``, each checkpoint write delayed by ``seconds`` (same results, longer run)."""
    return ("import time\nimport shattering.cli\nfrom shattering.runs import RunRecord\n"
            "save = RunRecord.save_checkpoint\n"
            f"RunRecord.save_checkpoint = lambda self, state: (time.sleep({seconds}), save(self, state))[1]\n"
            f"raise SystemExit(shattering.cli.main({argv!r}))\n")


def test_two_processes_on_one_run_one_trains_the_other_refuses(zygote, reference, tmp_path):
    out = tmp_path / "runs"
    argv = [*RUN, "--out", str(out)]
    first = zygote.start(code=slowly(argv, 0.2))
    deadline = time.time() + 60
    while time.time() < deadline and not list(out.glob("*/metrics.jsonl")):
        time.sleep(0.01)
    second = zygote.run(argv=argv)
    err = _one_sentence_error(second)
    folder = run_dir(out)
    assert "being trained by another process" in err and str(folder / "lock") in err
    assert first.wait() == 0, first.stderr
    same_run(reference, folder)
    record = RunRecord(folder)
    assert record.read_summary()["resumes"] == []
    stamp = record.summary_path.stat().st_mtime_ns
    third = zygote.run(argv=argv)  # afterwards: the finished run is read, not trained again
    assert third.rc == 0 and record.summary_path.stat().st_mtime_ns == stamp
    tally("concurrent", injected=1, survived=1, how="second process during training")


def test_two_processes_started_at_once(zygote, reference, tmp_path):
    out = tmp_path / "runs"
    argv = [*RUN, "--out", str(out)]
    a, b = zygote.start(code=slowly(argv, 0.1)), zygote.start(code=slowly(argv, 0.1))
    codes = sorted([a.wait(), b.wait()])
    loser = a if a.rc == 2 else b
    assert codes == [0, 2], (a.stderr, b.stderr)
    err = _one_sentence_error(loser)
    assert "lock" in err
    same_run(reference, run_dir(out))
    tally("concurrent", injected=1, survived=1, how="started at once")


# --------------------------------------------------------------------------------------------------
# A run that ended early (diverged, fit) and was killed before its summary
# --------------------------------------------------------------------------------------------------

EARLY_END = {
    # lr 1e6: the loss is NaN within the first epoch; the run is over at epoch 1 of 6
    "diverged": ["run", "--dataset", "digits", "--model", "mlp-3x512", "--lr", "1e6", "--epochs", "6", "--train-size",
                 "200", "--batch-size", "16", "--precision", "fp32", "--quiet"],
    # diverged in the last epoch of the budget: must not be reported as "did not fit"
    "diverged-at-the-budget": ["run", "--dataset", "digits", "--model", "mlp-3x512", "--lr", "1e6", "--epochs", "1",
                               "--train-size", "200", "--batch-size", "16", "--precision", "fp32", "--quiet"],
    "fit": ["run", "--dataset", "digits", "--model", "mlp-1x512", "--lr", "0.1", "--train-size", "100",
            "--batch-size", "16", "--precision", "fp32", "--quiet"],
}


@pytest.mark.parametrize("case", list(EARLY_END))
def test_a_run_that_ended_early_resumes_to_the_same_end(zygote, tmp_path, case):
    """Found by this suite: a diverged run killed between its last checkpoint and its summary trained on from
    the NaN weights on resume (DIVERGED at epoch 2 instead of 1, one extra metrics row), or, diverged in the
    budget's last epoch, was summarized as "did not fit"."""
    argv = EARLY_END[case]
    ref = zygote.run(argv=[*argv, "--out", str(tmp_path / "ref")])
    assert ref.rc == 0, ref.stderr
    out = tmp_path / "runs"
    crash = zygote.run(argv=[*argv, "--out", str(out)], fault="summary-write:1")
    assert crash.killed
    resumed = zygote.run(argv=[*argv, "--out", str(out)])
    assert resumed.rc == 0, resumed.stderr
    reference = run_dir(tmp_path / "ref")
    same_run(reference, run_dir(out))
    expected = "fit" if case == "fit" else "diverged"
    assert RunRecord(run_dir(out)).read_summary()["status"] == expected
    tally("sigkill-named", injected=1, survived=1, case=f"summary-write after the run {case}")


# --------------------------------------------------------------------------------------------------
# What SHATTERING_FSYNC=1 adds
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("on", [False, True])
def test_fsync_only_when_asked(tmp_path, monkeypatch, on):
    """Off (the default), nothing is fsynced: the promises are about process crashes. On, every write is fsynced
    before its rename and the folder after it, and every append, so that a power cut keeps what was renamed."""
    import shattering.files as files

    calls = []
    real = os.fsync
    monkeypatch.setattr(files, "FSYNC", on)
    monkeypatch.setattr(files.os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    record = RunRecord(tmp_path)
    record.save_checkpoint({"epoch": 1})
    record.save_checkpoint({"epoch": 2})  # the second keeps the first as checkpoint.prev.pt
    record.write_summary({"status": "fit"})
    record.append_metrics({"epoch": 1})
    assert len(calls) == (2 * 2 + 2 + 1 if on else 0)  # file + folder per write, one per append
    assert record.load_checkpoint()[0]["epoch"] == 2 and record.read_metrics() == [{"epoch": 1}]
