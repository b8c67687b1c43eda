"""Tests for `shattering/train/advice.py`: "did not fit" diagnostics measured from the run, phrased in the syntax
of whatever started it (`shatter run`, `shatter sweep` / `reproduce`, `shattering.run`), and none on a fit; and
the minimum-norm sentence of `shatter minnorm`, true of what it measured."""

from __future__ import annotations

import math

import pytest
import torch

import shattering
from shattering.cli import main
from shattering.config import RunConfig
from shattering.train.advice import advice_lines, diagnose, phrase

LN10 = math.log(10)


def epochs(accs, losses=None, start=1):
    losses = losses or [LN10 * (1 - a) for a in accs]
    return [{"epoch": start + i, "train_acc": a, "train_loss": loss}
            for i, (a, loss) in enumerate(zip(accs, losses, strict=True))]


def cfg(**kw) -> RunConfig:
    return RunConfig(dataset="digits", model="mlp-1x512", corruption="random-labels", **kw).resolved()


# -- what is measured ------------------------------------------------------------------------------------


def test_a_run_that_fit_gets_no_advice():
    assert diagnose(cfg(epochs=50), epochs([0.5, 0.9, 1.0]), 10, "fit") == []


def test_a_tiny_budget_while_accuracy_rises_says_the_budget_was_too_short():
    (f,) = diagnose(cfg(epochs=3), epochs([0.1, 0.15, 0.2]), 10, "not-fit")
    assert "only 3 epochs" in f.fact and "10.0% at epoch 1, 20.0% at epoch 3" in f.fact
    assert f.change == {"epochs": 30}
    (f,) = diagnose(cfg(epochs=1), epochs([0.1]), 10, "not-fit")
    assert f.fact.endswith("(training accuracy 10.0% at epoch 1)")  # one epoch, said once
    assert "too high" not in f.fact and "ln K" not in f.fact  # the loss is near ln K, but after 3 epochs


def test_a_run_still_rising_when_its_budget_ended_says_so():
    accs = [0.1 + 0.01 * i for i in range(50)]
    (f,) = diagnose(cfg(epochs=50), epochs(accs), 10, "not-fit")
    assert "still improving when the 50-epoch budget ended" in f.fact and "59.0%" in f.fact
    assert f.change == {"epochs": 100}
    (f,) = diagnose(cfg(epochs=50, until="epochs"), epochs(accs), 10, "not-fit")
    assert f.change == {"epochs": 100, "until": "fit"}


def test_a_stalled_run_with_a_decayed_learning_rate_says_the_budget():
    c = cfg(epochs=200, lr_decay=0.95)
    (f,) = diagnose(c, epochs([0.6] * 200), 10, "not-fit")
    assert "decayed to" in f.fact and "budget lr0/(1-decay) = 0.2" in f.fact and "100% of its budget" in f.fact
    assert f.change == {"lr_decay": 1.0} and "too high" not in f.fact


def test_the_learning_rate_is_called_too_high_only_when_the_loss_stayed_at_ln_k():
    flat = epochs([0.1] * 40, [LN10 + 0.01] * 40)
    (f,) = diagnose(cfg(epochs=40, lr=1.0), flat, 10, "not-fit")
    assert "not below ln K = 2.303" in f.fact and "may be too high" in f.fact and f.change == {"lr": 0.1}
    stalled_lower = epochs([0.7] * 40, [1.0] * 40)  # stalled, but well below ln K
    found = diagnose(cfg(epochs=40, lr=1.0), stalled_lower, 10, "not-fit")
    assert not any("too high" in x.fact or "ln K" in x.fact for x in found)
    assert "stopped rising" in found[0].fact and found[0].change == {}


def test_regularizers_and_divergence_are_named_with_their_values():
    found = diagnose(cfg(epochs=40, weight_decay=5e-4, random_crop=True), epochs([0.7] * 40, [1.0] * 40), 10,
                     "not-fit")
    assert [x.change for x in found] == [{"random_crop": False}, {"weight_decay": 0.0}]
    assert "weight decay is on (0.0005)" in found[1].fact
    (f,) = diagnose(cfg(epochs=40, lr=10.0), epochs([0.1], [math.nan]), 10, "diverged")
    assert "NaN or infinite at epoch 1" in f.fact and f.change == {"lr": 1.0}


def test_a_loss_far_above_chance_says_the_learning_rate_overshoots_not_that_the_budget_was_short():
    (f,) = diagnose(cfg(epochs=2, lr=1e6), epochs([0.1, 0.1], [1e20, 1.4e23]), 10, "not-fit", first_loss=2.31)
    assert "the training loss is 1.4e+23 at epoch 2" in f.fact and "the learning rate 1e+06 is too high" in f.fact
    assert "too few" not in f.fact and f.change == {"lr": 1e4}


def test_a_model_whose_output_is_not_finite_before_any_step_is_not_told_to_lower_the_learning_rate():
    (f,) = diagnose(cfg(epochs=40), epochs([0.1], [math.nan]), 10, "diverged", first_loss=math.nan)
    assert "before any update, was nan" in f.fact and "no learning rate can help" in f.fact and f.change == {}


