"""The ``shatter`` command: the only place that parses arguments. Each module here adds one command group,
parses, calls one library function and prints; the list below is every command there is.

Every problem with the input ends in one sentence on stderr and exit status 2; a traceback is a bug. A reader
that closes the pipe early (``shatter ... | head -2``) stops the printing, not the work: a run or sweep goes on to
its end, quietly, and the command exits as it would have.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from .. import _openmp
from .._version import __version__
from ..errors import ShatteringError
from ..formatting import guard_closed_pipes
from . import data, landscape, measures, presets, report, run, runs, theory, tune
from .common import EXIT_USAGE, ArgumentParser, one_line

# Every command group, in the order `shatter --help` lists them; each module has ``register(subparsers)``.
COMMAND_GROUPS = (run, data, presets, runs, measures, landscape, report, theory, tune)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="shatter", description="Randomization tests of Zhang et al. (ICLR 2017): "
                            "fit random labels, random pixels and Gaussian noise, and the paper's theory.")
    parser.add_argument("--version", action="version", version=f"shattering {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=ArgumentParser)
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    guard_closed_pipes()  # a reader that closes the pipe stops the printing, not the run
    try:
        args = build_parser().parse_args(argv)  # inside the try: --help into a closed pipe is one too
        # where the process starts: OpenMP's wait policy, before the command imports torch (shattering._openmp)
        _openmp.set_openmp_wait_policy()
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # inside the try: a reader gone before the last buffered line is a closed pipe too
        return status
    except BrokenPipeError:
        # The standard recipe: nothing more can be written, so point stdout at /dev/null (the flush at exit
        # would fail again) and end quietly; the reader asked for no more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ShatteringError as exc:
        print(f"shatter: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("shatter: interrupted; run the same command again to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
