"""Tests for `shattering/probes.py`: a probe registered from outside the package is called at the epochs it asks
for by both trainers; the built-in probes write what they say (checked against a direct evaluation of the
network), from the command line, TOML and Python; a run killed and resumed writes the same probe files as one
never interrupted; bad probe settings are refused in one sentence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import shattering
from shattering.cli import main
from shattering.config import RunConfig
from shattering.errors import ConfigError
from shattering.executors.sweep import run_sweep
from shattering.probes import PROBES, Probe, load_activations, register_probe
from shattering.runs import RunRecord
from shattering.train.data import make_data
from shattering.train.trainer import init_model

SRC = str(Path(__file__).resolve().parents[1] / "src")
FAST = {"dataset": "digits", "corruption": "random-labels", "train_size": 200, "test_size": 100, "epochs": 5,
        "until": "epochs", "precision": "fp32", "device": "cpu"}


@pytest.fixture
def calls():
    """A probe registered as a user would (not in the package), recording every call; unregistered after."""
    seen: list[tuple] = []

    class Recorder(Probe):
        name = "recorder"
        defaults = {"every": "2"}

        def on_epoch_end(self, state):
            seen.append((state.folder.name, state.epoch, state.status, state.metrics is not None,
                         float(next(state.model.parameters()).detach().abs().sum())))

    register_probe(Recorder)
    yield seen
    PROBES.pop("recorder")


def test_a_user_probe_is_called_at_its_epochs_by_a_run_and_by_a_pack(tmp_path, calls):
    result = shattering.run(**FAST, probes=["recorder"], out=str(tmp_path / "alone"))
    assert [(e, s) for _, e, s, _, _ in calls] == [(0, None), (2, None), (4, None), (5, "not-fit")]
    assert calls[-1][3]  # the last epoch is evaluated: its metrics are there
    alone = list(calls)
    calls.clear()
    # a pack of two members (seeds 0 and 1): each member's probe sees its own network, the one it would alone
    configs = [RunConfig(**FAST, seed=s, probes=["recorder:every=2"], out=str(tmp_path / "pack")) for s in (0, 1)]
    outcomes = run_sweep(configs, progress=False)
    assert all(o.summary["packed"]["members"] == 2 for o in outcomes)
    mine = [c for c in calls if c[0] == result.run_dir.name]
    assert [(e, s) for _, e, s, _, _ in mine] == [(e, s) for _, e, s, _, _ in alone]
    assert [w for *_, w in mine] == pytest.approx([w for *_, w in alone], rel=1e-6)
    assert len(calls) == 8


def test_snapshots_and_activations_hold_the_network_and_its_layers(tmp_path):
    cfg = RunConfig(**FAST, probes=["snapshots:epochs=0/3", "activations:every=5:examples=64"], out=str(tmp_path))
    result = shattering.run(cfg)
    folder = result.run_dir / "probes"
    assert sorted(p.name for p in (folder / "snapshots").iterdir()) == ["epoch-0000.pt", "epoch-0003.pt",
                                                                       "epoch-0005.pt"]
    assert sorted(p.name for p in (folder / "activations").iterdir()) == ["epoch-0000.npz", "epoch-0005.npz"]
    data = make_data(cfg.resolved())
    init = init_model(cfg.resolved(), data).state_dict()
    first = torch.load(folder / "snapshots" / "epoch-0000.pt")
    assert all(torch.equal(first[k], init[k]) for k in init)  # epoch 0: the initialization
    last = torch.load(folder / "snapshots" / "epoch-0005.pt")
    trained = shattering.load_model(result.run_dir).state_dict()
    assert all(torch.equal(last[k], trained[k]) for k in trained)  # the end: the trained network
    # the activations, against the network evaluated by hand: relu(W1 x + b1) and W2 h + b2
    acts = load_activations(folder / "activations" / "epoch-0005.npz")
    x = torch.from_numpy(data.x_train[acts["indices"]]).flatten(1).double()
    (w1, b1), (w2, b2) = [(last[f"{k}.weight"].double(), last[f"{k}.bias"].double())
                          for k in sorted({k.rsplit(".", 1)[0] for k in last})]
    hidden = torch.relu(x @ w1.T + b1)
    (layer,) = acts["layers"].values()
    np.testing.assert_allclose(layer, hidden.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(acts["output"], (hidden @ w2.T + b2).numpy(), rtol=1e-4, atol=1e-4)
    assert len(acts["indices"]) == 64 and list(acts["labels"]) == list(data.y_train[acts["indices"]])
    assert list(acts["true_labels"]) == list(data.y_train_original[acts["indices"]])


def _scalars(folder: Path) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_from_the_command_line_toml_and_python(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    flags = ["--dataset", "digits", "--corruption", "random-labels", "--train-size", "200", "--test-size", "100",
             "--epochs", "3", "--until", "epochs", "--precision", "fp32", "--device", "cpu", "--quiet"]
    assert main(["run", *flags, "--probe", "tensorboard", "--out", str(tmp_path / "cli")]) == 0
    toml = tmp_path / "run.toml"
    toml.write_text('dataset = "digits"\ncorruption = "random-labels"\ntrain_size = 200\ntest_size = 100\n'
                    'epochs = 3\nuntil = "epochs"\nprecision = "fp32"\ndevice = "cpu"\nprobes = ["tensorboard"]\n'
                    f'out = "{tmp_path / "toml"}"\n')
    assert main(["run", "--config", str(toml), "--quiet"]) == 0
    python = shattering.run(**{**FAST, "epochs": 3}, probes="tensorboard", out=str(tmp_path / "py"))
    capsys.readouterr()
    found = [_scalars(next((tmp_path / d).iterdir()) / "probes" / "tensorboard") for d in ("cli", "toml")]
    found.append(_scalars(python.run_dir / "probes" / "tensorboard"))
    assert found[0] == found[1] == found[2]
    metrics = [r for r in RunRecord(python.run_dir).read_metrics() if "train_acc" in r]
    assert [s for s, _ in found[0]["running_train_loss"]] == [1, 2, 3]
    assert found[0]["test_acc"][-1] == (3, pytest.approx(metrics[-1]["test_acc"]))


def test_a_killed_and_resumed_run_writes_the_probe_files_of_an_uninterrupted_one(tmp_path, monkeypatch):
    args = ["run", "--dataset", "digits", "--corruption", "random-labels", "--train-size", "200", "--test-size",
            "100", "--batch-size", "16", "--epochs", "6", "--until", "epochs", "--precision", "fp32", "--device",
            "cpu", "--threads", "1", "--quiet", "--probe", "snapshots:every=1", "--probe",
            "activations:every=2:examples=50"]
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1",
           "SHATTERING_CHECKPOINT_EVERY_S": "0", "SHATTERING_FAULT": "step:46"}  # 13 steps an epoch: in epoch 4
    killed = subprocess.run([sys.executable, "-c", "import sys; from shattering.cli import main; "
                             "sys.exit(main(sys.argv[1:]))", *args, "--out", str(tmp_path / "a")], env=env,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    (folder,) = (tmp_path / "a").iterdir()
    assert not (folder / "summary.json").exists() and (folder / "probes" / "snapshots" / "epoch-0003.pt").exists()
    monkeypatch.setenv("SHATTERING_CHECKPOINT_EVERY_S", "0")
    for out in ("a", "b"):  # resume a; b never interrupted (here: one thread, as the killed process had)
        assert main([*args, "--out", str(tmp_path / out)]) == 0
    assert len(json.loads((folder / "summary.json").read_text())["resumes"]) == 1
    (other,) = (tmp_path / "b").iterdir()
    mine = sorted(p.relative_to(folder) for p in (folder / "probes").rglob("*") if p.is_file())
    theirs = sorted(p.relative_to(other) for p in (other / "probes").rglob("*") if p.is_file())
    assert mine == theirs and len(mine) == 7 + 4
    assert all((folder / p).read_bytes() == (other / p).read_bytes() for p in mine)


def test_bad_probe_settings_are_refused_in_one_sentence():
    with pytest.raises(ConfigError,
                       match=r"Unknown probe 'snapshot'; the probes are activations, information, snapshots, "):
        RunConfig(probes=["snapshot"])
    with pytest.raises(ConfigError, match=r"The probe 'snapshots' takes every, log, epochs; got often\."):
        RunConfig(probes=["snapshots:often=2"])
    with pytest.raises(ConfigError, match=r"takes every= as a positive whole number; got every='0'"):
        RunConfig(probes=["snapshots:every=0"])
    with pytest.raises(ConfigError, match=r"takes one schedule"):
        RunConfig(probes=["snapshots:every=2:log=3"])
    with pytest.raises(ConfigError, match=r"A probe is NAME\[:KEY=VALUE...\]"):
        RunConfig(probes=["snapshots:every"])
    with pytest.raises(ConfigError, match=r"examples= as a whole number of at least 1"):
        RunConfig(probes=["activations:examples=none"])
    with pytest.raises(ConfigError, match=r"subclass of shattering.Probe"):
        register_probe(object)


def test_tensorboard_missing_is_one_sentence(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    with pytest.raises(ConfigError, match=r"needs the tensorboard package: pip install 'shattering\[tensorboard\]'"):
        RunConfig(probes=["tensorboard"])


def test_a_reused_record_made_without_a_probe_says_so(tmp_path):
    shattering.run(**FAST, out=str(tmp_path))
    again = shattering.run(**FAST, probes=["snapshots"], out=str(tmp_path))
    assert again.reused and again.probes_missing == ("snapshots",)
    assert "made without the probe(s) snapshots asked for now: --rerun" in again.message
    fresh = shattering.run(**FAST, probes=["snapshots"], out=str(tmp_path), rerun=True)
    assert not fresh.reused and (fresh.run_dir / "probes" / "snapshots").is_dir()
    assert shattering.run(**FAST, probes=["snapshots"], out=str(tmp_path)).probes_missing == ()
