"""The data sets shattering knows by name, where their files live, and how they are read.

Files are looked for in this order: an explicit ``data_dir``; the cache (``$SHATTERING_DATA``, else the
user cache directory); known system locations (Debian's ``dataset-fashion-mnist`` package); else they are
downloaded from the official URLs into the cache, checksum-verified. ``SHATTERING_NO_DOWNLOAD=1`` turns the
last step off.

Each data set carries its own defaults: the paper's preprocessing (pixels / 255, centre crop 32 -> 28 and
per-image whitening for CIFAR, Appendix A) and a learning-rate schedule. The paper's schedule (x0.95 per
epoch) is the default only for the paper's data (CIFAR); on other data it stalls before random labels are
fit (measured in ``anchors.md`` section 8), so those default to a constant learning rate. Every run states
the schedule it used.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataFormatError, DataNotFoundError
from . import download as dl
from .formats import CIFAR_LAYOUT, read_cifar, read_idx


@dataclass(frozen=True)
class RemoteFile:
    """One published file: its name, MD5 and the URLs it can be fetched from (tried in order)."""

    name: str
    md5: str
    urls: tuple[str, ...]


@dataclass(frozen=True)
class DatasetInfo:
    """What shattering knows about a data set before reading it."""

    name: str
    title: str
    shape: tuple[int, int, int]  # (C, H, W) as stored in the files
    class_names: tuple[str, ...]
    n_train: int  # official sizes
    n_test: int
    kind: str  # "idx", "cifar", "sklearn", "generated" or "image-folder" (streamed from disk: imagenet)
    files: tuple[RemoteFile, ...] = ()
    system_dirs: tuple[str, ...] = ()
    pixel_scale: float = 255.0  # raw values are divided by this (the paper: 255)
    crop: int | None = None  # default centre crop (the paper: 28 for CIFAR)
    whitening: str = "per-image"  # default whitening (the paper: TensorFlow's per_image_whitening)
    lr_decay: float = 1.0  # default per-epoch learning-rate multiplier
    # Models whose default decay differs from ``lr_decay`` on this data set: {model: decay}.
    lr_decay_by_model: dict = field(default_factory=dict, compare=False, hash=False)
    epochs: int = 200  # default epoch budget
    paper_data: bool = False  # the paper trained on this data set (its recipe is the default)
    schedule_note: str = ""
    homepage: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def default_lr_decay(self, model: str) -> float:
        """The per-epoch learning-rate multiplier a run of ``model`` gets on this data set by default."""
        return self.lr_decay_by_model.get(model, self.lr_decay)

    def schedule_reason(self, model: str) -> str:
        """Why ``model`` gets its default schedule on this data set (printed with every run)."""
        return _DECAY_NOTE if model in self.lr_decay_by_model else self.schedule_note

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def downloadable(self) -> bool:
        return bool(self.files)


_MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                  "https://storage.googleapis.com/cvdf-datasets/mnist/",
                  "http://yann.lecun.com/exdb/mnist/")
_FASHION_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/")
IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def _idx_files(mirrors: tuple[str, ...], md5s: tuple[str, ...]) -> tuple[RemoteFile, ...]:
    return tuple(RemoteFile(name, md5, tuple(m + name for m in mirrors))
                 for name, md5 in zip(IDX_FILES, md5s, strict=True))


_CONSTANT_NOTE = ("constant: the paper's x0.95 per epoch leaves lr0 0.01 a budget lr0/(1-decay) of 0.2, which "
                  "stalls before random labels are fit on this data (anchors.md section 8)")
_DECAY_NOTE = ("the paper's x0.95 per epoch: with lr0 0.1 its budget of 2.0 fits random labels on this data, where "
               "a constant 0.1 does not settle (anchors.md section 8)")
# The Inceptions start at lr 0.1: the paper's decay leaves them a budget of 2.0, enough to fit random labels on
# small data (anchors.md section 8: 1,000 Fashion-MNIST images fit at epoch 28), and they need the decay to settle.
_INCEPTION_DECAY = {"inception-small": 0.95, "inception-small-nobn": 0.95}

DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in [
        DatasetInfo(
            name="digits", title="scikit-learn digits (bundled, 8x8)", shape=(1, 8, 8),
            class_names=tuple(str(i) for i in range(10)), n_train=1437, n_test=360, kind="sklearn",
            pixel_scale=16.0, epochs=1000, schedule_note=_CONSTANT_NOTE, lr_decay_by_model=_INCEPTION_DECAY,
            homepage="https://scikit-learn.org/stable/datasets/toy_dataset.html#digits-dataset",
        ),
        DatasetInfo(
            name="mnist1d", title="MNIST-1D (generated, 40 samples per signal)", shape=(1, 1, 40),
            class_names=tuple(str(i) for i in range(10)), n_train=4000, n_test=1000, kind="generated",
            pixel_scale=1.0, whitening="none", epochs=1000, schedule_note=_CONSTANT_NOTE,
            lr_decay_by_model=_INCEPTION_DECAY,
            homepage="https://github.com/greydanus/mnist1d",
        ),
        DatasetInfo(
            name="mnist", title="MNIST", shape=(1, 28, 28), class_names=tuple(str(i) for i in range(10)),
            n_train=60000, n_test=10000, kind="idx",
            files=_idx_files(_MNIST_MIRRORS, ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                                              "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c")),
            system_dirs=("/usr/share/datasets/mnist",), epochs=200, schedule_note=_CONSTANT_NOTE,
            lr_decay_by_model=_INCEPTION_DECAY,
            homepage="http://yann.lecun.com/exdb/mnist/",
        ),
        DatasetInfo(
            name="fashion-mnist", title="Fashion-MNIST", shape=(1, 28, 28),
            class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot"),
            n_train=60000, n_test=10000, kind="idx",
            files=_idx_files(_FASHION_MIRRORS, (
                "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310")),
            system_dirs=("/usr/share/datasets/fashion-mnist",), epochs=200, schedule_note=_CONSTANT_NOTE,
            lr_decay_by_model=_INCEPTION_DECAY,
            homepage="https://github.com/zalandoresearch/fashion-mnist",
        ),
        DatasetInfo(
            name="cifar10", title="CIFAR-10", shape=(3, 32, 32),
            class_names=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
            n_train=50000, n_test=10000, kind="cifar",
            files=(RemoteFile("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
                              ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",)),),
            crop=28, lr_decay=0.95, epochs=100, paper_data=True,
            schedule_note="the paper's schedule: x0.95 per epoch (Section 2.1, Appendix A)",
            homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
        ),
        DatasetInfo(
            name="cifar100", title="CIFAR-100", shape=(3, 32, 32),
            class_names=tuple(f"class{i}" for i in range(100)), n_train=50000, n_test=10000, kind="cifar",
            files=(RemoteFile("cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
                              ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",)),),
            crop=28, lr_decay=0.95, epochs=100, paper_data=True,
            schedule_note="the paper's CIFAR schedule: x0.95 per epoch (Section 2.1, Appendix A)",
            homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
        ),
        # ImageNet (Table 2, Appendix B) is streamed from an image folder; it cannot be downloaded (the licence
        # requires registration) and does not fit in memory. See shattering.data.imagenet.
        DatasetInfo(
            name="imagenet", title="ImageNet (ILSVRC 2012, image folder)", shape=(3, 299, 299), class_names=(),
            n_train=1_281_167, n_test=50_000, kind="image-folder", lr_decay=0.94, epochs=100, paper_data=True,
            schedule_note=("x0.94 per epoch [I]: the TensorFlow Inception package the paper reuses decays the "
                           "learning rate x0.16 every 30 epochs, about x0.94 per epoch; the paper gives no value"),
            homepage="https://www.image-net.org/challenges/LSVRC/2012/",
            extra={"image_size": 299},
        ),
    ]
}


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name``, or a :class:`ConfigError` listing the known names."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ConfigError(f"Unknown data set {name!r}; known data sets: {', '.join(DATASETS)}.") from None


def cache_dir() -> Path:
    """Where downloaded data lives: ``$SHATTERING_DATA``, else the user cache directory."""
    env = os.environ.get("SHATTERING_DATA")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("shattering")) / "data"


def downloads_allowed() -> bool:
    return os.environ.get("SHATTERING_NO_DOWNLOAD", "").lower() not in ("1", "true", "yes")


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


# --------------------------------------------------------------------------------------------------
# Locating files
# --------------------------------------------------------------------------------------------------


def _idx_present(folder: Path) -> dict[str, Path] | None:
    found = {}
    for name in IDX_FILES:
        for candidate in (folder / name, folder / name[: -len(".gz")]):
            if candidate.is_file():
                found[name] = candidate
                break
        else:
            return None
    return found


def _cifar_present(folder: Path, info: DatasetInfo) -> Path | None:
    layout = CIFAR_LAYOUT[info.name]
    extracted = folder / layout["folder"]
    if extracted.is_dir():
        return extracted
    archive = folder / info.files[0].name
    return archive if archive.is_file() else None


def _present(folder: Path, info: DatasetInfo):
    if not folder.is_dir():
        return None
    if info.kind == "image-folder":
        return folder if (folder / "train").is_dir() and (folder / "val").is_dir() else None
    if info.kind == "idx":
        return _idx_present(folder)
    if info.kind == "cifar":
        return _cifar_present(folder, info)
    return None


def candidate_dirs(info: DatasetInfo, data_dir: str | Path | None = None) -> list[Path]:
    """The folders searched for ``info``'s files, in order."""
    if data_dir is not None:
        data_dir = Path(data_dir).expanduser()
        return [data_dir, data_dir / info.name]
    return [cache_dir() / info.name, *(Path(d) for d in info.system_dirs)]


