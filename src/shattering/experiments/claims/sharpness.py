"""The claims of the ``sharpness`` artefact: which minima do networks reach, and does it say how they generalize?

- Keskar et al. (ICLR 2017, "On large-batch training for deep learning: generalization gap and sharp minima"):
  large-batch training converges to sharper minima (their Metric 2.1; here ``keskar_sharpness``, the full space at
  eps = 1e-3), and generalizes worse at the same training accuracy;
- Im, Tao and Branson (2016, "An empirical analysis of the optimization of deep network loss surfaces"): different
  optimizers reach different minima, from the same initialization;
- the question Zhang et al. (ICLR 2017) leave: do networks that memorize random labels sit in sharper minima than
  those that fit true labels?

Each verdict pairs runs that differ in one thing only (the batch size; the optimizer; the labels), and states the
threshold it uses.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...errors import ShatteringError
from ...measures.builtin import KESKAR_MEASURE, TOP_EIGENVALUE_MEASURE
from .core import Claim, RunFacts, Verdict, final_value, group_by, judged, not_measured

SHARPNESS = KESKAR_MEASURE  # full space, eps = 1e-3: the measure the verdicts read
LAMBDA = TOP_EIGENVALUE_MEASURE  # the Hessian's top eigenvalue, beside it
# "Sharper": at least this many times the other's sharpness (and top Hessian eigenvalue, where measured).
SHARPER_RATIO = 1.2
# "At the same training accuracy": both runs at least this accurate on the training set, and within SAME_TRAIN of
# each other; "generalizes worse": test accuracy lower by at least GAP_POINTS percentage points.
TRAIN_ACC = 0.99
SAME_TRAIN = 0.01
GAP_POINTS = 0.5
# "Different minima": the solutions at least this fraction of the shorter of their two paths from the shared
# initialization apart.
DIFFERENT_MINIMA = 0.5


def measure(f: RunFacts, name: str) -> float | None:
    """The run's value of measure ``name`` (None: not measured, or the run failed)."""
    value = ((f.summary or {}).get("measures") or {}).get(name)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _finished(facts: Sequence[RunFacts]) -> list[RunFacts]:
    return [f for f in facts if f.summary is not None]


def _label(f: RunFacts, without: str) -> str:
    parts = {"model": f.config.model, "optimizer": f.config.optimizer, "batch": f"batch {f.config.batch_size}",
             "labels": "random labels" if f.config.corruption == "random-labels" else "true labels",
             "seed": f"seed {f.config.seed}"}
    return ", ".join(v for k, v in parts.items() if k != without)


def pairs(facts: Sequence[RunFacts], differ: str) -> list[tuple[RunFacts, RunFacts]]:
    """Pairs of finished runs that agree on everything but ``differ`` (``batch``: the smallest and the largest
    batch; ``optimizer``: SGD and each other optimizer; ``labels``: true and random labels), in run order."""
    def key(f: RunFacts) -> tuple:
        c = f.config
        return tuple(v for k, v in (("model", c.model), ("optimizer", c.optimizer), ("batch", c.batch_size),
                                    ("labels", c.corruption), ("seed", c.seed)) if k != differ)

    out = []
    for runs in group_by(_finished(facts), key).values():
        if differ == "batch":
            sizes = sorted({f.config.batch_size for f in runs})
            if len(sizes) >= 2:
                out.append((next(f for f in runs if f.config.batch_size == sizes[0]),
                            next(f for f in runs if f.config.batch_size == sizes[-1])))
        elif differ == "optimizer":
            sgd = [f for f in runs if f.config.optimizer == "sgd"]
            out += [(sgd[0], f) for f in runs if sgd and f.config.optimizer != "sgd"]
        else:
            true = [f for f in runs if f.config.corruption == "true-labels"]
            out += [(true[0], f) for f in runs if true and f.config.corruption == "random-labels"]
    return out


def at_minima(found: list[tuple[RunFacts, RunFacts]], without: str) -> tuple[list, list[str]]:
    """The pairs whose two runs reached a minimum (training accuracy at least :data:`TRAIN_ACC`: sharpness away
    from a minimum measures the slope, not the minimum), and a note for each pair left out."""
    kept, left = [], []
    for a, b in found:
        train = [final_value(f, "train_acc") for f in (a, b)]
        if None not in train and min(train) >= TRAIN_ACC:
            kept.append((a, b))
        else:
            shown = " and ".join("—" if t is None else f"{100 * t:.1f}%" for t in train)
            left.append(f"{_label(a, without)} (training accuracy {shown})")
    return kept, left


