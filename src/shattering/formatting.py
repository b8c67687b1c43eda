"""How numbers are printed, the same way in every output: percentages that never round a miss up to 100%."""

from __future__ import annotations

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
