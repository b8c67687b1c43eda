"""Tests for `shattering/theory/rademacher.py`, `experiments/rademacher.py` and the theory commands of `shatter`
(`cli/theory.py`)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shattering.cli import main
from shattering.errors import ConfigError
from shattering.experiments import sample as sample_module
from shattering.experiments.rademacher import rademacher_probe
from shattering.theory.rademacher import correlation, random_signs

# -- the Rademacher probe (Section 2.2) ------------------------------------------------------------------


def test_random_signs_are_seeded_signs():
    s = random_signs(1000, seed=0, draw=1)
    assert set(np.unique(s)) == {-1.0, 1.0}
    assert np.array_equal(s, random_signs(1000, seed=0, draw=1))
    assert not np.array_equal(s, random_signs(1000, seed=0, draw=2))
    assert correlation(s, s) == 1.0 and correlation(s, -s) == -1.0


def test_kernel_interpolant_shatters_and_linear_model_does_not():
    r = rademacher_probe("digits", 300, probes="kernel,linear", draws=2)
    assert r["results"]["kernel"]["mean"] == pytest.approx(1.0, abs=1e-8)
    assert r["results"]["linear"]["mean"] < 0.8  # 65 weights cannot shatter 300 points


def test_network_fits_random_signs():
    r = rademacher_probe("digits", 100, probes="network", draws=1, epochs=200)
    run = r["results"]["network"]["draws"][0]
    assert run["fit"] and r["results"]["network"]["mean"] == 1.0


def test_probe_rejects_bad_options():
    with pytest.raises(ConfigError, match="draws"):
        rademacher_probe("digits", 50, draws=0)
    with pytest.raises(ConfigError, match="probes"):
        rademacher_probe("digits", 50, probes="svm")
    with pytest.raises(ConfigError, match="Unknown model"):
        rademacher_probe("digits", 50, model="resnet")


# -- the commands --------------------------------------------------------------------------------------


def test_expressivity_command(capsys):
    assert main(["expressivity", "--dataset", "digits", "--train-size", "200", "--depth", "3"]) == 0
    out = capsys.readouterr().out
    assert "2n + d = 464" in out and "nK + n + d = 2,264" in out
    assert "100.00% (class index), 100.00% (one-hot)" in out and "depth 3" in out
    assert "Theorem 1:     holds: n = 200, d = 64: 464 weights (2n + d = 464)" in out


def test_expressivity_command_json(capsys):
    assert main(["expressivity", "--dataset", "digits", "--train-size", "150", "--corruption", "random-labels",
                 "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["corruption"] == "random-labels" and r["seed"] == 0 and r["data_seed"] == 0
    assert r["weights"]["theorem_1"] == 2 * 150 + 64
    assert r["one_per_class"]["train_accuracy"] == 1.0 and r["one_per_class"]["max_error"] < 1e-6


def test_minnorm_command(capsys):
    assert main(["minnorm", "--dataset", "synthetic", "--train-size", "20", "--epochs", "100"]) == 0
    out = capsys.readouterr().out
    assert "||w - w*||/||w*||" in out and "predicted limit" in out
    assert main(["minnorm", "--dataset", "synthetic", "--train-size", "20", "--epochs", "100", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["from_zero"]["distance_to_min_norm"] < 1e-8


def test_kernel_command(capsys):
    assert main(["kernel", "--dataset", "digits", "--train-size", "300", "--test-size", "100", "--block-size",
                 "64"]) == 0
    out = capsys.readouterr().out
    assert "true-labels" in out and "random-labels" in out and "NO" not in out
    assert main(["kernel", "--dataset", "digits", "--train-size", "200", "--test-size", "50", "--kernel", "laplacian",
                 "--corruption", "partial-labels", "--p", "0.3", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["kernel"] == "laplacian" and r["results"][0]["interpolates"]
    assert r["results"][0]["corruption"] == "partial-labels" and r["n_train"] == 200 and r["n_test"] == 50


def test_kernel_command_with_ridge_says_it_does_not_interpolate(capsys):
    assert main(["kernel", "--dataset", "digits", "--train-size", "200", "--test-size", "50", "--ridge", "1"]) == 0
    assert "NO" in capsys.readouterr().out


def test_rademacher_command(capsys):
    assert main(["rademacher", "--dataset", "digits", "--train-size", "100", "--draws", "1", "--probes",
                 "kernel,linear"]) == 0
    out = capsys.readouterr().out
    assert "kernel" in out and "linear" in out


# Cheap command lines of every theory command (tiny problems on the bundled digits).
CHEAP = {
    "expressivity": ["expressivity", "--dataset", "digits", "--train-size", "40", "--test-size", "10"],
    "minnorm": ["minnorm", "--dataset", "digits", "--train-size", "20", "--test-size", "10", "--epochs", "2"],
    "kernel": ["kernel", "--dataset", "digits", "--train-size", "40", "--test-size", "10"],
    "rademacher": ["rademacher", "--dataset", "digits", "--train-size", "30", "--draws", "1", "--probes",
                   "kernel,linear"],
}


@pytest.mark.parametrize("command", list(CHEAP))
def test_out_writes_the_result_as_json(command, tmp_path, capsys):
    out = tmp_path / "results" / "here"
    assert main([*CHEAP[command], "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads((out / f"{command}.json").read_text())
    assert [p.name for p in out.iterdir()] == [f"{command}.json"]
    assert set(written) == set(printed) and written["dataset"] == printed["dataset"] == "digits"
    assert main(CHEAP[command]) == 0  # no --out: no file, and the text report instead of JSON
    assert not capsys.readouterr().out.lstrip().startswith("{")


@pytest.mark.parametrize("command", list(CHEAP))
def test_data_dir_and_data_seed_reach_the_data_set(command, tmp_path, monkeypatch, capsys):
    seen = []
    original = sample_module.load_dataset

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(sample_module, "load_dataset", spy)
    assert main([*CHEAP[command], "--data-dir", str(tmp_path), "--data-seed", "3", "--seed", "5", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert len(seen) == 1 and seen[0]["data_dir"] == str(tmp_path) and seen[0]["subset_seed"] == 3
    assert (r["seed"], r["data_seed"]) == (5, 3)


def test_seed_draws_the_algorithm_and_data_seed_the_labels(capsys):
    def run(*extra) -> dict:
        assert main(["expressivity", "--dataset", "digits", "--train-size", "100", "--corruption", "random-labels",
                     "--json", *extra]) == 0
        return json.loads(capsys.readouterr().out)

    base, other_seed, other_data = run(), run("--seed", "1"), run("--data-seed", "1")
    assert other_seed["label_noise"] == base["label_noise"]  # the same random labels ...
    assert other_seed["fit"]["relative_gap"] != base["fit"]["relative_gap"]  # ... a different direction a
    assert other_data["label_noise"] != base["label_noise"]  # other random labels (and another subset)


@pytest.mark.parametrize("argv", [
    ["expressivity", "--dataset", "digits", "--train-size", "0"],
    ["expressivity", "--dataset", "digits", "--train-size", "50", "--depth", "1"],
    ["expressivity", "--dataset", "digits", "--train-size", "50", "--corruption", "shuffled"],
    ["expressivity", "--dataset", "digits", "--train-size", "50", "--corruption", "shuffled-pixels"],
    ["expressivity", "--dataset", "digits", "--train-size", "50", "--test-size", "0"],
    ["expressivity", "--dataset", "digits", "--train-size", "50", "--data-seed", "-1"],
    ["minnorm", "--train-size", "-3"],
    ["minnorm", "--dataset", "synthetic", "--features", "random"],
    ["minnorm", "--dataset", "synthetic", "--corruption", "partial-labels", "--p", "0.5"],
    ["minnorm", "--dataset", "digits", "--train-size", "10", "--p", "2"],
    ["minnorm", "--dataset", "digits", "--train-size", "10", "--corruption", "random"],
    ["kernel", "--dataset", "digits", "--train-size", "0"],
    ["kernel", "--dataset", "digits", "--kernel", "polynomial"],
    ["kernel", "--dataset", "digits", "--corruption", "partial-labels", "--p", "1.5"],
    ["kernel", "--dataset", "digits", "--corruption", "partial-labels", "--p", "-0.1"],
    ["kernel", "--dataset", "digits", "--corruption", "true,random"],
    ["kernel", "--dataset", "digits", "--features", "sift"],
    ["kernel", "--dataset", "digits", "--features", "raw", "--filters", "0"],
    ["kernel", "--dataset", "nosuchdata"],
    ["kernel", "--dataset", "digits", "--train-size", "20", "--data-seed", "-2"],
    ["rademacher", "--train-size", "0"],
    ["rademacher", "--draws", "0"],
])
def test_bad_options_exit_2_with_one_line(argv, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shatter: error: ")
    assert captured.out == ""
