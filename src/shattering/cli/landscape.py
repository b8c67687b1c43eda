"""``shatter landscape RUN [RUN2]``: a slice of the loss landscape of finished runs (Goodfellow, Vinyals and Saxe,
ICLR 2015; Im, Tao and Branson 2016; Li et al., NeurIPS 2018): the line from the initialization, the path
between two solutions with its barrier, a plane of two filter-normalized directions, or a trajectory on its
principal directions (:mod:`shattering.experiments.landscape`). Writes the figure and the numbers (JSON) and
prints what the slice found."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ConfigError
from ..files import json_text
from .common import json_flag

KINDS = ("line", "between", "plane", "trajectory")


def register(sub) -> None:
    p = sub.add_parser("landscape", help="a slice of the loss landscape of finished runs (lines, barriers, planes)",
                       description="Evaluate the training (and test) loss and accuracy of a finished run along a "
                                   "slice of its weight space, on fixed seeded subsets of its data with the labels "
                                   "it was trained on, in eval mode; write landscape-KIND.png/.svg/.pdf and "
                                   "landscape-KIND.json into --out (default RUN/landscape) and print what it found. "
                                   "In Python: shattering.experiments.landscape.line_from_init, between, plane, "
                                   "trajectory.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="a finished run's folder; a second one for --kind between")
    p.add_argument("--kind", choices=KINDS, default=None,
                   help="line: from the initialization (alpha in [-0.5, 1.5]); between: from RUN to RUN2 (the "
                        "barrier); plane: two filter-normalized Gaussian directions; trajectory: the snapshots "
                        "probe's weights on their two principal directions (default: line for one run, between "
                        "for two)")
    p.add_argument("--examples", type=int, default=1000, help="training (and test) examples, a seeded subset "
                                                              "(default 1000)")
    p.add_argument("--grid", type=int, default=None, help="points per side of a plane (odd; default 51) or a "
                                                           "trajectory's plane (default 21)")
    p.add_argument("--span", type=float, default=1.0, help="a plane covers [-span, span]^2 (default 1)")
    p.add_argument("--ignore", choices=("biasbn", "none"), default="biasbn",
                   help="a plane's directions: zero the biases and batch norm's parameters (biasbn, the default) "
                        "or include them (none)")
    p.add_argument("--bn", choices=("recompute", "interpolate"), default="recompute",
                   help="between two solutions, batch norm's running statistics: recomputed at each point on the "
                        "training subset (the default) or interpolated with the weights")
    p.add_argument("--seed", type=int, default=0, help="a plane's directions are drawn from seed and seed + 1")
    p.add_argument("--out", default=None, help="where to write (default: RUN/landscape)")
    json_flag(p, "the slice's numbers")
    p.set_defaults(func=_cmd_landscape)


def _cmd_landscape(args) -> int:
    from ..experiments import landscape  # here: it imports torch, and `shatter --help` does not
    from ..report.landscape import describe, draw_slices

    kind = args.kind or ("between" if len(args.runs) == 2 else "line")
    wanted = 2 if kind == "between" else 1
    if len(args.runs) != wanted:
        raise ConfigError(f"--kind {kind} takes {'two runs (RUN RUN2)' if wanted == 2 else 'one run'}; got "
                          f"{len(args.runs)}.")
    if args.examples < 1:
        raise ConfigError(f"--examples must be at least 1; got {args.examples}.")
    run = args.runs[0]
    if kind == "line":
        result = landscape.line_from_init(run, examples=args.examples)
    elif kind == "between":
        result = landscape.between(run, args.runs[1], examples=args.examples, bn=args.bn)
    elif kind == "plane":
        result = landscape.plane(run, grid=args.grid or landscape.GRID, span=args.span, examples=args.examples,
                                 ignore=args.ignore, seed=args.seed)
    else:
        result = landscape.trajectory(run, grid=args.grid or 21, examples=args.examples)
    out = Path(args.out) if args.out else Path(run) / "landscape"
    paths = draw_slices([result], out, f"landscape-{kind}", describe(result))
    if args.json:
        sys.stdout.write(json_text(result) + "\n")
    else:
        print(describe(result))
        print(f"{result['train_examples']} training examples, {result['seconds']:.1f} s; written into {out}: "
              + ", ".join(p.name for p in paths))
    return 0
