"""Tests for `shattering/theory/relu_interpolation.py` and `experiments/expressivity.py`: Theorem 1, Lemma 1 and
the depth-k variant (Section 4, Appendix C of Zhang et al., ICLR 2017)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shattering.errors import ConfigError
from shattering.experiments.expressivity import expressivity
from shattering.experiments.sample import load_sample
from shattering.theory.relu_interpolation import (
    DeepReLUInterpolant,
    ReLUInterpolant,
    check_distinct,
    choose_direction,
    condition_estimate,
    fit_relu_interpolant,
    interleave,
    lemma1_matrix,
    predict,
    solve_recurrence,
    solve_triangular,
)

RNG = np.random.default_rng(0)
N, D = 300, 20
X = RNG.standard_normal((N, D))
Y_REAL = RNG.standard_normal(N) * 10.0  # arbitrary real targets
Y_MULTI = RNG.standard_normal((N, 3))
LABELS = RNG.integers(0, 10, N)
EXACT = 1e-6  # max |c(x_i) - y_i| in float64


def test_real_targets_reproduced_exactly_with_2n_plus_d_weights():
    model, info = fit_relu_interpolant(X, Y_REAL)
    assert isinstance(model, ReLUInterpolant) and isinstance(model, torch.nn.Module)
    assert model.num_weights == info.num_weights == 2 * N + D
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert np.abs(predict(model, X) - Y_REAL).max() < EXACT


def test_several_outputs_share_a_and_b():
    model, info = fit_relu_interpolant(X, Y_MULTI)
    assert model.num_weights == 3 * N + N + D
    assert np.abs(predict(model, X) - Y_MULTI).max() < EXACT


def test_class_labels_one_output_per_class():
    model, info = fit_relu_interpolant(X, LABELS, num_classes=10)
    out = predict(model, X)
    assert out.shape == (N, 10)
    assert model.num_weights == N * 10 + N + D
    assert np.abs(out - np.eye(10)[LABELS]).max() < EXACT
    assert (out.argmax(1) == LABELS).all()


def test_class_index_as_one_real_output():
    model, _ = fit_relu_interpolant(X, LABELS.astype(float))
    assert model.num_weights == 2 * N + D
    assert (np.rint(predict(model, X)) == LABELS).all()


def test_images_are_flattened_and_random_labels_fit():
    sample = load_sample("digits", 400)
    y = sample.labels("random-labels", seed=3)
    model, info = fit_relu_interpolant(sample.data.x_train, y, num_classes=10)
    assert info.d == 64
    assert (predict(model, sample.data.x_train).argmax(1) == y).all()


@pytest.mark.parametrize("offset", [0.01, 0.1, 0.3, 0.5])
def test_any_interleaving_is_exact(offset):
    model, info = fit_relu_interpolant(X, Y_REAL, offset=offset)
    assert np.abs(predict(model, X) - Y_REAL).max() < EXACT
    assert info.min_gap == pytest.approx((1 - offset) * info.projection_gap, rel=1e-9)


def test_recurrence_agrees_with_forward_substitution():
    a, _ = choose_direction(X)
    xs = np.sort(X @ a)
    b = interleave(xs, 0.1)
    w_tri, w_rec = solve_triangular(xs, b, Y_MULTI), solve_recurrence(xs, b, Y_MULTI)
    assert np.abs(w_tri - w_rec).max() <= 1e-8 * np.abs(w_tri).max()
    model_tri, _ = fit_relu_interpolant(X, Y_REAL, method="triangular")
    model_rec, _ = fit_relu_interpolant(X, Y_REAL, method="recurrence")
    assert np.abs(predict(model_rec, X) - Y_REAL).max() < EXACT
    assert np.allclose(model_tri.w.detach().numpy(), model_rec.w.detach().numpy(), rtol=1e-7,
                       atol=1e-9 * np.abs(model_tri.w.detach().numpy()).max())


def test_small_offset_closed_form_is_the_piecewise_linear_interpolant():
    # as offset -> 0 the slopes are the secant slopes through the sorted points: w holds their differences
    xs = np.array([0.0, 1.0, 3.0, 4.0])
    ys = np.array([1.0, 3.0, -1.0, 2.0])
    b = interleave(xs, 1e-12)
    slopes = np.cumsum(solve_recurrence(xs, b, ys))
    assert np.allclose(slopes[1:], np.diff(ys) / np.diff(xs), rtol=1e-9)


def test_lemma1_matrix_is_lower_triangular_with_positive_diagonal():
    xs = np.sort(RNG.standard_normal(50))
    b = interleave(xs, 0.3)
    assert (b[0] < xs[0]) and (xs[:-1] < b[1:]).all() and (b[1:] < xs[1:]).all()
    a = lemma1_matrix(xs, b)
    assert np.array_equal(a, np.tril(a))
    assert np.allclose(np.diag(a), xs - b) and (np.diag(a) > 0).all()
    assert np.allclose(np.sort(np.linalg.eigvals(a).real), np.sort(xs - b))  # eigenvalues = diagonal
    cond = condition_estimate(xs, b)
    assert cond == pytest.approx(np.linalg.cond(a, 1), rel=0.5)


def test_duplicate_points_are_refused():
    x = X.copy()
    x[7] = x[3]
    with pytest.raises(ConfigError, match=r"Points 3 and 7 are identical with different targets"):
        fit_relu_interpolant(x, np.arange(N, dtype=float))
    with pytest.raises(ConfigError, match="distinct points"):
        check_distinct(x)
    check_distinct(X)


@pytest.mark.parametrize("kwargs, match", [
    ({"offset": 0.0}, "offset"), ({"offset": 0.9}, "offset"), ({"method": "lu"}, "method"),
    ({"candidates": 0}, "candidates"), ({"num_classes": 1}, "num_classes"),
])
def test_bad_arguments_raise_config_error(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        fit_relu_interpolant(X, LABELS if "num_classes" in kwargs else Y_REAL, **kwargs)


def test_bad_inputs_raise_config_error():
    with pytest.raises(ConfigError, match="shape"):
        fit_relu_interpolant(X, Y_REAL[:-1])
    with pytest.raises(ConfigError, match="NaN"):
        fit_relu_interpolant(np.full((3, 2), np.nan), np.zeros(3))
    with pytest.raises(ConfigError, match="class labels"):
        fit_relu_interpolant(X, LABELS + 10, num_classes=10)


@pytest.mark.parametrize("depth", [3, 4, 7])
def test_deep_variant_is_exact_with_the_same_free_weights(depth):
    model, _ = fit_relu_interpolant(X, LABELS, num_classes=10)
    deep = model.deepen(depth)
    assert isinstance(deep, DeepReLUInterpolant)
    assert deep.depth == depth and len(deep.widths) == depth - 1
    assert deep.num_weights == model.num_weights == N * 10 + N + D
    assert max(deep.widths) <= -(-N // (depth - 1)) + 2 + 2 * 10  # width O(n / k)
    out = predict(deep, X)
    assert np.abs(out - np.eye(10)[LABELS]).max() < EXACT
    assert np.abs(out - predict(model, X)).max() < 1e-8
    x_new = RNG.standard_normal((50, D)) * 3  # the same function off the sample, too
    assert np.allclose(predict(deep, x_new), predict(model, x_new), atol=1e-6)


def test_deepest_variant_one_unit_per_layer():
    model, _ = fit_relu_interpolant(X[:12], Y_REAL[:12])
    deep = model.deepen(13)
    assert deep.depth == 13
    assert np.abs(predict(deep, X[:12]) - Y_REAL[:12]).max() < EXACT
    with pytest.raises(ConfigError, match="depth"):
        model.deepen(14)


def test_expressivity_experiment_on_digits():
    r = expressivity("digits", 300, corruption="random-labels", depth=3, seed=1, data_seed=1)
    assert r["weights"] == {"theorem_1": 2 * 300 + 64, "one_per_class": 300 * 10 + 300 + 64}
    assert r["scalar"]["num_weights"] == 2 * 300 + 64
    for key in ("scalar", "one_per_class", "deep"):
        assert r[key]["train_accuracy"] == 1.0
        assert r[key]["max_error"] < EXACT
    assert r["label_noise"] > 0.5
    assert r["cond_1"] < r["midpoint"]["cond_1"]  # the offset choice beats midpoints
    assert r["solver_agreement"] < 1e-6
    (claim,) = r["claims"]
    assert claim["id"] == "theorem1" and claim["verdict"] == "holds" and "2n + d = 664" in claim["text"]
