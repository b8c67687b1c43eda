"""Loss landscapes of finished runs (:mod:`shattering.landscape` holds the maths): what ``shatter landscape`` and
the ``landscape`` artefact compute.

Every slice is evaluated on fixed, seeded subsets: :data:`EXAMPLES` training examples with the labels the run
was trained on (its corruption's) and as many test examples, in eval mode. Four kinds:

- ``line``: from the initialization (rebuilt exactly from the run's seed) to the solution, alpha in [-0.5, 1.5]
  (Goodfellow, Vinyals and Saxe, ICLR 2015), training and test loss and accuracy, and the largest rise of the
  training loss on [0, 1] (0: it falls monotonically);
- ``between``: from one run's solution to another's of the same architecture (another seed, another optimizer,
  true against random labels; Im, Tao and Branson 2016), with the barrier height. Batch norm's running statistics
  are recomputed at each point by default (``bn="recompute"``: a pass over the training subset in train mode,
  the statistics averaged over it; the interpolated statistics of two networks are not the statistics of the
  interpolated network), or interpolated with the weights (``bn="interpolate"``, the reference implementation's
  ``dir_type='states'``); ignoring them (the solution's own) gives wrong losses (Li et al.'s README);
- ``plane``: theta + a d_1 + b d_2 on a grid (default 51 x 51 over [-1, 1]^2), d_1 and d_2 Gaussian and
  filter-normalized (Li et al. 2018), biases and batch norm's parameters zeroed (``ignore="biasbn"``) or
  included; with the curvature of the two 1-D slices through the centre;
- ``trajectory``: the ``snapshots`` probe's weights projected on their two principal directions (Li et al.,
  Section 7), with the training loss on the plane they span.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..files import atomic_write_json, read_json
from ..landscape.directions import combine, flatten, random_direction, same_shapes, unflatten, weights_of
from ..landscape.evaluate import evaluate_affine, evaluate_points
from ..landscape.slices import (
    barrier,
    central_curvature,
    grid_coefficients,
    largest_rise,
    line_coefficients,
    principal_directions,
)
from ..runs.trained import trained_run
from ..train.in_memory import device_tensors
from ..train.trainer import init_model

EXAMPLES = 1000  # training examples (and test examples) of every slice: a seeded random subset
SUBSET_SEED = 0
LINE_ALPHAS = tuple(round(-0.5 + 0.05 * i, 2) for i in range(41))  # [-0.5, 1.5], step 0.05 (0 and 1 on it)
GRID = 51
SPAN = 1.0
BN_MODES = ("recompute", "interpolate")
KINDS = ("line", "between", "plane", "trajectory")


def slice_file(run_dir: str | Path, kind: str, other: str | Path | None = None) -> Path:
    """Where a slice of the run in ``run_dir`` is kept: ``RUN/landscape/slice-KIND[-OTHER_RUN_ID].json``."""
    suffix = f"-{Path(other).name.rsplit('_', 1)[-1]}" if other is not None else ""
    return Path(run_dir) / "landscape" / f"slice-{kind}{suffix}.json"


def stored_slice(run_dir: str | Path, kind: str, other: str | Path | None = None) -> dict | None:
    """The slice of ``kind`` kept in the run's record (:func:`computed_slice`), or None: what the claims of the
    ``landscape`` artefact read (the renderer computed them just before)."""
    found = read_json(slice_file(run_dir, kind, other)) if slice_file(run_dir, kind, other).is_file() else None
    return found.get("slice") if isinstance(found, dict) and isinstance(found.get("slice"), dict) else None


def computed_slice(run_dir: str | Path, kind: str, other: str | Path | None = None, **settings) -> dict:
    """The slice of ``kind`` (``line``, ``between`` with ``other``, ``plane``, ``trajectory``) with ``settings``
    (their functions' keywords): read from the run's record where the same was computed before, else computed and
    kept there (atomically) for the next time."""
    path = slice_file(run_dir, kind, other)
    key = {"kind": kind, "other": None if other is None else Path(other).name,
           **{k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}}
    found = read_json(path) if path.is_file() else None
    if isinstance(found, dict) and found.get("settings") == key and isinstance(found.get("slice"), dict):
        return found["slice"]
    if kind == "line":
        result = line_from_init(run_dir, **settings)
    elif kind == "between":
        result = between(run_dir, other, **settings)
    elif kind == "plane":
        result = plane(run_dir, **settings)
    elif kind == "trajectory":
        result = trajectory(run_dir, **settings)
    else:
        raise ConfigError(f"Unknown slice {kind!r}; choose one of {', '.join(KINDS)}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"settings": key, "slice": result})
    return result


def _subset(n: int, examples: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(SUBSET_SEED))[:min(examples, n)]


def _loaded(run_dir: str | Path, examples: int):
    """The run (network on the CPU) and its seeded training and test subsets."""
    trained = trained_run(run_dir, device="cpu")
    data = trained.data()
    if not hasattr(data, "x_train"):
        raise ConfigError(f"The run in {trained.run_dir} trained on {trained.config.dataset}, streamed from disk: a "
                          "landscape needs a data set held in memory.")
    t = device_tensors(data, torch.device("cpu"))
    tr, te = _subset(len(t["y_train"]), examples), _subset(len(t["y_test"]), examples)
    return trained, data, (t["x_train"][tr], t["y_train"][tr]), (t["x_test"][te], t["y_test"][te])


def _head(trained, kind: str, examples: tuple[int, int]) -> dict:
    cfg = trained.config
    return {"kind": kind, "run_id": cfg.run_id(), "model": cfg.model, "corruption": cfg.corruption,
            "optimizer": cfg.optimizer, "seed": cfg.seed, "train_examples": examples[0],
            "test_examples": examples[1], "labels": "as trained"}


def line_from_init(run_dir: str | Path, *, alphas: Sequence[float] = LINE_ALPHAS, examples: int = EXAMPLES) -> dict:
    """The ``line`` slice (module docstring) of the run in ``run_dir``."""
    start = time.perf_counter()
    trained, data, (x, y), (xt, yt) = _loaded(run_dir, examples)
    theta1 = weights_of(trained.model)
    theta0 = weights_of(init_model(trained.config, data))
    step = combine([(1.0, theta1), (-1.0, theta0)])
    coef = line_coefficients(alphas)
    out = _head(trained, "line", (len(x), len(xt)))
    train = evaluate_affine(trained.model, theta0, [step], coef, x, y)
    test = evaluate_affine(trained.model, theta0, [step], coef, xt, yt)
    out.update(alphas=list(map(float, alphas)), train_loss=train[0].tolist(), train_acc=train[1].tolist(),
               test_loss=test[0].tolist(), test_acc=test[1].tolist(),
               rise=largest_rise(alphas, train[0]), distance=float(flatten(step).norm()),
               seconds=time.perf_counter() - start)
    return out


def between(run_a: str | Path, run_b: str | Path, *, alphas: Sequence[float] = LINE_ALPHAS,
            examples: int = EXAMPLES, bn: str = "recompute") -> dict:
    """The ``between`` slice from the solution of ``run_a`` (alpha = 0) to that of ``run_b`` (alpha = 1)."""
    if bn not in BN_MODES:
        raise ConfigError(f"bn must be one of {', '.join(BN_MODES)} (how batch norm's running statistics follow the "
                          f"weights); got {bn!r}.")
    start = time.perf_counter()
    a, _, (x, y), (xt, yt) = _loaded(run_a, examples)
    b = trained_run(run_b, device="cpu")
    same_shapes(weights_of(a.model), weights_of(b.model), f"the runs {a.config.run_id()} and {b.config.run_id()}")
    if b.config.dataset != a.config.dataset:
        raise ConfigError(f"The runs {a.config.run_id()} and {b.config.run_id()} trained on different data sets "
                          f"({a.config.dataset}, {b.config.dataset}); compare two runs on one data set.")
    state_a = {k: v.detach().clone() for k, v in a.model.state_dict().items()}
    state_b = {k: v.detach().clone() for k, v in b.model.state_dict().items()}
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in a.model.modules())
    out = _head(a, "between", (len(x), len(xt)))
    out.update(other_run_id=b.config.run_id(), other_optimizer=b.config.optimizer, other_seed=b.config.seed,
               other_corruption=b.config.corruption, batch_norm=bn if has_bn else "none in the network")
    points = [_blend(state_a, state_b, float(t)) for t in alphas]
    if has_bn and bn == "recompute":
        points = [_recomputed(a.model, p, x) for p in points]
    train = evaluate_points(a.model, points, x, y)
    test = evaluate_points(a.model, points, xt, yt)
    names = {k for k, _ in a.model.named_parameters()}
    distance = float(sum(((state_a[k].double() - state_b[k].double()) ** 2).sum() for k in names) ** 0.5)
    out.update(alphas=list(map(float, alphas)), train_loss=train[0].tolist(), train_acc=train[1].tolist(),
               test_loss=test[0].tolist(), test_acc=test[1].tolist(), barrier=barrier(alphas, train[0]),
               test_barrier=barrier(alphas, test[0]), distance=distance, seconds=time.perf_counter() - start)
    return out


def plane(run_dir: str | Path, *, grid: int = GRID, span: float = SPAN, examples: int = EXAMPLES,
          ignore: str = "biasbn", seed: int = 0) -> dict:
    """The ``plane`` slice: the training loss and accuracy on a grid x grid plane of two filter-normalized
    directions drawn from ``seed`` and ``seed + 1``."""
    if not isinstance(grid, int) or grid < 3 or grid % 2 == 0:
        raise ConfigError(f"grid must be an odd whole number of at least 3 (so that the solution is its centre); "
                          f"got {grid!r}.")
    start = time.perf_counter()
    trained, _, (x, y), _ = _loaded(run_dir, examples)
    theta = weights_of(trained.model)
    d1, d2 = random_direction(theta, seed, ignore), random_direction(theta, seed + 1, ignore)
    axis = np.linspace(-span, span, grid)
    loss, acc = evaluate_affine(trained.model, theta, [d1, d2], grid_coefficients(axis, axis), x, y)
    loss, acc = loss.reshape(grid, grid), acc.reshape(grid, grid)
    mid = grid // 2
    out = _head(trained, "plane", (len(x), 0))
    out.update(axis=axis.tolist(), train_loss=loss.tolist(), train_acc=acc.tolist(), ignore=ignore, seed=seed,
               curvature=[central_curvature(axis, loss[:, mid]), central_curvature(axis, loss[mid, :])],
               seconds=time.perf_counter() - start)
    return out


def trajectory(run_dir: str | Path, *, grid: int = 21, examples: int = EXAMPLES) -> dict:
    """The ``trajectory`` slice: the run's ``snapshots`` projected on their two principal directions (from the
    final weights), and the training loss on a grid x grid plane covering them."""
    start = time.perf_counter()
    trained, _, (x, y), _ = _loaded(run_dir, examples)
    files = sorted((Path(trained.run_dir) / "probes" / "snapshots").glob("epoch-*.pt"))
    if len(files) < 2:
        raise ConfigError(f"The run in {trained.run_dir} kept {len(files)} snapshot(s); a trajectory needs at least "
                          "two: train it with --probe snapshots (default log=12).")
    theta = weights_of(trained.model)
    names = list(theta)
    snaps = torch.stack([flatten({k: torch.load(f, weights_only=True)[k] for k in names}) for f in files])
    pca = principal_directions(snaps, flatten(theta))
    coords = pca["coordinates"].numpy()
    reach = float(np.abs(coords).max()) * 1.2 or 1.0
    axis = np.linspace(-reach, reach, grid)
    dirs = [unflatten(pca["directions"][i], theta) for i in range(2)]
    loss, _ = evaluate_affine(trained.model, theta, dirs, grid_coefficients(axis, axis), x, y)
    out = _head(trained, "trajectory", (len(x), 0))
    out.update(epochs=[int(f.stem.split("-")[1]) for f in files], coordinates=coords.tolist(),
               explained=pca["explained"], axis=axis.tolist(), train_loss=loss.reshape(grid, grid).tolist(),
               seconds=time.perf_counter() - start)
    return out


def _blend(a: dict, b: dict, t: float) -> dict:
    """(1 - t) a + t b for every floating-point entry of two state dicts; integer buffers (batch norm's counters)
    from ``a``."""
    return {k: ((1 - t) * v + t * b[k]) if v.is_floating_point() else v for k, v in a.items()}


def _recomputed(model: nn.Module, state: dict, x: torch.Tensor, batch_size: int = 256) -> dict:
    """``state`` with batch norm's running statistics recomputed on ``x`` at its weights: a pass in train mode with
    cumulative averaging (momentum None) from reset statistics; the network itself is left as it was."""
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    try:
        model.load_state_dict(state)
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        with torch.no_grad():
            for s in range(0, len(x), batch_size):
                model(x[s:s + batch_size])
        return {k: v.detach().clone() for k, v in model.state_dict().items()}
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        model.load_state_dict(saved)
        model.eval()
