"""The claims of Figures 1a, 1b/1c and 2b of Zhang et al. (ICLR 2017), CIFAR-10: every setting fits, random
labels fit last and slowest, test error rises to chance with the label corruption p (Section 2.1), and early
stopping gains nothing (Section 3.1). Each measure reads the :class:`~.core.RunFacts` of the figure's runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from .core import (
    CHANCE_MARGIN,
    EARLY_STOPPING_GAIN,
    LOSS_FRACTION,
    Claim,
    RunFacts,
    Verdict,
    claim_p,
    final_value,
    fit_by,
    group_by,
    judged,
    mean_of,
    not_measured,
    percent,
    steps_below,
)

# -- Figure 1a ---------------------------------------------------------------------------------------------

def _fig1a_all_fit(facts: Sequence[RunFacts]) -> Verdict:
    done = [f for f in facts if f.summary is not None]
    if not done:
        return not_measured("no run finished")
    per = fit_by(done, lambda f: f.config.corruption,
                 final_train_loss=lambda runs: mean_of([final_value(f, "train_loss") for f in runs]),
                 fit_epoch=lambda runs: mean_of([f.summary.get("fit_epoch") for f in runs if f.fit]))
    ok = all(v["fit"] == v["runs"] for v in per.values()) and len(done) == len(facts)
    text = "; ".join(f"{s}: {v['fit']}/{v['runs']} fit, final training loss {v['final_train_loss']:.3g}"
                     + (f" (fit at epoch {v['fit_epoch']:g})" if v["fit_epoch"] is not None else "")
                     for s, v in per.items())
    return judged(ok, text + ("" if len(done) == len(facts) else f"; {len(facts) - len(done)} run(s) failed"),
                  settings=per)


def _loss_times(facts: Sequence[RunFacts]) -> dict:
    """Per setting: the mean first step below LOSS_FRACTION x ln K (None when a run never got there) and fit epoch."""
    out = {}
    for setting, runs in group_by([f for f in facts if f.summary is not None], lambda f: f.config.corruption).items():
        steps = [steps_below(f.curve, LOSS_FRACTION * math.log(f.classes)) for f in runs]
        out[setting] = {"steps_below": None if any(s is None for s in steps) else mean_of(steps),
                        "reached": sum(s is not None for s in steps), "runs": len(runs),
                        "fit_epoch": mean_of([f.summary.get("fit_epoch") for f in runs if f.fit])}
    return out


def _times_text(times: dict) -> str:
    return "; ".join(f"{s}: " + (f"step {v['steps_below']:g}" if v["steps_below"] is not None
                                 else f"not reached by {v['runs'] - v['reached']}/{v['runs']} run(s)")
                     + (f", fit epoch {v['fit_epoch']:g}" if v["fit_epoch"] is not None else ", did not fit")
                     for s, v in times.items())


def _slower(times: dict, slow: str, fast: Sequence[str]) -> Verdict:
    """``slow`` reaches the loss threshold after every setting in ``fast`` (never reaching it counts as last)."""
    fraction = f"{LOSS_FRACTION:g} x ln K"
    present = [s for s in fast if s in times]
    if slow not in times or not present:
        return not_measured(f"needs the {slow} run and at least one of {', '.join(fast)}", settings=times)
    if not any(times[s]["reached"] for s in (slow, *present)):
        return not_measured(f"no run's training loss fell below {fraction}", settings=times)
    inf = math.inf
    t_slow = times[slow]["steps_below"] if times[slow]["steps_below"] is not None else inf
    ok = all(t_slow > (times[s]["steps_below"] if times[s]["steps_below"] is not None else inf) for s in present)
    return judged(ok, f"steps until the training loss first falls below {fraction}: {_times_text(times)}",
                  fraction_of_ln_k=LOSS_FRACTION, settings=times)


def _fig1a_random_labels_slowest(facts: Sequence[RunFacts]) -> Verdict:
    times = _loss_times(facts)
    return _slower(times, "random-labels", [s for s in times if s != "random-labels"])


def _fig1a_random_inputs_faster(facts: Sequence[RunFacts]) -> Verdict:
    times = _loss_times(facts)
    return _slower(times, "random-labels", ("random-pixels", "gaussian"))


FIG1A_CLAIMS = (
    Claim("fig1a-all-fit", "Every setting (true labels, random labels, shuffled pixels, random pixels, gaussian) "
          "reaches about zero training loss: a perfect fit of the training set.", "Section 2.1, Figure 1a",
          _fig1a_all_fit),
    Claim("fig1a-random-labels-slowest", "Random labels take the longest to fit (the loss starts decreasing "
          "later; the learning-rate schedule is unchanged).", "Section 2.1, Figure 1a",
          _fig1a_random_labels_slowest, curves=True),
    Claim("fig1a-random-inputs-faster", "Random pixels and gaussian inputs converge faster than random labels.",
          "Section 2.1, Figure 1a", _fig1a_random_inputs_faster, curves=True),
)


# -- Figures 1b and 1c -------------------------------------------------------------------------------------

def _per_model_p(facts: Sequence[RunFacts], value: Callable[[RunFacts], float | None]) -> dict:
    """{model: {p: mean value}} over the runs that fit."""
    out: dict = {}
    for f in facts:
        if f.fit:
            out.setdefault(f.config.model, {}).setdefault(claim_p(f), []).append(value(f))
    return {m: {p: mean_of(vs) for p, vs in sorted(d.items())} for m, d in out.items()}


def _rises(series: dict) -> bool:
    """The value at the largest p exceeds the value at the smallest, and more pairs rise than fall."""
    ps = sorted(p for p, v in series.items() if v is not None)
    if len(ps) < 2:
        return False
    vals = [series[p] for p in ps]
    up = sum(b > a for i, a in enumerate(vals) for b in vals[i + 1:])
    down = sum(b < a for i, a in enumerate(vals) for b in vals[i + 1:])
    return vals[-1] > vals[0] and up > down


def _fig1b_all_fit(facts: Sequence[RunFacts]) -> Verdict:
    if not facts:
        return not_measured("no runs")
    unfit = [f"{f.config.model} p={claim_p(f):g} seed {f.config.seed}" for f in facts if not f.fit]
    return judged(not unfit, f"{len(facts) - len(unfit)}/{len(facts)} runs fit"
                  + (f"; did not fit: {', '.join(unfit)}" if unfit else ""), unfit=unfit)


def _fig1b_slowdown(facts: Sequence[RunFacts]) -> Verdict:
    epochs = _per_model_p(facts, lambda f: f.summary.get("fit_epoch"))
    usable = {m: s for m, s in epochs.items() if len(s) >= 2 and 0.0 in s}
    if not usable:
        return not_measured("needs, for some model, fitted runs at p = 0 and at another p", fit_epochs=epochs)
    parts, ok = [], True
    for m, s in usable.items():
        ok &= _rises(s)
        parts.append(f"{m}: fit epoch " + ", ".join(f"p={p:g} {v:g}" for p, v in s.items())
                     + f" (x{s[max(s)] / s[0.0]:.2f} at p={max(s):g})")
    return judged(ok, "; ".join(parts) + " (holds when the time at the largest p exceeds p = 0's and more pairs "
                  "of p rise than fall)", fit_epochs={m: {str(p): v for p, v in s.items()} for m, s in usable.items()})


def _fig1c_error(facts: Sequence[RunFacts]) -> Verdict:
    errors = _per_model_p(facts, lambda f: 1 - final_value(f, "test_acc"))
    usable = {m: s for m, s in errors.items() if len(s) >= 2}
    if not usable:
        return not_measured("needs, for some model, fitted runs at two values of p", test_errors=errors)
    k = max(f.classes for f in facts)
    chance = 1 - 1 / k
    parts, ok = [], True
    for m, s in usable.items():
        top = s[max(s)]
        ok &= _rises(s) and max(s) == 1.0 and abs(100 * (top - chance)) <= CHANCE_MARGIN
        parts.append(f"{m}: test error " + ", ".join(f"p={p:g} {percent(v)}" for p, v in s.items()))
    return judged(ok, "; ".join(parts) + f" (chance {percent(chance)}; holds when the error rises with p and ends "
                  f"within {CHANCE_MARGIN:g} points of chance at p = 1)",
                  chance=chance, test_errors={m: {str(p): v for p, v in s.items()} for m, s in usable.items()})


FIG1BC_CLAIMS = (
    Claim("fig1b-all-fit", "Every network fits the training set perfectly at every label corruption p.",
          "Section 2.1, Figure 1b", _fig1b_all_fit),
    Claim("fig1b-slowdown", "Time to fit grows with p, by a small constant factor (about 1.5x to 3.5x at p = 1).",
          "Section 2.1, Figure 1b", _fig1b_slowdown),
    Claim("fig1c-error-to-chance", "Test error rises steadily with p and reaches chance (90% on CIFAR-10) at "
          "p = 1.", "Section 2.1, Figure 1c", _fig1c_error),
)



# -- Figure 2b ---------------------------------------------------------------------------------------------

def _fig2b_early_stopping(facts: Sequence[RunFacts]) -> Verdict:
    done = [f for f in facts if f.summary is not None and final_value(f, "test_acc") is not None]
    if not done:
        return not_measured("no run finished")
    per = {m: (mean_of([f.summary.get("best_test_acc") for f in rs]), mean_of([final_value(f, "test_acc") for f in rs]))
           for m, rs in group_by(done, lambda f: f.config.model).items()}
    gains = {m: 100 * (b - t) for m, (b, t) in per.items()}
    return judged(all(g <= EARLY_STOPPING_GAIN for g in gains.values()),
                  "; ".join(f"{m}: best test accuracy {percent(b)}, final {percent(t)} ({gains[m]:+.2f} points)"
                            for m, (b, t) in per.items())
                  + f" (holds when early stopping would gain at most {EARLY_STOPPING_GAIN:g} point)",
                  gains_points=gains)


FIG2B_CLAIMS = (
    Claim("fig2b-early-stopping", "Early stopping gains nothing on CIFAR-10: the best test accuracy seen during "
          "training is the final one, with and without batch norm.", "Section 3.1, Figure 2b", _fig2b_early_stopping),
)
