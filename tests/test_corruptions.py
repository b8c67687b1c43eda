"""Property tests of the six randomizations of Section 2.1 (`shattering/corruptions.py`)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from shattering.config import RunConfig
from shattering.corruptions import CORRUPTIONS, corrupt_labels, draw_folder_labels, randomize
from shattering.data.dataset import ImageData
from shattering.data.image_folder import FolderListing
from shattering.errors import ConfigError


def make_data(n_train=60, n_test=20, shape=(3, 5, 4), k=10, seed=0) -> ImageData:
    rng = np.random.default_rng(seed)
    y_train, y_test = rng.integers(0, k, n_train), rng.integers(0, k, n_test)
    return ImageData(
        name="synthetic", class_names=tuple(str(i) for i in range(k)),
        x_train=rng.normal(size=(n_train, *shape)).astype(np.float32), y_train=y_train,
        x_test=rng.normal(size=(n_test, *shape)).astype(np.float32), y_test=y_test,
        y_train_original=y_train, y_test_original=y_test,
        train_changed=np.zeros(n_train, bool), test_changed=np.zeros(n_test, bool), preprocessing={},
    )


shapes = st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6))
seeds = st.integers(0, 2**31 - 1)


def _pixel_vectors(image: np.ndarray, unit: str) -> list:
    c = image.shape[0]
    flat = image.reshape(c, -1) if unit == "position" else image.reshape(1, -1)
    return sorted(map(tuple, flat.T.tolist()))


@settings(max_examples=40, deadline=None)
@given(shape=shapes, seed=seeds, unit=st.sampled_from(["position", "value"]))
def test_shuffled_pixels_one_permutation_for_train_and_test(shape, seed, unit):
    data = make_data(n_train=8, n_test=4, shape=shape, seed=seed % 1000)
    out = randomize(data, "shuffled-pixels", seed=seed, pixel_unit=unit)
    c, h, w = shape
    m = h * w if unit == "position" else c * h * w
    # Recover the permutation from an image with distinct values: every image (train and test) obeys it.
    flat_in = np.concatenate([data.x_train, data.x_test]).reshape(12, c if unit == "position" else 1, -1)
    flat_out = np.concatenate([out.x_train, out.x_test]).reshape(12, c if unit == "position" else 1, -1)
    first = flat_in[0, 0]
    perm = np.array([int(np.flatnonzero(first == v)[0]) for v in flat_out[0, 0]])
    assert sorted(perm.tolist()) == list(range(m))
    assert np.array_equal(flat_out, flat_in[:, :, perm])
    for i in range(len(data.x_train)):  # each image keeps its multiset of pixel vectors
        assert _pixel_vectors(out.x_train[i], unit) == _pixel_vectors(data.x_train[i], unit)
    assert np.array_equal(out.y_train, data.y_train)


@settings(max_examples=40, deadline=None)
@given(shape=shapes, seed=seeds)
def test_random_pixels_keep_each_image_with_its_own_permutation(shape, seed):
    data = make_data(n_train=30, n_test=5, shape=shape, seed=seed % 1000)
    out = randomize(data, "random-pixels", seed=seed)
    for i in range(len(data.x_train)):
        assert _pixel_vectors(out.x_train[i], "position") == _pixel_vectors(data.x_train[i], "position")
    c, h, w = shape
    if h * w >= 4:  # with enough positions, 30 images cannot all share one permutation
        perms = set()
        for i in range(len(data.x_train)):
            src, dst = data.x_train[i].reshape(c, -1)[0], out.x_train[i].reshape(c, -1)[0]
            perms.add(tuple(int(np.flatnonzero(src == v)[0]) for v in dst))
        assert len(perms) > 1


def test_gaussian_matches_target_mean_and_variance():
    data = make_data(n_train=4000, n_test=100, shape=(3, 6, 6))
    shift = np.array([0.5, -1.0, 2.0], np.float32)[None, :, None, None]
    data = data.with_changes(x_train=data.x_train * np.float32(2.0) + shift)
    out = randomize(data, "gaussian", seed=3)
    for c in range(3):
        target_mean, target_std = data.x_train[:, c].mean(), data.x_train[:, c].std()
        assert abs(out.x_train[:, c].mean() - target_mean) < 0.02
        assert abs(out.x_train[:, c].std() / target_std - 1) < 0.02
    assert out.corrupted_fraction == 1.0
    assert not np.allclose(out.x_train[:10], data.x_train[:10])


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9])
@pytest.mark.parametrize("exclude", [False, True])
def test_partial_label_noise_is_in_its_binomial_interval(p, exclude):
    k, n = 10, 20000
    data = make_data(n_train=n, n_test=10, shape=(1, 2, 2), k=k)
    out = randomize(data, "partial-labels", p, seed=7, exclude_true_class=exclude)
    rate = p if exclude else p * (1 - 1 / k)
    wrong = int((out.y_train != data.y_train).sum())
    if rate == 0:
        assert wrong == 0
    else:
        low, high = binomtest(wrong, n, rate).proportion_ci(0.999)
        assert low <= rate <= high
    assert out.label_noise == wrong / n and out.corrupted_fraction == out.label_noise
    assert out.corruption_details["expected_label_noise"] == pytest.approx(rate)
    assert np.array_equal(out.y_test, data.y_test)  # test labels stay clean by default
    assert out.y_train.min() >= 0 and out.y_train.max() < k


def test_random_labels_are_uniform_and_test_labels_clean():
    data = make_data(n_train=10000, n_test=500)
    out = randomize(data, "random-labels", seed=1)
    counts = np.bincount(out.y_train, minlength=10)
    assert counts.min() > 850 and counts.max() < 1150
    assert np.array_equal(out.y_test, data.y_test) and out.test_label_noise == 0


def test_corrupt_test_labels_option():
    data = make_data(n_train=100, n_test=2000)
    out = randomize(data, "random-labels", seed=1, corrupt_test_labels=True)
    assert 0.85 < out.test_label_noise < 0.95
    assert np.array_equal(out.y_test_original, data.y_test)


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_same_seed_same_bytes_other_seed_other_bytes(corruption):
    data = make_data()
    p = 0.5 if corruption == "partial-labels" else None
    a, b = randomize(data, corruption, p, seed=11), randomize(data, corruption, p, seed=11)
    assert a.fingerprint == b.fingerprint
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_train, b.y_train)
    if corruption != "true-labels":
        assert randomize(data, corruption, p, seed=12).fingerprint != a.fingerprint
    assert a.fingerprint == randomize(data, corruption, p, seed=11).fingerprint  # fixed, never re-drawn


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_input_is_never_modified(corruption):
    data = make_data()
    before = (data.x_train.copy(), data.y_train.copy(), data.x_test.copy())
    randomize(data, corruption, 0.5 if corruption == "partial-labels" else None, seed=1)
    assert np.array_equal(before[0], data.x_train) and np.array_equal(before[1], data.y_train)
    assert np.array_equal(before[2], data.x_test)


def test_p_zero_is_the_identity_and_masks_are_nested():
    data = make_data(n_train=2000)
    assert randomize(data, "partial-labels", 0.0, seed=5).fingerprint == data.fingerprint
    low = randomize(data, "partial-labels", 0.2, seed=5)
    high = randomize(data, "partial-labels", 0.6, seed=5)
    assert np.all(high.train_changed[low.train_changed])  # corrupted at 0.2 => corrupted at 0.6


@pytest.mark.parametrize("corruption", ["shuffled-pixels", "random-pixels", "gaussian"])
def test_pixel_fraction_p(corruption):
    data = make_data(n_train=4000, n_test=100, shape=(1, 3, 3))
    out = randomize(data, corruption, 0.3, seed=2)
    assert 0.27 < out.corrupted_fraction < 0.33
    unchanged = ~out.train_changed
    assert np.array_equal(out.x_train[unchanged], data.x_train[unchanged])


def test_label_draws_do_not_depend_on_p():
    rng_a, rng_b = np.random.default_rng(0), np.random.default_rng(0)
    y = np.arange(100) % 10
    a, _ = corrupt_labels(y, 0.3, 10, rng_a)
    b, _ = corrupt_labels(y, 0.3, 10, rng_b)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("corruption,p,match", [
    ("partial-labels", 1.5, r"\[0, 1\]"),
    ("partial-labels", -0.1, r"\[0, 1\]"),
    ("partial-labels", None, "needs a corruption probability"),
    ("random-labels", 0.5, "partial-labels"),
    ("true-labels", 0.3, "true-labels"),
    ("cutout", None, "Unknown corruption"),
])
def test_bad_corruption_arguments(corruption, p, match):
    with pytest.raises(ConfigError, match=match):
        randomize(make_data(), corruption, p)


@pytest.mark.parametrize("corruption, p, exclude, test_labels", [
    ("random-labels", None, False, False), ("partial-labels", 0.3, True, True), ("true-labels", None, False, True),
])
def test_a_streamed_folder_gets_the_labels_its_in_memory_copy_would(corruption, p, exclude, test_labels):
    data = make_data(n_train=50, n_test=30, seed=4)
    files = [np.array([f"{split}/{i}.png".encode() for i in range(n)]) for split, n in (("train", 50), ("val", 30))]
    listing = FolderListing(None, data.class_names, files[0], data.y_train, files[1], data.y_test)
    cfg = RunConfig(dataset="imagenet", corruption=corruption, p=p, data_seed=9, exclude_true_class=exclude,
                    corrupt_test_labels=test_labels)
    state = draw_folder_labels(listing, cfg)
    memory = randomize(data, corruption, p, 9, exclude_true_class=exclude, corrupt_test_labels=test_labels)
    np.testing.assert_array_equal(state["y_train"], memory.y_train)
    np.testing.assert_array_equal(state["y_test"], memory.y_test)
    np.testing.assert_array_equal(state["y_train_original"], data.y_train)
    np.testing.assert_array_equal(state["train_files"], files[0])
    assert state["meta"]["p"] == memory.p and state["meta"]["listed"] == {"train": 50, "val": 30}
