"""A damaged record is never read back as a result (`RunRecord.damage`): a garbled line in the middle of a
finished run's metrics.jsonl or steps.csv, a broken or foreign config.json, a log cut short. `shatter runs` lists
such a run as damaged with the file and line, `load_curves` warns instead of returning fewer rows silently, a rerun
of the same command does not say "done before" but moves the record aside and trains the run again, and
`shatter measures` / `load_model` refuse it in one sentence."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

import shattering
from shattering.cli import main
from shattering.errors import RecordError
from shattering.executors.sweep import run_sweep
from shattering.runs import RunRecord, load_curves, load_runs

RUN = {"dataset": "digits", "model": "mlp-1x512", "corruption": "random-labels", "train_size": 60, "test_size": 30,
       "epochs": 40, "until": "epochs", "eval_every": 1, "log_every": 1, "device": "cpu"}


@pytest.fixture
def finished(tmp_path) -> tuple[Path, dict]:
    result = shattering.run(**RUN, out=str(tmp_path / "runs"))
    return result.run_dir, result.summary


def garble_line(path: Path, number: int, text: str = "{this is not json\n") -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[number - 1] = text
    path.write_text("".join(lines))


def table_row(out: Path) -> dict:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = load_runs(out)
    assert len(table) == 1
    return {**table.iloc[0].to_dict(), "warnings": [str(w.message) for w in caught]}


def test_an_intact_record_has_no_damage(finished):
    run_dir, summary = finished
    assert RunRecord(run_dir).damage() == [] and RunRecord(run_dir).read_summary() == summary


def test_a_garbled_metrics_line_makes_the_run_damaged_not_fit(finished, capsys):
    run_dir, _ = finished
    garble_line(run_dir / "metrics.jsonl", 7)
    record = RunRecord(run_dir)
    assert record.damage() == ["metrics.jsonl line 7 of 40 is not a metrics row"]
    assert record.read_summary() is None  # never read back as a result
    row = table_row(run_dir.parent)
    assert row["status"] == "damaged" and not row["fit"] and "metrics.jsonl line 7" in row["message"]
    assert any("damaged (metrics.jsonl line 7" in w for w in row["warnings"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        curves = load_curves(run_dir.parent)
    assert len(curves) == 39 and set(curves["status"]) == {"damaged"}  # every intact row, marked, and a warning
    assert curves["epoch"].max() == 40 and caught
    assert main(["runs", str(run_dir.parent)]) == 0
    out = capsys.readouterr()
    assert "damaged" in out.out and "metrics.jsonl line 7" in out.err


def test_a_rerun_of_a_damaged_run_moves_it_aside_and_trains_again(finished):
    run_dir, summary = finished
    garble_line(run_dir / "metrics.jsonl", 3)
    again = shattering.run(**RUN, out=str(run_dir.parent))
    assert not again.reused  # not "done before"
    assert again.moved_aside is not None and again.moved_aside.exists() and again.damage
    assert "damaged files (metrics.jsonl line 3" in again.message and "trained again" in again.message
    assert RunRecord(run_dir).damage() == []
    assert again.summary["final"]["train_acc"] == summary["final"]["train_acc"]  # the same run, whole again
    assert len(RunRecord(run_dir).read_metrics()) == 40
    assert table_row(run_dir.parent)["status"] == summary["status"]  # the moved record is not a run of the folder


def test_a_metrics_log_cut_short_is_damage(finished):
    run_dir, _ = finished
    path = run_dir / "metrics.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:15]))
    assert RunRecord(run_dir).damage() == ["metrics.jsonl ends at epoch 15 but the run at epoch 40"]


def test_epochs_out_of_order_and_a_torn_line_after_the_end_are_damage(finished):
    run_dir, _ = finished
    path = run_dir / "metrics.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join([*lines[:5], lines[3], *lines[5:]]) + '{"epoch": 4')
    damage = RunRecord(run_dir).damage()
    assert "metrics.jsonl line 6 (epoch 4) does not follow epoch 5" in damage
    assert "metrics.jsonl ends in a torn line after the run finished" in damage


def test_a_garbled_steps_line_is_damage(finished):
    run_dir, _ = finished
    garble_line(run_dir / "steps.csv", 4, "12,x,0.5\n")
    assert RunRecord(run_dir).damage() == ["steps.csv line 4 of 41 is not a step,epoch,loss,lr row"]


@pytest.mark.parametrize("content, problem", [
    ("{broken", "config.json is not a run's config"),
    ('{"run_id": "000000000000", "config": {}}', "config.json is of run 000000000000"),
])
def test_a_broken_or_foreign_config_is_damage_everywhere(finished, capsys, content, problem):
    run_dir, _ = finished
    (run_dir / "config.json").write_text(content)
    assert RunRecord(run_dir).damage()[0].startswith(problem)
    assert table_row(run_dir.parent)["status"] == "damaged"
    assert main(["measures", str(run_dir)]) == 2
    assert problem in capsys.readouterr().err
    with pytest.raises(RecordError, match=problem):
        shattering.load_model(run_dir)
    again = shattering.run(**RUN, out=str(run_dir.parent))
    assert not again.reused and again.moved_aside is not None
    assert json.loads((run_dir / "config.json").read_text())["run_id"] == again.summary["run_id"]


def test_a_missing_config_of_a_finished_run_is_damage(finished):
    run_dir, _ = finished
    (run_dir / "config.json").unlink()
    assert RunRecord(run_dir).damage() == ["config.json is missing"]
    assert table_row(run_dir.parent)["status"] == "damaged"


def test_a_damaged_summary_alone_is_finished_again_from_the_checkpoint(finished):
    run_dir, summary = finished
    (run_dir / "summary.json").write_text('{"status": "fit"')
    assert RunRecord(run_dir).damage() == ["summary.json is not a complete summary"]
    assert table_row(run_dir.parent)["status"] == "damaged"
    again = shattering.run(**RUN, out=str(run_dir.parent))
    assert not again.reused and again.moved_aside is None  # the logs and checkpoint were intact: finished from them
    assert again.summary["final"] == summary["final"] and RunRecord(run_dir).damage() == []


def test_a_damaged_record_in_a_sweep_is_trained_again_not_done_before(finished, capsys):
    run_dir, _ = finished
    garble_line(run_dir / "metrics.jsonl", 2)
    (outcome,) = run_sweep([shattering.RunConfig(**RUN, out=str(run_dir.parent))], progress=False)
    assert not outcome.skipped and outcome.moved_aside is not None
    assert "damaged files" in outcome.line()


def test_an_unfinished_record_with_a_torn_last_line_is_not_damage(finished):
    run_dir, _ = finished
    (run_dir / "summary.json").unlink()
    with open(run_dir / "metrics.jsonl", "a") as fh:
        fh.write('{"epoch": 41, "st')  # a crash mid-append
    assert RunRecord(run_dir).damage() == []
    assert table_row(run_dir.parent)["status"] == "unfinished"
