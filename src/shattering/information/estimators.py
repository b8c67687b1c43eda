"""Estimators of I(X;T) and I(T;Y) for a layer's representation T of the inputs X with labels Y, in bits.

T is an N x D array (N examples, D units; numpy or torch, read as float64) and Y an (N,) array of integer labels.
X is the empirical input distribution, uniform over the N examples (taken as distinct); p(y) is the labels'
empirical frequency. Three estimators, each a pure function:

- :func:`binned_information`: Shwartz-Ziv and Tishby (2017, "Opening the black box of deep neural networks via
  information"): every unit discretized into equal-width bins, each example's row of bin indices a symbol;
  plug-in entropies. Saturates at log2 N.
- :func:`kde_information_bounds`: Kolchinsky and Tracey (2017) pairwise-distance bounds on the entropy of a
  Gaussian mixture, applied to T + Z, Z ~ N(0, sigma^2 I), as Saxe et al. (ICLR 2018, "On the information
  bottleneck theory of deep learning") did. Depends on sigma^2.
- :func:`knn_label_information`: I(T;Y) by nearest neighbours (Kraskov, Stoegbauer and Grassberger 2004; Ross
  2014 for a discrete Y): no bins and no noise to choose, and no I(X;T) (Goldfeld et al., ICML 2019).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
from scipy.spatial import cKDTree
from scipy.special import digamma

from ..errors import ConfigError
from ..validation import check_float, check_int, check_matrix, must_be
from .pairwise import PairwiseSums, pairwise_sums

if TYPE_CHECKING:
    import torch

LN2 = math.log(2.0)
DEFAULT_BINS = 30  # Shwartz-Ziv and Tishby's 30 bins (they spanned [-1, 1], the range of tanh)
NOISE_VAR = 0.1  # sigma^2 of Saxe et al.'s added noise (artemyk/ibsgd: noise_variance = 1e-1)
DEFAULT_K = 3  # neighbours in the kNN estimator (Kraskov et al. suggest 2 to 4; scikit-learn's default)
KDTREE_MAX_UNITS = 10  # kNN: cKDTree up to this many units, blocked brute force above (a k-d tree degrades to
# worse than brute force in many dimensions: 16 s against 0.5 s at N = 5000, D = 100)


@dataclass(frozen=True)
class BinnedInformation:
    """:func:`binned_information`'s result, in bits: ``i_xt`` = H(T), ``i_ty`` = H(T) - H(T|Y), ``ceiling`` =
    log2 N (the value I(X;T) reaches when every example has its own bin pattern), ``bins`` and ``range``
    (lo, hi) of the binning, ``patterns`` the number of distinct bin patterns seen."""

    i_xt: float
    i_ty: float
    ceiling: float
    bins: int
    range: tuple[float, float]
    patterns: int


@dataclass(frozen=True)
class KDEInformation:
    """:func:`kde_information_bounds`' result, in bits: ``i_xt_upper`` >= I(X; T+Z) >= ``i_xt_lower``; the I(T;Y)
    pair is Saxe et al.'s (the same entropy estimator in both terms: estimates, not guaranteed bounds);
    ``noise_var`` sigma^2; ``ceiling`` = log2 N, which neither I(X;T) value exceeds."""

    i_xt_upper: float
    i_xt_lower: float
    i_ty_upper: float
    i_ty_lower: float
    noise_var: float
    ceiling: float


def as_representation(t: ArrayLike | torch.Tensor, of: str) -> np.ndarray:
    """``t`` as a finite N x D float64 array of at least two rows (a torch tensor is detached, copied to the CPU
    and cast to float64 first: bfloat16 has no numpy type)."""
    if hasattr(t, "detach"):  # torch, without importing it
        t = t.detach().cpu().double().numpy()
    return check_matrix(t, "t", min_rows=2, of=of)


def as_labels(y: ArrayLike | torch.Tensor, n: int, of: str) -> np.ndarray:
    """``y`` as an (n,) int64 array of class labels."""
    if hasattr(y, "detach"):
        y = y.detach().cpu().numpy()
    arr = np.asarray(y)
    if arr.shape != (n,):
        raise ConfigError(must_be("y", f"of shape ({n},), one label per row of t", y, of=of,
                                  shown=f"shape {arr.shape}"))
    if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
        raise ConfigError(must_be("y", "an array of integer class labels (convert with y.astype(int))", y, of=of,
                                  shown=f"dtype {arr.dtype}"))
    return arr.astype(np.int64)


def plugin_entropy(symbols: np.ndarray) -> float:
    """H = -sum_s p(s) log2 p(s) of the empirical frequencies of ``symbols`` (1-D), in bits, written
    log2 n - (1/n) sum_s c_s log2 c_s (exactly log2 n when every symbol differs)."""
    counts = np.unique(symbols, return_counts=True)[1].astype(np.float64)
    n = counts.sum()
    return float(math.log2(n) - (counts * np.log2(counts)).sum() / n)


def conditional_entropy(symbols: np.ndarray, y: np.ndarray, entropy: Callable[[np.ndarray], float]) -> float:
    """H(S|Y) = sum_y p(y) H(S | Y=y), with ``entropy`` the estimator of H applied to each class's rows."""
    classes, counts = np.unique(y, return_counts=True)
    return float(sum(c / len(y) * entropy(symbols[y == label]) for label, c in zip(classes, counts, strict=True)))


