"""What every claim of the paper is made of (:mod:`shattering.experiments.claims`): the :class:`Claim` (the paper's
words and numbers, where it says so, and a measure), the :class:`Verdict` its measure returns (``holds``, ``does
not hold at this scale`` or ``not measured (why)``), the :class:`RunFacts` a trained preset's claims read of
each run, the thresholds the verdicts use, and the helpers the measures of Zhang et al. (ICLR 2017) share.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ...config import RunConfig
from ...runs import RunRecord

HOLDS = "holds"
NOT_AT_SCALE = "does not hold at this scale"
NOT_MEASURED = "not measured"
VERDICTS = (HOLDS, NOT_AT_SCALE, NOT_MEASURED)

# Fig. 1a is read on the loss curve: the first logged step at which the training loss falls below this
# fraction of ln K (the loss of a uniform guess); at 500 images the fit epochs are within a few of each other.
LOSS_FRACTION = 0.1
# Table 1, Section 3: "removing batch norm costs 3-4 points" (86.03 -> 83.00, 85.75 -> 82.00): holds in this band.
BN_COST_BAND = (2.0, 5.0)
# Fig. 2b, Section 3.1: "early stopping gains nothing on CIFAR-10": best test accuracy at most this much above the
# final one (percentage points).
EARLY_STOPPING_GAIN = 1.0
# "Generalizes": test accuracy at least this many times chance (1/K); Table 1's worst true-label row, MLP 1x512 at
# 50.39%, is 5x chance.
NOT_NEEDED_FACTOR = 3.0
# Fig. 1c: "test error converges to chance (90%)": within this many points of chance at the largest p.
CHANCE_MARGIN = 5.0
# Table 3: "far below chance": kernel interpolation's test error at most this fraction of chance error (1 - 1/K).
FAR_BELOW_CHANCE = 2 / 3


@dataclass(frozen=True)
class Verdict:
    """What a claim's measurement found: one of :data:`VERDICTS`, a sentence with the numbers, and the numbers."""

    verdict: str
    text: str
    numbers: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"verdict": self.verdict, "text": self.text, "numbers": self.numbers}


@dataclass(frozen=True)
class Claim:
    """One claim of the paper an artefact tests: ``words`` restate it with the paper's numbers, ``where`` cites
    it, ``measure(items)`` checks it (items: :class:`RunFacts`, computed rows or a result dict); ``curves``: the
    measure reads the runs' training-loss step logs."""

    id: str
    words: str
    where: str
    measure: Callable[[Sequence], Verdict]
    curves: bool = False

    def assess(self, items: Sequence) -> dict:
        """The claim and its verdict, JSON-ready (what the sidecars hold); a measure that breaks on odd records
        says so as "not measured" instead of hiding the artefact."""
        try:
            verdict = self.measure(items)
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            verdict = not_measured(f"the records lack what it needs ({type(exc).__name__}: {exc})")
        return {"id": self.id, "words": self.words, "where": self.where, **verdict.as_dict()}


def not_measured(why: str, **numbers) -> Verdict:
    return Verdict(NOT_MEASURED, f"not measured ({why})", numbers)


def judged(ok: bool, text: str, **numbers) -> Verdict:
    return Verdict(HOLDS if ok else NOT_AT_SCALE, text, numbers)


@dataclass(frozen=True)
class RunFacts:
    """What a claim reads of one run: its config, its summary (None: failed), its training-loss curve, as
    (step, loss) pairs from the step log (or the epoch-end losses when it logged no step), and its record's
    folder (``run_dir``: for claims that compare trained networks)."""

    config: RunConfig
    summary: dict | None
    curve: tuple[tuple[int, float], ...] = ()
    run_dir: Path | None = None

    @property
    def fit(self) -> bool:
        return self.summary is not None and self.summary.get("status") == "fit"

    @property
    def classes(self) -> int:
        return int(((self.summary or {}).get("data") or {}).get("classes") or 10)


def facts_of(outcomes: Sequence, curves: bool = False) -> list[RunFacts]:
    """The :class:`RunFacts` of a sweep's outcomes (``curves``: read each run's step log too)."""
    facts = []
    for o in outcomes:
        curve: tuple = ()
        if curves and o.summary is not None:
            record = RunRecord(o.run_dir)
            rows = record.read_steps()
            curve = (tuple((int(r["step"]), float(r["loss"])) for r in rows) if rows else
                     tuple((int(r["step"]), float(r["train_loss"])) for r in record.read_metrics()))
        facts.append(RunFacts(o.config, o.summary, curve, o.run_dir))
    return facts


def assess_all(claims: Sequence[Claim], items: Sequence) -> list[dict]:
    """Every claim's verdict on ``items``, in the order given."""
    return [c.assess(items) for c in claims]


# -- helpers -----------------------------------------------------------------------------------------------

def group_by(facts: Sequence[RunFacts], key: Callable[[RunFacts], object]) -> dict:
    """``{key(f): [f, ...]}``, groups in the order of their first run."""
    out: dict = {}
    for f in facts:
        out.setdefault(key(f), []).append(f)
    return out


def fit_by(done: Sequence[RunFacts], key: Callable[[RunFacts], object],
           **numbers: Callable[[list[RunFacts]], object]) -> dict:
    """Per group of finished runs (:func:`group_by` ``key``): ``fit`` (how many fit), ``runs`` (how many ran) and
    each of ``numbers`` (its name -> a function of the group's runs)."""
    return {k: {"fit": sum(f.fit for f in runs), "runs": len(runs), **{n: fn(runs) for n, fn in numbers.items()}}
            for k, runs in group_by(done, key).items()}


def mean_of(values: Sequence[float | None]) -> float | None:
    """The mean of the values that are not None; None when none is."""
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def claim_p(f: RunFacts) -> float:
    """The run's label corruption p (Section 2.1): 1 for random labels, 0 for true labels, else its own p."""
    p = f.config.resolved().p
    return 1.0 if f.config.corruption == "random-labels" else 0.0 if f.config.corruption == "true-labels" else p


def final_value(f: RunFacts, key: str) -> float | None:
    """``key`` of the run's final evaluation (``train_acc``, ``test_acc``, ...); None where it has none."""
    final = (f.summary or {}).get("final") or {}
    return final.get(key)


def steps_below(curve: Sequence[tuple[int, float]], threshold: float) -> int | None:
    """The first logged step at which the training loss is below ``threshold`` (None: never)."""
    return next((step for step, loss in curve if math.isfinite(loss) and loss < threshold), None)


def percent(v: float | None) -> str:
    """A fraction as ``12.34%``; an em dash for None."""
    return "—" if v is None else f"{100 * v:.2f}%"


def true_label_runs(facts: Sequence[RunFacts]) -> list[RunFacts]:
    """The finished runs on the true labels."""
    return [f for f in facts if f.config.corruption == "true-labels" and f.summary is not None]

