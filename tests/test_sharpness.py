"""Tests for `shattering/measures/sharpness.py`: Keskar et al.'s sharpness and the adaptive worst-case sharpness
against closed forms (a separable quadratic, whose maximum over a box is at the corner away from the origin), the
network's loss against a direct evaluation with the perturbed weights set, batch norm in eval mode with nothing
of the network changed, and the measures selected by their group word."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

import shattering
from shattering.errors import ConfigError
from shattering.measures import register_measure, selected, unregister_measure
from shattering.measures.sharpness import (
    EPSILONS,
    adaptive_sharpness,
    keskar_phi,
    keskar_sharpness,
    loss_function,
    pseudo_inverse_times,
    random_subspace,
    sharpness_measures,
)

SHARPNESS_MEASURES = ("keskar_sharpness", "keskar_sharpness_5e4", "keskar_sharpness_subspace",
                      "keskar_sharpness_subspace_5e4", "adaptive_sharpness")


def quadratic(h: np.ndarray, c: float):
    """f(theta) = 0.5 sum_i h_i theta_i^2 + c with h > 0: over a box centred anywhere, the maximum is at the corner
    farthest from the origin, coordinate by coordinate."""
    return lambda theta: (float(0.5 * h @ theta ** 2 + c), h * theta)


def corner_maximum(h: np.ndarray, x: np.ndarray, half_width: np.ndarray, c: float) -> float:
    return float(0.5 * h @ (np.abs(x) + half_width) ** 2 + c)


@pytest.mark.parametrize("eps", EPSILONS)
def test_full_space_sharpness_of_a_quadratic_is_its_closed_form(eps):
    rng = np.random.default_rng(0)
    h, x, c = rng.uniform(0.5, 3.0, 40), rng.standard_normal(40), 0.3
    f = quadratic(h, c)
    got = keskar_sharpness(f, x, eps)
    f0 = f(x)[0]
    expected = keskar_phi(f0, corner_maximum(h, x, eps * (np.abs(x) + 1), c))
    assert got["f0"] == pytest.approx(f0) and got["phi"] == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(100 * (corner_maximum(h, x, eps * (np.abs(x) + 1), c) - f0) / (1 + f0))
    assert got["iterations"] <= 10


def test_subspace_sharpness_of_a_quadratic_is_its_closed_form():
    rng = np.random.default_rng(1)
    n, p, eps, c = 30, 6, 1e-3, 0.1
    h, x = rng.uniform(0.5, 3.0, n), rng.standard_normal(n)
    basis = np.eye(n)[:, :p]  # A: the first p coordinates, A^+ x = x[:p]
    got = keskar_sharpness(quadratic(h, c), x, eps, basis)
    width = np.zeros(n)
    width[:p] = eps * (np.abs(x[:p]) + 1)
    f0 = quadratic(h, c)(x)[0]
    assert got["phi"] == pytest.approx(keskar_phi(f0, corner_maximum(h, x, width, c)), rel=1e-6)


def test_adaptive_sharpness_of_a_quadratic_is_its_closed_form():
    rng = np.random.default_rng(2)
    h, x, rho = rng.uniform(0.5, 3.0, 25), rng.standard_normal(25), 1e-3
    got = adaptive_sharpness(quadratic(h, 0.0), x, rho)
    assert got["sharpness"] == pytest.approx(corner_maximum(h, x, rho * np.abs(x), 0.0) - 0.5 * h @ x ** 2, rel=1e-6)


def test_the_random_subspace_has_unit_columns_and_its_pseudo_inverse_is_numpys():
    a = random_subspace(300, 7)
    assert a.shape == (300, 7) and np.allclose(np.linalg.norm(a, axis=0), 1, atol=1e-5)
    assert np.array_equal(a, random_subspace(300, 7))  # seeded
    x = np.random.default_rng(3).standard_normal(300)
    assert np.allclose(pseudo_inverse_times(a, x), np.linalg.pinv(a.astype(np.float64)) @ x, atol=1e-5)


def _bn_net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 10), nn.BatchNorm1d(10), nn.ReLU(), nn.Linear(10, 3))
    net.train()
    net(torch.randn(64, 6) * 3 + 1)  # running statistics unlike the measured batch's own
    return net


def test_the_loss_is_the_networks_in_eval_mode_and_the_network_is_left_as_it_was():
    net = _bn_net()
    before = copy.deepcopy(net.state_dict())
    x, y = torch.randn(50, 6, generator=torch.Generator().manual_seed(4)), torch.arange(50) % 3
    out = sharpness_measures(net, x, y, batch_size=16)
    with torch.no_grad():
        net.eval()
        eval_loss = float(nn.functional.cross_entropy(net(x), y))
        net.train()
        train_loss = float(nn.functional.cross_entropy(net(x), y))  # what batch statistics would have given
    assert out["facts"]["f0"] == pytest.approx(eval_loss, rel=1e-5)
    assert abs(train_loss - eval_loss) > 1e-3
    net.load_state_dict(before)  # (the train-mode pass above moved the running statistics: put them back)
    for key, value in before.items():
        assert torch.equal(net.state_dict()[key], value), key
    for eps in EPSILONS:
        assert out["full"][eps] > 0 and out["subspace"][eps] >= 0
    assert out["full"][1e-3] > out["full"][5e-4]  # a larger box: a larger rise
    assert out["adaptive"] >= 0 and out["facts"]["maxiter"] == 10


def test_the_maximum_found_is_the_loss_of_the_network_with_those_weights_set():
    net = _bn_net()
    x, y = torch.randn(40, 6, generator=torch.Generator().manual_seed(5)), torch.arange(40) % 3
    f, theta = loss_function(net, x, y, batch_size=16)
    from shattering.measures.sharpness import box_maximum

    out = box_maximum(f, theta, 1e-2 * (np.abs(theta) + 1))
    assert np.all(np.abs(out["y"]) <= 1e-2 * (np.abs(theta) + 1) + 1e-12)  # inside the box
    moved = copy.deepcopy(net).eval()
    torch.nn.utils.vector_to_parameters(torch.tensor(theta + out["y"], dtype=torch.float32), moved.parameters())
    with torch.no_grad():
        direct = float(nn.functional.cross_entropy(moved(x), y))
    assert out["fmax"] == pytest.approx(direct, rel=1e-5) and out["fmax"] > out["f0"]
    value, grad = f(theta)  # and the gradient is autograd's of the same loss
    net.eval()
    net.zero_grad()
    nn.functional.cross_entropy(net(x), y).backward()
    assert np.allclose(grad, torch.nn.utils.parameters_to_vector(p.grad for p in net.parameters()).numpy(), atol=1e-6)


def test_the_sharpness_group_selects_its_measures_and_groups_are_checked():
    assert tuple(m.name for m in selected("sharpness")) == SHARPNESS_MEASURES
    assert {m.name for m in selected("hessian")} == {"hessian_lambda_max", "hessian_trace"}
    assert not {m.name for m in selected("default")} & set(SHARPNESS_MEASURES)  # expensive: opt-in
    with pytest.raises(ConfigError, match=r"group.*hessian, sharpness"):
        selected("sharpnes")
    with pytest.raises(ConfigError, match="group"):
        register_measure("x_y", lambda m: 1.0, title="t", formula="f", paper="p", group="all")
    with pytest.raises(ConfigError, match="names a group"):
        register_measure("sharpness", lambda m: 1.0, title="t", formula="f", paper="p")
    register_measure("my_sharpness", lambda m: 1.0, title="t", formula="f", paper="p", group="sharpness")
    try:
        assert "my_sharpness" in {m.name for m in selected("sharpness")}
    finally:
        unregister_measure("my_sharpness")


def test_a_run_records_its_sharpness_with_what_it_rests_on(tmp_path):
    run = shattering.run(dataset="digits", corruption="true-labels", train_size=150, test_size=50, epochs=2,
                         until="epochs", precision="fp32", device="cpu", out=str(tmp_path), measures="sharpness")
    m = run.summary["measures"]
    assert set(SHARPNESS_MEASURES) <= set(m) and all(m[k] is not None and m[k] >= 0 for k in SHARPNESS_MEASURES)
    facts = m["sharpness"]
    assert facts["examples"] == 150 and facts["subspace_dim"] == 100 and len(facts["maximizations"]) == 5
    assert all(r["evaluations"] >= 1 for r in facts["maximizations"].values())
    table = shattering.load_runs(tmp_path)
    assert table["measure_keskar_sharpness"].iloc[0] == pytest.approx(m["keskar_sharpness"])


def test_shatter_measures_adds_the_sharpness_group_to_a_finished_run(tmp_path, capsys):
    from shattering.cli import main

    run = shattering.run(dataset="digits", train_size=100, test_size=50, epochs=1, until="epochs", precision="fp32",
                         device="cpu", out=str(tmp_path), measures="cheap")
    assert "keskar_sharpness" not in run.summary["measures"]
    assert main(["measures", str(run.run_dir), "--measures", "sharpness"]) == 0
    table = capsys.readouterr().out
    assert "sharp sub 5e-4" in table and "adaptive sharp" in table  # the group's columns, not only the default's
    measured = shattering.load_runs(tmp_path).iloc[0]
    assert measured["measure_keskar_sharpness_subspace_5e4"] >= 0 and measured["measure_l2_norm"] > 0
