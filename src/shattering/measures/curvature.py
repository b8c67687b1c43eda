"""The curvature of the training loss at a trained network: the Hessian's largest eigenvalue and its trace.

With L(theta) = (1/n) sum_i CE(f_theta(x_i), y_i) over a fixed subset of the training examples with the labels
the network was trained on (eval mode: batch norm uses its running statistics, no dropout), H = nabla^2 L(theta).
Sagun et al. (2017) and Ghorbani et al. (ICML 2019) read generalization into this spectrum; Yao et al. (2020,
PyHessian) made the top eigenvalue and the trace the standard pair. Here H is never formed: curvlinops-for-pytorch
(Dangel et al.) gives it as a linear operator of Hessian-vector products, and

- ``lambda_max``: scipy's ``eigsh`` (implicitly restarted Lanczos, ARPACK) for the largest algebraic eigenvalue,
  to relative tolerance :data:`EIG_TOL`;
- ``trace``: Hutch++ (Meyer, Musco, Musco and Woodruff, SOSA 2021) with :data:`TRACE_MATVECS` products of
  Rademacher vectors drawn from the seed :data:`SEED` (the run's random state is forked, not touched); exact
  (one product per parameter) for a network of at most that many parameters.

Both are recorded with the examples used, the tolerance, the Hessian-vector products spent and the seconds.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

HESSIAN_EXAMPLES = 500  # the first of the measured examples (a seeded random sample of the training set)
EIG_TOL = 1e-3  # eigsh's relative tolerance on the eigenvalue
TRACE_MATVECS = 60  # Hutch++'s budget of Hessian-vector products
SEED = 0
BATCH = 256  # examples per Hessian-vector product pass


def _curvlinops():
    """The curvlinops module, or :class:`Unmeasurable` saying how to install it (an optional extra)."""
    from .layers import Unmeasurable

    try:
        import curvlinops  # optional: shattering[curvature]; it loads torch.jit machinery only curvature needs
    except ImportError:
        raise Unmeasurable("needs curvlinops: pip install 'shattering[curvature]' (beside a torch that a "
                           "torchvision matches: curvlinops depends on backpack-for-pytorch, which needs it)") from None
    return curvlinops


class _Counted:
    """A scipy linear operator that counts its products."""

    def __init__(self, op):
        self.op, self.count = op, 0

    def matvec(self, v):
        self.count += 1 if v.ndim == 1 else v.shape[1]
        return self.op @ v


def hessian_operator(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = BATCH):
    """H of the mean cross-entropy of ``model`` on ``x``, ``y`` as a curvlinops operator (eval mode, the
    examples in the order given)."""
    HessianLinearOperator = _curvlinops().HessianLinearOperator

    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    data = [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    return HessianLinearOperator(model, nn.CrossEntropyLoss(reduction="mean"), params, data,
                                 check_deterministic=False, num_data=len(x))


def hessian_measures(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = BATCH) -> dict:
    """``lambda_max`` and ``trace`` of the Hessian (module docstring) on the first :data:`HESSIAN_EXAMPLES` of
    ``x``, ``y``, with what they rest on: ``examples``, ``tolerance``, ``matvecs`` (per quantity) and ``seconds``."""
    hutchpp_trace = _curvlinops().hutchpp_trace
    from scipy.sparse.linalg import LinearOperator, eigsh

    x, y = x[:HESSIAN_EXAMPLES], y[:HESSIAN_EXAMPLES]
    start = time.perf_counter()
    op = hessian_operator(model, x, y, batch_size)
    scipy_op = op.to_scipy()
    counted = _Counted(scipy_op)
    n = scipy_op.shape[0]
    wrapped = LinearOperator((n, n), matvec=counted.matvec, dtype=scipy_op.dtype)
    v0 = np.random.default_rng(SEED).standard_normal(n).astype(scipy_op.dtype)
    top = float(eigsh(wrapped, k=1, which="LA", tol=EIG_TOL, v0=v0, return_eigenvectors=False)[0])
    eig_seconds, eig_matvecs = time.perf_counter() - start, counted.count
    start = time.perf_counter()
    if n <= TRACE_MATVECS:  # a network this small: the exact trace costs no more products than the estimate
        trace, method, matvecs = float(np.trace(scipy_op @ np.eye(n, dtype=scipy_op.dtype))), "exact", n
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(SEED)
            trace, method, matvecs = float(hutchpp_trace(op, TRACE_MATVECS)), "Hutch++", TRACE_MATVECS
    return {"lambda_max": top, "trace": trace,
            "facts": {"examples": len(x), "tolerance": EIG_TOL, "lambda_max_matvecs": eig_matvecs,
                      "lambda_max_seconds": eig_seconds, "trace_method": method, "trace_matvecs": matvecs,
                      "trace_seconds": time.perf_counter() - start, "seed": SEED}}
