"""What the program writes, read as a user reads it (issue 14): logs that are plain lines off a terminal
(`shattering.train.progress`, `executors/sweep.py`), output that names no file outside the installed package, and
a pipe closed early (`shatter ... | head -2`) that ends quietly (`shattering.cli.main`)."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from shattering.cli import build_parser, main
from shattering.config import RunConfig
from shattering.data.catalogue import DATASETS
from shattering.errors import ShatteringError
from shattering.executors.sweep import run_sweep
from shattering.experiments.presets import PRESETS, SCALES
from shattering.models import model_names
from shattering.train.progress import log_every_epochs
from shattering.train.schedule import describe_schedule

SRC = Path(__file__).resolve().parents[1] / "src"
ENV = {"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "SHATTERING_NO_DOWNLOAD": "1"}
EPOCH_LINE = re.compile(r"^[\w .=-]+: epoch \d+/\d+: [^:\[\]]+$")
SWEEP_LINE = re.compile(r"^\[\d+/\d+\] [^\[\]]+$")


def shatter_process(*argv: str, tmp_path: Path, **kw) -> subprocess.Popen:
    env = ENV | {"SHATTERING_DATA": str(tmp_path / "data-cache")}
    return subprocess.Popen([sys.executable, "-m", "shattering", *argv], env=env, cwd=tmp_path, **kw)


# -- logs ------------------------------------------------------------------------------------------------


def test_a_run_logged_to_a_file_writes_plain_lines_and_no_carriage_return(tmp_path):
    log = tmp_path / "log"
    with open(log, "wb") as fh:  # `shatter run ... > log 2>&1`
        proc = shatter_process("run", "--dataset", "digits", "--train-size", "60", "--test-size", "30", "--epochs",
                               "3", "--out", str(tmp_path / "runs"), tmp_path=tmp_path, stdout=fh,
                               stderr=subprocess.STDOUT)
        assert proc.wait(timeout=300) == 0
    text = log.read_text()
    assert "\r" not in text and "\x1b" not in text
    epochs = [line for line in text.splitlines() if EPOCH_LINE.match(line)]
    assert [line.split(": epoch ")[1].split(":")[0] for line in epochs] == ["1/3", "2/3", "3/3"]
    assert "DID NOT FIT" in text or "FIT" in text


def test_a_long_budget_logs_about_fifty_lines_and_a_short_one_every_epoch():
    assert [log_every_epochs(n) for n in (1, 2, 50, 51, 200, 1000)] == [1, 1, 1, 2, 4, 20]


@pytest.mark.parametrize("pack", [None, 1])
def test_a_sweep_log_has_one_line_per_run_and_never_two_things_on_a_line(pack, tmp_path, capsys):
    base = {"dataset": "digits", "model": "mlp-1x512", "train_size": 60, "test_size": 30, "epochs": 3,
            "until": "epochs", "out": str(tmp_path)}
    configs = [RunConfig(**base, corruption=c) for c in ("true-labels", "random-labels", "shuffled-pixels")]
    outcomes = run_sweep(configs, progress=True, pack=pack)  # capsys: stderr is not a terminal, as in a log
    assert all(o.ok for o in outcomes)
    err = capsys.readouterr().err
    assert "\r" not in err and "\x1b" not in err
    lines = err.splitlines()
    assert sum(bool(SWEEP_LINE.match(line)) for line in lines) == 3  # one line per finished run
    assert [line for line in lines if not (SWEEP_LINE.match(line) or EPOCH_LINE.match(line))] == []
    epochs = [line for line in lines if EPOCH_LINE.match(line)]  # per-epoch progress inside the sweep
    if pack is None:  # true and random labels share their images: one pack of 2; shuffled pixels alone
        assert len(epochs) == 6 and sum(line.startswith("pack of 2 digits mlp-1x512: epoch") for line in epochs) == 3
    else:
        assert len(epochs) == 9
    run_sweep(configs, progress=True, pack=pack)  # finished: read back, one line each, no epochs
    again = capsys.readouterr().err.splitlines()
    assert len(again) == 3 and all(SWEEP_LINE.match(line) and "done before" in line for line in again)


# -- a closed pipe ---------------------------------------------------------------------------------------


def test_a_pipe_closed_during_a_run_stops_the_printing_not_the_run(tmp_path):
    out = tmp_path / "runs"
    proc = shatter_process("run", "--dataset", "digits", "--train-size", "100", "--test-size", "50", "--epochs", "30",
                           "--until", "epochs", "--out", str(out), tmp_path=tmp_path, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
    assert b": epoch 1/30:" in proc.stdout.readline()  # `shatter run ... 2>&1 | head -1`
    proc.stdout.close()
    assert proc.wait(timeout=300) == 0
    (summary,) = out.rglob("summary.json")
    assert json.loads(summary.read_text())["epochs"] == 30  # the run went on to its end


def test_a_pipe_closed_during_a_sweep_stops_the_printing_not_the_sweep(tmp_path):
    out = tmp_path / "runs"
    proc = shatter_process("sweep", "fig1bc", "--scale", "smoke", "--quiet", "--pack", "1", "--out", str(out),
                           tmp_path=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().startswith(b"[1/18]")  # `shatter sweep ... | head -1`
    proc.stdout.close()
    assert proc.wait(timeout=300) == 0
    assert len(list(out.rglob("summary.json"))) == 18


def test_progress_lines_of_runs_that_differ_in_p_or_seed_read_differently():
    from shattering.train.book import run_label

    base = RunConfig(corruption="partial-labels", p=0.2)
    labels = {run_label(c.resolved()) for c in (base, base.replace(p=0.4), base.replace(seed=1))}
    assert labels == {"digits mlp-1x512 partial-labels p=0.2", "digits mlp-1x512 partial-labels p=0.4",
                      "digits mlp-1x512 partial-labels p=0.2 seed 1"}


@pytest.mark.parametrize("argv", [
    ["minnorm", "--dataset", "digits", "--train-size", "20", "--test-size", "10", "--epochs", "2", "--json"],
    ["presets"],
    ["--help"],
])
def test_a_pipe_closed_after_two_lines_ends_quietly_with_exit_0(argv, tmp_path):
    proc = shatter_process(*argv, tmp_path=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    got = [proc.stdout.readline() for _ in range(2)]  # `| head -2`
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 0 and err == "" and all(got)


@pytest.mark.parametrize("argv", [
    ["minnorm", "--dataset", "digits", "--train-size", "20", "--test-size", "10", "--epochs", "2"],
    ["minnorm", "--dataset", "digits", "--train-size", "20", "--test-size", "10", "--epochs", "2", "--json"],
    ["presets"],
    ["run", "--help"],
])
def test_a_pipe_closed_before_the_output_ends_quietly(argv, tmp_path):
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written
    proc = shatter_process(*argv, tmp_path=tmp_path, stdout=write, stderr=subprocess.PIPE)
    os.close(write)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 0 and err == ""


# -- self-contained evidence -----------------------------------------------------------------------------

# Files a user of the installed package does not have: the project's documents and notes.
OUTSIDE = re.compile(r"anchors\.md|spec section|spec\.md|\.\./shared|docs/|bench/|RESULTS\.md|RELIABILITY\.md|"
                     r"README|architecture\.md|measurements\.md|scaling\.md|theory\.md", re.IGNORECASE)


def outside_names(text: str) -> list[str]:
    return sorted({m.group(0) for m in OUTSIDE.finditer(text)})


def test_the_scan_finds_what_it_looks_for():
    assert outside_names("see docs/scaling.md (anchors.md section 8); spec section 0") == [
        "anchors.md", "docs/", "scaling.md", "spec section"]


def test_schedule_texts_and_notes_of_every_data_set_and_model_name_no_outside_file():
    texts = []
    for name, info in DATASETS.items():
        texts += [info.title, info.schedule_note]
        for model in model_names():
            texts.append(info.schedule_reason(model))
            try:
                texts.append(describe_schedule(RunConfig(dataset=name, model=model).resolved())["text"])
            except ShatteringError:  # a model this data set cannot take (too small an image)
                continue
    for preset in PRESETS.values():
        texts += [preset.title, preset.description, preset.paper_ref]
        for scale in SCALES:
            if not preset.computed:
                texts.append(str(preset.scale_settings(scale).get("note", "")))
    assert len(texts) > 50 and outside_names("\n".join(texts)) == []


def _parsers(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_every_commands_help_names_no_outside_file():
    helps = [p.format_help() for p in _parsers(build_parser())]
    assert len(helps) > 10 and outside_names("\n".join(helps)) == []


THEORY = {
    "expressivity": ["expressivity", "--dataset", "digits", "--train-size", "40", "--test-size", "10"],
    "minnorm": ["minnorm", "--dataset", "digits", "--train-size", "20", "--test-size", "10", "--epochs", "2"],
    "kernel": ["kernel", "--dataset", "digits", "--train-size", "40", "--test-size", "10"],
    "rademacher": ["rademacher", "--dataset", "digits", "--train-size", "30", "--draws", "1", "--probes",
                   "kernel,linear"],
}


@pytest.mark.parametrize("command", list(THEORY))
def test_the_theory_commands_text_names_no_outside_file(command, capsys):
    assert main(THEORY[command]) == 0
    got = capsys.readouterr()
    assert got.out and outside_names(got.out + got.err) == []


def test_a_smoke_sweep_and_its_runs_name_no_outside_file(tmp_path, capsys):
    assert main(["sweep", "fig1a", "--scale", "smoke", "--out", str(tmp_path)]) == 0
    assert main(["run", "--dataset", "digits", "--train-size", "60", "--test-size", "30", "--epochs", "2",
                 "--corruption", "random-labels", "--weight-decay", "0.001", "--out", str(tmp_path)]) == 0
    got = capsys.readouterr()
    assert "schedule:" in got.out and outside_names(got.out + got.err) == []
    records = "\n".join(p.read_text() for p in tmp_path.rglob("*.json"))
    assert records and outside_names(records) == []


# -- listings ------------------------------------------------------------------------------------------------


def test_presets_line_up_and_say_the_scale_of_their_run_counts(capsys):
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line for line in lines if line.split() and line.split()[0] in PRESETS]
    assert len(rows) == len(PRESETS)
    starts = {line.index(PRESETS[line.split()[0]].paper_ref) for line in rows}
    assert len(starts) == 1  # every paper reference starts in one column, the longest names included
    slowdown = next(line for line in rows if line.startswith("slowdown"))
    counts = [len(PRESETS["slowdown"].configs(s)) for s in SCALES]
    assert "/".join(map(str, counts)) + " runs" in slowdown
    assert any("per seed" in line and "/".join(SCALES) in line for line in lines)


@pytest.mark.parametrize("command", ["sweep", "reproduce"])
def test_the_default_scale_is_said_before_anything_trains(command, monkeypatch, capsys):
    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("shattering.cli.presets.reproduce", stop)
    monkeypatch.setattr("shattering.executors.sweep.run_sweep", stop)
    assert main([command, "fig1a", "--quiet"]) == 130
    err = capsys.readouterr().err
    assert err.startswith(f"shatter {command} fig1a: scale quick (up to about 30 minutes on 2 cores; the default")
    assert main([command, "fig1a", "--scale", "smoke", "--quiet"]) == 130
    assert "scale quick" not in capsys.readouterr().err
