"""The memorization-scores artefact: end to end at smoke scale, and its claims' verdicts on constructed studies
whose answers are known."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from shattering.config import RunConfig
from shattering.experiments.claims import HOLDS, NOT_AT_SCALE, NOT_MEASURED, RunFacts
from shattering.experiments.claims import memorization_scores as claims
from shattering.influence import c_score, memorization


def test_the_artefact_end_to_end_at_smoke_scale(tmp_path):
    from shattering.experiments.presets import PRESETS
    from shattering.report.reproduce import reproduce

    result = reproduce("memorization-scores", "smoke", out=str(tmp_path), progress=False)
    assert not result["render_errors"]
    folder = tmp_path / "artefacts" / "memorization-scores"
    for name in ("memorization-scores.png", "memorization-scores-examples.png", "memorization-scores.md",
                 "memorization-scores.csv", "memorization-scores.json"):
        assert (folder / name).stat().st_size > 0, name
    side = json.loads((folder / "memorization-scores.json").read_text())
    assert [c["id"] for c in side["claims"]] == [c.id for c in PRESETS["memorization-scores"].claims]
    assert len(side["table"]["rows"]) == 3 and len(side["studies"]) == 3
    assert all(s["networks"] == 8 and s["trained_now"] == [0] for s in side["studies"])
    assert "not computed" not in (folder / "memorization-scores.md").read_text()
    per_example = sorted(folder.glob("memorization-scores-*.csv"))
    assert len(per_example) == 3  # one per run
    # asked again: every study is read back from the runs' records, nothing trained
    again = reproduce("memorization-scores", "smoke", out=str(tmp_path), progress=False)
    assert not again["render_errors"]
    side = json.loads((folder / "memorization-scores.json").read_text())
    assert all(s["trained_now"] == [] and s["read_back"] == 1 for s in side["studies"])


def _study(masks, correct, corrupted, agree):
    return SimpleNamespace(masks=masks, memorization=memorization(masks, correct), c_score=c_score(masks, correct),
                           corrupted=corrupted, neighbours_agree=agree, facts={"neighbours": 10})


def _constructed(n: int = 400, k: int = 40, p: float = 0.3, exact: bool = True):
    """Networks that get a clean example right whether or not they trained on it, and a corrupted one right only
    when they trained on it (``exact``), or networks right at random (not ``exact``): memorization 1 and 0
    exactly, or about 0 everywhere."""
    rng = np.random.default_rng(0)
    masks = np.zeros((k, n), bool)
    for row in masks:
        row[rng.choice(n, int(0.7 * n), replace=False)] = True
    corrupted = np.zeros(n, bool)
    corrupted[rng.choice(n, int(p * n), replace=False)] = True
    correct = np.where(corrupted, masks, True) if exact else rng.random((k, n)) < 0.5
    agree = np.full(n, 0.9)
    return masks, correct, corrupted, agree


def _facts(corruption: str, p: float | None = None) -> RunFacts:
    cfg = RunConfig(model="mlp-1x512", corruption=corruption, p=p)
    return RunFacts(cfg, {"status": "fit"}, run_dir=Path(f"/nonexistent/{corruption}-{p}"))


@pytest.mark.parametrize("exact", [True, False])
def test_claims_on_constructed_studies(monkeypatch, exact):
    masks, correct, corrupted, agree = _constructed(exact=exact)
    true_masks, true_correct, _, _ = _constructed(p=0.0)
    true_correct = true_correct.copy()
    atypical = np.arange(20)  # memorized by construction (right only when trained on), with neighbours elsewhere
    true_correct[:, atypical] = true_masks[:, atypical]
    true_agree = np.full(400, 0.9)
    true_agree[atypical] = 0.2 if exact else 0.9
    studies = {"partial-labels": _study(masks, correct, corrupted, agree),
               "true-labels": _study(true_masks, true_correct, np.zeros(400, bool), true_agree)}
    monkeypatch.setattr("shattering.experiments.memorization_scores.stored_study",
                        lambda run_dir: studies["true-labels" if "true" in str(run_dir) else "partial-labels"])
    facts = [_facts("true-labels"), _facts("partial-labels", 0.3)]
    mem = claims.corrupted_memorized(facts)
    low = claims.lowest_c_scores_mislabeled(facts)
    atyp = claims.memorized_atypical(facts)
    if exact:
        assert mem.verdict == HOLDS and mem.numbers["mlp-1x512 p = 0.3"]["corrupted_median"] == 1.0
        assert mem.numbers["mlp-1x512 p = 0.3"]["clean_median"] == 0.0
        assert low.verdict == HOLDS and low.numbers["mlp-1x512 p = 0.3"]["precision"] == 1.0
        assert atyp.verdict == HOLDS and atyp.numbers["mlp-1x512 true-labels"]["top_agreement"] == pytest.approx(0.2)
    else:
        assert mem.verdict == NOT_AT_SCALE and low.verdict == NOT_AT_SCALE and atyp.verdict == NOT_AT_SCALE
        assert low.numbers["mlp-1x512 p = 0.3"]["precision"] < 0.5


def test_claims_without_studies_are_not_measured():
    facts = [_facts("true-labels"), _facts("partial-labels", 0.3)]
    for measure in (claims.corrupted_memorized, claims.lowest_c_scores_mislabeled, claims.memorized_atypical):
        verdict = measure(facts)
        assert verdict.verdict == NOT_MEASURED and "shatter reproduce memorization-scores" in verdict.text