def expected_files(info: DatasetInfo) -> list[str]:
    if info.kind == "image-folder":
        return ["train/<class>/<image>.JPEG and val/<class>/<image>.JPEG (one sub-folder per class, the same "
                "class names in both; JPEG or PNG)"]
    if info.kind == "cifar":
        return [f"{info.files[0].name} (or its extracted folder {CIFAR_LAYOUT[info.name]['folder']}/)"]
    return list(IDX_FILES)


def locate(info: DatasetInfo, data_dir: str | Path | None = None):
    """Return ``(folder, found)`` for the first folder holding the files, or ``(None, None)``."""
    for folder in candidate_dirs(info, data_dir):
        found = _present(folder, info)
        if found:
            return folder, found
    return None, None


def fetch(name: str, data_dir: str | Path | None = None, progress: bool = True) -> Path:
    """Download data set ``name`` (checksummed, atomic) into ``data_dir`` or the cache; return the folder."""
    info = dataset_info(name)
    if info.kind == "image-folder":
        raise ConfigError(f"{info.title} cannot be downloaded by shattering (its licence requires registration at "
                          f"{info.homepage}); {_folder_layout_hint(info)}")
    if not info.downloadable:
        raise ConfigError(f"{name} needs no download: it is {'bundled' if info.kind == 'sklearn' else 'generated'}.")
    folder = Path(data_dir).expanduser() if data_dir is not None else cache_dir() / info.name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise dl.DownloadError(f"Could not create {folder} ({exc.strerror}); choose another --data-dir.") from None
    for remote in info.files:
        target = folder / remote.name
        if target.is_file() and dl.md5sum(target) == remote.md5:
            continue
        dl.download(remote.urls, target, remote.md5, progress=progress)
    if info.kind == "cifar":
        dl.extract_tar(folder / info.files[0].name, folder, CIFAR_LAYOUT[info.name]["folder"])
    return folder


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


