"""Tests for `shattering/data/download.py` and data/location.py's fetch, against a local HTTP server on 127.0.0.1
serving archives in the official formats (the real sites are unreachable from CI)."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import threading

import numpy as np
import pytest

from shattering.cli import main
from shattering.data import catalogue, location
from shattering.data.dataset import load_dataset
from shattering.data.download import download, extract_tar
from shattering.data.formats import write_cifar_archive, write_idx
from shattering.errors import ChecksumError, DataFormatError, DataNotFoundError, DownloadError

RNG = np.random.default_rng(1)


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    cut: set[str] = set()

    def do_GET(self):  # noqa: N802
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path in self.cut:  # the connection dies half-way through the file
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    handler = type("H", (_Handler,), {"files": {}, "cut": set()})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_download_verifies_and_places_atomically(server, tmp_path):
    handler, base = server
    handler.files["/a.bin"] = payload = RNG.bytes(300_000)
    dest = download([f"{base}/a.bin"], tmp_path / "a.bin", _md5(payload), progress=False)
    assert dest.read_bytes() == payload
    assert not (tmp_path / "a.bin.part").exists()


def test_download_falls_back_to_the_next_mirror(server, tmp_path):
    handler, base = server
    handler.files["/b.bin"] = payload = b"x" * 1000
    download([f"{base}/missing", f"{base}/b.bin"], tmp_path / "b.bin", _md5(payload), progress=False)
    assert (tmp_path / "b.bin").read_bytes() == payload


def test_checksum_mismatch_removes_the_partial_file(server, tmp_path):
    handler, base = server
    handler.files["/c.bin"] = b"not what was published"
    with pytest.raises(ChecksumError, match="MD5"):
        download([f"{base}/c.bin"], tmp_path / "c.bin", "0" * 32, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_connection_cut_mid_file_leaves_nothing(server, tmp_path):
    handler, base = server
    handler.files["/d.bin"] = payload = RNG.bytes(2_000_000)
    handler.cut.add("/d.bin")
    with pytest.raises(DownloadError, match="cut"):
        download([f"{base}/d.bin"], tmp_path / "d.bin", _md5(payload), progress=False)
    assert list(tmp_path.iterdir()) == []


def _serve_cifar(handler, base, tmp_path, monkeypatch, n_train=60, n_test=20):
    x_train = RNG.integers(0, 256, size=(n_train, 3, 32, 32), dtype=np.uint8)
    x_test = RNG.integers(0, 256, size=(n_test, 3, 32, 32), dtype=np.uint8)
    y_train, y_test = np.arange(n_train) % 10, np.arange(n_test) % 10
    archive = write_cifar_archive(tmp_path / "src.tar.gz", "cifar10", x_train, y_train, x_test, y_test)
    body = archive.read_bytes()
    handler.files["/cifar-10-python.tar.gz"] = body
    info = catalogue.DATASETS["cifar10"]
    remote = catalogue.RemoteFile("cifar-10-python.tar.gz", _md5(body), (f"{base}/cifar-10-python.tar.gz",))
    monkeypatch.setitem(catalogue.DATASETS, "cifar10", dataclasses.replace(info, files=(remote,)))
    return x_train, y_train


def test_fetch_cifar_then_load_it(server, tmp_path, monkeypatch):
    handler, base = server
    x_train, y_train = _serve_cifar(handler, base, tmp_path, monkeypatch)
    folder = location.fetch("cifar10", progress=False)
    assert (folder / "cifar-10-batches-py" / "data_batch_1").is_file()
    assert not list(folder.glob(".cifar*"))  # no leftover temporary extraction folder
    data = load_dataset("cifar10", progress=False)
    assert data.shape == (3, 28, 28) and data.n_train == len(x_train)
    assert np.array_equal(data.y_train, y_train)


@pytest.mark.parametrize("damage", ["truncate", "corrupt"])
def test_damaged_archive_is_one_sentence_and_leaves_nothing(tmp_path, damage):
    x = (np.arange(40 * 3 * 32 * 32) % 7).astype(np.uint8).reshape(40, 3, 32, 32)  # compressible: real deflate
    archive = write_cifar_archive(tmp_path / "c.tar.gz", "cifar10", x, np.arange(40) % 10, x[:10], np.arange(10))
    body = bytearray(archive.read_bytes())
    if damage == "truncate":
        body = body[: len(body) // 2]
    else:  # flip bytes inside the deflate stream: zlib.error, not a tarfile error
        for i in range(len(body) // 3, len(body) // 3 + 64):
            body[i] ^= 0x5A
    archive.write_bytes(bytes(body))
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(DataFormatError, match="truncated or damaged, delete it and fetch it again"):
        extract_tar(archive, dest, "cifar-10-batches-py")
    assert list(dest.iterdir()) == []  # no half-extracted folder, no temporary one


def test_load_downloads_on_demand_when_allowed(server, tmp_path, monkeypatch):
    handler, base = server
    _serve_cifar(handler, base, tmp_path, monkeypatch)
    monkeypatch.setenv("SHATTERING_NO_DOWNLOAD", "0")
    assert load_dataset("cifar10", progress=False).n_test == 20


def test_fetch_cli_reports_a_cut_connection(server, tmp_path, monkeypatch, capsys):
    handler, base = server
    _serve_cifar(handler, base, tmp_path, monkeypatch)
    handler.cut.add("/cifar-10-python.tar.gz")
    assert main(["data", "fetch", "--dataset", "cifar10"]) == 2
    assert "cut" in capsys.readouterr().err
    assert not list((location.cache_dir() / "cifar10").glob("*.tar.gz*"))


def test_missing_data_names_files_places_and_fetch_command(capsys):
    assert main(["data", "show", "--dataset", "cifar10"]) == 2
    err = capsys.readouterr().err
    assert "cifar-10-python.tar.gz" in err and "shatter data fetch --dataset cifar10" in err
    assert err.count("\n") == 1  # one sentence, no traceback


def test_wrong_data_dir_is_reported(tmp_path):
    (tmp_path / "junk.txt").write_text("nothing here")
    with pytest.raises(DataNotFoundError, match="does not hold MNIST"):
        load_dataset("mnist", data_dir=tmp_path)


def test_idx_data_dir_with_official_names(tmp_path):
    n, m = 50, 20
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", RNG.integers(0, 256, (m, 28, 28), dtype=np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", (np.arange(m) % 10).astype(np.uint8))
    data = load_dataset("mnist", data_dir=tmp_path)
    assert (data.n_train, data.n_test, data.shape) == (n, m, (1, 28, 28))


def test_idx_labels_outside_range_name_the_file(tmp_path):
    n = 10
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((n, 28, 28), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.full(n, 11, np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((n, 28, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(n, np.uint8))
    with pytest.raises(Exception, match="train-labels-idx1-ubyte.gz.*outside the 10 classes"):
        load_dataset("mnist", data_dir=tmp_path)
