"""The researcher's own data in the catalogue: an .npz file, an image folder, or :class:`~shattering.data.arrays.
ArrayData`, accepted wherever a data set name is, then prepared (Appendix A) and randomized (Section 2.1) as the
built-in data sets are.

- ``path/to/file.npz``: arrays ``x_train``, ``y_train``, ``x_test``, ``y_test`` (optional ``class_names``, or
  ``num_classes`` to keep classes that no example has);
- ``path/to/folder``: ``train/<class>/<image>`` and ``test/<class>/<image>`` (or ``val/``), PNG or JPEG, all one
  size, classes the sorted sub-folder names of ``train/``, read into memory (small data; ImageNet-sized folders
  are streamed instead: ``--dataset imagenet --data-dir DIR``).

A path is registered under its absolute path (so a Ray worker or a later process reads the same file) the first
time it is named (:func:`~shattering.data.catalogue.dataset_info` calls :func:`resolve_path`), and read again when
the file changes. Its run folders are labelled ``<stem>-<digest prefix>``; its run ids cover the digest of its
arrays, not where the file lies. Arrays are registered as ``<name>-<digest prefix>`` and live in this process
only.
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataFormatError, DataNotFoundError
from .arrays import SPLITS, ArrayData, arrays_digest, checked_arrays, user_info
from .catalogue import DATASETS, RESOLVERS, DatasetInfo, dataset_info, register_dataset

TEST_FOLDERS = ("test", "val")
LAYOUT_HINT = "lay it out as DIR/train/<class>/<image>.png and DIR/test/<class>/<image>.png (or DIR/val/)"


def looks_like_path(text: str) -> bool:
    """Whether a data set name is meant as a path: it has a folder separator, starts with ``~`` or ``.``, or
    ends in ``.npz``."""
    return "/" in text or os.sep in text or text.startswith(("~", ".")) or text.lower().endswith(".npz")


def from_path(info: DatasetInfo) -> bool:
    """Whether ``info`` is a user data set read from a path (registered under its absolute path)."""
    return info.kind == "arrays" and info.extra.get("stamp") is not None


def in_memory(name: str) -> bool:
    """Whether data set ``name`` is arrays that exist in this process only (:class:`ArrayData`)."""
    info = DATASETS.get(name)
    return info is not None and info.kind == "arrays" and info.extra.get("stamp") is None


def not_shippable(name: str, where: str) -> str:
    """The one sentence refusing to send in-memory arrays to ``where`` (another process)."""
    label = name.rsplit("-", 1)[0]
    return (f"The data set {name} is arrays held in this process, which {where} cannot read; save them with "
            f"numpy.savez('{label}.npz', x_train=..., y_train=..., x_test=..., y_test=...) and pass the file "
            f"(--dataset {label}.npz, or dataset='{label}.npz') instead.")


def dataset_key(value) -> str:
    """The catalogue name of a data set value: an :class:`ArrayData` is registered and gives its name, a path
    (str or ``os.PathLike``) is registered and gives its absolute path, a name is itself. Anything else comes back
    unchanged, for the config's type check to refuse."""
    if isinstance(value, ArrayData):
        return register_arrays(value)
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        return value
    info = resolve_path(value)
    return info.name if info is not None else value


def dataset_label(name: str) -> str:
    """The short, safe name a run folder starts with: the data set's name, or for a path ``<stem>-<digest>``."""
    return dataset_info(name).extra.get("label", name)


def register_arrays(data: ArrayData) -> str:
    """Register ``data`` (once; the same arrays again reuse the entry) and return its name."""
    name = data.dataset_name
    known = DATASETS.get(name)
    if known is None:
        register_dataset(data.info())
    elif known.extra.get("digest") != data.digest:
        raise ConfigError(f"A different data set is registered as {name!r} already; give the ArrayData another "
                          "name.")
    return name


def resolve_path(name: str) -> DatasetInfo | None:
    """The :class:`DatasetInfo` of a path (registered, or read again when its files changed), or None when
    ``name`` is not meant as a path (a registered name, or an unknown one that names nothing on disk)."""
    known = DATASETS.get(name)
    if known is not None and not from_path(known):
        return None
    if known is None and not looks_like_path(name) and not os.path.exists(name):
        return None
    path = Path(os.path.abspath(os.path.expanduser(name)))
    if not path.exists():
        raise DataNotFoundError(f"The data set path {path} does not exist; pass an existing .npz file or image "
                                f"folder ({LAYOUT_HINT}), or a data set name.")
    key, stamp = str(path), files_stamp(path)
    known = DATASETS.get(key)
    if known is not None and known.extra.get("stamp") == stamp:
        return known
    if path.is_dir():
        arrays, class_names = read_image_folder(path)
    elif path.suffix.lower() == ".npz":
        arrays, class_names = read_npz(path)
    else:
        raise DataFormatError(f"{path} is neither an .npz file nor a folder; save the arrays with numpy.savez "
                              f"into a file ending in .npz, or {LAYOUT_HINT}.")
    digest = arrays_digest(arrays, class_names)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem if path.is_file() else path.name).strip("-.") or "data"
    info = user_info(key, f"{path.name} ({key})", arrays, class_names, label=f"{stem}-{digest[:8]}", source=key,
                     digest=digest, stamp=stamp)
    DATASETS.pop(key, None)  # the files changed since they were read
    return register_dataset(info)


