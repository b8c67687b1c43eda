"""The artefacts beyond the paper's figures (issue 16, items 2-4): memorization curves (Arpit et al. 2017), the
slowdown against the training-set size (Fig. 1a), and complexity measures with their rank correlation with test
error (Jiang et al. 2020); tables, figures and verdicts from synthetic run records, the presets' grids, and one
tiny end-to-end run on the bundled digits."""

from __future__ import annotations

import json
import random

import pytest

from shattering.experiments.presets import PRESETS
from shattering.report.html import build_report
from shattering.report.measures import MEASURES, NOT_MEASURED, rank_correlations
from shattering.report.memorization import memorization_claims, memorization_rows
from shattering.report.renderers import render
from shattering.report.slowdown import slowdown_claims, slowdown_points
from shattering.report.verdicts import FAILS, HOLDS, PARTLY, UNDECIDED, kendall_tau_b, tally

from .test_report import NOTES, fake_outcome, read_csv, sidecar


def with_curves(o, clean, corrupted, test):
    """Rewrite ``o``'s metrics: per epoch the accuracy on the clean and the corrupted part and on the test set;
    an epoch whose values are None was not evaluated in full (its row says so and holds no accuracies)."""
    rows = []
    for e, (a, b, t) in enumerate(zip(clean, corrupted, test, strict=True), start=1):
        if a is None:
            rows.append({"epoch": e, "step": 4 * e, "evaluated": False, "train_loss": 1.0})
        else:
            rows.append({"epoch": e, "step": 4 * e, "train_acc": (a + b) / 2, "train_acc_clean": a,
                         "train_acc_corrupted": b, "test_acc": t})
    (o.run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return o


# -- verdicts and Kendall's tau ---------------------------------------------------------------------------


def test_kendall_tau_b_agrees_with_scipy_with_and_without_ties():
    from scipy import stats

    rng = random.Random(0)
    for _ in range(20):
        n = rng.randint(3, 15)
        x = [rng.randint(0, 4) for _ in range(n)]
        y = [rng.randint(0, 4) for _ in range(n)]
        expected = stats.kendalltau(x, y).statistic
        got = kendall_tau_b(x, y)
        assert (got is None) if expected != expected else got == pytest.approx(expected)
    assert kendall_tau_b([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert kendall_tau_b([1, 1, 1], [1, 2, 3]) is None  # a constant side ranks nothing
    assert kendall_tau_b([1.0], [2.0]) is None


def test_kendall_tau_b_refuses_unequal_lengths():
    with pytest.raises(ValueError, match="as many x as y"):
        kendall_tau_b([1, 2], [1])


def test_tally_words_the_verdict():
    assert tally([True, True, None]) == (HOLDS, "2 of 2 run(s); 1 undecided")
    assert tally([True, False]) == (PARTLY, "1 of 2 run(s)")
    assert tally([False]) == (FAILS, "0 of 1 run(s)")
    assert tally([None]) == (UNDECIDED, "0 of 0 run(s); 1 undecided")


# -- memorization ----------------------------------------------------------------------------------------


def memorizing(runs, p, seed=0, *, corrupted_first=False):
    """A run that fits its clean examples at epoch 3, its corrupted ones at epoch 6 (swapped with
    ``corrupted_first``), with test accuracy peaking at epoch 2; epoch 4 not evaluated in full."""
    o = fake_outcome(runs, corruption="partial-labels", p=p, seed=seed, epochs=6)
    clean = [0.5, 0.9, 0.995, None, 0.999, 1.0]
    corrupted = [0.1, 0.2, 0.4, None, 0.8, 1.0]
    if corrupted_first:
        clean, corrupted = corrupted, clean
    return with_curves(o, clean, corrupted, [0.5, 0.7, 0.6, None, 0.55, 0.52])


def test_memorization_table_reads_only_evaluated_epochs(tmp_path):
    outcomes = [memorizing(tmp_path / "runs", p) for p in (0.2, 0.6)]
    (row, _) = memorization_rows(outcomes)
    assert row["clean_fit_epoch"] == 3 and row["corrupted_fit_epoch"] == 6
    assert (row["test_peak_epoch"], row["test_peak"], row["test_end"]) == (2, 0.7, 0.52)
    assert [e for e, _ in row["curves"]["test_acc"]] == [1, 2, 3, 5, 6]  # epoch 4: no full evaluation
    paths = render(PRESETS["memorization"], outcomes, tmp_path / "art", NOTES, scale="smoke")
    assert {p.name for p in paths} == {"memorization.png", "memorization.svg", "memorization.pdf", "memorization.md",
                                       "memorization.csv", "memorization.json"}
    side = sidecar(tmp_path / "art" / "memorization.json")
    assert [c["verdict"] for c in side["claims"]] == [HOLDS, HOLDS]
    assert side["table"]["rows"][0][5:9] == [3, 6, "2: 70.00", "52.00"]
    md = (tmp_path / "art" / "memorization.md").read_text()
    assert "| clean fits 99% (epoch) |" in md and "Measured: holds (2 of 2 run(s))" in md
    assert len(read_csv(tmp_path / "art" / "memorization.csv")) == 2 * 5


def test_memorization_verdicts_say_when_the_claims_fail(tmp_path):
    runs = tmp_path / "runs"
    outcomes = [memorizing(runs, 0.2, corrupted_first=True), memorizing(runs, 0.4)]
    first, peak = memorization_claims(memorization_rows(outcomes))
    assert first["verdict"] == PARTLY and first["evidence"] == "1 of 2 run(s)"
    # the swapped run memorizes its "corrupted" part at epoch 3, after the test peak at epoch 2: still holds
    assert peak["verdict"] == HOLDS
    never = with_curves(fake_outcome(runs, corruption="partial-labels", p=0.8, epochs=3),
                        [0.5, 0.6, 0.7], [0.1, 0.2, 0.3], [0.3, 0.4, 0.5])
    first, peak = memorization_claims(memorization_rows([never]))
    assert first["verdict"] == UNDECIDED  # neither part reached 99%
    assert peak["verdict"] == FAILS  # test accuracy still rising at the end
    render(PRESETS["memorization"], [never], tmp_path / "art", NOTES)
    assert "not reached in 3" in (tmp_path / "art" / "memorization.md").read_text()


# -- slowdown ---------------------------------------------------------------------------------------------


def sized(runs, n, corruption, fit_step, *, model="mlp-1x512", status="fit", seed=0):
    o = fake_outcome(runs, model=model, corruption=corruption, train_size=n, status=status, seed=seed)
    o.summary["data"]["n_train"] = n
    o.summary["fit_step"] = fit_step if status == "fit" else None
    o.summary["steps"] = fit_step
    return o


def test_slowdown_is_random_over_true_steps_per_size(tmp_path):
    runs = tmp_path / "runs"
    outcomes = [sized(runs, 60, "true-labels", 10), sized(runs, 60, "random-labels", 12),
                sized(runs, 120, "true-labels", 20), sized(runs, 120, "random-labels", 40),
                sized(runs, 240, "true-labels", 30), sized(runs, 240, "random-labels", 90, status="not-fit")]
    points = slowdown_points(outcomes)
    assert [(p["n"], p["slowdown"], p["lower_bound"]) for p in points] == [(60, 1.2, None), (120, 2.0, None),
                                                                           (240, None, 3.0)]
    grows, reach = slowdown_claims(points)
    assert grows["verdict"] == UNDECIDED  # two sizes fit: too few to rank
    assert reach["verdict"] == HOLDS and "from n = 120" in reach["evidence"]
    outcomes.append(sized(runs, 480, "true-labels", 40))
    outcomes.append(sized(runs, 480, "random-labels", 200))
    grows, _ = slowdown_claims(slowdown_points(outcomes))
    assert grows["verdict"] == HOLDS and "tau = +1.00" in grows["evidence"]
    paths = render(PRESETS["slowdown"], outcomes, tmp_path / "art", NOTES, scale="smoke")
    assert {p.suffix for p in paths} == {".png", ".svg", ".pdf", ".md", ".csv", ".json"}
    rows = read_csv(tmp_path / "art" / "slowdown.csv")
    assert [(r["n"], r["slowdown"], r["slowdown_lower_bound"]) for r in rows] == [
        ("60", "1.2", ""), ("120", "2", ""), ("240", "", "3"), ("480", "5", "")]
    md = (tmp_path / "art" / "slowdown.md").read_text()
    assert "> 3.00x (random labels did not fit)" in md and "1.5-3.5x" in md


def test_slowdown_of_a_model_whose_true_labels_did_not_fit_is_not_drawn(tmp_path):
    runs = tmp_path / "runs"
    outcomes = [sized(runs, 60, "true-labels", 10, status="not-fit"), sized(runs, 60, "random-labels", 12)]
    (point,) = slowdown_points(outcomes)
    assert point["slowdown"] is None and point["lower_bound"] is None
    assert [c["verdict"] for c in slowdown_claims([point])] == [UNDECIDED, UNDECIDED]  # nothing measured
    render(PRESETS["slowdown"], outcomes, tmp_path / "art", NOTES)
    assert "none fit (0/1)" in (tmp_path / "art" / "slowdown.md").read_text()


# -- measures ---------------------------------------------------------------------------------------------


def measured(runs, model, p, test_acc, values, status="fit"):
    corruption = {0.0: "true-labels", 1.0: "random-labels"}.get(p, "partial-labels")
    o = fake_outcome(runs, model=model, corruption=corruption, p=p if corruption == "partial-labels" else None,
                     test_acc=test_acc, status=status)
    o.summary["measures"] = values
    return o


def test_measures_side_by_side_and_rank_correlation_with_missing_keys(tmp_path):
    runs = tmp_path / "runs"
    outcomes = []
    for model in ("mlp-1x512", "alexnet-small"):
        for i, p in enumerate((0.0, 0.5, 1.0)):
            values = {"l2_norm": 10.0 + i, "margin_min": 1.0 - 0.3 * i, "spectral_product": None}
            if model == "alexnet-small":
                values.pop("margin_min")  # a key missing: not measured
            outcomes.append(measured(runs, model, p, 0.9 - 0.4 * i, values))
    outcomes.append(measured(runs, "mlp-1x512", 0.5, 0.99, {"l2_norm": 1000.0}, status="not-fit"))  # never used
    taus = {r["measure"]: r for r in rank_correlations(outcomes)}
    assert taus["l2_norm"]["pooled"] == {"tau": pytest.approx(1.0), "n": 6}  # tied pairs count in neither
    assert taus["l2_norm"]["per_model"]["mlp-1x512"] == {"tau": pytest.approx(1.0), "n": 3}
    assert taus["margin_min"]["per_model"]["mlp-1x512"] == {"tau": pytest.approx(-1.0), "n": 3}
    assert taus["margin_min"]["per_model"]["alexnet-small"] == {"tau": None, "n": 0}
    assert taus["spectral_product"]["pooled"]["n"] == 0
    render(PRESETS["measures"], outcomes, tmp_path / "art", NOTES, scale="smoke")
    side = sidecar(tmp_path / "art" / "measures.json")
    rows = {(r[0], r[1]): r for r in side["table"]["rows"]}
    assert len(rows) == 2 * len(MEASURES)
    l2 = rows[("MLP 1x512", MEASURES["l2_norm"][0])]
    assert l2[3:6] == ["10", "12", "1.2"] and l2[6] == "+1.00 (n = 3)"
    assert rows[("MLP 1x512", MEASURES["spectral_product"][0])][3] == NOT_MEASURED
    assert rows[("AlexNet", MEASURES["margin_min"][0])][6] == NOT_MEASURED
    verdicts = {c["claim"].split(" with test")[0]: c["verdict"] for c in side["claims"]}
    assert verdicts["the l2 norm of the weights grows"] == HOLDS
    assert verdicts["the smallest margin falls"] == HOLDS
    assert not any("spectral norms" in c for c in verdicts)  # never measured: no claim
    assert (tmp_path / "art" / "measures_figure.png").read_bytes().startswith(b"\x89PNG")
    csv_rows = read_csv(tmp_path / "art" / "measures.csv")
    assert len(csv_rows) == len(outcomes) * len(MEASURES)


# -- the presets ------------------------------------------------------------------------------------------


def test_the_new_presets_reuse_the_runs_of_fig1bc_at_quick_scale():
    fig1bc = {c.run_id() for c in PRESETS["fig1bc"].configs("quick")}
    assert {c.run_id() for c in PRESETS["measures"].configs("quick")} == fig1bc
    slowdown = PRESETS["slowdown"].configs("quick")
    assert len({c.run_id() for c in slowdown}) == len(slowdown)
    shared = [c for c in slowdown if c.run_id() in fig1bc]
    assert sorted((c.model, c.corruption) for c in shared) == sorted(
        (m, c) for m in ("mlp-1x512", "alexnet-small", "inception-small") for c in ("true-labels", "random-labels"))
    assert all(c.train_size == 500 for c in shared)
    assert max(c.train_size for c in slowdown if c.model == "mlp-1x512") == 8000
    memorization = PRESETS["memorization"].configs("quick")
    assert {c.corruption for c in memorization} == {"partial-labels"}
    # evaluated every epoch: its own records (a fig1bc record evaluated every 20 epochs has no curves to draw)
    assert all(c.eval_every == 1 for c in memorization)
    assert not {c.run_id() for c in memorization} & fig1bc
    assert {c.replace(eval_every=20).run_id() for c in memorization} <= fig1bc  # otherwise the very same runs


def test_slowdown_grid_grows_with_the_scale():
    sizes = {scale: sorted({c.train_size or 0 for c in PRESETS["slowdown"].configs(scale)})
             for scale in ("smoke", "quick", "paper")}
    assert sizes["smoke"] == [60, 120, 240]
    assert sizes["quick"] == [250, 500, 1000, 2000, 4000, 8000]
    assert sizes["paper"][0] == 0  # all 50,000 CIFAR-10 images: Fig. 1a's own runs
    notes = " ".join(PRESETS["slowdown"].notes("quick"))
    assert "250-8,000 Fashion-MNIST training images" in notes
    models = PRESETS["slowdown"].configs("smoke", models=["mlp-3x512"])
    assert {c.model for c in models} == {"mlp-3x512"} and len(models) == 6


# -- end to end -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_memorization_end_to_end_on_digits(tmp_path, monkeypatch):
    from shattering.report.reproduce import reproduce

    monkeypatch.setenv("SHATTERING_NO_DOWNLOAD", "1")
    out = tmp_path / "runs"
    result = reproduce("memorization", "smoke", out=str(out), progress=False, models=["mlp-1x512"],
                       train_size=200, epochs=4, device="cpu")
    assert not result["render_errors"] and all(o.summary for o in result["outcomes"])
    side = sidecar(out / "artefacts" / "memorization" / "memorization.json")
    assert len(side["runs"]) == 4 and len(side["claims"]) == 2
    assert all(r[4] == 4 for r in side["table"]["rows"])  # every epoch evaluated and read
    page = build_report(out)
    assert "Memorization under partially corrupted labels" in page and "Claim: the clean examples" in page