def bin_patterns(t: np.ndarray, bins: int, lo: float, hi: float) -> np.ndarray:
    """One integer symbol per row of ``t``: the index of its row of bin indices among the distinct rows.
    Bin b of ``bins`` equal-width bins is [lo + b w, lo + (b+1) w), w = (hi - lo) / bins, the last one closed;
    values outside [lo, hi] fall into the end bins (as np.digitize on fixed edges does)."""
    import torch  # float64 arithmetic as numpy's, on torch's threads

    values = np.ascontiguousarray(t)  # torch takes neither negative strides nor, quietly, a read-only array
    values = torch.from_numpy(values if values.flags.writeable else values.copy())
    scaled = torch.sub(values, lo).mul_(bins / (hi - lo) if hi > lo else 0.0).clamp_(0, bins - 1)
    dtype = torch.uint8 if bins <= 2**8 else torch.int16 if bins <= 2**15 else torch.int64
    index = scaled.to(dtype).numpy()  # clipped first, so truncation toward 0 is the floor
    rows = np.ascontiguousarray(index).view(np.dtype((np.void, index.dtype.itemsize * index.shape[1])))
    return np.unique(rows.ravel(), return_inverse=True)[1].reshape(-1)


def binned_information(t: ArrayLike | torch.Tensor, y: ArrayLike | torch.Tensor, bins: int = DEFAULT_BINS,
                       value_range: tuple[float, float] | None = None) -> BinnedInformation:
    """I(X;T) and I(T;Y) by binning (Shwartz-Ziv and Tishby 2017, Section 3; Saxe et al. 2018, Section 2).

    Each unit of T is cut into ``bins`` equal-width bins over ``value_range`` = (lo, hi), by default the layer's
    own range: the min and max of T over all units and examples. (The original code fixed [-1, 1], the range of
    tanh, which folds every ReLU activation above 1 into the last bin.) An example's row of D bin indices T' is a
    discrete symbol. X is uniform over the N examples and T' a deterministic function of X, so

        I(X;T') = H(T') - H(T'|X) = H(T'),
        I(T';Y) = H(T') - H(T'|Y),   H(T'|Y) = sum_y p(y) H(T' | Y=y),

    with plug-in entropies H = -sum p log2 p of the empirical frequencies. I(X;T') <= log2 N, reached as soon
    as the bins are fine enough to give every example its own pattern: then the value says nothing about the
    network (returned as ``ceiling``). The values depend on ``bins`` and the range (Saxe et al.: binning is
    where the "compression" of saturating tanh layers comes from).
    """
    of = "binned_information"
    t = as_representation(t, of)
    y = as_labels(y, len(t), of)
    bins = check_int(bins, "bins", minimum=2, of=of)
    if value_range is None:
        lo, hi = float(t.min()), float(t.max())
    else:
        try:
            lo, hi = (float(v) for v in value_range)
        except (TypeError, ValueError):
            raise ConfigError(must_be("value_range", "a pair (lo, hi) of numbers", value_range, of=of)) from None
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ConfigError(must_be("value_range", "a pair (lo, hi) of finite numbers with lo < hi", value_range,
                                      of=of))
    symbols = bin_patterns(t, bins, lo, hi)
    h_t = plugin_entropy(symbols)
    return BinnedInformation(i_xt=h_t, i_ty=h_t - conditional_entropy(symbols, y, plugin_entropy),
                             ceiling=math.log2(len(t)), bins=bins, range=(lo, hi), patterns=int(symbols.max()) + 1)


