"""Inception V3 (Szegedy et al., "Rethinking the Inception Architecture for Computer Vision", CVPR 2016), the
ImageNet model of Zhang et al. (ICLR 2017), Table 2 and Figure 2a; built by torchvision (the optional extra
``imagenet``: ``pip install 'shattering[imagenet]'``).

torchvision's ``inception_v3(weights=None)``: random initialization (truncated normal, as the paper's
TensorFlow model), ``transform_input=False`` (shattering's preprocessing is its own), dropout before the
classifier at the run's ``dropout`` (Table 2 toggles it; the TF model's keep probability 0.8 is dropout 0.2
[I]). The auxiliary classifier is off unless ``aux_logits``: then training returns ``(logits, aux_logits)``
and the loop adds 0.4 x the auxiliary loss (the weight of the TF and torchvision recipes [I]); evaluation
uses the main logits only.

The smallest input (the paper: 299 x 299) depends on that option. The stem and the reductions take a side h to
h1 = (h - 3) // 2 + 1, h2 = h1 - 2, h3 = (h2 - 3) // 2 + 1, h4 = h3 - 2, h5 = (h4 - 3) // 2 + 1 (Mixed_5*) and
h6 = (h5 - 3) // 2 + 1 (Mixed_6*, 17 at 299). The main path needs h6 >= 1 after one more 3x3 stride-2
reduction (h >= 75); the auxiliary classifier pools Mixed_6e's map 5x5 with stride 3 and then applies a 5x5
convolution, so it needs (h6 - 5) // 3 + 1 >= 5, h6 >= 17: h >= 299.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError

MIN_SIZE = 75  # the smallest input side whose feature map survives Inception V3's strides (module docstring)
MIN_SIZE_AUX = 299  # ... with the auxiliary classifier, whose 5x5 pooling and 5x5 convolution need more


def min_side(aux_logits: bool = False) -> int:
    """The smallest image side Inception V3 takes, with or without its auxiliary classifier."""
    return MIN_SIZE_AUX if aux_logits else MIN_SIZE


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
    """torchvision's Inception V3 for (3, H, W) inputs with H, W >= 75 (>= 299 with ``aux_logits``) and
    ``num_classes`` outputs."""

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, dropout: float = 0.0,
                 aux_logits: bool = False):
        super().__init__()
        c, h, w = input_shape
        side = min_side(aux_logits)
        if c != 3 or min(h, w) < side:
            raise ConfigError(f"inception-v3 takes RGB images of at least {side}x{side} pixels"
                              + (" with its auxiliary classifier (--aux-logits; without it 75x75)" if aux_logits else
                                 f" ({MIN_SIZE_AUX}x{MIN_SIZE_AUX} with --aux-logits)")
                              + f" (the paper: 299x299; set --image-size); got {c}x{h}x{w}.")
        tv = import_torchvision()
        self.net = tv.models.inception_v3(weights=None, aux_logits=aux_logits, transform_input=False,
                                          init_weights=True, num_classes=num_classes, dropout=dropout)
        self.aux_logits = aux_logits

    def forward(self, x: torch.Tensor):
        out = self.net(x)
        if isinstance(out, tuple):  # InceptionOutputs(logits, aux_logits): training with the auxiliary head
            return out.logits, out.aux_logits
        return out
