"""The affine layer of K MLPs at once, ``b + x @ W^T`` per member, with its weight gradient in the weight's own
layout.

A pack of K MLPs of Table 1 (Zhang et al., ICLR 2017; :mod:`shattering.train.packed`) applies each layer as
one batched product, ``torch.baddbmm(b, x, W^T)`` with x (K, B, in), W (K, out, in), b (K, 1, out). PyTorch's own
derivative of that product returns the weight gradient as ``(x^T @ g)^T``: a transposed view, which autograd then
copies into the parameter's row-major layout: a copy as large as the weight every step, and the slower of the
two layouts for the product itself (measured: docs/speed.md). Here the same forward product is kept and the
derivative is written out:

    dL/dx = g @ W,    dL/dW = g^T @ x  (K, out, in: the parameter's layout),    dL/db = sum over the batch of g

with forward-mode ``d(out) = dx @ W^T + x @ dW^T + db`` (for ``torch.func.jvp``, which curvature operators use for
Hessian-vector products) and a generated ``vmap`` rule (the loss landscape evaluates many weights at once).
The backward is written in differentiable operations, so second derivatives (``create_graph=True``) work too.
"""

from __future__ import annotations

import torch


class _BatchedLinear(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(bias, x, weight.transpose(1, 2))

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, weight, bias = inputs
        ctx.save_for_backward(x, weight)
        ctx.save_for_forward(x, weight)
        ctx.bias_shape = bias.shape

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad_x = grad.bmm(weight) if ctx.needs_input_grad[0] else None
        grad_w = weight_gradient(grad, x) if ctx.needs_input_grad[1] else None
        grad_b = grad.sum(1, keepdim=True).sum_to_size(ctx.bias_shape) if ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b

    @staticmethod
    def jvp(ctx, dx, dweight, dbias):
        x, weight = ctx.saved_tensors
        terms = [t for t in (None if dx is None else dx.bmm(weight.transpose(1, 2)),
                             None if dweight is None else x.bmm(dweight.transpose(1, 2))) if t is not None]
        out = sum(terms[1:], terms[0]) if terms else x.new_zeros(x.shape[0], x.shape[1], weight.shape[1])
        return out if dbias is None else out + dbias


def weight_gradient(grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """dL/dW = g^T @ x per member, (K, out, in), each member's its own matrix product: the product a run alone
    computes (a batched product of one member is that matrix product), so a member of a pack gets a lone run's
    gradient bit for bit whatever kernel a batched product of K >= 2 would pick (one that rounds differently
    for small layers, such as the 10-class output layer, on some CPUs)."""
    if grad.shape[0] == 1:
        return grad.transpose(1, 2).bmm(x)
    if torch.is_grad_enabled():  # a second derivative is asked for: differentiable operations only
        return torch.stack([g.t().mm(xk) for g, xk in zip(grad, x, strict=True)])
    out = grad.new_empty(grad.shape[0], grad.shape[2], x.shape[2])
    for k in range(grad.shape[0]):
        torch.mm(grad[k].t(), x[k], out=out[k])
    return out


def batched_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``b + x @ W^T`` for each of K members: x (K, B, in), weight (K, out, in), bias broadcastable to
    (K, 1, out); returns (K, B, out). The forward is ``torch.baddbmm``'s, unchanged; the backward returns the
    weight gradient in the weight's layout (module docstring). Under autocast the three are cast to its dtype
    first, as autocast casts ``baddbmm``'s, so the product and its derivatives run in that precision and the
    gradients return to the parameters' dtype through the casts."""
    kind = x.device.type
    if torch.is_autocast_enabled(kind):
        dtype = torch.get_autocast_dtype(kind)
        x, weight, bias = x.to(dtype), weight.to(dtype), bias.to(dtype)
        with torch.autocast(kind, enabled=False):
            return _BatchedLinear.apply(x, weight, bias)
    return _BatchedLinear.apply(x, weight, bias)
