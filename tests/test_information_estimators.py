"""Tests for the mutual-information estimators (`shattering.information.estimators`), each against a value worked
out independently of the code: entropies of hand-made discrete maps, the log2 N ceiling, the large-N limits of
the Kolchinsky-Tracey bounds for Gaussian T, the Gaussian channel, and a two-class mixture integrated by quad."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from shattering.errors import ConfigError
from shattering.information import binned_information, kde_information_bounds, knn_label_information, pairwise
from shattering.information.estimators import KDTREE_MAX_UNITS, neighbour_counts_brute, neighbour_counts_tree
from shattering.information.pairwise import FLOAT32_UNITS

# --- binning -----------------------------------------------------------------------------------------------------

I64 = np.arange(64)
EIGHT_VALUES = ((I64 % 8) * 10.0)[:, None]  # 8 values 0, 10, ..., 70, each 8 times; with 8 bins over [0, 70] of
# width 8.75 each value has its own bin


def test_binning_deterministic_map_has_three_bits_about_x_and_one_about_parity():
    out = binned_information(EIGHT_VALUES, (I64 % 8) % 2, bins=8)
    assert out.patterns == 8
    assert out.i_xt == pytest.approx(3.0, abs=1e-12)  # H(T) of 8 equiprobable values
    assert out.i_ty == pytest.approx(1.0, abs=1e-12)  # Y = parity of the value: H(Y) = 1 bit
    assert out.ceiling == pytest.approx(6.0, abs=1e-12) and out.bins == 8 and out.range == (0.0, 70.0)


def test_binning_labels_independent_of_t_give_zero():
    out = binned_information(EIGHT_VALUES, I64 // 32, bins=8)  # each value: 4 examples with Y = 0, 4 with Y = 1
    assert out.i_xt == pytest.approx(3.0, abs=1e-12)
    assert out.i_ty == pytest.approx(0.0, abs=1e-12)


def test_binning_saturates_at_log2_n_when_every_example_has_its_own_pattern():
    t = np.random.default_rng(0).standard_normal((100, 5))
    out = binned_information(t, np.arange(100) % 10, bins=1000)
    assert out.patterns == 100
    assert out.i_xt == pytest.approx(math.log2(100), abs=1e-12)
    assert out.ceiling == pytest.approx(math.log2(100), abs=1e-12)
    assert out.i_ty == pytest.approx(math.log2(10), abs=1e-12)  # H(T|Y) = log2 10: 10 distinct rows per class


def test_binning_range_is_the_layers_own_so_relu_activations_above_one_are_not_clipped():
    t = np.repeat([0.5, 1.5, 2.5, 3.5, 4.5], 20)[:, None]  # ReLU-like, in [0, 5]
    y = np.zeros(100, dtype=int)
    own = binned_information(t, y, bins=5)  # bins of width 0.8 over [0.5, 4.5]: one value each
    assert own.range == (0.5, 4.5) and own.patterns == 5
    assert own.i_xt == pytest.approx(math.log2(5), abs=1e-12)
    fixed = binned_information(t, y, bins=5, value_range=(-1, 1))  # 0.5 in bin 3, all the rest folded into bin 4
    assert fixed.patterns == 2
    assert fixed.i_xt == pytest.approx(-(0.2 * math.log2(0.2) + 0.8 * math.log2(0.8)), abs=1e-12)


def test_binning_many_units_gives_the_patterns_of_whole_rows():
    t = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]] * 4)  # 4 patterns, no unit alone separates them
    out = binned_information(t, np.array([0, 0, 1, 1] * 4), bins=2)
    assert out.patterns == 4 and out.i_xt == pytest.approx(2.0, abs=1e-12) and out.i_ty == pytest.approx(1.0)


# --- Kolchinsky-Tracey bounds ------------------------------------------------------------------------------------

def test_kde_bounds_of_a_single_point_are_zero():
    out = kde_information_bounds(np.full((50, 3), 0.7), np.arange(50) % 2)
    assert (out.i_xt_upper, out.i_xt_lower, out.i_ty_upper, out.i_ty_lower) == pytest.approx((0, 0, 0, 0), abs=1e-12)
    assert out.noise_var == 0.1


def test_kde_bounds_of_far_apart_points_reach_log2_n():
    n = 40
    t = np.arange(n, dtype=float)[:, None] * 100.0  # distances >= 100 >> sigma = 0.32
    out = kde_information_bounds(t, np.arange(n) % 4)
    assert out.i_xt_upper == pytest.approx(math.log2(n), abs=1e-9)
    assert out.i_xt_lower == pytest.approx(math.log2(n), abs=1e-9)
    assert out.ceiling == pytest.approx(math.log2(n))
    # H(T+Z|Y) = log2 10 within each of 4 classes of 10 points: I(T;Y) = log2 40 - log2 10 = 2 bits
    assert out.i_ty_upper == pytest.approx(2.0, abs=1e-9) and out.i_ty_lower == pytest.approx(2.0, abs=1e-9)


def test_kde_lower_bound_never_exceeds_upper_and_both_lie_in_0_log2_n():
    rng = np.random.default_rng(1)
    for n, d, scale, var in ((30, 1, 0.1, 0.1), (200, 5, 1.0, 0.1), (150, 20, 0.3, 0.01), (80, 3, 10.0, 2.0)):
        out = kde_information_bounds(scale * rng.standard_normal((n, d)), rng.integers(0, 3, n), noise_var=var)
        assert 0.0 <= out.i_xt_lower <= out.i_xt_upper <= math.log2(n) + 1e-12


def test_kde_bounds_approach_their_large_n_limits_for_gaussian_t():
    # T ~ N(0, s^2), one unit. For t_j ~ N(0, s^2), E_j exp(-(t - t_j)^2 / c) = sqrt(c / (c + 2 s^2))
    # exp(-t^2 / (c + 2 s^2)), so -E_t ln E_j(...) = 0.5 ln((c + 2 s^2) / c) + s^2 / (c + 2 s^2), with
    # c = 2 sigma^2 (upper) and 8 sigma^2 (lower). With N = 2000 the sample's value is within ~0.02 bits.
    s2, var, n = 1.0, 0.1, 2000
    t = np.random.default_rng(0).standard_normal((n, 1)) * math.sqrt(s2)
    out = kde_information_bounds(t, np.arange(n) % 2, noise_var=var)

    def limit(c):
        return (0.5 * math.log((c + 2 * s2) / c) + s2 / (c + 2 * s2)) / math.log(2)

    assert out.i_xt_upper == pytest.approx(limit(2 * var), abs=0.05)  # 2.386 bits
    assert out.i_xt_lower == pytest.approx(limit(8 * var), abs=0.05)  # 1.419 bits
    # the Gaussian channel: I(T; T+Z) = 0.5 log2(1 + s^2 / sigma^2) = 1.730 bits, which the mixture's I(X; T+Z)
    # approaches for large N, lies inside the bracket (by 0.31 and 0.66 bits: no tolerance needed)
    channel = 0.5 * math.log2(1 + s2 / var)
    assert out.i_xt_lower < channel < out.i_xt_upper


# --- nearest neighbours ------------------------------------------------------------------------------------------

def test_knn_random_labels_give_about_zero():
    rng = np.random.default_rng(0)  # 10 random classes; over 30 seeds: mean 0.000, sd 0.012, max |I| 0.024 bits
    assert abs(knn_label_information(rng.standard_normal((5000, 3)), rng.integers(0, 10, 5000))) < 0.05


def test_knn_separated_classes_give_the_entropy_of_the_labels():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 500)
    t = y[:, None] + 1e-3 * rng.standard_normal((2000, 1))
    assert knn_label_information(t, y) == pytest.approx(2.0, abs=0.1)  # H(Y) of 4 equiprobable classes


def test_knn_agrees_with_a_two_class_gaussian_mixture_integrated_numerically():
    # Y uniform on {0, 1}, T | Y ~ N(+-1, 1): I(T;Y) = h(T) - h(T|Y) = h(mixture) - 0.5 ln(2 pi e)
    def density(x):
        return 0.5 * (math.exp(-0.5 * (x + 1.0) ** 2) + math.exp(-0.5 * (x - 1.0) ** 2)) / math.sqrt(2 * math.pi)

    h_t = integrate.quad(lambda x: -density(x) * math.log(density(x)), -15, 15)[0]
    exact = (h_t - 0.5 * math.log(2 * math.pi * math.e)) / math.log(2)  # 0.486 bits
    rng = np.random.default_rng(0)  # N = 5000, k = 3: over 40 seeds bias 0.001, sd 0.013 bits
    y = rng.integers(0, 2, 5000)
    t = (2.0 * y - 1.0) + rng.standard_normal(5000)
    assert knn_label_information(t[:, None], y) == pytest.approx(exact, abs=0.05)


def test_knn_in_many_units_separated_classes_give_the_entropy_of_the_labels():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 500)
    t = np.eye(20)[y] + 1e-3 * rng.standard_normal((2000, 20))  # 20 units: the brute-force search
    assert t.shape[1] > KDTREE_MAX_UNITS
    assert knn_label_information(t, y) == pytest.approx(2.0, abs=0.1)


def test_knn_tree_and_brute_force_count_the_same_neighbours():
    rng = np.random.default_rng(0)
    t, y = rng.standard_normal((3000, 3)), rng.integers(0, 5, 3000)
    k = np.full(3000, 3)
    np.testing.assert_array_equal(neighbour_counts_tree(t, y, k), neighbour_counts_brute(t, y, k))


def test_knn_leaves_out_a_class_of_one_example():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(2), 300)
    t = y[:, None] * 10.0 + rng.standard_normal((600, 1))
    with_single = np.concatenate([y, [7]]), np.vstack([t, [[5.0]]])
    assert knn_label_information(with_single[1], with_single[0]) == knn_label_information(t, y)


# --- inputs ------------------------------------------------------------------------------------------------------

class _TensorLike:
    """What the estimators read of a torch tensor: detach().cpu().double().numpy() (labels: without double())."""

    def __init__(self, array):
        self.array = array

    def detach(self):
        return self

    def cpu(self):
        return self

    def double(self):
        return _TensorLike(self.array.astype(np.float64))

    def numpy(self):
        return self.array


def test_tensors_are_read_as_float64_arrays():
    t = EIGHT_VALUES.astype(np.float32)
    out = binned_information(_TensorLike(t), _TensorLike(I64 % 2), bins=8)
    assert out == binned_information(EIGHT_VALUES, I64 % 2, bins=8)


T = np.random.default_rng(0).standard_normal((10, 2))
Y = np.arange(10) % 2
ESTIMATORS = (binned_information, kde_information_bounds, knn_label_information)


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("t, y, named", [
    (T, Y[:9], "'y'"),  # lengths differ
    (T, Y.astype(float), "'y'"),  # labels not integers
    (np.where(np.eye(10, 2) > 0, np.nan, T), Y, "'t'"),  # NaN
    (T[:1], Y[:1], "'t'"),  # fewer than 2 examples
    (T[:, 0], Y, "'t'"),  # 1-D
])
def test_bad_inputs_are_refused_naming_the_argument(estimator, t, y, named):
    with pytest.raises(ConfigError, match=named):
        estimator(t, y)


@pytest.mark.parametrize("call, named", [
    (lambda: binned_information(T, Y, bins=1), "'bins' parameter of binned_information must be an integer of at "
                                               "least 2"),
    (lambda: binned_information(T, Y, value_range=(1, 1)), "'value_range'"),
    (lambda: binned_information(T, Y, value_range=(0, math.inf)), "'value_range'"),
    (lambda: kde_information_bounds(T, Y, noise_var=0.0), "'noise_var'"),
    (lambda: kde_information_bounds(T, Y, noise_var=-1.0), "'noise_var'"),
    (lambda: knn_label_information(T, Y, k=0), "'k'"),
    (lambda: knn_label_information(T, np.arange(10)), "'y'"),  # every class a single example
])
def test_bad_settings_are_refused_naming_the_argument(call, named):
    with pytest.raises(ConfigError, match=named):
        call()


@pytest.mark.parametrize("units", [5, 30])
def test_pairwise_information_equals_the_estimators_apart(units):
    """The probe's one pass over the distances gives what the two estimators give apart (the k-d tree's counts
    at few units, brute force above), and a class of one example falls back to them."""
    from shattering.information import pairwise_information

    rng = np.random.default_rng(units)
    t = rng.normal(size=(300, units))
    y = rng.integers(0, 4, 300)
    kde, knn = pairwise_information(t, y, noise_var=0.2, k=3)
    apart = kde_information_bounds(t, y, noise_var=0.2)
    for field in ("i_xt_upper", "i_xt_lower", "i_ty_upper", "i_ty_lower"):
        assert getattr(kde, field) == pytest.approx(getattr(apart, field), rel=1e-12, abs=1e-12)
    assert knn == pytest.approx(knn_label_information(t, y, k=3), rel=1e-12, abs=1e-12)
    y[0] = 9  # a class of one example
    kde, knn = pairwise_information(t, y, noise_var=0.2, k=3)
    assert knn == pytest.approx(knn_label_information(t, y, k=3)) and kde.i_ty_upper == pytest.approx(
        kde_information_bounds(t, y, noise_var=0.2).i_ty_upper)


# --- the probe's one pass against direct evaluations --------------------------------------------------------------

def _direct_kde(t, y, noise_var):
    """The Kolchinsky-Tracey values straight from their formulas: exact float64 distances by differences,
    scipy's logsumexp, no blocks, no float32."""
    from scipy.special import logsumexp

    sq = ((t[:, None, :] - t[None, :, :]) ** 2).sum(axis=2)

    def excess(rows, scale):
        d = sq[np.ix_(rows, rows)]
        return -(logsumexp(-d / scale, axis=1) - math.log(len(rows))).mean() / math.log(2)

    out = {}
    everyone = np.arange(len(t))
    for side, scale in (("upper", 2 * noise_var), ("lower", 8 * noise_var)):
        h = excess(everyone, scale)
        cond = sum((y == c).mean() * excess(np.flatnonzero(y == c), scale) for c in np.unique(y))
        out[f"i_xt_{side}"], out[f"i_ty_{side}"] = h, h - cond
    return out


