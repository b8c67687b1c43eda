"""Tests for `shattering/models`: Table 1's parameter counts and any input shape."""

from __future__ import annotations

import pytest
import torch

from shattering.models import MODELS, PAPER_PARAMS, build_model, paper_param_count


@pytest.mark.parametrize("name,count", [("inception-small", 1_649_402), ("inception-small-nobn", 1_649_402),
                                        ("alexnet-small", 1_387_786), ("mlp-3x512", 1_735_178),
                                        ("mlp-1x512", 1_209_866)])
def test_table1_parameter_counts(name, count):
    assert paper_param_count(build_model(name, (3, 28, 28), 10)) == count == PAPER_PARAMS[name]


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (1, 28, 28), (1, 1, 40), (2, 9, 13)])
def test_any_input_shape_and_class_count(name, shape):
    model = build_model(name, shape, 7).eval()
    assert model(torch.randn(3, *shape)).shape == (3, 7)


def test_batch_norm_has_offset_but_fixed_scale():
    model = build_model("inception-small", (3, 28, 28), 10)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 19 and sum(bn.num_features for bn in bns) == 1712  # spec section 3.1
    assert all(not bn.weight.requires_grad and bn.bias.requires_grad for bn in bns)
    nobn = build_model("inception-small-nobn", (3, 28, 28), 10)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in nobn.modules())


def test_dropout_slot():
    model = build_model("mlp-1x512", (1, 8, 8), 10, dropout=0.5)
    assert any(isinstance(m, torch.nn.Dropout) for m in model.modules())
