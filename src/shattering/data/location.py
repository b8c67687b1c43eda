"""Where a data set's files are found on disk, and fetched when they are not.

Files are looked for in this order: an explicit ``data_dir``; the cache (``$SHATTERING_DATA``, else the
user cache directory); known system locations (Debian's ``dataset-fashion-mnist`` package); else they are
downloaded from the official URLs into the cache, checksum-verified. ``SHATTERING_NO_DOWNLOAD=1`` turns the
last step off. Image folders (ImageNet, Table 2 and Appendix B) cannot be downloaded: they are only found.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from ..errors import ConfigError, DataNotFoundError, DownloadError
from . import download as dl
from .catalogue import DATASETS, DatasetInfo, dataset_info
from .formats import CIFAR_LAYOUT, IDX_FILES


def cache_dir() -> Path:
    """Where downloaded data lives: ``$SHATTERING_DATA``, else the user cache directory."""
    env = os.environ.get("SHATTERING_DATA")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("shattering")) / "data"


def downloads_allowed() -> bool:
    return os.environ.get("SHATTERING_NO_DOWNLOAD", "").lower() not in ("1", "true", "yes")


def idx_files_in(folder: Path) -> dict[str, Path] | None:
    """The four IDX files (gzipped or not) in ``folder`` by their published name, or None if one is missing."""
    found = {}
    for name in IDX_FILES:
        for candidate in (folder / name, folder / name[: -len(".gz")]):
            if candidate.is_file():
                found[name] = candidate
                break
        else:
            return None
    return found


def _cifar_in(folder: Path, info: DatasetInfo) -> Path | None:
    layout = CIFAR_LAYOUT[info.name]
    if (folder / layout["meta"]).is_file() and (folder / layout["train"][0]).is_file():
        return folder  # the extracted folder itself (torchvision's cifar-10-batches-py/, cifar-100-python/)
    extracted = folder / layout["folder"]
    if extracted.is_dir():
        return extracted
    archive = folder / info.files[0].name
    return archive if archive.is_file() else None


def files_in(folder: Path, info: DatasetInfo) -> dict[str, Path] | Path | None:
    """What of ``info``'s files ``folder`` holds: the IDX files, the CIFAR archive or folder, the image folder
    itself; None when it holds them not."""
    if not folder.is_dir():
        return None
    if info.kind == "image-folder":
        return folder if (folder / "train").is_dir() and (folder / "val").is_dir() else None
    if info.kind == "idx":
        return idx_files_in(folder)
    if info.kind == "cifar":
        return _cifar_in(folder, info)
    return None


# Where torchvision keeps a data set under its root folder (``torchvision.datasets.MNIST(root)``: root/MNIST/raw/),
# so that a user's existing downloads are found under --data-dir. CIFAR's extracted folder
# (root/cifar-10-batches-py/) is the official archive's, found in every folder searched.
TORCHVISION_FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


def candidate_dirs(info: DatasetInfo, data_dir: str | Path | None = None) -> list[Path]:
    """The folders searched for ``info``'s files, in order: under ``data_dir``, the folder itself, the data set's
    name and torchvision's layout (``MNIST/raw``; ``raw`` when ``data_dir`` is torchvision's ``MNIST`` folder)."""
    if data_dir is not None:
        data_dir = Path(data_dir).expanduser()
        dirs = [data_dir, data_dir / info.name]
        tv = TORCHVISION_FOLDERS.get(info.name)
        if tv is not None:
            dirs.append(data_dir / "raw" if data_dir.name == tv else data_dir / tv / "raw")
        return dirs
    return [cache_dir() / info.name, *(Path(d) for d in info.system_dirs)]


def expected_files(info: DatasetInfo) -> list[str]:
    if info.kind == "image-folder":
        return ["train/<class>/<image>.JPEG and val/<class>/<image>.JPEG (one sub-folder per class, the same "
                "class names in both; JPEG or PNG)"]
    if info.kind == "cifar":
        return [f"{info.files[0].name} (or its extracted folder {CIFAR_LAYOUT[info.name]['folder']}/)"]
    return list(IDX_FILES)


def locate(info: DatasetInfo, data_dir: str | Path | None = None) -> tuple[Path | None, dict[str, Path] | Path | None]:
    """Return ``(folder, found)`` for the first folder holding the files, or ``(None, None)``."""
    for folder in candidate_dirs(info, data_dir):
        found = files_in(folder, info)
        if found:
            return folder, found
    return None, None


def locate_image_folder(name: str, data_dir: str | Path | None = None) -> Path:
    """The folder holding ``train/`` and ``val/`` for data set ``name``, or one sentence saying what to do."""
    info = dataset_info(name)
    for folder in candidate_dirs(info, data_dir):
        if (folder / "train").is_dir() and (folder / "val").is_dir():
            return folder
    raise DataNotFoundError(missing_image_folder_message(info, data_dir))


def fetch(name: str, data_dir: str | Path | None = None, progress: bool = True) -> Path:
    """Download data set ``name`` (checksummed, atomic) into ``data_dir`` or the cache; return the folder."""
    info = dataset_info(name)
    if info.kind == "image-folder":
        raise ConfigError(f"{info.title} cannot be downloaded by shattering (its licence requires registration at "
                          f"{info.homepage}); {folder_layout_hint(info)}")
    if info.kind == "arrays":
        raise ConfigError(f"{name} needs no download: it is your own data, read from {info.extra['source']}.")
    if not info.downloadable:
        raise ConfigError(f"{name} needs no download: it is {'bundled' if info.kind == 'sklearn' else 'generated'}.")
    folder = Path(data_dir).expanduser() if data_dir is not None else cache_dir() / info.name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"Could not create {folder} ({exc.strerror}); choose another --data-dir.") from None
    for remote in info.files:
        target = folder / remote.name
        if target.is_file() and dl.md5sum(target) == remote.md5:
            continue
        dl.download(remote.urls, target, remote.md5, progress=progress)
    if info.kind == "cifar":
        dl.extract_tar(folder / info.files[0].name, folder, CIFAR_LAYOUT[info.name]["folder"])
    return folder


def folder_layout_hint(info: DatasetInfo) -> str:
    """How to lay out an image-folder data set so that it is found."""
    return (f"put the images in a folder DIR laid out as DIR/train/<class>/<image>.JPEG and "
            f"DIR/val/<class>/<image>.JPEG (one sub-folder per class, the same class names in both; JPEG or PNG) and "
            f"pass --data-dir DIR, or place that folder at {cache_dir() / info.name}.")


def missing_image_folder_message(info: DatasetInfo, data_dir: str | Path | None) -> str:
    """The one sentence for an image-folder data set that is not where it was looked for."""
    looked = ", ".join(str(d) for d in candidate_dirs(info, data_dir))
    where = (f"The data directory {data_dir} does not hold {info.title}" if data_dir is not None
             else f"{info.title} is not on this machine")
    return f"{where} (looked for train/ and val/ in {looked}); {folder_layout_hint(info)}"


def missing_message(info: DatasetInfo, data_dir: str | Path | None, download_failure: str = "") -> str:
    """The one sentence for a data set whose files are not where they were looked for (and, with
    ``download_failure``, could not be downloaded): the files expected, where, and the command that fetches them."""
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
        if info.kind == "arrays":
            rows.append({"name": info.name, "available": True, "location": info.extra["source"]})
            continue
        folder, found = locate(info)
        missing = (f"not found (fetch: shatter data fetch --dataset {info.name})" if info.kind != "image-folder"
                   else "not found (an image folder with train/ and val/; pass --data-dir)")
        rows.append({"name": info.name, "available": folder is not None,
                     "location": str(folder) if folder else missing})
    return rows
