"""Tests for the `information` probe (the information plane of a run) and the MLPs' `activation` option: the
probe's values against the estimators applied directly to the `activations` probe's arrays of the same epochs
and sample, chosen layers of a user's network by module name, the columns `load_curves` returns, bad options
refused in one sentence, and a tanh MLP trained alone (never packed with the ReLU ones)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import shattering
from shattering.config import RunConfig
from shattering.errors import ConfigError
from shattering.executors.packing import pack_key
from shattering.information import binned_information, kde_information_bounds, knn_label_information
from shattering.probes import load_activations, load_information

FAST = {"dataset": "digits", "train_size": 200, "test_size": 50, "epochs": 3, "until": "epochs", "precision": "fp32",
        "device": "cpu", "measures": "none"}


def test_the_probe_records_the_estimators_of_the_activations_the_activations_probe_sees(tmp_path):
    run = shattering.run(**FAST, model_args={"activation": "tanh"}, out=str(tmp_path),
                         probes=["information:epochs=0/3:examples=150:bins=10+30:knn_units=4096",
                                 "activations:epochs=0/3:examples=150"])
    info = load_information(run.run_dir)
    assert sorted(info) == [0, 3]
    for epoch in (0, 3):
        arrays = load_activations(run.run_dir / "probes" / "activations" / f"epoch-{epoch:04d}.npz")
        (name, t), = arrays["layers"].items()
        got = info[epoch][name]
        y = arrays["labels"]
        for bins in (10, 30):
            direct = binned_information(t.astype(np.float64), y, bins=bins)
            assert got[f"binned{bins}_i_xt"] == pytest.approx(direct.i_xt, abs=1e-9)
            assert got[f"binned{bins}_i_ty"] == pytest.approx(direct.i_ty, abs=1e-9)
        kde = kde_information_bounds(t.astype(np.float64), y, noise_var=0.1)
        assert got["kde_i_xt_upper"] == pytest.approx(kde.i_xt_upper, rel=1e-6)
        assert got["knn_i_ty"] == pytest.approx(knn_label_information(t.astype(np.float64), y), rel=1e-6)
        assert got["ceiling"] == pytest.approx(np.log2(150)) and np.abs(t).max() <= 1  # tanh units
    curves = shattering.load_curves(tmp_path)
    assert curves["info_layers.0_binned30_i_xt"].notna().sum() == 2


USER_NET = '''
from torch import nn


def narrow(input_shape, num_classes):
    c, h, w = input_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, 8), nn.Tanh(), nn.Linear(8, 4), nn.Tanh(),
                         nn.Linear(4, num_classes))
'''


def test_chosen_layers_of_a_user_network_by_module_name(tmp_path, monkeypatch):
    (tmp_path / "infonets.py").write_text(USER_NET)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        run = shattering.run(**{**FAST, "model": "infonets:narrow", "lr": 0.1}, out=str(tmp_path / "runs"),
                             probes=["information:epochs=3:layers=2+4:knn_units=6"])
        info = load_information(run.run_dir)[3]
        assert set(info) == {"2", "4"} and info["2"]["features"] == 8 and info["4"]["features"] == 4
        assert 0 <= info["4"]["binned30_i_ty"] <= info["4"]["binned30_i_xt"] <= info["4"]["ceiling"] + 1e-9
        # knn_units=6: the 8-unit layer gets the KDE values and no kNN, the 4-unit one both
        assert "knn_i_ty" not in info["2"] and "knn_i_ty" in info["4"]
        assert 0 <= info["2"]["kde_i_xt_lower"] <= info["2"]["kde_i_xt_upper"] <= info["2"]["ceiling"] + 1e-9
        with pytest.raises(ConfigError, match="does not have: 9"):
            shattering.run(**{**FAST, "model": "infonets:narrow", "seed": 5}, out=str(tmp_path / "runs"),
                           probes=["information:epochs=1:layers=9"])
    finally:
        sys.modules.pop("infonets", None)


@pytest.mark.parametrize(("spec", "words"), [("information:bins=1", "bins="), ("information:noise=0", "noise="),
                                             ("information:examples=1", "examples="),
                                             ("information:knn_units=all", "knn_units="),
                                             ("information:width=3", "takes")])
def test_bad_options_are_refused_in_one_sentence(spec, words):
    with pytest.raises(ConfigError, match=words):
        RunConfig(dataset="digits", probes=[spec])


def test_the_tanh_mlp_is_another_network_trained_alone():
    relu, tanh = RunConfig(model="mlp-1x512"), RunConfig(model="mlp-1x512", model_args={"activation": "tanh"})
    assert relu.run_id() != tanh.run_id() and pack_key(tanh) is None and pack_key(relu) is not None
    from shattering.models.build import build_model

    net = build_model("mlp-1x512", (1, 8, 8), 10, activation="tanh")
    out = net.representations(torch.randn(5, 1, 8, 8) * 100)["layers.0"]
    assert torch.all(out.abs() <= 1) and net.activation == "tanh"
    with pytest.raises(ConfigError, match="activation"):
        build_model("mlp-1x512", (1, 8, 8), 10, activation="sigmoid")


def _run_with_information(tmp_path, name: str, activation: str, corruption: str, xt: list[float], seed: int = 0):
    """RunFacts of a run whose last hidden layer's binned I(X;T) follows ``xt`` over epochs 0, 1, 2, ..."""
    import json as json_

    from shattering.experiments.claims import RunFacts

    folder = tmp_path / name / "probes" / "information"
    folder.mkdir(parents=True)
    for epoch, value in enumerate(xt):
        layers = {"layers.0": {"binned4_i_xt": 5.0, "binned30_i_xt": 5.0, "kde_i_xt_upper": 5.0},
                  "layers.1": {"binned4_i_xt": value, "binned30_i_xt": value, "kde_i_xt_upper": value}}
        (folder / f"epoch-{epoch:04d}.json").write_text(json_.dumps({"epoch": epoch, "layers": layers}))
    cfg = RunConfig(dataset="digits", model="mlp-saxe", model_args={"activation": activation}, corruption=corruption,
                    seed=seed)
    return RunFacts(cfg, {"status": "fit"}, (), tmp_path / name)


