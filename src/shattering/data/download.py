"""Downloads with checksum verification, a progress bar and atomic placement.

A file is streamed to ``<name>.part`` beside its destination, its length and MD5 are checked against the
published values, and only then is it renamed into place; an interrupted or corrupted download removes the
partial file, so nothing that looks complete is ever left behind. Archives are extracted into a temporary
folder that is renamed into place when extraction has finished.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import ChecksumError, DataFormatError, DownloadError
from ..formatting import on_terminal

CHUNK = 1 << 20
TIMEOUT_S = 30.0


def md5sum(path: str | Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _progress(total: int | None, desc: str, show: bool):
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                disable=not show or not on_terminal(), leave=False)  # a bar only on a terminal: no \r in logs


def download(urls: Sequence[str], dest: str | Path, md5: str | None, progress: bool = True) -> Path:
    """Fetch the first of ``urls`` that works into ``dest``, verified against ``md5``.

    Raises :class:`DownloadError` when no URL could be read completely and :class:`ChecksumError` when the
    bytes do not match; in both cases nothing is left at ``dest`` or ``dest.part``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures = []
    for url in urls:
        try:
            _fetch(url, part, progress)
        except (urllib.error.URLError, OSError, DownloadError) as exc:
            part.unlink(missing_ok=True)
            reason = getattr(exc, "reason", exc)
            failures.append(f"{url}: {reason}")
            continue
        if md5 is not None:
            got = md5sum(part)
            if got != md5:
                part.unlink(missing_ok=True)
                raise ChecksumError(
                    f"{url} gave a file with MD5 {got}, not the published {md5}; the partial file was "
                    "removed, try again later or fetch the file by hand."
                )
        os.replace(part, dest)
        return dest
    raise DownloadError(f"could not download {dest.name}: {'; '.join(failures)}")


def _fetch(url: str, part: Path, progress: bool) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "shattering"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        with open(part, "wb") as out, _progress(total, part.name[: -len(".part")], progress) as bar:
            while True:
                try:
                    chunk = response.read(CHUNK)
                except Exception as exc:  # http.client.IncompleteRead and friends
                    raise DownloadError(f"connection cut after {received} bytes ({exc})") from None
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
    if total is not None and received != total:
        raise DownloadError(f"connection cut after {received} of {total} bytes")


def extract_tar(archive: str | Path, dest_dir: str | Path, top: str) -> Path:
    """Extract ``archive`` and place its folder ``top`` at ``dest_dir/top`` atomically.

    The archive is unpacked into a temporary folder beside the destination; only a complete extraction
    is renamed into place.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    final = dest_dir / top
    tmp = Path(tempfile.mkdtemp(prefix=f".{top}.", dir=dest_dir))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(tmp, filter="data")
                else:  # Python < 3.10.12 / 3.11.4
                    tar.extractall(tmp)  # noqa: S202
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise DataFormatError(
                f"{archive} could not be extracted ({exc}); it is truncated or damaged, delete it and fetch "
                "it again."
            ) from None
        if not (tmp / top).is_dir():
            raise DataFormatError(f"{archive} does not contain the folder '{top}'.")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp / top, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