def test_a_nan_model_and_a_huge_learning_rate_end_with_the_right_advice(tmp_path, monkeypatch, capsys):
    class NaNNet(torch.nn.Module):
        def __init__(self, input_shape, num_classes):
            super().__init__()
            self.fc = torch.nn.Linear(64, num_classes)

        def forward(self, x):
            return self.fc(x.flatten(1)) * math.nan

    result = shattering.run(model=NaNNet, dataset="digits", train_size=60, test_size=30, epochs=5,
                            out=str(tmp_path))
    assert result.status == "diverged" and "no learning rate can help" in result.message
    assert "Lower the learning rate" not in result.message and "lr=" not in " ".join(result.advice)
    assert main(["run", "--dataset", "digits", "--train-size", "60", "--test-size", "30", "--lr", "1e6",
                 "--epochs", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert ("is too high" in out or "NaN or infinite" in out) and "too few epochs" not in out


# -- in the syntax of what was used ----------------------------------------------------------------------


def test_a_change_is_phrased_for_the_command_the_config_file_or_python():
    change = {"lr_decay": 1.0, "epochs": 400, "random_crop": False}
    assert phrase(change, "flags") == "--lr-decay 1.0 --epochs 400 --no-random-crop"
    assert phrase(change, "python") == "lr_decay=1.0, epochs=400, random_crop=False"
    assert phrase(change, "config") == "`lr_decay = 1.0, epochs = 400, random_crop = false` in a --config FILE.toml"
    words = phrase(change, "config", {"epochs": "scale", "random_crop": "grid"})
    assert words == "`lr_decay = 1.0` in a --config FILE.toml or a larger --scale (the scale sets epochs)"
    assert advice_lines([{"fact": "f", "change": {"random_crop": False}}], "config", {"random_crop": "grid"}) == [
        "f (set by the preset's grid: part of what it measures)"]
    with pytest.raises(ValueError):
        phrase(change, "yaml")


def test_shatter_run_advises_in_its_flags_and_python_in_keywords(tmp_path, capsys):
    argv = ["run", "--dataset", "digits", "--train-size", "60", "--test-size", "30", "--corruption",
            "random-labels", "--epochs", "3", "--out", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    (advice,) = [line for line in out.splitlines() if line.startswith("  advice:")]
    assert "only 3 epochs" in advice and advice.endswith("(try --epochs 30)")
    assert "Measured: the budget ended after only 3 epochs" in out and "Usual causes" not in out
    result = shattering.run(dataset="digits", train_size=60, test_size=30, corruption="random-labels", epochs=3,
                            out=str(tmp_path))
    assert result.advice == [advice.split("advice:", 1)[1].strip().replace("--epochs 30", "epochs=30")]


def test_sweep_advice_names_the_scale_not_an_option_it_lacks(tmp_path, capsys):
    assert main(["sweep", "table4", "--scale", "smoke", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "runs did not fit; what their numbers say:" in out
    assert "--epochs" not in out and "a larger --scale (the scale sets epochs" in out


def test_a_run_that_fit_has_no_advice_and_no_stuck_warning(tmp_path, capsys):
    result = shattering.run(dataset="digits", model="mlp-1x512", corruption="random-labels", train_size=20,
                            test_size=20, epochs=2000, lr=0.003, out=str(tmp_path), progress=True)
    assert "stuck at chance" in capsys.readouterr().err  # it was at chance after 5 epochs, and said so then
    assert result.fit and result.summary["advice"] == [] and result.advice == []
    assert result.summary["warnings"] == [] and "Measured" not in result.message


# -- the minimum-norm sentence ---------------------------------------------------------------------------


def test_minnorm_states_what_it_measured(capsys):
    assert main(["minnorm", "--dataset", "digits", "--train-size", "50", "--corruption", "random-labels",
                 "--epochs", "50"]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if "random start:" in x]
    assert "interpolates too" not in line and "does not interpolate yet" in line
    norm, star = (float(x) for x in (line.split("with norm ")[1].split(",")[0], line.rsplit("= ", 1)[1]))
    assert norm < star and "smaller than ||w*||" in line


# -- what a run prints -------------------------------------------------------------------------------------


def test_a_run_that_fit_with_defaults_prints_a_short_summary_saying_why_its_schedule(tmp_path, capsys):
    assert main(["run", "--dataset", "digits", "--corruption", "random-labels", "--quiet", "--out",
                 str(tmp_path)]) == 0
    out = capsys.readouterr().out
    # about 600 characters with the record where the README's command puts it (runs/...), not in a tmp folder
    assert len(out.replace(str(tmp_path), "runs")) <= 600, out
    (schedule,) = [line for line in out.splitlines() if line.startswith("  schedule:")]
    assert "the default for mlp-1x512 on digits: the paper's x0.95 per epoch stalls on small data" in schedule


def test_a_schedule_the_user_set_is_not_explained_as_a_default():
    from shattering.train.schedule import describe_schedule

    text = describe_schedule(cfg(lr=0.05, lr_decay=0.9, epochs=10))["text"]
    assert text.startswith("sgd (momentum 0.9), lr 0.05 x0.9 per epoch") and "default" not in text
    assert text.endswith("(lr, lr_decay, epochs set)") and len(text) < 160
    text = describe_schedule(cfg(lr=0.05))["text"]
    assert "the default decay for mlp-1x512 on digits" in text and text.endswith("(lr set)")
    assert describe_schedule(cfg(lr=0.05, lr_decay=0.9))["why"] is None


def test_a_user_models_schedule_does_not_cite_measurements_of_the_papers_models():
    from shattering.train.schedule import describe_schedule

    class Net(torch.nn.Module):
        def __init__(self, input_shape, num_classes):
            super().__init__()
            self.fc = torch.nn.Linear(64, num_classes)

        def forward(self, x):
            return self.fc(x.flatten(1))

    text = describe_schedule(RunConfig(model=Net, dataset="digits").resolved())["text"]
    assert "not measured on this one" in text and "measured on digits" not in text
