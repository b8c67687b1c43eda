"""Input gates for the theory modules: every public argument is checked here, with ``raise``, never ``assert``.

Each failure is a :class:`~shattering.errors.ConfigError` whose message is one sentence naming the argument,
what it must be, and what was received.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from .errors import ConfigError


def check_int(value, name: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as an int in [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be an integer; got {value!r}.") from None
        if not as_float.is_integer():
            raise ConfigError(f"{name} must be an integer; got {value!r}.")
        value = int(as_float)
    value = int(value)
    if value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer of at least {minimum}"
        raise ConfigError(f"{name} must be {what}; got {value}.")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum}; got {value}.")
    return value


def check_float(value, name: str, *, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite float in the interval given by ``low``/``high`` (closed unless ``*_open``)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number; got {value!r}.") from None
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    interval = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
    bad = not math.isfinite(out)
    if low is not None:
        bad |= out <= low if low_open else out < low
    if high is not None:
        bad |= out >= high if high_open else out > high
    if bad:
        raise ConfigError(f"{name} must be a number in {interval}; got {value!r}.")
    return out


def check_probability(value, name: str = "p") -> float:
    return check_float(value, name, low=0.0, high=1.0)


def check_choice(value, name: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ConfigError(f"Unknown {name} {value!r}; choose one of {', '.join(choices)}.")
    return value


def check_choices(values: str | Iterable[str], name: str, choices: Sequence[str]) -> list[str]:
    """A comma-separated string (or a list) of distinct names from ``choices``, in the order given."""
    items = [v.strip() for v in values.split(",")] if isinstance(values, str) else [str(v) for v in values]
    items = [v for v in items if v]
    if not items:
        raise ConfigError(f"{name} must name at least one of {', '.join(choices)}; got nothing.")
    for v in items:
        check_choice(v, name, choices)
    if len(set(items)) != len(items):
        raise ConfigError(f"{name} lists a value twice; got {','.join(items)}.")
    return items


def check_matrix(x, name: str = "X", *, min_rows: int = 1) -> np.ndarray:
    """A finite 2-D float64 array of at least ``min_rows`` rows (the input is never modified)."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a 2-D array of numbers; got {type(x).__name__}.") from None
    if arr.ndim != 2:
        raise ConfigError(f"{name} must be a 2-D array of shape (n_samples, n_features); got shape {arr.shape} "
                          "(reshape with x.reshape(len(x), -1)).")
    if arr.shape[0] < min_rows or arr.shape[1] < 1:
        raise ConfigError(f"{name} must have at least {min_rows} row(s) and one column; got shape {arr.shape}.")
    if not np.isfinite(arr).all():
        raise ConfigError(f"{name} contains NaN or infinite values; remove or impute them first.")
    return arr


def check_targets(y, n: int, name: str = "y") -> np.ndarray:
    """Real targets of shape (n,) or (n, k), as float64."""
    try:
        arr = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be an array of numbers; got {type(y).__name__}.") from None
    if arr.ndim not in (1, 2) or arr.shape[0] != n:
        raise ConfigError(f"{name} must have shape ({n},) or ({n}, k) to match the {n} points; got {arr.shape}.")
    if not np.isfinite(arr).all():
        raise ConfigError(f"{name} contains NaN or infinite values.")
    return arr


def check_labels(y, n: int, num_classes: int, name: str = "y") -> np.ndarray:
    """Integer class labels in [0, num_classes), shape (n,)."""
    arr = np.asarray(y)
    if arr.shape != (n,):
        raise ConfigError(f"{name} must have shape ({n},) to match the {n} points; got {arr.shape}.")
    if arr.size and (not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() >= num_classes):
        raise ConfigError(f"{name} must hold integer class labels in [0, {num_classes}); got dtype {arr.dtype} "
                          f"with values in [{arr.min()}, {arr.max()}].")
    return arr.astype(np.int64)


def one_hot(y: np.ndarray, num_classes: int) -> np.ndarray:
    """(n,) integer labels -> (n, num_classes) float64 one-hot rows."""
    out = np.zeros((len(y), num_classes))
    out[np.arange(len(y)), y] = 1.0
    return out
