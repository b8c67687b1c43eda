"""Table 3 (Appendix D) of Zhang et al., "Understanding deep learning requires rethinking generalization"
(ICLR 2017): test error of kernel interpolation (Eq. 3, no regularization unless stated) on MNIST and CIFAR-10,
with and without a feature transform, plus the minimum-norm norms quoted in Section 5.

:func:`compute_table3` runs every row at one of three scales and
:func:`shattering.report.table3.render_table3` writes the rows next to the paper's numbers (``table3.md``,
``table3.csv``); :func:`reproduce_rows` is what the ``table3`` preset computes (``shatter reproduce table3``):
the rows of an earlier identical request are read back instead of computed again. Every row also solves the
same system with random labels (same factorization): the paper's point is that the same interpolating method
fits those too, with a larger norm, and the test error then says nothing.

Where the paper's data set is not on this machine the row runs on a substitute (MNIST -> Fashion-MNIST ->
digits; CIFAR-10 -> Fashion-MNIST -> digits) and says so in its ``note``: such numbers are not comparable
to the paper's. Unstated choices [I]: Gaussian kernel with sigma = 0.25 x the median pairwise distance on
raw pixels and the median itself on transformed features
(:func:`~shattering.theory.kernel_functions.default_bandwidth`), pixels scaled to [0, 1] without whitening,
"Gabor wavelet transform" = :func:`~shattering.theory.features.wavelet_transform` of order 1 (J = 2, L = 8),
the random conv net of :func:`~shattering.theory.features.random_conv_features`, and ridge :data:`TABLE_RIDGE`
for the "+ l2" rows (the paper gives no strength).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..data import dataset_info
from ..data.location import locate
from ..errors import ConfigError
from ..files import atomic_write_bytes, atomic_write_json, json_text, read_json
from ..validation import check_choice
from .sample import load_sample

TABLE_RIDGE = 0.1  # ridge (added to the unit diagonal of the Gaussian kernel) for the "+ l2" rows [I]

# The paper's numbers (Section 5 [V] and Appendix D [S]); test errors as fractions, None where not given.
PAPER_TABLE3: list[dict] = [
    {"row": "mnist-raw", "paper_dataset": "MNIST", "features": "raw", "ridge": False,
     "paper_test_error": 0.012, "paper_norm": 220.0, "paper_note": "no preprocessing; min-norm l2 norm ~220"},
    {"row": "mnist-raw-l2", "paper_dataset": "MNIST", "features": "raw", "ridge": True,
     "paper_test_error": None, "paper_norm": None, "paper_note": "regularization does not improve it (no number)"},
    {"row": "mnist-gabor", "paper_dataset": "MNIST", "features": "gabor", "ridge": False,
     "paper_test_error": 0.006, "paper_norm": 390.0, "paper_note": "Gabor wavelet transform; norm ~390"},
    {"row": "mnist-gabor-l2", "paper_dataset": "MNIST", "features": "gabor", "ridge": True,
     "paper_test_error": None, "paper_norm": None, "paper_note": "regularization does not improve it (no number)"},
    {"row": "cifar10-raw", "paper_dataset": "CIFAR-10", "features": "raw", "ridge": False,
     "paper_test_error": 0.46, "paper_norm": None, "paper_note": "Gaussian kernel on pixels"},
    {"row": "cifar10-random-conv", "paper_dataset": "CIFAR-10", "features": "random-conv", "ridge": False,
     "paper_test_error": 0.17, "paper_norm": None, "paper_note": "random conv net, 32,000 random filters"},
    {"row": "cifar10-random-conv-l2", "paper_dataset": "CIFAR-10", "features": "random-conv", "ridge": True,
     "paper_test_error": 0.15, "paper_norm": None, "paper_note": "the same with l2 regularization"},
]

# Per scale: training / test points (None: the whole split), random conv filters, factorization precision.
SCALE_SETTINGS = {
    "smoke": {"n_train": 300, "n_test": 300, "filters": 64, "dtype": "float64"},
    "quick": {"n_train": 5000, "n_test": None, "filters": 1024, "dtype": "float64"},
    # the paper's n: 60,000 (MNIST) / 50,000 (CIFAR-10) training points, 32,000 filters; needs ~30 GB in
    # float64 (the paper's 30 GB kernel matrix) or float32 with refinement, and a large machine
    "paper": {"n_train": None, "n_test": None, "filters": 32000, "dtype": "float64"},
}

_SUBSTITUTES = {"MNIST": ("mnist", "fashion-mnist", "digits"), "CIFAR-10": ("cifar10", "fashion-mnist", "digits")}


def dataset_available(name: str) -> bool:
    """True if ``name``'s files are on this machine (bundled and generated data sets always are)."""
    info = dataset_info(name)
    if info.kind in ("sklearn", "generated"):
        return True
    return locate(info)[0] is not None


def resolve_dataset(paper_dataset: str, dataset: str | None = None) -> tuple[str, str]:
    """The data set a row runs on and a note saying how it differs from the paper's (empty if it does not)."""
    wanted = _SUBSTITUTES[paper_dataset][0]
    if dataset is not None:
        dataset_info(dataset)  # raises for unknown names
        note = "" if dataset == wanted else f"ran on {dataset} (asked for), not {paper_dataset}: not comparable"
        return dataset, note
    for name in _SUBSTITUTES[paper_dataset]:
        if dataset_available(name):
            note = "" if name == wanted else (f"{paper_dataset} is not on this machine; ran on {name} instead: "
                                              "not comparable to the paper's number")
            return name, note
    raise ConfigError(f"No data set for the {paper_dataset} rows is available; fetch one with `shatter data fetch`.")


