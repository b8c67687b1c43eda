"""The paper's claims, as data: what each artefact of Zhang et al. (ICLR 2017) says, restated with the paper's
numbers, and how to measure it on the runs behind the artefact.

A :class:`Claim` has an ``id``, the paper's ``words`` (restated, with its numbers), ``where`` in the paper it is
said, and ``measure``: a function of the artefact's items (:class:`RunFacts` of its runs for a trained preset,
the computed rows for a computed one, the result dict for a theory experiment) returning a :class:`Verdict`:
``holds``, ``does not hold at this scale`` or ``not measured (why)``, with the numbers behind it. "Does not
hold at this scale" is an honest result, not a failure: the paper's effects need its data and budgets.

Every threshold a verdict uses is stated in its text (e.g. "training loss below 0.1 x ln K"), so that a reader
can see what "about zero" or "far below chance" meant.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..config import RunConfig
from ..runs import RunRecord

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
    """What a claim reads of one run: its config, its summary (None: failed) and its training-loss curve, as
    (step, loss) pairs from the step log (or the epoch-end losses when it logged no step)."""

    config: RunConfig
    summary: dict | None
    curve: tuple[tuple[int, float], ...] = ()

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
        facts.append(RunFacts(o.config, o.summary, curve))
    return facts


def assess_all(claims: Sequence[Claim], items: Sequence) -> list[dict]:
    """Every claim's verdict on ``items``, in the order given."""
    return [c.assess(items) for c in claims]


# -- helpers -----------------------------------------------------------------------------------------------

def _by(facts: Sequence[RunFacts], key: Callable[[RunFacts], object]) -> dict:
    out: dict = {}
    for f in facts:
        out.setdefault(key(f), []).append(f)
    return out


def _mean(values: Sequence[float]) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _p(f: RunFacts) -> float:
    p = f.config.resolved().p
    return 1.0 if f.config.corruption == "random-labels" else 0.0 if f.config.corruption == "true-labels" else p


def _final(f: RunFacts, key: str) -> float | None:
    final = (f.summary or {}).get("final") or {}
    return final.get(key)


def steps_below(curve: Sequence[tuple[int, float]], threshold: float) -> int | None:
    """The first logged step at which the training loss is below ``threshold`` (None: never)."""
    return next((step for step, loss in curve if math.isfinite(loss) and loss < threshold), None)


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.2f}%"


# -- Figure 1a ---------------------------------------------------------------------------------------------

def _fig1a_all_fit(facts: Sequence[RunFacts]) -> Verdict:
    done = [f for f in facts if f.summary is not None]
    if not done:
        return not_measured("no run finished")
    per = {}
    for setting, runs in _by(done, lambda f: f.config.corruption).items():
        per[setting] = {"fit": sum(f.fit for f in runs), "runs": len(runs),
                        "final_train_loss": _mean([_final(f, "train_loss") for f in runs]),
                        "fit_epoch": _mean([f.summary.get("fit_epoch") for f in runs if f.fit])}
    ok = all(v["fit"] == v["runs"] for v in per.values()) and len(done) == len(facts)
    text = "; ".join(f"{s}: {v['fit']}/{v['runs']} fit, final training loss {v['final_train_loss']:.3g}"
                     + (f" (fit at epoch {v['fit_epoch']:g})" if v["fit_epoch"] is not None else "")
                     for s, v in per.items())
    return judged(ok, text + ("" if len(done) == len(facts) else f"; {len(facts) - len(done)} run(s) failed"),
                  settings=per)


