"""Every complexity measure of one trained run, as its summary stores them (``summary["measures"]``): the
candidates Zhang et al. (ICLR 2017, Section 5) found wanting and later work measured (Neyshabur et al. 2017,
"Exploring generalization in deep learning"; Bartlett, Foster and Telgarsky 2017; Jiang et al. 2020).

The measures are the registry's (:mod:`.registry`; the built-in ones and their formulas in :mod:`.builtin`), those
the run setting ``measures`` selects: one key per measure, plus ``measures_on`` (how many training examples the
data-dependent ones used, with the labels they were trained on: a fixed, seeded sample of at most
:data:`MAX_EXAMPLES` for the margins, its first :data:`FLATNESS_EXAMPLES` for flatness), ``weighted_layers``
where the layer-wise norms were computed, and ``unavailable`` (measure -> why it is None, for a network it does
not apply to). Never a made-up number: a measure that does not apply is None, with its reason. A selection of no
measure stores ``{}``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from .._lazy import lazy_import
from ..config import RunConfig
from ..data.dataset import LabelledSplits
from .registry import Measure, MeasureInput, evaluate, selected

torch = lazy_import("torch")  # imported when a run is measured: the built-in records read this module without it
nn = lazy_import("torch.nn")

MAX_EXAMPLES = 2000  # training examples for the margins: seconds, not minutes, at the end of a run
FLATNESS_EXAMPLES = 500  # the first of those for flatness (20 passes over them)
SUBSET_SEED = 0  # which examples: the first MAX_EXAMPLES of a permutation drawn with this seed


def measure_subset(n: int, limit: int = MAX_EXAMPLES) -> torch.Tensor:
    """The indices of the training examples the measures use, in a seeded random order (so that the first
    :data:`FLATNESS_EXAMPLES` of them are a random sample too): all ``n``, or ``limit`` of them."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(SUBSET_SEED))[:limit]


def compute_measures(model: nn.Module, init: nn.Module | Callable[[], nn.Module], input_shape: tuple[int, ...],
                     x: torch.Tensor | None, y: torch.Tensor | None, batch_size: int = 500,
                     measures: str | Sequence[Measure] | None = None) -> dict:
    """The measures of ``model`` (trained) against ``init`` (the same network at initialization, or a function
    that builds it when a measure first needs it) with the training examples ``x`` and their labels ``y`` (None:
    the data-dependent measures are unavailable). ``measures``: which (the run setting's words or names,
    :func:`~.registry.selected`; default: ``default``), or the :class:`~.registry.Measure` records themselves.
    ``batch_size``: examples per evaluation batch. ``model`` is left in eval mode with its weights unchanged."""
    from .layers import Unmeasurable  # here: layers imports torch, and this module is read without it

    chosen = selected(measures) if measures is None or isinstance(measures, str) else tuple(measures)
    if not chosen:
        return {}
    model.eval()
    inputs = MeasureInput(model, init, input_shape, x, y, batch_size)
    out: dict = {}
    why: dict[str, str] = {}
    for measure in chosen:
        try:
            out[measure.name] = inputs.shared(f"measure:{measure.name}", lambda m=measure: evaluate(m, inputs))
        except Unmeasurable as exc:
            out[measure.name], why[measure.name] = None, str(exc)
    facts = dict(inputs.facts)
    used = x is not None and y is not None and any(m.needs_data for m in chosen)
    out["measures_on"] = ({"examples": len(x), "labels": "trained", **facts.pop("measures_on", {})} if used
                          else {"examples": 0})
    out.update(facts)
    out["unavailable"] = why
    return out


def measures_of(cfg: RunConfig, model: nn.Module, data: LabelledSplits, x: torch.Tensor | None = None,
                y: torch.Tensor | None = None, measures: str | None = None) -> tuple[dict, float]:
    """The measures of the trained ``model`` of run ``cfg`` (its initialization rebuilt from ``cfg.seed``,
    :func:`~shattering.train.trainer.init_model`, when a measure needs it) on the training examples ``x``, ``y``
    (all of them: the subset is taken here) and the seconds they took. ``measures``: which (default: the run's
    setting ``cfg.measures``)."""
    from ..train.trainer import init_model  # here: the trainer imports torch, and this module is read without it

    start = time.perf_counter()
    chosen = selected(cfg.measures if measures is None else measures)
    if not chosen:
        return {}, 0.0
    device = next(model.parameters()).device
    if x is not None and y is not None:
        idx = measure_subset(len(x)).to(x.device)
        x, y = x[idx].to(device), y[idx].to(device)
        if x.dim() == 4 and any(isinstance(m, nn.Conv2d) for m in model.modules()):
            model = model.to(memory_format=torch.channels_last)  # as the trainer holds it: measured faster
            x = x.contiguous(memory_format=torch.channels_last)
    was_training = model.training
    try:
        result = compute_measures(model, lambda: init_model(cfg, data).to(device), tuple(data.shape), x, y,
                                  cfg.eval_batch_size or 500, chosen)
    finally:
        model.train(was_training)
    return result, time.perf_counter() - start


def with_measures(summary: dict, cfg: RunConfig, model: nn.Module, data: LabelledSplits,
                  x: torch.Tensor | None = None, y: torch.Tensor | None = None, *,
                  measures: str | None = None) -> dict:
    """``summary`` with ``measures`` (:func:`measures_of`; ``measures``: which, default the run's setting
    ``cfg.measures``) and ``measures_seconds`` added. A selection of no measure stores ``{}``. A run that
    diverged has no measures (its weights are not finite), and a measure that fails never fails the finished
    run: its summary then says ``measures_error`` instead."""
    start = time.perf_counter()
    base = {k: v for k, v in summary.items() if k != "measures_error"}
    try:
        if not selected(cfg.measures if measures is None else measures):
            return {**base, "measures": {}, "measures_seconds": 0.0}
        if summary.get("status") == "diverged":
            return {**summary, "measures": None, "measures_seconds": 0.0,
                    "measures_error": "the run diverged: its weights are not finite"}
        result, seconds = measures_of(cfg, model, data, x, y, measures)
    except Exception as exc:  # noqa: BLE001 -- a bug in a measure (or a name unknown here) must not lose the run
        return {**summary, "measures": None, "measures_seconds": time.perf_counter() - start,
                "measures_error": f"{type(exc).__name__}: {exc}"}
    return {**base, "measures": finite(result), "measures_seconds": seconds}


def merge_measures(old: dict | None, new: dict | None) -> dict | None:
    """The measures ``old`` (a summary's) with the ones measured again, ``new``, put over them: a measure of
    ``new`` replaces its value and reason; ``old``'s others stay (``shatter measures --measures NAMES``)."""
    if not old or new is None:
        return new
    if not new:
        return old
    why = {k: v for k, v in (old.get("unavailable") or {}).items() if k not in new}
    merged = {**old, **new, "unavailable": {**why, **(new.get("unavailable") or {})}}
    if not (new.get("measures_on") or {}).get("examples") and "measures_on" in old:  # none used now: the old say
        merged["measures_on"] = old["measures_on"]  # how many the old ones used
    return merged


def finite(result: dict) -> dict:
    """``result`` with every non-finite number None and its reason under ``unavailable``."""
    out, why = dict(result), dict(result.get("unavailable") or {})
    for key, value in result.items():
        if isinstance(value, float) and not math.isfinite(value):
            out[key] = None
            why[key] = f"not a finite number ({value})"
    out["unavailable"] = why
    return out
