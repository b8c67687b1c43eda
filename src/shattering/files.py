"""Files written so that nothing half-written is ever read back: atomic writes through a temporary file and a
rename, and the one JSON form every record, artefact and ``--json`` output uses.

Nothing is fsynced unless ``SHATTERING_FSYNC=1``: the promises hold against a crashed or killed process (the
kernel keeps what was written), not against a power cut or a kernel crash, where the page cache is lost. With
``SHATTERING_FSYNC=1`` every file is fsynced before its rename and the folder after it (RELIABILITY.md).
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from . import faults
from .errors import RecordError

FSYNC = os.environ.get("SHATTERING_FSYNC", "") not in ("", "0")


def space_hint(exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return "the disk is full or a file-size limit was hit; free space and start the same command again"
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return "a part of the path is a file, not a folder; give a folder"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "this user may not write there; give a folder you can write to"
    return "check the folder's permissions and free space"


def folder_problem(path: str | Path, what: str = "--out") -> str | None:
    """Why ``path`` cannot be a folder (it, or a folder above it, is a file), in one sentence naming ``what`` (the
    option that gave it); None when it is a folder or can be made one."""
    path = Path(path).expanduser()
    for part in (path, *path.parents):
        if part.exists() or part.is_symlink():
            if part.is_dir():
                return None
            where = "is a file" if part == path else f"lies under {part}, which is a file"
            return f"{what} {path} {where}, not a folder; give a folder (it is created if missing)."
    return None


def file_problem(path: str | Path, what: str = "--out") -> str | None:
    """Why ``path`` cannot be written as a file (it is a folder, or lies under a file); None when it can."""
    path = Path(path).expanduser()
    if path.is_dir():
        return f"{what} {path} is a folder; give the name of a file to write."
    problem = folder_problem(path.parent, what)
    return None if problem is None else (f"{what} {path} lies under a file, not a folder; give a file name in a "
                                         "folder.")


def umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (with ``SHATTERING_FSYNC=1`` only)."""
    if not FSYNC:
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a platform without directory handles: the file itself was fsynced
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes, *, fault: str | None = None) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (all or nothing). ``fault`` names the
    :mod:`~shattering.faults` point between the two (tests only)."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise RecordError(f"Could not write {path} ({exc.strerror or exc}): {space_hint(exc)}; "
                          "the records written before are intact.") from None
    try:
        os.fchmod(fd, umask_mode())  # mkstemp makes 0600 files; records are as readable as any other file
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if FSYNC:
                os.fsync(fh.fileno())
        if fault:
            faults.point(fault)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise RecordError(f"Could not write {path} ({exc.strerror or exc}): {space_hint(exc)}; "
                          "the records written before are intact.") from None


def atomic_write_json(path: str | Path, obj: Any, *, fault: str | None = None, strict: bool = False) -> None:
    """``obj`` as :func:`json_text` in ``path``, atomically."""
    atomic_write_bytes(path, json_text(obj, strict=strict).encode(), fault=fault)


def read_json(path: str | Path) -> dict | None:
    """The JSON object in ``path``, or None when the file is missing or not a complete JSON object."""
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def jsonable(obj: Any, *, strict: bool = False) -> Any:
    """``obj`` as plain JSON values: numpy and torch scalars and arrays as numbers and lists, paths as strings,
    tuples as lists; with ``strict``, NaN and infinities as None (what a JSON parser other than Python's reads)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v, strict=strict) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, strict=strict) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):  # numpy / torch scalars and arrays
        return jsonable(obj.tolist(), strict=strict)
    if strict and isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def json_text(obj: Any, *, strict: bool = False, indent: int | None = 2, sort_keys: bool = True) -> str:
    """The one JSON form of shattering's files and ``--json`` outputs (see :func:`jsonable`), newline-terminated
    when indented."""
    text = json.dumps(jsonable(obj, strict=strict), indent=indent, sort_keys=sort_keys)
    return text + "\n" if indent is not None else text
