"""Corrupted data files through the command line (`shatter data show --dataset mnist --data-dir DIR`, `shatter run
--dataset cifar10 --data-dir DIR`): truncated IDX files (raw and gzipped), wrong magic numbers, labels outside
the class range, image arrays of the wrong shape, CIFAR pickles of the wrong shape or type, truncated
archives and garbage. Every one is refused in one sentence naming the damaged file, exit status 2, and leaves
no run record that a report would read. The damage is drawn by hypothesis (where to cut, which bytes).
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import shutil
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shattering.data.formats import CIFAR_LAYOUT, IDX_FILES, write_cifar_archive, write_idx
from shattering.report.html import find_runs

from .test_faults import tally
from .test_fuzz_cli import call

EXAMPLES = int(os.environ.get("SHATTERING_FUZZ_EXAMPLES", "300")) // 3  # each example writes a data set
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
N_TRAIN, N_TEST = 20, 10


def refused_naming(argv: list[str], damaged: str) -> str:
    code, _, err = call(argv)
    assert code == 2, (argv, code, err)
    assert err.startswith("shatter: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert damaged in err, (damaged, err)
    return err


class Folder:
    """A fresh folder per example (the data cache is keyed by path and time stamp)."""

    def __enter__(self) -> Path:
        self.path = Path(tempfile.mkdtemp(prefix="shattering-fuzz-"))
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# IDX (MNIST, Fashion-MNIST)
# --------------------------------------------------------------------------------------------------


def idx_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)  # the same files in every example: hypothesis replays its draws on them
    return {IDX_FILES[0]: rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8),
            IDX_FILES[1]: (np.arange(N_TRAIN) % 10).astype(np.uint8),
            IDX_FILES[2]: rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8),
            IDX_FILES[3]: (np.arange(N_TEST) % 10).astype(np.uint8)}


def write_idx_set(folder: Path, arrays: dict, gz: bool) -> dict[str, Path]:
    paths = {}
    for name, array in arrays.items():
        path = folder / (name if gz else name[: -len(".gz")])
        write_idx(path, array, compress=gz)
        paths[name] = path
    return paths


def idx_bytes(array: np.ndarray) -> bytes:
    """The uncompressed IDX file of a uint8 ``array``."""
    return bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes() + array.tobytes()


DAMAGE_IDX = st.sampled_from(["truncate", "truncate-gzip", "garble-gzip", "magic", "labels", "shape", "count"])


def test_damaged_idx_files_are_refused_naming_the_file():
    seen = {"examples": 0}

    @FUZZ
    @given(DAMAGE_IDX, st.sampled_from(IDX_FILES), st.booleans(), st.data())
    def one(damage, target, gz, data):
        arrays = idx_arrays()
        is_labels = "labels" in target
        if damage == "labels":
            target = data.draw(st.sampled_from([IDX_FILES[1], IDX_FILES[3]]), label="labels file")
            arrays[target] = arrays[target].copy()
            where = data.draw(st.integers(0, len(arrays[target]) - 1), label="where")
            arrays[target][where] = data.draw(st.integers(10, 255), label="label")
        elif damage == "shape":
            arrays[target] = arrays[target].reshape(len(arrays[target]), -1) if not is_labels else \
                arrays[target].reshape(-1, 1, 1)
        elif damage == "count":
            arrays[target] = arrays[target][:-1]
        gz = gz or damage in ("truncate-gzip", "garble-gzip")
        with Folder() as folder:
            paths = write_idx_set(folder, arrays, gz)
            path = paths[target]
            raw = idx_bytes(arrays[target])
            if damage == "truncate":  # a strict prefix of the IDX bytes (gzipped again when the set is gzipped)
                cut = raw[: data.draw(st.integers(0, len(raw) - 1), label="cut")]
                path.write_bytes(gzip.compress(cut, mtime=0) if gz else cut)
            elif damage == "truncate-gzip":  # a strict prefix of the gzip stream itself
                packed = path.read_bytes()
                path.write_bytes(packed[: data.draw(st.integers(2, len(packed) - 1), label="cut")])
            elif damage == "garble-gzip":  # other bytes inside the compressed stream (its CRC-32 catches them)
                packed = path.read_bytes()
                where = data.draw(st.integers(10, len(packed) - 9), label="where")
                junk = data.draw(st.binary(min_size=1, max_size=8).filter(
                    lambda j: j != packed[where:where + len(j)]), label="junk")
                path.write_bytes(packed[:where] + junk + packed[where + len(junk):])
            elif damage == "magic":  # the first bytes: not 0x00 0x00 <known type code>
                head = data.draw(st.binary(min_size=3, max_size=3).filter(
                    lambda b: b[0] != 0 or b[1] != 0 or b[2] not in (0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E)))
                bad = head + raw[3:]
                path.write_bytes(gzip.compress(bad, mtime=0) if gz else bad)
            argv = ["data", "show", "--dataset", "mnist", "--data-dir", str(folder), "--json"]
            refused_naming(argv, path.name)
        seen["examples"] += 1

    one()
    tally("fuzz-data-files", examples=seen["examples"], format="idx")


# --------------------------------------------------------------------------------------------------
# CIFAR
# --------------------------------------------------------------------------------------------------


def cifar_archive(folder: Path, y_train=None) -> Path:
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (N_TRAIN, 3, 32, 32), dtype=np.uint8)
    x_test = rng.integers(0, 256, (N_TEST, 3, 32, 32), dtype=np.uint8)
    y_train = np.arange(N_TRAIN) % 10 if y_train is None else y_train
    return write_cifar_archive(folder / "cifar-10-python.tar.gz", "cifar10", x_train, y_train, x_test,
                               np.arange(N_TEST) % 10)


def rewrite_member(archive: Path, member: str, payload: bytes) -> None:
    with tarfile.open(archive, "r:gz") as tar:
        members = [(info, tar.extractfile(info).read()) for info in tar.getmembers()]
    with tarfile.open(archive, "w:gz") as tar:
        for info, data in members:
            if info.name.endswith("/" + member):
                data = payload
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


MEMBERS = [*CIFAR_LAYOUT["cifar10"]["train"], *CIFAR_LAYOUT["cifar10"]["test"]]


def bad_batch(kind: str, data) -> bytes:
    n = data.draw(st.integers(1, 6), label="rows")
    if kind == "shape":
        width = data.draw(st.integers(1, 4000).filter(lambda w: w != 3072), label="width")
        return pickle.dumps({b"data": np.zeros((n, width), np.uint8), b"labels": [0] * n}, protocol=2)
    if kind == "dtype":
        return pickle.dumps({b"data": np.zeros((n, 3072), np.float32), b"labels": [0] * n}, protocol=2)
    if kind == "labels":
        label = data.draw(st.one_of(st.integers(10, 10**6), st.integers(-(10**6), -1)), label="label")
        return pickle.dumps({b"data": np.zeros((n, 3072), np.uint8), b"labels": [0] * (n - 1) + [label]}, protocol=2)
    if kind == "count":
        return pickle.dumps({b"data": np.zeros((n, 3072), np.uint8), b"labels": [0] * (n + 1)}, protocol=2)
    if kind == "missing-key":
        return pickle.dumps({b"pixels": np.zeros((n, 3072), np.uint8)}, protocol=2)
    if kind == "not-a-dict":
        return pickle.dumps([np.zeros((n, 3072), np.uint8)], protocol=2)
    return data.draw(st.binary(max_size=64), label="garbage")


DAMAGE_CIFAR = st.sampled_from(["shape", "dtype", "labels", "count", "missing-key", "not-a-dict", "garbage"])


def _no_record(out: Path) -> None:
    assert not out.exists() or find_runs(out) == [], "a failed run left a record a report would read"


def test_damaged_cifar_batches_are_refused_naming_the_file():
    seen = {"examples": 0}

    @FUZZ
    @given(DAMAGE_CIFAR, st.sampled_from(MEMBERS), st.booleans(), st.data())
    def one(damage, member, extracted, data):
        with Folder() as folder:
            archive = cifar_archive(folder)
            payload = bad_batch(damage, data)
            if extracted:  # the extracted folder is read instead of the archive
                with tarfile.open(archive, "r:gz") as tar:
                    tar.extractall(folder, filter="data")
                archive.unlink()
                (folder / CIFAR_LAYOUT["cifar10"]["folder"] / member).write_bytes(payload)
            else:
                rewrite_member(archive, member, payload)
            out = folder / "runs"
            argv = ["run", "--dataset", "cifar10", "--data-dir", str(folder), "--epochs", "1", "--quiet",
                    "--out", str(out)]
            refused_naming(argv, member)
            _no_record(out)
        seen["examples"] += 1

    one()
    tally("fuzz-data-files", examples=seen["examples"], format="cifar batch")


def test_truncated_or_garbled_cifar_archives_are_refused_naming_the_file():
    seen = {"examples": 0, "refused": 0, "read": 0}

    @FUZZ
    @given(st.booleans(), st.data())
    def one(truncate, data):
        with Folder() as folder:
            archive = cifar_archive(folder)
            raw = archive.read_bytes()
            if truncate:
                archive.write_bytes(raw[: data.draw(st.integers(0, len(raw) - 1), label="cut")])
            else:
                where = data.draw(st.integers(0, len(raw) - 1), label="where")
                junk = data.draw(st.binary(min_size=1, max_size=8), label="junk")
                archive.write_bytes(raw[:where] + junk + raw[where + len(junk):])
            out = folder / "runs"
            argv = ["data", "show", "--dataset", "cifar10", "--data-dir", str(folder), "--json"]
            if truncate:
                refused_naming(argv, archive.name)
                seen["refused"] += 1
            else:  # junk inside compressed image data may inflate to other pixels: refused, or read
                code, _, err = call(argv)
                assert code in (0, 2), (code, err)
                if code == 2:
                    assert err.startswith("shatter: error: ") and err.count("\n") == 1, err
                    assert archive.name in err, err
                seen["refused" if code else "read"] += 1
            _no_record(out)
        seen["examples"] += 1

    one()
    tally("fuzz-data-files", format="cifar archive", **seen)


def test_archives_that_escaped_before(tmp_path):
    """Found by the fuzzing above: junk inside the compressed stream raised zlib.error (a traceback), and an
    archive cut inside the tar's zero padding read as complete."""
    for name, damage in {"junk": lambda raw: raw[:8501] + b"\x02\x02" + raw[8503:],
                         "cut": lambda raw: raw[:-48]}.items():
        folder = tmp_path / name
        folder.mkdir()
        archive = cifar_archive(folder)
        archive.write_bytes(damage(archive.read_bytes()))
        refused_naming(["data", "show", "--dataset", "cifar10", "--data-dir", str(folder)], archive.name)
