"""``shatter presets``, ``shatter sweep PRESET`` and ``shatter reproduce PRESET``: list the paper's artefacts,
run their grids, and draw them.

``shatter reproduce`` = ``sweep`` + render: the runs go to ``OUT/<run>/`` (finished runs are read, broken ones
resumed, a failing run does not stop the others), then each preset's figure or table is drawn into
``OUT/artefacts/<preset>/``. Running it again trains nothing and rewrites the same bytes.

``--executor ray`` spreads the runs over a Ray cluster (:mod:`shattering.executors.ray_executor`); the
ImageNet presets (``table2``, ``fig2a``) need ``--data-dir`` with the images (the group ``all`` skips them,
with a note, when the images are not found).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import RunConfig
from ..errors import ConfigError, ShatteringError
from ..executors import EXECUTORS
from ..experiments.presets import PRESETS, SCALES, get_preset
from ..files import json_text
from ..report.reproduce import GROUPS, check_user_data, reproduce
from ..runs.provenance import reuse_facts
from ..train.advice import advice_lines
from ..validation import must_be
from .common import add_config_file_option, add_config_options, config_file, given_config_options, json_flag
from .run import add_record_options

if TYPE_CHECKING:
    from ..executors.outcome import Outcome

# The settings of a run that ``sweep`` and ``reproduce`` take as options, generated from RunConfig's declarations
# (every other setting: --config FILE.toml). They win over the preset's own; the notes say what differs from `run`.
SWEEP_FIELDS = ("dataset", "data_dir", "train_size", "test_size", "seed", "data_seed", "device", "precision", "out")
SWEEP_NOTES = {
    "dataset": "default: the scale's; swaps the data set of every run",
    "train_size": "default: the scale's",
    "test_size": "default: the scale's",
    "seed": "default: 0; repeat i of --seeds takes SEED + i",
    "data_seed": "default: 0; repeat i of --seeds takes DATA_SEED + i",
}
CONFIG_HELP = ("settings for every run of the preset, from a TOML file (the keys `shatter run --config` reads). "
               "They apply under the preset's own: where the preset's scale or grid sets a value (data set, sizes, "
               "budget, model, corruption, p, regularizers) the preset's wins; --seed and --data-seed from the file "
               "number the repeats; options given here win over both")


def add_sweep_options(p, extra_names: tuple[str, ...] = ()) -> None:
    p.add_argument("preset", help=f"one of: {', '.join((*PRESETS, *extra_names))}")
    p.add_argument("--scale", choices=SCALES, default=None, help="smoke (seconds), quick (<= ~30 min on a "
                   "2-core CPU), paper (the paper's data and schedule; a GPU) (default: quick, said when it starts)")
    p.add_argument("--seeds", type=int, default=1, metavar="N", help="repeat every run N times, with seeds "
                   "SEED..SEED+N-1 and data seeds DATA_SEED..DATA_SEED+N-1 (default: 1)")
    p.add_argument("--models", default=None, metavar="M1,M2,...",
                   help="run the preset's grid with these models instead of the paper's: built-in names or "
                        "package.module:factory (each distinct row of the grid once per model)")
    p.add_argument("--pack", type=int, default=None, metavar="K",
                   help="train up to K runs together as one packed model (1: never; default: pack MLP runs)")
    add_config_file_option(p, CONFIG_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_record_options(p, "every run of the preset")
    json_flag(p, "the outcome of every run (record folder, status, fit, accuracies)")
    add_config_options(p, only=SWEEP_FIELDS, notes={
        **SWEEP_NOTES, "data_dir": "default: cache, system, download; the ImageNet presets: DIR/train/<class>/*.JPEG "
                                   "and DIR/val/<class>/*.JPEG"})
    g = p.add_argument_group("executor options")
    g.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local: on this machine, in this process or in worker processes that share the cores "
                        "(measured; --local-workers) (default); ray: each run a Ray task, on "
                        "this machine or a cluster (pip install 'shattering[ray]'); --out must then be storage "
                        "every node mounts at the same path")
    g.add_argument("--local-workers", type=int, default=None, metavar="W",
                   help="--executor local: train in W processes at once, sharing the cores (1: one run after "
                        "another in this process; default: SHATTERING_SWEEP_WORKERS, else measured for the model)")
    g.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="the Ray cluster to join: auto, HOST:6379 or ray://HOST:10001 (default: RAY_ADDRESS, else a "
                        "new local cluster)")
    g.add_argument("--cpus-per-run", type=float, default=None, metavar="N", help="CPUs a Ray task reserves "
                   "(default: 1)")
    g.add_argument("--gpus-per-run", type=float, default=None, metavar="N", help="GPUs a Ray task reserves; "
                   "fractions let several runs share a card (default: 0)")
    g.add_argument("--max-retries", type=int, default=None, metavar="N", help="retries of a Ray task whose "
                   "worker died; each resumes from the run's checkpoint (default: 3)")


def executor_options(args) -> dict:
    """The Ray executor's options given on the command line (see RayOptions)."""
    names = {"ray_address": "address", "cpus_per_run": "cpus_per_run", "gpus_per_run": "gpus_per_run",
             "max_retries": "max_retries"}
    given = {key: getattr(args, arg) for arg, key in names.items() if getattr(args, arg, None) is not None}
    if given and getattr(args, "executor", "local") != "ray":
        flags = ", ".join("--" + arg.replace("_", "-") for arg in names if getattr(args, arg, None) is not None)
        raise ConfigError(f"{flags} appl{'ies' if len(given) == 1 else 'y'} to --executor ray only.")
    return given


