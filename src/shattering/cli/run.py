"""``shatter run``: one randomization test (Section 2.1), trained, measured and recorded."""

from __future__ import annotations

from ..files import json_text
from ..formatting import plural
from ..runs import KEEP_CHECKPOINTS
from ..train.advice import advice_lines
from .common import add_config_file_option, add_config_options, config_from_args, json_flag

# --------------------------------------------------------------------------------------------------
# shatter run
# --------------------------------------------------------------------------------------------------


def register(sub) -> None:
    p = sub.add_parser("run", help="train one randomization test (a paper model on a randomized data set)",
                       description="Train one run to 100% training accuracy (--until fit) or for its epoch budget. "
                                   "Records go to OUT/<run>/; running the same command again resumes or reuses it "
                                   "(--rerun trains it again). "
                                   "Started by torchrun (torchrun --nproc-per-node N -m shattering run ...), N "
                                   "processes train the run data-parallel, one shard of every batch each.")
    add_config_file_option(p, "read settings from a TOML file (options given here win)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_record_options(p, "the run")
    json_flag(p, "the summary (with reused: whether it was read from a record made before)")
    add_config_options(p)
    p.set_defaults(func=_cmd_run)


def add_record_options(p, what: str) -> None:
    """``--rerun`` and ``--keep-checkpoints``: how the records of ``what`` are managed (not in the run id)."""
    p.add_argument("--rerun", action="store_true",
                   help=f"train {what} again even when finished: the old record folder is moved aside to "
                        "<name>.old-<timestamp> (never deleted)")
    p.add_argument("--keep-checkpoints", choices=KEEP_CHECKPOINTS, default="last",
                   help="the checkpoints a finished run keeps: last (checkpoint.pt), all (the previous one too) or "
                        "none (default: last)")


def _cmd_run(args) -> int:
    from ..runs import run  # here: `shatter --help` loads no torch
    from ..train.distributed import is_main_process

    cfg = config_from_args(args)
    result = run(cfg, progress=not args.quiet and not args.json, rerun=args.rerun,
                 keep_checkpoints=args.keep_checkpoints)
    if not is_main_process():  # under torchrun process 0 reports; it keeps the record
        return 0
    if args.json:
        print(json_text(result.facts()), end="")
        return 0
    s = result.summary
    print(result.message)
    data = s["data"]
    print(f"  data:     {data['name']}, {data['n_train']} train / {data['n_test']} test, shape {data['shape']}, label "
          f"noise {100 * data['label_noise']:.1f}%, fingerprint {s['data_fingerprint'][:12]}")
    print(f"  schedule: {s['schedule']['text']}")
    ran = (f"  ran:      {plural(s['epochs'], 'epoch')}, {plural(s['steps'], 'step')}, {s['seconds']:.1f} s on "
           f"{s['device']} ({s['precision']})")
    passes = (s.get("evaluation") or {}).get("passes")
    if passes is not None and not result.reused:  # how often the whole sets were evaluated (the policy: --help)
        share = f", {100 * s['eval_seconds'] / s['seconds']:.1f}% of the time" if s["seconds"] > 0 else ""
        ran += f"; {plural(passes, 'full evaluation')}{share}"
    print(ran + ("; when the record was made (nothing trained now)" if result.reused else ""))
    for warning in s.get("warnings", []):
        print(f"  warning:  {warning}")
    for line in advice_lines(s.get("advice") or [], "flags"):  # why it did not fit, and the options to change
        print(f"  advice:   {line}")
    print(f"  record:   {result.run_dir}")
    return 0
