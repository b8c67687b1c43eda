"""Tests for `shattering/config.py`: defaults, validation, TOML, the canonical run id."""

from __future__ import annotations

import pytest

from shattering.config import RunConfig
from shattering.errors import ConfigError


def test_defaults_resolve_from_model_and_dataset():
    r = RunConfig(dataset="cifar10", model="inception-small").resolved()
    assert (r.lr, r.lr_decay, r.crop, r.whitening, r.p) == (0.1, 0.95, 28, "per-image", 0.0)
    r = RunConfig(dataset="digits", model="mlp-1x512", corruption="random-labels").resolved()
    assert (r.lr, r.lr_decay, r.crop, r.p) == (0.01, 1.0, 0, 1.0)


def test_run_id_ignores_paths_and_explicit_defaults():
    a = RunConfig(dataset="digits")
    assert a.run_id() == RunConfig(dataset="digits", out="elsewhere", device="cpu", lr=0.01).run_id()
    assert a.run_id() != RunConfig(dataset="digits", seed=1).run_id()
    assert a.run_name().startswith("digits_mlp-1x512_true-labels_")


@pytest.mark.parametrize("kwargs,match", [
    ({"lr": -0.1}, "run setting 'lr' \\(--lr\\) must be positive"),
    ({"model": "resnet"}, "run setting 'model' \\(--model\\) must be one of"),
    ({"batch_size": 0}, "run setting 'batch_size' \\(--batch-size\\) must be positive"),
    ({"epochs": 2.5}, "run setting 'epochs' \\(--epochs\\) must be an integer"),
    ({"random_crop": "False"}, "run setting 'random_crop' \\(--random-crop\\) must be true or false"),
    ({"corruption": "partial-labels", "p": 1.5}, r"\[0, 1\]"),
    ({"lr_decay": 1.5}, r"run setting 'lr_decay' \(--lr-decay\) must be in \(0, 1\]"),
    ({"momentum": float("nan")}, "finite"),
])
def test_bad_values_are_refused_with_one_sentence(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        RunConfig(**kwargs)


def test_several_problems_are_reported_together():
    with pytest.raises(ConfigError) as info:
        RunConfig(lr=-1.0, batch_size=-3)
    assert "'lr'" in str(info.value) and "'batch_size'" in str(info.value)


def test_toml(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('dataset = "digits"\nmodel = "mlp-3x512"\ncorruption = "partial-labels"\np = 0.4\n'
                    'weight-decay = 0.0005\n')
    cfg = RunConfig.from_toml(path)
    assert (cfg.model, cfg.p, cfg.weight_decay) == ("mlp-3x512", 0.4, 0.0005)
    path.write_text('dataset = "digits"\nlearning_rate = 0.1\n')
    with pytest.raises(ConfigError, match="Unknown key.*learning_rate"):
        RunConfig.from_toml(path)
    path.write_text('dataset = "digits\n')
    with pytest.raises(ConfigError, match="not valid TOML"):
        RunConfig.from_toml(path)


@pytest.mark.parametrize("kwargs, match", [
    ({"quiet": True}, r"run\(\) has no argument 'quiet' \(did you mean 'progress=False, the default'\?\)"),
    ({"epoch": 3}, r"no argument 'epoch' \(did you mean 'epochs'\?\); it takes progress, .* train_size"),
    ({"progres": False}, r"did you mean 'progress'"),
])
def test_run_refuses_an_argument_it_does_not_take_in_one_sentence(kwargs, match, tmp_path):
    from shattering import run

    with pytest.raises(ConfigError, match=match):
        run(out=str(tmp_path), **kwargs)
    assert not any(tmp_path.iterdir())  # nothing started
