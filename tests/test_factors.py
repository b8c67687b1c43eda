"""Tests for the factorial study (`shattering/experiments/factors.py`, its claims and its artefact): on a grid
whose effects are known by construction the claims find them (the input drives the gap, weight decay does
nothing, the large batch widens the gap, the optimizer moves the test error, a measure equal to the gap ranks it on
every axis while a random one scores about zero), on a grid with none of them they do not, and the artefact runs
end to end at smoke scale."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from shattering.config import RunConfig
from shattering.experiments.claims import RunFacts
from shattering.experiments.claims.factors import (
    FACTORS_CLAIMS,
    large_batch_gap,
    measure_ranks_every_axis,
    optimizer_changes_test_error,
    randomization_drives_gap,
    regularization_not_it,
)
from shattering.experiments.factors import effects, measure_ranking, run_table, varied_axes
from shattering.experiments.presets import PRESETS

GRID = dict(model=("mlp-1x512", "mlp-3x512"), optimizer=("sgd", "adam"), batch_size=(32, 128),
            corruption=("true-labels", "random-labels", "gaussian"), weight_decay=(0.0, 5e-4), seed=(0, 1))


def grid_facts(effects_on: bool, seed: int = 0) -> list[RunFacts]:
    """Every run of :data:`GRID` with a made-up test accuracy: with ``effects_on`` the input sets it (90% true,
    10% otherwise), the large batch costs 5 points on the true data, Adam 3 points everywhere, weight decay and
    the architecture nothing, plus noise; without, the seed alone moves it (+-1 point), so every axis's effect is
    zero. Measures: ``exact_gap`` (the gap itself) and ``noise`` (independent of everything)."""
    rng = np.random.default_rng(seed)
    facts = []
    for values in itertools.product(*GRID.values()):
        cfg = RunConfig(dataset="digits", **dict(zip(GRID, values, strict=True)))
        test = 0.5 + (0.01 if cfg.seed else -0.01)  # the same at every level of every axis: no effect at all
        if effects_on:
            test = (0.9 if cfg.corruption == "true-labels" else 0.1) + rng.normal(0, 0.005)
            test -= 0.05 * (cfg.batch_size == 128 and cfg.corruption == "true-labels")
            test -= 0.03 * (cfg.optimizer == "adam")
        summary = {"status": "fit", "final": {"train_acc": 1.0, "test_acc": test, "train_loss": 0.01,
                                              "test_loss": 2.0 - test},
                   "measures": {"exact_gap": 1.0 - test, "noise": float(rng.normal())}}
        facts.append(RunFacts(cfg, summary))
    return facts


def test_the_claims_find_effects_built_into_the_grid():
    facts = grid_facts(effects_on=True)
    rows = run_table(facts)
    assert len(rows) == 96 and set(varied_axes(rows)) == {"architecture", "optimizer", "batch", "data",
                                                          "regularization"}
    assert randomization_drives_gap(facts).verdict == "holds"
    reg = regularization_not_it(facts)
    assert reg.verdict == "holds" and reg.numbers["regularization"]["eta"] < 0.06  # no effect: eta about 0
    assert large_batch_gap(facts).verdict == "holds"
    assert optimizer_changes_test_error(facts).verdict == "holds"
    every = measure_ranks_every_axis(facts)
    assert every.verdict == "holds" and every.numbers["measures"] == ["exact_gap"]
    ranking = {m["measure"]: m for m in measure_ranking(rows)}
    assert ranking["exact_gap"]["tau"] == pytest.approx(1.0)
    assert all(v == pytest.approx(1.0) for v in ranking["exact_gap"]["psi"].values())
    assert ranking["exact_gap"]["worst_sign_error"] == 0.0
    assert abs(ranking["noise"]["Psi"]) < 0.3 and abs(ranking["noise"]["tau"]) < 0.2  # independent: about 0


def test_a_grid_without_effects_holds_none_of_them():
    facts = grid_facts(effects_on=False)
    for claim in (large_batch_gap, optimizer_changes_test_error, randomization_drives_gap):
        assert claim(facts).verdict == "does not hold at this scale", claim.__name__
    table = effects(run_table(facts), "test_error").table.drop(index="Residual")
    assert table["partial_eta_sq"].abs().max() < 1e-6  # no factor moves it: every effect size about 0
    no_measure = [RunFacts(f.config, {**f.summary, "measures": {"noise": f.summary["measures"]["noise"]}})
                  for f in facts]
    verdict = measure_ranks_every_axis(no_measure)
    assert verdict.verdict == "does not hold at this scale" and "none of 1 measures" in verdict.text


def test_a_grid_that_does_not_vary_a_factor_says_so():
    facts = [f for f in grid_facts(effects_on=True) if f.config.weight_decay == 0 and f.config.optimizer == "sgd"]
    assert regularization_not_it(facts).verdict.startswith("not measured")
    assert optimizer_changes_test_error(facts).verdict.startswith("not measured")
    unfinished = [RunFacts(f.config, None) for f in facts]
    assert all(c.measure(unfinished).verdict.startswith("not measured") for c in FACTORS_CLAIMS)
    assert effects(run_table(unfinished), "gap") is None


def test_the_quick_grid_is_the_full_crossing_and_reuses_fig1bcs_runs():
    quick = PRESETS["factors"].configs("quick")
    assert len(quick) == 2 * 2 * 2 * 6 * 2 * 2 == len({c.run_id() for c in quick})
    fig1bc = {c.run_id() for c in PRESETS["fig1bc"].configs("quick")}
    shared = [c for c in quick if c.run_id() in fig1bc]
    # the MLP 1x512 with SGD, batch 128, no weight decay, seed 0: true labels, p = 0.4 and random labels
    assert len(shared) == 3 and {c.model for c in shared} == {"mlp-1x512"}
    assert {c.corruption for c in shared} == {"true-labels", "partial-labels", "random-labels"}


def test_the_artefact_end_to_end_at_smoke_scale(tmp_path):
    from shattering.cli import main

    assert main(["reproduce", "factors", "--scale", "smoke", "--out", str(tmp_path), "--quiet"]) == 0
    folder = tmp_path / "artefacts" / "factors"
    side = json.loads((folder / "factors.json").read_text())
    assert len(side["runs"]) == len(PRESETS["factors"].configs("smoke")) == 8
    assert side["anova"]["gap"][0]["term"] in ("optimizer", "batch", "data", "optimizer:batch", "optimizer:data",
                                               "batch:data")
    assert {m["measure"] for m in side["measures"]} >= {"l2_norm"}
    md = (folder / "factors.md").read_text()
    assert "## What drives the test error" in md and "## How each measure ranks the gap" in md
    assert all(r["run_id"] in md for r in side["runs"])
    assert (folder / "factors.png").read_bytes().startswith(b"\x89PNG")