def files_stamp(path: Path) -> str:
    """What changes when a file or the files under a folder change: their names, sizes and modification times."""
    h = hashlib.blake2b(digest_size=16)
    if path.is_file():
        st = path.stat()
        h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
        return h.hexdigest()
    for folder, dirs, files in os.walk(path):
        dirs.sort()
        for f in sorted(files):
            name = os.path.join(folder, f)
            try:
                st = os.stat(name)
            except OSError:  # a dangling link, or a file removed while the folder is walked: stamped as missing
                h.update(f"{os.path.relpath(name, path)}:missing\n".encode())
                continue
            h.update(f"{os.path.relpath(name, path)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def read_npz(path: Path) -> tuple[dict, tuple[str, ...]]:
    """The checked arrays of an .npz file and its class names."""
    save = "save the arrays with numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)"
    try:
        zipped = zipfile.is_zipfile(path)
    except OSError as exc:
        raise DataFormatError(f"{path} could not be read ({exc.strerror or exc}); check the file.") from None
    if not zipped:  # numpy would try it as a pickle and advise allow_pickle=True: never right for data
        raise DataFormatError(f"{path} is not an .npz file (an .npz is a zip archive, and this file is not one); "
                              f"{save}.")
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataFormatError(f"{path} is not a readable .npz file ({type(exc).__name__}); {save}.") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise DataFormatError(f"{path} holds one array, not the arrays {', '.join(SPLITS)}; save them with "
                              "numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...).")
    with z:
        missing = [k for k in SPLITS if k not in z.files]
        if missing:
            raise DataFormatError(f"{path} lacks the array(s) {', '.join(missing)}; save x_train, y_train, x_test "
                                  "and y_test in it (numpy.savez(path, x_train=..., y_train=..., x_test=..., "
                                  "y_test=...)).")
        try:
            arrays = {k: z[k] for k in SPLITS}
            class_names = z["class_names"] if "class_names" in z.files else None
            num_classes = z["num_classes"] if "num_classes" in z.files else None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # object arrays, damaged members
            raise DataFormatError(f"{path} holds an array that cannot be read without pickles ({exc}); save "
                                  "numeric arrays (and class_names as strings) with numpy.savez.") from None
    return checked_arrays(arrays, class_names, where=f"{path}:", num_classes=num_classes)


def _subfolders(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def _decode(path: Path) -> np.ndarray:
    """One image as uint8, H x W (grey) or H x W x 3."""
    from .image_folder import _pil  # here: it imports torch, and the config imports this module

    image = _pil()
    try:
        with image.open(path) as img:
            grey = img.mode in ("1", "L")
            return np.asarray(img.convert("L" if grey else "RGB"), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as exc:
        raise DataFormatError(f"{path} is not a readable image ({exc}); remove it or replace it.") from None


def read_image_folder(root: Path) -> tuple[dict, tuple[str, ...]]:
    """The images of ``root/train/<class>/`` and ``root/test/<class>/`` (or ``val/``) as checked arrays, and the
    class names (the sorted sub-folders of ``train/``)."""
    from .image_folder import IMAGE_SUFFIXES  # here: it imports torch, and the config imports this module

    test = next((root / t for t in TEST_FOLDERS if (root / t).is_dir()), None)
    if not (root / "train").is_dir() or test is None:
        raise DataFormatError(f"The folder {root} holds no train/ and test/ (or val/) sub-folders; "
                              f"{LAYOUT_HINT.replace('DIR', str(root))}, or pass an .npz file.")
    classes = _subfolders(root / "train")
    if not classes:
        raise DataFormatError(f"{root / 'train'} has no class sub-folders; {LAYOUT_HINT.replace('DIR', str(root))}.")
    unknown = sorted(set(_subfolders(test)) - set(classes))
    if unknown:
        raise DataFormatError(f"{test} has class folders that train/ lacks ({', '.join(unknown[:5])}); both splits "
                              "need the same class names.")
    images, labels, files = {}, {}, []
    for split, folder in (("train", root / "train"), ("test", test)):
        xs, ys = [], []
        for i, c in enumerate(classes):
            if not (folder / c).is_dir():
                continue
            for name in sorted(os.listdir(folder / c)):
                if name.lower().endswith(IMAGE_SUFFIXES) and (folder / c / name).is_file():
                    files.append(folder / c / name)
                    xs.append(_decode(files[-1]))
                    ys.append(i)
        if not xs:
            raise DataFormatError(f"{folder} holds no PNG or JPEG images in its class folders; "
                                  f"{LAYOUT_HINT.replace('DIR', str(root))}.")
        images[split], labels[split] = xs, ys
    every = images["train"] + images["test"]
    first = every[0].shape[:2]
    for path, x in zip(files, every, strict=True):
        if x.shape[:2] != first:
            raise DataFormatError(f"The images in {root} are not all one size: {files[0]} is {first[1]}x{first[0]} "
                                  f"and {path} is {x.shape[1]}x{x.shape[0]}; resize them to one size.")
    colour = any(x.ndim == 3 for x in every)
    arrays = {}
    for split in ("train", "test"):
        xs = [np.repeat(x[:, :, None], 3, axis=2) if colour and x.ndim == 2 else x for x in images[split]]
        stacked = np.stack(xs)
        arrays[f"x_{split}"] = stacked.transpose(0, 3, 1, 2) if colour else stacked[:, None]
        arrays[f"y_{split}"] = np.asarray(labels[split], dtype=np.int64)
    return checked_arrays(arrays, classes if len(classes) >= 2 else None, where=f"{root}: ")


RESOLVERS.append(resolve_path)
