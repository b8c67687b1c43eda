"""Tests for `shattering/measures/curvature.py`: the Hessian's top eigenvalue and trace against the dense Hessian
(torch.autograd.functional.hessian, numpy.linalg.eigvalsh), batch norm in eval mode, and the two as declared,
opt-in measures of a run. They need curvlinops (shattering[curvature]), which needs torchvision: CI runs them in
its torchvision environment (SHATTERING_REQUIRE_CURVLINOPS=1: there they fail instead of skipping); where it is
missing, the measures say how to install it (the last test, which runs everywhere)."""

from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

import shattering
from shattering.measures.curvature import TRACE_MATVECS, hessian_measures

HAVE_CURVLINOPS = importlib.util.find_spec("curvlinops") is not None
needs_curvlinops = [pytest.mark.curvature, pytest.mark.skipif(
    not HAVE_CURVLINOPS and os.environ.get("SHATTERING_REQUIRE_CURVLINOPS") != "1",
    reason="curvlinops is not installed here (pip install 'shattering[curvature]' beside a matching torchvision)")]
FAST = {"dataset": "digits", "corruption": "random-labels", "train_size": 200, "test_size": 100, "epochs": 2,
        "until": "epochs", "precision": "fp32", "device": "cpu"}


def dense_hessian(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """The Hessian of the mean cross-entropy over every parameter, formed entry by entry by autograd (eval mode)."""
    net.eval()
    names, params = zip(*net.named_parameters(), strict=True)
    flat = torch.cat([p.detach().flatten() for p in params]).double()
    buffers = {k: v.double() for k, v in net.named_buffers()}

    def loss(theta):
        pieces, i = {}, 0
        for name, p in zip(names, params, strict=True):
            pieces[name] = theta[i:i + p.numel()].view_as(p)
            i += p.numel()
        return nn.functional.cross_entropy(functional_call(net.double(), {**pieces, **buffers}, (x.double(),)), y)

    hessian = torch.autograd.functional.hessian(loss, flat).numpy()
    net.float()
    return hessian


def _net(width: int, batch_norm: bool = False) -> nn.Module:
    torch.manual_seed(0)
    layers = [nn.Linear(6, width)] + ([nn.BatchNorm1d(width)] if batch_norm else []) + [nn.Tanh(), nn.Linear(width, 3)]
    return nn.Sequential(*layers)


@needs_curvlinops[0]
@needs_curvlinops[1]
@pytest.mark.parametrize("width", [4, 24])  # 43 parameters (exact trace) and 243 (Hutch++)
def test_top_eigenvalue_and_trace_against_the_dense_hessian(width):
    net = _net(width)
    x, y = torch.randn(48, 6, generator=torch.Generator().manual_seed(1)), torch.arange(48) % 3
    got = hessian_measures(net, x, y, batch_size=16)
    hessian = dense_hessian(net, x, y)
    eigenvalues = np.linalg.eigvalsh(hessian)
    assert got["lambda_max"] == pytest.approx(eigenvalues[-1], rel=2e-3)
    n = hessian.shape[0]
    if n <= TRACE_MATVECS:
        assert got["facts"]["trace_method"] == "exact" and got["trace"] == pytest.approx(np.trace(hessian), rel=1e-4)
    else:  # Hutch++ with 60 of 243 products: an estimate, seeded (the same value every time)
        assert got["facts"]["trace_method"] == "Hutch++"
        assert got["trace"] == pytest.approx(np.trace(hessian), rel=0.15)
        assert hessian_measures(net, x, y, batch_size=16)["trace"] == got["trace"]
    assert got["facts"]["examples"] == 48 and got["facts"]["lambda_max_matvecs"] > 0


@needs_curvlinops[0]
@needs_curvlinops[1]
def test_batch_norm_is_measured_in_eval_mode_with_its_running_statistics():
    net = _net(8, batch_norm=True)
    net.train()
    x, y = torch.randn(64, 6, generator=torch.Generator().manual_seed(2)), torch.arange(64) % 3
    net(x * 3 + 1)  # running statistics that differ from the measured batch's own
    got = hessian_measures(net, x, y, batch_size=32)
    eval_mode = np.linalg.eigvalsh(dense_hessian(net, x, y))[-1]
    assert got["lambda_max"] == pytest.approx(eval_mode, rel=2e-3)
    net.train()  # what the batch's own statistics would give: another Hessian
    names, params = zip(*net.named_parameters(), strict=True)
    flat = torch.cat([p.detach().flatten() for p in params])

    def train_loss(theta):
        pieces, i = {}, 0
        for name, p in zip(names, params, strict=True):
            pieces[name] = theta[i:i + p.numel()].view_as(p)
            i += p.numel()
        return nn.functional.cross_entropy(functional_call(net, pieces, (x,)), y)

    train_top = np.linalg.eigvalsh(torch.autograd.functional.hessian(train_loss, flat).double().numpy())[-1]
    assert abs(train_top - eval_mode) > 1e-3 * abs(eval_mode)


@needs_curvlinops[0]
@needs_curvlinops[1]
def test_the_curvature_measures_are_opt_in_and_recorded_with_what_they_rest_on(tmp_path):
    fast = {**FAST, "out": str(tmp_path)}
    plain = shattering.run(**fast).summary["measures"]
    assert "hessian_lambda_max" not in plain and "hessian" not in plain  # expensive: not in the default set
    measured = shattering.measure_run(shattering.run(**fast).run_dir, measures="hessian_lambda_max,hessian_trace")
    m = measured["measures"]
    assert m["hessian_lambda_max"] > 0 and m["hessian_trace"] > 0 and m["hessian"]["examples"] == 200
    assert m["hessian"]["trace_method"] == "Hutch++" and m["l2_norm"] == plain["l2_norm"]  # merged, not replaced
    table = shattering.load_runs(tmp_path)
    assert table["measure_hessian_lambda_max"].iloc[0] == m["hessian_lambda_max"]


def test_without_curvlinops_the_curvature_measures_say_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "curvlinops", None)  # as where it is not installed
    run = shattering.run(**FAST, out=str(tmp_path))
    measured = shattering.measure_run(run.run_dir, measures="hessian_lambda_max")["measures"]
    assert measured["hessian_lambda_max"] is None
    assert "pip install 'shattering[curvature]'" in measured["unavailable"]["hessian_lambda_max"]


