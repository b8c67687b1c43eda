"""What every ``shatter`` command shares: the parser that fails in one sentence, and the options generated from
:class:`~shattering.config.RunConfig`'s field declarations."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Sequence

from ..config import RunConfig, field_choices

EXIT_USAGE = 2


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped: an error is one line on stderr, whatever
    the user typed into it."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad option prints one sentence (no usage dump) and exits 2."""

    def error(self, message: str):  # noqa: D102
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)}; see `{self.prog} --help`.\n")


def none_or(kind: Callable):
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


def add_config_options(parser: argparse.ArgumentParser, config_cls=None, skip: Sequence[str] = ()) -> None:
    """One option per field of :class:`~shattering.config.RunConfig` (defaults are applied later)."""
    config_cls = config_cls or RunConfig
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in dataclasses.fields(config_cls):
        if f.name in skip:
            continue
        meta = f.metadata
        section = meta.get("section", "run")
        group = groups.setdefault(section, parser.add_argument_group(f"{section} options"))
        flag = "--" + f.name.replace("_", "-")
        kind = str(f.type)
        help_text = f"{meta.get('help', '')} (default: {f.default})"
        if kind.startswith("bool"):
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                               help=help_text)
            continue
        base = {"int": int, "float": float, "str": str}[kind.split("|")[0].strip()]
        parse = none_or(base) if "None" in kind and base is not str else base
        group.add_argument(flag, dest=f.name, type=parse, default=argparse.SUPPRESS, help=help_text,
                           choices=field_choices(f) if base is str else None,
                           metavar=f.name.upper() if base is not str or not meta.get("choices") else None)


def config_from_args(args: argparse.Namespace):
    """The config of ``--config FILE.toml`` (if given) with every option given on the command line on top."""
    base = RunConfig.from_toml(args.config) if getattr(args, "config", None) else RunConfig()
    names = {f.name for f in dataclasses.fields(RunConfig)}
    given = {k: v for k, v in vars(args).items() if k in names}
    return base.replace(**given) if given else base
