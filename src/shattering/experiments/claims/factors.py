"""The claims of the ``factors`` artefact, read from the analysis of variance and the measures' rankings of the
factorial grid (:mod:`shattering.experiments.factors`):

- Zhang et al. (ICLR 2017, Section 3): explicit regularization "is neither necessary nor by itself sufficient
  for controlling generalization error": read against the other factors, its effect on the test error is small;
- Keskar et al. (ICLR 2017): large-batch training generalizes worse: on the true data, the batch size's effect on
  the gap is real and the large batch's gap the larger;
- Im, Tao and Branson (2016): different optimizers reach different minima: here, whether the optimizer changes
  the test error (the minima themselves are the ``sharpness`` and ``landscape`` artefacts');
- the input's randomization (Section 2.1) is what drives the gap: its effect the largest of the factors';
- Jiang et al. (ICLR 2020) and Dziugaite et al. (NeurIPS 2020): does any complexity measure rank the gap
  correctly along every axis? "None does at this scale" is an honest answer.

Effect sizes are partial eta squared; "small" is below :data:`MEDIUM_EFFECT` (Cohen's medium effect for eta
squared, 0.06), "real" is that much and an F-test p-value below :data:`ALPHA`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..factors import effects, measure_ranking, run_table
from .core import Claim, RunFacts, Verdict, judged, not_measured

MEDIUM_EFFECT = 0.06  # Cohen (1988): eta squared 0.01 small, 0.06 medium, 0.14 large
ALPHA = 0.05


def main_effects(rows: Sequence[dict], response: str):
    """The analysis of variance of ``response`` over ``rows`` (None where nothing varies) and its main-effect
    terms: {factor: {eta, p}} (empty without one)."""
    result = effects(rows, response)
    if result is None:
        return None, {}
    table = result.table.drop(index="Residual", errors="ignore")
    return result, {str(t): {"eta": float(row["partial_eta_sq"]), "p": float(row["p"])}
                    for t, row in table.iterrows() if ":" not in str(t)}


def _effect_text(name: str, term: dict) -> str:
    return f"{name} partial eta² {term['eta']:.3f} (p = {term['p']:.2g})"


def regularization_not_it(facts: Sequence[RunFacts]) -> Verdict:
    rows = run_table(facts)
    result, terms = main_effects(rows, "test_error")
    if "regularization" not in terms:
        return not_measured("the grid does not vary explicit regularization (weight decay) over runs with a test "
                            "accuracy")
    reg = terms["regularization"]
    others = {k: v for k, v in terms.items() if k != "regularization"}
    strongest = max(others, key=lambda k: others[k]["eta"]) if others else None
    small = reg["eta"] < MEDIUM_EFFECT and (strongest is None or reg["eta"] < others[strongest]["eta"])
    against = f"; the largest other, {_effect_text(strongest, others[strongest])}" if strongest else ""
    return judged(small, f"on the test error over {result.runs} runs: {_effect_text('weight decay', reg)}{against} "
                  f"(small: below {MEDIUM_EFFECT} and below the largest other factor's)",
                  regularization=reg, **({"largest_other": {strongest: others[strongest]}} if strongest else {}))


def large_batch_gap(facts: Sequence[RunFacts]) -> Verdict:
    rows = [r for r in run_table(facts) if r["data"] == "true"]
    sizes = sorted({r["batch"] for r in rows})
    result, terms = main_effects(rows, "gap")
    if "batch" not in terms:
        return not_measured("no runs on the true data with two batch sizes and a gap")
    mean = {b: sum(r["gap"] for r in rows if r["batch"] == b and r["gap"] is not None)
            / max(1, sum(r["batch"] == b and r["gap"] is not None for r in rows)) for b in (sizes[0], sizes[-1])}
    term = terms["batch"]
    ok = term["eta"] >= MEDIUM_EFFECT and term["p"] < ALPHA and mean[sizes[-1]] > mean[sizes[0]]
    return judged(ok, f"true data, {result.runs} runs: mean gap {100 * mean[sizes[0]]:.2f} points at batch "
                  f"{sizes[0]} against {100 * mean[sizes[-1]]:.2f} at batch {sizes[-1]}; "
                  f"{_effect_text('batch size', term)} (holds: at least {MEDIUM_EFFECT}, p < {ALPHA}, the large "
                  "batch's gap the larger)", batch=term, mean_gap={str(k): v for k, v in mean.items()})


def optimizer_changes_test_error(facts: Sequence[RunFacts]) -> Verdict:
    rows = run_table(facts)
    result, terms = main_effects(rows, "test_error")
    if "optimizer" not in terms:
        return not_measured("the grid does not vary the optimizer over runs with a test accuracy")
    term = terms["optimizer"]
    means = {}
    for opt in sorted({r["optimizer"] for r in rows}):
        errors = [r["test_error"] for r in rows if r["optimizer"] == opt and r["test_error"] is not None]
        means[opt] = sum(errors) / len(errors) if errors else None
    shown = ", ".join(f"{k} {100 * v:.2f}%" for k, v in means.items() if v is not None)
    ok = term["eta"] >= MEDIUM_EFFECT and term["p"] < ALPHA
    return judged(ok, f"on the test error over {result.runs} runs: {_effect_text('optimizer', term)}; mean test "
                  f"error {shown} (holds: at least {MEDIUM_EFFECT}, p < {ALPHA})", optimizer=term, mean_error=means)


def randomization_drives_gap(facts: Sequence[RunFacts]) -> Verdict:
    result, terms = main_effects(run_table(facts), "gap")
    if "data" not in terms:
        return not_measured("the grid does not vary the input's randomization over runs with a gap")
    largest = max(terms, key=lambda k: terms[k]["eta"])
    ranked = "; ".join(_effect_text(k, v) for k, v in sorted(terms.items(), key=lambda kv: -kv[1]["eta"]))
    ok = largest == "data" and terms["data"]["eta"] >= MEDIUM_EFFECT and terms["data"]["p"] < ALPHA
    return judged(ok, f"on the gap over {result.runs} runs: {ranked} (holds: the randomization's effect the "
                  f"largest, at least {MEDIUM_EFFECT}, p < {ALPHA})", effects=terms)


def measure_ranks_every_axis(facts: Sequence[RunFacts]) -> Verdict:
    ranking = measure_ranking(run_table(facts))
    scored = [m for m in ranking if m["psi"] and all(v is not None for v in m["psi"].values())]
    if not scored:
        return not_measured("no measure was recorded by runs that differ in one axis only")
    every = [m for m in scored if all(v > 0 for v in m["psi"].values())]
    best = max(scored, key=lambda m: min(m["psi"].values()))

    def text(m: dict) -> str:
        return (f"{m['measure']}: " + ", ".join(f"psi({a}) {v:+.2f}" for a, v in m["psi"].items())
                + (f", worst sign error {m['worst_sign_error']:.2f}" if m["worst_sign_error"] is not None else ""))

    if every:
        worst = max((m["worst_sign_error"] for m in every if m["worst_sign_error"] is not None), default=None)
        caveat = (f"; yet in its worst environment (runs differing in one axis) the best of them orders "
                  f"{min(m['worst_sign_error'] for m in every):.0%} of the pairs the wrong way (Dziugaite et al.'s "
                  "robust view)" if worst is not None and worst >= 0.5 else "")
        return judged(True, "ranks the gap the right way along every axis (granulated tau > 0 on each, measures "
                      "oriented so that larger means more complex): " + "; ".join(text(m) for m in every) + caveat,
                      measures=[m["measure"] for m in every])
    return judged(False, f"none of {len(scored)} measures ranks the gap the right way along every axis at this "
                  f"scale; the best in its worst axis, {text(best)}", best=best["measure"])


FACTORS_CLAIMS = (
    Claim("regularization-not-it", "Explicit regularization is neither necessary nor by itself sufficient for "
          "controlling generalization error: its effect is small beside the other factors'.",
          "Zhang et al. 2017, Section 3", regularization_not_it),
    Claim("keskar-batch-gap", "Large-batch training generalizes worse: on the true data the large batch's "
          "generalization gap is the larger.", "Keskar et al. 2017, Section 2.1", large_batch_gap),
    Claim("im-optimizer", "Different optimizers reach different minima; here: the optimizer changes the test "
          "error.", "Im, Tao and Branson 2016, Section 4", optimizer_changes_test_error),
    Claim("randomization-gap", "The input's randomization (true, corrupted or random labels; shuffled or random "
          "pixels; Gaussian) drives the generalization gap more than the architecture, optimizer, batch size or "
          "regularization.", "Zhang et al. 2017, Section 2.1", randomization_drives_gap),
    Claim("measure-every-axis", "A complexity measure that explains generalization ranks the gap the right way "
          "along every hyper-parameter axis (Jiang et al.'s granulated tau; Dziugaite et al.'s worst case).",
          "Jiang et al. 2020, Section 5; Dziugaite et al. 2020", measure_ranks_every_axis),
)
