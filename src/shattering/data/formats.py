"""The official file formats of the image data sets, read (and, for tests, written) directly.

- IDX (MNIST, Fashion-MNIST): http://yann.lecun.com/exdb/mnist/ -- a big-endian header
  ``0x00 0x00 <dtype code> <ndim>``, then ``ndim`` 32-bit sizes, then the values; usually gzipped.
- CIFAR-10/100 "python version": pickled dicts inside the official ``.tar.gz``
  (https://www.cs.toronto.edu/~kriz/cifar.html); ``data`` is uint8 of shape (N, 3072), the 1024 red,
  then green, then blue values of a 32x32 image in row-major order.

Readers validate everything they read and name the file in every error (a truncated archive, a wrong
magic number, a pickle of the wrong shape, labels outside the class range).
"""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataFormatError

# The four files of an IDX data set (MNIST, Fashion-MNIST), as published: training images and labels, then test.
IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

# IDX type codes -> big-endian numpy dtypes.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {v.newbyteorder("="): k for k, v in _IDX_DTYPES.items()}


def _open_maybe_gzip(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:  # zlib.error: a damaged deflate stream
            raise DataFormatError(
                f"{path} is a damaged or truncated gzip file ({exc}); delete it and fetch it again."
            ) from None
    return raw


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a native-endian numpy array."""
    path = Path(path)
    buf = _open_maybe_gzip(path)
    if len(buf) < 4 or buf[0] != 0 or buf[1] != 0 or buf[2] not in _IDX_DTYPES:
        raise DataFormatError(
            f"{path} is not an IDX file (wrong magic number {buf[:4].hex() or 'empty'}); "
            "expected the MNIST/Fashion-MNIST format from the official site."
        )
    dtype, ndim = _IDX_DTYPES[buf[2]], buf[3]
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise DataFormatError(f"{path} is truncated inside its IDX header; delete it and fetch it again.")
    shape = tuple(int(s) for s in np.frombuffer(buf, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(buf) != expected:
        raise DataFormatError(
            f"{path} holds {len(buf)} bytes but its IDX header {list(shape)} promises {expected}; "
            "the file is truncated or damaged, delete it and fetch it again."
        )
    return np.frombuffer(buf, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file (gzipped when the name ends in ``.gz``). Used by tests and tools."""
    path = Path(path)
    array = np.ascontiguousarray(array)
    code = _IDX_CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"IDX cannot store dtype {array.dtype}.")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + array.astype(_IDX_DTYPES[code]).tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        payload = gzip.compress(payload, mtime=0)
    path.write_bytes(payload)
    return path


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles only what the CIFAR batches contain: dicts, lists, bytes and numpy arrays."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):  # noqa: D102
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a CIFAR batch")


def _load_pickle(data: bytes, where: str) -> dict:
    try:
        obj = _CifarUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # any unpickling failure means a damaged or foreign file
        raise DataFormatError(f"{where} is not a CIFAR python batch ({exc}); fetch the data set again.") from None
    if not isinstance(obj, dict):
        raise DataFormatError(f"{where} is not a CIFAR python batch (it holds a {type(obj).__name__}).")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _batch_arrays(batch: dict, label_key: str, num_classes: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    if "data" not in batch or label_key not in batch:
        raise DataFormatError(f"{where} lacks the '{label_key}' or 'data' entry of a CIFAR batch.")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataFormatError(
            f"{where} holds images of shape {list(data.shape)} and dtype {data.dtype}; "
            "a CIFAR batch has uint8 rows of 3072 values (3x32x32)."
        )
    if labels.shape != (data.shape[0],):
        raise DataFormatError(f"{where} has {labels.size} labels for {data.shape[0]} images.")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataFormatError(
            f"{where} has labels in [{labels.min()}, {labels.max()}], outside the {num_classes} classes."
        )
    return data.reshape(-1, 3, 32, 32), labels


# Member names inside the official archives, relative to their top folder.
CIFAR_LAYOUT = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "meta": "batches.meta",
        "label_key": "labels",
        "names_key": "label_names",
        "classes": 10,
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "meta": "meta",
        "label_key": "fine_labels",
        "names_key": "fine_label_names",
        "classes": 100,
    },
}


def read_cifar(source: str | Path, variant: str) -> dict:
    """Read CIFAR-10 or CIFAR-100 from the official ``.tar.gz`` or from its extracted folder.

    Returns a dict with ``x_train`` (uint8, N x 3 x 32 x 32), ``y_train``, ``x_test``, ``y_test`` and
    ``class_names``.
    """
    layout = CIFAR_LAYOUT[variant]
    source = Path(source)
    members: dict[str, bytes] = {}
    wanted = [*layout["train"], *layout["test"], layout["meta"]]
    if source.is_dir():
        for name in wanted:
            path = source / name
            if not path.is_file():
                raise DataFormatError(f"{source} lacks the CIFAR batch file '{name}'; fetch the data set again.")
            members[name] = path.read_bytes()
    else:
        try:
            with tarfile.open(source, "r:gz") as tar:
                for info in tar.getmembers():
                    short = info.name.split("/", 1)[-1]
                    if short in wanted and info.isfile():
                        members[short] = tar.extractfile(info).read()
                # read to the end of the gzip stream: its CRC and length catch a cut in the tar's zero padding,
                # which tarfile alone takes for the end of the archive
                while tar.fileobj.read(1 << 20):
                    pass
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:  # zlib.error: damaged compressed bytes
            raise DataFormatError(
                f"{source} is not a readable CIFAR archive ({exc}); it is truncated or damaged, "
                "delete it and fetch it again."
            ) from None
        missing = [n for n in wanted if n not in members]
        if missing:
            raise DataFormatError(f"{source} lacks the CIFAR batch files {missing}; fetch the data set again.")

    def split(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        parts = [
            _batch_arrays(_load_pickle(members[n], f"{source}:{n}"), layout["label_key"],
                          layout["classes"], f"{source}:{n}")
            for n in names
        ]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    x_train, y_train = split(layout["train"])
    x_test, y_test = split(layout["test"])
    meta = _load_pickle(members[layout["meta"]], f"{source}:{layout['meta']}")
    names = meta.get(layout["names_key"], [str(i) for i in range(layout["classes"])])
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test, "class_names": names}


def write_cifar_archive(path: str | Path, variant: str, x_train: np.ndarray, y_train: np.ndarray,
                        x_test: np.ndarray, y_test: np.ndarray, class_names: list[str] | None = None) -> Path:
    """Write a CIFAR archive in the official layout (pickled dicts with bytes keys, protocol 2).

    Used by tests to exercise the real reader and downloader without the real (unreachable) files.
    """
    layout = CIFAR_LAYOUT[variant]
    path = Path(path)
    class_names = class_names or [f"class{i}" for i in range(layout["classes"])]

    def batch(x: np.ndarray, y: np.ndarray) -> bytes:
        d = {b"data": np.ascontiguousarray(x.reshape(len(x), 3072).astype(np.uint8)),
             layout["label_key"].encode(): [int(v) for v in y], b"batch_label": b"synthetic"}
        return pickle.dumps(d, protocol=2)

    files = {}
    train_chunks = np.array_split(np.arange(len(x_train)), len(layout["train"]))
    for name, idx in zip(layout["train"], train_chunks, strict=True):
        files[name] = batch(x_train[idx], y_train[idx])
    files[layout["test"][0]] = batch(x_test, y_test)
    files[layout["meta"]] = pickle.dumps({layout["names_key"].encode(): [n.encode() for n in class_names]},
                                         protocol=2)
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in files.items():
            info = tarfile.TarInfo(f"{layout['folder']}/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path
