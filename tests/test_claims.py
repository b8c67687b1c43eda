"""Tests for `shattering/experiments/claims/` and the claims section of every artefact: each claim's verdict
on synthetic run facts (holds; does not hold at this scale; not measured), and the verdicts in the Markdown, the
sidecar and the HTML report."""

from __future__ import annotations

import json
import math

import pytest

from shattering.config import RunConfig
from shattering.experiments import claims as cl
from shattering.experiments.presets import PRESETS
from shattering.report.html import build_report
from shattering.report.renderers import render

from .test_report import NOTES, fake_outcome

LN10 = math.log(10)


def facts(model="inception-small", corruption="true-labels", p=None, *, status="fit", fit_epoch=10, train_acc=None,
          test_acc=0.8, best=None, curve=(), seed=0, **fields) -> cl.RunFacts:
    cfg = RunConfig(dataset="digits", model=model, corruption=corruption, p=p, seed=seed, **fields)
    if status == "failed":
        return cl.RunFacts(cfg, None)
    fit = status == "fit"
    train = train_acc if train_acc is not None else (1.0 if fit else 0.8)
    summary = {"status": status, "fit_epoch": fit_epoch if fit else None, "epochs": fit_epoch,
               "best_test_acc": test_acc if best is None else best, "data": {"classes": 10},
               "final": {"train_acc": train, "test_acc": test_acc, "train_loss": 0.01 if fit else 1.0}}
    return cl.RunFacts(cfg, summary, tuple(curve))


def curve(cross: int, last: int = 400) -> tuple:
    """A training loss that starts at ln 10 and falls below 0.1 ln 10 at step ``cross``."""
    return tuple((s, LN10 if s < cross else 0.05 * LN10) for s in range(0, last + 1, 20))


def verdict(claim_id: str, items) -> dict:
    claim = next(c for p in PRESETS.values() for c in p.claims if c.id == claim_id)
    return claim.assess(items)


def test_every_trained_and_computed_paper_preset_lists_claims():
    for name in ("fig1a", "fig1bc", "fig2b", "table1", "table4", "table3", "table2", "fig2a"):
        claims = PRESETS[name].claims
        assert claims and all(c.words and c.where and c.id for c in claims)
        assert len({c.id for c in claims}) == len(claims)
    by_id = {}
    for c in (c for p in PRESETS.values() for c in p.claims):
        assert by_id.setdefault(c.id, c) is c  # one id, one claim (Table 2 and Figure 2a share theirs)


# -- Figure 1a: read on the loss curve ---------------------------------------------------------------------

def test_fig1a_random_labels_slowest_holds_on_the_curve():
    runs = [facts(corruption="true-labels", curve=curve(100)), facts(corruption="gaussian", curve=curve(140)),
            facts(corruption="random-pixels", curve=curve(160)), facts(corruption="random-labels", curve=curve(300))]
    v = verdict("fig1a-random-labels-slowest", runs)
    assert v["verdict"] == cl.HOLDS
    assert "0.1 x ln K" in v["text"] and "random-labels: step 300" in v["text"]
    assert v["numbers"]["fraction_of_ln_k"] == 0.1
    assert verdict("fig1a-random-inputs-faster", runs)["verdict"] == cl.HOLDS


def test_fig1a_random_labels_not_slowest_does_not_hold():
    runs = [facts(corruption="true-labels", curve=curve(100)), facts(corruption="gaussian", curve=curve(340)),
            facts(corruption="random-labels", curve=curve(300))]
    assert verdict("fig1a-random-labels-slowest", runs)["verdict"] == cl.NOT_AT_SCALE
    assert verdict("fig1a-random-inputs-faster", runs)["verdict"] == cl.NOT_AT_SCALE


def test_fig1a_not_measured_without_random_labels_or_curves():
    v = verdict("fig1a-random-labels-slowest", [facts(corruption="true-labels", curve=curve(100))])
    assert v["verdict"] == cl.NOT_MEASURED and v["text"].startswith("not measured (needs the random-labels run")
    flat = [facts(corruption=c, curve=((0, LN10), (10, LN10))) for c in ("true-labels", "random-labels")]
    assert "no run's training loss fell below" in verdict("fig1a-random-labels-slowest", flat)["text"]


