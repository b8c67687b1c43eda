"""The curvature of the training loss at a trained network: the Hessian's top eigenvalues, its trace and its
spectral density.

With L(theta) = (1/n) sum_i CE(f_theta(x_i), y_i) over a fixed subset of the training examples with the labels
the network was trained on (eval mode: batch norm uses its running statistics, no dropout; the examples in a
fixed order), H = nabla^2 L(theta). Sagun et al. (2017) and Ghorbani et al. (ICML 2019) read generalization into
this spectrum; Yao et al. (2020, PyHessian) made the top eigenvalue, the trace and the density the standard
three. Here H is never formed: curvlinops-for-pytorch (Dangel et al.) gives it as a linear operator of
Hessian-vector products (forward-over-reverse; a double-backward product, PyHessian's, was measured on the
paper's models: faster on some, slower on others, never by 2x: bench/RESULTS.md), and

- ``top_eigenvalues``: scipy's ``eigsh`` (implicitly restarted Lanczos, ARPACK) for the :data:`TOP_K` largest
  algebraic eigenvalues, to relative tolerance :data:`EIG_TOL`; ``lambda_max`` the first;
- ``trace``: Hutch++ (Meyer, Musco, Musco and Woodruff, SOSA 2021) with :data:`TRACE_MATVECS` products of
  Rademacher vectors drawn from the seed :data:`SEED` (the run's random state is forked, not touched); exact
  (one product per parameter) for a network of at most that many parameters;
- the spectral density by stochastic Lanczos quadrature (Golub and Meurant; Ghorbani et al. 2019): from each of
  :data:`SLQ_VECTORS` seeded Rademacher start vectors v (normalized), :data:`SLQ_STEPS` Lanczos steps with full
  reorthogonalization (curvlinops' own Lanczos has none, and without it ghost copies of the top eigenvalues
  appear) give a tridiagonal T = Q diag(theta) Q^T; the quadrature nodes theta_j with weights w_j = Q_1j^2 make
  v^T g(H) v = sum_j w_j g(theta_j) exact for polynomials g of degree < 2 x steps. The density is
  phi(t) = (1/m) sum_v sum_j w_j N(t; theta_j, sigma^2), sigma = :data:`DENSITY_SMOOTHING` x (the width of the
  nodes' range): :func:`spectral_density`. The nodes and weights are stored, so any smoothing can be drawn later.

Each is recorded with the examples used, the tolerance, the Hessian-vector products spent and the seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

HESSIAN_EXAMPLES = 500  # the first of the measured examples (a seeded random sample of the training set)
EIG_TOL = 1e-3  # eigsh's relative tolerance on the eigenvalues
TOP_K = 3  # how many of the largest eigenvalues
TRACE_MATVECS = 60  # Hutch++'s budget of Hessian-vector products
SLQ_STEPS = 40  # Lanczos steps per start vector (PyHessian: 100; Ghorbani et al.: 90): the density's resolution
SLQ_VECTORS = 1  # start vectors averaged over (PyHessian's default: 1)
DENSITY_SMOOTHING = 0.01  # sigma of the Gaussian bumps, as a fraction of the nodes' range
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


def start_vectors(n: int, count: int, seed: int = SEED) -> np.ndarray:
    """``count`` Rademacher vectors of length ``n``, each scaled to unit norm (rows), drawn from ``seed``: the
    start vectors of :func:`lanczos_quadrature`."""
    signs = np.random.default_rng(seed).integers(0, 2, size=(count, n)).astype(np.float64) * 2 - 1
    return signs / np.sqrt(n)


def lanczos_quadrature(matvec: Callable[[np.ndarray], np.ndarray], start: np.ndarray, steps: int
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The Gauss quadrature of the spectral measure of a symmetric operator seen from the unit vector ``start``:
    ``steps`` Lanczos steps with full reorthogonalization (twice, classical Gram-Schmidt) build the tridiagonal
    T = Q diag(theta) Q^T; returns the nodes ``theta`` and weights ``Q[0, :]**2`` (summing to 1), so that
    start^T g(A) start = sum_j w_j g(theta_j) for every polynomial g of degree below 2 x steps. It stops early
    (fewer nodes, still exact) when the Krylov space is invariant: the operator's dimension or a start vector
    that lies in a few eigenvectors' span."""
    n = start.shape[0]
    steps = min(steps, n)
    basis = np.zeros((steps, n), dtype=np.float64)
    alphas, betas = [], []
    v = start / np.linalg.norm(start)
    for j in range(steps):
        basis[j] = v
        w = np.asarray(matvec(v.astype(np.float32)), dtype=np.float64).reshape(-1)
        alpha = float(w @ v)
        alphas.append(alpha)
        for _ in range(2):  # full reorthogonalization against every earlier vector (v included)
            w -= basis[:j + 1].T @ (basis[:j + 1] @ w)
        beta = float(np.linalg.norm(w))
        scale = max(abs(a) for a in alphas) + (betas[-1] if betas else 0.0)
        if j == steps - 1 or beta <= 1e-10 * max(scale, 1e-30):
            break
        betas.append(beta)
        v = w / beta
    t = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
    nodes, vectors = np.linalg.eigh(t)
    return nodes, vectors[0, :] ** 2


