"""Inception V3 (Szegedy et al., "Rethinking the Inception Architecture for Computer Vision", CVPR 2016), the
ImageNet model of Zhang et al. (ICLR 2017), Table 2 and Figure 2a; built by torchvision (the optional extra
``imagenet``: ``pip install 'shattering[imagenet]'``).

torchvision's ``inception_v3(weights=None)``: random initialization (truncated normal, as the paper's
TensorFlow model), ``transform_input=False`` (shattering's preprocessing is its own), dropout before the
classifier at the run's ``dropout`` (Table 2 toggles it; the TF model's keep probability 0.8 is dropout 0.2
[I]). The auxiliary classifier is off unless ``aux_logits``: then training returns ``(logits, aux_logits)``
and the loop adds 0.4 x the auxiliary loss (the weight of the TF and torchvision recipes [I]); evaluation
uses the main logits only. Inputs must be at least 75 x 75 pixels (the paper: 299 x 299).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError

MIN_SIZE = 75  # the smallest input whose feature map survives Inception V3's strides


def import_torchvision():
    """torchvision, or one sentence saying why not and how to install it."""
    try:
        import torchvision  # an optional extra (shattering[imagenet]): imported only when inception-v3 is built
    except ImportError:
        raise ConfigError("Model inception-v3 needs torchvision, which is not installed; install it with "
                          "`pip install 'shattering[imagenet]'` (the torchvision build matching your torch "
                          f"{torch.__version__}).") from None
    except Exception as exc:  # an installed torchvision built for another torch fails with RuntimeError
        raise ConfigError(f"Model inception-v3 needs torchvision, which is installed but does not import beside "
                          f"torch {torch.__version__} ({type(exc).__name__}: {exc}); install the torchvision build "
                          "that matches this torch.") from None
    return torchvision


class InceptionV3(nn.Module):
    """torchvision's Inception V3 for (3, H, W) inputs with H, W >= 75 and ``num_classes`` outputs."""

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, dropout: float = 0.0,
                 aux_logits: bool = False):
        super().__init__()
        c, h, w = input_shape
        if c != 3 or min(h, w) < MIN_SIZE:
            raise ConfigError(f"inception-v3 takes RGB images of at least {MIN_SIZE}x{MIN_SIZE} pixels (the paper: "
                              f"299x299; set --image-size); got {c}x{h}x{w}.")
        tv = import_torchvision()
        self.net = tv.models.inception_v3(weights=None, aux_logits=aux_logits, transform_input=False,
                                          init_weights=True, num_classes=num_classes, dropout=dropout)
        self.aux_logits = aux_logits

    def forward(self, x: torch.Tensor):
        out = self.net(x)
        if isinstance(out, tuple):  # InceptionOutputs(logits, aux_logits): training with the auxiliary head
            return out.logits, out.aux_logits
        return out