@pytest.mark.parametrize(("units", "spread", "dtype"), [(12, 1.0, "float64"), (300, 0.15, "float32"),
                                                     (300, 3.0, "float64")])
def test_kde_bounds_equal_the_formulas_evaluated_directly(units, spread, dtype):
    """float64 distances on few units; float32 on many where their rounding is small beside the noise scale
    (centred rows), float64 again where the layer's spread would make it coarse."""
    import torch

    rng = np.random.default_rng(units)
    y = rng.integers(0, 4, 240)
    # clusters far from the origin (a common offset the product form must not amplify), the bounds well inside
    # (0, log2 N)
    t = 50.0 + spread * rng.normal(size=(4, units))[y] + rng.normal(size=(240, units)) * (0.6 / math.sqrt(units))
    first_block = next(pairwise.squared_distance_blocks(t, pairwise.FLOAT32_TERM_ERROR * 0.2))[1]
    assert first_block.dtype == getattr(torch, dtype)
    got = kde_information_bounds(t, y, noise_var=0.1)
    direct = _direct_kde(t, y, 0.1)
    assert 0.5 < got.i_xt_lower < got.i_xt_upper < math.log2(240) - 0.5
    for field, value in direct.items():
        assert getattr(got, field) == pytest.approx(value, abs=1e-5)


