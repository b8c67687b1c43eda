"""Tests for `shattering/data/preprocess.py` and `dataset.py`: the paper's preprocessing and subsets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from shattering.config import RunConfig
from shattering.data import DATASETS, DatasetInfo, dataset_names, load_dataset, register_dataset, stratified_subset
from shattering.data.formats import IDX_FILES, write_idx
from shattering.data.preprocess import center_crop, per_image_whitening, scale_pixels
from shattering.errors import ConfigError

from .conftest import needs_fashion


def test_per_image_whitening_is_tensorflows():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(5, 3, 28, 28)).astype(np.float32)
    out = per_image_whitening(x)
    n = 3 * 28 * 28
    for i in range(5):
        expected = (x[i] - x[i].mean()) / max(x[i].std(), 1 / np.sqrt(n))
        np.testing.assert_allclose(out[i], expected, rtol=1e-5, atol=1e-5)
        assert abs(out[i].mean()) < 1e-5 and abs(out[i].std() - 1) < 1e-4


def test_whitening_guard_keeps_uniform_images_finite():
    x = np.full((2, 1, 4, 4), 0.7, np.float32)
    assert np.all(per_image_whitening(x) == 0)


def test_whitening_numpy_and_torch_agree():
    x = np.random.default_rng(1).normal(size=(3, 2, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(per_image_whitening(x), per_image_whitening(torch.from_numpy(x)).numpy(), atol=1e-6)


def test_center_crop_drops_equal_borders():
    x = np.arange(32 * 32, dtype=np.float32).reshape(1, 1, 32, 32)
    out = center_crop(x, 28)
    assert out.shape == (1, 1, 28, 28) and out[0, 0, 0, 0] == x[0, 0, 2, 2]


def test_scale():
    assert scale_pixels(np.array([0, 255], np.uint8), 255).tolist() == [0.0, 1.0]


@settings(max_examples=30, deadline=None)
@given(size=st.integers(1, 200), seed=st.integers(0, 1000))
def test_stratified_subset(size, seed):
    y = np.repeat(np.arange(10), 20)
    idx = stratified_subset(y, size, seed)
    assert len(idx) == size and len(set(idx.tolist())) == size and np.all(np.diff(idx) > 0)
    counts = np.bincount(y[idx], minlength=10)
    assert counts.max() - counts.min() <= 1
    assert np.array_equal(idx, stratified_subset(y, size, seed))


def test_digits_and_mnist1d_load_offline():
    d = load_dataset("digits")
    assert (d.n_train, d.n_test, d.shape, d.num_classes) == (1437, 360, (1, 8, 8), 10)
    m = load_dataset("mnist1d")
    assert (m.n_train, m.n_test, m.shape) == (4000, 1000, (1, 1, 40))
    assert m.preprocessing["whitening"] == "none"


def test_subset_sizes_and_bad_sizes():
    d = load_dataset("digits", train_size=100, test_size=50, subset_seed=3)
    assert (d.n_train, d.n_test) == (100, 50)
    assert np.bincount(d.y_train).min() == 10
    with pytest.raises(ConfigError, match="run setting 'train_size' \\(--train-size\\) must be between 1 and 1437 for "
                                          "digits; got 5000 instead"):
        load_dataset("digits", train_size=5000)


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(ConfigError, match="known data sets: digits, mnist1d, mnist, fashion-mnist, cifar10"):
        load_dataset("imagenet-21k")


def test_a_registered_data_set_is_read_and_accepted_like_a_built_in_one(tmp_path):
    rng = np.random.default_rng(0)
    arrays = (rng.integers(0, 256, (40, 6, 6), dtype=np.uint8), np.arange(40, dtype=np.uint8) % 4,
              rng.integers(0, 256, (12, 6, 6), dtype=np.uint8), np.arange(12, dtype=np.uint8) % 4)
    for name, array in zip(IDX_FILES, arrays, strict=True):
        write_idx(tmp_path / name, array)
    info = DatasetInfo(name="tiny-idx", title="Tiny IDX", shape=(1, 6, 6), class_names=tuple("abcd"), n_train=40,
                       n_test=12, kind="idx")
    assert "tiny-idx" not in DATASETS
    try:
        assert register_dataset(info) is info and dataset_names()[-1] == "tiny-idx"
        d = load_dataset("tiny-idx", data_dir=tmp_path, train_size=20)
        assert (d.n_train, d.n_test, d.shape, d.class_names) == (20, 12, (1, 6, 6), tuple("abcd"))
        assert RunConfig(dataset="tiny-idx").dataset == "tiny-idx"
        with pytest.raises(ConfigError, match="registered already"):
            register_dataset(info)
    finally:
        DATASETS.pop("tiny-idx", None)
    with pytest.raises(ConfigError, match="kind"):
        register_dataset(DatasetInfo(name="odd", title="", shape=(1, 1, 1), class_names=("a",), n_train=1,
                                     n_test=1, kind="hdf5"))
    assert "odd" not in DATASETS


@needs_fashion
def test_real_fashion_mnist():
    d = load_dataset("fashion-mnist")
    assert (d.n_train, d.n_test, d.shape) == (60000, 10000, (1, 28, 28))
    assert np.bincount(d.y_train).tolist() == [6000] * 10
    assert d.preprocessing["source"] == "/usr/share/datasets/fashion-mnist"
