"""Tests for the kernel modules of `shattering/theory/` (kernel functions, evaluator, linear algebra, fixed-point
storage, memory, solver), `theory/features.py`, `experiments/kernel_interpolation.py`, `experiments/table3.py`
and `report/table3.py`: exact kernel interpolation (Eq. 3, Table 3 of Zhang et al., ICLR 2017)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist, pdist

from shattering.errors import ConfigError, ShatteringError
from shattering.experiments import kernel_interpolation, table3
from shattering.experiments.kernel_interpolation import kernel_experiment
from shattering.experiments.presets import PRESETS
from shattering.experiments.sample import load_sample
from shattering.report.table3 import render_table3
from shattering.theory import features as feat
from shattering.theory import kernel_functions, kernel_solver, memory
from shattering.theory.fixed_point import FixedPointUpper
from shattering.theory.kernel_evaluator import (
    PRODUCTS,
    KernelEvaluator,
    codes_as,
    codes_product,
    kernel_matrix,
    pixel_product,
)
from shattering.theory.kernel_functions import default_bandwidth, median_bandwidth
from shattering.theory.kernel_solver import KernelSolver, fit_label_sets
from shattering.theory.linear_algebra import (
    KernelFactorizationError,
    blocked_cholesky_,
    solve_lower_,
    solve_lower_transpose_,
    symmetric_product_from_upper,
)
from shattering.theory.memory import KernelMemoryError

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


@pytest.mark.parametrize("n, block, panel", [(50, 7, 3), (130, 32, 40), (257, 64, 1000)])
def test_blocked_cholesky_float32_in_place(n, block, panel):
    a = spd(n, seed=3).to(torch.float32)
    ref = torch.linalg.cholesky(a)
    out = a.clone()
    ptr = out.data_ptr()
    blocked_cholesky_(out, block, panel_rows=panel)
    assert out.data_ptr() == ptr and out.dtype == torch.float32
    assert torch.allclose(torch.tril(out), ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))
    assert torch.equal(torch.triu(out, 1), torch.triu(a, 1))


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


def pixels(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Random 8-bit 'images' scaled to [0, 1], as float32 like the data sets store them."""
    return (np.random.default_rng(seed).integers(0, 256, (n, d)) / 255).astype(np.float32)


@pytest.mark.parametrize("product", PRODUCTS)
@pytest.mark.parametrize("kernel", ["gaussian", "laplacian"])
def test_exact_pixel_arithmetic_matches_float64(kernel, product):
    x, z = pixels(70, 30), pixels(23, 30, seed=1)
    exact = np.rint(x.astype(np.float64) * 255) / 255  # the values the pixel-code path stands for
    sigma = 1.3
    ev = KernelEvaluator(x, kernel, sigma, product=product)
    assert ev.mode == "pixel codes" and ev.code_product == product
    d = cdist(exact, exact)
    expected = np.exp(-d ** 2 / (2 * sigma ** 2)) if kernel == "gaussian" else np.exp(-d / sigma)
    k = ev.fill(torch.empty(70, 70, dtype=torch.float64), tile=16).numpy()
    assert np.allclose(k, expected, rtol=1e-13, atol=0) and np.array_equal(k, k.T) and (np.diag(k) == 1).all()
    v = torch.randn(70, 3, dtype=torch.float64)
    assert torch.allclose(ev.product(v, tile=16), torch.from_numpy(expected) @ v, rtol=1e-12, atol=1e-12)
    cross = np.rint(z.astype(np.float64) * 255) / 255
    dz = cdist(cross, exact)
    kz = np.exp(-dz ** 2 / (2 * sigma ** 2)) if kernel == "gaussian" else np.exp(-dz / sigma)
    assert torch.allclose(ev.cross_product(z, v, tile=16), torch.from_numpy(kz) @ v, rtol=1e-12, atol=1e-12)
    off_grid = z + 1e-3  # test points off the pixel grid: float64 arithmetic against the exact training values
    df = cdist(off_grid.astype(np.float64), exact)
    kf = np.exp(-df ** 2 / (2 * sigma ** 2)) if kernel == "gaussian" else np.exp(-df / sigma)
    assert torch.allclose(ev.cross_product(off_grid, v, tile=16), torch.from_numpy(kf) @ v, rtol=1e-9, atol=1e-9)


