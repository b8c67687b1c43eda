"""How numbers are printed, the same way in every output: percentages that never round a miss up to 100%; and
whether progress may be drawn as a bar (only on a terminal: a log file gets plain lines, never a carriage return).
"""

from __future__ import annotations

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


def on_terminal(stream: TextIO | None = None) -> bool:
    """True when ``stream`` (default: stderr, where progress goes) is a terminal, where a redrawn progress bar
    reads well; a file or a pipe gets plain lines instead."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