def preset_request(args) -> dict:
    """What ``sweep`` and ``reproduce`` ask of every preset, as keyword arguments of
    :meth:`~shattering.experiments.presets.Preset.configs`: the ``--config`` file's settings as ``base`` (under
    the preset's), the repeats' first seeds and the record folder (options, else the file, else the defaults),
    and every other option given as an override (over the preset's)."""
    base = config_file(args)
    given = given_config_options(args)
    start = base or RunConfig()
    return {"dataset": given.pop("dataset", None), "seeds": args.seeds, "out": given.pop("out", start.out),
            "seed": given.pop("seed", start.seed), "data_seed": given.pop("data_seed", start.data_seed),
            "base": base, "models": _models(args), **given}


def _models(args) -> list[str] | None:
    """``--models a,b``: the list, or None for the preset's own."""
    if getattr(args, "models", None) is None:
        return None
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    if not names:
        raise ConfigError(must_be("--models", "a comma-separated list of models", args.models,
                                  of=f"shatter {args.command}"))
    return names


def run_options(args) -> dict:
    """How ``sweep`` and ``reproduce`` run: progress bar or log lines (neither on stdout under --json), packing,
    executor."""
    if args.pack is not None and args.pack < 1:
        raise ConfigError(must_be("--pack", "a positive number of runs", args.pack, of=f"shatter {args.command}"))
    workers = getattr(args, "local_workers", None)
    if workers is not None and workers < 1:
        raise ConfigError(must_be("--local-workers", "a positive number of processes", workers,
                                  of=f"shatter {args.command}"))
    return {"progress": not args.quiet and not args.json, "pack": args.pack, "local_workers": workers,
            "log": (lambda line: print(line, flush=True)) if args.quiet and not args.json else None,
            "executor": args.executor, "executor_options": executor_options(args), "rerun": args.rerun,
            "keep_checkpoints": args.keep_checkpoints}


SCALE_WORDS = {"smoke": "seconds", "quick": "up to about 30 minutes on 2 cores",
               "paper": "the paper's data and schedule: hours to days, meant for a GPU"}


def announce_scale(args) -> None:
    """Resolve ``--scale`` (quick when not given) and say on stderr, before anything trains, which scale runs and
    what it costs, when the default was taken."""
    if args.scale is None:
        args.scale = "quick"
        if not args.json:
            print(f"shatter {args.command} {args.preset}: scale quick ({SCALE_WORDS['quick']}; the default: "
                  "--scale smoke takes seconds)", file=sys.stderr, flush=True)


def sweep_from_args(args) -> list[Outcome]:
    from ..executors import sweep  # here: `shatter --help` loads no torch

    announce_scale(args)
    options = run_options(args)
    configs = get_preset(args.preset).configs(args.scale, **preset_request(args))
    check_user_data(configs)
    return sweep.run_sweep(configs, **options)


