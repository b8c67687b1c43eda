"""The paper's models (Section 2, Appendix A, Table 1) by name, and the paper's way of counting parameters.

Each model is one :class:`~shattering.models.catalogue.ModelInfo` in :data:`MODELS`: its factory, the paper's
learning rate, Table 1's parameter count and what the training loop asks of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports, lazy_import
from . import build
from .build import (
    architecture_digest,
    build_model,
    check_output,
    dropout_refused,
    is_builtin,
    paper_param_count,
    takes_keyword,
)
from .catalogue import (
    MODELS,
    USER_LR,
    ModelInfo,
    is_import_path,
    model_info,
    model_name_for,
    model_names,
    register_model,
)

__all__ = ["MODELS", "USER_LR", "ModelInfo", "architecture_digest", "build_model", "check_model", "check_output",
           "dropout_refused", "takes_keyword",
           "is_builtin", "is_import_path", "model_info", "model_name_for", "model_names", "paper_param_count",
           "register_model"]

# The networks' modules, imported when a model is built (torch with them): the catalogue is what the config and
# `shatter --help` read, without torch. Their classes are this package's too, imported when first used.
_alexnet = lazy_import(f"{__name__}.alexnet")
_inception = lazy_import(f"{__name__}.inception")
_inception_v3 = lazy_import(f"{__name__}.inception_v3")
_mlp = lazy_import(f"{__name__}.mlp")
_resnet = lazy_import(f"{__name__}.resnet")
_vit = lazy_import(f"{__name__}.vit")
_wide_resnet = lazy_import(f"{__name__}.wide_resnet")
lazy_exports(__name__, {".alexnet": ("AlexNetSmall",), ".inception": ("InceptionSmall",),
                        ".inception_v3": ("InceptionV3",), ".mlp": ("MLP",), ".resnet": ("ResNet",),
                        ".vit": ("VisionTransformer",), ".wide_resnet": ("WideResNet",)})
if TYPE_CHECKING:
    from .alexnet import AlexNetSmall as AlexNetSmall
    from .inception import InceptionSmall as InceptionSmall
    from .inception_v3 import InceptionV3 as InceptionV3
    from .mlp import MLP as MLP
    from .resnet import ResNet as ResNet
    from .vit import VisionTransformer as VisionTransformer
    from .wide_resnet import WideResNet as WideResNet

# The paper's initial learning rates (Section 2.1): 0.1 for the Inceptions, 0.01 for AlexNet and the MLPs; its
# parameter counts (Table 1, 28x28x3 input, 10 classes). Inception V3 (ImageNet, Table 2) is torchvision's (the
# optional extra ``imagenet``), needs at least 75x75 pixels, and starts at 0.1, the TensorFlow Inception
# package's initial rate (the paper gives none for ImageNet) [I].
register_model("inception-small",
               lambda shape, k, dropout=0.0: _inception.InceptionSmall(shape, k, batch_norm=True, dropout=dropout),
               lr=0.1, paper_params=1_649_402, convolutional=True, description="small Inception (Fig. 3)")
register_model("inception-small-nobn",
               lambda shape, k, dropout=0.0: _inception.InceptionSmall(shape, k, batch_norm=False, dropout=dropout),
               lr=0.1, paper_params=1_649_402, convolutional=True, description="small Inception without BN")
register_model("alexnet-small", lambda shape, k, dropout=0.0: _alexnet.AlexNetSmall(shape, k, dropout=dropout),
               lr=0.01, paper_params=1_387_786, convolutional=True, description="small AlexNet")
# The MLPs take `--model-arg activation=tanh` (Saxe et al.'s switch for the information plane; not the paper's).
register_model("mlp-1x512", lambda shape, k, dropout=0.0, activation="relu": _mlp.MLP(
    shape, k, depth=1, dropout=dropout, activation=activation),
               lr=0.01, paper_params=1_209_866, packable=True, description="MLP, one hidden layer of 512")
register_model("mlp-3x512", lambda shape, k, dropout=0.0, activation="relu": _mlp.MLP(
    shape, k, depth=3, dropout=dropout, activation=activation),
               lr=0.01, paper_params=1_735_178, packable=True, description="MLP, three hidden layers of 512")
# Saxe et al.'s information-plane network (ICLR 2018: MNIST, 1024-20-20-20, tanh or ReLU): narrow layers whose
# binned information does not sit at its ceiling from the start. Not the paper's model.
register_model("mlp-saxe", lambda shape, k, dropout=0.0, activation="relu": _mlp.MLP(
    shape, k, widths=(1024, 20, 20, 20), dropout=dropout, activation=activation),
               lr=0.01, packable=True, description="MLP 1024-20-20-20 (Saxe et al. 2018; not the paper's)")
register_model("inception-v3",
               lambda shape, k, dropout=0.0, aux_logits=False: _inception_v3.InceptionV3(shape, k, dropout, aux_logits),
               lr=0.1, convolutional=True, min_side=75, needs="imagenet", description="Inception V3 (ImageNet)")

# Today's networks (not in the paper), for randomization tests on what researchers train now. Learning rates
# are the usual SGD starting points for them on CIFAR (0.1 for the residual networks with batch norm; 0.01 for
# the ViT, which has no warm-up here); parameter counts are at 32x32x3 and 10 classes (tests/test_models.py).
register_model("resnet18", lambda shape, k, dropout=0.0: _resnet.ResNet(shape, k, dropout=dropout),
               lr=0.1, convolutional=True, description="ResNet-18, CIFAR variant (3x3 stem, no max-pool), 11.2M")
register_model("wrn-28-1",
               lambda shape, k, dropout=0.0: _wide_resnet.WideResNet(shape, k, depth=28, width=1, dropout=dropout),
               lr=0.1, convolutional=True, description="Wide ResNet 28-1, 369,498 parameters")
register_model("wrn-28-10",
               lambda shape, k, dropout=0.0: _wide_resnet.WideResNet(shape, k, depth=28, width=10, dropout=dropout),
               lr=0.1, convolutional=True, description="Wide ResNet 28-10, 36.5M parameters")
register_model("vit-tiny", lambda shape, k, dropout=0.0: _vit.VisionTransformer(shape, k, dropout=dropout),
               lr=0.01, description="ViT, patch 4, width 192, depth 6, 3 heads, MLP 384; 1.8M parameters")


def check_model(name: str) -> str:
    return model_info(name).name


build.BUILTIN = frozenset(MODELS)  # everything registered above; a user's register_model comes later
