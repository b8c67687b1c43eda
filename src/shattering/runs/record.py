"""The record of one run (Section 2.1 of Zhang et al., ICLR 2017, measured and kept): one folder per run, named
by the hash of its resolved config, written so that nothing half-written is ever read back as a result.

Layout of ``<out>/<dataset>_<model>_<corruption>_<id>/``:

- ``config.json``: the resolved config, the data set's description and fingerprint, versions.
- ``metrics.jsonl``: one JSON object per epoch (appended): full metrics at the epochs evaluated, the running
  training numbers (``"evaluated": false``) at the others (:func:`evaluated` keeps the former).
- ``steps.csv``: ``step,epoch,loss,lr``, the training loss every ``log_every`` steps (appended).
- ``checkpoint.pt``: model, optimizer, every RNG state and the loop state, replaced atomically after each epoch
  (less often where epochs are short: :meth:`shattering.train.book.RunBook.checkpoint`) and
  after the last.
  Its first line holds the SHA-256 of the rest; a damaged checkpoint is detected and the previous one
  (``checkpoint.prev.pt``) is used instead, or the run restarts from scratch, and the run says which.
- ``summary.json``: written last, atomically; its presence means the run is over (fit, not fit or
  diverged). A report reads only summaries and metrics.
- ``lock``: held (``flock``) by the process training the run; a second process refuses to start (a sweep
  waits for it instead: :mod:`shattering.executors.local`).

A finished run keeps one checkpoint by default (``keep_checkpoints="last"``: :meth:`RunRecord.prune_checkpoints`
removes ``checkpoint.prev.pt`` once the summary is written). ``rerun`` moves an old record aside to
``<name>.old-<timestamp>`` (:meth:`RunRecord.move_aside`; never deleted), which no table or report reads as a
run (:func:`moved_aside`). A run that never started (a data or config error before its first epoch) removes
the folder it created (:meth:`RunRecord.discard_unstarted`).

Writes go to a temporary file in the same folder that is renamed over the target, so a reader sees the old
or the new file, never a mix. Appended files are truncated back to the checkpoint's epoch on resume, and
temporary files a crash left behind are removed once the lock is held.

Atomic writes and fsync (``SHATTERING_FSYNC=1``) are :mod:`shattering.files`'. Under torchrun only process 0
writes (:func:`record_for`; :mod:`shattering.train.distributed`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from .. import faults, files
from ..errors import RecordError, RunLockedError
from ..files import atomic_write_bytes, atomic_write_json, fsync_dir, json_text, read_json, space_hint, umask_mode
from ..validation import check_choice

if TYPE_CHECKING:
    from ..train.distributed import DistContext

try:
    import fcntl
except ImportError:  # no flock on this platform (Windows): runs are not locked
    fcntl = None

CHECKPOINT_MAGIC = b"SHATTERING-CHECKPOINT-1\n"
STATUSES = ("fit", "not-fit", "diverged")  # how a run with a summary ended
KEEP_CHECKPOINTS = ("last", "all", "none")  # what a finished run keeps: checkpoint.pt, both, neither
OLD_MARK = ".old-"  # a record moved aside by a rerun: <name>.old-<timestamp>
# The files a run writes before its first epoch ends: a folder holding only these (empty logs) never started.
_START_FILES = ("lock", "config.json", "labels.npz", "metrics.jsonl", "steps.csv")


def moved_aside(path: str | Path) -> bool:
    """True for a record folder a rerun moved aside (``<name>.old-<timestamp>``): kept, but not a run of the
    folder any more."""
    return OLD_MARK in Path(path).name


def evaluated(rows: list[dict]) -> list[dict]:
    """The metrics rows of epochs with a full eval-mode evaluation (``train_acc``, ``test_acc``, ...): a row
    with ``"evaluated": false`` holds only the running training numbers and the fit probe
    (:mod:`shattering.train.book`); rows of records from before evaluation was skipped have no such key and
    are all evaluated."""
    return [r for r in rows if r.get("evaluated", True) is not False]


class RunRecord:
    """The files of one run (see the module docstring)."""

    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)
        self.config_path = self.dir / "config.json"
        self.metrics_path = self.dir / "metrics.jsonl"
        self.steps_path = self.dir / "steps.csv"
        self.checkpoint_path = self.dir / "checkpoint.pt"
        self.prev_checkpoint_path = self.dir / "checkpoint.prev.pt"
        self.summary_path = self.dir / "summary.json"
        self.lock_path = self.dir / "lock"

    # -- lifecycle -----------------------------------------------------------------------------------
    def create(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RecordError(f"Could not create the run folder {self.dir} ({exc.strerror}): "
                              f"{space_hint(exc)}.") from None

    @contextlib.contextmanager
    def lock(self):
        """Hold an exclusive lock on the run; refuse at once when another process holds it."""
        self.create()
        fh = open(self.lock_path, "a+")  # noqa: SIM115 -- held for the whole with-block of the caller
        try:
            try:
                if fcntl is not None:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.seek(0)
                holder = fh.read().strip() or "unknown"
                raise RunLockedError(
                    f"The run in {self.dir} is being trained by another process (pid {holder} holds the lock "
                    f"{self.lock_path}); wait for it to finish, or stop it before starting this one."
                ) from None
            fh.seek(0)
            fh.truncate()
            fh.write(str(os.getpid()))
            fh.flush()
            self._remove_stale_temporaries()
            yield
        finally:
            fh.close()

    def move_aside(self) -> Path | None:
        """Rename the record folder to ``<name>.old-<UTC timestamp>`` (so that the run trains again from nothing)
        and return where it went; None when there is no folder. Refused while another process trains the run."""
        if not self.dir.exists():
            return None
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        with self.lock():
            target, n = self.dir.with_name(f"{self.dir.name}{OLD_MARK}{stamp}"), 1
            while target.exists():
                n += 1
                target = self.dir.with_name(f"{self.dir.name}{OLD_MARK}{stamp}-{n}")
            try:
                os.replace(self.dir, target)
            except OSError as exc:
                raise RecordError(f"Could not move the old record {self.dir} aside to {target.name} "
                                  f"({exc.strerror or exc}); move or delete it yourself and run again.") from None
            fsync_dir(self.dir.parent)
        return target

    def discard_unstarted(self) -> bool:
        """Remove the folder of a run that never started (no summary, no checkpoint, no epoch in its logs, no
        file but those a start writes) and return True; anything else is left as it is. Call it with the lock
        held, and only for a folder this process created."""
        if self.summary_path.exists() or self.has_checkpoint() or self.read_metrics():
            return False
        try:
            paths = list(self.dir.iterdir())
        except OSError:
            return False
        if any(not p.is_file() or (p.name not in _START_FILES and not p.name.endswith(".tmp")) for p in paths):
            return False
        for path in paths:
            with contextlib.suppress(OSError):
                path.unlink()
        with contextlib.suppress(OSError):
            self.dir.rmdir()
        return not self.dir.exists()

    def _remove_stale_temporaries(self) -> None:
        """Remove the temporary files of writes a crash interrupted (only the lock holder writes here)."""
        for path in self.dir.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                path.unlink()

    def summary_file(self) -> dict | None:
        """The summary as written, or None (missing, or not a complete summary: a file that lacks what every
        summary holds is not read as a result); whether the rest of the record is intact is :meth:`damage`'s."""
        summary = read_json(self.summary_path)
        if (summary is None or summary.get("status") not in STATUSES or not isinstance(summary.get("final"), dict)
                or not isinstance(summary.get("config"), dict) or not isinstance(summary.get("run_id"), str)):
            return None
        return summary

    def read_summary(self) -> dict | None:
        """The summary of a finished run whose every file is intact, or None: missing, incomplete, or in a record
        with a damaged file (:meth:`damage`), which is never read as a result (:func:`shattering.runs.run`
        repairs it)."""
        summary = self.summary_file()
        return summary if summary is not None and not self.damage(summary) else None

    def damage(self, summary: dict | None | bool = True) -> list[str]:
        """What is damaged in the record, one sentence per file (empty: every file reads as it was written).

        Checked: ``summary.json`` (present but not a complete summary), ``config.json`` (missing where the run
        has epochs, unreadable, or of another run), ``metrics.jsonl`` and ``steps.csv`` (a complete line that
        is not a row this code writes, epochs that do not increase, and in a finished run a torn last line or
        a log that does not reach the summary's last epoch). A torn last line of an unfinished run is what a
        crash leaves and is not damage (the resume drops it). Checkpoints carry their own checksum, read when
        loaded (:meth:`load_checkpoint`). ``summary``: the record's summary if already read (True: read it)."""
        if summary is True:
            summary = self.summary_file()
        problems = []
        if summary is None and self.summary_path.exists():
            problems.append("summary.json is not a complete summary")
        rows, metric_problems, torn = self._scan_metrics()
        steps_problems, steps_torn = self._scan_steps()
        config = read_json(self.config_path)
        if not self.config_path.exists():
            if summary is not None or rows:
                problems.append("config.json is missing")
        elif config is None or not isinstance(config.get("run_id"), str) or not isinstance(config.get("config"),
                                                                                            dict):
            problems.append("config.json is not a run's config (unreadable, or not written by shattering)")
        elif summary is not None and config["run_id"] != summary["run_id"]:
            problems.append(f"config.json is of run {config['run_id']}, the summary of run {summary['run_id']}")
        problems += metric_problems + steps_problems
        if summary is not None:
            if torn:
                problems.append("metrics.jsonl ends in a torn line after the run finished")
            if steps_torn:
                problems.append("steps.csv ends in a torn line after the run finished")
            last = rows[-1]["epoch"] if rows else None
            if not metric_problems and last != summary.get("epochs"):
                problems.append(f"metrics.jsonl ends at epoch {last} but the run at epoch {summary.get('epochs')}")
        return problems

    def set_aside_if_damaged(self) -> tuple[Path | None, list[str]]:
        """Move a damaged record aside (:meth:`move_aside`, kept) so that its run trains again from its config,
        and return where it went and what was damaged; (None, []) for an intact one. A record whose only damage
        is its summary is left: its logs and checkpoint are intact, and the run is finished again from them. A
        damaged record is never resumed over: the resume would drop what follows the damage."""
        damage = [p for p in self.damage() if not p.startswith("summary.json")]
        return (self.move_aside(), damage) if damage else (None, [])

    def _scan_metrics(self) -> tuple[list[dict], list[str], bool]:
        """Every intact row of ``metrics.jsonl``, what is wrong with the others, and whether the last line is torn
        (written without its newline)."""
        lines, torn = self._lines(self.metrics_path)
        rows, problems, bad = [], [], []
        for number, line in enumerate(lines, 1):
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            if not isinstance(row, dict) or type(row.get("epoch")) is not int:
                bad.append(number)
                continue
            if rows and row["epoch"] <= rows[-1]["epoch"]:
                problems.append(f"metrics.jsonl line {number} (epoch {row['epoch']}) does not follow epoch "
                                f"{rows[-1]['epoch']}")
            rows.append(row)
        if bad:
            problems.insert(0, f"metrics.jsonl line{'s' * (len(bad) > 1)} {_numbers(bad)} of {len(lines)} "
                               f"{'are' if len(bad) > 1 else 'is'} not a metrics row")
        return rows, problems, torn

    def _scan_steps(self) -> tuple[list[str], bool]:
        lines, torn = self._lines(self.steps_path)
        if lines and lines[0] != "step,epoch,loss,lr":
            return ["steps.csv has no step,epoch,loss,lr header"], torn
        bad = [number for number, line in enumerate(lines[1:], 2) if _steps_row(line) is None]
        if bad:
            return [f"steps.csv line{'s' * (len(bad) > 1)} {_numbers(bad)} of {len(lines)} "
                    f"{'are' if len(bad) > 1 else 'is'} not a step,epoch,loss,lr row"], torn
        return [], torn

    def write_summary(self, summary: dict) -> None:
        atomic_write_json(self.summary_path, summary, fault="summary-write")

    def write_config(self, config: dict) -> None:
        atomic_write_json(self.config_path, config)

    def read_config(self) -> dict | None:
        return read_json(self.config_path)

    # -- appended logs -------------------------------------------------------------------------------
    def _append(self, path: Path, text: str, fault: str) -> None:
        try:
            with open(path, "a") as fh:
                if faults.armed():  # tests: a torn line (half the text written), then killed
                    faults.point(fault, before=lambda: (fh.write(text[:len(text) // 2]), fh.flush()))
                fh.write(text)
                fh.flush()
                if files.FSYNC:
                    os.fsync(fh.fileno())
        except OSError as exc:
            raise RecordError(f"Could not append to {path} ({exc.strerror or exc}): {space_hint(exc)}; "
                              "the records written before are intact.") from None

    def append_metrics(self, row: dict) -> None:
        self._append(self.metrics_path, json_text(row, indent=None) + "\n", "metrics-append")

    def append_steps(self, rows: list[tuple]) -> None:
        if not rows:
            return
        header = "" if self.steps_path.exists() else "step,epoch,loss,lr\n"
        self._append(self.steps_path, header + "".join(f"{s},{e},{loss:.6g},{lr:.6g}\n" for s, e, loss, lr in rows),
                     "steps-append")

    @staticmethod
    def _lines(path: Path) -> tuple[list[str], bool]:
        """The lines of an appended log that were written whole (a line counts once its newline is written), and
        whether a torn last line (a crash mid-append) follows them."""
        try:
            parts = path.read_text(errors="replace").split("\n")
        except OSError:
            return [], False
        return parts[:-1], parts[-1] != ""

    def read_evaluated_metrics(self) -> list[dict]:
        """The rows of the epochs that had a full evaluation (:func:`evaluated`): what curves and results read."""
        return evaluated(self.read_metrics())

    def read_metrics(self) -> list[dict]:
        """Every intact per-epoch row, evaluated or not (an epoch without a full evaluation holds only its running
        numbers: :func:`evaluated` keeps the others). A torn last line from a crash is not a row; a damaged line
        is left out and named by :meth:`damage`, which every reader of results consults."""
        return self._scan_metrics()[0]

    def read_steps(self) -> list[dict]:
        """Every intact ``step,epoch,loss,lr`` row (a torn last line from a crash is not one)."""
        lines = self._lines(self.steps_path)[0]
        return [row for row in map(_steps_row, lines[1:]) if row is not None]

    def truncate_logs(self, epoch: int, step: int) -> None:
        """Drop log rows written after the checkpoint being resumed (epoch, step)."""
        metrics = [r for r in self.read_metrics() if r.get("epoch", 0) <= epoch]
        atomic_write_bytes(self.metrics_path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in metrics).encode())
        faults.point("truncate-logs")
        steps = [r for r in self.read_steps() if r["step"] <= step]
        atomic_write_bytes(self.steps_path, ("step,epoch,loss,lr\n" + "".join(
            f"{r['step']},{r['epoch']},{r['loss']:.6g},{r['lr']:.6g}\n" for r in steps)).encode())

    def reset_logs(self) -> None:
        for path in (self.metrics_path, self.steps_path):
            path.unlink(missing_ok=True)

    # -- checkpoints ---------------------------------------------------------------------------------
    def save_checkpoint(self, state: dict) -> None:
        """Serialize ``state`` with a SHA-256 header; keep the previous checkpoint as a fallback."""
        import torch  # here: `shatter runs` reads records through this module without torch

        buf = io.BytesIO()
        torch.save(state, buf)
        payload = buf.getvalue()
        data = CHECKPOINT_MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload
        link = self.dir / ".checkpoint.prev.tmp"
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=".checkpoint.", suffix=".tmp", dir=self.dir)
            os.fchmod(fd, umask_mode())
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                if files.FSYNC:
                    os.fsync(fh.fileno())
            faults.point("checkpoint-write")
            if self.checkpoint_path.exists():  # keep it as the fallback; checkpoint.pt never goes missing
                link.unlink(missing_ok=True)
                try:
                    os.link(self.checkpoint_path, link)
                except OSError:  # no hard links here: copy
                    link.write_bytes(self.checkpoint_path.read_bytes())
                os.replace(link, self.prev_checkpoint_path)
                # rename() does nothing when both names are already links to one file (a crash between the two
                # renames leaves checkpoint.pt and checkpoint.prev.pt so): the link name is then still there
                link.unlink(missing_ok=True)
                faults.point("checkpoint-rename")
            os.replace(tmp, self.checkpoint_path)
            fsync_dir(self.dir)
        except OSError as exc:
            for path in (tmp, link):
                if path is not None:
                    with contextlib.suppress(OSError):
                        os.unlink(path)
            raise RecordError(f"Could not write the checkpoint in {self.dir} ({exc.strerror or exc}): "
                              f"{space_hint(exc)}; the previous checkpoint is intact.") from None

    @staticmethod
    def _read_checkpoint(path: Path) -> tuple[dict | None, str]:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None, "missing"
        except OSError as exc:
            return None, f"unreadable ({exc.strerror})"
        head = len(CHECKPOINT_MAGIC)
        if not data.startswith(CHECKPOINT_MAGIC) or len(data) < head + 65 or data[head + 64:head + 65] != b"\n":
            return None, "damaged (no valid header)"
        digest, payload = data[head:head + 64].decode(errors="replace"), data[head + 65:]
        if hashlib.sha256(payload).hexdigest() != digest:
            return None, "damaged (checksum mismatch)"
        import torch  # here: `shatter runs` reads records through this module without torch

        try:
            return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=False), "ok"
        except Exception as exc:  # a payload that passes its checksum but does not load: treat as damaged
            return None, f"damaged ({type(exc).__name__})"

    def load_checkpoint(self) -> tuple[dict | None, list[str]]:
        """The newest intact checkpoint (current, else previous) and notes on any damaged one."""
        notes = []
        for path in (self.checkpoint_path, self.prev_checkpoint_path):
            state, status = self._read_checkpoint(path)
            if state is not None:
                return state, notes
            if status != "missing":
                notes.append(f"{path.name} is {status}")
        return None, notes

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.exists() or self.prev_checkpoint_path.exists()

    def remove_checkpoints(self) -> None:
        for path in (self.checkpoint_path, self.prev_checkpoint_path):
            path.unlink(missing_ok=True)

    def prune_checkpoints(self, keep: str = "last") -> None:
        """What a finished run keeps of its checkpoints: ``last`` (``checkpoint.pt``), ``all`` (both) or
        ``none``."""
        if check_choice(keep, "keep_checkpoints", KEEP_CHECKPOINTS) == "all":
            return
        paths = (self.prev_checkpoint_path,) if keep == "last" else (self.prev_checkpoint_path, self.checkpoint_path)
        for path in paths:
            path.unlink(missing_ok=True)


class FollowerRecord(RunRecord):
    """The record as processes 1..N-1 of a torchrun group see it: nothing is read or written (process 0 keeps
    the record)."""

    @contextlib.contextmanager
    def lock(self):
        yield

    def create(self) -> None:
        pass

    def read_summary(self):
        return None

    def damage(self, summary=True) -> list[str]:
        return []

    def write_summary(self, summary: dict) -> None:
        pass

    def write_config(self, config: dict) -> None:
        pass

    def append_metrics(self, row: dict) -> None:
        pass

    def append_steps(self, rows: list) -> None:
        pass

    def truncate_logs(self, epoch: int, step: int) -> None:
        pass

    def reset_logs(self) -> None:
        pass

    def save_checkpoint(self, state: dict) -> None:
        pass

    def prune_checkpoints(self, keep: str = "last") -> None:
        pass

    def move_aside(self) -> None:
        return None

    def discard_unstarted(self) -> bool:
        return False

    def set_aside_if_damaged(self) -> tuple[None, list[str]]:
        return None, []

    def load_checkpoint(self):
        return None, []


def _steps_row(line: str) -> dict | None:
    parts = line.split(",")
    if len(parts) != 4:
        return None
    try:
        return {"step": int(parts[0]), "epoch": int(parts[1]), "loss": float(parts[2]), "lr": float(parts[3])}
    except ValueError:
        return None


def _numbers(values: list[int], shown: int = 5) -> str:
    return ", ".join(map(str, values[:shown])) + (f" and {len(values) - shown} more" if len(values) > shown else "")


def record_for(run_dir: Path, ctx: DistContext | None) -> RunRecord:
    """The run's record for this process: the real one on process 0 (or alone), else one that writes nothing."""
    return RunRecord(run_dir) if ctx is None or ctx.is_main else FollowerRecord(run_dir)
