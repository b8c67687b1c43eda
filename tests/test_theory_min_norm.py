"""Tests for `shattering/theory/min_norm.py` and `experiments/min_norm.py`: SGD on over-parameterized least
squares finds pinv(X) y (Section 5 of Zhang et al., ICLR 2017)."""

from __future__ import annotations

import numpy as np
import pytest

from shattering.errors import ConfigError
from shattering.experiments.min_norm import min_norm_experiment
from shattering.theory.min_norm import (
    min_norm_solution,
    null_space_component,
    sgd_least_squares,
)

RNG = np.random.default_rng(0)
N, D = 40, 160
X = RNG.standard_normal((N, D))
Y = np.eye(5)[RNG.integers(0, 5, N)]
TOL = 1e-8


def test_min_norm_solution_is_the_pseudo_inverse():
    w = min_norm_solution(X, Y)
    assert np.allclose(w, np.linalg.pinv(X) @ Y, atol=1e-12)
    assert np.abs(X @ w - Y).max() < 1e-12


def test_sgd_from_zero_converges_to_the_pseudo_inverse_solution():
    w, trace = sgd_least_squares(X, Y, epochs=200)
    w_star = np.linalg.pinv(X) @ Y  # an independent route
    assert np.linalg.norm(w - w_star) / np.linalg.norm(w_star) < TOL
    assert trace.residual[-1] < TOL
    assert trace.distance[0] == pytest.approx(1.0)
    assert trace.distance[-1] < trace.distance[1] < trace.distance[0]


def test_sgd_iterates_stay_in_the_row_space():
    w, _ = sgd_least_squares(X, Y, epochs=2, tol=0)
    assert np.abs(null_space_component(X, w)).max() < 1e-12


def test_nonzero_start_interpolates_with_a_larger_norm():
    w_star = min_norm_solution(X, Y)
    w0 = RNG.standard_normal(w_star.shape)
    w, trace = sgd_least_squares(X, Y, w0=w0, epochs=200)
    null = null_space_component(X, w0)
    assert trace.residual[-1] < TOL  # still interpolates
    assert np.linalg.norm(w - (w_star + null)) / np.linalg.norm(w_star) < TOL  # w* + projection of w0
    assert np.linalg.norm(w) > np.linalg.norm(w_star)
    assert np.linalg.norm(w) ** 2 == pytest.approx(np.linalg.norm(w_star) ** 2 + np.linalg.norm(null) ** 2)


def test_minibatch_and_vector_targets():
    y = Y[:, 0]
    w, trace = sgd_least_squares(X, y, epochs=500, batch_size=8)
    assert w.shape == (D,)
    assert np.linalg.norm(w - np.linalg.pinv(X) @ y) / np.linalg.norm(w) < 1e-6


def test_bad_arguments():
    with pytest.raises(ConfigError, match="w0 must have shape"):
        sgd_least_squares(X, Y, w0=np.zeros(3))
    with pytest.raises(ConfigError, match="lr"):
        sgd_least_squares(X, Y, lr=-1.0)
    with pytest.raises(ConfigError, match="more features than points"):
        min_norm_experiment("digits", 100)
    with pytest.raises(ConfigError, match="features"):
        min_norm_experiment("synthetic", 10, features="pixels")


def test_experiment_synthetic():
    r = min_norm_experiment("synthetic", 30, epochs=200)
    assert r["d"] == 150 and r["rank"] == 30
    assert r["from_zero"]["distance_to_min_norm"] < TOL
    rs = r["from_random_start"]
    assert rs["distance_to_predicted_limit"] < TOL and rs["residual"] < TOL
    assert rs["norm"] > r["min_norm"]["norm"]
    assert rs["predicted_norm"] == pytest.approx(rs["norm"], rel=1e-6)


def test_experiment_on_digits_pixels_and_random_features():
    r = min_norm_experiment("digits", 30, epochs=50)
    d = r["from_zero"]["trace"]["distance"]
    assert d[-1] < d[0] and r["d"] == 64
    assert r["from_random_start"]["norm"] > r["min_norm"]["norm"]
    rf = min_norm_experiment("digits", 30, features="random", width=300, epochs=50)
    assert rf["d"] == 300 and rf["from_zero"]["distance_to_min_norm"] < 0.1