def outcome_json(o: Outcome) -> dict:
    """One run of a sweep as ``--json`` prints it: where its record is, how it ended, what it measured."""
    from ..executors.outcome import describe  # here: `shatter --help` loads no torch

    s = o.summary or {}
    final = s.get("final") or {}
    return {"run": describe(o.config), "run_id": o.config.run_id(), "run_dir": str(o.run_dir),
            "status": o.status, "done_before": o.skipped, "fit": bool(s.get("fit", False)),
            "fit_epoch": s.get("fit_epoch"), "epochs": s.get("epochs"), "train_acc": final.get("train_acc"),
            "test_acc": final.get("test_acc"), "best_test_acc": s.get("best_test_acc"), "error": o.error,
            "reuse": reuse_facts(s) if o.skipped and s else None,
            "moved_aside": str(o.moved_aside) if o.moved_aside is not None else None}


def preset_keys(name: str, scale: str) -> dict[str, str]:
    """The settings preset ``name`` (or every preset of a group) fixes at ``scale``, each with what sets it:
    ``"scale"`` (a larger scale changes it) or ``"grid"`` (what the preset measures). A ``--config`` file
    changes neither (the preset's win)."""
    keys: dict[str, str] = {}
    for member in GROUPS.get(name, (name,)):
        preset = PRESETS.get(member)
        if preset is None or preset.computed:
            continue
        keys |= {k: "grid" for row in preset.rows for k in row}
        keys |= {k: "scale" for k in preset.scale_settings(scale)}
        keys |= {k: "scale" for per_model in preset.model_scales.get(scale, {}).values() for k in per_model}
    return keys


def print_advice(args, outcomes: list[Outcome]) -> None:
    """For the runs that did not fit: what their numbers say, once per kind of change, in the syntax ``sweep``
    and ``reproduce`` take (a ``--config`` file's keys; the budget is the scale's)."""
    from ..executors.outcome import describe  # here: `shatter --help` loads no torch

    fixed = preset_keys(args.preset, args.scale)
    kinds: dict[str, tuple[str, list[Outcome]]] = {}  # one entry per change suggested (its first run's words)
    for o in outcomes:
        for finding in (o.summary or {}).get("advice") or []:
            key = json_text(finding.get("change") or {}, sort_keys=True)
            kinds.setdefault(key, (advice_lines([finding], "config", fixed)[0], []))[1].append(o)
    if not kinds:
        return
    not_fit = sum(1 for o in outcomes if o.summary is not None and not o.summary.get("fit"))
    print(f"\n{not_fit} of {len(outcomes)} runs did not fit; what their numbers say:")
    for line, runs in kinds.values():
        print(f"  {len(runs)} run{'s' if len(runs) > 1 else ''} (e.g. {describe(runs[0].config)}): {line}")


def register(sub) -> None:
    p = sub.add_parser("presets", help="list the paper's figures and tables that `shatter sweep` can run")
    json_flag(p, "the list")
    p.set_defaults(func=_cmd_presets)
    p = sub.add_parser("sweep", help="run every run of a preset (finished runs are skipped, broken ones resumed)",
                       description="Run every run of PRESET into OUT/<run>/ (finished runs are read, broken ones "
                                   "resumed, a failed run does not stop the others). Exit status 1 when a run "
                                   "failed.")
    add_sweep_options(p)
    p.set_defaults(func=_cmd_sweep)
    p = sub.add_parser("reproduce", help="run a preset's sweep, then draw its figure or table (fig1 = fig1a + fig1bc)",
                       description="Run every run of PRESET (finished runs are read, broken ones resumed, a failed "
                                   "run does not stop the others), then draw the paper's figure or table into "
                                   "OUT/artefacts/PRESET/: PNG + SVG + PDF + CSV for a figure, Markdown + CSV for a "
                                   "table, and a JSON sidecar naming every run behind it. Exit status 1 when a run "
                                   "failed. `shatter report OUT` puts everything on one HTML page.")
    add_sweep_options(p, tuple(GROUPS))
    p.set_defaults(func=_cmd_reproduce)


