"""The experiment behind ``shatter expressivity``: Theorem 1 of Zhang et al., "Understanding deep learning
requires rethinking generalization" (ICLR 2017, arXiv 1611.03530), Section 4 and Appendix C, fitted to the
images of a data set and measured.

The construction itself (Lemma 1, the two solvers, the depth-k network) is
:mod:`shattering.theory.relu_interpolation`; this module loads the sample, fits the networks and reports
their size, fit, accuracy and conditioning as a JSON-ready dict.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from torch import nn

from ..theory.relu_interpolation import (
    DEFAULT_CANDIDATES,
    DEFAULT_OFFSET,
    TRIANGULAR_MAX_N,
    ReLUInterpolant,
    condition_estimate,
    fit_relu_interpolant,
    interleave,
    predict,
    solve_recurrence,
    solve_triangular,
    weight_counts,
)
from ..validation import check_int, check_probability, one_hot
from .claims import THEOREM1_CLAIM
from .sample import load_sample


def expressivity(dataset: str = "fashion-mnist", train_size: int = 5000, *, corruption: str = "true-labels",
                 p: float | None = None, depth: int = 2, seed: int = 0, data_seed: int = 0,
                 test_size: int | None = None, candidates: int = DEFAULT_CANDIDATES, offset: float = DEFAULT_OFFSET,
                 method: str = "auto", compare_midpoint: bool = True, whitening: str = "default",
                 data_dir: str | Path | None = None) -> dict:
    """Fit Theorem 1's network to ``train_size`` training images of ``dataset`` and measure it.

    Two networks share a and b: one real output fitted to the class index (2n + d weights; prediction:
    the rounded output) and one output per class fitted to one-hot targets (n*K + n + d weights; prediction:
    argmax). With ``depth`` > 2 the one-per-class network is also rebuilt as Appendix C's deep network and
    checked the same way. ``corruption`` names the label set ("true-labels", "partial-labels" with ``p``,
    "random-labels"); ``seed`` draws the candidate directions a, ``data_seed`` the subset and the labels.
    Returns a JSON-ready dict (what ``shatter expressivity --json`` prints).
    """
    start = time.perf_counter()
    n = check_int(train_size, "train_size")
    depth = check_int(depth, "depth", minimum=2, maximum=n + 1)
    p = None if p is None else check_probability(p)
    sample = load_sample(dataset, n, test_size, seed=data_seed, whitening=whitening, data_dir=data_dir)
    y = sample.labels(corruption, p, data_seed)
    k = sample.num_classes
    x_train, x_test = sample.flat("train"), sample.flat("test")
    y_test = sample.data.y_test

    per_class, info = fit_relu_interpolant(x_train, y, num_classes=k, candidates=candidates, offset=offset,
                                           method=method, seed=seed)
    scalar, scalar_info = fit_relu_interpolant(x_train, y.astype(np.float64), candidates=candidates, offset=offset,
                                               method=method, seed=seed)
    fit_seconds = info.seconds + scalar_info.seconds

    def measure(model: nn.Module, kind: str) -> dict:
        out_train, out_test = predict(model, x_train), predict(model, x_test)
        if kind == "one_per_class":
            err = np.abs(out_train - one_hot(y, k)).max()
            pred_train, pred_test = out_train.argmax(1), out_test.argmax(1)
        else:
            err = np.abs(out_train - y).max()
            pred_train = np.clip(np.rint(out_train), 0, k - 1).astype(np.int64)
            pred_test = np.clip(np.rint(out_test), 0, k - 1).astype(np.int64)
        return {"num_weights": model.num_weights, "max_error": float(err),
                "train_accuracy": float((pred_train == y).mean()), "test_accuracy": float((pred_test == y_test).mean()),
                "outputs_train": out_train}

    results = {"one_per_class": measure(per_class, "one_per_class"), "scalar": measure(scalar, "scalar")}
    out = {
        "dataset": sample.name, "n": n, "d": info.d, "classes": k, "n_test": sample.n_test,
        "corruption": corruption, "p": p, "label_noise": float((y != sample.data.y_train).mean()), "seed": seed,
        "data_seed": data_seed,
        "weights": weight_counts(n, info.d, k),
        "fit": info.as_dict() | {"seconds": fit_seconds},
    }
    a, b = per_class.a.detach().numpy(), per_class.b.detach().numpy()
    proj = x_train @ a
    order = np.argsort(proj, kind="stable")
    xs = proj[order]
    out["cond_1"] = condition_estimate(xs, b)
    if compare_midpoint and n <= TRIANGULAR_MAX_N:  # the same a with midpoints b_i: the naive choice
        b_mid = interleave(xs, 0.5)
        naive = ReLUInterpolant(a, b_mid, solve_triangular(xs, b_mid, one_hot(y, k)[order]))
        out["midpoint"] = {"cond_1": condition_estimate(xs, b_mid),
                           "max_error": float(np.abs(predict(naive, x_train) - one_hot(y, k)).max())}
    if n <= TRIANGULAR_MAX_N:  # the two solvers, cross-checked
        ys = one_hot(y, k)[order]
        w_tri, w_rec = solve_triangular(xs, b, ys), solve_recurrence(xs, b, ys)
        out["solver_agreement"] = float(np.abs(w_tri - w_rec).max() / np.abs(w_tri).max())
    if depth > 2:
        deep = per_class.deepen(depth)
        deep_out = measure(deep, "one_per_class")
        deep_out.update(depth=deep.depth, widths=[min(deep.widths), max(deep.widths)],
                        fixed_connections=deep.fixed_connections,
                        max_difference_to_two_layer=float(np.abs(deep_out["outputs_train"]
                                                                 - results["one_per_class"]["outputs_train"]).max()))
        results["deep"] = deep_out
    for r in results.values():
        r.pop("outputs_train")
    out.update(results)
    out["depth"] = depth
    out["claims"] = [THEOREM1_CLAIM.assess(out)]  # Theorem 1's verdict on this fit, with its numbers
    out["seconds"] = time.perf_counter() - start
    return out
