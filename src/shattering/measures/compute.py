"""Every complexity measure of one trained run, as its summary stores them (``summary["measures"]``): the
candidates Zhang et al. (ICLR 2017, Section 5) found wanting and later work measured (Neyshabur et al. 2017,
"Exploring generalization in deep learning"; Bartlett, Foster and Telgarsky 2017; Jiang et al. 2020).

The keys: ``l2_norm``, ``distance_from_init``, ``spectral_product``, ``log_spectral_product``, ``frobenius_sum``,
``log_frobenius_product``, ``log_spectral_complexity``, ``margin_min``, ``margin_p10``, ``margin_median``,
``normalized_margin``, ``path_l2``, ``pac_bayes_sigma``, ``pac_bayes_sigma_capped``, ``pac_bayes_bound_term``
(each module's docstring gives its formula), plus ``measures_on`` (how many training examples the data-dependent
ones used, with the labels they were trained on: a fixed, seeded sample of at most :data:`MAX_EXAMPLES` for the
margins, its first :data:`FLATNESS_EXAMPLES` for flatness) and ``unavailable``
(measure -> why it is None, for a network it does not apply to). Never a made-up number: a measure that does
not apply is None, with its reason.
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn

from ..config import RunConfig
from ..data.dataset import LabelledSplits
from ..train.trainer import init_model
from .flatness import pac_bayes_sigma
from .layers import Unmeasurable, weighted_layers
from .margins import data_scale, logits, margin_summary, margins
from .norms import distance_from_init, l2_norm, layer_norms, path_l2

MAX_EXAMPLES = 2000  # training examples for the margins: seconds, not minutes, at the end of a run
FLATNESS_EXAMPLES = 500  # the first of those for flatness (20 passes over them)
SUBSET_SEED = 0  # which examples: the first MAX_EXAMPLES of a permutation drawn with this seed
LAYER_KEYS = ("spectral_product", "log_spectral_product", "frobenius_sum", "log_frobenius_product",
              "log_spectral_complexity")
MARGIN_KEYS = ("margin_min", "margin_p10", "margin_median", "normalized_margin")
FLATNESS_KEYS = ("pac_bayes_sigma", "pac_bayes_sigma_capped", "pac_bayes_bound_term")
# Every measure a summary holds, in the order tables show them (``summary["measures"][name]``).
MEASURE_KEYS = ("l2_norm", "distance_from_init", *LAYER_KEYS, "path_l2", *MARGIN_KEYS, *FLATNESS_KEYS)


def measure_subset(n: int, limit: int = MAX_EXAMPLES) -> torch.Tensor:
    """The indices of the training examples the measures use, in a seeded random order (so that the first
    :data:`FLATNESS_EXAMPLES` of them are a random sample too): all ``n``, or ``limit`` of them."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(SUBSET_SEED))[:limit]


