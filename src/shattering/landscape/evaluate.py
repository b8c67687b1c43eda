"""The loss and accuracy of one network at many points of its weight space, evaluated together.

At each point theta_p the mean cross-entropy L(theta_p) = (1/n) sum_i CE(f(x_i; theta_p), y_i) and the accuracy
on fixed examples, in eval mode (batch norm's running statistics, no dropout). The reference implementation of Li
et al. (2018) sets the weights and evaluates one point at a time; here a chunk of points goes through the network
at once: ``torch.func.functional_call`` under ``torch.vmap`` over the stacked weights, every data batch shared by
the chunk (a convolutional network a point at a time in channels_last: ``vmap`` of a convolution measured slower
on a CPU). A point may carry buffers too (batch norm's running statistics, interpolated between two solutions);
otherwise the network's own buffers serve every point.

Where every point is an affine combination of a few (theta_p = base + sum_j c_pj d_j: a line, a plane), the first
weighted layer (the first module with parameters, when its input does not depend on any parameter) is linear in
its weights: its output at theta_p is z_0 + sum_j c_pj z_j, with z_0 the layer at the base and z_j its linear part
at d_j. :func:`evaluate_affine` computes those few outputs once per data batch and replays each point's
combination in place of the layer, which saves the first layer's cost at every point but m + 1 (most of an MLP's
cost). It is checked against the direct evaluation at two points before it is used (a network whose input also
reaches later layers, a skip connection from the input, fails the check and is evaluated directly).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from .directions import Point

POINT_BYTES = 1 << 28  # the stacked weights of a chunk of points: at most 256 MiB
MAX_CHUNK = 64


def chunk_size(theta: Mapping[str, torch.Tensor]) -> int:
    """How many points go through the network together: as many as :data:`POINT_BYTES` of stacked weights
    allow, at most :data:`MAX_CHUNK`."""
    size = sum(v.numel() * v.element_size() for v in theta.values())
    return int(max(1, min(MAX_CHUNK, POINT_BYTES // max(size, 1))))


def evaluate_points(model: nn.Module, points: Sequence[Mapping[str, torch.Tensor]], x: torch.Tensor,
                    y: torch.Tensor, *, batch_size: int = 256, chunk: int | None = None) -> tuple[np.ndarray,
                                                                                                np.ndarray]:
    """The mean cross-entropy and the accuracy of ``model`` at each of ``points`` (dicts of parameters, and of
    buffers where they carry them) on ``x``, ``y``: two arrays of len(points). The network is not changed."""
    model.eval()
    if not points:
        return np.zeros(0), np.zeros(0)
    chunk = chunk or chunk_size(points[0])
    losses, correct = np.zeros(len(points)), np.zeros(len(points))
    n = len(x)
    with torch.no_grad():
        for start in range(0, len(points), chunk):
            block = points[start:start + chunk]
            stacked = {k: torch.stack([p[k] for p in block]) for k in block[0]}
            for s in range(0, n, batch_size):
                _accumulate(_forward(model, stacked, x[s:s + batch_size]), y[s:s + batch_size], losses, correct,
                            slice(start, start + len(block)))
    return losses / n, correct / n


class _Replay(nn.Module):
    """Stands in for the first weighted layer: returns the output set for the point being evaluated."""

    def __init__(self):
        super().__init__()
        self.value: torch.Tensor | None = None

    def forward(self, *args, **kwargs) -> torch.Tensor:  # noqa: ARG002 -- the layer's input is not needed
        return self.value


def _first_weighted(model: nn.Module, x: torch.Tensor) -> tuple[str, nn.Module] | None:
    """The first module (in call order) that holds parameters of its own, if it is a linear layer or a
    convolution and no module with parameters ran before it."""
    order: list[tuple[str, nn.Module]] = []
    names = {m: k for k, m in model.named_modules()}
    hooks = [m.register_forward_pre_hook(lambda mod, args: order.append((names[mod], mod)))
             for m in model.modules() if any(True for _ in m.parameters(recurse=False))]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in hooks:
            h.remove()
    if not order or not isinstance(order[0][1], (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return None
    return order[0]


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def evaluate_affine(model: nn.Module, base: Mapping[str, torch.Tensor], directions: Sequence[Mapping[str,
                    torch.Tensor]], coefficients: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *,
                    batch_size: int = 256, chunk: int | None = None, check: bool = True) -> tuple[np.ndarray,
                                                                                                 np.ndarray]:
    """:func:`evaluate_points` at theta_p = base + sum_j coefficients[p, j] directions[j] (a line, a plane): the
    points are formed a chunk at a time (never all at once), and the first weighted layer is computed m + 1 times
    per data batch instead of once per point (module docstring); the direct evaluation where the network does not
    allow it or the check at two points fails."""
    coefficients = torch.as_tensor(coefficients, dtype=torch.float64)
    model.eval()
    m = len(directions)
    stacks = {k: torch.stack([d[k] for d in directions]) for k in base}  # (m, ...) per parameter
    chunk = chunk or chunk_size(base)
    if len(coefficients) > 2 * (m + 1) and _plain_mlp(model, base):
        out = _mlp_affine(model, base, directions, stacks, coefficients, x, y, batch_size, chunk)
        return _checked(out, model, base, directions, coefficients, x, y, batch_size, chunk) if check else out
    first = _first_weighted(model, x) if len(coefficients) > 2 * (m + 1) else None
    if first is None:
        return _plain(model, base, directions, coefficients, x, y, batch_size, chunk)
    name, layer = first
    own = {f"{name}.{k}": k for k, _ in layer.named_parameters()}
    rest = [k for k in base if k not in own]
    weight_key = next(k for k, v in own.items() if v == "weight")
    bias_key = next((k for k, v in own.items() if v == "bias"), None)
    batches = [(x[s:s + batch_size], y[s:s + batch_size]) for s in range(0, len(x), batch_size)]
    losses, correct = np.zeros(len(coefficients)), np.zeros(len(coefficients))
    replay = _Replay()
    try:
        _set_module(model, name, replay)
        with torch.no_grad():
            parts = []  # per data batch: (m + 1, batch, ...) the layer at the base, then each direction's linear part
            for xb, _ in batches:
                inputs = _layer_input(model, replay, xb)
                layer_parts = [_apply(layer, inputs, base[weight_key], base[bias_key] if bias_key else None)]
                layer_parts += [_apply(layer, inputs, d[weight_key], d[bias_key] if bias_key else None)
                                for d in directions]
                parts.append(torch.stack(layer_parts))
            for block, stacked, mix in _chunks(base, stacks, rest, coefficients, chunk):
                for (xb, yb), part in zip(batches, parts, strict=True):
                    z = torch.einsum("pm,m...->p...", mix.to(part.dtype), part)
                    _accumulate(_forward(model, stacked, xb, replay, z), yb, losses, correct, block)
    finally:
        replay.value = None
        _set_module(model, name, layer)
    out = losses / len(x), correct / len(x)
    return _checked(out, model, base, directions, coefficients, x, y, batch_size, chunk) if check else out


def _checked(out, model, base, directions, coefficients, x, y, batch_size, chunk):
    """``out`` where its first and last points equal the direct evaluation, else the direct evaluation of all."""
    probe = [0, len(coefficients) - 1]
    points = [_point(base, directions, coefficients[i]) for i in probe]
    direct = evaluate_points(model, points, x, y, batch_size=batch_size)
    if not np.allclose(direct[0], out[0][probe], rtol=1e-4, atol=1e-5):
        return _plain(model, base, directions, coefficients, x, y, batch_size, chunk)
    return out


def _plain_mlp(model: nn.Module, base: Mapping[str, torch.Tensor]) -> bool:
    """Whether ``model`` is shattering's MLP (its layers applied as products, which no module hook sees): a
    ``layers`` list of linear layers, an ``activation`` name, and no other parameter."""
    layers = getattr(model, "layers", None)
    return (isinstance(layers, nn.ModuleList) and all(isinstance(layer, nn.Linear) for layer in layers)
            and getattr(model, "activation", None) in ("relu", "tanh") and callable(getattr(model, "representations",
                                                                                               None))
            and set(base) == {f"layers.{i}.{k}" for i in range(len(layers)) for k in ("weight", "bias")})


def _mlp_affine(model, base, directions, stacks, coefficients, x, y, batch_size, chunk):
    """The MLP's points of an affine family: its first layer m + 1 times per data batch, the rest as batched
    products over a chunk of points (the packed MLP's arithmetic)."""
    activation = getattr(torch, model.activation)
    n_layers = len(model.layers)
    rest = [k for k in base if not k.startswith("layers.0.")]
    losses, correct = np.zeros(len(coefficients)), np.zeros(len(coefficients))
    with torch.no_grad():
        parts = []
        for s in range(0, len(x), batch_size):
            flat = x[s:s + batch_size].flatten(1)
            layer_parts = [nn.functional.linear(flat, base["layers.0.weight"], base["layers.0.bias"])]
            layer_parts += [nn.functional.linear(flat, d["layers.0.weight"], d["layers.0.bias"]) for d in directions]
            parts.append(torch.stack(layer_parts))
        for block, stacked, mix in _chunks(base, stacks, rest, coefficients, chunk):
            for i, part in enumerate(parts):
                h = torch.einsum("pm,m...->p...", mix.to(part.dtype), part)
                for layer in range(1, n_layers):
                    h = activation(h)
                    w, b = stacked[f"layers.{layer}.weight"], stacked[f"layers.{layer}.bias"]
                    h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
                _accumulate(h, y[i * batch_size:(i + 1) * batch_size], losses, correct, block)
    return losses / len(x), correct / len(x)


def _plain(model, base, directions, coefficients, x, y, batch_size, chunk):
    """The direct evaluation of every point of an affine family, a chunk of points at a time."""
    stacks = {k: torch.stack([d[k] for d in directions]) for k in base}
    losses, correct = np.zeros(len(coefficients)), np.zeros(len(coefficients))
    with torch.no_grad():
        for start in range(0, len(coefficients), chunk):
            block = slice(start, start + chunk)
            stacked = _combined(base, stacks, coefficients[block])

            for s in range(0, len(x), batch_size):
                _accumulate(_forward(model, stacked, x[s:s + batch_size]), y[s:s + batch_size], losses, correct,
                            block)
    return losses / len(x), correct / len(x)


def _chunks(base, stacks, rest: Sequence[str], coefficients: torch.Tensor, chunk: int):
    """Per chunk of points: its slice, the stacked parameters ``rest`` at its points, and the mixing weights
    (1, c_1, ..., c_m) of the shared first layer's m + 1 outputs."""
    for start in range(0, len(coefficients), chunk):
        block = slice(start, start + chunk)
        c = coefficients[block]
        stacked = _combined({k: base[k] for k in rest}, {k: stacks[k] for k in rest}, c)
        yield block, stacked, torch.cat([torch.ones(len(c), 1, dtype=c.dtype), c], dim=1)


def _forward(model: nn.Module, stacked: Mapping[str, torch.Tensor], xb: torch.Tensor, replay: _Replay | None = None,
             z: torch.Tensor | None = None) -> torch.Tensor:
    """The logits (P, B, C) of a chunk of P stacked points on one data batch (``z``: each point's output of the
    shared first layer, replayed by ``replay``). A network without convolutions takes the chunk at once under
    ``vmap``; a convolutional one a point at a time, in channels_last (``vmap`` of a convolution with batched
    weights measured slower on a CPU than a loop over the points: docs/landscapes.md)."""
    if not any(isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) for m in model.modules()):
        def logits_of(params: dict, z_p: torch.Tensor | None) -> torch.Tensor:
            if replay is not None:
                replay.value = z_p
            return functional_call(model, params, (xb,))

        return torch.vmap(logits_of, in_dims=(0, 0 if z is not None else None))(dict(stacked), z)
    xb = xb.contiguous(memory_format=torch.channels_last) if xb.dim() == 4 else xb
    out = []
    for i in range(next(iter(stacked.values())).shape[0]):
        params = {k: (v[i].contiguous(memory_format=torch.channels_last) if v[i].dim() == 4 else v[i])
                  for k, v in stacked.items()}
        if replay is not None:
            replay.value = z[i]
        out.append(functional_call(model, params, (xb,)))
    return torch.stack(out)


