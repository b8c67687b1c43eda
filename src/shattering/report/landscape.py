"""Figures of loss-landscape slices (:mod:`shattering.experiments.landscape`): a line or the path between two
solutions (training and test loss against alpha, accuracy beside it), a plane (contours and a surface on one
colour scale), a trajectory (its projections on the contours of the plane it spans). One slice per call
(``shatter landscape``), or several side by side on one colour scale (the ``landscape`` artefact)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from ..files import json_text
from .common import write_text
from .plotting import FORMATS, PNG_DPI, RC

_METADATA = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None},
             "pdf": {"Creator": None, "Producer": None, "CreationDate": None}}


def describe(result: dict) -> str:
    """One line saying what a slice found."""
    kind = result["kind"]
    name = f"{result['model']} {result['corruption']} {result['optimizer']} seed {result['seed']}"
    if kind == "line":
        r = result["rise"]
        where = (f" (alpha {r['from_alpha']:g} to {r['to_alpha']:g})" if r["rise"] > 0
                 else " (it falls monotonically)")
        return f"line from initialization of {name}: largest rise of the training loss on [0, 1] {r['rise']:.4g}{where}"
    if kind == "between":
        b = result["barrier"]
        return (f"between {name} and {result['other_run_id']}: barrier {b['height']:.4g} at alpha {b['alpha']:g} "
                f"(end losses {b['loss_0']:.4g} and {b['loss_1']:.4g}), distance {result['distance']:.4g}, batch "
                f"norm: {result['batch_norm']}")
    if kind == "plane":
        return (f"plane of {name}: curvature of the two central slices {result['curvature'][0]:.4g} and "
                f"{result['curvature'][1]:.4g} (filter-normalized directions, seed {result['seed']})")
    return (f"trajectory of {name}: {len(result['epochs'])} snapshots, the two principal directions explain "
            f"{100 * sum(result['explained']):.1f}% of their variation")


def draw_slices(results: Sequence[dict], out_dir: Path, stem: str, title: str, columns: int = 3) -> list[Path]:
    """``stem.png``/``.svg``/``.pdf`` with one panel per slice, ``columns`` to a row (planes and trajectories on
    one colour scale), and ``stem.json`` with the slices' numbers; the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    surfaces = [r for r in results if r["kind"] in ("plane", "trajectory")]
    levels = _levels(surfaces)
    with matplotlib.rc_context(RC):
        n = len(results)
        cols = min(n, columns)
        rows = -(-n // cols)
        width = max(7.0, 5.2 * cols)
        lines = textwrap.wrap(title, int(width * 14))
        fig = Figure(figsize=(width, 4.0 * rows + 0.2 * len(lines)))
        fig.suptitle("\n".join(lines), fontsize=9)
        for i, r in enumerate(results):
            ax = fig.add_subplot(rows, cols, i + 1)
            if r["kind"] in ("line", "between"):
                _draw_line(ax, r)
            else:
                _draw_contours(ax, r, levels)
        top = 1 - (0.45 + 0.18 * len(lines)) / (4.0 * rows + 0.2 * len(lines))
        fig.subplots_adjust(left=0.07, right=0.92, top=top, bottom=0.13 / rows, wspace=0.45, hspace=0.45)
        paths = []
        for fmt in FORMATS:
            path = out_dir / f"{stem}.{fmt}"
            fig.savefig(path, format=fmt, dpi=PNG_DPI, metadata=_METADATA[fmt])
            paths.append(path)
    paths.append(write_text(out_dir / f"{stem}.json", json_text({"slices": list(results)}, strict=True)))
    return paths


def draw_surface(result: dict, out_dir: Path, stem: str, levels: np.ndarray | None = None) -> list[Path]:
    """A plane's training loss as a surface (Li et al.'s 3-D view), on ``levels``' colour scale."""
    loss = np.asarray(result["train_loss"])
    axis = np.asarray(result["axis"])
    a, b = np.meshgrid(axis, axis, indexing="ij")
    levels = _levels([result]) if levels is None else levels
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(5.5, 4.6))
        ax = fig.add_subplot(projection="3d")
        ax.plot_surface(a, b, loss, cmap="viridis", vmin=levels[0], vmax=levels[-1], linewidth=0)
        ax.set_xlabel("d1")
        ax.set_ylabel("d2")
        ax.set_zlabel("training loss")
        ax.set_title(f"{result['model']} {result['corruption']}", fontsize=9)
        paths = []
        for fmt in FORMATS:
            path = Path(out_dir) / f"{stem}.{fmt}"
            fig.savefig(path, format=fmt, dpi=PNG_DPI, metadata=_METADATA[fmt])
            paths.append(path)
    return paths