def test_fig1a_all_fit():
    assert verdict("fig1a-all-fit", [facts(corruption=c) for c in ("true-labels", "gaussian")])["verdict"] == cl.HOLDS
    v = verdict("fig1a-all-fit", [facts(), facts(corruption="random-labels", status="not-fit")])
    assert v["verdict"] == cl.NOT_AT_SCALE and "random-labels: 0/1 fit" in v["text"]
    assert verdict("fig1a-all-fit", [facts(status="failed")])["verdict"] == cl.NOT_MEASURED


# -- Figures 1b and 1c -------------------------------------------------------------------------------------

def _sweep(epochs, errors, model="mlp-1x512"):
    out = []
    for p, e, err in zip((0.0, 0.5, 1.0), epochs, errors, strict=True):
        c = "true-labels" if p == 0 else "random-labels" if p == 1 else "partial-labels"
        out.append(facts(model, c, p if c == "partial-labels" else None, fit_epoch=e, test_acc=1 - err))
    return out


def test_fig1b_slowdown_and_fig1c_error():
    runs = _sweep((10, 15, 30), (0.5, 0.7, 0.89))
    assert verdict("fig1b-slowdown", runs)["verdict"] == cl.HOLDS
    assert "x3.00 at p=1" in verdict("fig1b-slowdown", runs)["text"]
    assert verdict("fig1c-error-to-chance", runs)["verdict"] == cl.HOLDS
    assert verdict("fig1b-all-fit", runs)["verdict"] == cl.HOLDS
    flat = _sweep((20, 21, 19), (0.5, 0.6, 0.7))
    assert verdict("fig1b-slowdown", flat)["verdict"] == cl.NOT_AT_SCALE
    assert verdict("fig1c-error-to-chance", flat)["verdict"] == cl.NOT_AT_SCALE  # 70% is 20 points off chance
    assert verdict("fig1b-slowdown", [facts(status="not-fit")])["verdict"] == cl.NOT_MEASURED


# -- Table 1 -----------------------------------------------------------------------------------------------

def test_table1_claims():
    runs = [facts("inception-small", test_acc=0.86), facts("inception-small", test_acc=0.89, random_crop=True,
                                                           weight_decay=5e-4),
            facts("inception-small-nobn", test_acc=0.825), facts("inception-small", "random-labels", test_acc=0.1)]
    assert verdict("table1-all-fit", runs)["verdict"] == cl.HOLDS
    v = verdict("table1-regularizers-help", runs)
    assert v["verdict"] == cl.HOLDS and "+3.00 points" in v["text"]
    assert verdict("table1-regularizers-not-needed", runs)["verdict"] == cl.HOLDS
    bn = verdict("table1-batchnorm", runs)
    assert bn["verdict"] == cl.HOLDS and "+3.50 points" in bn["text"]
    worse = [facts("inception-small", test_acc=0.86), facts("inception-small-nobn", test_acc=0.70),
             facts("mlp-1x512", test_acc=0.2, status="not-fit"), facts("mlp-1x512", test_acc=0.15, weight_decay=5e-4)]
    assert verdict("table1-batchnorm", worse)["verdict"] == cl.NOT_AT_SCALE
    assert verdict("table1-all-fit", worse)["verdict"] == cl.NOT_AT_SCALE
    assert verdict("table1-regularizers-not-needed", worse)["verdict"] == cl.NOT_AT_SCALE  # 20% < 3x chance
    assert verdict("table1-regularizers-help", worse)["verdict"] == cl.NOT_AT_SCALE
    assert verdict("table1-batchnorm", [facts("mlp-1x512")])["verdict"] == cl.NOT_MEASURED


# -- Table 4, Figure 2b ------------------------------------------------------------------------------------

def test_table4_alexnet_with_weight_decay():
    fails = facts("alexnet-small", "random-labels", status="not-fit", train_acc=0.3, weight_decay=5e-4)
    fits = facts("alexnet-small", "random-labels", weight_decay=5e-4)
    assert verdict("table4-alexnet-wd", [fails])["verdict"] == cl.HOLDS
    assert verdict("table4-alexnet-wd", [fits])["verdict"] == cl.NOT_AT_SCALE
    assert verdict("table4-alexnet-wd", [facts("mlp-1x512", "random-labels")])["verdict"] == cl.NOT_MEASURED
    assert verdict("table4-others-fit-with-wd",
                   [facts("mlp-1x512", "random-labels", weight_decay=5e-4)])["verdict"] == cl.HOLDS


