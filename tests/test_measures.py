"""Tests for `shattering/measures/` and `shattering/runs/measured.py`: every complexity measure against a hand
computation on a tiny network (a convolution's operator norm against the singular values of its dense matrix,
the path norm against an enumeration of every path, margins against logits by hand), and the measures in every
run's summary, in the runs table and from `shatter measures`. Everything runs on the CPU."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from shattering.cli import main
from shattering.config import RunConfig
from shattering.errors import RecordError
from shattering.executors.sweep import run_sweep
from shattering.measures import compute_measures, measure_names
from shattering.measures.flatness import accuracy, pac_bayes_sigma, perturbed_accuracy
from shattering.measures.layers import conv_operator_norm, spectral_norm, weighted_layers
from shattering.measures.margins import data_scale, margin_summary, margins
from shattering.measures.norms import distance_from_init, l2_norm, layer_norms, path_l2
from shattering.models.mlp import MLP
from shattering.runs import load_runs, measure_run, run

TINY = {"dataset": "digits", "model": "mlp-1x512", "corruption": "random-labels", "train_size": 200,
        "test_size": 50, "epochs": 1, "device": "cpu", "precision": "fp32"}


def dense_matrix(f, input_shape: tuple[int, ...]) -> torch.Tensor:
    """The matrix of the linear map ``f`` on inputs of ``input_shape``: f applied to every basis vector."""
    n = math.prod(input_shape)
    basis = torch.eye(n, dtype=torch.float64).reshape(n, *input_shape)
    with torch.no_grad():
        return f(basis).reshape(n, -1).T  # (outputs, inputs)


@pytest.mark.parametrize(("stride", "padding", "size"), [(1, 0, 5), (1, 1, 5), (2, 1, 6), (2, 1, 7), (2, 0, 7)])
def test_conv_operator_norm_is_the_largest_singular_value_of_its_dense_matrix(stride, padding, size):
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, stride=stride, padding=padding, bias=False).double()
    shape = (2, size, size)
    dense = dense_matrix(lambda x: F.conv2d(x, conv.weight, stride=stride, padding=padding), shape)
    expected = float(torch.linalg.matrix_norm(dense, ord=2))
    assert conv_operator_norm(conv.weight.detach(), conv, shape, iterations=2000) == pytest.approx(expected,
                                                                                                    rel=1e-6)
    kernel = float(torch.linalg.matrix_norm(conv.weight.detach().reshape(3, -1), ord=2))
    assert abs(kernel - expected) > 1e-3  # the reshaped kernel's norm is another number


def test_batch_norm_is_folded_into_the_convolution_before_it():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, bias=False), nn.BatchNorm2d(2), nn.ReLU()).double().eval()
    net[1].running_var.copy_(torch.tensor([4.0, 0.25]))
    net[1].weight.data.copy_(torch.tensor([1.5, -0.5]))
    scale = net[1].weight.detach() / torch.sqrt(net[1].running_var + net[1].eps)
    layers = weighted_layers(net, (1, 4, 4))
    assert len(layers) == 1
    dense = dense_matrix(lambda x: scale[None, :, None, None] * F.conv2d(x, net[0].weight, padding=1), (1, 4, 4))
    assert spectral_norm(layers[0], iterations=2000) == pytest.approx(float(torch.linalg.matrix_norm(dense, ord=2)),
                                                                       rel=1e-5)


def test_spectral_frobenius_and_bartlett_complexity_by_hand():
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[3.0, 0.0], [0.0, 1.0]]))
        net[2].weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 1.0]]))
    got = layer_norms(weighted_layers(net, (2,)))
    assert got["spectral_product"] == pytest.approx(6.0)
    assert got["log_spectral_product"] == pytest.approx(math.log(6.0))
    assert got["frobenius_sum"] == pytest.approx(10.0 + 5.0)
    assert got["log_frobenius_product"] == pytest.approx(math.log(math.sqrt(10.0) * math.sqrt(5.0)))
    # R_A = prod ||A||_sigma * (sum (||A^T||_{2,1} / ||A||_sigma)^(2/3))^(3/2); row norms 3 + 1 and 2 + 1
    r_a = 6.0 * ((4 / 3) ** (2 / 3) + (3 / 2) ** (2 / 3)) ** 1.5
    assert got["log_spectral_complexity"] == pytest.approx(math.log(r_a))


def test_path_norm_of_an_mlp_is_the_sum_over_every_path():
    torch.manual_seed(2)
    net = MLP((1, 2, 2), 3, depth=2, width=3)
    w = [layer.weight.detach().double() for layer in net.layers]
    total = sum(float(w[0][a, i] ** 2 * w[1][b, a] ** 2 * w[2][k, b] ** 2)
                for i, a, b, k in itertools.product(range(4), range(3), range(3), range(3)))
    assert path_l2(net, (1, 2, 2)) == pytest.approx(math.sqrt(total), rel=1e-12)


def test_path_norm_with_batch_norm_multiplies_each_path_by_the_squared_scale():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2)).eval()
    net[1].running_var.copy_(torch.tensor([0.5, 2.0, 1.0, 4.0]))
    net[1].running_mean.copy_(torch.tensor([1.0, -1.0, 0.0, 3.0]))  # shifts are no weights: they do not count
    net[1].weight.data.copy_(torch.tensor([1.0, -2.0, 0.5, 3.0]))
    s = (net[1].weight.detach() / torch.sqrt(net[1].running_var + net[1].eps)).double()
    w1, w2 = net[0].weight.detach().double(), net[3].weight.detach().double()
    total = sum(float(w1[j, i] ** 2 * s[j] ** 2 * w2[k, j] ** 2)
                for i, j, k in itertools.product(range(3), range(4), range(2)))
    assert path_l2(net, (3,)) == pytest.approx(math.sqrt(total), rel=1e-6)


def test_a_network_that_cannot_be_squared_has_no_path_or_spectral_measures_and_says_why():
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.LayerNorm(3), nn.Linear(3, 2))
    x, y = torch.randn(8, 1, 2, 2), torch.randint(0, 2, (8,))
    got = compute_measures(net, net, (1, 2, 2), x, y)
    for key in ("path_l2", "spectral_product", "log_spectral_product", "frobenius_sum", "normalized_margin"):
        assert got[key] is None
        assert "LayerNorm" in got["unavailable"][key]
    assert got["l2_norm"] > 0 and got["margin_min"] is not None


def test_margins_against_logits_by_hand():
    scores = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 1.0, 0.5]])
    labels = torch.tensor([0, 2, 1])
    assert margins(scores, labels).tolist() == [1.0, -2.0, 0.0]
    # sorted -2, 0, 1: the 10th percentile interpolates 0.2 of the way from -2 to 0
    assert margin_summary(margins(scores, labels)) == {"margin_min": -2.0, "margin_p10": pytest.approx(-1.6),
                                                       "margin_median": 0.0}
    assert data_scale(torch.tensor([[3.0, 4.0], [0.0, 0.0]])) == pytest.approx(5 / math.sqrt(2))


def test_margins_of_a_linear_model_by_hand():
    net = nn.Linear(2, 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        net.bias.copy_(torch.tensor([0.5, 0.0]))
    x, y = torch.tensor([[1.0, 1.0], [2.0, 0.0]]), torch.tensor([1, 1])
    got = compute_measures(net, net, (2,), x, y)  # logits (1.5, 2) and (2.5, 0): margins 0.5 and -2.5
    assert (got["margin_min"], got["margin_median"]) == (pytest.approx(-2.5), pytest.approx(-1.0))


def test_l2_norm_and_distance_from_init_by_hand():
    net, init = nn.Linear(2, 1), nn.Linear(2, 1)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[3.0, 4.0]]))
        net.bias.fill_(12.0)
        init.weight.copy_(torch.tensor([[0.0, 4.0]]))
        init.bias.fill_(8.0)
    assert l2_norm(net) == pytest.approx(13.0)
    assert distance_from_init(net, init) == pytest.approx(5.0)
    net.bias.requires_grad_(False)  # a frozen parameter is no trained weight (the Inceptions' fixed BN scale)
    init.bias.requires_grad_(False)
    assert (l2_norm(net), distance_from_init(net, init)) == (pytest.approx(5.0), pytest.approx(3.0))


def test_pac_bayes_sigma_is_the_edge_of_a_drop_of_a_tenth():
    torch.manual_seed(4)
    net = nn.Linear(2, 2)
    x = torch.randn(400, 2)
    with torch.no_grad():
        y = net(x).argmax(1)  # the model is right on every example
    got = pac_bayes_sigma(net, x, y)
    sigma = got["pac_bayes_sigma"]
    assert got["accuracy"] == 1.0 and not got["pac_bayes_sigma_capped"] and 1e-5 < sigma < 10

    def drop(s):
        return 1.0 - perturbed_accuracy(net, lambda m: accuracy(m, x, y), s, draws=2, seed=0)

    assert drop(sigma) <= 0.1 < drop(2 * sigma)
    assert accuracy(net, x, y) == 1.0  # the weights are restored


def test_pac_bayes_sigma_is_the_same_whether_the_directions_are_kept_or_drawn_again(monkeypatch):
    from shattering.measures import flatness

    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    x = torch.randn(300, 6)
    with torch.no_grad():
        y = net(x).argmax(1)
    kept = pac_bayes_sigma(net, x, y)
    monkeypatch.setattr(flatness, "CACHED_DIRECTION_FLOATS", 0)  # a network too big to keep them
    assert pac_bayes_sigma(net, x, y) == kept


def test_every_run_summary_holds_its_measures_and_measure_run_recomputes_them(tmp_path):
    keys = measure_names("default")  # every built-in measure but the expensive ones (curvature and sharpness)
    assert set(measure_names("all")) - set(keys) == set(measure_names("hessian,sharpness"))
    result = run(**TINY, out=str(tmp_path))
    measures = result.summary["measures"]
    assert set(keys) <= set(measures) and measures["unavailable"] == {}
    assert measures["measures_on"] == {"examples": 200, "flatness_examples": 200, "labels": "trained"}
    assert all(measures[k] is not None for k in keys)
    assert result.summary["measures_seconds"] >= 0
    again = measure_run(result.run_dir)
    for key in keys:
        assert again["measures"][key] == pytest.approx(measures[key], rel=1e-6), key
    table = load_runs(tmp_path)
    assert table.loc[0, "measure_l2_norm"] == pytest.approx(measures["l2_norm"])
    assert table.loc[0, "measure_pac_bayes_sigma"] == pytest.approx(measures["pac_bayes_sigma"])


def test_a_packed_member_is_measured_as_its_separate_run(tmp_path):
    configs = [RunConfig(**TINY, out=str(tmp_path / "packed"), seed=s) for s in (0, 1)]
    packed = run_sweep(configs, progress=False)
    separate = run_sweep([c.replace(out=str(tmp_path / "separate")) for c in configs], progress=False, pack=1)
    assert [o.summary.get("packed", {}).get("members") for o in packed] == [2, 2]
    for a, b in zip(packed, separate, strict=True):
        for key in ("l2_norm", "distance_from_init", "path_l2", "margin_p10", "log_spectral_product"):
            assert a.summary["measures"][key] == pytest.approx(b.summary["measures"][key], rel=1e-4), key


def test_a_run_without_checkpoint_cannot_be_measured_and_says_so_in_one_sentence(tmp_path, capsys):
    result = run(**TINY, out=str(tmp_path), keep_checkpoints="none")
    with pytest.raises(RecordError, match=r"has no intact checkpoint \(it was made with keep_checkpoints 'none'\); "
                                          "train the run again with --rerun"):
        measure_run(result.run_dir)
    assert main(["measures", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("shatter measures: The run in") and "has no intact checkpoint" in err and "\n" not in err
    other = run(**TINY, seed=1, out=str(tmp_path))  # a folder of runs: the others are measured
    assert main(["measures", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert other.run_dir.name in captured.out and captured.err.count("\n") == 1
    assert main(["measures", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err.startswith("shatter: error: ")


def test_shatter_measures_writes_the_summary_and_prints_json(tmp_path, capsys):
    result = run(**TINY, out=str(tmp_path))
    summary_path = result.run_dir / "summary.json"
    stored = json.loads(summary_path.read_text())
    del stored["measures"]
    summary_path.write_text(json.dumps(stored))  # a record made before runs measured themselves
    assert main(["measures", str(tmp_path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed[0]["measures"]["l2_norm"] == pytest.approx(result.summary["measures"]["l2_norm"])
    assert json.loads(summary_path.read_text())["measures"]["l2_norm"] == printed[0]["measures"]["l2_norm"]
    assert main(["measures", str(result.run_dir), "--no-write"]) == 0
    assert result.run_dir.name in capsys.readouterr().out


def test_a_checkpoint_of_another_network_is_refused_in_one_sentence(tmp_path):
    result = run(**TINY, out=str(tmp_path))
    config_path = result.run_dir / "config.json"
    written = json.loads(config_path.read_text())
    written["config"]["model"] = "mlp-3x512"  # edited by hand: the checkpoint holds a 1x512 network
    config_path.write_text(json.dumps(written))
    with pytest.raises(RecordError, match=r"does not hold the network its config.json builds \(RuntimeError\)"):
        measure_run(result.run_dir)