def _excess_entropies(sums: PairwiseSums, y: np.ndarray, scale: float) -> tuple[float, float]:
    """(H_D, H_D(T|Y)) in bits from :func:`pairwise_sums`: -(1/N) sum_i log2 (1/N) sum_j exp(-D_ij / s), and the
    same within each class weighted by p(y) (each a Gaussian mixture's entropy less its components')."""
    n = len(y)
    h = (math.log(n) - sums.all[scale] / n) / LN2
    classes, sizes = np.unique(y, return_counts=True)
    cond = sum(size / n * (math.log(size) - sums.same[scale][y == label].sum() / size) / LN2
               for label, size in zip(classes, sizes, strict=True))
    return h, float(cond)


def mixture_excess_entropy(t: np.ndarray, scale: float) -> float:
    """-(1/N) sum_i log2 (1/N) sum_j exp(-||t_i - t_j||^2 / scale), in bits: Kolchinsky and Tracey's estimate of
    the entropy of the equal-weight mixture of N Gaussians N(t_i, sigma^2 I) less the entropy of one component,
    for the pairwise distance D_ij = ||t_i - t_j||^2 / scale (KL: scale = 2 sigma^2; Bhattacharyya: 8 sigma^2).
    The inner sum by logsumexp, block by block (:func:`pairwise_sums`)."""
    return _excess_entropies(pairwise_sums(t, np.zeros(len(t), dtype=np.int64), [scale]), np.zeros(len(t)), scale)[0]


def kde_information_bounds(t: ArrayLike | torch.Tensor, y: ArrayLike | torch.Tensor,
                           noise_var: float = NOISE_VAR) -> KDEInformation:
    """Bounds on I(X; T+Z), Z ~ N(0, sigma^2 I) with sigma^2 = ``noise_var`` (default 0.1, Saxe et al.'s), and the
    matching I(T+Z; Y) estimates: Kolchinsky and Tracey (2017, "Estimating mixture entropy with pairwise
    distances", Entropy 19, 361) as Saxe et al. (ICLR 2018) used them.

    With X uniform over the N examples, T+Z is the mixture p = (1/N) sum_j p_j of p_j = N(T_j, sigma^2 I).
    Kolchinsky and Tracey bound its entropy by, for a pairwise distance D between components,

        H_D = (1/N) sum_i H(p_i) - (1/N) sum_i ln (1/N) sum_j exp(-D(p_i, p_j)):

    an upper bound with D the Kullback-Leibler divergence, a lower bound with D the Bhattacharyya distance (the
    Chernoff alpha-divergence at alpha = 1/2). For Gaussians with the same covariance sigma^2 I,
    KL(p_i || p_j) = ||T_i - T_j||^2 / (2 sigma^2) and D_B(p_i, p_j) = ||T_i - T_j||^2 / (8 sigma^2). Every
    component has the entropy H(T+Z | X) = (d/2) log2(2 pi e sigma^2), so in I(X; T+Z) = H(T+Z) - H(T+Z | X) it
    cancels:

        I_upper = -(1/N) sum_i log2 (1/N) sum_j exp(-||T_i - T_j||^2 / (2 sigma^2)),
        I_lower = -(1/N) sum_i log2 (1/N) sum_j exp(-||T_i - T_j||^2 / (8 sigma^2)),

    both in [0, log2 N] (log2 N when the points are far apart on the scale of sigma, 0 when they coincide).
    I(T+Z; Y) = H(T+Z) - sum_y p(y) H(T+Z | Y=y), the conditional entropy the same estimator on each class's
    rows, a mixture of N_y components with the same component entropy, which cancels again. As Saxe et al. did,
    the "upper" I(T;Y) uses the KL estimate in both terms and the "lower" the Bhattacharyya one: a difference
    of two upper bounds is no bound, so these two are estimates, not a guaranteed bracket. The values measure
    T + Z, not T: they change with sigma^2 (a larger sigma^2 gives smaller values; for a deterministic network
    I(X;T) itself is infinite or log2 N: Goldfeld et al., ICML 2019). On layers of more than 128 units the squared
    distances are float32 where their rounding moves each term by about 1e-3 of itself at most
    (:mod:`shattering.information.pairwise`; 2e-6 bits off the float64 values in the tests), float64 otherwise.
    """
    of = "kde_information_bounds"
    t = as_representation(t, of)
    y = as_labels(y, len(t), of)
    noise_var = check_float(noise_var, "noise_var", low=0.0, low_open=True, of=of)
    return _kde_result(pairwise_sums(t, y, _kde_scales(noise_var)), y, noise_var)


