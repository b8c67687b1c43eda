"""The claims of Tables 1 and 4 of Zhang et al. (ICLR 2017), CIFAR-10: every model fits true and random
labels, the explicit regularizers help but are not needed, batch norm costs a few points (Section 3), and
with weight decay AlexNet fails to fit random labels while the others still do (Appendix E).
"""

from __future__ import annotations

from collections.abc import Sequence

from .core import (
    BN_COST_BAND,
    NOT_NEEDED_FACTOR,
    Claim,
    RunFacts,
    Verdict,
    final_value,
    fit_by,
    group_by,
    judged,
    mean_of,
    not_measured,
    percent,
    true_label_runs,
)

# -- Table 1 -----------------------------------------------------------------------------------------------


def _table1_all_fit(facts: Sequence[RunFacts]) -> Verdict:
    done = [f for f in facts if f.summary is not None]
    if not done:
        return not_measured("no run finished")
    per = fit_by(done, lambda f: f"{f.config.model} {f.config.corruption}",
                 train_acc=lambda runs: mean_of([final_value(f, "train_acc") for f in runs]))
    ok = all(v["fit"] == v["runs"] for v in per.values())
    return judged(ok, "; ".join(f"{k}: {v['fit']}/{v['runs']} fit, final training accuracy {percent(v['train_acc'])}"
                                for k, v in per.items()), rows=per)


def _plain_and_regularized(facts: Sequence[RunFacts]) -> dict:
    """Per model: mean test accuracy of the true-label run with no regularizer and of those with one or more."""
    out = {}
    for model, runs in group_by(true_label_runs(facts), lambda f: f.config.model).items():
        plain = [final_value(f, "test_acc") for f in runs if not f.config.random_crop and not f.config.weight_decay]
        reg = [final_value(f, "test_acc") for f in runs if f.config.random_crop or f.config.weight_decay]
        out[model] = {"none": mean_of(plain), "regularized": mean_of(reg),
                      "best_regularized": max(reg) if reg else None, "classes": runs[0].classes}
    return out


def _table1_help(facts: Sequence[RunFacts]) -> Verdict:
    rows = {m: v for m, v in _plain_and_regularized(facts).items()
            if v["none"] is not None and v["best_regularized"] is not None}
    if not rows:
        return not_measured("needs true-label runs with and without a regularizer")
    gains = {m: 100 * (v["best_regularized"] - v["none"]) for m, v in rows.items()}
    ok = sum(gains.values()) / len(gains) > 0
    return judged(ok, "; ".join(f"{m}: best with random crop or weight decay {percent(rows[m]['best_regularized'])} vs "
                                f"none {percent(rows[m]['none'])} ({g:+.2f} points)" for m, g in gains.items())
                  + " (holds when the mean gain over models is positive)", gains_points=gains)


def _table1_not_needed(facts: Sequence[RunFacts]) -> Verdict:
    rows = {m: v for m, v in _plain_and_regularized(facts).items() if v["none"] is not None}
    if not rows:
        return not_measured("needs true-label runs without random crop and weight decay")
    ok = all(v["none"] >= NOT_NEEDED_FACTOR / v["classes"] for v in rows.values())
    return judged(ok, "; ".join(f"{m}: {percent(v['none'])} test accuracy with no regularizer" for m, v in rows.items())
                  + f" (holds when each is at least {NOT_NEEDED_FACTOR:g}x chance, 1/K)",
                  test_acc={m: v["none"] for m, v in rows.items()})


def _table1_batchnorm(facts: Sequence[RunFacts]) -> Verdict:
    costs = {}
    for wd in (True, False):
        def acc(model: str, wd: bool = wd) -> float | None:
            return mean_of([final_value(f, "test_acc") for f in true_label_runs(facts) if f.config.model == model
                          and not f.config.random_crop and bool(f.config.weight_decay) == wd])
        bn, nobn = acc("inception-small"), acc("inception-small-nobn")
        if bn is not None and nobn is not None:
            costs["with weight decay" if wd else "without weight decay"] = (bn, nobn, 100 * (bn - nobn))
    if not costs:
        return not_measured("needs true-label runs of inception-small and inception-small-nobn without random crop")
    lo, hi = BN_COST_BAND
    ok = all(lo <= c <= hi for _, _, c in costs.values())
    return judged(ok, "; ".join(f"{k}: {percent(a)} with batch norm, {percent(b)} without ({c:+.2f} points)"
                                for k, (a, b, c) in costs.items()) + f" (holds for a cost of {lo:g} to {hi:g} points)",
                  cost_points={k: c for k, (_, _, c) in costs.items()})


TABLE1_CLAIMS = (
    Claim("table1-all-fit", "Every model fits its training set (100% training accuracy, AlexNet 99.82-99.90%) on "
          "true and on random labels.", "Section 3, Table 1", _table1_all_fit),
    Claim("table1-regularizers-help", "Random crop and weight decay help test accuracy (Inception 85.75% with "
          "neither, 89.05% with both).", "Section 3, Table 1", _table1_help),
    Claim("table1-regularizers-not-needed", "Every model still generalizes with every regularizer off (Inception "
          "85.75%, AlexNet 76.07%, MLP 1x512 50.51%; chance 10%).", "Section 3, Table 1", _table1_not_needed),
    Claim("table1-batchnorm", "Removing batch norm costs only 3-4 points (86.03% -> 83.00% with weight decay, "
          "85.75% -> 82.00% without).", "Section 3, Table 1", _table1_batchnorm),
)


# -- Table 4 -----------------------------------------------------------------------------------------------

def _wd_random(facts: Sequence[RunFacts]) -> list[RunFacts]:
    return [f for f in facts if f.config.corruption == "random-labels" and f.config.weight_decay
            and not f.config.random_crop and not f.config.flip_rotate and f.summary is not None]


def _table4_alexnet(facts: Sequence[RunFacts]) -> Verdict:
    runs = [f for f in _wd_random(facts) if f.config.model == "alexnet-small"]
    if not runs:
        return not_measured("needs the alexnet-small run on random labels with weight decay")
    fit = sum(f.fit for f in runs)
    train = mean_of([final_value(f, "train_acc") for f in runs])
    return judged(fit == 0, f"alexnet-small, random labels, weight decay {runs[0].config.weight_decay:g}: "
                  f"{fit}/{len(runs)} fit, final training accuracy {percent(train)}"
                  f" after {mean_of([f.summary.get('epochs') for f in runs]):g} epochs", fit=fit, runs=len(runs))


def _table4_others(facts: Sequence[RunFacts]) -> Verdict:
    runs = [f for f in _wd_random(facts) if f.config.model != "alexnet-small"]
    if not runs:
        return not_measured("needs Inception or MLP runs on random labels with weight decay")
    per = {m: (sum(f.fit for f in rs), len(rs), mean_of([final_value(f, "train_acc") for f in rs]))
           for m, rs in group_by(runs, lambda f: f.config.model).items()}
    return judged(all(a == b for a, b, _ in per.values()),
                  "; ".join(f"{m}: {a}/{b} fit, training accuracy {percent(t)}" for m, (a, b, t) in per.items()),
                  fit={m: a for m, (a, _, _) in per.items()})


TABLE4_CLAIMS = (
    Claim("table4-alexnet-wd", "AlexNet with weight decay fails to converge on random labels.",
          "Section 3, Appendix E, Table 4", _table4_alexnet),
    Claim("table4-others-fit-with-wd", "Inception (100%) and the MLPs (100%, 99.21%) still fit random labels with "
          "weight decay on.", "Section 3, Appendix E, Table 4", _table4_others),
)
