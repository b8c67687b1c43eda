"""The experiment behind ``shatter minnorm``: SGD on over-parameterized least squares finds the minimum-norm
interpolant, Section 5 of Zhang et al., "Understanding deep learning requires rethinking generalization"
(ICLR 2017, arXiv 1611.03530), "Implicit regularization: an appeal to linear models".

The statements and the solvers are :mod:`shattering.theory.min_norm`; this module prepares the data (a data
set's pixels, random Fourier features of them, or synthetic N(0, 1) features), runs SGD from w = 0 and from a
random start, and reports both against pinv(X) y as a JSON-ready dict.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..corruptions import LABEL_CORRUPTIONS
from ..errors import ConfigError
from ..theory.min_norm import min_norm_solution, null_space_component, random_fourier_features, sgd_least_squares
from ..validation import check_choice, check_float, check_int, check_probability, one_hot
from .sample import load_sample

FEATURES = ("raw", "random")
SYNTHETIC = "synthetic"


def min_norm_experiment(dataset: str = "fashion-mnist", train_size: int = 100, *, features: str = "raw",
                        width: int | None = None, corruption: str = "true-labels", p: float | None = None,
                        epochs: int = 300, lr: float | None = None, batch_size: int = 1, seed: int = 0,
                        data_seed: int = 0, test_size: int | None = None, init_scale: float = 1.0,
                        data_dir: str | Path | None = None) -> dict:
    """Run SGD on least squares from w = 0 and from a random start; compare with pinv(X) y (Section 5).

    Parameters
    ----------
    dataset : str, default="fashion-mnist"
        A data set name, or "synthetic" (i.i.d. N(0, 1) features, d = ``width`` or 5n, random classes).
    train_size : int, default=100
        Training points n; the experiment needs d > n.
    features : {"raw", "random"}, default="raw"
        Flattened preprocessed pixels, or ``width`` random Fourier features of them.
    width : int or None
        Random features (default 20n), or the synthetic dimension (default 5n).
    corruption, p :
        Label set ("true-labels", "partial-labels" with probability p, "random-labels"); targets are one-hot.
    epochs, lr, batch_size :
        See :func:`~shattering.theory.min_norm.sgd_least_squares`.
    seed : int, default=0
        The algorithm's randomness: the SGD order, the random start and the random features.
    data_seed : int, default=0
        The data's: the subset, the corrupted labels, the synthetic data set.
    test_size : int or None, default=None
        Test points for the test accuracy (None: the whole test split; synthetic: 1000).
    init_scale : float, default=1.0
        ||w_0|| / ||w*|| for the non-zero start.
    data_dir : str, Path or None
        A folder holding the data set's files.

    Returns
    -------
    dict
        JSON-ready (what ``shatter minnorm --json`` prints).
    """
    start = time.perf_counter()
    n = check_int(train_size, "train_size")
    features = check_choice(features, "features", FEATURES)
    corruption = check_choice(corruption, "corruption", LABEL_CORRUPTIONS)
    p = None if p is None else check_probability(p)
    init_scale = check_float(init_scale, "init_scale", low=0.0, low_open=True)
    if width is not None:
        width = check_int(width, "width")
    if dataset == SYNTHETIC:
        if features != "raw":
            raise ConfigError("The synthetic data set is already N(0, 1) features; --features random applies to "
                              "a data set's pixels: drop it or name a data set.")
        if corruption not in ("true-labels", "random-labels") or p is not None:
            raise ConfigError("The synthetic data set's classes are random draws (they have no true labels to "
                              "corrupt); drop --corruption/--p or name a data set.")
        d = width or 5 * n
        rng = np.random.default_rng(np.random.SeedSequence([int(data_seed), 204]))
        x, x_test = rng.standard_normal((n, d)), rng.standard_normal((test_size or 1000, d))
        k = 10
        y_lab, y_test = rng.integers(0, k, n), rng.integers(0, k, len(x_test))
        source = {"dataset": SYNTHETIC, "features": f"N(0, 1) entries, d = {d}"}
    else:
        sample = load_sample(dataset, n, test_size, seed=data_seed, data_dir=data_dir)
        x, x_test = sample.flat("train"), sample.flat("test")
        y_lab, y_test, k = sample.labels(corruption, p, data_seed), sample.data.y_test, sample.num_classes
        source = {"dataset": sample.name, "features": "raw pixels (dataset preprocessing)"}
        if features == "random":
            width = width or 20 * n
            x, x_test = random_fourier_features(x, x_test, width, seed)
            source["features"] = f"{width} random Fourier features of the pixels"
    n, d = x.shape
    if d <= n:
        raise ConfigError(f"The minimum-norm experiment needs more features than points (d > n) so that Xw = y has "
                          f"many solutions; got n = {n} >= d = {d}: lower --train-size below {d} or use --features "
                          "random.")
    y = one_hot(y_lab, k)
    sv = np.linalg.svd(x, compute_uv=False)
    rank = int((sv > sv[0] * max(x.shape) * np.finfo(np.float64).eps).sum())
    w_star = min_norm_solution(x, y)

    w_zero, trace_zero = sgd_least_squares(x, y, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                                           reference=w_star)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 205]))
    w0 = rng.standard_normal(w_star.shape)
    w0 *= init_scale * np.linalg.norm(w_star) / np.linalg.norm(w0)
    w0_null = null_space_component(x, w0)
    limit = w_star + w0_null  # where SGD from w0 must converge
    w_init, trace_init = sgd_least_squares(x, y, w0=w0, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                                           reference=limit)

    def accuracy(w: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> float | None:
        return float(((xs @ w).argmax(1) == ys).mean()) if len(ys) else None

    norm_star = float(np.linalg.norm(w_star))
    return {
        **source, "n": n, "d": d, "rank": rank, "classes": k,
        "corruption": corruption if dataset != SYNTHETIC else "random-labels", "p": p, "seed": seed,
        "data_seed": data_seed, "epochs": epochs, "epochs_run": trace_zero.epochs[-1], "batch_size": batch_size,
        "lr": float(lr if lr is not None else 1.0 / np.einsum("ij,ij->i", x, x).max()),
        "singular_values": {"max": float(sv[0]), "min": float(sv[-1]), "cond": float(sv[0] / sv[-1])},
        "min_norm": {"norm": norm_star, "residual": float(np.linalg.norm(x @ w_star - y) / np.linalg.norm(y)),
                     "test_accuracy": accuracy(w_star, x_test, y_test)},
        "from_zero": {"distance_to_min_norm": trace_zero.distance[-1], "residual": trace_zero.residual[-1],
                      "norm": trace_zero.norm[-1], "test_accuracy": accuracy(w_zero, x_test, y_test),
                      "trace": trace_zero.as_dict()},
        "from_random_start": {
            "init_norm": float(np.linalg.norm(w0)), "null_space_norm": float(np.linalg.norm(w0_null)),
            "predicted_norm": float(np.linalg.norm(limit)), "norm": trace_init.norm[-1],
            "distance_to_predicted_limit": trace_init.distance[-1], "residual": trace_init.residual[-1],
            "distance_to_min_norm": float(np.linalg.norm(w_init - w_star) / norm_star),
            "test_accuracy": accuracy(w_init, x_test, y_test), "trace": trace_init.as_dict()},
        "seconds": time.perf_counter() - start,
    }
