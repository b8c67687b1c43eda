"""The paper's models (Section 2, Appendix A, Table 1) by name, and the paper's way of counting parameters.

Each model is one :class:`~shattering.models.catalogue.ModelInfo` in :data:`MODELS`: its factory, the paper's
learning rate, Table 1's parameter count and what the training loop asks of it.
"""

from __future__ import annotations

from torch import nn

from ..errors import ConfigError
from ..validation import must_be
from .alexnet import AlexNetSmall
from .catalogue import MODELS, ModelInfo, model_info, model_names, register_model
from .inception import InceptionSmall
from .inception_v3 import InceptionV3
from .mlp import MLP

__all__ = ["MODELS", "ModelInfo", "build_model", "check_model", "model_info", "model_names", "paper_param_count",
           "register_model"]

# The paper's initial learning rates (Section 2.1): 0.1 for the Inceptions, 0.01 for AlexNet and the MLPs; its
# parameter counts (Table 1, 28x28x3 input, 10 classes). Inception V3 (ImageNet, Table 2) is torchvision's (the
# optional extra ``imagenet``), needs at least 75x75 pixels, and starts at 0.1, the TensorFlow Inception
# package's initial rate (the paper gives none for ImageNet) [I].
register_model("inception-small", lambda shape, k, dropout=0.0: InceptionSmall(shape, k, batch_norm=True,
                                                                                dropout=dropout),
               lr=0.1, paper_params=1_649_402, convolutional=True, description="small Inception (Fig. 3)")
register_model("inception-small-nobn", lambda shape, k, dropout=0.0: InceptionSmall(shape, k, batch_norm=False,
                                                                                     dropout=dropout),
               lr=0.1, paper_params=1_649_402, convolutional=True, description="small Inception without BN")
register_model("alexnet-small", lambda shape, k, dropout=0.0: AlexNetSmall(shape, k, dropout=dropout),
               lr=0.01, paper_params=1_387_786, convolutional=True, description="small AlexNet")
register_model("mlp-1x512", lambda shape, k, dropout=0.0: MLP(shape, k, depth=1, dropout=dropout),
               lr=0.01, paper_params=1_209_866, packable=True, description="MLP, one hidden layer of 512")
register_model("mlp-3x512", lambda shape, k, dropout=0.0: MLP(shape, k, depth=3, dropout=dropout),
               lr=0.01, paper_params=1_735_178, packable=True, description="MLP, three hidden layers of 512")
register_model("inception-v3", lambda shape, k, dropout=0.0, aux_logits=False: InceptionV3(shape, k, dropout,
                                                                                         aux_logits),
               lr=0.1, convolutional=True, min_side=75, needs="imagenet", description="Inception V3 (ImageNet)")


def check_model(name: str) -> str:
    return model_info(name).name


def build_model(name: str, input_shape: tuple[int, int, int], num_classes: int, dropout: float = 0.0,
                **options) -> nn.Module:
    """Build model ``name`` for inputs of shape (C, H, W) and ``num_classes`` outputs (PyTorch's default init).
    ``options``: model-specific settings (``aux_logits`` for inception-v3)."""
    info = model_info(name)
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ConfigError(must_be("input_shape", "(C, H, W) with positive sizes", tuple(input_shape), of="build_model"))
    return info.factory(tuple(int(s) for s in input_shape), int(num_classes), dropout=dropout, **options)


def paper_param_count(model: nn.Module) -> int:
    """Count parameters as Table 1 does: every learned weight and bias of the convolutions and linear layers,
    plus batch normalization's learned offset beta (its scale is fixed at 1 and its running statistics are not
    parameters). Equivalently: the trainable parameters of shattering's models."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
