"""Reading a data set into memory (the paper's data of Section 2 and Appendix A, and small stand-ins), one reader
per kind of files: the official IDX and CIFAR files (:mod:`~shattering.data.formats`), scikit-learn's bundled
digits, the generated MNIST-1D and the user's own arrays (kind "arrays", read when they were registered:
:mod:`~shattering.data.user_data`). Image folders (ImageNet) are streamed instead
(:mod:`~shattering.data.image_folder`).

Reads are cached (a few data sets, keyed by where they were read and the files' modification time), and the
arrays returned are read-only: :func:`~shattering.data.dataset.prepare` and the corruptions of Section 2.1
make new arrays, never change these.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ChecksumError, ConfigError, DataFormatError, DataNotFoundError, DownloadError
from .catalogue import DATASETS, DatasetInfo, dataset_info
from .formats import IDX_FILES, read_cifar, read_idx
from .location import downloads_allowed, fetch, files_in, idx_files_in, locate, missing_message


@dataclass(eq=False)
class RawData:
    """A data set as read from its files: integer or float pixels (N, C, H, W) and int64 labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    location: str  # where it was read from


def read_idx_set(info: DatasetInfo, files: dict[str, Path]) -> dict:
    """The four IDX files of ``info`` as ``x_train``, ``y_train``, ``x_test``, ``y_test`` (N, 1, H, W), checked."""
    arrays = {key: read_idx(files[name]) for key, name in
              zip(("x_train", "y_train", "x_test", "y_test"), IDX_FILES, strict=True)}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        xname, yname = files[IDX_FILES[0 if split == "train" else 2]], files[IDX_FILES[1 if split == "train" else 3]]
        if x.ndim != 3 or x.dtype != np.uint8:
            raise DataFormatError(f"{xname} holds {x.dtype} of shape {list(x.shape)}; expected uint8 images N x H x W.")
        if y.ndim != 1 or len(y) != len(x):
            raise DataFormatError(f"{yname} holds {len(y)} labels for the {len(x)} images of {xname}.")
        if y.size and (int(y.min()) < 0 or int(y.max()) >= info.num_classes):
            raise DataFormatError(
                f"{yname} has labels in [{int(y.min())}, {int(y.max())}], outside the {info.num_classes} classes."
            )
        arrays[f"x_{split}"] = x[:, None, :, :]
        arrays[f"y_{split}"] = y.astype(np.int64)
    return arrays


def read_digits() -> dict:
    """scikit-learn's 8x8 digits, split 80/20 stratified (values 0..16)."""
    # scikit-learn is slow to import (bench/RESULTS.md): only when digits are read, not at every command's start-up
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.uint8)[:, None, :, :]  # values 0..16
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target.astype(np.int64), test_size=0.2, stratify=digits.target, random_state=0
    )
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def read_mnist1d() -> dict:
    """MNIST-1D as its package generates it by default (seed 42), as (N, 1, 1, 40) float32 signals."""
    # mnist1d imports scipy and takes about 1 s: only when MNIST-1D is generated, not at start-up
    from mnist1d.data import get_dataset_args, make_dataset

    state = np.random.get_state()  # mnist1d seeds numpy's global RNG; leave the caller's untouched
    try:
        ds = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(state)
    return {
        "x_train": ds["x"].astype(np.float32)[:, None, None, :],
        "y_train": ds["y"].astype(np.int64),
        "x_test": ds["x_test"].astype(np.float32)[:, None, None, :],
        "y_test": ds["y_test"].astype(np.int64),
    }


@functools.lru_cache(maxsize=4)
def _read_cached(name: str, location: str, stamp: float) -> RawData:
    info = DATASETS[name]
    if info.kind == "sklearn":
        arrays = read_digits()
    elif info.kind == "generated":
        arrays = read_mnist1d()
    elif info.kind == "idx":
        arrays = read_idx_set(info, idx_files_in(Path(location)))
    else:
        arrays = read_cifar(location, name)
    names = tuple(arrays.pop("class_names", info.class_names))
    for key in ("x_train", "x_test", "y_train", "y_test"):
        arrays[key].setflags(write=False)
    return RawData(name=name, class_names=names, location=location, **arrays)


def load_raw(name: str, data_dir: str | Path | None = None, download: bool | None = None,
             progress: bool = True) -> RawData:
    """Read data set ``name`` from its files, downloading it first when allowed and needed.

    Raises :class:`DataNotFoundError` naming the files expected, where they were looked for and the command
    that fetches them.
    """
    info = dataset_info(name)
    if info.kind == "image-folder":
        raise ConfigError(f"{info.title} is streamed from disk, not loaded into memory: train on it with "
                          "shattering.run (or `shatter run --dataset imagenet --data-dir DIR`).")
    if info.kind == "sklearn":
        return _read_cached(name, "bundled with scikit-learn", 0.0)
    if info.kind == "generated":
        return _read_cached(name, "generated by the mnist1d package (seed 42)", 0.0)
    if info.kind == "arrays":  # the user's data, checked and made read-only when registered
        return RawData(name=name, class_names=info.class_names, location=info.extra["source"],
                       **info.extra["arrays"])
    folder, found = locate(info, data_dir)
    if folder is None and data_dir is None and (download if download is not None else downloads_allowed()):
        try:
            folder = fetch(name, progress=progress)
        except (DownloadError, ChecksumError) as exc:
            raise DataNotFoundError(missing_message(info, data_dir, str(exc))) from None
        found = files_in(folder, info)
    if folder is None or not found:
        raise DataNotFoundError(missing_message(info, data_dir))
    location = found if isinstance(found, Path) else folder
    stamp = max(p.stat().st_mtime for p in ([found] if isinstance(found, Path) else found.values()))
    return _read_cached(name, str(location), stamp)