def test_kde_bounds_of_huge_activations_are_not_nan():
    """Norms beyond float32's range (a diverged network) keep float64: far-apart points, log2 N."""
    rng = np.random.default_rng(0)
    out = kde_information_bounds(1e19 * rng.normal(size=(100, 200)), rng.integers(0, 2, 100))
    assert out.i_xt_upper == pytest.approx(math.log2(100), abs=1e-9)
    assert out.i_xt_lower == pytest.approx(math.log2(100), abs=1e-9)


def test_knn_counts_in_many_units_far_from_the_origin_equal_the_trees():
    """Past FLOAT32_UNITS units the counts still come from float64 distances of the rows as given: on integer
    points far from the origin every squared distance is an exact integer and many tie at the radius, which
    float32 (or centring) would break."""
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 400)
    k = np.full(400, 3)
    t = 1000.0 + rng.integers(0, 4, size=(400, FLOAT32_UNITS + 72)).astype(float)
    np.testing.assert_array_equal(neighbour_counts_brute(t, y, k), neighbour_counts_tree(t, y, k))
    t = 20.0 + y[:, None] + rng.normal(size=(400, FLOAT32_UNITS + 72))
    np.testing.assert_array_equal(neighbour_counts_brute(t, y, k), neighbour_counts_tree(t, y, k))


