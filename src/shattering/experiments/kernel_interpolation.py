"""The experiment behind ``shatter kernel``: exact kernel interpolation (Eq. 3) of true, partially corrupted and
random labels on a data set, Section 5 and Appendix D of Zhang et al., "Understanding deep learning requires
rethinking generalization" (ICLR 2017, arXiv 1611.03530).

It loads the sample (:mod:`.sample`), computes the features (:mod:`shattering.theory.features`), factors the
kernel once (:class:`~shattering.theory.kernel_solver.KernelSolver`) and reports, for every label set, the
training error, the residual, the test error and the norm, as a JSON-ready dict.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..data import dataset_info
from ..theory.features import FEATURES, compute_features
from ..theory.kernel_functions import KERNELS, TRANSFORMED_BANDWIDTH_FRACTION
from ..theory.kernel_solver import DTYPES, KernelSolver, fit_label_sets
from ..theory.linear_algebra import DEFAULT_BLOCK
from ..theory.memory import check_memory
from ..validation import check_choice, check_float, check_int, check_probability
from .sample import check_label_sets, load_sample


def kernel_experiment(dataset: str = "fashion-mnist", *, kernel: str = "gaussian", features: str = "raw",
                      corruption: str | list[str] = "true-labels,random-labels", p: float | None = None,
                      train_size: int = 5000, test_size: int | None = None, ridge: float = 0.0,
                      bandwidth: float | None = None, dtype: str = "float64", block_size: int = DEFAULT_BLOCK,
                      whitening: str = "none", seed: int = 0, data_seed: int = 0,
                      data_dir: str | Path | None = None, feature_options: dict | None = None,
                      tol: float | None = None, max_steps: int | None = None) -> dict:
    """Interpolate ``train_size`` images of ``dataset`` with a kernel, for one or several label sets (one
    factorization), and report training error, residual, test error and norm for each.

    ``whitening="none"`` (default) is the paper's "no preprocessing": pixels scaled to [0, 1]. ``corruption``
    is a comma-separated list of label corruptions: "true-labels", "partial-labels" (needs ``p``) and
    "random-labels". ``seed`` draws the random-conv filters and the bandwidth sample; ``data_seed`` the subset
    and the corrupted labels. ``tol`` and ``max_steps`` bound the refinement (:meth:`KernelSolver.solve`).
    ``bandwidth=None``: :data:`~shattering.theory.kernel_functions.BANDWIDTH_FRACTION` of the median pairwise
    distance on raw pixels, :data:`~shattering.theory.kernel_functions.TRANSFORMED_BANDWIDTH_FRACTION` of it on
    transformed features. Every option, the size of the data set and the memory the kernel matrix needs are
    checked before anything is loaded or computed. Returns a JSON-ready dict; each entry of ``results`` names
    its label set under ``corruption``.
    """
    start = time.perf_counter()
    check_choice(kernel, "kernel", KERNELS)
    check_choice(features, "features", FEATURES)
    names = check_label_sets(corruption)
    train_size = check_int(train_size, "train_size", maximum=dataset_info(dataset).n_train)
    p = None if p is None else check_probability(p)
    if ridge is not None:
        ridge = check_float(ridge, "ridge", low=0.0)
    check_choice(dtype, "dtype", tuple(DTYPES))
    block_size = check_int(block_size, "block_size")
    if tol is not None:
        check_float(tol, "tol", low=0.0)
    if max_steps is not None:
        check_int(max_steps, "max_steps", minimum=0)
    check_memory(train_size, DTYPES[dtype], block_size=block_size)
    sample = load_sample(dataset, train_size, test_size, seed=data_seed, whitening=whitening, data_dir=data_dir)
    label_sets = {name: sample.labels(name, p, data_seed) for name in names}
    t0 = time.perf_counter()
    f_train, f_test, finfo = compute_features(features, sample.data.x_train, sample.data.x_test, seed=seed,
                                              **(feature_options or {}))
    t_features = time.perf_counter() - t0
    solver = KernelSolver(f_train, kernel, bandwidth, ridge=ridge, dtype=dtype, block_size=block_size, seed=seed,
                          bandwidth_fraction=None if features == "raw" else TRANSFORMED_BANDWIDTH_FRACTION)
    results = fit_label_sets(solver, label_sets, sample.num_classes, true_labels=sample.data.y_train,
                             x_test=f_test, y_test=sample.data.y_test, tol=tol, max_steps=max_steps)
    solve_info = solver.describe()
    solve_info["seconds"]["features"] = t_features
    if results:
        first = results[0].extra
        solve_info["seconds"].update(solve=first["seconds_solve"], refinement=first["seconds_refinement"],
                                     predict=first["seconds_predict"])
    rows = []
    for r in results:
        row = r.as_dict()
        rows.append({"corruption": row.pop("labels"), **row})
    return {"dataset": sample.name, "n_train": sample.n_train, "n_test": sample.n_test, "classes": sample.num_classes,
            "whitening": whitening, "p": p, "seed": seed, "data_seed": data_seed, **finfo, **solve_info,
            "results": rows, "seconds_total": time.perf_counter() - start}
