"""Input gates: every public argument is checked with ``raise``, never ``assert``, and every refusal of a bad
value is worded by one function, :func:`must_be`, in one form (scikit-learn's)::

    The 'n_train' parameter of kernel_experiment must be at most 1437; got 5000 instead.

A run's settings are the parameters of :class:`~shattering.config.RunConfig`; the theory experiments
(Sections 2.2, 4 and 5 of Zhang et al., ICLR 2017) check theirs with the ``check_*`` functions here. Each
failure is a :class:`~shattering.errors.ConfigError` whose message is that one sentence.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from .errors import ConfigError


def must_be(name: str, what: str, got: object, *, of: str | None = None, shown: str | None = None) -> str:
    """The one sentence that refuses a bad value: "The 'name' parameter of OF must be WHAT; got GOT instead."

    ``of`` names the function or class the parameter belongs to (left out: "The 'name' parameter must be ...");
    ``got`` is the value received, shown as ``repr(got)`` unless ``shown`` says how to show it (a shape, a type).
    """
    where = f"The {str(name)!r} parameter" + (f" of {of}" if of else "")
    return f"{where} must be {what}; got {repr(got) if shown is None else shown} instead."


FLAGS = {"model_args": "--model-arg"}  # run settings the command line spells otherwise than --name-with-dashes


def setting_must_be(name: str, what: str, got: object, *, shown: str | None = None) -> str:
    """The one sentence that refuses a bad run setting, in the words of every way to give it (the ``shatter``
    flag, the TOML key, the keyword of ``shattering.run``): "The run setting 'lr' (--lr) must be WHAT; got GOT
    instead." """
    flag = FLAGS.get(name, "--" + name.replace("_", "-"))
    return f"The run setting {name!r} ({flag}) must be {what}; got {repr(got) if shown is None else shown} instead."


def check_int(value, name: str, *, minimum: int = 1, maximum: int | None = None, of: str | None = None) -> int:
    """``value`` as an int in [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            raise ConfigError(must_be(name, "an integer", value, of=of)) from None
        if not as_float.is_integer():
            raise ConfigError(must_be(name, "an integer", value, of=of))
        value = int(as_float)
    value = int(value)
    if value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer of at least {minimum}"
        raise ConfigError(must_be(name, what, value, of=of))
    if maximum is not None and value > maximum:
        raise ConfigError(must_be(name, f"at most {maximum}", value, of=of))
    return value


def check_float(value, name: str, *, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False, of: str | None = None) -> float:
    """``value`` as a finite float in the interval given by ``low``/``high`` (closed unless ``*_open``)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(must_be(name, "a number", value, of=of)) from None
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    interval = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
    bad = not math.isfinite(out)
    if low is not None:
        bad |= out <= low if low_open else out < low
    if high is not None:
        bad |= out >= high if high_open else out > high
    if bad:
        raise ConfigError(must_be(name, f"a number in {interval}", value, of=of))
    return out


def check_probability(value, name: str = "p", *, of: str | None = None) -> float:
    return check_float(value, name, low=0.0, high=1.0, of=of)


def check_choice(value, name: str, choices: Sequence[str], *, of: str | None = None) -> str:
    if value not in choices:
        raise ConfigError(must_be(name, f"one of {', '.join(choices)}", value, of=of))
    return value


def check_choices(values: str | Iterable[str], name: str, choices: Sequence[str], *,
                  of: str | None = None) -> list[str]:
    """A comma-separated string (or a list) of distinct names from ``choices``, in the order given."""
    items = [v.strip() for v in values.split(",")] if isinstance(values, str) else [str(v) for v in values]
    items = [v for v in items if v]
    if not items:
        raise ConfigError(must_be(name, f"a list of one or more names among {', '.join(choices)}", values, of=of,
                                  shown="nothing"))
    for v in items:
        if v not in choices:
            raise ConfigError(must_be(name, f"a list of names among {', '.join(choices)}", v, of=of))
    if len(set(items)) != len(items):
        raise ConfigError(must_be(name, "a list of distinct values", values, of=of, shown=",".join(items)))
    return items


def check_matrix(x, name: str = "X", *, min_rows: int = 1, of: str | None = None) -> np.ndarray:
    """A finite 2-D float64 array of at least ``min_rows`` rows (the input is never modified)."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(must_be(name, "a 2-D array of numbers", x, of=of, shown=type(x).__name__)) from None
    if arr.ndim != 2:
        raise ConfigError(must_be(name, "a 2-D array of shape (n_samples, n_features) (reshape with "
                                        "x.reshape(len(x), -1))", x, of=of, shown=f"shape {arr.shape}"))
    if arr.shape[0] < min_rows or arr.shape[1] < 1:
        raise ConfigError(must_be(name, f"an array of at least {min_rows} row(s) and one column", x, of=of,
                                  shown=f"shape {arr.shape}"))
    if not np.isfinite(arr).all():
        raise ConfigError(must_be(name, "finite (remove or impute NaN and infinite values first)", x, of=of,
                                  shown="NaN or infinite values"))
    return arr


def check_targets(y, n: int, name: str = "y", *, of: str | None = None) -> np.ndarray:
    """Real targets of shape (n,) or (n, k), as float64."""
    try:
        arr = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(must_be(name, "an array of numbers", y, of=of, shown=type(y).__name__)) from None
    if arr.ndim not in (1, 2) or arr.shape[0] != n:
        raise ConfigError(must_be(name, f"of shape ({n},) or ({n}, k) to match the {n} points", y, of=of,
                                  shown=f"shape {arr.shape}"))
    if not np.isfinite(arr).all():
        raise ConfigError(must_be(name, "finite", y, of=of, shown="NaN or infinite values"))
    return arr


def check_labels(y, n: int, num_classes: int, name: str = "y", *, of: str | None = None) -> np.ndarray:
    """Integer class labels in [0, num_classes), shape (n,)."""
    arr = np.asarray(y)
    if arr.shape != (n,):
        raise ConfigError(must_be(name, f"of shape ({n},) to match the {n} points", y, of=of,
                                  shown=f"shape {arr.shape}"))
    if arr.size and (not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() >= num_classes):
        raise ConfigError(must_be(name, f"integer class labels in [0, {num_classes})", y, of=of,
                                  shown=f"dtype {arr.dtype} with values in [{arr.min()}, {arr.max()}]"))
    return arr.astype(np.int64)


def one_hot(y: np.ndarray, num_classes: int) -> np.ndarray:
    """(n,) integer labels -> (n, num_classes) float64 one-hot rows."""
    out = np.zeros((len(y), num_classes))
    out[np.arange(len(y)), y] = 1.0
    return out
