"""Tests for `shattering/theory/rademacher.py` and the theory commands of `shatter` (`cli/theory.py`)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shattering.cli import main
from shattering.errors import ConfigError
from shattering.theory.rademacher import correlation, rademacher_probe, random_signs

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
    assert main(["expressivity", "--dataset", "digits", "--n", "200", "--depth", "3"]) == 0
    out = capsys.readouterr().out
    assert "2n + d = 464" in out and "nK + n + d = 2,264" in out
    assert "100.00% (class index), 100.00% (one-hot)" in out and "depth 3" in out


def test_expressivity_command_json(capsys):
    assert main(["expressivity", "--dataset", "digits", "--n", "150", "--labels", "random", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["weights"]["theorem_1"] == 2 * 150 + 64
    assert r["one_per_class"]["train_accuracy"] == 1.0 and r["one_per_class"]["max_error"] < 1e-6


def test_minnorm_command(capsys):
    assert main(["minnorm", "--dataset", "synthetic", "--n", "20", "--epochs", "100"]) == 0
    out = capsys.readouterr().out
    assert "||w - w*||/||w*||" in out and "predicted limit" in out
    assert main(["minnorm", "--dataset", "synthetic", "--n", "20", "--epochs", "100", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["from_zero"]["distance_to_min_norm"] < 1e-8


def test_kernel_command(capsys):
    assert main(["kernel", "--dataset", "digits", "--n-train", "300", "--n-test", "100", "--block-size", "64"]) == 0
    out = capsys.readouterr().out
    assert "true" in out and "random" in out and "NO" not in out
    assert main(["kernel", "--dataset", "digits", "--n-train", "200", "--n-test", "50", "--kernel", "laplacian",
                 "--labels", "partial", "--p", "0.3", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["kernel"] == "laplacian" and r["results"][0]["interpolates"]


def test_kernel_command_with_ridge_says_it_does_not_interpolate(capsys):
    assert main(["kernel", "--dataset", "digits", "--n-train", "200", "--n-test", "50", "--ridge", "1"]) == 0
    assert "NO" in capsys.readouterr().out


def test_rademacher_command(capsys):
    assert main(["rademacher", "--dataset", "digits", "--n", "100", "--draws", "1", "--probes", "kernel,linear"]) == 0
    out = capsys.readouterr().out
    assert "kernel" in out and "linear" in out


@pytest.mark.parametrize("argv", [
    ["expressivity", "--dataset", "digits", "--n", "0"],
    ["expressivity", "--dataset", "digits", "--n", "50", "--depth", "1"],
    ["expressivity", "--dataset", "digits", "--n", "50", "--labels", "shuffled"],
    ["minnorm", "--n", "-3"],
    ["minnorm", "--dataset", "synthetic", "--features", "random"],
    ["minnorm", "--dataset", "synthetic", "--labels", "partial", "--p", "0.5"],
    ["minnorm", "--dataset", "digits", "--n", "10", "--p", "2"],
    ["kernel", "--dataset", "digits", "--n-train", "0"],
    ["kernel", "--dataset", "digits", "--kernel", "polynomial"],
    ["kernel", "--dataset", "digits", "--labels", "partial", "--p", "1.5"],
    ["kernel", "--dataset", "digits", "--labels", "partial", "--p", "-0.1"],
    ["kernel", "--dataset", "digits", "--features", "sift"],
    ["kernel", "--dataset", "digits", "--features", "raw", "--filters", "0"],
    ["kernel", "--dataset", "nosuchdata"],
    ["rademacher", "--n", "0"],
    ["rademacher", "--draws", "0"],
])
def test_bad_options_exit_2_with_one_line(argv, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shatter: error: ")
    assert captured.out == ""
