"""PAC-Bayes flatness of a trained network (Jiang et al. 2020, "Fantastic generalization measures and where to
find them", Section 5 and Appendix C, "pacbayes.flatness"; Dziugaite and Roy 2017; Keskar et al. 2017 for
sharpness).

``pac_bayes_sigma`` is the largest sigma such that adding isotropic Gaussian noise N(0, sigma^2 I) to every
trained parameter lowers the eval-mode training accuracy by at most ``max_drop`` (0.1, as Jiang et al.) from the
unperturbed accuracy, the accuracy under noise averaged over a few draws (2). The draws are seeded and each is
one fixed direction eps_d scaled by sigma (so the accuracy moves smoothly with sigma), and sigma is found by
bisection on a log scale between 1e-5 and 10 (8 steps: to within a factor 1.055). Each try is a pass over the
examples per draw, 20 passes in all: the measure that costs most, so it uses at most
:data:`~shattering.measures.compute.FLATNESS_EXAMPLES` examples. A flatter minimum has a larger sigma;
||w - w0||^2 / (4 sigma^2) is the leading term of the PAC-Bayes bound with its prior centred at the
initialization w0 (Jiang et al.'s "pacbayes.init").
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from .layers import Unmeasurable

SIGMA_RANGE = (1e-5, 10.0)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    """The fraction of ``x`` that ``model`` (eval mode, float32) labels ``y``."""
    model.eval()
    right = 0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            out = model(x[start:start + batch_size].float())
            out = out[0] if isinstance(out, tuple) else out
            right += int((out.argmax(1) == y[start:start + batch_size]).sum())
    return right / len(x)


CACHED_DIRECTION_FLOATS = 2 ** 27  # the draws' directions are kept (512 MB of float32 at most) rather than drawn again
# for each sigma: drawing them was a third of the measure's time for WRN-28-10 (36M parameters) on 40 images


def directions(params: list[torch.Tensor], draws: int, seed: int) -> list[list[torch.Tensor]]:
    """The seeded noise direction eps_d of each draw d (one float32 tensor per parameter), on the parameters'
    devices and in their dtypes."""
    out = []
    for d in range(draws):
        generator = torch.Generator(device="cpu").manual_seed(seed + d)
        out.append([torch.randn(p.shape, generator=generator, dtype=torch.float32).to(p.device, p.dtype)
                    for p in params])
    return out


def perturbed_accuracy(model: nn.Module, measure: Callable[[nn.Module], float], sigma: float, draws: int,
                       seed: int, cached: list[list[torch.Tensor]] | None = None) -> float:
    """``measure(model)`` averaged over ``draws`` seeded perturbations w + sigma * eps_d; ``model`` is restored.
    ``cached``: the draws' directions (:func:`directions`), else drawn here."""
    params = [p for p in model.parameters() if p.requires_grad]
    saved = [p.detach().clone() for p in params]
    total = 0.0
    try:
        for d in range(draws):
            eps_d = cached[d] if cached is not None else directions(params, 1, seed + d)[0]
            with torch.no_grad():
                for p, w, eps in zip(params, saved, eps_d, strict=True):
                    p.copy_(w + sigma * eps)
            total += measure(model)
    finally:
        with torch.no_grad():
            for p, w in zip(params, saved, strict=True):
                p.copy_(w)
    return total / draws


def pac_bayes_sigma(model: nn.Module, x: torch.Tensor, y: torch.Tensor, max_drop: float = 0.1, draws: int = 2,
                    steps: int = 8, seed: int = 0, batch_size: int = 500) -> dict:
    """``{"pac_bayes_sigma", "pac_bayes_sigma_capped", "accuracy"}``: the largest sigma whose drop in accuracy
    is at most ``max_drop`` (see the module docstring); ``capped`` when even the largest sigma tried (10) drops
    it less (an accuracy already near chance has little to lose)."""
    base = accuracy(model, x, y, batch_size)
    params = [p for p in model.parameters() if p.requires_grad]
    cached = directions(params, draws, seed) if draws * sum(p.numel() for p in params) <= CACHED_DIRECTION_FLOATS \
        else None

    def drop(sigma: float) -> float:
        return base - perturbed_accuracy(model, lambda m: accuracy(m, x, y, batch_size), sigma, draws, seed, cached)

    lo, hi = SIGMA_RANGE
    if drop(lo) > max_drop:
        raise Unmeasurable(f"noise of sigma {lo:g} already lowers the training accuracy by more than {max_drop:g}")
    if drop(hi) <= max_drop:
        return {"pac_bayes_sigma": hi, "pac_bayes_sigma_capped": True, "accuracy": base}
    log_lo, log_hi = math.log(lo), math.log(hi)
    for _ in range(steps):
        mid = (log_lo + log_hi) / 2
        if drop(math.exp(mid)) <= max_drop:
            log_lo = mid
        else:
            log_hi = mid
    return {"pac_bayes_sigma": math.exp(log_lo), "pac_bayes_sigma_capped": False, "accuracy": base}
