"""How numbers are printed, the same way in every output: percentages that never round a miss up to 100%; and
whether progress may be drawn as a bar (only on a terminal: a log file gets plain lines, never a carriage return).
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TextIO

MISSING = "—"


def pct(value: float | None, digits: int = 2, missing: str = MISSING) -> str:
    """``value`` (a fraction) as a percentage with ``digits`` decimals; ``missing`` for None. A value below 1
    never prints as 100% (99.999% prints 99.99%, not 100.00%): a run that did not fit never reads as one."""
    if value is None:
        return missing
    text = f"{100 * value:.{digits}f}%"
    if value < 1 and float(text[:-1]) >= 100:
        text = f"{100 - 10 ** -digits:.{digits}f}%"
    return text


def sci(value: float | None, missing: str = MISSING) -> str:
    """``value`` in scientific notation with three significant digits; ``missing`` for None."""
    return missing if value is None else f"{value:.2e}"


def plural(count: int, word: str) -> str:
    """``count`` and ``word``, with an s unless the count is one: "1 epoch", "2 epochs"."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def on_terminal(stream: TextIO | None = None) -> bool:
    """True when ``stream`` (default: stderr, where progress goes) is a terminal, where a redrawn progress bar
    reads well; a file or a pipe gets plain lines instead."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class PipeGuard:
    """A text stream (stdout or stderr) that goes quiet once its reader is gone: a write or flush into a closed
    pipe (``shatter run ... | head -1``) turns the stream off (its descriptor then points at the null device)
    instead of raising, so what the command was doing (a run, a sweep) goes on to its end. Everything else is the
    wrapped stream's."""

    def __init__(self, stream: TextIO):
        self._stream = stream
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._silence()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._silence()

    def _silence(self) -> None:
        self.reader_gone = True
        with contextlib.suppress(OSError, ValueError):  # the interpreter flushes at exit: somewhere to write
            os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def guard_closed_pipes() -> None:
    """Wrap ``sys.stdout`` and ``sys.stderr`` in :class:`PipeGuard` (once): a closed pipe stops the printing, not
    the work."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, PipeGuard):
            setattr(sys, name, PipeGuard(stream))