def spectral_density(nodes, weights, grid: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """phi(t) = (1/m) sum_v sum_j w_vj N(t; theta_vj, sigma^2) on ``grid``, from the m start vectors' nodes and
    weights (one sequence per vector, or one sequence for a single vector); ``sigma`` default
    :data:`DENSITY_SMOOTHING` x the nodes' range. Integrates to 1 over a grid that covers the nodes with a margin
    of a few sigma."""
    if np.ndim(nodes[0]) == 0:
        nodes, weights = [nodes], [weights]
    every = np.concatenate([np.asarray(t, dtype=np.float64) for t in nodes])
    if sigma is None:
        sigma = DENSITY_SMOOTHING * max(float(np.ptp(every)), 1e-12)
    grid = np.asarray(grid, dtype=np.float64)
    total = np.zeros_like(grid)
    for theta, w in zip(nodes, weights, strict=True):
        theta, w = np.asarray(theta, dtype=np.float64), np.asarray(w, dtype=np.float64)
        total += (w[:, None] * np.exp(-0.5 * ((grid[None, :] - theta[:, None]) / sigma) ** 2)).sum(axis=0)
    return total / (len(nodes) * sigma * np.sqrt(2 * np.pi))


def hessian_measures(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = BATCH, *,
                     trace: bool = True, density: bool = True) -> dict:
    """The top eigenvalues, ``lambda_max``, (``trace``) the trace and (``density``) the spectral density's
    quadrature of the Hessian (module docstring) on the first :data:`HESSIAN_EXAMPLES` of ``x``, ``y``, with what
    they rest on (``facts``): ``examples``, ``tolerance``, the Hessian-vector products and seconds of each."""
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
    k = min(TOP_K, n - 1)
    top = sorted((float(e) for e in eigsh(wrapped, k=k, which="LA", tol=EIG_TOL, v0=v0,
                                          return_eigenvectors=False)), reverse=True)
    facts: dict = {"examples": len(x), "parameters": n, "tolerance": EIG_TOL, "top_eigenvalues": top,
                   "lambda_max_matvecs": counted.count, "lambda_max_seconds": time.perf_counter() - start}
    start, total = time.perf_counter(), None
    if not trace:
        pass
    elif n <= TRACE_MATVECS:  # a network this small: the exact trace costs no more products than the estimate
        total, method, matvecs = float(np.trace(scipy_op @ np.eye(n, dtype=scipy_op.dtype))), "exact", n
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(SEED)
            total, method, matvecs = float(hutchpp_trace(op, TRACE_MATVECS)), "Hutch++", TRACE_MATVECS
    if trace:
        facts.update(trace_method=method, trace_matvecs=matvecs, trace_seconds=time.perf_counter() - start)
    facts["seed"] = SEED
    if density:
        start, counted.count = time.perf_counter(), 0
        quadratures = [lanczos_quadrature(counted.matvec, v, SLQ_STEPS) for v in start_vectors(n, SLQ_VECTORS)]
        facts["density"] = {
            "method": "stochastic Lanczos quadrature, full reorthogonalization",
            "vectors": SLQ_VECTORS, "steps": SLQ_STEPS, "smoothing": DENSITY_SMOOTHING,
            "nodes": [[float(t) for t in nodes] for nodes, _ in quadratures],
            "weights": [[float(w) for w in weights] for _, weights in quadratures],
            "matvecs": counted.count, "seconds": time.perf_counter() - start}
    return {"lambda_max": top[0], "top_eigenvalues": top, "trace": total, "facts": facts}
