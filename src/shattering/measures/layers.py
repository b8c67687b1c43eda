"""The weighted layers of a network as linear maps, for the norm-based complexity measures (Neyshabur, Tomioka and
Srebro 2015, "Norm-based capacity control in neural networks"; Bartlett, Foster and Telgarsky 2017,
"Spectrally-normalized margin bounds for neural networks"; Jiang et al. 2020, "Fantastic generalization measures
and where to find them").

A weighted layer is an ``nn.Linear`` or ``nn.Conv2d`` in eval mode, with the batch normalization that directly
follows it folded in (eval mode: ``y = s * x + t`` per channel, ``s = gamma / sqrt(running_var + eps)``, so the
folded weight is ``s * W`` row by row); a batch normalization that follows no such layer (pre-activation blocks)
is a layer of its own, the diagonal map ``diag(s)``. Biases and batch-norm offsets are not weights (every
measure here is of the weights, as in the papers). Parameter-free modules (ReLU, pooling, dropout, local response
normalization) are taken as they are: 1-Lipschitz, no weights. A parameterized module of another kind (attention,
layer norm, a user's own) makes the layer-wise measures unavailable, with the module named.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.SyncBatchNorm)  # SyncBatchNorm: a run under torchrun
WEIGHTED = (nn.Linear, nn.Conv2d)


class Unmeasurable(Exception):
    """A network a measure cannot be computed for; the message says why (the measure is then None)."""


@dataclass
class Layer:
    """One weighted layer: ``name``, the module (None for a lone batch norm), its weight as the layer uses it
    (batch norm folded in; a lone batch norm's scale as a vector) and, for a convolution, its input shape."""

    name: str
    module: nn.Module | None
    weight: torch.Tensor
    input_shape: tuple[int, ...] | None = None

    @property
    def is_diagonal(self) -> bool:
        return self.module is None

    def matrix(self) -> torch.Tensor:
        """The weight as a matrix (out, in): a convolution's kernel reshaped, a lone batch norm's diag(s)."""
        if self.is_diagonal:
            return torch.diag(self.weight)
        return self.weight.reshape(self.weight.shape[0], -1)


def bn_scale(bn: nn.Module) -> torch.Tensor:
    """The per-channel factor of a batch norm in eval mode: gamma / sqrt(running_var + eps) (gamma = 1 without
    a learned scale)."""
    if bn.running_var is None:
        raise Unmeasurable(f"{type(bn).__name__} without running statistics normalizes by the batch in eval mode "
                           "too, so it is no fixed linear map")
    scale = 1.0 / torch.sqrt(bn.running_var.detach().float() + bn.eps)
    return scale * bn.weight.detach().float() if bn.weight is not None else scale


def weighted_layers(model: nn.Module, input_shape: tuple[int, ...]) -> list[Layer]:
    """The weighted layers of ``model`` in the order its modules are declared (see the module docstring);
    ``input_shape`` (C, H, W) is one example's, for the input shape of every convolution."""
    shapes = _conv_input_shapes(model, input_shape)
    layers: list[Layer] = []
    previous: Layer | None = None  # the weighted layer declared just before, while nothing came in between
    for name, module in model.named_modules():
        if isinstance(module, WEIGHTED):
            previous = Layer(name, module, module.weight.detach().float(), shapes.get(name))
            layers.append(previous)
        elif isinstance(module, BATCH_NORMS):
            scale = bn_scale(module)
            out = previous.weight.shape[0] if previous is not None and not previous.is_diagonal else None
            if out == scale.numel():
                shape = (-1,) + (1,) * (previous.weight.ndim - 1)
                previous.weight = previous.weight * scale.reshape(shape)
            else:
                layers.append(Layer(name, None, scale))
            previous = None
        elif any(True for _ in module.parameters(recurse=False)):
            raise Unmeasurable(f"module {name or 'the network'!r} ({type(module).__name__}) has weights that are "
                               "no linear or convolutional layer")
        elif not list(module.children()) and not isinstance(module, (nn.Identity, nn.Dropout, nn.Flatten)):
            previous = None  # a parameter-free leaf (ReLU, pooling) between a layer and a batch norm
    if not layers:
        raise Unmeasurable("the network has no linear or convolutional layer")
    return layers


def _conv_input_shapes(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """Each convolution's input shape (C, H, W), from one forward pass of a zero example."""
    shapes: dict[str, tuple[int, ...]] = {}
    convs = {m: n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    if not convs:
        return shapes

    def hook(module, args):
        shapes[convs[module]] = tuple(args[0].shape[1:])

    handles = [m.register_forward_pre_hook(hook) for m in convs]
    param = next(model.parameters())
    try:
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=param.device, dtype=param.dtype))
    finally:
        for h in handles:
            h.remove()
    return shapes


def conv_padding(conv: nn.Conv2d) -> tuple[int, int]:
    """The convolution's padding as numbers (``"same"`` is symmetric for the odd kernels it is used with)."""
    if conv.padding_mode != "zeros":
        raise Unmeasurable(f"convolution with {conv.padding_mode!r} padding is no zero-padded linear map")
    if conv.padding == "valid":
        return 0, 0
    if conv.padding == "same":
        totals = [d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size, strict=True)]
        if any(t % 2 for t in totals):
            raise Unmeasurable("convolution with asymmetric 'same' padding (an even kernel)")
        return totals[0] // 2, totals[1] // 2
    return tuple(conv.padding)


def conv_operator_norm(weight: torch.Tensor, conv: nn.Conv2d, input_shape: tuple[int, ...],
                       iterations: int = 50, seed: int = 0) -> float:
    """The spectral norm of the convolution with kernel ``weight`` (``conv``'s stride, padding, dilation and
    groups) as a linear map on inputs of ``input_shape``: power iteration on A^T A, A by ``conv2d`` and A^T by
    ``conv_transpose2d`` (with the output padding that gives back the input shape). Not the norm of the
    reshaped kernel, which is neither a bound nor the operator's."""
    padding = conv_padding(conv)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    v = torch.randn((1, *input_shape), generator=generator).to(weight.device, weight.dtype)
    kwargs = {"stride": conv.stride, "padding": padding, "dilation": conv.dilation, "groups": conv.groups}
    out_size = F.conv2d(v, weight, **kwargs).shape[-2:]
    extra = []
    for i in range(2):  # output_padding: what conv_transpose2d cannot infer of the input size
        full = (out_size[i] - 1) * conv.stride[i] - 2 * padding[i] + conv.dilation[i] * (weight.shape[2 + i] - 1) + 1
        extra.append(input_shape[1 + i] - full)
    sigma = 0.0
    with torch.no_grad():
        v = v / v.norm()
        for _ in range(iterations):
            u = F.conv2d(v, weight, **kwargs)
            sigma = float(u.norm())
            if sigma == 0.0:
                return 0.0
            v = F.conv_transpose2d(u, weight, output_padding=tuple(extra), **kwargs)
            v = v / v.norm()
        sigma = float(F.conv2d(v, weight, **kwargs).norm())
    return sigma


def spectral_norm(layer: Layer, iterations: int = 50) -> float:
    """The layer's spectral norm ||A||_sigma: the largest singular value of a linear layer's matrix, the largest
    |s| of a lone batch norm, the operator norm of a convolution (:func:`conv_operator_norm`)."""
    if layer.is_diagonal:
        return float(layer.weight.abs().max())
    if isinstance(layer.module, nn.Conv2d):
        return conv_operator_norm(layer.weight, layer.module, layer.input_shape, iterations)
    return float(torch.linalg.matrix_norm(layer.weight.double(), ord=2))