def test_fig2b_early_stopping():
    assert verdict("fig2b-early-stopping", [facts(test_acc=0.8, best=0.805)])["verdict"] == cl.HOLDS
    v = verdict("fig2b-early-stopping", [facts(test_acc=0.8, best=0.85)])
    assert v["verdict"] == cl.NOT_AT_SCALE and "+5.00 points" in v["text"]
    assert verdict("fig2b-early-stopping", [facts(status="failed")])["verdict"] == cl.NOT_MEASURED


# -- Table 2 and Figure 2a ----------------------------------------------------------------------------------

def _imagenet(test_acc, best, *, aug=False, dropout=0.0, wd=0.0, corruption="true-labels", train_acc=None):
    cfg = RunConfig(dataset="digits", model="alexnet-small", corruption=corruption, random_crop=aug, dropout=dropout,
                    weight_decay=wd)
    return cl.RunFacts(cfg, {"status": "not-fit", "best_test_acc": best, "data": {"classes": 10},
                             "final": {"test_acc": test_acc, "train_acc": 0.99 if train_acc is None else train_acc}})


def test_table2_and_fig2a_claims():
    runs = [_imagenet(0.7784, 0.78, aug=True, dropout=0.2, wd=4e-5), _imagenet(0.598, 0.6316),
            _imagenet(0.6718, 0.7257, wd=4e-5), _imagenet(0.001, 0.002, corruption="random-labels", train_acc=0.952)]
    for claim_id in ("table2-regularizers", "imagenet-early-stopping", "table2-random-labels"):
        assert verdict(claim_id, runs)["verdict"] == cl.HOLDS, claim_id
    assert "+3.36 points" in verdict("imagenet-early-stopping", runs)["text"]
    flat = [_imagenet(0.5, 0.5), _imagenet(0.6, 0.6, aug=True, dropout=0.2, wd=4e-5),
            _imagenet(0.001, 0.002, corruption="random-labels", train_acc=0.3)]
    assert verdict("imagenet-early-stopping", flat)["verdict"] == cl.NOT_AT_SCALE
    assert verdict("table2-random-labels", flat)["verdict"] == cl.NOT_AT_SCALE
    assert verdict("table2-regularizers", flat[:1])["verdict"] == cl.NOT_MEASURED


# -- Table 3, Section 5, Theorem 1 -------------------------------------------------------------------------

def _row(name, err, norm, dataset="digits", ridge=False, interpolates=True):
    return {"row": name, "dataset": dataset, "test_error": err, "norm": norm, "random_test_error": 0.9,
            "ridge": ridge, "interpolates": interpolates}


def test_table3_and_section5():
    rows = [_row("mnist-raw", 0.03, 220.0), _row("mnist-gabor", 0.02, 390.0)]
    assert verdict("table3-generalizes", rows)["verdict"] == cl.HOLDS
    assert verdict("section5-norm", rows)["verdict"] == cl.HOLDS
    bad = [_row("mnist-raw", 0.7, 220.0), _row("mnist-gabor", 0.8, 390.0)]
    assert verdict("table3-generalizes", bad)["verdict"] == cl.NOT_AT_SCALE
    assert verdict("section5-norm", bad)["verdict"] == cl.NOT_AT_SCALE
    assert verdict("table3-generalizes", [_row("x", 0.1, 1.0, interpolates=False)])["verdict"] == cl.NOT_MEASURED
    assert verdict("section5-norm", rows[:1])["verdict"] == cl.NOT_MEASURED


def test_theorem1():
    result = {"n": 50, "d": 64, "corruption": "random-labels", "weights": {"theorem_1": 164},
              "scalar": {"num_weights": 164, "max_error": 1e-6, "train_accuracy": 1.0}}
    assert cl.THEOREM1_CLAIM.assess(result)["verdict"] == cl.HOLDS
    off = {**result, "scalar": {**result["scalar"], "max_error": 0.7, "train_accuracy": 0.6}}
    assert cl.THEOREM1_CLAIM.assess(off)["verdict"] == cl.NOT_AT_SCALE
    assert cl.THEOREM1_CLAIM.assess({})["verdict"] == cl.NOT_MEASURED


def test_a_measure_that_breaks_on_odd_records_says_not_measured():
    odd = cl.RunFacts(RunConfig(dataset="digits", model="mlp-1x512"), {"status": "fit", "final": {}})
    v = verdict("fig2b-early-stopping", [odd])
    assert v["verdict"] == cl.NOT_MEASURED


