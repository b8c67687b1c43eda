"""Tests for the `sharpness` artefact (`shatter reproduce sharpness`): its claims on hand-built runs (pairs that
differ in one thing, runs away from a minimum left out), the distance between two solutions against the
networks' weights read directly, a run finished before under another `measures` setting measured as the preset
asks, and the artefact end to end at smoke scale."""

from __future__ import annotations

import csv
import json

import pytest
import torch

import shattering
from shattering.config import RunConfig
from shattering.errors import RecordError
from shattering.experiments.claims import HOLDS, NOT_AT_SCALE, NOT_MEASURED, RunFacts
from shattering.experiments.claims.sharpness import (
    large_batch_generalizes_worse,
    large_batch_sharper,
    random_labels_sharper,
)
from shattering.experiments.presets import PRESETS
from shattering.report.reproduce import reproduce
from shattering.runs import load_model, solution_distance

FAST = {"dataset": "digits", "train_size": 150, "test_size": 50, "epochs": 2, "until": "epochs", "precision": "fp32",
        "device": "cpu", "measures": "default"}


def facts(batch: int, sharpness: float | None, *, optimizer: str = "sgd", labels: str = "true-labels",
          train: float = 1.0, test: float = 0.8, lambda_max: float | None = None) -> RunFacts:
    cfg = RunConfig(dataset="digits", model="mlp-1x512", batch_size=batch, optimizer=optimizer, corruption=labels)
    return RunFacts(cfg, {"status": "fit", "final": {"train_acc": train, "test_acc": test},
                          "measures": {"keskar_sharpness": sharpness, "hessian_lambda_max": lambda_max}})


def test_large_batch_sharper_pairs_batch_sizes_and_states_its_threshold():
    held = large_batch_sharper([facts(32, 2.0), facts(200, 5.0), facts(32, 1.0, optimizer="adam"),
                                facts(200, 3.0, optimizer="adam")])
    assert held.verdict == HOLDS and "2 of 2 pairs" in held.text and "1.2x" in held.text
    failed = large_batch_sharper([facts(32, 2.0), facts(200, 2.1)])
    assert failed.verdict == NOT_AT_SCALE and "1.05x" in failed.text
    away = large_batch_sharper([facts(32, 2.0, train=0.7), facts(200, 5.0)])  # not at a minimum: left out
    assert away.verdict == NOT_MEASURED and "70.0%" in away.text
    assert large_batch_sharper([facts(32, None), facts(200, None)]).verdict == NOT_MEASURED


def test_the_generalization_gap_compares_only_runs_at_the_same_training_accuracy():
    worse = large_batch_generalizes_worse([facts(32, 1, test=0.85), facts(200, 1, test=0.82)])
    assert worse.verdict == HOLDS and "+3.00 points" in worse.text
    same = large_batch_generalizes_worse([facts(32, 1, test=0.85), facts(200, 1, test=0.848)])
    assert same.verdict == NOT_AT_SCALE  # 0.2 points: under the stated 0.5
    unequal = large_batch_generalizes_worse([facts(32, 1, test=0.85), facts(200, 1, train=0.9, test=0.7)])
    assert unequal.verdict == NOT_MEASURED and "90.0%" in unequal.text


def test_random_labels_sharper_needs_both_sharpness_and_curvature_where_measured():
    pair = [facts(32, 1.0, lambda_max=10.0), facts(32, 3.0, labels="random-labels", lambda_max=30.0)]
    assert random_labels_sharper(pair).verdict == HOLDS
    flat_curvature = [facts(32, 1.0, lambda_max=10.0), facts(32, 3.0, labels="random-labels", lambda_max=9.0)]
    assert random_labels_sharper(flat_curvature).verdict == NOT_AT_SCALE


def test_solution_distance_against_the_weights_read_directly(tmp_path):
    sgd = shattering.run(**FAST, out=str(tmp_path))
    adam = shattering.run(**FAST, optimizer="adam", out=str(tmp_path))
    got = solution_distance(sgd.run_dir, adam.run_dir)
    a, b = (torch.nn.utils.parameters_to_vector(load_model(r.run_dir).parameters()).detach().double()
            for r in (sgd, adam))
    assert got["distance"] == pytest.approx(float((a - b).norm()), rel=1e-9) and got["same_init"]
    assert got["travel_a"] == pytest.approx(sgd.summary["measures"]["distance_from_init"], rel=1e-5)
    assert got["travel_b"] == pytest.approx(adam.summary["measures"]["distance_from_init"], rel=1e-5)
    other = shattering.run(**{**FAST, "model": "mlp-3x512"}, out=str(tmp_path))
    with pytest.raises(RecordError, match="different shapes"):
        solution_distance(sgd.run_dir, other.run_dir)


def test_the_sharpness_artefact_end_to_end_at_smoke_scale(tmp_path):
    preset = PRESETS["sharpness"]
    before = preset.configs("smoke", out=str(tmp_path))[0].replace(measures="default")
    shattering.run(before)  # finished before without the sharpness measures: reproduce measures them
    result = reproduce("sharpness", "smoke", out=str(tmp_path), progress=False)
    assert not result["render_errors"]
    folder = tmp_path / "artefacts" / "sharpness"
    for name in ("sharpness.png", "sharpness.svg", "sharpness.pdf", "sharpness.md", "hessian-density.png",
                 "sharpness.csv", "sharpness.json"):
        assert (folder / name).stat().st_size > 0, name
    side = json.loads((folder / "sharpness.json").read_text())
    assert [c["id"] for c in side["claims"]] == [c.id for c in preset.claims]
    rows = list(csv.DictReader((folder / "sharpness.csv").open()))
    assert len(rows) == len(preset.rows_for(None, "smoke")) == 5
    assert all(float(r["keskar_sharpness"]) > 0 and float(r["loss_at_minimum"]) > 0 for r in rows)
    assert {(r["optimizer"], r["batch_size"], r["labels"]) for r in rows} == {
        ("sgd", "10", "true"), ("sgd", "20", "true"), ("adam", "10", "true"), ("adam", "20", "true"),
        ("sgd", "10", "random")}
    md = (folder / "sharpness.md").read_text()
    assert "| sharp | sharp 5e-4 |" in md and "(adam) for mlp-1x512" in md  # the schedule names the optimizer
    assert "at the smoke scale" in md.lower() or "machinery" in md
