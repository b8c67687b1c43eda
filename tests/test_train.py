"""Tests for `shattering/train`: fitting, honesty, records, resume (Section 2.1's procedure)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import shattering
from shattering.config import RunConfig
from shattering.runs import RunRecord
from shattering.train.augment import crop_windows, flip_rotate, pad_and_crop

TIMING = {"seconds", "eval_seconds", "epoch_seconds"}


def _strip(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def test_mlp_fits_random_labels_on_digits_and_says_so(tmp_path):
    result = shattering.run(dataset="digits", model="mlp-1x512", corruption="random-labels", train_size=300,
                            lr=0.1, out=str(tmp_path))
    s = result.summary
    assert result.status == "fit" and result.fit and s["final"]["train_acc"] == 1.0
    assert s["final"]["train_errors"] == 0 and s["fit_step"] == s["steps"] > 0
    assert s["final"]["test_acc"] < 0.3  # random labels: about chance on clean test labels
    assert "FIT" in result.message and f"step {s['fit_step']}" in result.message
    assert s["data"]["label_noise"] > 0.8 and len(s["data_fingerprint"]) == 32
    rows = RunRecord(result.run_dir).read_metrics()
    assert len(rows) == s["epochs"] and rows[-1]["train_acc"] == 1.0
    assert rows[-1]["train_acc_corrupted"] == 1.0 and rows[-1]["train_acc_original"] < 0.5


def test_true_labels_generalize(tmp_path):
    result = shattering.run(dataset="digits", model="mlp-1x512", lr=0.1, out=str(tmp_path))
    assert result.fit and result.test_acc >= 0.9


def test_not_fit_is_reported_with_numbers_not_rounded(tmp_path):
    result = shattering.run(dataset="digits", model="mlp-1x512", corruption="random-labels", epochs=3,
                            out=str(tmp_path))
    s = result.summary
    assert result.status == "not-fit" and not result.fit and s["fit_epoch"] is None
    assert "DID NOT FIT" in result.message and "after 3 epochs" in result.message
    assert f"{s['final']['train_errors']} of 1437 examples wrong" in result.message
    assert "Measured: the budget ended after only 3 epochs" in result.message
    assert result.summary["advice"] and result.summary["advice"][0]["change"] == {"epochs": 30}


def test_divergence_ends_the_run_with_a_hint(tmp_path):
    result = shattering.run(dataset="digits", model="mlp-3x512", lr=1e6, epochs=20, precision="fp32",
                            out=str(tmp_path))
    assert result.status == "diverged" and "the training loss became NaN or infinite at epoch" in result.message
    assert result.advice[0].endswith("(try lr=100000.0)")  # measured: the first step was finite, then it blew up
    assert result.summary["epochs"] < 20


def test_stuck_at_chance_prints_the_usual_causes(tmp_path):
    result = shattering.run(dataset="digits", model="mlp-1x512", corruption="random-labels", lr=1e-5,
                            lr_decay=0.5, weight_decay=1e-3, epochs=6, out=str(tmp_path))
    (warning,) = result.summary["warnings"]
    assert "stuck at chance" in warning and "budget lr0/(1-decay)" in warning and "weight decay" in warning


def test_finished_run_is_not_run_again(tmp_path):
    first = shattering.run(dataset="digits", corruption="random-labels", epochs=2, out=str(tmp_path))
    mtime = (first.run_dir / "summary.json").stat().st_mtime_ns
    again = shattering.run(dataset="digits", corruption="random-labels", epochs=2, out=str(tmp_path))
    assert again.summary == first.summary and (first.run_dir / "summary.json").stat().st_mtime_ns == mtime
    assert again.reused and not first.reused and again.message.startswith("done before, on ")


def test_record_files(tmp_path):
    result = shattering.run(dataset="digits", epochs=2, log_every=5, out=str(tmp_path))
    record = RunRecord(result.run_dir)
    config = json.loads(record.config_path.read_text())
    assert config["data_fingerprint"] == result.summary["data_fingerprint"]
    assert config["config"]["lr"] == 0.01 and config["schedule"]["lr_decay"] == 1.0
    steps = record.read_steps()
    assert [r["step"] for r in steps] == list(range(5, result.summary["steps"] + 1, 5))
    state, notes = record.load_checkpoint()
    assert state["epoch"] == 2 and notes == []


@pytest.mark.parametrize("model", ["inception-small", "alexnet-small", "mlp-3x512", "inception-small-nobn"])
def test_every_model_trains_with_every_regularizer(tmp_path, model):
    result = shattering.run(dataset="digits", model=model, train_size=64, test_size=32, epochs=1,
                            weight_decay=5e-4, random_crop=True, flip_rotate=True, dropout=0.1, out=str(tmp_path))
    assert result.summary["epochs"] == 1 and np.isfinite(result.summary["final"]["train_loss"])


def test_augmentations_keep_shapes_and_are_seeded():
    x = torch.randn(6, 3, 32, 32)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    a, b = crop_windows(x, 28, 28, g1), crop_windows(x, 28, 28, g2)
    assert a.shape == (6, 3, 28, 28) and torch.equal(a, b)
    assert any(torch.equal(a[0], x[0, :, i:i + 28, j:j + 28]) for i in range(5) for j in range(5))
    assert pad_and_crop(x, 2, g1).shape == x.shape
    r = flip_rotate(x, 25.0, g1)
    assert r.shape == x.shape and not torch.equal(r, x)
    assert torch.allclose(flip_rotate(x, 0.0, torch.Generator().manual_seed(1)).abs().sum(), x.abs().sum(), rtol=1e-4)


def test_bf16_and_fp32_both_fit_random_labels(tmp_path):
    for precision in ("bf16", "fp32"):
        result = shattering.run(dataset="digits", model="mlp-1x512", corruption="random-labels", train_size=200,
                                lr=0.1, precision=precision, out=str(tmp_path))
        assert result.fit and result.summary["precision"] == precision


def test_cifar_random_crop_from_the_full_image(tmp_path, monkeypatch):
    from shattering.data.formats import write_cifar_archive

    rng = np.random.default_rng(0)
    write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", "cifar10",
                        rng.integers(0, 256, (40, 3, 32, 32), dtype=np.uint8), np.arange(40) % 10,
                        rng.integers(0, 256, (10, 3, 32, 32), dtype=np.uint8), np.arange(10) % 10)
    cfg = RunConfig(dataset="cifar10", data_dir=str(tmp_path), model="alexnet-small", random_crop=True, epochs=1,
                    out=str(tmp_path / "runs"))
    data = shattering.make_data(cfg)
    assert data.source_train.shape == (40, 3, 32, 32) and data.shape == (3, 28, 28)
    assert shattering.run(cfg).summary["epochs"] == 1


def _run_cli(out, extra=()):
    return [sys.executable, "-m", "shattering", "run", "--dataset", "digits", "--model", "mlp-1x512",
            "--corruption", "random-labels", "--batch-size", "8", "--until", "epochs", "--epochs", "25",
            "--device", "cpu", "--quiet", "--out", str(out), *extra]  # compared bit for bit: on the CPU


def test_sigkill_then_resume_ends_with_the_same_metrics(tmp_path):
    reference = subprocess.run(_run_cli(tmp_path / "a"), capture_output=True, text=True, timeout=300)
    assert reference.returncode == 0, reference.stderr
    (ref_dir,) = (tmp_path / "a").iterdir()
    proc = subprocess.Popen(_run_cli(tmp_path / "b"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    metrics = None
    while time.time() < deadline:
        found = list((tmp_path / "b").glob("*/metrics.jsonl"))
        if found and len(found[0].read_text().splitlines()) >= 8:
            metrics = found[0]
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert metrics is not None and not (metrics.parent / "summary.json").exists()
    resumed = subprocess.run(_run_cli(tmp_path / "b"), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    a, b = RunRecord(ref_dir), RunRecord(metrics.parent)
    assert _strip(a.read_metrics()) == _strip(b.read_metrics())
    assert a.read_steps() == b.read_steps()
    sa, sb = a.read_summary(), b.read_summary()
    assert sa["final"]["train_loss"] == sb["final"]["train_loss"] and sa["steps"] == sb["steps"]
    assert len(sb["resumes"]) == 1 and sb["data_fingerprint"] == sa["data_fingerprint"]
