"""The keyword arguments of a model's factory, as a run gives them (``--model-arg KEY=VALUE``, TOML
``model_args = {key = value}``, a dict in Python): their one stored form (canonical JSON) and the checks made
when a config is built, against the factory's signature, so a bad argument is refused before any record
exists."""

from __future__ import annotations

import inspect
import json
from typing import Any

from ..errors import ConfigError
from ..validation import setting_must_be
from .build import dropout_refused, takes_keyword


def model_arg_value(text: str) -> Any:
    """A ``--model-arg`` value: an integer, a number, true/false, none, else the text itself."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def model_args_problems(model: str, factory, kwargs: dict, dropout: float) -> list[str]:
    """The factory must take ``model_args`` as keywords, and ``dropout`` where it is set: refused here, when the
    config is made, not when the model is first built."""
    takes_dropout = takes_keyword(factory, "dropout")
    if dropout and not takes_dropout:
        return [dropout_refused(model, dropout)]
    if not kwargs:
        return []
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # no signature to read (a builtin): building it will tell
        return []
    try:
        signature.bind((1, 1, 1), 1, **({"dropout": 0.0} if takes_dropout else {}), **kwargs)
    except TypeError as exc:
        return [setting_must_be("model_args", f"keyword arguments that the factory of model {model!r} takes ({exc})",
                        kwargs)]
    problems = []
    for key, value in kwargs.items():
        kind = _declared_kind(signature.parameters.get(key))
        if kind is not None and value is not None and not _kind_ok(kind, value):
            problems.append(f"The model argument {key}={value!r} is {_kind_words(value)}, but the factory of model "
                            f"{model!r} takes {_kind_words(kind)} for {key!r}; give one (--model-arg {key}="
                            f"{_kind_example(kind)}).")
    return problems


_KINDS = (bool, int, float, str)


def _declared_kind(parameter: inspect.Parameter | None) -> type | None:
    """The kind of value a factory parameter takes, by its annotation or its default (None: not declared)."""
    if parameter is None:
        return None
    annotation = parameter.annotation
    if isinstance(annotation, str):  # postponed annotations: "int", "float | None"
        names = {part.strip() for part in annotation.split("|")} - {"None", "Optional"}
        annotation = next((k for k in _KINDS if names == {k.__name__}), None)
    if annotation in _KINDS:
        return annotation
    default = parameter.default
    return type(default) if type(default) in _KINDS else None


def _kind_ok(kind: type, value) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _kind_words(kind_or_value) -> str:
    kind = kind_or_value if isinstance(kind_or_value, type) else type(kind_or_value)
    return {bool: "true or false", int: "an integer", float: "a number", str: "text"}.get(kind, kind.__name__)


def _kind_example(kind: type) -> str:
    return {bool: "true", int: "8", float: "0.5", str: "name"}[kind]


def canonical_model_args(value: Any) -> str | None:
    """``model_args`` in its one stored form: canonical JSON of a dict (sorted keys), or None for no arguments.
    Takes a dict (Python, TOML), a JSON object as text, or ``KEY=VALUE`` strings (``--model-arg``, repeatable)."""
    if value is None or value == "" or value == {} or value == [] or value == ():
        return None
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ConfigError(setting_must_be("model_args", "a JSON object", value) + f" ({exc})") from None
    if isinstance(value, str):
        value = [value]
    if isinstance(value, (list, tuple)):
        pairs = {}
        for item in value:
            key, sep, text = str(item).partition("=")
            if not sep or not key.strip().isidentifier():
                raise ConfigError(setting_must_be("model_args", "KEY=VALUE with KEY a Python name "
                                                  "(--model-arg depth=18)", item))
            pairs[key.strip()] = model_arg_value(text)
        value = pairs
    if not isinstance(value, dict) or not all(isinstance(k, str) and k.isidentifier() for k in value):
        raise ConfigError(setting_must_be("model_args", "a table of keyword arguments (KEY = VALUE)", value,
                                  ))
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":")) if value else None
    except (TypeError, ValueError):
        raise ConfigError(setting_must_be("model_args", "numbers, strings, booleans or lists of them", value,
                                  )) from None