def test_float_path_and_narrow_bandwidth():
    x = SMALL * 20  # squared norms / sigma^2 far beyond exp's range: squared distances instead of the factored form
    ev = KernelEvaluator(x, "gaussian", 0.5)
    assert ev.mode == "float64" and ev.points.scale is None
    expected = np.exp(-cdist(x, x) ** 2 / 0.5)
    assert np.allclose(ev.fill(torch.empty(97, 97, dtype=torch.float64), tile=10).numpy(), expected, atol=1e-12)


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
    labels = {"true-labels": sample.labels("true-labels"), "random-labels": sample.labels("random-labels", seed=1)}
    true, rand = fit_label_sets(solver, labels, 10, true_labels=sample.data.y_train, x_test=x_test,
                                y_test=sample.data.y_test)
    for r in (true, rand):
        assert r.train_error == 0.0 and r.interpolates and r.max_residual < 1e-6
    assert rand.label_noise > 0.8
    assert rand.norm > 1.5 * true.norm  # random labels need a larger norm
    assert true.test_error < 0.1 < 0.7 < rand.test_error  # and do not generalize


def test_small_blocks_give_the_same_solution(digits):
    sample, x, _ = digits
    y = torch.from_numpy(np.eye(10)[sample.labels("random-labels", seed=2)])
    alpha_one, _ = KernelSolver(x, "laplacian").solve(y)
    alpha_blocked, _ = KernelSolver(x, "laplacian", block_size=64).solve(y)
    assert torch.allclose(alpha_one, alpha_blocked, atol=1e-8)


def test_float32_factorization_is_refined_to_interpolation(digits):
    sample, x, _ = digits
    solver = KernelSolver(x, "laplacian", dtype="float32", block_size=128)
    (r,) = fit_label_sets(solver, {"random-labels": sample.labels("random-labels")}, 10,
                          true_labels=sample.data.y_train)
    assert r.interpolates and r.refinement_steps >= 1


def ill_conditioned(n: int = 300, stored: bool = False):
    x = pixels(n, 6, seed=4)  # few dimensions and a wide bandwidth: K is close to singular
    return x, KernelSolver(x, "gaussian", 0.8, dtype="float32", block_size=32, tile=64, stored_products=stored)


def test_refinement_reaches_float64_accuracy_from_a_float32_factor():
    x, solver = ill_conditioned()
    k = kernel_matrix(x, "gaussian", 0.8)
    assert torch.linalg.cond(k) > 1e6
    y = torch.from_numpy(np.eye(3)[np.arange(len(x)) % 3])
    raw, raw_info = solver.solve(y, max_steps=0)  # the float32 factor alone
    alpha, info = solver.solve(y, tol=1e-9)
    assert raw_info["system_residual"] > 1e-3 and not raw_info["converged"]
    assert info["converged"] and info["system_residual"] <= 1e-9 and info["refinement_steps"] < 20
    assert float((k @ alpha - y).abs().max()) <= 1e-8  # against the float64 kernel, independently
    assert info["history"][0]["max_residual"] == pytest.approx(raw_info["system_residual"])
    assert info["history"][-1]["residual"] == "explicit" and info["products"] == info["refinement_steps"] + 2
    assert torch.allclose(info["system_product"], k @ alpha, atol=1e-8)


def test_stored_48_bit_kernel_refines_like_float64_products():
    x, exact_solver = ill_conditioned()
    _, solver = ill_conditioned(stored=True)
    assert exact_solver.upper is None and solver.upper is not None
    k = kernel_matrix(x, "gaussian", 0.8)
    v = torch.randn(len(x), 4, dtype=torch.float64)
    off_diagonal = (k - torch.eye(len(x), dtype=torch.float64)) @ v
    assert torch.allclose(solver.upper.product(v), off_diagonal, rtol=0, atol=1e-12)  # 2^-47 per entry
    y = torch.from_numpy(np.eye(3)[np.arange(len(x)) % 3])
    alpha, info = solver.solve(y, tol=1e-7, final_check="kernel")
    ref, _ = exact_solver.solve(y, tol=1e-7)
    assert info["converged"] and float((k @ alpha - y).abs().max()) <= 1e-7
    assert info["history"][0]["residual"] == "stored kernel" and info["history"][-1]["residual"] == "explicit"
    assert info["products"] == 1 and info["stored_products"] == info["refinement_steps"] + 1  # one float64 check
    assert torch.allclose(alpha, ref, rtol=0, atol=1e-5 * float(ref.abs().max()))


