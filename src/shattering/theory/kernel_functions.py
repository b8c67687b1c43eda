"""The kernels of Eq. (3) of Zhang et al., "Understanding deep learning requires rethinking generalization"
(ICLR 2017, arXiv 1611.03530), Section 5 and Appendix D, and the bandwidth heuristic.

- ``gaussian`` k(x, z) = exp(-||x - z||^2 / (2 sigma^2)) and ``laplacian`` k(x, z) = exp(-||x - z|| / sigma).
- The paper does not give its kernel or bandwidth [I]; the default sigma is a fixed fraction
  (:data:`BANDWIDTH_FRACTION`) of the median Euclidean distance between pairs of (up to 2,000) training points:
  a quarter of it for the Gaussian, all of it for the Laplacian. The quarter was measured (Fashion-MNIST raw
  pixels, n = 10,000, true labels, test error for sigma = median x 1, 0.71, 0.5, 0.35, 0.25, 0.18: 14.4, 14.2,
  13.6, 13.3, 13.0, 14.0%) and it keeps K far better conditioned: the smallest float32 Cholesky pivot^2 is
  0.017 against 1.7e-4 with the plain median, which at n = 60,000 leaves no positive float32 factor at all
  (bench/RESULTS.md). On the standardized features of :mod:`~shattering.theory.features` the plain median
  stays the default (:data:`TRANSFORMED_BANDWIDTH_FRACTION`; n = 2,000 Fashion-MNIST, test error with
  1 / 0.5 / 0.25 x the median: Gabor 16.4 / 14.4 / 15.6%, scattering 13.4 / 13.1 / 14.1%, random conv
  16.8 / 17.3 / 21.1%).

These are the plain formulas in float64; :mod:`~shattering.theory.kernel_evaluator` computes the same kernels
tile by tile, exactly on 8-bit pixels, for n x n matrices.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ShatteringError
from ..validation import check_choice, check_float

KERNELS = ("gaussian", "laplacian")
BANDWIDTH_SAMPLE = 2000  # points used by the median heuristic
BANDWIDTH_FRACTION = {"gaussian": 0.25, "laplacian": 1.0}  # default sigma = this * the median distance
TRANSFORMED_BANDWIDTH_FRACTION = 1.0  # ... of standardized Gabor, scattering or random-conv features


def as_float64(x) -> torch.Tensor:
    """``x`` (a tensor or array-like) as a float64 tensor (shared memory where it already is one)."""
    return x.to(torch.float64) if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x, dtype=np.float64))


def squared_distances(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """||x_i - z_j||^2 for rows of x (m, d) and z (k, d), as ||x||^2 + ||z||^2 - 2 x z^T clamped at 0."""
    d2 = (x * x).sum(1)[:, None] + (z * z).sum(1)[None, :] - 2.0 * (x @ z.T)  # (m, k)
    return d2.clamp_min_(0.0)


def median_bandwidth(x, sample: int = BANDWIDTH_SAMPLE, seed: int = 0) -> float:
    """The median Euclidean distance between distinct pairs of (at most ``sample``) rows of ``x``."""
    x = as_float64(x)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 301]))
    idx = np.sort(rng.choice(len(x), size=min(len(x), sample), replace=False))
    xs = x[torch.from_numpy(idx)]
    d2 = squared_distances(xs, xs)
    iu = torch.triu_indices(len(xs), len(xs), offset=1)
    dist = d2[iu[0], iu[1]].sqrt()
    med = float(np.median(dist.numpy())) if dist.numel() else 0.0  # (torch's median is the lower one)
    if not med > 0:
        raise ShatteringError("The median distance between training points is 0 (most points are identical); "
                              "pass an explicit bandwidth.")
    return med


def default_bandwidth(x, kernel: str = "gaussian", seed: int = 0, *,
                      fraction: float | None = None) -> tuple[float, str]:
    """The default sigma of ``kernel`` for the rows of ``x`` and the rule in words: ``fraction`` (default
    :data:`BANDWIDTH_FRACTION` of the kernel) times the median pairwise distance."""
    kernel = check_choice(kernel, "kernel", tuple(BANDWIDTH_FRACTION))
    fraction = BANDWIDTH_FRACTION[kernel] if fraction is None else check_float(fraction, "bandwidth_fraction",
                                                                                low=0.0, low_open=True)
    rule = "median heuristic" if fraction == 1.0 else f"{fraction:g} x the median pairwise distance"
    return fraction * median_bandwidth(x, seed=seed), rule
