"""The paper's models (Section 2, Appendix A, Table 1) by name, and the paper's way of counting parameters."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..errors import ConfigError
from .alexnet import AlexNetSmall
from .inception import InceptionSmall
from .mlp import MLP

MODELS: dict[str, Callable[..., nn.Module]] = {
    "inception-small": lambda shape, k, dropout=0.0: InceptionSmall(shape, k, batch_norm=True, dropout=dropout),
    "inception-small-nobn": lambda shape, k, dropout=0.0: InceptionSmall(shape, k, batch_norm=False, dropout=dropout),
    "alexnet-small": lambda shape, k, dropout=0.0: AlexNetSmall(shape, k, dropout=dropout),
    "mlp-1x512": lambda shape, k, dropout=0.0: MLP(shape, k, depth=1, dropout=dropout),
    "mlp-3x512": lambda shape, k, dropout=0.0: MLP(shape, k, depth=3, dropout=dropout),
}

# The paper's initial learning rates (Section 2.1): 0.1 for the Inceptions, 0.01 for AlexNet and the MLPs.
PAPER_LR = {"inception-small": 0.1, "inception-small-nobn": 0.1, "alexnet-small": 0.01, "mlp-1x512": 0.01,
            "mlp-3x512": 0.01}

# Table 1's parameter counts (28x28x3 input, 10 classes).
PAPER_PARAMS = {"inception-small": 1_649_402, "inception-small-nobn": 1_649_402, "alexnet-small": 1_387_786,
                "mlp-3x512": 1_735_178, "mlp-1x512": 1_209_866}

CONVOLUTIONAL = ("inception-small", "inception-small-nobn", "alexnet-small")


def check_model(name: str) -> str:
    if name not in MODELS:
        raise ConfigError(f"Unknown model {name!r}; known models: {', '.join(MODELS)}.")
    return name


def build_model(name: str, input_shape: tuple[int, int, int], num_classes: int, dropout: float = 0.0) -> nn.Module:
    """Build model ``name`` for inputs of shape (C, H, W) and ``num_classes`` outputs (PyTorch's default init)."""
    check_model(name)
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ConfigError(f"input_shape must be (C, H, W) with positive sizes; got {tuple(input_shape)}.")
    return MODELS[name](tuple(int(s) for s in input_shape), int(num_classes), dropout=dropout)


def paper_param_count(model: nn.Module) -> int:
    """Count parameters as Table 1 does: every learned weight and bias of the convolutions and linear layers,
    plus batch normalization's learned offset beta (its scale is fixed at 1 and its running statistics are not
    parameters). Equivalently: the trainable parameters of shattering's models."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