def _read_idx_set(info: DatasetInfo, files: dict[str, Path]) -> dict:
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


def _read_digits() -> dict:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.uint8)[:, None, :, :]  # values 0..16
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target.astype(np.int64), test_size=0.2, stratify=digits.target, random_state=0
    )
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def _read_mnist1d() -> dict:
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
        arrays = _read_digits()
    elif info.kind == "generated":
        arrays = _read_mnist1d()
    elif info.kind == "idx":
        folder = Path(location)
        arrays = _read_idx_set(info, _idx_present(folder))
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
    folder, found = locate(info, data_dir)
    if folder is None and data_dir is None and (download if download is not None else downloads_allowed()):
        try:
            folder = fetch(name, progress=progress)
        except (dl.DownloadError, dl.ChecksumError) as exc:
            raise DataNotFoundError(_missing_message(info, data_dir, str(exc))) from None
        found = _present(folder, info)
    if folder is None or not found:
        raise DataNotFoundError(_missing_message(info, data_dir, ""))
    location = found if isinstance(found, Path) else folder
    stamp = max(p.stat().st_mtime for p in ([found] if isinstance(found, Path) else found.values()))
    return _read_cached(name, str(location), stamp)


def _folder_layout_hint(info: DatasetInfo) -> str:
    return (f"put the images in a folder DIR laid out as DIR/train/<class>/<image>.JPEG and "
            f"DIR/val/<class>/<image>.JPEG (one sub-folder per class, the same class names in both; JPEG or PNG) and "
            f"pass --data-dir DIR, or place that folder at {cache_dir() / info.name}.")


def missing_image_folder_message(info: DatasetInfo, data_dir) -> str:
    """The one sentence for an image-folder data set that is not where it was looked for."""
    looked = ", ".join(str(d) for d in candidate_dirs(info, data_dir))
    where = (f"The data directory {data_dir} does not hold {info.title}" if data_dir is not None
             else f"{info.title} is not on this machine")
    return f"{where} (looked for train/ and val/ in {looked}); {_folder_layout_hint(info)}"


def _missing_message(info: DatasetInfo, data_dir, download_failure: str) -> str:
    if info.kind == "image-folder":
        return missing_image_folder_message(info, data_dir)
    looked = ", ".join(str(d) for d in candidate_dirs(info, data_dir))
    fetch_cmd = f"shatter data fetch --dataset {info.name}"
    fetch_cmd += f" --data-dir {data_dir}" if data_dir is not None else ""
    if data_dir is not None:
        where = f"The data directory {data_dir} does not hold {info.title}"
    else:
        where = f"{info.title} is not on this machine"
    failed = f" and the download failed ({download_failure})" if download_failure else ""
    return (f"{where} (looked for {', '.join(expected_files(info))} in {looked}){failed}; get it with "
            f"`{fetch_cmd}` on a machine with internet, or copy the files into {candidate_dirs(info, data_dir)[0]}.")


def list_local() -> list[dict]:
    """One row per data set: whether it is available here, and where."""
    rows = []
    for info in DATASETS.values():
        if info.kind == "sklearn":
            rows.append({"name": info.name, "available": True, "location": "bundled with scikit-learn"})
            continue
        if info.kind == "generated":
            rows.append({"name": info.name, "available": True, "location": "generated on demand (mnist1d)"})
            continue
        folder, found = locate(info)
        missing = (f"not found (fetch: shatter data fetch --dataset {info.name})" if info.kind != "image-folder"
                   else "not found (an image folder with train/ and val/; pass --data-dir)")
        rows.append({"name": info.name, "available": folder is not None,
                     "location": str(folder) if folder else missing})
    return rows