def test_stored_kernel_check_proves_the_residual_without_a_kernel_pass():
    """The guarantee, whichever path the solver takes on this CPU: the residual it reports as converged is below
    the tolerance against the float64 kernel, and a residual accepted from the stored 48-bit kernel carries a
    bound that covers the storage error. (Whether the stored check suffices depends on rounding: on an AMD EPYC
    it did, on an Intel Xeon with AMX the solver needed one float64 product; both are right.)"""
    x, solver = ill_conditioned(stored=True)
    k = kernel_matrix(x, "gaussian", 0.8)
    y = torch.from_numpy(np.eye(3)[np.arange(len(x)) % 3])
    alpha, info = solver.solve(y, tol=1e-7)  # final_check="auto"
    assert info["converged"]
    true_residual = (k @ alpha - y).abs().amax(0)
    assert float(true_residual.max()) <= 1e-7  # what the solver promised, checked against the float64 kernel
    entry_bound = float(FixedPointUpper.ENTRY_ERROR * alpha.abs().sum(0).max())
    # The storage bound holds for any alpha: the stored kernel's product is within it of the float64 one.
    stored_product = solver.system_product(alpha, exact=False)
    assert float((stored_product - k @ alpha).abs().max()) <= entry_bound
    if info["final_check"].startswith("stored 48-bit kernel"):  # proven without a kernel pass
        assert info["products"] == 0
        assert 0 < info["storage_bound"] == pytest.approx(entry_bound)
        assert float((info["system_product"] - k @ alpha).abs().max()) <= info["storage_bound"]
    else:  # the stored residual was not below the tolerance by the bound: the kernel itself decided
        assert info["final_check"] == "float64 kernel" and info["products"] >= 1 and info["storage_bound"] == 0
    with pytest.raises(ShatteringError, match="final_check"):
        solver.solve(y, final_check="never")
    _, strict = solver.solve(y, tol=1e-7, final_check="kernel")
    assert strict["products"] == 1 and strict["final_check"] == "float64 kernel" and strict["storage_bound"] == 0


def test_float32_pivots_that_fail_get_a_diagonal_shift():
    x = pixels(300, 6, seed=4)
    k = kernel_matrix(x, "gaussian", 1.5)  # cond ~ 1e10: not positive definite in float32
    with pytest.raises(KernelFactorizationError, match="not numerically positive definite"):
        blocked_cholesky_(k.to(torch.float32), 32)
    shifts = []
    factor = blocked_cholesky_(k.to(torch.float32), 32, shift=1e-6, shifts=shifts)
    assert shifts and all(k0 % 32 == 0 and 0 < added <= 1e-2 for k0, _, added in shifts)
    low = torch.tril(factor).double()
    added = torch.zeros(300, dtype=torch.float64)
    for k0, k1, value in shifts:
        added[k0:k1] = value
    assert torch.allclose(low @ low.T, k + torch.diag(added), atol=1e-4)  # the factor of K plus a diagonal
    solver = KernelSolver(x, "gaussian", 1.5, dtype="float32", block_size=32, tile=64)
    assert solver.shifts == shifts and solver.describe()["shifted_rows"] == sum(b - a for a, b, _ in shifts)
    (r,) = fit_label_sets(solver, {"true": np.arange(300) % 3}, 3, max_steps=3)
    assert not r.extra["refined_to_tolerance"]
    assert not r.interpolates and r.refinement_steps == 3  # said, not hidden


def test_cholesky_keeps_the_upper_triangle_bit_for_bit():
    a = spd(70, seed=5).to(torch.float32)
    bits = a.view(torch.int32)
    rng = np.random.default_rng(0)
    noise = torch.from_numpy(rng.integers(-2 ** 31, 2 ** 31 - 1, (70, 70), dtype=np.int64).astype(np.int32))
    signalling_nans_and_a_denormal = [0x7F800001, 0x7FA00000, 0x7FBFFFFF, 0xFF800001 - 2 ** 32, 0x00000001]
    noise[0, 1:6] = torch.tensor(signalling_nans_and_a_denormal)
    upper = torch.ones(70, 70, dtype=torch.bool).triu_(1)
    bits.copy_(torch.where(upper, noise, bits))
    ref = torch.linalg.cholesky(torch.where(upper, a.T, a))
    blocked_cholesky_(a, 16, panel_rows=20)
    assert torch.equal(torch.where(upper, bits, 0), torch.where(upper, noise, 0))
    assert torch.allclose(torch.tril(a), ref, rtol=1e-4, atol=1e-3)


