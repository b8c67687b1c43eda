"""``shatter presets`` and ``shatter sweep PRESET``: list the paper's artefacts and run their grids."""

from __future__ import annotations

import json

from .presets import PRESETS, SCALES, get_preset


def add_sweep_options(p) -> None:
    p.add_argument("preset", help=f"one of: {', '.join(PRESETS)}")
    p.add_argument("--scale", choices=SCALES, default="quick", help="smoke (seconds), quick (<= ~30 min on a "
                   "2-core CPU), paper (the paper's data and schedule; a GPU) (default: quick)")
    p.add_argument("--dataset", default=None, help="swap the data set (default: the scale's)")
    p.add_argument("--seeds", type=int, default=1, help="repeat every run with seeds 0..N-1 (default: 1)")
    p.add_argument("--out", default="runs", help="folder of the run records (default: runs)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None)
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default=None)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def preset_configs(args) -> list:
    overrides = {k: getattr(args, k) for k in ("device", "precision") if getattr(args, k, None) is not None}
    return get_preset(args.preset).configs(args.scale, dataset=args.dataset, seeds=args.seeds, out=args.out,
                                           **overrides)


def sweep_from_args(args):
    from ..sweep import run_sweep

    return run_sweep(preset_configs(args), progress=not args.quiet,
                     log=(lambda line: print(line, flush=True)) if args.quiet else None)


def register(sub) -> None:
    p = sub.add_parser("presets", help="list the paper's figures and tables that `shatter sweep` can run")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_presets)
    p = sub.add_parser("sweep", help="run every run of a preset (finished runs are skipped, broken ones resumed)")
    add_sweep_options(p)
    p.set_defaults(func=_cmd_sweep)


def _cmd_presets(args) -> int:
    if args.json:
        print(json.dumps({name: {"title": p.title, "paper": p.paper_ref, "runs": len(p.rows)}
                          for name, p in PRESETS.items()}, indent=2))
        return 0
    for name, p in PRESETS.items():
        print(f"{name:<8} {p.paper_ref:<28} {len(p.rows):>3} runs  {p.title}")
    return 0


def _cmd_sweep(args) -> int:
    from ..sweep import failed, summary_table

    outcomes = sweep_from_args(args)
    print(summary_table(outcomes))
    bad = failed(outcomes)
    if bad:
        print(f"{len(bad)} of {len(outcomes)} runs failed; fix the cause and run the same command again "
              "(finished runs are kept).")
        return 1
    return 0
