"""The paper's models (Section 2, Appendix A, Table 1) by name, and the paper's way of counting parameters."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..errors import ConfigError
from .alexnet import AlexNetSmall
from .inception import InceptionSmall
from .inception_v3 import InceptionV3
from .mlp import MLP

MODELS: dict[str, Callable[..., nn.Module]] = {
    "inception-small": lambda shape, k, dropout=0.0: InceptionSmall(shape, k, batch_norm=True, dropout=dropout),
    "inception-small-nobn": lambda shape, k, dropout=0.0: InceptionSmall(shape, k, batch_norm=False, dropout=dropout),
    "alexnet-small": lambda shape, k, dropout=0.0: AlexNetSmall(shape, k, dropout=dropout),
    "mlp-1x512": lambda shape, k, dropout=0.0: MLP(shape, k, depth=1, dropout=dropout),
    "mlp-3x512": lambda shape, k, dropout=0.0: MLP(shape, k, depth=3, dropout=dropout),
}

# Models with a minimum input size, for ImageNet (Table 2): kept apart from MODELS, whose models take any input
# shape. Inception V3 is torchvision's (the optional extra ``imagenet``) and needs at least 75x75 pixels.
IMAGENET_MODELS: dict[str, Callable[..., nn.Module]] = {
    "inception-v3": lambda shape, k, dropout=0.0, aux_logits=False: InceptionV3(shape, k, dropout, aux_logits),
}
MODEL_NAMES = (*MODELS, *IMAGENET_MODELS)  # every name build_model accepts

# The paper's initial learning rates (Section 2.1): 0.1 for the Inceptions, 0.01 for AlexNet and the MLPs.
# Inception V3: 0.1, the TensorFlow Inception package's initial rate (the paper gives none for ImageNet) [I].
PAPER_LR = {"inception-small": 0.1, "inception-small-nobn": 0.1, "alexnet-small": 0.01, "mlp-1x512": 0.01,
            "mlp-3x512": 0.01, "inception-v3": 0.1}

# Table 1's parameter counts (28x28x3 input, 10 classes).
PAPER_PARAMS = {"inception-small": 1_649_402, "inception-small-nobn": 1_649_402, "alexnet-small": 1_387_786,
                "mlp-3x512": 1_735_178, "mlp-1x512": 1_209_866}

CONVOLUTIONAL = ("inception-small", "inception-small-nobn", "alexnet-small", "inception-v3")


def check_model(name: str) -> str:
    if name not in MODEL_NAMES:
        raise ConfigError(f"Unknown model {name!r}; known models: {', '.join(MODEL_NAMES)}.")
    return name


def build_model(name: str, input_shape: tuple[int, int, int], num_classes: int, dropout: float = 0.0,
                **options) -> nn.Module:
    """Build model ``name`` for inputs of shape (C, H, W) and ``num_classes`` outputs (PyTorch's default init).
    ``options``: model-specific settings (``aux_logits`` for inception-v3)."""
    check_model(name)
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ConfigError(f"input_shape must be (C, H, W) with positive sizes; got {tuple(input_shape)}.")
    factory = MODELS.get(name) or IMAGENET_MODELS[name]
    return factory(tuple(int(s) for s in input_shape), int(num_classes), dropout=dropout, **options)


def paper_param_count(model: nn.Module) -> int:
    """Count parameters as Table 1 does: every learned weight and bias of the convolutions and linear layers,
    plus batch normalization's learned offset beta (its scale is fixed at 1 and its running statistics are not
    parameters). Equivalently: the trainable parameters of shattering's models."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