def _kde_scales(noise_var: float) -> tuple[float, float]:
    """The KL (upper) and Bhattacharyya (lower) scales of D_ij = ||T_i - T_j||^2 / scale: 2 sigma^2, 8 sigma^2."""
    return 2.0 * noise_var, 8.0 * noise_var


def _kde_result(sums: PairwiseSums, y: np.ndarray, noise_var: float) -> KDEInformation:
    out = {}
    for side, scale in zip(("upper", "lower"), _kde_scales(noise_var), strict=True):
        h_t, h_t_given_y = _excess_entropies(sums, y, scale)
        out[f"i_xt_{side}"], out[f"i_ty_{side}"] = h_t, h_t - h_t_given_y
    return KDEInformation(**out, noise_var=noise_var, ceiling=math.log2(len(y)))


def neighbour_counts_tree(t: np.ndarray, y: np.ndarray, k: np.ndarray) -> np.ndarray:
    """m_i of :func:`knn_label_information` by scipy's cKDTree (Euclidean): the distance d_i to the k_i-th
    nearest neighbour within the class, then the number of examples within d_i, i excluded. d_i is enlarged by a
    relative 1e-10 so that rounding between the two searches cannot drop the k-th neighbour itself."""
    radius = np.empty(len(t))
    for label in np.unique(y):
        mask = y == label
        k_c = int(k[mask][0])
        radius[mask] = cKDTree(t[mask]).query(t[mask], k=[k_c + 1])[0][:, 0]  # the nearest is i itself
    return cKDTree(t).query_ball_point(t, radius * (1.0 + 1e-10), return_length=True) - 1


def neighbour_counts_brute(t: np.ndarray, y: np.ndarray, k: np.ndarray) -> np.ndarray:
    """m_i of :func:`knn_label_information` from the squared distances, by :func:`pairwise_sums`: the k_i-th
    smallest within the class (i itself, at 0, the smallest), then the count of entries of the row at or below
    it, less i; both from the same numbers, so the k-th neighbour is counted."""
    return pairwise_sums(t, y, (), k).counts