@needs_curvlinops[0]
@needs_curvlinops[1]
def test_the_top_eigenvalues_and_the_density_quadrature_against_the_dense_hessian():
    from shattering.measures.curvature import SLQ_STEPS, hessian_operator, lanczos_quadrature, start_vectors

    net = _net(5)  # 53 parameters: Lanczos reaches the whole space within SLQ_STEPS + a few
    x, y = torch.randn(40, 6, generator=torch.Generator().manual_seed(3)), torch.arange(40) % 3
    got = hessian_measures(net, x, y, batch_size=16)
    hessian = dense_hessian(net, x, y)
    eigenvalues = np.linalg.eigvalsh(hessian)
    assert got["top_eigenvalues"] == pytest.approx(eigenvalues[::-1][:3], rel=2e-3)
    density = got["facts"]["density"]
    (nodes,), (weights,) = density["nodes"], density["weights"]
    assert density["steps"] == SLQ_STEPS and sum(weights) == pytest.approx(1, abs=1e-9)
    (v,) = start_vectors(hessian.shape[0], 1)  # the measure's own start vector: its moments are exact
    for power in (1, 2, 3):
        direct = v @ np.linalg.matrix_power(hessian, power) @ v
        assert sum(w * t ** power for t, w in zip(nodes, weights, strict=True)) == pytest.approx(direct, rel=1e-3)
    assert eigenvalues[0] - 1e-3 <= min(nodes) and max(nodes) <= eigenvalues[-1] + 1e-3
    # With as many steps as parameters the quadrature is the spectrum itself: every node an eigenvalue.
    scipy_op = hessian_operator(net, x, y, 16).to_scipy()
    full_nodes, full_weights = lanczos_quadrature(lambda u: scipy_op @ u, v, hessian.shape[0])
    assert np.abs(full_nodes[:, None] - eigenvalues[None, :]).min(axis=1).max() < 1e-3 * abs(eigenvalues).max()


def test_the_smoothed_density_has_mass_one_and_the_moments_of_its_nodes():
    from shattering.measures.curvature import spectral_density

    nodes, weights = [np.array([-0.5, 1.0, 4.0]), np.array([0.0, 2.0])], [np.array([0.2, 0.5, 0.3]),
                                                                          np.array([0.6, 0.4])]
    grid = np.linspace(-3, 7, 20001)
    phi = spectral_density(nodes, weights, grid)
    assert np.trapezoid(phi, grid) == pytest.approx(1, abs=1e-6)
    mean = (0.2 * -0.5 + 0.5 * 1.0 + 0.3 * 4.0 + 0.6 * 0.0 + 0.4 * 2.0) / 2
    assert np.trapezoid(grid * phi, grid) == pytest.approx(mean, abs=1e-6)
