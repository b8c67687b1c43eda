"""Runs as a table (issue 13, item 4): `shattering.load_runs` / `load_curves` and `shatter runs` on real records,
made here by a smoke sweep of fig1bc (Section 2.1's partially corrupted labels, 18 runs on the bundled digits),
one run that fits random labels and one that diverges."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import shattering
from shattering.cli import main
from shattering.config import RunConfig
from shattering.experiments.presets import PRESETS
from shattering.files import json_text
from shattering.runs import RunRecord, evaluated, load_curves, load_runs, select_runs
from shattering.runs.table import ACCURACIES, COLUMNS, CONFIG_COLUMNS, CURVE_KEYS, METRICS, RESULT_COLUMNS, as_records

SRC = Path(shattering.__file__).resolve().parents[1]
FIT = {"dataset": "digits", "model": "mlp-1x512", "corruption": "random-labels", "train_size": 50, "test_size": 50,
       "epochs": 300, "log_every": 1, "device": "cpu"}
DIVERGED = {**FIT, "corruption": "true-labels", "epochs": 5, "lr": 1e30}


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    """A folder of finished records: `shatter sweep fig1bc --scale smoke`, a fit and a diverged run."""
    root = tmp_path_factory.mktemp("table")
    out = root / "runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SHATTERING_NO_DOWNLOAD", "1")
        mp.setenv("SHATTERING_DATA", str(root / "data-cache"))
        assert main(["sweep", "fig1bc", "--scale", "smoke", "--out", str(out), "--quiet", "--device", "cpu"]) == 0
        assert shattering.run(**FIT, out=str(out)).status == "fit"
        assert shattering.run(**DIVERGED, out=str(out)).status == "diverged"
    return out


def sweep_ids(out: Path) -> set[str]:
    return {c.run_id() for c in PRESETS["fig1bc"].configs("smoke", out=str(out), device="cpu")}


def summaries(out: Path) -> dict[str, dict]:
    return {s["run_id"]: s for s in (RunRecord(p.parent).read_summary() for p in out.rglob("summary.json"))}


def shatter(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main([*argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


# --------------------------------------------------------------------------------------------------
# load_runs
# --------------------------------------------------------------------------------------------------


def test_one_row_per_run_with_every_config_field_then_the_results(out):
    df = load_runs(out)
    ids = sweep_ids(out) | {RunConfig(**FIT).run_id(), RunConfig(**DIVERGED).run_id()}
    assert len(df) == len(ids) == 20 and set(df["run_id"]) == ids
    assert list(df.columns) == list(COLUMNS)
    assert list(df.columns[:len(CONFIG_COLUMNS)]) == [f.name for f in dataclasses.fields(RunConfig)]
    assert not set(CONFIG_COLUMNS) & set(RESULT_COLUMNS)
    assert {"status", "fit", "fit_epoch", "fit_step", "fit_seconds", "label_noise", "data_fingerprint", "version",
            *ACCURACIES, *(f"best_{a}" for a in ACCURACIES)} <= set(df.columns)
    assert df["run_dir"].is_unique and list(df["run_dir"]) == sorted(df["run_dir"])
    assert dict(df["status"].value_counts()) == {"not-fit": 18, "fit": 1, "diverged": 1}
    assert df["fit"].dtype == bool and df["seed"].dtype == "int64" and str(df["fit_epoch"].dtype) == "Int64"


def test_every_row_says_what_its_record_says(out):
    df = load_runs(out).set_index("run_id")
    for run_id, s in summaries(out).items():
        row, record = df.loc[run_id], RunRecord(df.loc[run_id, "run_dir"])
        config = record.read_config()["config"]
        for name in CONFIG_COLUMNS:
            assert _same(row[name], config[name]), (run_id, name)
        assert (row["status"], row["fit"], row["epochs_trained"], row["steps"]) == (
            s["status"], s["fit"], s["epochs"], s["steps"])
        for name in ("fit_epoch", "fit_step", "fit_seconds"):
            assert _same(row[name], s[name]), (run_id, name)
        metrics = record.read_metrics()
        for name in ACCURACIES:
            assert _same(row[name], s["final"].get(name)), (run_id, name)
            seen = [m[name] for m in metrics if m.get(name) is not None]
            assert _same(row[f"best_{name}"], max(seen) if seen else None), (run_id, name)
        assert row["best_test_acc"] == s["best_test_acc"]
        assert row["label_noise"] == s["data"]["label_noise"] and row["n_train"] == s["data"]["n_train"]
        assert row["data_fingerprint"] == s["data_fingerprint"]
        assert row["version"] == s["versions"]["shattering"] and row["torch_version"] == s["versions"]["torch"]
        assert row["message"] == s["message"] and row["run_name"] == Path(row["run_dir"]).name
    fit = df[df["status"] == "fit"].iloc[0]
    assert fit["fit"] and fit["fit_epoch"] >= 1 and fit["train_acc"] == 1.0 and fit["label_noise"] > 0.8
    assert math.isnan(df[df["status"] == "diverged"].iloc[0]["train_loss"])


def test_the_readme_pivot_of_test_error_by_model_and_p(out):
    df = load_runs(out)
    sweep = df[df["run_id"].isin(sweep_ids(out))]
    error = 1 - sweep.pivot_table(index="p", columns="model", values="test_acc")
    assert list(error.index) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert set(error.columns) == {"mlp-1x512", "alexnet-small", "inception-small"}
    assert error.notna().all().all() and ((error >= 0) & (error <= 1)).all().all()


def test_the_table_reads_files_only(out, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the table must not read checkpoints or build models")

    monkeypatch.setattr(RunRecord, "load_checkpoint", refuse)
    monkeypatch.setattr("torch.load", refuse)
    monkeypatch.setattr("shattering.models.build_model", refuse)
    assert len(load_runs(out)) == 20 and len(load_curves(out)) > 0


# --------------------------------------------------------------------------------------------------
# load_curves
# --------------------------------------------------------------------------------------------------


def test_curves_have_one_row_per_epoch_per_run(out):
    every, runs = load_curves(out, running=True), load_runs(out)
    assert list(every.columns[:len(CURVE_KEYS) + len(METRICS)]) == [*CURVE_KEYS, *METRICS]
    assert len(every) == runs["epochs_trained"].sum()
    assert not every.duplicated(["run_id", "epoch"]).any()
    per_run = every.groupby("run_id")["epoch"].agg(["count", "min", "max"])
    for _, row in runs.iterrows():
        assert tuple(per_run.loc[row["run_id"]]) == (row["epochs_trained"], 1, row["epochs_trained"])
    curves = load_curves(out)  # the evaluated epochs only: every accuracy a result
    assert curves["train_acc"].notna().all() and set(curves["evaluated"]) == {True}
    assert len(curves) < len(every)
    for _, row in runs.iterrows():
        metrics = evaluated(RunRecord(row["run_dir"]).read_metrics())
        mine = curves[curves["run_id"] == row["run_id"]].sort_values("epoch")
        assert [m["train_acc"] for m in metrics] == list(mine["train_acc"])
        assert [m["test_acc"] for m in metrics] == list(mine["test_acc"])
        for key in ("dataset", "model", "corruption", "p", "seed", "status"):
            assert set(mine[key]) == {row[key]}


# --------------------------------------------------------------------------------------------------
# shatter runs
# --------------------------------------------------------------------------------------------------


def test_shatter_runs_prints_the_table(out, capsys):
    rc, text, err = shatter(capsys, "runs", str(out))
    assert rc == 0 and err == ""
    lines = text.splitlines()
    heading = lines[0].split()
    assert heading[0] == "run_id" and {"corruption", "p", "model", "train_size"} <= set(heading)
    assert "dataset" not in heading and "out" not in heading  # every run is on digits: nothing to tell apart
    assert len(lines) == 1 + 20 + 1 and lines[-1] == f"20 run(s) under {out}"
    for run_id in load_runs(out)["run_id"]:
        assert sum(run_id in line for line in lines) == 1
    fit_line = next(line for line in lines if RunConfig(**FIT).run_id() in line)
    assert " fit " in fit_line and "100.00%" in fit_line
    assert len({len(line) for line in lines[:-1]}) <= 2  # fixed width (trailing blanks stripped)


def test_the_default_columns_are_what_varies_and_columns_chooses(tmp_path, capsys):
    base = {**FIT, "epochs": 2, "until": "epochs"}
    for size in (40, 50):
        shattering.run(**{**base, "train_size": size}, out=str(tmp_path))
    rc, text, _ = shatter(capsys, "runs", str(tmp_path))
    heading = text.splitlines()[0].split()
    assert rc == 0 and heading[:2] == ["run_id", "train_size"] and "model" not in heading
    assert {line.split()[1] for line in text.splitlines()[1:3]} == {"40", "50"}  # the two rows read differently
    rc, text, _ = shatter(capsys, "runs", str(tmp_path), "--columns", "train_size,test_acc")
    assert rc == 0 and text.splitlines()[0].split() == ["train_size", "test"]
    rc, text, _ = shatter(capsys, "runs", str(tmp_path), "--columns", "train_size,status", "--csv")
    assert rc == 0 and text.splitlines()[0] == "train_size,status"
    rc, _, err = shatter(capsys, "runs", str(tmp_path), "--columns", "trainsize")
    assert rc == 2 and "did you mean 'train_size'" in err and err.count("\n") == 1


def test_where_filters_on_any_column(out, capsys):
    rc, text, _ = shatter(capsys, "runs", str(out), "--where", "model=mlp-1x512", "--where", "p=0.2", "--csv")
    got = pd.read_csv(io.StringIO(text))
    assert rc == 0 and len(got) == 1 and tuple(got.loc[0, ["model", "p", "corruption"]]) == (
        "mlp-1x512", 0.2, "partial-labels")
    rc, text, _ = shatter(capsys, "runs", str(out), "--where", "fit=true")
    assert rc == 0 and RunConfig(**FIT).run_id() in text and text.rstrip().endswith(f"1 run(s) of 20 under {out}")
    df = load_runs(out)
    assert list(select_runs(df, ["status=diverged"])["run_id"]) == [RunConfig(**DIVERGED).run_id()]
    assert len(select_runs(df, ["fit_epoch=none"])) == 19 and len(select_runs(df, ["fit=False", "seed=0"])) == 19
    assert len(select_runs(df, {"model": "alexnet-small", "p": 1})) == 1
    assert len(select_runs(df, [("train_size", 120), "lr=1e30"])) == 0
    assert len(select_runs(df, ["lr=1e30"])) == 1 and len(select_runs(df, ["data_dir=none"])) == 20
    run_id = df["run_id"].iloc[0]
    assert list(select_runs(df, [f"run_id={run_id}"])["run_id"]) == [run_id]
    rc, text, _ = shatter(capsys, "runs", str(out), "--where", "model=mlp-1x512", "--where", "model=alexnet-small")
    assert rc == 0 and text == f"none of the 20 run(s) under {out} has model=mlp-1x512 and model=alexnet-small\n"


def test_an_unknown_column_or_a_bad_condition_is_one_sentence(out, capsys):
    rc, text, err = shatter(capsys, "runs", str(out), "--where", "modle=mlp-1x512")
    assert rc == 2 and text == "" and err.count("\n") == 1
    assert "no column 'modle'" in err and ", model, " in err and "test_acc" in err
    rc, _, err = shatter(capsys, "runs", str(out), "--where", "model")
    assert rc == 2 and "column=value" in err and err.count("\n") == 1
    rc, _, err = shatter(capsys, "runs", str(out / "nowhere"))
    assert rc == 2 and "is not a folder" in err and err.count("\n") == 1


def test_csv_and_json_parse_back(out, capsys):
    df = load_runs(out)
    rc, text, _ = shatter(capsys, "runs", str(out), "--csv")
    got = pd.read_csv(io.StringIO(text))
    assert rc == 0 and list(got.columns) == list(COLUMNS) and list(got["run_id"]) == list(df["run_id"])
    for name in ("test_acc", "train_acc", "best_test_acc", "label_noise", "seed", "epochs_trained"):
        assert got[name].tolist() == pytest.approx(df[name].tolist(), nan_ok=True), name
    assert got["fit"].tolist() == df["fit"].tolist() and got["fit_epoch"].isna().sum() == 19
    rc, text, _ = shatter(capsys, "runs", str(out), "--json")
    records = json.loads(text)
    assert rc == 0 and records == json.loads(json_text(as_records(df), strict=True))
    assert [r["run_id"] for r in records] == list(df["run_id"]) and [r["test_acc"] for r in records] == list(
        df["test_acc"])
    assert [list(r) for r in records] == [list(COLUMNS)] * 20
    diverged = next(r for r in records if r["status"] == "diverged")
    assert diverged["train_loss"] is None and diverged["fit_epoch"] is None and diverged["fit"] is False
    json.loads(text, parse_constant=lambda name: pytest.fail(f"--json printed {name}"))  # strict JSON


def test_a_closed_pipe_prints_no_traceback(out):
    proc = subprocess.Popen([sys.executable, "-m", "shattering", "runs", str(out), "--csv"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1",
                                                         "PATH": "/usr/bin:/bin"})
    proc.stdout.close()  # the reader is gone before the first line (as `| head -0`)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0 and err == ""


# --------------------------------------------------------------------------------------------------
# records that are not (or not yet) results
# --------------------------------------------------------------------------------------------------


def copy_record(out: Path, dest: Path, status: str = "fit") -> Path:
    source = next(RunRecord(p.parent) for p in out.rglob("summary.json")
                  if RunRecord(p.parent).read_summary()["status"] == status)
    target = dest / source.dir.name
    shutil.copytree(source.dir, target)
    return target


def test_a_record_without_its_summary_is_unfinished_and_a_torn_one_damaged(out, tmp_path, capsys):
    gone = copy_record(out, tmp_path / "a")
    (gone / "summary.json").unlink()
    torn = copy_record(out, tmp_path / "b", status="not-fit")
    text = (torn / "summary.json").read_text()
    (torn / "summary.json").write_text(text[:len(text) // 2])  # half-written
    for folder, status, note in ((gone, "unfinished", "no summary"),
                                 (torn, "damaged", "summary.json is not a complete summary")):
        df = load_runs(folder.parent)
        assert len(df) == 1
        row = df.iloc[0]
        metrics = RunRecord(folder).read_metrics()
        assert (row["status"], row["fit"], row["epochs_trained"]) == (status, False, len(metrics))
        assert pd.isna(row["fit_epoch"]) and pd.isna(row["finished_at"]) and note in row["message"]
        assert row["train_acc"] == metrics[-1]["train_acc"] and row["run_id"] == RunRecord(folder).read_config()[
            "run_id"]
        config = RunRecord(folder).read_config()
        assert row["model"] == config["config"]["model"] and row["data_fingerprint"] == config["data_fingerprint"]
        assert len(load_curves(folder.parent)) == len(evaluated(metrics))
        assert len(load_curves(folder.parent, running=True)) == len(metrics)
    rc, text, _ = shatter(capsys, "runs", str(tmp_path))
    assert rc == 0 and text.count(" unfinished ") == 1 and text.count(" damaged ") == 1
    assert len(select_runs(load_runs(tmp_path), ["status=unfinished"])) == 1


def test_what_is_not_a_record_is_skipped(out, tmp_path, capsys):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text('{"tool": "not shattering"}')  # some other tool's file
    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / "metrics.jsonl").write_text('{"epoch": 1}\n')
    lost = copy_record(out, tmp_path / "lost")
    (lost / "config.json").unlink()
    (lost / "summary.json").write_text("{")
    (lost / "checkpoint.pt").write_bytes(b"x")
    with pytest.warns(UserWarning, match="no readable config.json or summary.json; skipped"):
        assert load_runs(tmp_path).empty
    rc, text, err = shatter(capsys, "runs", str(tmp_path))
    assert rc == 0 and text == f"no run records under {tmp_path}\n"
    assert err.startswith("shatter runs: warning: ") and err.count("\n") == 1


def test_a_record_from_another_version_shows_blanks(out, tmp_path):
    odd = copy_record(out, tmp_path)
    summary = json.loads((odd / "summary.json").read_text())
    summary["final"]["train_acc"] = "all of them"
    summary["fit_epoch"] = [3]
    summary["versions"] = "0.0.1"
    summary["config"]["seed"] = {"a": 1}
    (odd / "summary.json").write_text(json.dumps(summary))
    row = load_runs(tmp_path).iloc[0]
    assert row["status"] == "fit" and pd.isna(row["train_acc"]) and pd.isna(row["fit_epoch"])
    assert row["version"] == json.loads((odd / "config.json").read_text())["versions"]["shattering"]  # the start's
    assert row["seed"] == '{"a": 1}' and row["best_train_acc"] == 1.0


def test_an_empty_folder_says_so(tmp_path, capsys):
    assert list(load_runs(tmp_path).columns) == list(COLUMNS) and load_runs(tmp_path).empty
    assert list(load_curves(tmp_path).columns) == [*CURVE_KEYS, *METRICS] and load_curves(tmp_path).empty
    assert shatter(capsys, "runs", str(tmp_path)) == (0, f"no run records under {tmp_path}\n", "")
    rc, text, err = shatter(capsys, "runs", str(tmp_path), "--json")
    assert (rc, json.loads(text), err) == (0, [], f"shatter runs: no run records under {tmp_path}\n")
    rc, text, _ = shatter(capsys, "runs", str(tmp_path), "--csv")
    assert rc == 0 and text.strip() == ",".join(COLUMNS)


def _same(a, b) -> bool:
    """A table cell equals a record's value (a blank cell is None; NaN equals NaN)."""
    if b is None:
        return pd.isna(a)
    if isinstance(b, float) and math.isnan(b):
        return isinstance(a, float) and math.isnan(a)
    return not pd.isna(a) and a == b
