"""What every ``shatter`` command shares: the parser that fails in one sentence, and the options generated from
:class:`~shattering.config.RunConfig`'s field declarations (Section 2.1's settings of a run), so that one
concept has one spelling, one help text, one type and one set of choices on every command."""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Collection, Mapping
from typing import Any

from ..config import RunConfig, field_choices
from ..data.catalogue import DATASETS
from ..data.user_data import looks_like_path

EXIT_USAGE = 2
CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(RunConfig))


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped: an error is one line on stderr, whatever
    the user typed into it."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad option prints one sentence (no usage dump) and exits 2."""

    def error(self, message: str):  # noqa: D102
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)}; see `{self.prog} --help`.\n")


def none_or(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    """A parser of ``kind`` that also reads ``none``, ``default`` or nothing as None (the field's default)."""

    def parse(text: str):
        if text.lower() in ("none", "default", ""):
            return None
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'} or 'none', "
                                             f"got {text!r}") from None

    parse.__name__ = kind.__name__
    return parse


def dataset_arg(text: str) -> str:
    """``--dataset``: a registered name, or what is meant as a path (the config reads and checks the file)."""
    if text in DATASETS or looks_like_path(text) or os.path.exists(text):
        return text
    raise argparse.ArgumentTypeError(f"unknown data set {text!r} (known: {', '.join(DATASETS)}; or the path of an "
                                     ".npz file or of an image folder)")


# Options whose values are parsed by more than their field's type.
PARSERS = {"dataset": dataset_arg}


def add_config_options(parser: argparse.ArgumentParser, *, only: Collection[str] | None = None,
                       sections: Collection[str] | None = None, required: Collection[str] = (),
                       notes: Mapping[str, str] | None = None) -> None:
    """One option per field of :class:`~shattering.config.RunConfig`, in its declaration order and grouped by the
    field's ``section``: ``--train-size`` for ``train_size``, with the field's help, type and choices.

    ``only`` / ``sections`` select fields by name / section (default: all); ``required`` fields must be given;
    ``notes[name]`` replaces the ``(default: ...)`` that ends a field's help, where a command gives the field a
    meaning of its own (a preset's scale sets the sizes). Options left out are absent from the namespace
    (defaults are applied by the config), so :func:`given_config_options` sees what was typed.
    """
    unknown = sorted(set(only or ()) - set(CONFIG_FIELDS))
    if unknown:
        raise ValueError(f"not RunConfig fields: {', '.join(unknown)}")
    notes = dict(notes or {})
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in dataclasses.fields(RunConfig):
        meta = f.metadata
        section = meta.get("section", "run")
        if (only is not None and f.name not in only) or (sections is not None and section not in sections):
            continue
        if meta.get("flag") == "":  # filled in when the config is resolved, never typed
            continue
        group = groups.setdefault(section, parser.add_argument_group(f"{section} options"))
        flag = meta.get("flag") or "--" + f.name.replace("_", "-")
        default = meta.get("default_help") or f.default
        note = notes.pop(f.name, None) or ("required" if f.name in required else f"default: {default}")
        help_text = f"{meta.get('help', '')} ({note})"
        kind = str(f.type)
        if meta.get("repeat"):  # --model-arg KEY=VALUE, --probe NAME...: repeatable, the config parses the list
            group.add_argument(flag, dest=f.name, action="append", default=argparse.SUPPRESS, metavar=meta["repeat"],
                               help=help_text)
            continue
        if kind.startswith("bool"):
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                               help=help_text)
            continue
        base = {"int": int, "float": float, "str": str}[kind.split("|")[0].strip()]
        parse = PARSERS.get(f.name) or (none_or(base) if "None" in kind and base is not str else base)
        group.add_argument(flag, dest=f.name, type=parse, default=argparse.SUPPRESS, help=help_text,
                           choices=field_choices(f) if base is str else None, required=f.name in required,
                           metavar=f.name.upper() if base is not str or not meta.get("choices") else None)
    if notes:
        raise ValueError(f"notes for fields not added: {', '.join(sorted(notes))}")


def add_config_file_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--config FILE.toml``: settings read from a TOML file (the keys of :class:`~shattering.config.RunConfig`,
    at the top or in one ``[run]`` table)."""
    parser.add_argument("--config", metavar="FILE.toml", help=help_text)


def config_file(args: argparse.Namespace) -> RunConfig | None:
    """The config of ``--config FILE.toml``, or None when none was given."""
    path = getattr(args, "config", None)
    return RunConfig.from_toml(path) if path else None


def given_config_options(args: argparse.Namespace) -> dict[str, Any]:
    """The config options typed on the command line (field name -> value)."""
    return {k: v for k, v in vars(args).items() if k in CONFIG_FIELDS}


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The config of ``--config FILE.toml`` (if given) with every option given on the command line on top."""
    base = config_file(args) or RunConfig()
    given = given_config_options(args)
    return base.replace(**given) if given else base


def json_flag(parser: argparse.ArgumentParser, what: str) -> None:
    """``--json``: print ``what`` as JSON (:func:`shattering.files.json_text`) instead of text."""
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON")