def _levels(surfaces: Sequence[dict]) -> np.ndarray:
    """Contour levels shared by every plane, log-spaced from the lowest loss to the 95th percentile of all of them
    (the far corners of a plane reach losses that would flatten every contour near the minimum)."""
    values = np.concatenate([np.asarray(r["train_loss"], dtype=float).ravel() for r in surfaces]) if surfaces else \
        np.array([0.0, 1.0])
    values = values[np.isfinite(values)]
    low, high = max(float(values.min()), 1e-4), float(np.percentile(values, 95))
    # log-spaced: the planes of networks whose losses differ by orders of magnitude share one scale and each still
    # shows its contours near its minimum
    return np.geomspace(low, high if high > low else low * 10, 30)


def _draw_line(ax, r: dict) -> None:
    a = r["alphas"]
    ax.plot(a, r["train_loss"], color="#1f77b4", lw=1.6, label="training loss")
    ax.plot(a, r["test_loss"], color="#ff7f0e", lw=1.6, label="test loss")
    ax.set_xlabel("alpha" + (" (0: initialization, 1: solution)" if r["kind"] == "line" else
                             f" (0: this run, 1: {r['other_run_id']})"), fontsize=8)
    ax.set_ylabel("loss")
    for x in (0, 1):
        ax.axvline(x, color="#aaaaaa", lw=0.8, ls=":")
    twin = ax.twinx()
    twin.plot(a, [100 * v for v in r["train_acc"]], color="#1f77b4", lw=1.0, ls="--")
    twin.plot(a, [100 * v for v in r["test_acc"]], color="#ff7f0e", lw=1.0, ls="--")
    twin.set_ylim(0, 100)
    twin.set_ylabel("accuracy % (dashed)", fontsize=8)
    ax.set_title(_label(r), fontsize=8, loc="left")
    ax.legend(fontsize=7, loc="upper center")


def _draw_contours(ax, r: dict, levels: np.ndarray) -> None:
    axis = np.asarray(r["axis"])
    loss = np.asarray(r["train_loss"])
    a, b = np.meshgrid(axis, axis, indexing="ij")
    cs = ax.contour(a, b, loss, levels=levels, cmap="viridis", linewidths=0.8)
    ax.clabel(cs, cs.levels[::6], fontsize=6, fmt="%.2g")
    if r["kind"] == "trajectory":
        c = np.asarray(r["coordinates"])
        ax.plot(c[:, 0], c[:, 1], "o-", color="#d62728", ms=3, lw=1.0)
        ax.plot([0], [0], "*", color="#d62728", ms=9)
        ax.set_xlabel(f"principal direction 1 ({100 * r['explained'][0]:.1f}%)", fontsize=8)
        ax.set_ylabel(f"principal direction 2 ({100 * r['explained'][1]:.1f}%)", fontsize=8)
    else:
        ax.plot([0], [0], "*", color="#d62728", ms=9)
        ax.set_xlabel("filter-normalized direction 1", fontsize=8)
        ax.set_ylabel("filter-normalized direction 2", fontsize=8)
    ax.set_title(f"{_label(r)}: training loss", fontsize=8, loc="left")
    ax.set_aspect("equal")


def _label(r: dict) -> str:
    label = f"{r['model']}, {r['corruption']}, {r['optimizer']}, seed {r['seed']}"
    if r["kind"] == "between":
        label += f" to {r['other_corruption']}, {r['other_optimizer']}, seed {r['other_seed']}"
    return label


# -- the `landscape` artefact ---------------------------------------------------------------------------------

TABLE_COLUMNS = ("model", "runs", "rise from initialization, true labels", "rise, random labels",
                 "barrier between two SGD seeds", "barrier between SGD and Adam", "central curvature, true labels",
                 "central curvature, random labels", "trajectory: variance on 2 directions", "seconds")