def _combined(base: Mapping[str, torch.Tensor], stacks: Mapping[str, torch.Tensor], c: torch.Tensor) -> dict:
    """The stacked points base + sum_j c[p, j] d_j (P, ...) of one chunk, parameter by parameter."""
    return {k: base[k].unsqueeze(0) + torch.einsum("pm,m...->p...", c.to(stacks[k].dtype), stacks[k])
            for k in base}


def _accumulate(out: torch.Tensor, yb: torch.Tensor, losses: np.ndarray, correct: np.ndarray, block: slice) -> None:
    """Add one data batch's summed cross-entropy and correct answers of a chunk of points (logits (P, B, C))."""
    out = out.float()
    k = out.shape[0]
    losses[block] += nn.functional.cross_entropy(out.transpose(1, 2), yb.expand(k, -1),
                                                 reduction="none").sum(1).double().numpy()
    correct[block] += (out.argmax(-1) == yb).sum(1).double().numpy()


def _point(base: Mapping[str, torch.Tensor], directions: Sequence[Mapping[str, torch.Tensor]],
           c: torch.Tensor) -> Point:
    out = {k: v.clone() for k, v in base.items()}
    for cj, d in zip(c.tolist(), directions, strict=True):
        for k, v in d.items():
            out[k] = out[k] + cj * v
    return out


class _Caught(Exception):
    """Raised by the pre-hook that caught the first weighted layer's input: the rest of the pass is not needed."""


def _layer_input(model: nn.Module, replay: _Replay, xb: torch.Tensor) -> torch.Tensor:
    """What the first weighted layer receives for ``xb``: caught by a pre-hook on its stand-in, which then stops
    the pass."""
    seen: list[torch.Tensor] = []

    def catch(mod, args):
        seen.append(args[0])
        raise _Caught

    handle = replay.register_forward_pre_hook(catch)
    try:
        model(xb)
    except _Caught:
        pass
    finally:
        handle.remove()
    return seen[0]


def _apply(layer: nn.Module, inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The layer with the given weight and bias (None: none) on ``inputs``."""
    params = {"weight": weight, **({"bias": bias} if bias is not None else {})}
    if "bias" in dict(layer.named_parameters()) and bias is None:
        params["bias"] = torch.zeros_like(layer.bias)
    return functional_call(layer, params, (inputs,))
