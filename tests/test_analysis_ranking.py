"""shattering.analysis: Kendall's taus, Jiang et al.'s granulated tau and conditional mutual information, and
Dziugaite et al.'s worst case, on hand-built grids of runs whose answers are known, and against direct
computations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from shattering.analysis import (
    conditional_mutual_information,
    granulated_kendall,
    kendall_tau_a,
    kendall_tau_b,
    worst_sign_error,
)
from shattering.errors import ConfigError

AXES = ("model", "optimizer", "batch")


def grid(seed: int = 0, seeds: int = 2) -> pd.DataFrame:
    """3 models x 2 optimizers x 3 batch sizes x seeds; the gap a sum of the axes' effects and noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for (m, model), (o, opt), (b, batch), s in itertools.product(enumerate(("mlp", "alexnet", "inception")),
                                                                 enumerate(("sgd", "adam")),
                                                                 enumerate((32, 128, 512)), range(seeds)):
        rows.append({"model": model, "optimizer": opt, "batch": batch, "seed": s,
                     "model_effect": 0.1 * m, "batch_effect": 0.05 * b,
                     "gap": 0.1 * m + 0.03 * o + 0.05 * b + 0.001 * rng.standard_normal()})
    frame = pd.DataFrame(rows)
    frame["exact"] = frame["gap"]
    frame["reversed"] = -frame["gap"]
    frame["random"] = np.random.default_rng(seed + 1).standard_normal(len(frame))
    frame["constant"] = 1.0
    return frame


def test_tau_a_by_hand_and_tau_b_against_scipy():
    assert kendall_tau_a([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / 3)  # the tie adds 0, counts in the denominator
    assert kendall_tau_a([1, 2, 3], [3, 2, 1]) == -1.0 and kendall_tau_a([1.0], [2.0]) is None
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 5, 40).astype(float), rng.integers(0, 5, 40).astype(float)
    assert kendall_tau_b(list(x), list(y)) == pytest.approx(stats.kendalltau(x, y).statistic)
    direct = np.mean([np.sign(x[i] - x[j]) * np.sign(y[i] - y[j]) for i, j in itertools.combinations(range(40), 2)])
    assert kendall_tau_a(list(x), list(y)) == pytest.approx(direct)
    assert kendall_tau_a([1.0, float("nan"), 2.0], [1.0, 5.0, 2.0]) == 1.0  # a value that is not a number: left out


def test_a_measure_equal_to_the_gap_scores_one_on_every_axis_and_its_reverse_minus_one():
    frame = grid()
    exact = granulated_kendall(frame, "exact", "gap", AXES)
    assert exact.per_axis == pytest.approx({a: 1.0 for a in AXES}) and exact.mean == pytest.approx(1.0)
    assert exact.cells == {"model": 6, "optimizer": 9, "batch": 6}  # the other axes' values
    assert granulated_kendall(frame, "reversed", "gap", AXES).mean == pytest.approx(-1.0)
    assert conditional_mutual_information(frame, "exact", "gap", AXES).score == pytest.approx(1.0)
    assert conditional_mutual_information(frame, "reversed", "gap", AXES).score == pytest.approx(1.0)  # information
    assert worst_sign_error(frame, "exact", "gap", AXES).worst == 0.0
    assert worst_sign_error(frame, "reversed", "gap", AXES).worst == 1.0


def test_an_independent_measure_scores_about_zero_and_a_constant_exactly_zero():
    frame = pd.concat([grid(seed=s, seeds=4) for s in range(3)], ignore_index=True)
    random = granulated_kendall(frame, "random", "gap", AXES)
    assert abs(random.mean) < 0.1
    assert conditional_mutual_information(frame, "random", "gap", AXES).score < 0.02
    assert conditional_mutual_information(frame, "constant", "gap", AXES).score == pytest.approx(0.0, abs=1e-12)
    assert granulated_kendall(frame, "constant", "gap", AXES).mean == 0.0
    assert worst_sign_error(frame, "constant", "gap", AXES).worst == 0.5  # every pair a tie: one half