def _run_counts(preset) -> dict[str, int]:
    """Runs of one seed of ``preset`` at each scale (the grid's rows where its configs need data not here)."""
    counts = {}
    for scale in SCALES:
        try:
            counts[scale] = len(preset.configs(scale))
        except ShatteringError:  # the ImageNet presets need their images to make configs
            counts[scale] = len(preset.rows)
    return counts


def _cmd_presets(args) -> int:
    rows = {name: {"title": p.title, "paper": p.paper_ref, "runs": len(p.rows),
                   "runs_by_scale": {} if p.computed else _run_counts(p),
                   "claims": [{"id": c.id, "words": c.words, "where": c.where} for c in p.claims]}
            for name, p in PRESETS.items()}
    if args.json:
        print(json_text(rows, sort_keys=False), end="")
        return 0
    counts = {}
    for name, row in rows.items():
        by_scale = row["runs_by_scale"]
        if not by_scale:
            counts[name] = "computed"
        elif len(set(by_scale.values())) == 1:
            counts[name] = f"{row['runs']} runs"
        else:
            counts[name] = "/".join(str(by_scale[s]) for s in SCALES) + " runs"
    width = {"name": max(map(len, rows)), "paper": max(len(r["paper"]) for r in rows.values()),
             "runs": max(map(len, counts.values()))}
    print(f"{'preset':<{width['name']}}  {'in the paper':<{width['paper']}}  {'runs':>{width['runs']}}  what")
    for name, row in rows.items():
        print(f"{name:<{width['name']}}  {row['paper']:<{width['paper']}}  {counts[name]:>{width['runs']}}  "
              f"{row['title']}")
        if row["claims"]:
            print(f"{'':<{width['name']}}  claims it tests: {', '.join(c['id'] for c in row['claims'])}")
    print(f"Runs are per seed (--seeds N repeats them); where the scales differ, {'/'.join(SCALES)}.")
    print("groups: " + "; ".join(f"{g} = {' + '.join(members)}" for g, members in GROUPS.items()))
    return 0


def _cmd_sweep(args) -> int:
    from ..executors.outcome import failed, summary_table  # here: `shatter --help` loads no torch

    outcomes = sweep_from_args(args)
    bad = failed(outcomes)
    if args.json:
        print(json_text({"outcomes": [outcome_json(o) for o in outcomes], "failed": len(bad)}), end="")
        return 1 if bad else 0
    print(summary_table(outcomes))
    print_advice(args, outcomes)
    if bad:
        print(f"{len(bad)} of {len(outcomes)} runs failed; fix the cause and run the same command again "
              "(finished runs are kept).")
        return 1
    return 0


def _cmd_reproduce(args) -> int:
    from ..executors.outcome import failed, summary_table  # here: `shatter --help` loads no torch

    announce_scale(args)
    options = run_options(args)
    request = preset_request(args)
    result = reproduce(args.preset, args.scale, **request, **options)
    outcomes = result["outcomes"]
    bad = failed(outcomes)
    if args.json:
        print(json_text({"outcomes": [outcome_json(o) for o in outcomes], "failed": len(bad),
                         "artefacts": result["artefacts"], "render_errors": result["render_errors"],
                         "skipped": result["skipped"]}), end="")
        return 1 if bad or result["render_errors"] else 0
    if outcomes:
        print(summary_table(outcomes))
        print_advice(args, outcomes)
        print()
    for name, paths in result["artefacts"].items():
        print(f"{name}: {Path(paths[0]).parent}/")
        for path in paths:
            print(f"  {Path(path).name}")
    for name, error in result["render_errors"].items():
        print(f"{name}: NOT DRAWN: {error} (a bug in shattering; the trace is above)")
    for name, why in result["skipped"].items():
        print(f"{name}: SKIPPED: {why}")
    if bad:
        print(f"\n{len(bad)} of {len(outcomes)} runs failed (shown as failed in the artefacts):")
        for o in bad:
            print(f"  {o.line()}")
        print("Fix the cause and run the same command again (finished runs are kept).")
    print(f"\nOne page with everything: shatter report {request['out']}")
    return 1 if bad or result["render_errors"] else 0