def test_refinement_reports_when_it_stops_short():
    _, solver = ill_conditioned()
    y = torch.ones(solver.n, dtype=torch.float64)  # a 1-D target (the Rademacher probe passes those)
    alpha, info = solver.solve(y, tol=1e-15, max_steps=1)
    assert alpha.shape == (solver.n,) and info["refinement_steps"] == 1 and not info["converged"]
    assert info["system_residual"] > 1e-15


def test_second_label_set_reuses_the_factorization(monkeypatch):
    calls = []
    original = kernel_solver.blocked_cholesky_

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(kernel_solver, "blocked_cholesky_", counting)
    x = pixels(200, 12)
    solver = KernelSolver(x, "gaussian", dtype="float32", block_size=64)
    labels = np.arange(200) % 4
    first = fit_label_sets(solver, {"true": labels}, 4)
    second = fit_label_sets(solver, {"random": np.random.default_rng(0).integers(0, 4, 200)}, 4)
    assert len(calls) == 1 and solver.factorizations == 1
    assert first[0].interpolates and second[0].interpolates


def test_memory_is_checked_before_any_work(monkeypatch):
    def heavy(*args, **kwargs):
        raise AssertionError("heavy work started before the memory check")

    monkeypatch.setattr(memory, "available_memory", lambda: 2 * 10 ** 9)
    monkeypatch.setattr(kernel_solver, "available_memory", lambda: 2 * 10 ** 9)
    monkeypatch.setattr(kernel_functions, "median_bandwidth", heavy)
    monkeypatch.setattr(KernelEvaluator, "__init__", heavy)
    x = np.zeros((30000, 1))  # 3.6 GB in float32, 7.2 GB in float64
    with pytest.raises(KernelMemoryError) as err:
        KernelSolver(x, dtype="float32")
    message = str(err.value)
    assert message.startswith("The 30,000 x 30,000 float32 kernel matrix needs 3.6 GB")
    assert "2.0 GB of memory is available" in message and message.count(". ") == 0 and message.endswith(".")
    with pytest.raises(KernelMemoryError, match="use float32"):
        KernelSolver(x)
    monkeypatch.setattr(kernel_interpolation, "load_sample", heavy)  # the data are not even loaded
    monkeypatch.setattr(memory, "available_memory", lambda: 10 ** 7)
    with pytest.raises(KernelMemoryError, match="1,437 x 1,437 float64"):
        kernel_experiment("digits", train_size=1437)


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
    r = kernel_experiment("digits", corruption="true-labels,partial-labels,random-labels", p=0.5, train_size=400,
                          test_size=200, block_size=128)
    assert [x["corruption"] for x in r["results"]] == ["true-labels", "partial-labels", "random-labels"]
    assert all(x["interpolates"] and x["train_error"] == 0 for x in r["results"])
    noise = [x["label_noise"] for x in r["results"]]
    assert noise[0] == 0 < noise[1] < noise[2]
    assert r["bandwidth_rule"] == "0.25 x the median pairwise distance"


def test_default_bandwidth_is_a_quarter_of_the_median_for_the_gaussian_only():
    med = median_bandwidth(SMALL)
    assert default_bandwidth(SMALL, "gaussian") == (pytest.approx(0.25 * med), "0.25 x the median pairwise distance")
    assert default_bandwidth(SMALL, "laplacian") == (pytest.approx(med), "median heuristic")
    assert KernelSolver(SMALL, "gaussian").bandwidth == pytest.approx(0.25 * med)
    wide = KernelSolver(SMALL, "gaussian", bandwidth_fraction=1.0)
    assert (wide.bandwidth, wide.bandwidth_rule) == (pytest.approx(med), "median heuristic")
    with pytest.raises(ShatteringError, match="kernel"):
        default_bandwidth(SMALL, "polynomial")