def _loss_times(facts: Sequence[RunFacts]) -> dict:
    """Per setting: the mean first step below LOSS_FRACTION x ln K (None when a run never got there) and fit epoch."""
    out = {}
    for setting, runs in _by([f for f in facts if f.summary is not None], lambda f: f.config.corruption).items():
        steps = [steps_below(f.curve, LOSS_FRACTION * math.log(f.classes)) for f in runs]
        out[setting] = {"steps_below": None if any(s is None for s in steps) else _mean(steps),
                        "reached": sum(s is not None for s in steps), "runs": len(runs),
                        "fit_epoch": _mean([f.summary.get("fit_epoch") for f in runs if f.fit])}
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
            out.setdefault(f.config.model, {}).setdefault(_p(f), []).append(value(f))
    return {m: {p: _mean(vs) for p, vs in sorted(d.items())} for m, d in out.items()}


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
    unfit = [f"{f.config.model} p={_p(f):g} seed {f.config.seed}" for f in facts if not f.fit]
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
    errors = _per_model_p(facts, lambda f: 1 - _final(f, "test_acc"))
    usable = {m: s for m, s in errors.items() if len(s) >= 2}
    if not usable:
        return not_measured("needs, for some model, fitted runs at two values of p", test_errors=errors)
    k = max(f.classes for f in facts)
    chance = 1 - 1 / k
    parts, ok = [], True
    for m, s in usable.items():
        top = s[max(s)]
        ok &= _rises(s) and max(s) == 1.0 and abs(100 * (top - chance)) <= CHANCE_MARGIN
        parts.append(f"{m}: test error " + ", ".join(f"p={p:g} {_pct(v)}" for p, v in s.items()))
    return judged(ok, "; ".join(parts) + f" (chance {_pct(chance)}; holds when the error rises with p and ends "
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


# -- Table 1 -----------------------------------------------------------------------------------------------

def _true(facts: Sequence[RunFacts]) -> list[RunFacts]:
    return [f for f in facts if f.config.corruption == "true-labels" and f.summary is not None]


def _table1_all_fit(facts: Sequence[RunFacts]) -> Verdict:
    done = [f for f in facts if f.summary is not None]
    if not done:
        return not_measured("no run finished")
    per = {}
    for (model, labels), runs in _by(done, lambda f: (f.config.model, f.config.corruption)).items():
        per[f"{model} {labels}"] = {"fit": sum(f.fit for f in runs), "runs": len(runs),
                                    "train_acc": _mean([_final(f, "train_acc") for f in runs])}
    ok = all(v["fit"] == v["runs"] for v in per.values())
    return judged(ok, "; ".join(f"{k}: {v['fit']}/{v['runs']} fit, final training accuracy {_pct(v['train_acc'])}"
                                for k, v in per.items()), rows=per)


def _plain_and_regularized(facts: Sequence[RunFacts]) -> dict:
    """Per model: mean test accuracy of the true-label run with no regularizer and of those with one or more."""
    out = {}
    for model, runs in _by(_true(facts), lambda f: f.config.model).items():
        plain = [_final(f, "test_acc") for f in runs if not f.config.random_crop and not f.config.weight_decay]
        reg = [_final(f, "test_acc") for f in runs if f.config.random_crop or f.config.weight_decay]
        out[model] = {"none": _mean(plain), "regularized": _mean(reg),
                      "best_regularized": max(reg) if reg else None, "classes": runs[0].classes}
    return out


def _table1_help(facts: Sequence[RunFacts]) -> Verdict:
    rows = {m: v for m, v in _plain_and_regularized(facts).items()
            if v["none"] is not None and v["best_regularized"] is not None}
    if not rows:
        return not_measured("needs true-label runs with and without a regularizer")
    gains = {m: 100 * (v["best_regularized"] - v["none"]) for m, v in rows.items()}
    ok = sum(gains.values()) / len(gains) > 0
    return judged(ok, "; ".join(f"{m}: best with random crop or weight decay {_pct(rows[m]['best_regularized'])} vs "
                                f"none {_pct(rows[m]['none'])} ({g:+.2f} points)" for m, g in gains.items())
                  + " (holds when the mean gain over models is positive)", gains_points=gains)


def _table1_not_needed(facts: Sequence[RunFacts]) -> Verdict:
    rows = {m: v for m, v in _plain_and_regularized(facts).items() if v["none"] is not None}
    if not rows:
        return not_measured("needs true-label runs without random crop and weight decay")
    ok = all(v["none"] >= NOT_NEEDED_FACTOR / v["classes"] for v in rows.values())
    return judged(ok, "; ".join(f"{m}: {_pct(v['none'])} test accuracy with no regularizer" for m, v in rows.items())
                  + f" (holds when each is at least {NOT_NEEDED_FACTOR:g}x chance, 1/K)",
                  test_acc={m: v["none"] for m, v in rows.items()})


def _table1_batchnorm(facts: Sequence[RunFacts]) -> Verdict:
    costs = {}
    for wd in (True, False):
        def acc(model: str, wd: bool = wd) -> float | None:
            return _mean([_final(f, "test_acc") for f in _true(facts) if f.config.model == model
                          and not f.config.random_crop and bool(f.config.weight_decay) == wd])
        bn, nobn = acc("inception-small"), acc("inception-small-nobn")
        if bn is not None and nobn is not None:
            costs["with weight decay" if wd else "without weight decay"] = (bn, nobn, 100 * (bn - nobn))
    if not costs:
        return not_measured("needs true-label runs of inception-small and inception-small-nobn without random crop")
    lo, hi = BN_COST_BAND
    ok = all(lo <= c <= hi for _, _, c in costs.values())
    return judged(ok, "; ".join(f"{k}: {_pct(a)} with batch norm, {_pct(b)} without ({c:+.2f} points)"
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
    train = _mean([_final(f, "train_acc") for f in runs])
    return judged(fit == 0, f"alexnet-small, random labels, weight decay {runs[0].config.weight_decay:g}: "
                  f"{fit}/{len(runs)} fit, final training accuracy {_pct(train)}"
                  f" after {_mean([f.summary.get('epochs') for f in runs]):g} epochs", fit=fit, runs=len(runs))


def _table4_others(facts: Sequence[RunFacts]) -> Verdict:
    runs = [f for f in _wd_random(facts) if f.config.model != "alexnet-small"]
    if not runs:
        return not_measured("needs Inception or MLP runs on random labels with weight decay")
    per = {m: (sum(f.fit for f in rs), len(rs), _mean([_final(f, "train_acc") for f in rs]))
           for m, rs in _by(runs, lambda f: f.config.model).items()}
    return judged(all(a == b for a, b, _ in per.values()),
                  "; ".join(f"{m}: {a}/{b} fit, training accuracy {_pct(t)}" for m, (a, b, t) in per.items()),
                  fit={m: a for m, (a, _, _) in per.items()})


TABLE4_CLAIMS = (
    Claim("table4-alexnet-wd", "AlexNet with weight decay fails to converge on random labels.",
          "Section 3, Appendix E, Table 4", _table4_alexnet),
    Claim("table4-others-fit-with-wd", "Inception (100%) and the MLPs (100%, 99.21%) still fit random labels with "
          "weight decay on.", "Section 3, Appendix E, Table 4", _table4_others),
)


# -- Figure 2b ---------------------------------------------------------------------------------------------

def _fig2b_early_stopping(facts: Sequence[RunFacts]) -> Verdict:
    done = [f for f in facts if f.summary is not None and _final(f, "test_acc") is not None]
    if not done:
        return not_measured("no run finished")
    per = {m: (_mean([f.summary.get("best_test_acc") for f in rs]), _mean([_final(f, "test_acc") for f in rs]))
           for m, rs in _by(done, lambda f: f.config.model).items()}
    gains = {m: 100 * (b - t) for m, (b, t) in per.items()}
    return judged(all(g <= EARLY_STOPPING_GAIN for g in gains.values()),
                  "; ".join(f"{m}: best test accuracy {_pct(b)}, final {_pct(t)} ({gains[m]:+.2f} points)"
                            for m, (b, t) in per.items())
                  + f" (holds when early stopping would gain at most {EARLY_STOPPING_GAIN:g} point)",
                  gains_points=gains)


FIG2B_CLAIMS = (
    Claim("fig2b-early-stopping", "Early stopping gains nothing on CIFAR-10: the best test accuracy seen during "
          "training is the final one, with and without batch norm.", "Section 3.1, Figure 2b", _fig2b_early_stopping),
)


# -- Table 2 and Figure 2a: ImageNet ------------------------------------------------------------------------

def _imagenet_true(facts: Sequence[RunFacts], *, aug: bool, dropout: bool, wd: bool) -> list[RunFacts]:
    return [f for f in _true(facts) if bool(f.config.random_crop) == aug and bool(f.config.dropout) == dropout
            and bool(f.config.weight_decay) == wd and _final(f, "test_acc") is not None]


def _imagenet_early_stopping(facts: Sequence[RunFacts]) -> Verdict:
    rows = {name: runs for name, wd in (("no regularizer", False), ("weight decay only", True))
            if (runs := _imagenet_true(facts, aug=False, dropout=False, wd=wd))}
    if not rows:
        return not_measured("needs the true-label runs without data augmentation and dropout")
    per = {k: (_mean([f.summary.get("best_test_acc") for f in rs]), _mean([_final(f, "test_acc") for f in rs]))
           for k, rs in rows.items()}
    gains = {k: 100 * (b - t) for k, (b, t) in per.items()}
    return judged(all(g > EARLY_STOPPING_GAIN for g in gains.values()),
                  "; ".join(f"{k}: best top-1 test accuracy {_pct(b)}, final {_pct(t)} ({gains[k]:+.2f} points)"
                            for k, (b, t) in per.items())
                  + f" (holds when early stopping would gain more than {EARLY_STOPPING_GAIN:g} point)",
                  gains_points=gains)


def _table2_regularizers(facts: Sequence[RunFacts]) -> Verdict:
    on = _imagenet_true(facts, aug=True, dropout=True, wd=True)
    off = _imagenet_true(facts, aug=False, dropout=False, wd=False)
    if not on or not off:
        return not_measured("needs the true-label runs with every regularizer on and with none")
    a, b = _mean([_final(f, "test_acc") for f in on]), _mean([_final(f, "test_acc") for f in off])
    return judged(a > b, f"top-1 test accuracy {_pct(a)} with augmentation, dropout and weight decay, {_pct(b)} "
                  f"with none ({100 * (a - b):+.2f} points)", drop_points=100 * (a - b))


def _table2_random_labels(facts: Sequence[RunFacts]) -> Verdict:
    runs = [f for f in facts if f.config.corruption == "random-labels" and f.summary is not None]
    if not runs:
        return not_measured("needs the random-label runs")
    per = {describe_regularizers(f.config): _final(f, "train_acc") for f in runs}
    return judged(all(v is not None and v >= 0.9 for v in per.values()),
                  "; ".join(f"{k}: top-1 training accuracy {_pct(v)}" for k, v in per.items())
                  + " (holds when every row reaches 90%)", train_acc=per)


def describe_regularizers(cfg: RunConfig) -> str:
    on = [name for name, value in (("augmentation", cfg.random_crop), ("dropout", cfg.dropout),
                                   ("weight decay", cfg.weight_decay)) if value]
    return " + ".join(on) or "no regularizer"


_IMAGENET_EARLY = Claim("imagenet-early-stopping", "On ImageNet early stopping helps when the other regularizers "
                        "are off: best top-1 test accuracy 63.16% vs 59.80% final with none, 72.57% vs 67.18% with "
                        "weight decay only.", "Section 3.1, Appendix B, Table 2 and Figure 2a",
                        _imagenet_early_stopping)
TABLE2_CLAIMS = (
    Claim("table2-regularizers", "Turning off every explicit regularizer costs about 18 points of top-1 test "
          "accuracy (77.84% -> 59.80%), yet the network still generalizes (chance 0.1%).", "Appendix B, Table 2",
          _table2_regularizers),
    _IMAGENET_EARLY,
    Claim("table2-random-labels", "Inception V3 fits random ImageNet labels to 95.20% top-1 training accuracy "
          "(about 90% with the explicit regularizers on), without tuning.", "Appendix B, Table 2",
          _table2_random_labels),
)
FIG2A_CLAIMS = (_IMAGENET_EARLY,)


# -- Table 3 and Section 5: computed rows (dicts of experiments.table3) ----------------------------------------

def _table3_generalizes(rows: Sequence[dict]) -> Verdict:
    rows = [r for r in rows if r.get("interpolates") and r.get("test_error") is not None]
    if not rows:
        return not_measured("no row interpolated its training set")
    chance = 0.9  # every Table 3 data set (MNIST, CIFAR-10 and their substitutes) has 10 classes
    ok = all(r["test_error"] <= FAR_BELOW_CHANCE * chance for r in rows)
    return judged(ok, "; ".join(f"{r['row']} ({r['dataset']}): test error {_pct(r['test_error'])}, random labels "
                                f"{_pct(r.get('random_test_error'))}" for r in rows)
                  + f" (chance {_pct(chance)}; holds when every interpolating row is at most "
                    f"{FAR_BELOW_CHANCE:.2g} of chance)", test_errors={r["row"]: r["test_error"] for r in rows})


def _section5_norm(rows: Sequence[dict]) -> Verdict:
    rows = [r for r in rows if not r.get("ridge") and r.get("norm") is not None and r.get("test_error") is not None]
    pairs = [(a, b) for a in rows for b in rows if a["dataset"] == b["dataset"] and a["norm"] > b["norm"]
             and a["test_error"] < b["test_error"]]
    if len({r["row"] for r in rows}) < 2:
        return not_measured("needs two unregularized rows on one data set")
    text = "; ".join(f"{r['row']}: norm {r['norm']:.3g}, test error {_pct(r['test_error'])}" for r in rows)
    if pairs:
        a, b = pairs[0]
        text += f"; {a['row']} has the larger norm and the lower error than {b['row']}"
    return judged(bool(pairs), text + " (holds when a larger-norm solution has the lower test error)",
                  norms={r["row"]: r["norm"] for r in rows})


TABLE3_CLAIMS = (
    Claim("table3-generalizes", "Kernel interpolation (no regularization) generalizes: test error 1.2% on MNIST, "
          "46% on CIFAR-10 pixels, 17% with random conv features, against 90% for chance.",
          "Section 5, Appendix D, Table 3", _table3_generalizes),
    Claim("section5-norm", "A smaller norm does not mean a lower test error: on MNIST the Gabor features' "
          "minimum-norm solution has norm about 390 (vs 220) and the lower error (0.6% vs 1.2%).",
          "Section 5", _section5_norm),
)


# -- Theorem 1: an expressivity result (experiments.expressivity.run_expressivity's dict) ---------------------

def _theorem1(result: dict) -> Verdict:
    if not result or "weights" not in result:
        return not_measured("no expressivity result")
    n, d = result["n"], result["d"]
    scalar = result.get("scalar") or {}
    weights, err = scalar.get("num_weights"), scalar.get("max_error")
    ok = weights == 2 * n + d and err is not None and err < 0.5 and scalar.get("train_accuracy") == 1.0
    return judged(ok, f"n = {n}, d = {d}: {weights} weights (2n + d = {2 * n + d}), max |c(x_i) - y_i| = "
                  f"{err:.3g}, training accuracy {_pct(scalar.get('train_accuracy'))} on {result.get('corruption')}",
                  weights=weights, max_error=err)


THEOREM1_CLAIM = Claim(
    "theorem1", "A two-layer ReLU network with 2n + d weights represents any function of a sample of n points "
    "in d dimensions (exact interpolation).", "Section 4, Theorem 1", _theorem1)