def test_a_measure_that_sees_one_axis_only():
    """The gap grows with the model and the batch; a measure equal to the model's effect orders every two runs of
    different models rightly, says nothing within a model (ties: tau 0) and, given the two runs' models, nothing at
    all: its conditional mutual information is 0, while the unconditional one is not."""
    frame = grid()
    tau = granulated_kendall(frame, "model_effect", "gap", AXES)
    # a model cell: 3 models x 2 seeds, 15 pairs; the 3 pairs of one model's two seeds are ties and add 0
    assert tau.per_axis["model"] == pytest.approx(12 / 15) and tau.per_axis["batch"] == 0.0
    cmi = conditional_mutual_information(frame, "model_effect", "gap", AXES)
    assert cmi.by_set[()] > 0.2 and cmi.score == pytest.approx(0.0, abs=1e-12) and "model" in cmi.argmin
    worst = worst_sign_error(frame, "model_effect", "gap", AXES)
    assert worst.worst == 0.5 and worst.where[0] in ("optimizer", "batch")


def test_conditional_information_weighs_cells_by_their_pairs():
    """Against a direct computation on a tiny table: S = {a}; the cells of U_S hold different numbers of pairs,
    so a uniform weighting (the competition script's) would give another number."""
    frame = pd.DataFrame({"a": [0, 0, 0, 1, 1], "gap": [1.0, 2.0, 3.0, 1.0, 2.0], "mu": [1.0, 3.0, 2.0, 2.0, 1.0]})
    got = conditional_mutual_information(frame, "mu", "gap", ["a"], max_set=1).by_set[("a",)]
    pairs = [(i, j) for i in range(5) for j in range(5) if i != j and frame.gap[i] != frame.gap[j]]  # no gap tie
    cells: dict = {}
    for i, j in pairs:
        cells.setdefault((frame.a[i], frame.a[j]), []).append((np.sign(frame.mu[i] - frame.mu[j]),
                                                               np.sign(frame.gap[i] - frame.gap[j])))

    def h(values):
        _, counts = np.unique(values, return_counts=True, axis=0)
        p = counts / counts.sum()
        return -(p * np.log2(p)).sum()

    info = sum(len(v) / len(pairs) * (h([m for m, _ in v]) + h([g for _, g in v]) - h(v)) for v in cells.values())
    entropy = sum(len(v) / len(pairs) * h([g for _, g in v]) for v in cells.values())
    assert got == pytest.approx(info / entropy)
    assert not math.isclose(got, np.mean([(h([m for m, _ in v]) + h([g for _, g in v]) - h(v)) for v in
                                          cells.values()]) / entropy)


def test_bad_tables_are_refused_in_one_sentence():
    frame = grid()
    with pytest.raises(ConfigError, match="no column 'sharpness'"):
        granulated_kendall(frame, "sharpness", "gap", AXES)
    with pytest.raises(ConfigError, match="at least one hyper-parameter axis"):
        conditional_mutual_information(frame, "exact", "gap", [])
    with pytest.raises(ValueError, match="as many x as y"):
        kendall_tau_a([1, 2], [1])


def test_factor_effects_against_the_balanced_decomposition():
    from shattering.analysis import factor_effects

    frame = grid(seeds=3)
    frame["dataset"] = "fashion-mnist"  # one level: dropped, and said
    effects = factor_effects(frame, "gap", [*AXES, "dataset"])
    table = effects.table
    grand = frame["gap"].mean()
    for factor in AXES:  # a balanced grid: Type II's sum of squares is sum_level n (mean_level - grand mean)^2
        means = frame.groupby(factor)["gap"].agg(["mean", "size"])
        assert table.loc[factor, "sum_sq"] == pytest.approx(((means["mean"] - grand) ** 2 * means["size"]).sum())
    assert table.loc["model", "partial_eta_sq"] > 0.99 and table.loc["batch", "partial_eta_sq"] > 0.99
    assert effects.largest() == "model" and effects.dropped == ("dataset",) and effects.interactions
    assert table.loc["model:optimizer", "partial_eta_sq"] < 0.2  # the gap is additive: no interaction
    frame["noise"] = np.random.default_rng(5).standard_normal(len(frame)) > 0  # a factor with no effect
    assert factor_effects(frame, "gap", ["noise", "model"]).table.loc["noise", "partial_eta_sq"] < 0.05
    with pytest.raises(ConfigError, match="no factor takes two values"):
        factor_effects(frame, "gap", ["dataset"])
