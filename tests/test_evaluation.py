"""Tests for when a run is evaluated (`shattering/train/book.py` needs_evaluation, the fit probe in
`shattering/train/evaluate.py`) and how fit is decided in fp32: skipping the full pass on epochs that cannot
have fit changes no fit epoch, and no reader takes an unevaluated epoch for a result."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import shattering
from shattering.config import RunConfig
from shattering.errors import ConfigError
from shattering.executors.sweep import run_sweep
from shattering.report.run_curves import curves_svg
from shattering.runs import RunRecord, evaluated, load_curves
from shattering.train.evaluate import clear_errors, clear_errors_rest, measure, predict, probe_chunks
from shattering.train.progress import epoch_text

TIMING = {"seconds", "eval_seconds", "epoch_seconds"}
PROBE = {"fit_probe_suspects", "fit_probe_checked", "fit_probe_wrong"}


def _rows(result) -> dict[int, dict]:
    return {r["epoch"]: {k: v for k, v in r.items() if k not in TIMING | PROBE}
            for r in RunRecord(result.run_dir).read_metrics()}


def _same_fit_as_every_epoch(tmp_path, **kw):
    """The run at the default policy and at eval_every=1: same fit epoch, and every epoch the default evaluates
    holds exactly the numbers of the every-epoch run (evaluation changes no weight)."""
    every = shattering.run(**kw, eval_every=1, out=str(tmp_path / "every"))
    default = shattering.run(**kw, out=str(tmp_path / "default"))
    assert every.run_dir.name != default.run_dir.name  # the curves differ: another record
    assert every.status == default.status == "fit"
    assert default.summary["fit_epoch"] == every.summary["fit_epoch"]
    assert default.summary["fit_step"] == every.summary["fit_step"]
    rows, reference = _rows(default), _rows(every)
    assert rows.keys() == reference.keys()
    passes = [e for e, r in rows.items() if r["evaluated"]]
    assert default.summary["evaluation"]["passes"] == len(passes) < len(reference)
    for epoch in passes:  # the best test accuracy so far is the best of the epochs evaluated: no higher
        best, best_every = rows[epoch].pop("best_test_acc"), reference[epoch].pop("best_test_acc")
        assert rows[epoch] == reference[epoch] and best <= best_every, epoch
    for epoch, row in rows.items():  # an unevaluated epoch holds its running numbers, and nothing evaluated
        if not row["evaluated"]:
            assert row.keys() == {"epoch", "step", "lr", "evaluated", "running_train_acc", "running_train_loss"}
            assert row["running_train_acc"] == reference[epoch]["running_train_acc"]
    final = {k: v for k, v in default.summary["final"].items() if k not in TIMING | PROBE | {"best_test_acc"}}
    assert final == reference[every.summary["fit_epoch"]]
    return default, every


def test_random_labels_fit_at_the_epoch_evaluating_every_epoch_finds(tmp_path):
    default, every = _same_fit_as_every_epoch(tmp_path, dataset="digits", model="mlp-1x512",
                                              corruption="random-labels", train_size=300, lr=0.1)
    assert default.summary["fit_epoch"] > 20  # long enough that most epochs were skipped
    assert default.summary["evaluation"]["passes"] < default.summary["fit_epoch"] / 2
    assert default.summary["evaluation"]["fit_probes"] > 0
    assert every.summary["evaluation"]["fit_probes"] == 0 and every.summary["evaluation"]["eval_every"] == 1
    rows = RunRecord(default.run_dir).read_metrics()
    # near the fit the suspects were all right again, and an error among the others spared the full pass
    past = [r for r in rows if not r["evaluated"] and r.get("fit_probe_wrong") and
            r["fit_probe_checked"] > r["fit_probe_suspects"]]
    assert past, "the probe never went past the suspects"


def test_true_labels_fit_at_the_same_epoch_in_fp32(tmp_path):
    _same_fit_as_every_epoch(tmp_path, dataset="digits", model="mlp-1x512", lr=0.1, precision="fp32")


def test_packed_members_evaluate_as_they_would_alone(tmp_path):
    base = {"dataset": "digits", "model": "mlp-1x512", "train_size": 300, "test_size": 100, "lr": 0.1,
            "corruption": "partial-labels"}
    cfgs = [RunConfig(**base, p=p, out=str(tmp_path / "packed")) for p in (0.0, 0.5, 1.0)]
    every = run_sweep([c.replace(eval_every=1, out=str(tmp_path / "every")) for c in cfgs], progress=False, pack=1)
    alone = run_sweep([c.replace(out=str(tmp_path / "alone")) for c in cfgs], progress=False, pack=1)
    packed = run_sweep(cfgs, progress=False)
    assert all(o.summary["packed"]["members"] == 3 for o in packed)
    assert [o.summary["fit_epoch"] for o in packed] == [o.summary["fit_epoch"] for o in every] \
        == [o.summary["fit_epoch"] for o in alone]
    for a, b in zip(alone, packed, strict=True):  # the same epochs evaluated, the same probes, the same numbers
        rows_a, rows_b = RunRecord(a.run_dir).read_metrics(), RunRecord(b.run_dir).read_metrics()
        assert [r["evaluated"] for r in rows_a] == [r["evaluated"] for r in rows_b]
        assert [(r.get("fit_probe_checked"), r.get("fit_probe_wrong")) for r in rows_a] == \
            [(r.get("fit_probe_checked"), r.get("fit_probe_wrong")) for r in rows_b]
        assert [r.get("train_errors") for r in rows_a] == [r.get("train_errors") for r in rows_b]


def test_the_last_epoch_of_the_budget_is_evaluated_and_is_the_final(tmp_path):
    # lr 1e-9: stuck at chance, so the stuck check's epoch 5 is evaluated too (and says so)
    result = shattering.run(dataset="digits", model="mlp-1x512", corruption="random-labels", epochs=12,
                            until="epochs", lr=1e-9, out=str(tmp_path))
    rows = RunRecord(result.run_dir).read_metrics()
    assert [r["epoch"] for r in rows if r["evaluated"]] == [5, 12]  # the stuck check's epoch and the last
    assert any("stuck at chance" in w for w in result.summary["warnings"])
    assert result.summary["final"]["epoch"] == 12 and result.summary["final"]["evaluated"] is True
    assert "train_acc" not in rows[0] and "test_acc" not in rows[0] and rows[0]["evaluated"] is False
    assert rows[0]["fit_probe_wrong"] > 0  # the probe found an example still wrong: no full pass needed
    assert result.summary["evaluation"]["passes"] == 2 and result.summary["evaluation"]["eval_every"] == 20
    assert "every 20 epoch(s)" in result.summary["evaluation"]["policy"]
    assert 0 < result.summary["evaluation"]["seconds"] == result.summary["eval_seconds"] < result.summary["seconds"]
    # the readers: curves and the table take the evaluated epochs; running=True shows the others, blank
    assert evaluated(rows) == RunRecord(result.run_dir).read_evaluated_metrics() and len(evaluated(rows)) == 2
    curves = load_curves(tmp_path)
    assert list(curves["epoch"]) == [5, 12] and curves["train_acc"].notna().all()
    everything = load_curves(tmp_path, running=True)
    assert len(everything) == 12 and everything["train_acc"].isna().sum() == 10
    assert everything["running_train_acc"].notna().all()
    assert curves_svg(rows) == curves_svg(evaluated(rows))


def test_the_stuck_check_evaluates_only_a_run_whose_own_pass_is_at_chance(tmp_path):
    result = shattering.run(dataset="digits", model="mlp-1x512", epochs=12, until="epochs", out=str(tmp_path))
    rows = RunRecord(result.run_dir).read_metrics()
    assert rows[4]["running_train_acc"] > 0.5  # true labels: far above chance after 5 epochs
    assert [r["epoch"] for r in rows if r["evaluated"]] == [12]
    assert not any("stuck" in w for w in result.summary["warnings"])


def test_the_probe_goes_on_past_the_suspects_counting_only_errors_the_full_pass_counts():
    x, y = torch.ones(40, 1), torch.zeros(40, dtype=torch.long)
    model = TwoLogits(1.0, 1.0005)  # bf16 cannot tell the two logits apart: in doubt, for the full pass to decide
    assert clear_errors_rest(model, x, y, torch.arange(40), 256, "bf16") == (40, 0)
    assert measure(model, {"x_train": x, "y_train": y, "y_train_original": y, "train_changed": y != y,
                           "x_test": x, "y_test": y, "y_test_clean": y}, 256, "bf16")["train_errors"] == 1 * 40
    model = TwoLogits(1.0, 3.0)  # wrong by 2: beyond the bf16 doubt, wrong in the full pass too
    assert clear_errors_rest(model, x, y, torch.arange(40), 256, "bf16") == (16, 16)
    model = TwoLogits(1.0, 1.002)  # fp32: a margin of 2e-3 is clear
    assert clear_errors_rest(model, x, y, torch.arange(40), 256, "fp32") == (16, 16)


def test_a_bad_eval_every_is_refused_in_one_sentence():
    with pytest.raises(ConfigError, match="eval_every.*positive"):
        RunConfig(eval_every=0)


def test_eval_every_enters_the_run_id_only_when_not_the_default():
    """A record evaluated every epoch holds curves a default one does not (Fig. 2b's early stopping, the
    memorization curves need them), so a preset asking for every epoch must not reuse a sparser record; the
    default leaves every existing run id as it was. The precision is pinned: ``auto`` resolves to bf16 or fp32 by
    the CPU, and the resolved precision enters the id (an AVX2-only AMD EPYC computes fp32 ids)."""
    cfg = RunConfig(dataset="digits", model="mlp-1x512", corruption="random-labels", until="fit", precision="bf16")
    assert cfg.run_id() == cfg.replace(eval_every=20).run_id() == "14bc62e7640d"
    assert cfg.replace(eval_every=1).run_id() != cfg.run_id()


class TwoLogits(nn.Module):
    """logits = (x w0, x w1) for 1-D x: w0 and w1 equal in bf16 but not in fp32, so bf16 ties (argmax 0) where
    fp32 says which is larger."""

    def __init__(self, w0: float, w1: float):
        super().__init__()
        self.lin = nn.Linear(1, 2, bias=False)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[w0], [w1]]))

    def forward(self, x):
        return self.lin(x)


def _tensors(label: int) -> dict:
    x = torch.ones(1, 1)
    y = torch.tensor([label])
    return {"x_train": x, "y_train": y, "y_train_original": y, "train_changed": torch.tensor([False]),
            "x_test": x, "y_test": y, "y_test_clean": y}


@pytest.mark.parametrize("w0, w1, label, fp32_errors", [(1.0, 1.001, 1, 0), (1.0, 1.001, 0, 1)])
def test_fit_is_decided_on_fp32_logits(w0, w1, label, fp32_errors):
    model, tensors = TwoLogits(w0, w1), _tensors(label)
    _, bf16_pred = predict(model, tensors["x_train"], tensors["y_train"], 8, "bf16")
    _, fp32_pred = predict(model, tensors["x_train"], tensors["y_train"], 8, "fp32")
    assert int(bf16_pred[0]) == 0 and int(fp32_pred[0]) == 1  # bf16 and fp32 disagree on this example
    metrics = measure(model, tensors, 8, "bf16")  # a bf16 run: its training set decides fit in fp32
    assert metrics["train_errors"] == fp32_errors and metrics["train_fp32_checked"] == 1
    assert (metrics["test_acc"] == 1.0) == (label == 0)  # the test set stays in bf16 (it decides nothing)


def test_the_fit_probe_counts_only_clear_errors_and_stops_at_the_first_chunk_with_one():
    model = TwoLogits(1.0, 1.0005)  # fp32 margin 5e-4 of the label 0: within rounding, not a clear error
    x, y = torch.ones(40, 1), torch.zeros(40, dtype=torch.long)
    assert clear_errors(model, x, y, torch.arange(40), 256) == (40, 0)
    model = TwoLogits(1.0, 2.0)  # every example clearly wrong: the first chunk of 16 decides
    assert clear_errors(model, x, y, torch.arange(40), 256) == (16, 16)
    assert clear_errors(model, x, y, torch.arange(0), 256) == (0, 0)
    assert probe_chunks(100, 32) == [(0, 16), (16, 48), (48, 80), (80, 100)]


def test_an_unevaluated_epoch_is_shown_as_running_numbers():
    text = epoch_text({"running_train_acc": 0.5, "running_train_loss": 1.25})
    assert text == "running loss 1.250 running train 50.0% (not evaluated)"
    assert epoch_text({"train_loss": 0.5, "train_acc": 1.0, "test_acc": 0.25}) == "loss 0.500 train 100.0% test 25.0%"
