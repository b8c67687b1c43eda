"""Tests for `shattering/data/formats.py`: the official file formats, read and refused."""

from __future__ import annotations

import gzip
import pickle
import tarfile

import numpy as np
import pytest

from shattering.data.formats import read_cifar, read_idx, write_cifar_archive, write_idx
from shattering.errors import DataFormatError

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("name", ["x.idx", "x.idx.gz"])
def test_idx_round_trip(tmp_path, name):
    images = RNG.integers(0, 256, size=(7, 5, 4), dtype=np.uint8)
    read = read_idx(write_idx(tmp_path / name, images))
    assert read.dtype == np.uint8 and np.array_equal(read, images)


def test_idx_wrong_magic_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(b"\x01\x02\x03\x04" + bytes(20))
    with pytest.raises(DataFormatError, match="bad-idx3-ubyte.*not an IDX file"):
        read_idx(path)


def test_truncated_idx_is_refused(tmp_path):
    path = write_idx(tmp_path / "t.idx", RNG.integers(0, 256, size=(10, 4, 4), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataFormatError, match="truncated"):
        read_idx(path)


def test_truncated_gzip_is_refused(tmp_path):
    path = write_idx(tmp_path / "t.idx.gz", RNG.integers(0, 256, size=(100, 8, 8), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataFormatError, match="t.idx.gz"):
        read_idx(path)


def _cifar(tmp_path, variant="cifar10", n_train=10, n_test=5, k=10):
    x_train = RNG.integers(0, 256, size=(n_train, 3, 32, 32), dtype=np.uint8)
    x_test = RNG.integers(0, 256, size=(n_test, 3, 32, 32), dtype=np.uint8)
    y_train, y_test = RNG.integers(0, k, n_train), RNG.integers(0, k, n_test)
    path = write_cifar_archive(tmp_path / f"{variant}.tar.gz", variant, x_train, y_train, x_test, y_test)
    return path, x_train, y_train, x_test, y_test


@pytest.mark.parametrize("variant,k", [("cifar10", 10), ("cifar100", 100)])
def test_cifar_archive_round_trip(tmp_path, variant, k):
    path, x_train, y_train, x_test, y_test = _cifar(tmp_path, variant, k=k)
    d = read_cifar(path, variant)
    assert np.array_equal(d["x_train"], x_train) and np.array_equal(d["y_train"], y_train)
    assert np.array_equal(d["x_test"], x_test) and np.array_equal(d["y_test"], y_test)
    assert len(d["class_names"]) == k


def test_cifar_extracted_folder_reads_the_same(tmp_path):
    path, x_train, *_ = _cifar(tmp_path)
    with tarfile.open(path) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    assert np.array_equal(read_cifar(tmp_path / "x" / "cifar-10-batches-py", "cifar10")["x_train"], x_train)


def _rewrite_member(path, member, payload):
    with tarfile.open(path) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    members[member] = payload
    import io

    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_cifar_pickle_of_wrong_shape_is_refused(tmp_path):
    path, *_ = _cifar(tmp_path)
    bad = pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, protocol=2)
    _rewrite_member(path, "cifar-10-batches-py/data_batch_1", bad)
    with pytest.raises(DataFormatError, match="data_batch_1.*3072"):
        read_cifar(path, "cifar10")


def test_cifar_labels_outside_class_range_are_refused(tmp_path):
    path, *_ = _cifar(tmp_path)
    bad = pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]}, protocol=2)
    _rewrite_member(path, "cifar-10-batches-py/test_batch", bad)
    with pytest.raises(DataFormatError, match="test_batch.*outside the 10 classes"):
        read_cifar(path, "cifar10")


def test_cifar_pickle_with_foreign_objects_is_refused(tmp_path):
    path, *_ = _cifar(tmp_path)
    _rewrite_member(path, "cifar-10-batches-py/test_batch", pickle.dumps({"x": tmp_path}))
    with pytest.raises(DataFormatError, match="not a CIFAR python batch"):
        read_cifar(path, "cifar10")


def test_truncated_cifar_archive_is_refused(tmp_path):
    path, *_ = _cifar(tmp_path, n_train=200)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataFormatError, match="truncated or damaged"):
        read_cifar(path, "cifar10")


def test_gzip_helper_is_deterministic(tmp_path):
    a = write_idx(tmp_path / "a.gz", np.arange(10, dtype=np.uint8)).read_bytes()
    b = write_idx(tmp_path / "b.gz", np.arange(10, dtype=np.uint8)).read_bytes()
    assert a == b and gzip.decompress(a)[:4] == b"\x00\x00\x08\x01"
