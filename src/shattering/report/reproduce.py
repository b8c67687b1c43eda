"""``reproduce``: every run of a preset swept, then its figure or table drawn (the paper's artefacts: Figures 1
and 2, Tables 1-4 of Zhang et al., ICLR 2017). What ``shatter reproduce`` runs, callable from Python.

The runs go to ``out/<run>/`` (finished runs are read, broken ones resumed, a failing run does not stop the
others), then each preset's artefact is drawn into ``out/artefacts/<preset>/``. Running it again trains nothing
and rewrites the same bytes.
"""

from __future__ import annotations

import dataclasses
import sys
import traceback
from collections.abc import Sequence

from ..config import RunConfig
from ..data.catalogue import dataset_info
from ..data.location import locate_image_folder
from ..data.user_data import dataset_key
from ..errors import ConfigError, DataNotFoundError, ShatteringError
from ..experiments.presets import PRESETS, Preset, get_preset

# Names ``reproduce`` accepts besides the presets: unions of presets.
GROUPS = {"fig1": ("fig1a", "fig1bc"), "imagenet": ("table2", "fig2a"),
          "beyond": ("memorization", "slowdown", "measures"), "all": tuple(PRESETS)}


def check_user_data(configs: list[RunConfig]) -> None:
    """Fail now, with one sentence, when runs need an image folder (ImageNet) that is not there."""
    for dataset, data_dir in sorted({(c.dataset, c.data_dir) for c in configs}, key=str):
        if dataset_info(dataset).kind == "image-folder":
            locate_image_folder(dataset, data_dir)


def reproduce_presets(name: str) -> list[Preset]:
    """The presets ``shatter reproduce NAME`` draws: one preset, or a group (``fig1``, ``all``)."""
    names = GROUPS.get(name, (name,))
    for n in names:
        if n not in PRESETS:
            raise ConfigError(f"Unknown preset {n!r}; known presets: {', '.join((*PRESETS, *GROUPS))}.")
    return [get_preset(n) for n in names]


def measured_as_asked(outcome):
    """``outcome`` with the measures its run setting ``measures`` selects and its summary lacks (a run finished
    before under another setting, read back) computed from its checkpoint and written into its summary
    (:func:`shattering.runs.measure_run`); as it was where it has them all, did not finish, or cannot be measured
    (no checkpoint: the artefact then says "not measured")."""
    from ..errors import RecordError
    from ..measures import selected
    from ..runs import measure_run

    summary = outcome.summary
    if summary is None or summary.get("status") == "diverged" or summary.get("measures") is None:
        return outcome
    missing = [m.name for m in selected(outcome.config.measures) if m.name not in summary["measures"]]
    if not missing:
        return outcome
    try:
        return dataclasses.replace(outcome, summary=measure_run(outcome.run_dir, measures=",".join(missing)))
    except RecordError:
        return outcome


def reproduce(name: str, scale: str = "quick", *, dataset=None, seeds: int = 1, out: str = "runs",
              progress: bool = True, log=None, pack: int | None = None, executor: str = "local",
              executor_options: dict | None = None, base: RunConfig | None = None, seed: int = 0,
              data_seed: int = 0, models: Sequence | None = None, rerun: bool = False, keep_checkpoints: str = "last",
              local_workers: int | None = None, **overrides) -> dict:
    """Sweep every run of preset ``name`` (or group) and draw each preset's artefact.

    ``base``, ``seed``, ``data_seed``, ``models`` and ``overrides`` go to every preset's
    :meth:`~shattering.experiments.presets.Preset.configs` (the settings under and over the preset's own);
    ``rerun``, ``keep_checkpoints`` and ``local_workers`` to :func:`~shattering.executors.sweep.run_sweep`.

    Returns ``{"outcomes": [...], "artefacts": {preset: [paths]}, "render_errors": {preset: text},
    "skipped": {preset: why}}``; one outcome per distinct run (presets that share a run share its outcome).
    A group skips presets whose data the user must supply (ImageNet) when it is not found; a preset named
    alone raises instead.
    """
    from ..executors import sweep  # torch: kept off `shatter --help`, which reads GROUPS here
    from .renderers import artefact_dir, render  # matplotlib: kept off every command's start-up

    presets = reproduce_presets(name)
    dataset = dataset_key(dataset) if dataset is not None else None  # the user's data: a path or ArrayData
    computed = [p for p in presets if p.computed]
    plans, skipped = [], {}
    for p in presets:
        if p.computed:
            continue
        configs = p.configs(scale, dataset=dataset, seeds=seeds, out=out, base=base, seed=seed, data_seed=data_seed,
                            models=models, **overrides)
        try:
            check_user_data(configs)
        except DataNotFoundError as exc:
            if name in PRESETS or name == "imagenet":
                raise
            skipped[p.name] = str(exc)
            continue
        plans.append((p, configs))
    outcomes = sweep.run_sweep([cfg for _, configs in plans for cfg in configs], progress=progress, log=log, pack=pack,
                               executor=executor, executor_options=executor_options, rerun=rerun,
                               keep_checkpoints=keep_checkpoints, local_workers=local_workers)
    outcomes = [measured_as_asked(o) for o in outcomes]
    by_id = {o.config.run_id(): o for o in outcomes}
    artefacts, errors = {}, {}
    for preset, configs in plans:
        mine = [by_id[cfg.run_id()] for cfg in configs]
        try:
            artefacts[preset.name] = render(preset, mine, artefact_dir(out, preset.name),
                                            preset.notes(scale, dataset, base=base, models=models, **overrides),
                                            scale=scale)
        except Exception as exc:  # a drawing bug must not hide the other artefacts; the trace goes to stderr
            errors[preset.name] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc(file=sys.stderr)
    for preset in computed:  # no training runs: the preset computes its rows (Table 3: kernels)
        out_dir = artefact_dir(out, preset.name)
        try:
            artefacts[preset.name] = render(preset, preset.compute(scale, dataset, out_dir), out_dir,
                                            preset.notes(scale, dataset), scale=scale)
        except ShatteringError:
            raise
        except Exception as exc:
            errors[preset.name] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc(file=sys.stderr)
    return {"outcomes": outcomes, "artefacts": artefacts, "render_errors": errors, "skipped": skipped}
