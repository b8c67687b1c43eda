"""Per-example memorization, influence and consistency scores from K networks, each trained on a random subset.

Every estimator here reads the same two things: ``masks`` (K, N), bool, masks[k, i] True where network k trained on
training example i, and a correctness array of K rows (``train_correct`` (K, N), or ``test_correct`` (K, M) for the
test examples): 1 where network k classifies the example correctly (with the label it was trained on, the possibly
corrupted one), 0 where not, or a probability in [0, 1] (say, the softmax output for that label). The estimators
compare the networks that trained on an example ("in") with those that did not ("out"):

    p_in_i  = sum_k masks[k, i] correct[k, i] / n_in_i,       n_in_i  = sum_k masks[k, i],
    p_out_i = sum_k (1 - masks[k, i]) correct[k, i] / n_out_i, n_out_i = K - n_in_i.

- Feldman and Zhang (NeurIPS 2020, "What neural networks memorize and why: discovering the long tail via influence
  estimation"; the definitions are Feldman's, STOC 2020, estimated by their subsampling estimator): the
  memorization of example i, mem_i = p_in_i - p_out_i, and the influence of training example i on test example j,
  infl[i, j] = (the same difference, read on test example j's correctness).
- Jiang, Zhang, Talwar and Mozer (ICML 2021, "Characterizing structural regularities of labeled data in
  overparameterized models", the hold-out estimate of their C-score): the consistency score C_i = p_out_i, the
  expected accuracy on i of networks trained on subsets that leave it out.

Standard errors are binomial (the Wald plug-in): sqrt(p (1 - p) / n) for each side, summed in quadrature for a
difference, the two sides taken as independent (they come from different networks). For 0/1 correctness that is
the binomial standard error; for probabilities in [0, 1] it is an upper bound (a variable in [0, 1] of mean p has
variance at most p (1 - p)). It is 0 where a side's mean is exactly 0 or 1. Where a side has no networks (n = 0)
the estimate and its standard error are NaN, never a number made up: the count beside it says why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..validation import check_float, check_int, must_be

FRACTION = 0.7  # Feldman and Zhang's subset size: 70% of the training set per network


@dataclass(frozen=True)
class MemorizationEstimate:
    """mem_i = p_in_i - p_out_i (module docstring) per training example, shape (N,) each; NaN where a side is
    empty (``n_in`` or ``n_out`` 0)."""

    mem: np.ndarray  # p_in - p_out
    p_in: np.ndarray  # mean correctness over the networks that trained on i
    p_out: np.ndarray  # mean correctness over the networks that did not
    n_in: np.ndarray  # int: networks behind p_in
    n_out: np.ndarray  # int: networks behind p_out
    se: np.ndarray  # binomial standard error of mem


@dataclass(frozen=True)
class InfluenceEstimate:
    """infl[i, j] (module docstring), shape (N, M), its binomial standard error ``se`` (N, M), and the networks
    behind each side per training example, ``n_in`` and ``n_out`` (N,); rows NaN where a side is empty."""

    infl: np.ndarray
    se: np.ndarray
    n_in: np.ndarray
    n_out: np.ndarray


@dataclass(frozen=True)
class ConsistencyEstimate:
    """C_i = p_out_i (Jiang et al.'s hold-out estimate), shape (N,) each; NaN where no network left i out."""

    c: np.ndarray
    n_out: np.ndarray  # int: networks that left i out
    se: np.ndarray  # binomial standard error of c


@dataclass(frozen=True)
class PrecisionRecall:
    """The marked examples among the ``top`` lowest scores: ``precision`` (their share of the selection),
    ``recall`` (the share of the marked ones selected; NaN where none is marked) and ``selected`` (the indices, the
    lowest score first)."""

    precision: float
    recall: float
    selected: np.ndarray


def _check_masks(masks, of: str) -> np.ndarray:
    arr = np.asarray(masks)
    if arr.dtype != np.bool_:
        raise ConfigError(must_be("masks", "a boolean array (masks[k, i]: network k trained on example i)", masks,
                                  of=of, shown=f"dtype {arr.dtype}"))
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise ConfigError(must_be("masks", "a 2-D array of shape (networks, examples)", masks, of=of,
                                  shown=f"shape {arr.shape}"))
    if arr.shape[0] < 2:
        raise ConfigError(must_be("masks", "an array of at least 2 rows (networks)", masks, of=of,
                                  shown=f"shape {arr.shape}"))
    return arr


def _check_correct(correct, name: str, k: int, n: int | None, of: str) -> np.ndarray:
    """``correct`` as float64 of shape (k, n) (n None: any number of columns), values in [0, 1]."""
    arr = np.asarray(correct)
    if not (arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ConfigError(must_be(name, "a boolean or float array", correct, of=of, shown=f"dtype {arr.dtype}"))
    shape = f"({k}, {'M' if n is None else n})"
    if arr.ndim != 2 or arr.shape[0] != k or (n is not None and arr.shape[1] != n) or arr.shape[1] < 1:
        raise ConfigError(must_be(name, f"of shape {shape}, one row per network of masks", correct, of=of,
                                  shown=f"shape {arr.shape}"))
    out = arr.astype(np.float64)
    if not (np.isfinite(out).all() and (out >= 0).all() and (out <= 1).all()):
        raise ConfigError(must_be(name, "an array of correctness values in [0, 1] (booleans or probabilities)",
                                  correct, of=of, shown="values outside [0, 1] or NaN"))
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0 (no warning)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _binomial_var(p: np.ndarray, n: np.ndarray) -> np.ndarray:
    """p (1 - p) / n (NaN where p is; at least 0, should rounding put p a hair outside [0, 1])."""
    return np.maximum(_ratio(p * (1.0 - p), np.broadcast_to(n, p.shape)), 0.0)


def memorization(masks, train_correct) -> MemorizationEstimate:
    """Feldman and Zhang's memorization estimate (NeurIPS 2020): for each training example i,

        mem_i = mean_{k: masks[k, i]} train_correct[k, i] - mean_{k: not masks[k, i]} train_correct[k, i],

    with the binomial standard error sqrt(p_in (1 - p_in) / n_in + p_out (1 - p_out) / n_out) (module
    docstring). NaN (and its count 0) where no network trained on i, or none left it out."""
    of = "memorization"
    masks = _check_masks(masks, of)
    correct = _check_correct(train_correct, "train_correct", *masks.shape, of)
    n_in = masks.sum(axis=0)
    n_out = masks.shape[0] - n_in
    p_in = _ratio(np.where(masks, correct, 0.0).sum(axis=0), n_in)
    p_out = _ratio(np.where(masks, 0.0, correct).sum(axis=0), n_out)
    se = np.sqrt(_binomial_var(p_in, n_in) + _binomial_var(p_out, n_out))
    return MemorizationEstimate(mem=p_in - p_out, p_in=p_in, p_out=p_out, n_in=n_in.astype(np.int64),
                                n_out=n_out.astype(np.int64), se=se)


def influence(masks, test_correct) -> InfluenceEstimate:
    """Feldman and Zhang's influence estimate (NeurIPS 2020) of training example i on test example j:

        infl[i, j] = mean_{k: masks[k, i]} test_correct[k, j] - mean_{k: not masks[k, i]} test_correct[k, j],

    as two matrix products, (masks^T @ test_correct) / n_in[:, None] - ((~masks)^T @ test_correct) /
    n_out[:, None], shape (N, M), in float64; the standard error per pair is binomial, as for
    :func:`memorization`. A row is NaN where no network trained on i, or none left it out. Memory: a few (N, M)
    float64 arrays (CIFAR-10's 50000 x 10000: 4 GB each), so split the test set into column blocks if needed."""
    of = "influence"
    masks = _check_masks(masks, of)
    correct = _check_correct(test_correct, "test_correct", masks.shape[0], None, of)
    inside = masks.astype(np.float64)
    n_in = masks.sum(axis=0)
    n_out = masks.shape[0] - n_in
    p_in = _ratio(inside.T @ correct, n_in[:, None])
    p_out = _ratio((1.0 - inside).T @ correct, n_out[:, None])
    se = np.sqrt(_binomial_var(p_in, n_in[:, None]) + _binomial_var(p_out, n_out[:, None]))
    return InfluenceEstimate(infl=p_in - p_out, se=se, n_in=n_in.astype(np.int64), n_out=n_out.astype(np.int64))


def most_influential(infl) -> tuple[np.ndarray, np.ndarray]:
    """Feldman and Zhang's high-influence pairs, simply: for each test example j, the training example of largest
    influence, argmax_i infl[i, j], and that value; two arrays of shape (M,). ``infl`` is an
    :class:`InfluenceEstimate` or its (N, M) array. NaN rows are skipped; ties go to the lowest index; a column
    with no number gives index -1 and NaN. (They keep the pairs whose influence is above a threshold: filter the
    values.)"""
    arr = np.asarray(infl.infl if isinstance(infl, InfluenceEstimate) else infl, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 1:
        raise ConfigError(must_be("infl", "an array of shape (N, M)", infl, of="most_influential",
                                  shown=f"shape {arr.shape}"))
    known = ~np.isnan(arr)
    index = np.argmax(np.where(known, arr, -np.inf), axis=0)
    empty = ~known.any(axis=0)
    value = np.where(empty, np.nan, arr[index, np.arange(arr.shape[1])])
    return np.where(empty, -1, index).astype(np.int64), value


def c_score(masks, train_correct) -> ConsistencyEstimate:
    """Jiang et al.'s consistency score (ICML 2021), estimated on held-out networks: for each training
    example i,

        C_i = mean_{k: not masks[k, i]} train_correct[k, i],

    the expected accuracy on i of networks trained on subsets that leave it out, with n_out_i and the binomial
    standard error sqrt(C_i (1 - C_i) / n_out_i). NaN (and n_out 0) where no network left i out. Low scores mark
    the examples the rest of the data does not predict: atypical ones and, with a corrupted label, mislabeled
    ones (:func:`lowest_scores_precision_recall`)."""
    of = "c_score"
    masks = _check_masks(masks, of)
    correct = _check_correct(train_correct, "train_correct", *masks.shape, of)
    n_out = (~masks).sum(axis=0)
    c = _ratio(np.where(masks, 0.0, correct).sum(axis=0), n_out)
    return ConsistencyEstimate(c=c, n_out=n_out.astype(np.int64), se=np.sqrt(_binomial_var(c, n_out)))


def subset_masks(n: int, k: int, fraction: float = FRACTION, seed: int = 0) -> np.ndarray:
    """K random subsets of the N training examples, as bool (K, N): each row exactly m = round(fraction * n)
    Trues (Python's round, halves to even), drawn without replacement, row after row, by one
    ``numpy.random.default_rng(seed)``: the rows are independent, and the same seed gives the same masks. Feldman
    and Zhang train on 70% subsets (``fraction`` 0.7); an example is left out of about K (1 - fraction) of them.
    m must be between 1 and n - 1, so that both sides of every estimate can be non-empty."""
    of = "subset_masks"
    n = check_int(n, "n", minimum=2, of=of)
    k = check_int(k, "k", minimum=2, of=of)
    fraction = check_float(fraction, "fraction", low=0.0, high=1.0, low_open=True, high_open=True, of=of)
    seed = check_int(seed, "seed", minimum=0, of=of)
    m = round(fraction * n)
    if not 1 <= m <= n - 1:
        raise ConfigError(must_be("fraction", f"such that round(fraction * {n}) is between 1 and {n - 1}",
                                  fraction, of=of))
    rng = np.random.default_rng(seed)
    masks = np.zeros((k, n), dtype=bool)
    for row in masks:
        row[rng.choice(n, size=m, replace=False)] = True
    return masks


def lowest_scores_precision_recall(scores, marked, top: int) -> PrecisionRecall:
    """Precision and recall of the ``marked`` examples (e.g. those whose label was corrupted) among the ``top``
    examples of lowest ``scores``: Jiang et al.'s "the lowest C-scores single out the mislabeled examples".
    precision = |marked among the top| / top, recall = |marked among the top| / |marked| (NaN where nothing is
    marked). NaN scores sort last; ties go to the lower index (a stable sort)."""
    of = "lowest_scores_precision_recall"
    values = np.asarray(scores)
    if values.ndim != 1 or not (np.issubdtype(values.dtype, np.floating) or np.issubdtype(values.dtype, np.integer)):
        raise ConfigError(must_be("scores", "a 1-D array of numbers", scores, of=of,
                                  shown=f"shape {values.shape}, dtype {values.dtype}"))
    flags = np.asarray(marked)
    if flags.dtype != np.bool_ or flags.shape != values.shape:
        raise ConfigError(must_be("marked", f"a boolean array of shape {values.shape}, the shape of scores", marked,
                                  of=of, shown=f"shape {flags.shape}, dtype {flags.dtype}"))
    top = check_int(top, "top", minimum=1, maximum=len(values), of=of)
    selected = np.argsort(values.astype(np.float64), kind="stable")[:top]  # NaN sorts last
    hits = int(flags[selected].sum())
    total = int(flags.sum())
    return PrecisionRecall(precision=hits / top, recall=hits / total if total else float("nan"), selected=selected)
