"""``shatter tune``: what shattering measured on this machine to run fast (the choices that do not change a run's
results), and ``--wait-policy``: measure OpenMP's wait policy of a process that starts alone."""

from __future__ import annotations

from .. import _openmp
from ..executors.wait_policy import measure_wait_policy
from ..files import json_text
from ..tuning import cache_path, cached_entries, machine_key
from .common import json_flag


def register(sub) -> None:
    p = sub.add_parser("tune", help="what was measured on this machine to run fast; --wait-policy measures "
                                    "OpenMP's wait policy",
                       description="Print this machine's measured execution choices: the OpenMP wait policy a "
                                   "process that starts alone takes, and how many (model, input, batch) step "
                                   "timings are cached (layout and threads are measured on a run's first use). "
                                   "--wait-policy measures the wait policy: an MLP 1x512 fitting random labels on "
                                   "digits, alone and two at once, spinning against PASSIVE, in alternating rounds "
                                   "(about three minutes on 2 cores; run it when nothing else runs).")
    p.add_argument("--wait-policy", action="store_true",
                   help="measure OpenMP's wait policy on this machine and keep the faster one for later processes")
    p.add_argument("--repeats", type=int, default=2, metavar="N",
                   help="with --wait-policy: rounds of timings, each policy in turn; the medians are kept (default 2)")
    json_flag(p, "what was measured")
    p.set_defaults(func=_cmd_tune)


def _cmd_tune(args) -> int:
    say = None if args.json else (lambda text: print(f"tune: {text}", flush=True))
    measured = measure_wait_policy(repeats=args.repeats, progress=say) if args.wait_policy else None
    choice = measured or _openmp.measured_choice()
    facts = {"machine": _openmp.machine_key(), "wait_policy_here": {"policy": _openmp.WAIT_POLICY,
                                                                    "why": _openmp.WAIT_WHY},
             "measured_wait_policy": choice, "wait_policy_cache": str(_openmp.choice_path()),
             "tuning_cache": str(cache_path()), "tuned_steps": len(cached_entries()),
             "tuning_machine": machine_key()}
    if args.json:
        print(json_text(facts), end="")
        return 0
    print(f"machine: {facts['machine']}")
    if choice is None:
        print(f"measured wait policy: none ({_openmp.MEASURE_HINT}; until then a process alone spins)")
    else:
        print(f"measured wait policy: {choice['policy']} for a process that starts alone, measured "
              f"{choice.get('measured_at', '')}: {choice.get('why', '')}")
        print(f"  kept in {facts['wait_policy_cache']}")
    if not args.wait_policy:
        print(f"this process: {_openmp.WAIT_WHY}")
    print(f"tuned training steps cached for {facts['tuning_machine']}: {facts['tuned_steps']} in "
          f"{facts['tuning_cache']}")
    return 0