def compute_measures(model: nn.Module, init: nn.Module, input_shape: tuple[int, ...],
                     x: torch.Tensor | None, y: torch.Tensor | None, batch_size: int = 500) -> dict:
    """The measures of ``model`` (trained) against ``init`` (the same network at initialization) with the
    training examples ``x`` and their labels ``y`` (None: the data-dependent measures are unavailable).
    ``batch_size``: examples per evaluation batch. ``model`` is left in eval mode with its weights unchanged."""
    model.eval()
    out: dict = {"l2_norm": l2_norm(model), "distance_from_init": distance_from_init(model, init)}
    why: dict[str, str] = {}
    try:
        out.update(layer_norms(weighted_layers(model, input_shape)))
    except Unmeasurable as exc:
        out.update(dict.fromkeys(LAYER_KEYS))
        why.update(dict.fromkeys(LAYER_KEYS + ("normalized_margin",), str(exc)))
    try:
        out["path_l2"] = path_l2(model, input_shape)
    except Unmeasurable as exc:
        out["path_l2"], why["path_l2"] = None, str(exc)
    if x is None or y is None:
        out.update(dict.fromkeys(MARGIN_KEYS + FLATNESS_KEYS))
        why.update(dict.fromkeys(MARGIN_KEYS + FLATNESS_KEYS, "the training set is streamed from disk, not held"))
        out["measures_on"] = {"examples": 0}
    else:
        flat_x, flat_y = x[:FLATNESS_EXAMPLES], y[:FLATNESS_EXAMPLES]
        out["measures_on"] = {"examples": len(x), "flatness_examples": len(flat_x), "labels": "trained"}
        out.update(margin_summary(margins(logits(model, x, batch_size), y)))
        log_ra = out.get("log_spectral_complexity")
        scale = data_scale(x)
        out["normalized_margin"] = (out["margin_p10"] / math.exp(log_ra) / scale
                                    if log_ra is not None and log_ra < 700 and scale > 0 else None)
        if out["normalized_margin"] is None and "normalized_margin" not in why:
            why["normalized_margin"] = "the spectral complexity overflows a float"
        try:
            flat = pac_bayes_sigma(model, flat_x, flat_y, batch_size=batch_size)
            out["pac_bayes_sigma"] = flat["pac_bayes_sigma"]
            out["pac_bayes_sigma_capped"] = flat["pac_bayes_sigma_capped"]
            out["pac_bayes_bound_term"] = out["distance_from_init"] ** 2 / (4 * flat["pac_bayes_sigma"] ** 2)
        except Unmeasurable as exc:
            out.update(dict.fromkeys(FLATNESS_KEYS))
            why.update(dict.fromkeys(FLATNESS_KEYS, str(exc)))
    out["unavailable"] = why
    return out


def measures_of(cfg: RunConfig, model: nn.Module, data: LabelledSplits, x: torch.Tensor | None = None,
                y: torch.Tensor | None = None) -> tuple[dict, float]:
    """The measures of the trained ``model`` of run ``cfg`` (its initialization rebuilt from ``cfg.seed``,
    :func:`~shattering.train.trainer.init_model`) on the training examples ``x``, ``y`` (all of them: the
    subset is taken here) and the seconds they took."""
    start = time.perf_counter()
    device = next(model.parameters()).device
    init = init_model(cfg, data).to(device)
    if x is not None and y is not None:
        idx = measure_subset(len(x)).to(x.device)
        x, y = x[idx].to(device), y[idx].to(device)
        if x.dim() == 4 and any(isinstance(m, nn.Conv2d) for m in model.modules()):
            model = model.to(memory_format=torch.channels_last)  # as the trainer holds it: measured faster
            x = x.contiguous(memory_format=torch.channels_last)
    was_training = model.training
    try:
        result = compute_measures(model, init, tuple(data.shape), x, y, cfg.eval_batch_size or 500)
    finally:
        model.train(was_training)
    return result, time.perf_counter() - start


def with_measures(summary: dict, cfg: RunConfig, model: nn.Module, data: LabelledSplits,
                  x: torch.Tensor | None = None, y: torch.Tensor | None = None) -> dict:
    """``summary`` with ``measures`` (:func:`measures_of`) and ``measures_seconds`` added. A run that diverged
    has no measures (its weights are not finite), and a measure that fails never fails the finished run: its
    summary then says ``measures_error`` instead."""
    if summary.get("status") == "diverged":
        return {**summary, "measures": None, "measures_seconds": 0.0,
                "measures_error": "the run diverged: its weights are not finite"}
    start = time.perf_counter()
    try:
        result, seconds = measures_of(cfg, model, data, x, y)
    except Exception as exc:  # noqa: BLE001 -- a bug in a measure must not lose the run it measures
        return {**summary, "measures": None, "measures_seconds": time.perf_counter() - start,
                "measures_error": f"{type(exc).__name__}: {exc}"}
    return {**summary, "measures": finite(result), "measures_seconds": seconds}


def finite(result: dict) -> dict:
    """``result`` with every non-finite number None and its reason under ``unavailable``."""
    out, why = dict(result), dict(result.get("unavailable") or {})
    for key, value in result.items():
        if isinstance(value, float) and not math.isfinite(value):
            out[key] = None
            why[key] = f"not a finite number ({value})"
    out["unavailable"] = why
    return out