def test_the_information_claims_read_compression_off_the_probe_files(tmp_path):
    from shattering.experiments.claims import HOLDS, NOT_AT_SCALE, NOT_MEASURED
    from shattering.experiments.claims.information import (
        noise_compresses_later,
        relu_does_not_compress,
        tanh_compresses,
    )

    facts = [_run_with_information(tmp_path, "a", "tanh", "true-labels", [1, 3, 2.5, 2.0]),  # peak at 1, falls 1
             _run_with_information(tmp_path, "b", "tanh", "random-labels", [1, 2, 3, 4, 3.5]),  # peak at 3
             _run_with_information(tmp_path, "c", "relu", "true-labels", [1, 2, 3, 3.05])]  # no fall
    assert tanh_compresses(facts).verdict == HOLDS and "falls 1.00" in tanh_compresses(facts).text
    assert relu_does_not_compress(facts).verdict == HOLDS
    later = noise_compresses_later(facts)
    assert later.verdict == HOLDS and "epoch 3 on random-labels against 1 on true labels" in later.text
    facts.append(_run_with_information(tmp_path, "d", "tanh", "random-pixels", [1, 4, 3]))  # peak at 1: not later
    assert noise_compresses_later(facts).verdict == NOT_AT_SCALE
    flat = [_run_with_information(tmp_path, "e", "tanh", "true-labels", [1, 1, 1])]
    assert noise_compresses_later(flat).verdict == NOT_MEASURED and tanh_compresses(flat).verdict == NOT_AT_SCALE


def test_the_information_artefact_end_to_end_at_smoke_scale(tmp_path):
    import json as json_

    from shattering.experiments.presets import PRESETS
    from shattering.report.reproduce import reproduce

    result = reproduce("information", "smoke", out=str(tmp_path), progress=False)
    assert not result["render_errors"]
    folder = tmp_path / "artefacts" / "information"
    for name in ("information.png", "information-kde.png", "information-compression.png", "information.md",
                 "information.csv", "information.json"):
        assert (folder / name).stat().st_size > 0, name
    side = json_.loads((folder / "information.json").read_text())
    assert [c["id"] for c in side["claims"]] == [c.id for c in PRESETS["information"].claims]
    assert len(side["table"]["rows"]) == 4
    assert "no information probe files" not in (folder / "information.md").read_text()


def test_a_damaged_probe_file_is_named_in_a_warning_and_not_read_as_a_result(tmp_path):
    folder = tmp_path / "probes" / "information"
    folder.mkdir(parents=True)
    (folder / "epoch-0001.json").write_text('{"epoch": 1, "layers": {"layers.1": {"binned30_i_xt": 2.5}}}')
    (folder / "epoch-0002.json").write_text('{"epoch": 2, "layers": {"layers.1": {"binn')  # cut short
    (folder / "epoch-0003.json").write_text("[1, 2]")  # not the probe's
    with pytest.warns(UserWarning, match=r"epoch-0002\.json, epoch-0003\.json not read .*delete them, or rerun"):
        info = load_information(tmp_path)
    assert info == {1: {"layers.1": {"binned30_i_xt": 2.5}}}