def render_landscape(preset, outcomes, out_dir: Path, notes: Sequence[str], *, scale: str | None = None,
                     provenance: bool = False) -> list[Path]:
    """Compute (or read back from each run's record) every slice of the artefact, draw the lines, the paths
    between solutions and the planes (one colour scale), and write the table and the sidecar."""
    from ..experiments.landscape import computed_slice
    from ..experiments.presets import scale_claim
    from ..experiments.presets_beyond import LANDSCAPE_SLICES
    from .common import status_of, write_records, write_sidecar
    from .plotting import notes_line, status_caption

    out_dir = Path(out_dir)
    settings = LANDSCAPE_SLICES.get(scale or "", LANDSCAPE_SLICES["quick"])
    roles: dict[str, dict[str, list]] = {}
    for o in outcomes:
        if o.summary is not None and status_of(o) != "diverged":
            role = ("random" if o.config.corruption == "random-labels" else
                    "adam" if o.config.optimizer != "sgd" else "sgd")
            roles.setdefault(o.config.model, {}).setdefault(role, []).append(o)
    for r in roles.values():
        for runs in r.values():
            runs.sort(key=lambda o: o.config.seed)
    lines, paths_between, planes, rows, problems = [], [], [], [], []

    def attempt(what: str, *args, **kwargs):
        try:
            return computed_slice(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 -- a run without a checkpoint: said in the caption, not fatal
            problems.append(f"{what}: {type(exc).__name__}: {exc}")
            return None

    for model, r in roles.items():
        grid = settings["grid"].get(model, settings["default_grid"])
        sgd, adam, random = r.get("sgd", []), r.get("adam", []), r.get("random", [])
        got = {}
        for role, runs in (("sgd", sgd), ("random", random)):
            if runs:
                d = runs[0].run_dir
                got[f"line_{role}"] = attempt(f"{model} {role} line", d, "line", examples=settings["examples"])
                got[f"plane_{role}"] = attempt(f"{model} {role} plane", d, "plane", grid=grid,
                                               examples=settings["plane_examples"])
        if len(sgd) > 1:
            got["seeds"] = attempt(f"{model} seeds", sgd[0].run_dir, "between", sgd[1].run_dir,
                                   examples=settings["examples"])
        if sgd and adam:
            got["optimizers"] = attempt(f"{model} optimizers", sgd[0].run_dir, "between", adam[0].run_dir,
                                        examples=settings["examples"])
        if sgd and (Path(sgd[0].run_dir) / "probes" / "snapshots").is_dir():
            got["trajectory"] = attempt(f"{model} trajectory", sgd[0].run_dir, "trajectory",
                                        grid=max(5, grid // 2 | 1), examples=settings["plane_examples"])
        lines += [got[k] for k in ("line_sgd", "line_random") if got.get(k)]
        paths_between += [got[k] for k in ("seeds", "optimizers") if got.get(k)]
        planes += [got[k] for k in ("plane_sgd", "plane_random", "trajectory") if got.get(k)]
        rows.append(_row(model, got, [o.config.run_id() for o in outcomes if o.config.model == model
                                      and o.summary is not None]))
    caption = [*notes_line(notes),
               f"Slices on fixed seeded subsets ({settings['examples']} training and test examples for lines, "
               f"{settings['plane_examples']} for planes) with the labels each run trained on, eval mode; planes of "
               "filter-normalized Gaussian directions (biases and batch norm's parameters zeroed), contours on one "
               "colour scale; between two solutions, batch norm's statistics recomputed at each point.",
               *(["not computed: " + "; ".join(problems)] if problems else []),
               *status_caption(outcomes, lambda o: f"{o.config.model} {o.config.corruption} {o.config.optimizer}",
                               "landscape")]
    paths: list[Path] = []
    for stem, group, what in (("landscape-lines", lines, "the line from initialization (0) to the solution (1)"),
                              ("landscape-between", paths_between, "between two solutions: two SGD seeds, SGD and "
                                                                   "Adam"),
                              ("landscape-planes", planes, "filter-normalized planes and the SGD trajectory")):
        if group:
            paths += draw_slices(group, out_dir, stem, f"{preset.paper_ref}: {what}")
    figures = [p for p in paths if p.suffix == ".png"]
    md_lines = [f"# Zhang et al. (ICLR 2017), {preset.paper_ref}: {scale_claim(scale)}", "", f"**{preset.title}**", "",
                *(f"![{p.stem}]({p.name})" for p in figures), "", *(f"- {c}" for c in caption), "",
                "| " + " | ".join(TABLE_COLUMNS) + " |", "|" + "|".join("---" for _ in TABLE_COLUMNS) + "|",
                *("| " + " | ".join(row) + " |" for row in rows), ""]
    paths.append(write_text(out_dir / "landscape.md", "\n".join(md_lines)))
    paths.append(write_records(out_dir / "landscape.csv", TABLE_COLUMNS, (dict(zip(TABLE_COLUMNS, row, strict=True))
                                                                          for row in rows)))
    paths.append(write_sidecar(out_dir, "landscape", preset, outcomes, notes, paths, scale=scale, caption=caption,
                               table={"columns": list(TABLE_COLUMNS), "rows": rows}))
    return paths


def _row(model: str, got: dict, run_ids: list[str]) -> list[str]:
    def num(v, fmt="{:.3g}"):
        return "not computed" if v is None else fmt.format(v)

    line_t, line_r = got.get("line_sgd"), got.get("line_random")
    seeds, opt = got.get("seeds"), got.get("optimizers")
    pt, pr, traj = got.get("plane_sgd"), got.get("plane_random"), got.get("trajectory")
    seconds = sum(s["seconds"] for s in got.values() if s)
    return [model, " ".join(run_ids), num(line_t and line_t["rise"]["rise"]), num(line_r and line_r["rise"]["rise"]),
            num(seeds and seeds["barrier"]["height"]), num(opt and opt["barrier"]["height"]),
            num(pt and sum(pt["curvature"]) / 2), num(pr and sum(pr["curvature"]) / 2),
            num(traj and sum(traj["explained"]), "{:.1%}"), f"{seconds:.0f}"]