def test_row_blocks_that_cut_through_classes_give_the_same_values(monkeypatch):
    from shattering.information import pairwise

    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 300)
    t = y[:, None] + rng.normal(size=(300, 6))
    k = np.full(300, 3)
    whole = kde_information_bounds(t, y, noise_var=0.1), neighbour_counts_brute(t, y, k)
    monkeypatch.setattr(pairwise, "ROW_BLOCK", 37)  # blocks of 37 rows: most start inside a class
    cut = kde_information_bounds(t, y, noise_var=0.1), neighbour_counts_brute(t, y, k)
    assert cut[0] == pytest.approx(whole[0], abs=1e-9)
    np.testing.assert_array_equal(cut[1], whole[1])
    np.testing.assert_array_equal(cut[1], neighbour_counts_tree(t, y, k))


def test_binning_past_256_bins_keeps_every_bin_apart():
    t, y = np.arange(600.0)[:, None], np.arange(600) % 2  # 600 values, one per example
    assert binned_information(t, y, bins=300).i_xt == pytest.approx(math.log2(300), abs=1e-12)  # two per bin
    assert binned_information(t, y, bins=40_000).i_xt == pytest.approx(math.log2(600), abs=1e-12)
    read_only, reversed_units = t.copy(), np.hstack([t, t])[:, ::-1]  # arrays torch cannot take as they are
    read_only.flags.writeable = False
    assert binned_information(read_only, y, bins=300).i_xt == pytest.approx(math.log2(300), abs=1e-12)
    assert binned_information(reversed_units, y, bins=300).i_xt == pytest.approx(math.log2(300), abs=1e-12)