# -- the artefacts -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("preset", ["table1", "fig1a"])
def test_markdown_sidecar_and_report_state_the_claims(tmp_path, preset):
    runs = tmp_path / "runs"
    outcomes = [fake_outcome(runs, model="inception-small", corruption=c, epochs=e)
                for c, e in (("true-labels", 3), ("random-labels", 6))]
    art = runs / "artefacts" / preset
    paths = render(PRESETS[preset], outcomes, art, NOTES)
    md = (art / f"{preset}.md").read_text()
    side = json.loads((art / f"{preset}.json").read_text())
    assert "## Claims of the paper" in md
    assert [c["id"] for c in side["claims"]] == [c.id for c in PRESETS[preset].claims]
    for c in side["claims"]:
        assert c["verdict"] in cl.VERDICTS and c["text"]
        assert f"**{c['verdict']}**: {c['words']}" in md and c["text"] in md
    if preset == "fig1a":  # the curve claim, on the fake runs' step logs: random labels cross later
        slow = next(c for c in side["claims"] if c["id"] == "fig1a-random-labels-slowest")
        assert slow["verdict"] == cl.HOLDS and "0.1 x ln K" in slow["text"]
    page = build_report(runs)
    assert "Claims of the paper" in page and side["claims"][0]["words"].split(" (")[0][:40] in page
    again = render(PRESETS[preset], outcomes, art, NOTES)  # byte-stable: the section is not appended twice
    assert md == (art / f"{preset}.md").read_text() and md.count("## Claims of the paper") == 1
    assert sorted(paths) == sorted(again)
    assert "the verdicts mean nothing" not in md
    render(PRESETS[preset], outcomes, art, NOTES, scale="smoke")
    assert "the verdicts mean nothing" in (art / f"{preset}.md").read_text()


# -- what the presets run and say ------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", ["quick", "paper"])
def test_table1_true_label_rows_train_the_whole_budget_random_labels_stop_at_fit(scale):
    configs = PRESETS["table1"].configs(scale)
    true = [c for c in configs if c.corruption == "true-labels"]
    rand = [c for c in configs if c.corruption == "random-labels"]
    assert len(true) == 14 and len(rand) == 5
    assert {c.until for c in true} == {"epochs"} and {c.until for c in rand} == {"fit"}


def test_the_schedule_note_names_each_models_learning_rate_and_decay():
    note = PRESETS["table1"].schedule_note("quick")
    assert note.startswith("learning rate: 0.1 x0.95 per epoch for inception-small, inception-small-nobn; "
                           "0.01 constant for alexnet-small, mlp-3x512, mlp-1x512 (the paper: 0.1")
    assert note in PRESETS["table1"].notes("quick")
    assert "0.01 x0.95 per epoch for alexnet-small" in PRESETS["table1"].schedule_note("paper")
    assert "0.1 x0.999 per epoch for inception-small" in PRESETS["table4"].schedule_note("quick")
    assert "0.5 constant for mlp-1x512" in PRESETS["fig1a"].schedule_note("quick", models=["mlp-1x512"], lr=0.5,
                                                                          lr_decay=1.0)
    assert "the paper gives no schedule for ImageNet" in PRESETS["table2"].schedule_note("quick")


def test_the_report_shows_theorem1s_verdict(tmp_path):
    from shattering.report.theory_results import theory_html

    result = {"n": 50, "d": 64, "corruption": "random-labels", "weights": {"theorem_1": 164},
              "scalar": {"num_weights": 164, "max_error": 1e-6, "train_accuracy": 1.0}}
    result["claims"] = [cl.THEOREM1_CLAIM.assess(result)]
    page = theory_html(tmp_path, tmp_path / "expressivity.json", "expressivity", result)
    assert "Claims of the paper" in page and "holds</span>" in page and "2n + d = 164" in page


def test_shatter_presets_names_the_claims_each_tests(capsys):
    from shattering.cli import main

    assert main(["presets", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [c["id"] for c in rows["table4"]["claims"]] == ["table4-alexnet-wd", "table4-others-fit-with-wd"]
    assert main(["presets"]) == 0
    assert "claims it tests: fig1a-all-fit, fig1a-random-labels-slowest" in capsys.readouterr().out
