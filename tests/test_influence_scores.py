"""Tests for `shattering/influence/scores.py`: Feldman and Zhang's memorization and influence, Jiang et al.'s
C-score, the random subsets and the precision/recall of the lowest scores, on cases whose answers are known by
construction: a model class that memorizes one example exactly, correctness independent of the masks (every
score about 0, the standard errors covering it), a test example whose correctness is one training example's
mask, a direct loop over the pairs, an empty side, a hand-sorted example and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from shattering.errors import ConfigError
from shattering.influence import (
    c_score,
    influence,
    lowest_scores_precision_recall,
    memorization,
    most_influential,
    subset_masks,
)

K, N = 400, 50  # networks, training examples of the statistical cases
FRACTION = 0.7


@pytest.fixture(scope="module")
def masks() -> np.ndarray:
    return subset_masks(N, K, FRACTION, seed=0)


@pytest.fixture(scope="module")
def independent(masks) -> tuple[np.ndarray, np.ndarray]:
    """Correctness independent of the masks: a per-example probability drawn once, realized per network."""
    rng = np.random.default_rng(1)
    p = rng.uniform(0.2, 0.8, N)
    return p, rng.random((K, N)) < p


def test_exact_memorizer(masks):
    """A model class that gets the marked example right iff it trained on it, and every other example always."""
    marked = 7
    correct = np.ones((K, N), dtype=bool)
    correct[:, marked] = masks[:, marked]
    mem = memorization(masks, correct)
    assert mem.mem[marked] == 1.0
    assert (np.delete(mem.mem, marked) == 0.0).all()
    assert (mem.se == 0.0).all()  # every side's mean is exactly 0 or 1
    assert (mem.n_in == masks.sum(axis=0)).all() and (mem.n_in + mem.n_out == K).all()
    c = c_score(masks, correct)
    assert c.c[marked] == 0.0
    assert (np.delete(c.c, marked) == 1.0).all()
    assert (c.n_out == (~masks).sum(axis=0)).all()


def test_independent_correctness_scores_about_zero(masks, independent):
    p, correct = independent
    mem = memorization(masks, correct)
    assert abs(mem.mem.mean()) < 0.05
    covered = np.mean(np.abs(mem.mem) / mem.se < 1.96)
    assert 0.85 <= covered <= 1.0
    c = c_score(masks, correct)  # the held-out accuracy estimates the per-example probability
    assert 0.85 <= np.mean(np.abs(c.c - p) / c.se < 1.96) <= 1.0


def test_influence_of_a_copied_mask(masks, independent):
    """Test example 0 is right iff the network trained on i0; test example 1 is independent of every mask."""
    i0 = 13
    test = np.stack([masks[:, i0], independent[1][:, 0]], axis=1)
    est = influence(masks, test)
    assert est.infl.shape == est.se.shape == (N, 2)
    assert est.infl[i0, 0] == 1.0 and est.se[i0, 0] == 0.0
    index, value = most_influential(est)
    assert index[0] == i0 and value[0] == 1.0
    assert np.abs(est.infl[:, 1]).max() < 0.25 and np.abs(est.infl[:, 1]).mean() < 0.08


def test_influence_equals_a_direct_loop():
    rng = np.random.default_rng(2)
    k, n, m = 7, 5, 4
    masks = rng.random((k, n)) < 0.5
    masks[:, 0] = True  # one training example every network trained on: a NaN row
    test = rng.random((k, m))  # probabilities, not only 0/1
    est = influence(masks, test)
    want, se = np.full((n, m), np.nan), np.full((n, m), np.nan)
    for i in range(n):
        inside, outside = masks[:, i], ~masks[:, i]
        if inside.any() and outside.any():
            for j in range(m):
                a, b = test[inside, j].mean(), test[outside, j].mean()
                want[i, j] = a - b
                se[i, j] = np.sqrt(a * (1 - a) / inside.sum() + b * (1 - b) / outside.sum())
    assert np.isnan(want[0]).all()
    np.testing.assert_allclose(est.infl, want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(est.se, se, rtol=0, atol=1e-12)
    assert (est.n_out[0] == 0) and (est.n_in + est.n_out == k).all()


def test_most_influential_skips_nan_rows_and_empty_columns():
    infl = np.array([[np.nan, np.nan], [0.2, np.nan], [0.5, np.nan], [0.5, np.nan]])
    index, value = most_influential(infl)
    assert index.tolist() == [2, -1]  # the tie goes to the lower index
    assert value[0] == 0.5 and np.isnan(value[1])


def test_subset_masks():
    n, k, fraction = 50, 400, 0.7
    masks = subset_masks(n, k, fraction, seed=3)
    assert masks.shape == (k, n) and masks.dtype == bool
    assert (masks.sum(axis=1) == round(fraction * n)).all()
    assert (subset_masks(n, k, fraction, seed=3) == masks).all()
    assert (subset_masks(n, k, fraction, seed=4) != masks).any()
    frequency = masks.mean(axis=0)
    assert np.abs(frequency - fraction).max() < 0.1
    assert (subset_masks(7, 3, 0.5, seed=0).sum(axis=1) == round(3.5)).all()  # 4: Python's round


def test_an_empty_side_is_nan():
    rng = np.random.default_rng(5)
    masks = rng.random((6, 4)) < 0.5
    masks[:, 1] = True  # every network trained on example 1: nobody left it out
    masks[:, 2] = False  # nobody trained on example 2
    correct = rng.random((6, 4)) < 0.5
    mem = memorization(masks, correct)
    assert np.isnan(mem.mem[1]) and mem.n_out[1] == 0 and np.isnan(mem.se[1]) and not np.isnan(mem.p_in[1])
    assert np.isnan(mem.mem[2]) and mem.n_in[2] == 0 and np.isnan(mem.se[2]) and not np.isnan(mem.p_out[2])
    c = c_score(masks, correct)
    assert np.isnan(c.c[1]) and c.n_out[1] == 0 and np.isnan(c.se[1])
    assert not np.isnan(c.c[2])


def test_lowest_scores_precision_recall_by_hand():
    scores = np.array([0.1, 0.9, 0.2, np.nan, 0.05])
    marked = np.array([True, False, False, True, True])
    out = lowest_scores_precision_recall(scores, marked, top=2)
    assert out.selected.tolist() == [4, 0]
    assert out.precision == 1.0 and out.recall == pytest.approx(2 / 3)
    everything = lowest_scores_precision_recall(scores, marked, top=5)
    assert everything.selected.tolist() == [4, 0, 2, 1, 3]  # NaN last
    assert lowest_scores_precision_recall([0.3, 0.3, 0.3], np.array([False, True, False]), 1).selected.tolist() == [0]
    assert np.isnan(lowest_scores_precision_recall(scores, np.zeros(5, dtype=bool), 2).recall)


@pytest.mark.parametrize(("call", "name"), [
    (lambda: memorization(np.ones((3, 4), dtype=bool), np.ones((3, 5))), "train_correct"),
    (lambda: memorization(np.ones((3, 4)), np.ones((3, 4))), "masks"),
    (lambda: memorization(np.ones((1, 4), dtype=bool), np.ones((1, 4))), "masks"),
    (lambda: memorization(np.ones((3, 4), dtype=bool), np.full((3, 4), 2.0)), "train_correct"),
    (lambda: c_score(np.ones(4, dtype=bool), np.ones(4)), "masks"),
    (lambda: influence(np.ones((3, 4), dtype=bool), np.ones((2, 5))), "test_correct"),
    (lambda: influence(np.ones((3, 4), dtype=int), np.ones((3, 5))), "masks"),
    (lambda: subset_masks(10, 5, 1.0, 0), "fraction"),
    (lambda: subset_masks(10, 5, 0.0, 0), "fraction"),
    (lambda: subset_masks(10, 5, 0.01, 0), "fraction"),  # rounds to no example
    (lambda: lowest_scores_precision_recall([0.1, 0.2], [1, 0], 1), "marked"),
    (lambda: lowest_scores_precision_recall([0.1, 0.2], np.array([True, False]), 3), "top"),
])
def test_bad_input(call, name):
    with pytest.raises(ConfigError, match=f"'{name}' parameter"):
        call()