def knn_label_information(t: ArrayLike | torch.Tensor, y: ArrayLike | torch.Tensor, k: int = DEFAULT_K) -> float:
    """I(T;Y) in bits by nearest neighbours, for continuous T and discrete Y: Ross (2014, "Mutual information
    between discrete and continuous data sets", PLoS ONE 9, e87357), the discrete-label form of Kraskov,
    Stoegbauer and Grassberger's estimator 1 (Phys. Rev. E 69, 066138, 2004):

        I(T;Y) = psi(N) - <psi(N_y)> + psi(k) - <psi(m_i)>   (nats; divided by ln 2),

    psi the digamma function, <.> the mean over examples i, N_y the size of example i's class, d_i the distance
    from T_i to its k-th nearest neighbour within its class, and m_i the number of examples of any class
    (i excluded) within d_i of T_i (the k-th neighbour included). Y is discrete, so the norm is T's alone:
    Euclidean here (Kraskov et al. and Ross use the max-norm; any norm gives the estimator, and the Euclidean
    one lets many units be searched by matrix products). Up to :data:`KDTREE_MAX_UNITS` units the neighbours
    are found with scipy's cKDTree, above it by blocked brute force (:func:`neighbour_counts_brute`). As
    scikit-learn's mutual_info_classif (Ross's estimator) does, a class of N_y <= k examples uses k = N_y - 1
    for its examples, and a class of one example is left out (N then counts the examples kept). The estimate is
    not clipped at 0: where I = 0 it comes out slightly negative about half the time. Its bias grows with the
    number of units (many dimensions need many examples), and duplicated rows (d_i = 0) bias it too: add tiny
    noise to break ties.

    There is no such estimator of I(X;T) here: for a deterministic network T = f(X), I(X;T) is infinite for
    continuous X, and for X uniform over N distinct examples it is H(X) = log2 N whenever f separates them
    (Goldfeld et al., ICML 2019, "Estimating information flow in deep neural networks", Section 2): a constant
    that says nothing about training. Only the noisy I(X; T+Z) of :func:`kde_information_bounds` moves.
    """
    of = "knn_label_information"
    t = as_representation(t, of)
    y = as_labels(y, len(t), of)
    keep, class_size, k_used = _knn_setting(y, check_int(k, "k", minimum=1, of=of), of)
    t, y = t[keep], y[keep]
    count = neighbour_counts_tree if t.shape[1] <= KDTREE_MAX_UNITS else neighbour_counts_brute
    return _knn_bits(class_size, k_used, count(t, y, k_used))


def _knn_setting(y: np.ndarray, k: int, of: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The examples :func:`knn_label_information` keeps (those of classes of two or more), their class sizes and
    the k each uses (k, or N_y - 1 in a class of N_y <= k)."""
    classes, sizes = np.unique(y, return_counts=True)
    keep = np.isin(y, classes[sizes > 1])
    if keep.sum() < 2:
        raise ConfigError(must_be("y", "labels with at least one class of two or more examples", y, of=of,
                                  shown="one example per class"))
    class_size = sizes[np.searchsorted(classes, y[keep])]
    return keep, class_size, np.minimum(k, class_size - 1)


def _knn_bits(class_size: np.ndarray, k_used: np.ndarray, m: np.ndarray) -> float:
    nats = digamma(len(m)) - digamma(class_size).mean() + digamma(k_used).mean() - digamma(m).mean()
    return float(nats / LN2)


def pairwise_information(t: ArrayLike | torch.Tensor, y: ArrayLike | torch.Tensor, noise_var: float = NOISE_VAR,
                         k: int = DEFAULT_K) -> tuple[KDEInformation, float]:
    """:func:`kde_information_bounds` and :func:`knn_label_information` (its neighbours by brute force) of one
    layer from ONE pass over its squared distances (:func:`pairwise_sums`): what the ``information`` probe
    computes at each probed epoch. Where a class has a single example (the kNN estimator leaves it out) the two
    are computed apart."""
    of = "pairwise_information"
    t = as_representation(t, of)
    y = as_labels(y, len(t), of)
    noise_var = check_float(noise_var, "noise_var", low=0.0, low_open=True, of=of)
    keep, class_size, k_used = _knn_setting(y, check_int(k, "k", minimum=1, of=of), of)
    if not keep.all():
        return kde_information_bounds(t, y, noise_var), knn_label_information(t, y, k)
    sums = pairwise_sums(t, y, _kde_scales(noise_var), k_used)
    return _kde_result(sums, y, noise_var), _knn_bits(class_size, k_used, sums.counts)
