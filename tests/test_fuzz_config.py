"""Property-based fuzzing of the config file parser (`RunConfig.from_toml`): random TOML documents with known
and unknown keys, values of every TOML type (wrong types, out-of-range numbers, NaN, infinities, huge integers,
nested tables, dates), truncated documents and garbage bytes. Each file either gives a config that a run can
use, or a :class:`ConfigError` of one line; nothing else ever escapes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shattering.config import RunConfig
from shattering.errors import ConfigError

from .test_faults import tally

FIELDS = [f.name for f in dataclasses.fields(RunConfig)]
EXAMPLES = int(os.environ.get("SHATTERING_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------------------------------
# A small TOML writer (the standard library reads TOML but does not write it)
# --------------------------------------------------------------------------------------------------


def toml_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_key(key: str) -> str:
    bare = key and all(c.isascii() and (c.isalnum() or c in "-_") for c in key)
    return key if bare else toml_string(key)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def toml_document(table: dict, under_run: bool) -> str:
    lines = ["[run]"] if under_run else []
    lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------------

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 2**63 - 1, 2**64 - 1, 2**64, -(2**63) - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-300, 1e308, 3.5e38, 0.5, 1.0, 1.5, -0.5]),
    text,
    st.sampled_from(["digits", "mnist1d", "cifar10", "mlp-1x512", "alexnet-small", "random-labels", "gaussian",
                     "partial-labels", "fit", "epochs", "per-image", "none", "auto", "cpu", "fp32", "position"]),
    st.datetimes(min_value=dt.datetime(1900, 1, 1)).map(lambda d: d.replace(microsecond=0)),
    st.dates(),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(text, inner, max_size=2)), max_leaves=5)
keys = st.one_of(st.sampled_from(FIELDS), st.sampled_from(FIELDS).map(lambda k: k.replace("_", "-")), text)
tables = st.dictionaries(keys, values, max_size=6)


def check(path: Path) -> str:
    """Parse ``path``: a usable config, or a ConfigError of one line. Returns which."""
    try:
        cfg = RunConfig.from_toml(path)
    except ConfigError as exc:
        message = str(exc)
        assert message and "\n" not in message and message.endswith("."), message
        return "refused"
    # accepted: everything a run does with the settings before training must work
    cfg.resolved()
    cfg.run_id()
    cfg.run_name()
    torch.Generator().manual_seed(cfg.seed)
    np.random.SeedSequence([cfg.data_seed, 0])
    for name in ("lr", "weight_decay"):
        value = getattr(cfg, name)
        assert value is None or math.isfinite(float(np.float32(value))), (name, value)
    return "accepted"


@pytest.fixture
def counts():
    seen = {"accepted": 0, "refused": 0}
    yield seen
    tally("fuzz-config-file", examples=sum(seen.values()), **seen)


def _write(data: bytes) -> Path:
    fd, name = tempfile.mkstemp(suffix=".toml")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return Path(name)


def _parse(data: bytes) -> str:
    path = _write(data)
    try:
        return check(path)
    finally:
        path.unlink()


def test_random_toml_documents(counts):
    @FUZZ
    @given(tables, st.booleans())
    def one(table, under_run):
        counts[_parse(toml_document(table, under_run).encode())] += 1

    one()


def test_valid_documents_with_one_bad_value(counts):
    """A document that would be accepted, with one field set to a random value: refused or usable."""
    base = {"dataset": "digits", "model": "mlp-1x512", "corruption": "partial-labels", "p": 0.5, "epochs": 3}

    @FUZZ
    @given(st.sampled_from(FIELDS), values)
    def one(field, value):
        counts[_parse(toml_document({**base, field: value}, under_run=False).encode())] += 1

    one()


def test_truncated_and_garbled_documents(counts):
    good = toml_document({"dataset": "digits", "model": "mlp-3x512", "corruption": "partial-labels", "p": 0.4,
                          "weight-decay": 0.0005, "seed": 3}, under_run=True).encode()

    @FUZZ
    @given(st.integers(0, len(good)), st.binary(max_size=16), st.integers(0, len(good)))
    def one(cut, garbage, where):
        counts[_parse(good[:cut])] += 1
        counts[_parse(good[:where] + garbage + good[where:])] += 1

    one()


def test_garbage_bytes(counts):
    @FUZZ
    @given(st.binary(max_size=200))
    def one(data):
        counts[_parse(data)] += 1

    one()


@pytest.mark.parametrize("content,match", [
    (b"run = 5\n", "one \\[run\\] table"),
    (b'seed = 3\n[run]\ndataset = "digits"\n', "beside 'seed'"),
    (b'"a\\nb" = 1\n', "Unknown key\\(s\\) 'a\\\\nb'"),
    (b"seed = -1\n", "run setting 'seed' \\(--seed\\) must be an integer in \\[0, 2\\*\\*64 - 1\\]"),
    (b"seed = 18446744073709551616\n",
     "run setting 'seed' \\(--seed\\) must be an integer in \\[0, 2\\*\\*64 - 1\\]; got 18446744073709551616 instead"),
    (b"data-seed = -1\n", "run setting 'data_seed' \\(--data-seed\\) must be zero or positive"),
    (b"lr = 1e308\n", "run setting 'lr' \\(--lr\\) must be positive and at most 3.4e38"),
    (b"weight_decay = 1e39\n",
     "run setting 'weight_decay' \\(--weight-decay\\) must be zero or positive and at most 3.4e38"),
])
def test_inputs_that_escaped_as_tracebacks_before(tmp_path, content, match):
    """Found by the fuzzing above: each of these ended in a traceback (AttributeError, ValueError or
    RuntimeError deep in numpy or torch), was silently ignored, or printed a key over two lines."""
    path = tmp_path / "run.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=match):
        RunConfig.from_toml(path)


def test_a_folder_as_config_file(tmp_path):
    with pytest.raises(ConfigError, match="Could not read config file"):
        RunConfig.from_toml(tmp_path)
