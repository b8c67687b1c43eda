"""The ``shatter`` command. It only parses arguments, builds configs and calls library functions.

Every problem with the input ends in one sentence on stderr and exit status 2; a traceback is a bug.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence

from .errors import ShatteringError

EXIT_USAGE = 2


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped: an error is one line on stderr, whatever
    the user typed into it."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad option prints one sentence (no usage dump) and exits 2."""

    def error(self, message: str):  # noqa: D102
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)}; see `{self.prog} --help`.\n")


def _none_or(kind: Callable):
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
    from .config import RunConfig

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
        parse = _none_or(base) if "None" in kind and base is not str else base
        group.add_argument(flag, dest=f.name, type=parse, default=argparse.SUPPRESS, help=help_text,
                           choices=meta.get("choices") if base is str else None,
                           metavar=f.name.upper() if base is not str or not meta.get("choices") else None)


def config_from_args(args: argparse.Namespace):
    """The config of ``--config FILE.toml`` (if given) with every option given on the command line on top."""
    from .config import RunConfig

    base = RunConfig.from_toml(args.config) if getattr(args, "config", None) else RunConfig()
    names = {f.name for f in dataclasses.fields(RunConfig)}
    given = {k: v for k, v in vars(args).items() if k in names}
    return base.replace(**given) if given else base


# --------------------------------------------------------------------------------------------------
# shatter run
# --------------------------------------------------------------------------------------------------


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="train one randomization test (a paper model on a randomized data set)",
                       description="Train one run to 100%% training accuracy (--until fit) or for its epoch budget. "
                                   "Records go to OUT/<run>/; running the same command again resumes or reuses it. "
                                   "Started by torchrun (torchrun --nproc-per-node N -m shattering run ...), N "
                                   "processes train the run data-parallel (docs/scaling.md).")
    p.add_argument("--config", metavar="FILE.toml", help="read settings from a TOML file (options given here win)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_config_options(p)
    p.set_defaults(func=_cmd_run)


def _cmd_run(args) -> int:
    from .distributed import is_main_process
    from .train import run

    cfg = config_from_args(args)
    result = run(cfg, progress=not args.quiet and not args.json)
    if not is_main_process():  # under torchrun process 0 reports; it keeps the record
        return 0
    if args.json:
        print(json.dumps(result.summary, indent=2, sort_keys=True))
        return 0
    s = result.summary
    print(result.message)
    print(f"  data:     {s['data']['name']}, {s['data']['n_train']} train / {s['data']['n_test']} test, "
          f"shape {s['data']['shape']}, label noise {100 * s['data']['label_noise']:.1f}%, "
          f"fingerprint {s['data_fingerprint'][:12]}")
    print(f"  schedule: {s['schedule']['text']}")
    print(f"  ran:      {s['epochs']} epochs, {s['steps']} steps, {s['seconds']:.1f} s on {s['device']} "
          f"({s['precision']})")
    for warning in s.get("warnings", []):
        print(f"  warning:  {warning}")
    print(f"  record:   {result.run_dir}")
    return 0


# --------------------------------------------------------------------------------------------------
# shatter data
# --------------------------------------------------------------------------------------------------


def _add_data(sub) -> None:
    p = sub.add_parser("data", help="list, fetch and inspect data sets")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="{list,fetch,show}")
    lp = dsub.add_parser("list", help="which data sets are available here, and where")
    lp.add_argument("--json", action="store_true")
    lp.set_defaults(func=_cmd_data_list)
    fp = dsub.add_parser("fetch", help="download a data set (checksummed) into the cache or --data-dir")
    fp.add_argument("name")
    fp.add_argument("--data-dir", default=None)
    fp.set_defaults(func=_cmd_data_fetch)
    sp = dsub.add_parser("show", help="load, prepare and randomize a data set; print what it is")
    sp.add_argument("name")
    sp.add_argument("--corruption", default="true-labels")
    sp.add_argument("--p", type=float, default=None)
    sp.add_argument("--seed", type=int, default=0, help="corruption and subset seed")
    sp.add_argument("--train-size", type=int, default=None)
    sp.add_argument("--test-size", type=int, default=None)
    sp.add_argument("--crop", type=_none_or(int), default=None, help="centre crop (0: none; default: the data set's)")
    sp.add_argument("--whitening", default=None)
    sp.add_argument("--exclude-true-class", action="store_true")
    sp.add_argument("--corrupt-test-labels", action="store_true")
    sp.add_argument("--pixel-unit", default="position")
    sp.add_argument("--data-dir", default=None)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=_cmd_data_show)


def _cmd_data_list(args) -> int:
    from .data import list_local

    rows = list_local()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {'yes' if r['available'] else 'no ':<3}  {r['location']}")
    return 0


def _cmd_data_fetch(args) -> int:
    from .data import fetch

    folder = fetch(args.name, data_dir=args.data_dir)
    print(f"{args.name}: ready in {folder}")
    return 0


def _cmd_data_show(args) -> int:
    from .config import RunConfig
    from .train import make_data

    cfg = RunConfig(dataset=args.name, corruption=args.corruption, p=args.p, data_seed=args.seed,
                    train_size=args.train_size, test_size=args.test_size, crop=args.crop, whitening=args.whitening,
                    exclude_true_class=args.exclude_true_class, corrupt_test_labels=args.corrupt_test_labels,
                    pixel_unit=args.pixel_unit, data_dir=args.data_dir)
    info = make_data(cfg, progress=not args.json).describe()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if key != "class_names":
            print(f"{key:>22}: {value}")
    return 0


# --------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------

# Modules that add sub-commands: each has ``register(subparsers)``.
_COMMANDS: list[Callable] = [_add_run, _add_data]


def _plugin_commands() -> list[Callable]:
    registers = []
    for module in ("shattering.sweep", "shattering.experiments.cli", "shattering.report.cli", "shattering.theory.cli"):
        try:
            mod = __import__(module, fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue  # not built yet
            raise
        if hasattr(mod, "register"):
            registers.append(mod.register)
    return registers


def build_parser() -> ArgumentParser:
    from . import __version__

    parser = ArgumentParser(prog="shatter", description="Randomization tests of Zhang et al. (ICLR 2017): "
                            "fit random labels, random pixels and Gaussian noise, and the paper's theory.")
    parser.add_argument("--version", action="version", version=f"shattering {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=ArgumentParser)
    for register in _COMMANDS + _plugin_commands():
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ShatteringError as exc:
        print(f"shatter: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("shatter: interrupted; run the same command again to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
