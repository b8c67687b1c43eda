"""The claims of the theory sections of Zhang et al. (ICLR 2017): kernel interpolation generalizes and a smaller
norm does not mean a lower test error (Section 5, Table 3 of Appendix D; measured on the computed rows of
:mod:`shattering.experiments.table3`), and Theorem 1 (Section 4: a two-layer ReLU network of 2n + d weights
interpolates any labels; measured on :func:`shattering.experiments.expressivity.expressivity`'s result).
"""

from __future__ import annotations

from collections.abc import Sequence

from .core import FAR_BELOW_CHANCE, Claim, Verdict, judged, not_measured, percent

# -- Table 3 and Section 5: computed rows (dicts of experiments.table3) ----------------------------------------

def _table3_generalizes(rows: Sequence[dict]) -> Verdict:
    rows = [r for r in rows if r.get("interpolates") and r.get("test_error") is not None]
    if not rows:
        return not_measured("no row interpolated its training set")
    chance = 0.9  # every Table 3 data set (MNIST, CIFAR-10 and their substitutes) has 10 classes
    ok = all(r["test_error"] <= FAR_BELOW_CHANCE * chance for r in rows)
    return judged(ok, "; ".join(f"{r['row']} ({r['dataset']}): test error {percent(r['test_error'])}, random labels "
                                f"{percent(r.get('random_test_error'))}" for r in rows)
                  + f" (chance {percent(chance)}; holds when every interpolating row is at most "
                    f"{FAR_BELOW_CHANCE:.2g} of chance)", test_errors={r["row"]: r["test_error"] for r in rows})


def _section5_norm(rows: Sequence[dict]) -> Verdict:
    rows = [r for r in rows if not r.get("ridge") and r.get("norm") is not None and r.get("test_error") is not None]
    pairs = [(a, b) for a in rows for b in rows if a["dataset"] == b["dataset"] and a["norm"] > b["norm"]
             and a["test_error"] < b["test_error"]]
    if len({r["row"] for r in rows}) < 2:
        return not_measured("needs two unregularized rows on one data set")
    text = "; ".join(f"{r['row']}: norm {r['norm']:.3g}, test error {percent(r['test_error'])}" for r in rows)
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
                  f"{err:.3g}, training accuracy {percent(scalar.get('train_accuracy'))} on {result.get('corruption')}",
                  weights=weights, max_error=err)


THEOREM1_CLAIM = Claim(
    "theorem1", "A two-layer ReLU network with 2n + d weights represents any function of a sample of n points "
    "in d dimensions (exact interpolation).", "Section 4, Theorem 1", _theorem1)
