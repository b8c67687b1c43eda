"""Empirical Rademacher complexity: Section 2.2 of Zhang et al., "Understanding deep learning requires rethinking
generalization" (ICLR 2017, arXiv 1611.03530).

The empirical Rademacher complexity of a hypothesis class H on a sample x_1..x_n is (Eq. 1)

    R_n(H) = E_sigma [ sup_{h in H} (1/n) sum_i sigma_i h(x_i) ],     sigma_i uniform on {-1, +1},

a measure of how well H fits random +-1 labels: exactly the randomization test. If a model trained on sigma
fits it perfectly, with h(x) in [-1, 1], the sup is 1 and the bound R_n(H) <= 1 is trivial. This module holds
the two pieces of Eq. 1 (the sign vectors and the correlation); the probe that fits them with a network, a
kernel interpolant and a linear model is :mod:`shattering.experiments.rademacher`.
"""

from __future__ import annotations

import numpy as np


def random_signs(n: int, seed: int, draw: int) -> np.ndarray:
    """sigma in {-1, +1}^n, i.i.d. uniform, from its own stream of (seed, draw)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 401, int(draw)]))
    return rng.choice(np.array([-1.0, 1.0]), size=n)


def correlation(sigma: np.ndarray, h: np.ndarray) -> float:
    """(1/n) sum_i sigma_i h(x_i)."""
    return float(np.mean(np.asarray(sigma) * np.asarray(h)))