@pytest.mark.parametrize("kwargs, match", [
    ({"kernel": "polynomial"}, "kernel"), ({"train_size": 0}, "train_size"),
    ({"p": 1.5}, r"'p' parameter must be a number in \[0, 1\]; got 1.5 instead"),
    ({"corruption": "true-labels,bogus"}, "corruption"),
    ({"corruption": "true-labels,shuffled-pixels"}, "corruption"),  # a pixel corruption is no label set
    ({"corruption": "partial-labels"}, "needs a corruption probability"),
    ({"ridge": -1.0}, "ridge"), ({"dtype": "float16"}, "dtype"), ({"bandwidth": 0.0}, "bandwidth"),
    ({"features": "sift"}, "features"),
    ({"train_size": 5000}, "'train_size' parameter must be at most 1437; got 5000 instead"),
    ({"tol": -1.0}, "tol"), ({"max_steps": -1}, "max_steps"), ({"block_size": 0}, "block_size"),
])
def test_bad_options(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        kernel_experiment("digits", **({"train_size": 50, "test_size": 20} | kwargs))


@needs_fashion
def test_fashion_mnist_random_labels_interpolated():
    r = kernel_experiment("fashion-mnist", train_size=800, test_size=500)
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
    paths = render_table3(PRESETS["table3"], rows, tmp_path, [])
    assert {p.name for p in paths} == {"table3.md", "table3.csv", "table3.artefact.json"}
    side = json.loads((tmp_path / "table3.artefact.json").read_text())
    assert side["shattering_artefact"] == 1 and side["preset"] == "table3" and side["scale"] == "smoke"
    assert len(side["table"]["rows"]) == len(rows) and "paper test err" in side["table"]["columns"]
    md = (tmp_path / "table3.md").read_text()
    assert "1.2%" in md and "0.6%" in md and "15.0%" in md and "not comparable" in md
    with (tmp_path / "table3.csv").open() as fh:
        assert [r["row"] for r in csv.DictReader(fh)] == [r["row"] for r in rows]
    assert (tmp_path / "table3.json").is_file()


def test_table3_bad_scale():
    with pytest.raises(ConfigError, match="scale"):
        table3.compute_table3("huge")


@pytest.mark.parametrize("d", [30, 1024, 2500])
def test_every_product_of_pixel_codes_is_exact(d):
    """The int8, float32-in-blocks and float64 products of codes in [-128, 127] give the same integers as an int64
    product, extremes included (every code -128: the largest partial sums)."""
    rng = np.random.default_rng(d)
    codes = torch.from_numpy(rng.integers(-128, 128, (40, d), dtype=np.int8))
    codes[0] = -128
    codes[1] = 127
    want = (codes.to(torch.int64) @ codes.to(torch.int64).T).to(torch.float64)
    for product in PRODUCTS if d * 128 ** 2 < 2 ** 31 else PRODUCTS[1:]:
        held = codes_as(codes, product)
        got = codes_product(held, held, torch.empty(40, 40, dtype=torch.float64), product)
        assert torch.equal(got, want), product


def test_the_product_is_chosen_by_a_measurement_cached_per_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("SHATTERING_CACHE_DIR", str(tmp_path))
    pixel_product.cache_clear()
    try:
        first = pixel_product()
        assert first["source"] == "measured" and first["product"] in PRODUCTS
        assert first["product"] == min(first["seconds"], key=first["seconds"].get)  # the fastest measured
        assert set(first["seconds"]) >= {"float32", "float64"}
        pixel_product.cache_clear()
        again = pixel_product()
        assert again["source"] == "cache" and again["product"] == first["product"]
        assert KernelEvaluator(pixels(10, 8), "gaussian", 1.0).code_product == first["product"]
        cached = json.loads((tmp_path / "kernel_product.json").read_text())
        assert len(cached) == 1 and "torch" in next(iter(cached))  # keyed by the CPU and the torch version
    finally:
        pixel_product.cache_clear()


def test_int8_is_never_chosen_where_its_sums_could_overflow():
    x = pixels(5, 140_000)  # d 128^2 >= 2^31
    with pytest.raises(ConfigError, match="'product' parameter of KernelEvaluator must be one of float32, float64"):
        KernelEvaluator(x, "gaussian", 1.0, product="int8")
    assert KernelEvaluator(x, "gaussian", 1.0).code_product in ("float32", "float64")