def _left_out(left: list[str]) -> str:
    return (f" (left out, not at a minimum: {'; '.join(left)})" if left else "")


def _true_labels(facts: Sequence[RunFacts]) -> list[RunFacts]:
    return [f for f in facts if f.config.corruption == "true-labels"]


def _ratio_text(name: str, a: float | None, b: float | None) -> tuple[str, float | None]:
    if a is None or b is None or a <= 0:
        return f"{name} not measured", None
    return f"{name} {b:.3g} / {a:.3g} = {b / a:.2f}x", b / a


def large_batch_sharper(facts: Sequence[RunFacts]) -> Verdict:
    found, ok, numbers = [], [], {}
    kept, left = at_minima(pairs(_true_labels(facts), "batch"), "batch")
    for small, large in kept:
        text, ratio = _ratio_text("sharpness", measure(small, SHARPNESS), measure(large, SHARPNESS))
        eig, eig_ratio = _ratio_text("λmax", measure(small, LAMBDA), measure(large, LAMBDA))
        if ratio is None:
            continue
        ok.append(ratio >= SHARPER_RATIO)
        found.append(f"{_label(small, 'batch')}: batch {large.config.batch_size} against {small.config.batch_size}: "
                     f"{text}; {eig}")
        numbers[_label(small, "batch")] = {"sharpness_ratio": ratio, "lambda_max_ratio": eig_ratio}
    if not ok:
        return not_measured("no small- and large-batch pair on true labels at a minimum (training accuracy at "
                            f"least {100 * TRAIN_ACC:g}%) with its sharpness measured" + _left_out(left))
    return judged(all(ok), f"large-batch sharpness at least {SHARPER_RATIO:g}x the small batch's (Keskar's phi, "
                  f"full space, eps 1e-3) in {sum(ok)} of {len(ok)} pairs: " + "; ".join(found) + _left_out(left),
                  **numbers)


def large_batch_generalizes_worse(facts: Sequence[RunFacts]) -> Verdict:
    found, ok, numbers, skipped = [], [], {}, []
    for small, large in pairs(_true_labels(facts), "batch"):
        train = [final_value(f, "train_acc") for f in (small, large)]
        test = [final_value(f, "test_acc") for f in (small, large)]
        if None in train or None in test:
            continue
        if min(train) < TRAIN_ACC or abs(train[0] - train[1]) > SAME_TRAIN:
            skipped.append(f"{_label(small, 'batch')} (training accuracy {100 * train[0]:.1f}% and "
                           f"{100 * train[1]:.1f}%)")
            continue
        drop = 100 * (test[0] - test[1])
        ok.append(drop >= GAP_POINTS)
        found.append(f"{_label(small, 'batch')}: test {100 * test[0]:.2f}% (batch {small.config.batch_size}) against "
                     f"{100 * test[1]:.2f}% (batch {large.config.batch_size}), {drop:+.2f} points")
        numbers[_label(small, "batch")] = {"test_acc_small": test[0], "test_acc_large": test[1], "drop_points": drop}
    if not ok:
        return not_measured("no small- and large-batch pair reached the same training accuracy (both at least "
                            f"{100 * TRAIN_ACC:g}%, within {100 * SAME_TRAIN:g} point)"
                            + (f": {'; '.join(skipped)}" if skipped else ""))
    return judged(all(ok), f"at the same training accuracy (both at least {100 * TRAIN_ACC:g}%, within "
                  f"{100 * SAME_TRAIN:g} point) the large batch's test accuracy is at least {GAP_POINTS:g} points "
                  f"lower in {sum(ok)} of {len(ok)} pairs: " + "; ".join(found)
                  + (f" (not comparable: {'; '.join(skipped)})" if skipped else ""), **numbers)


