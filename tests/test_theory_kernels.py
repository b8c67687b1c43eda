"""Tests for `shattering/theory/kernels.py`, `features.py` and `table3.py`: exact kernel interpolation (Eq. 3,
Table 3 of Zhang et al., ICLR 2017)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist, pdist

from shattering.errors import ConfigError
from shattering.theory import features as feat
from shattering.theory import table3
from shattering.theory.kernels import (
    KernelFactorizationError,
    KernelSolver,
    blocked_cholesky_,
    fit_label_sets,
    kernel_experiment,
    kernel_matrix,
    median_bandwidth,
    solve_lower_,
    solve_lower_transpose_,
    symmetric_product_from_upper,
)
from shattering.theory.sample import load_sample

from .conftest import needs_fashion

RNG = np.random.default_rng(0)
SMALL = RNG.standard_normal((97, 6))


@pytest.fixture(scope="module")
def digits():
    sample = load_sample("digits", 600)
    return sample, sample.flat("train"), sample.flat("test")


def spd(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=g, dtype=torch.float64)
    return a @ a.T + n * torch.eye(n, dtype=torch.float64)


# -- the blocked, in-place Cholesky ------------------------------------------------------------------


@pytest.mark.parametrize("n, block", [(1, 4), (50, 7), (64, 16), (130, 64), (130, 1000)])
def test_blocked_cholesky_equals_torch(n, block):
    a = spd(n)
    ref = torch.linalg.cholesky(a)
    out = a.clone()
    result = blocked_cholesky_(out, block)
    assert result.data_ptr() == out.data_ptr()  # in place
    assert torch.allclose(torch.tril(out), ref, atol=1e-10, rtol=1e-10)
    assert torch.equal(torch.triu(out, 1), torch.triu(a, 1))  # the strict upper triangle still holds the input


def test_blocked_triangular_solves_and_product():
    a = spd(75, seed=1)
    factor = blocked_cholesky_(a.clone(), 16)
    b = torch.randn(75, 3, dtype=torch.float64)
    x = solve_lower_transpose_(factor, solve_lower_(factor, b.clone(), 16), 16)
    assert torch.allclose(a @ x, b, atol=1e-10)
    v = torch.randn(75, 2, dtype=torch.float64)
    assert torch.allclose(symmetric_product_from_upper(factor, a.diagonal().clone(), v, 16), a @ v, atol=1e-10)


def test_not_positive_definite_is_reported():
    x = np.vstack([SMALL, SMALL[:1]])  # a duplicate point: K is singular
    with pytest.raises(KernelFactorizationError, match="not numerically positive definite"):
        KernelSolver(x, "gaussian", 50.0, block_size=16)


# -- kernels -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["gaussian", "laplacian"])
def test_kernel_matrix_matches_scipy(kernel):
    sigma = 2.5
    d = cdist(SMALL, SMALL)
    expected = np.exp(-d ** 2 / (2 * sigma ** 2)) if kernel == "gaussian" else np.exp(-d / sigma)
    k = kernel_matrix(SMALL, kernel, sigma, block_size=20).numpy()
    assert np.allclose(k, expected, atol=1e-12)
    assert np.array_equal(k, k.T) and (np.diag(k) == 1).all()


def test_median_bandwidth_is_the_median_distance():
    assert median_bandwidth(SMALL) == pytest.approx(np.median(pdist(SMALL)))


def test_ridge_solution_matches_kernel_ridge():
    from sklearn.kernel_ridge import KernelRidge

    sigma, ridge = 3.0, 0.5
    y = RNG.standard_normal((len(SMALL), 2))
    solver = KernelSolver(SMALL, "gaussian", sigma, ridge=ridge, block_size=16)
    alpha, _ = solver.solve(torch.from_numpy(y))
    ref = KernelRidge(alpha=ridge, kernel="rbf", gamma=1 / (2 * sigma ** 2)).fit(SMALL, y)
    assert np.allclose(alpha.numpy(), ref.dual_coef_, atol=1e-8)


# -- interpolation of true and random labels ------------------------------------------------------------


def test_interpolates_true_and_random_labels(digits):
    sample, x, x_test = digits
    solver = KernelSolver(x, "gaussian")
    labels = {"true": sample.labels("true"), "random": sample.labels("random", seed=1)}
    true, rand = fit_label_sets(solver, labels, 10, true_labels=sample.data.y_train, x_test=x_test,
                                y_test=sample.data.y_test)
    for r in (true, rand):
        assert r.train_error == 0.0 and r.interpolates and r.max_residual < 1e-6
    assert rand.label_noise > 0.8
    assert rand.norm > 1.5 * true.norm  # random labels need a larger norm
    assert true.test_error < 0.1 < 0.7 < rand.test_error  # and do not generalize


def test_small_blocks_give_the_same_solution(digits):
    sample, x, _ = digits
    y = torch.from_numpy(np.eye(10)[sample.labels("random", seed=2)])
    alpha_one, _ = KernelSolver(x, "laplacian").solve(y)
    alpha_blocked, _ = KernelSolver(x, "laplacian", block_size=64).solve(y)
    assert torch.allclose(alpha_one, alpha_blocked, atol=1e-8)


def test_float32_factorization_is_refined_to_interpolation(digits):
    sample, x, _ = digits
    solver = KernelSolver(x, "laplacian", dtype="float32", block_size=128)
    (r,) = fit_label_sets(solver, {"random": sample.labels("random")}, 10, true_labels=sample.data.y_train)
    assert r.interpolates and r.refinement_steps >= 1


def test_ridge_changes_the_solution(digits):
    sample, x, _ = digits
    y = torch.from_numpy(np.eye(10)[sample.data.y_train])
    exact, _ = KernelSolver(x).solve(y)
    ridge_solver = KernelSolver(x, ridge=1.0)
    ridged, info = ridge_solver.solve(y)
    assert not torch.allclose(exact, ridged, atol=1e-3)
    assert ridged.norm() < exact.norm()
    assert info["system_residual"] < 1e-8  # (K + ridge I) alpha = y is solved exactly ...
    assert float((ridge_solver.fitted(ridged) - y).abs().max()) > 1e-2  # ... so K alpha no longer equals y


def test_kernel_experiment_three_label_sets_one_factorization():
    r = kernel_experiment("digits", labels="true,partial,random", p=0.5, n_train=400, n_test=200, block_size=128)
    assert [x["labels"] for x in r["results"]] == ["true", "partial", "random"]
    assert all(x["interpolates"] and x["train_error"] == 0 for x in r["results"])
    noise = [x["label_noise"] for x in r["results"]]
    assert noise[0] == 0 < noise[1] < noise[2]
    assert r["bandwidth_rule"] == "median heuristic"


@pytest.mark.parametrize("kwargs, match", [
    ({"kernel": "polynomial"}, "kernel"), ({"n_train": 0}, "n_train"), ({"p": 1.5}, "p must be"),
    ({"labels": "true,bogus"}, "labels"), ({"labels": "partial"}, "needs a corruption probability"),
    ({"ridge": -1.0}, "ridge"), ({"dtype": "float16"}, "dtype"), ({"bandwidth": 0.0}, "bandwidth"),
    ({"features": "sift"}, "features"),
])
def test_bad_options(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        kernel_experiment("digits", **({"n_train": 50, "n_test": 20} | kwargs))


@needs_fashion
def test_fashion_mnist_random_labels_interpolated():
    r = kernel_experiment("fashion-mnist", n_train=800, n_test=500)
    true, rand = r["results"]
    assert true["interpolates"] and rand["interpolates"]
    assert rand["norm"] > true["norm"] and true["test_error"] < 0.35 < 0.8 < rand["test_error"]


# -- features --------------------------------------------------------------------------------------------


def test_wavelet_filters_are_wavelets():
    psi, phi = feat.filter_bank(32, 32, 2, 8)
    assert psi.shape == (16, 32, 32)
    assert psi[:, 0, 0].abs().max() < 1e-10  # zero mean: psi_hat(0) = 0
    assert float(phi[0, 0]) == pytest.approx(1.0)  # the low-pass sums to one


@pytest.mark.parametrize("shape, J, order, channels", [
    ((1, 28, 28), 2, 1, 1 + 2 * 8), ((1, 28, 28), 2, 2, 1 + 2 * 8 + 64), ((3, 32, 32), 3, 2, 1 + 24 + 64 * 3),
    ((1, 8, 8), 2, 2, 81),
])
def test_wavelet_transform_shapes(shape, J, order, channels):
    x = RNG.random((3, *shape)).astype(np.float32)
    out = feat.wavelet_transform(x, J=J, order=order)
    c, h, w = shape
    assert out.shape == (3, c * channels * (h // 2 ** J) * (w // 2 ** J))
    assert np.isfinite(out).all()


def test_wavelet_transform_rejects_large_J():
    with pytest.raises(ConfigError, match="smaller J"):
        feat.wavelet_transform(np.zeros((1, 1, 8, 8)), J=3)


def test_random_conv_features_and_standardization():
    x = RNG.random((5, 3, 12, 12)).astype(np.float32)
    f = feat.random_conv_features(x, filters=7, kernel_size=3, pool=2, seed=1)
    assert f.shape == (5, 7 * 4) and (f >= 0).all()
    assert np.array_equal(f, feat.random_conv_features(x, filters=7, kernel_size=3, pool=2, seed=1))
    tr, te, info = feat.compute_features("random-conv", x, x[:2], filters=7, kernel_size=3)
    assert info["standardized"] and info["dimension"] == 28
    assert np.allclose(tr.mean(0), 0, atol=1e-9)
    raw_tr, _, raw_info = feat.compute_features("raw", x, x[:2])
    assert raw_tr.shape == (5, 432) and not raw_info["standardized"]


# -- Table 3 -----------------------------------------------------------------------------------------------


def test_paper_table3_numbers():
    paper = {r["row"]: r for r in table3.PAPER_TABLE3}
    assert paper["mnist-raw"]["paper_test_error"] == 0.012 and paper["mnist-raw"]["paper_norm"] == 220
    assert paper["mnist-gabor"]["paper_test_error"] == 0.006 and paper["mnist-gabor"]["paper_norm"] == 390
    assert paper["cifar10-raw"]["paper_test_error"] == 0.46
    assert paper["cifar10-random-conv"]["paper_test_error"] == 0.17
    assert paper["cifar10-random-conv-l2"]["paper_test_error"] == 0.15


def test_dataset_substitution_is_noted(monkeypatch):
    monkeypatch.setattr(table3, "dataset_available", lambda name: name == "digits")
    name, note = table3.resolve_dataset("MNIST")
    assert name == "digits" and "not comparable" in note
    assert table3.resolve_dataset("CIFAR-10", "cifar10") == ("cifar10", "")


def test_compute_and_render_table3_smoke(tmp_path):
    rows = table3.compute_table3("smoke", dataset="digits", out_dir=tmp_path,
                                 rows=["mnist-raw", "mnist-gabor", "cifar10-random-conv-l2"])
    assert [r["row"] for r in rows] == ["mnist-raw", "mnist-gabor", "cifar10-random-conv-l2"]
    raw, gabor, conv_l2 = rows
    assert raw["interpolates"] and raw["train_error"] == 0 and raw["random_train_error"] == 0
    assert raw["random_norm"] > raw["norm"] and raw["test_error"] < raw["random_test_error"]
    assert conv_l2["ridge"] == table3.TABLE_RIDGE and "not comparable" in conv_l2["note"]
    paths = table3.render_table3(rows, tmp_path)
    assert {p.name for p in paths} == {"table3.md", "table3.csv"}
    md = (tmp_path / "table3.md").read_text()
    assert "1.2%" in md and "0.6%" in md and "15.0%" in md and "not comparable" in md
    with (tmp_path / "table3.csv").open() as fh:
        assert [r["row"] for r in csv.DictReader(fh)] == [r["row"] for r in rows]
    assert (tmp_path / "table3.json").is_file()


def test_table3_bad_scale():
    with pytest.raises(ConfigError, match="scale"):
        table3.compute_table3("huge")
