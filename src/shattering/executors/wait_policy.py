"""OpenMP's wait policy for a process that starts alone, chosen by measurement on this machine
(``shatter tune --wait-policy``) and kept in the user cache for :mod:`shattering._openmp`.

A process that starts alone cannot know whether a second one will come. Spinning (libgomp's default) is what
makes a step of several threads fast alone, and sleeping (``PASSIVE``) is what lets a second process share the
cores; which costs less depends on the machine: ``bench/bench.py``'s ``wait-policy`` part found different
winners on different CPUs (their timings: bench/RESULTS.md, "Figures moved from the code"). So the choice is
measured, the way the thread count is (:mod:`shattering.tuning`): the README's main
job (the randomization test of Section 2.1 of Zhang et al., ICLR 2017, an MLP 1x512 on digits with random labels,
trained to fit) is run alone and then twice, the second started as soon as the first holds its cores, with each
policy in turn, twice; the policy with the smaller sum of the time alone and the mean time in company is kept,
spinning unless the other costs 5% less. A process that starts while another holds cores always sleeps
(spinning there is the collapse :mod:`shattering.lease` exists for), so the measurement only decides the policy
of the first.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from .. import _openmp
from ..errors import ShatteringError
from ..files import atomic_write_json, read_json
from ..lease import cores_held_elsewhere, cpu_cores

POLICIES = ("spin", "PASSIVE")
JOB = ("--dataset", "digits", "--model", "mlp-1x512", "--corruption", "random-labels", "--seed", "0")
WARM_UP = ["--until", "epochs", "--epochs", "1"]  # one epoch: the run's tuning (threads, cached per policy) is done
MARGIN = 0.05  # the other policy must cost this much less than spinning to replace it (noise: below)
START_TIMEOUT_S = 120.0  # the first job of a pair takes its cores within this, or the measurement stops


def _env(policy: str, newcomer: bool = False) -> dict[str, str]:
    """A child's environment: the measured choice ignored (``rule``), the user's OpenMP settings removed, and
    ``OMP_WAIT_POLICY=PASSIVE`` for the sleeping policy; ``newcomer``: as shattering sets it for a process that
    starts beside another (what the second job of a pair under ``spin`` gets)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", _openmp.SET_ENV, _openmp.PLANNED_ENV, "OMP_NUM_THREADS")}
    env[_openmp.CHOICE_ENV] = "rule"
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                         env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if policy == "PASSIVE" or newcomer:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    if newcomer:
        env[_openmp.SET_ENV] = "1"
    return env