def optimizers_reach_different_minima(facts: Sequence[RunFacts]) -> Verdict:
    from ...runs.trained import solution_distance  # here: it loads torch, and the claims are read without it

    found, ok, numbers, why = [], [], {}, []
    kept, left = at_minima(pairs(_true_labels(facts), "optimizer"), "optimizer")
    for sgd, other in kept:
        if sgd.run_dir is None or other.run_dir is None:
            continue
        try:
            d = solution_distance(sgd.run_dir, other.run_dir)
        except ShatteringError as exc:  # no checkpoint kept, a damaged record: said, not hidden
            why.append(str(exc))
            continue
        if not d["same_init"]:
            why.append(f"{_label(sgd, 'optimizer')}: the two runs did not start from the same initialization")
            continue
        ratio = d["distance"] / max(min(d["travel_a"], d["travel_b"]), 1e-12)
        ok.append(ratio >= DIFFERENT_MINIMA)
        sharp = [measure(f, SHARPNESS) for f in (sgd, other)]
        sharp_text = ("; sharpness " + " against ".join("—" if s is None else f"{s:.3g}" for s in sharp))
        found.append(f"{_label(sgd, 'optimizer')}: sgd and {other.config.optimizer} solutions {d['distance']:.3g} "
                     f"apart, having moved {d['travel_a']:.3g} and {d['travel_b']:.3g} from the shared "
                     f"initialization (ratio {ratio:.2f}){sharp_text}")
        numbers[f"{_label(sgd, 'optimizer')}, {other.config.optimizer}"] = {
            **d, "ratio": ratio, "sharpness_sgd": sharp[0], "sharpness_other": sharp[1]}
    if not ok:
        return not_measured("no SGD run beside another optimizer's from the same initialization, both at a "
                            f"minimum (training accuracy at least {100 * TRAIN_ACC:g}%) with their checkpoints"
                            + (f" ({'; '.join(why)})" if why else "") + _left_out(left))
    return judged(all(ok), f"the solutions of SGD and another optimizer are at least {DIFFERENT_MINIMA:g} x the "
                  f"shorter path from the shared initialization apart in {sum(ok)} of {len(ok)} pairs: "
                  + "; ".join(found) + _left_out(left), **numbers)


def random_labels_sharper(facts: Sequence[RunFacts]) -> Verdict:
    found, ok, numbers = [], [], {}
    kept, left = at_minima(pairs(facts, "labels"), "labels")
    for true, random in kept:
        text, ratio = _ratio_text("sharpness", measure(true, SHARPNESS), measure(random, SHARPNESS))
        eig, eig_ratio = _ratio_text("λmax", measure(true, LAMBDA), measure(random, LAMBDA))
        if ratio is None:
            continue
        ok.append(ratio >= SHARPER_RATIO and (eig_ratio is None or eig_ratio >= SHARPER_RATIO))
        found.append(f"{_label(true, 'labels')}: random against true labels: {text}; {eig}")
        numbers[_label(true, "labels")] = {"sharpness_ratio": ratio, "lambda_max_ratio": eig_ratio}
    if not ok:
        return not_measured("no true- and random-label pair at a minimum (training accuracy at least "
                            f"{100 * TRAIN_ACC:g}%) with its sharpness measured" + _left_out(left))
    return judged(all(ok), f"random-label minima at least {SHARPER_RATIO:g}x as sharp (and λmax, where measured) in "
                  f"{sum(ok)} of {len(ok)} pairs: " + "; ".join(found) + _left_out(left), **numbers)


SHARPNESS_CLAIMS = (
    Claim("keskar-sharper", "Large-batch training converges to sharper minima than small-batch training (their "
          "Metric 2.1, Tables 3-4: the large-batch minima the sharper for every network).",
          "Keskar et al. 2017, Section 2.2", large_batch_sharper),
    Claim("keskar-gap", "Large-batch training generalizes worse at the same training accuracy (the generalization "
          "gap of their Table 2).", "Keskar et al. 2017, Section 2.1",
          large_batch_generalizes_worse),
    Claim("im-optimizers", "Different optimizers reach different minima, even from the same initialization.",
          "Im, Tao and Branson 2016, Section 4", optimizers_reach_different_minima),
    Claim("random-sharper", "Networks that memorize random labels sit in sharper minima than networks that fit true "
          "labels (the question the paper leaves; not a claim it makes).",
          "Zhang et al. 2017, Section 5 (open question)", random_labels_sharper),
)
