"""Tests for `shattering/models`: Table 1's parameter counts and any input shape."""

from __future__ import annotations

import pytest
import torch

from shattering.errors import ConfigError
from shattering.models import MODELS, build_model, is_builtin, model_info, paper_param_count, register_model


@pytest.mark.parametrize("name,count", [("inception-small", 1_649_402), ("inception-small-nobn", 1_649_402),
                                        ("alexnet-small", 1_387_786), ("mlp-3x512", 1_735_178),
                                        ("mlp-1x512", 1_209_866)])
def test_table1_parameter_counts(name, count):
    assert paper_param_count(build_model(name, (3, 28, 28), 10)) == count == model_info(name).paper_params


@pytest.mark.parametrize("name", [m.name for m in MODELS.values() if m.min_side == 1 and m.paper_params])
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (1, 28, 28), (1, 1, 40), (2, 9, 13)])
def test_any_input_shape_and_class_count(name, shape):
    model = build_model(name, shape, 7).eval()
    assert model(torch.randn(3, *shape)).shape == (3, 7)


def test_batch_norm_has_offset_but_fixed_scale():
    model = build_model("inception-small", (3, 28, 28), 10)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 19 and sum(bn.num_features for bn in bns) == 1712  # Inception (small), Appendix A
    assert all(not bn.weight.requires_grad and bn.bias.requires_grad for bn in bns)
    nobn = build_model("inception-small-nobn", (3, 28, 28), 10)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in nobn.modules())


def test_dropout_slot():
    model = build_model("mlp-1x512", (1, 8, 8), 10, dropout=0.5)
    assert any(isinstance(m, torch.nn.Dropout) for m in model.modules())


def test_one_catalogue_entry_per_model():
    """Each model's facts live in one ModelInfo: the paper's learning rate (Section 2.1), Table 1's count."""
    builtin = [n for n in MODELS if is_builtin(n)]  # models a test registered are not shattering's
    assert {n: MODELS[n].lr for n in builtin} == {"inception-small": 0.1, "inception-small-nobn": 0.1,
                                                  "alexnet-small": 0.01, "mlp-1x512": 0.01, "mlp-3x512": 0.01,
                                                  "mlp-saxe": 0.01, "inception-v3": 0.1, "resnet18": 0.1,
                                                  "wrn-28-1": 0.1, "wrn-28-10": 0.1, "vit-tiny": 0.01}
    assert [n for n in builtin if MODELS[n].packable] == ["mlp-1x512", "mlp-3x512", "mlp-saxe"]
    assert [n for n in builtin if MODELS[n].convolutional] == ["inception-small", "inception-small-nobn",
                                                               "alexnet-small", "inception-v3", "resnet18",
                                                               "wrn-28-1", "wrn-28-10"]
    assert model_info("inception-v3").min_side == 75 and model_info("inception-v3").paper_params is None
    assert [n for n in builtin if MODELS[n].paper_params] == ["inception-small", "inception-small-nobn",
                                                              "alexnet-small", "mlp-1x512", "mlp-3x512"]


def test_register_model_refuses_a_taken_name_and_unknown_names_get_one_sentence():
    with pytest.raises(ConfigError, match="registered already"):
        register_model("mlp-1x512", lambda shape, k, dropout=0.0: torch.nn.Linear(1, k), lr=0.1)
    with pytest.raises(ConfigError, match="Unknown model 'nope'; known models: inception-small"):
        model_info("nope")