def _start(env: dict[str, str], until: list[str], out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "shattering", "run", *JOB, *until, "--quiet", "--out", str(out)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _seconds(proc: subprocess.Popen, out: Path) -> float:
    """The training and evaluation seconds of a finished child, from its summary (start-up and tuning are the
    same under both policies and not what is compared)."""
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise ShatteringError(f"the wait-policy measurement's job failed (exit {proc.returncode}): "
                              f"{(err or '').strip().splitlines()[-1:] or ['no message']}; run it again on a quiet "
                              "machine.")
    summary = json.loads(next(out.rglob("summary.json")).read_text())
    return float(summary["seconds"])


def time_jobs(policy: str, until: list[str], together: int = 1, newcomer: bool = False) -> list[float]:
    """Seconds of ``together`` jobs under ``policy``; each one after the first starts as soon as the one before
    holds its cores (how a second terminal meets a running job)."""
    with tempfile.TemporaryDirectory(prefix="shattering-wait-") as tmp:
        procs = []
        for i in range(together):
            if i:
                t0 = time.monotonic()
                while cores_held_elsewhere() == 0 and procs[-1][0].poll() is None:
                    if time.monotonic() - t0 > START_TIMEOUT_S:
                        raise ShatteringError("the wait-policy measurement's first job took no core in "
                                              f"{START_TIMEOUT_S:.0f} s; run it again on a quiet machine.")
                    time.sleep(0.02)
            out = Path(tmp) / str(i)
            procs.append((_start(_env(policy, newcomer), until, out), out))
        return [_seconds(proc, out) for proc, out in procs]


def choose_policy(timings: dict[str, dict]) -> tuple[str, str]:
    """(policy, why) from ``{policy: {"alone_s": s, "together_s": [s, s]}}``: the smaller sum of the time alone
    and the mean time in company; libgomp's default (spinning) unless the other is more than :data:`MARGIN`
    cheaper (a difference that small is the noise of one measurement)."""
    cost = {p: t["alone_s"] + statistics.mean(t["together_s"]) for p, t in timings.items()}
    best = min(cost, key=cost.get)
    if "spin" in cost and cost[best] > (1 - MARGIN) * cost["spin"]:
        best = "spin"
    parts = "; ".join(f"{p}: alone {t['alone_s']:.2f} s, two at once "
                      + " and ".join(f"{s:.2f}" for s in t["together_s"]) + " s" for p, t in timings.items())
    verdict = (f"{best} costs least alone plus in company" if best != "spin" or min(cost.values()) == cost["spin"]
               else f"spin: no policy costs {100 * MARGIN:.0f}% less alone plus in company")
    return best, f"{verdict} ({parts})"


def measure_wait_policy(until: list[str] | None = None, repeats: int = 2,
                        progress: Callable[[str], None] | None = None) -> dict:
    """Measure the wait policy of a process that starts alone on this machine, keep it in the user cache
    (:func:`store_choice`) and return what was measured: ``policy``, ``why``, ``timings`` (per policy: the median
    seconds of the job alone and of each of two together, over ``repeats`` rounds that alternate the policies, so
    that a machine that speeds up or slows down meanwhile weighs on both alike) and the machine it holds for.

    ``until``: the job's ``--until`` options (default: to fit, the README's main job, a few seconds alone).
    Run it on a quiet machine: other work on the cores is timed too. One job alone varies from one run to the
    next by several percent (bench/RESULTS.md, "Figures moved from the code"), hence the rounds and :data:`MARGIN`."""
    until = list(until or ("--until", "fit"))
    say = progress or (lambda _text: None)
    if cores_held_elsewhere():
        raise ShatteringError("another shattering process holds cores on this machine; measure the wait policy "
                              "when nothing else runs (its timings would be that process's too).")
    say("one epoch per policy to tune its threads (not timed)")
    for policy in POLICIES:
        time_jobs(policy, WARM_UP)
        if policy == "spin":  # the second job of a pair sleeps, and its tuning is cached apart
            time_jobs(policy, WARM_UP, newcomer=True)
    alone: dict[str, list[float]] = {p: [] for p in POLICIES}
    together: dict[str, list[list[float]]] = {p: [] for p in POLICIES}
    rounds = max(1, repeats)
    for round_ in range(rounds):
        for policy in POLICIES:
            alone[policy] += time_jobs(policy, until)
            together[policy].append(time_jobs(policy, until, together=2))
            say(f"round {round_ + 1} of {rounds}, {policy}: alone {alone[policy][-1]:.2f} s, two at once "
                + " and ".join(f"{s:.2f}" for s in together[policy][-1]) + " s")
    timings = {p: {"alone_s": statistics.median(alone[p]),
                   "together_s": [statistics.median(pair[i] for pair in together[p]) for i in range(2)],
                   "rounds": rounds} for p in POLICIES}
    policy, why = choose_policy(timings)
    choice = {"policy": policy, "why": why, "timings": timings, "cores": cpu_cores(), "job": [*JOB, *until],
              "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    store_choice(choice)
    return {**choice, "machine": _openmp.machine_key(), "cache": str(_openmp.choice_path())}


def store_choice(choice: dict) -> None:
    """Keep ``choice`` (what :func:`shattering._openmp.measured_choice` reads) for this machine in the user cache."""
    path = _openmp.choice_path()
    data = read_json(path) or {}
    data[_openmp.machine_key()] = choice
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, data)