def compute_table3(scale: str, dataset: str | None = None, out_dir: Path | None = None, *,
                   kernel: str = "gaussian", ridge: float = TABLE_RIDGE, seed: int = 0,
                   rows: list[str] | None = None, dtype: str | None = None) -> list[dict]:
    """Run the rows of Table 3 at ``scale`` ("smoke": seconds; "quick": minutes on a 2-core CPU; "paper": the
    paper's n, for a large machine).

    Parameters
    ----------
    scale : {"smoke", "quick", "paper"}
    dataset : str or None, default=None
        Run every row on this data set instead of the paper's (or its substitute when absent).
    out_dir : Path or None
        If given, the rows are also written to ``out_dir / "table3.json"``.
    kernel, ridge, seed :
        Kernel of every row, ridge of the "+ l2" rows, seed of subsets, labels and random filters.
    rows : list of str or None
        Only these rows (names as in :data:`PAPER_TABLE3`).
    dtype : {"float64", "float32"} or None
        Precision of the factorization (default: the scale's, float64). At the paper's n = 60,000, float64
        needs 28.8 GB for the matrix alone; float32 (14.4 GB) is refined in float64 and reports whether it
        still interpolates.

    Returns
    -------
    list of dict
        One dict per row: the paper's numbers (``paper_*``) beside the measured ones, for true and random labels.
    """
    # here: the theory imports torch and scipy, and `shatter --help` reads the presets (this module's) without them
    from ..theory.features import compute_features
    from ..theory.kernel_functions import KERNELS, TRANSFORMED_BANDWIDTH_FRACTION
    from ..theory.kernel_solver import KernelSolver, fit_label_sets

    scale = check_choice(scale, "scale", tuple(SCALE_SETTINGS))
    check_choice(kernel, "kernel", KERNELS)
    settings = SCALE_SETTINGS[scale]
    selected = [r for r in PAPER_TABLE3 if rows is None or r["row"] in rows]
    if rows is not None and len(selected) != len(set(rows)):
        known = ", ".join(r["row"] for r in PAPER_TABLE3)
        raise ConfigError(f"Unknown Table 3 row in {', '.join(rows)}; known rows: {known}.")
    samples: dict[str, object] = {}
    features: dict[tuple[str, str], tuple] = {}
    solved: dict[tuple, tuple] = {}
    out = []
    for spec in selected:
        start = time.perf_counter()
        name, note = resolve_dataset(spec["paper_dataset"], dataset)
        if name not in samples:
            samples[name] = load_sample(name, settings["n_train"], settings["n_test"], seed=seed, whitening="none")
        sample = samples[name]
        key = (name, spec["features"])
        if key not in features:
            features[key] = compute_features(spec["features"], sample.data.x_train, sample.data.x_test,
                                             filters=settings["filters"], seed=seed)
        f_train, f_test, finfo = features[key]
        row_ridge = ridge if spec["ridge"] else 0.0
        if key + (row_ridge,) not in solved:  # rows that resolve to the same run (e.g. both on a substitute)
            solver = KernelSolver(f_train, kernel, None, ridge=row_ridge, dtype=dtype or settings["dtype"], seed=seed,
                                  bandwidth_fraction=None if spec["features"] == "raw" else
                                  TRANSFORMED_BANDWIDTH_FRACTION)
            labels = {"true-labels": sample.labels("true-labels"),
                      "random-labels": sample.labels("random-labels", seed=seed)}
            solved[key + (row_ridge,)] = (solver, *fit_label_sets(
                solver, labels, sample.num_classes, true_labels=sample.data.y_train, x_test=f_test,
                y_test=sample.data.y_test))
        solver, true, rand = solved[key + (row_ridge,)]
        notes = [n for n in (note,) if n]
        if not true.interpolates and not spec["ridge"]:
            notes.append(f"did not interpolate: max training residual {true.max_residual:.1e}")
        out.append({
            "row": spec["row"], "scale": scale, "paper_dataset": spec["paper_dataset"], "dataset": name,
            "features": finfo["description"], "feature_dim": finfo["dimension"], "kernel": kernel,
            "bandwidth": solver.bandwidth, "bandwidth_rule": solver.bandwidth_rule, "ridge": solver.ridge,
            "dtype": solver.dtype_name,
            "n_train": sample.n_train, "n_test": sample.n_test,
            "train_error": true.train_error, "max_residual": true.max_residual, "interpolates": true.interpolates,
            "test_error": true.test_error, "paper_test_error": spec["paper_test_error"],
            "norm": true.norm, "paper_norm": spec["paper_norm"],
            "random_train_error": rand.train_error, "random_test_error": rand.test_error, "random_norm": rand.norm,
            "random_interpolates": rand.interpolates, "paper_note": spec["paper_note"], "note": "; ".join(notes),
            "seconds": time.perf_counter() - start,
        })
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out_dir / "table3.json", json_text(out, sort_keys=False).encode())
    return out


def reproduce_rows(scale: str, dataset: str | None, out_dir: Path, *, seed: int = 0) -> list[dict]:
    """The rows of Table 3 for ``shatter reproduce table3``: those computed before into ``out_dir`` with the same
    request (scale, data set, seed), else :func:`compute_table3`'s (written to ``out_dir / "table3.json"``)."""
    out_dir = Path(out_dir)
    request = {"scale": scale, "dataset": dataset, "seed": seed}
    if read_json(out_dir / "table3.request.json") == request and (out_dir / "table3.json").is_file():
        return json.loads((out_dir / "table3.json").read_text())
    rows = compute_table3(scale, dataset, out_dir, seed=seed)
    atomic_write_json(out_dir / "table3.request.json", request)
    return rows
