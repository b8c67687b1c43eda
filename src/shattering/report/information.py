"""The ``information`` artefact: each run's layers in the information plane (Shwartz-Ziv and Tishby 2017; Saxe et
al., ICLR 2018), from the ``information`` probe's files, for an MLP with tanh and with ReLU on true labels, random
labels, random pixels and Gaussian inputs, over seeds.

Writes ``information.png``/``.svg``/``.pdf`` (binned at 4 bins: one panel per activation and input, every layer's
trajectory (I(X;T), I(T;Y)) over the probed epochs, coloured by epoch, every seed), ``information-kde.*`` (the same
with the Kolchinsky-Tracey upper values at noise variance 0.1: what depends on the estimator), ``information-
compression.*`` (the last hidden layer's I(X;T) against the epoch under each estimator, with the training loss and
the epoch of fit beside it), ``information.md`` (the figures, the table, the claims), ``information.csv`` (one row
per run) and ``information.json`` (the sidecar).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from ..executors.outcome import Outcome
from ..experiments.claims.information import ESTIMATOR, compression
from ..experiments.presets import scale_claim
from ..probes import load_information
from ..runs import RunRecord
from .common import status_text, write_records, write_sidecar, write_text
from .plotting import FORMATS, PNG_DPI, RC, notes_line, status_caption

_METADATA = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None},
             "pdf": {"Creator": None, "Producer": None, "CreationDate": None}}
ESTIMATORS = (("binned4", "binning, 4 bins"), ("binned30", "binning, 30 bins"),
              ("kde_upper", "KDE upper, noise 0.1"))
COLUMNS = ("activation", "input", "seed", "run id", "status", "fit epoch", "ceiling log2 N",
           "last layer: peak I(X;T) (binned4)", "its epoch", "fall by the end", "fall (binned30)",
           "fall (KDE upper)", "final I(T;Y) (kNN)")


def _key(estimator: str, quantity: str) -> str:
    return f"{estimator}_{quantity}" if not estimator.startswith("kde") else f"kde_{quantity}_upper"


def run_series(o: Outcome) -> dict | None:
    """One run's information-plane series: layer -> estimator -> [(epoch, I(X;T), I(T;Y))], the last hidden
    layer's name, the ceiling and the final kNN I(T;Y); None without the probe's files."""
    if o.summary is None:
        return None
    info = load_information(o.run_dir)
    if not info:
        return None
    layers = sorted({name for by_layer in info.values() for name in by_layer},
                    key=lambda n: tuple(int(p) if p.isdigit() else p for p in n.replace(".", " ").split()))
    series: dict[str, dict[str, list]] = {}
    for layer in layers:
        for est, _ in ESTIMATORS:
            pts = [(e, v.get(_key(est, "i_xt")), v.get(_key(est, "i_ty")))
                   for e, by in sorted(info.items()) if (v := by.get(layer))]
            series.setdefault(layer, {})[est] = [(e, a, b) for e, a, b in pts if a is not None and b is not None]
    last_epoch = max(info)
    final = info[last_epoch].get(layers[-1], {})
    return {"series": series, "last": layers[-1], "ceiling": final.get("ceiling"), "knn": final.get("knn_i_ty")}


def render_information(preset, outcomes: Sequence[Outcome], out_dir: Path, notes: Sequence[str], *,
                       scale: str | None = None, provenance: bool = False) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = [(o, run_series(o)) for o in outcomes]
    activations = list(dict.fromkeys(_activation(o) for o, _ in runs))
    inputs = list(dict.fromkeys(o.config.corruption for o, _ in runs))
    missing = [o.config.run_id() for o, s in runs if s is None]
    caption = [*notes_line(notes),
               "Every layer's (I(X;T), I(T;Y)) at the probed epochs (log-spaced), coloured by epoch, one line per "
               "seed; in bits, on a fixed sample of training examples with the labels as trained, eval mode. "
               "Binning over each layer's own range; the ceiling log2 N is where every example has a bin pattern of "
               "its own. KDE: Kolchinsky and Tracey's upper value at noise variance 0.1 (it describes T + noise).",
               *([f"no information probe files: {', '.join(missing)}"] if missing else []),
               *status_caption(outcomes, lambda o: f"{_activation(o)} {o.config.corruption} seed {o.config.seed}",
                               "information")]
    paths: list[Path] = []
    with matplotlib.rc_context(RC):
        for stem, est in (("information", "binned4"), ("information-kde", "kde_upper")):
            fig = _planes(runs, activations, inputs, est, preset, scale)
            paths += _save(fig, out_dir, stem)
        paths += _save(_compression(runs, activations, inputs, preset, scale), out_dir, "information-compression")
    rows = [_row(o, s) for o, s in runs]
    md = [f"# Zhang et al. (ICLR 2017), {preset.paper_ref}: {scale_claim(scale)}", "", f"**{preset.title}**", "",
          *(f"![{p.stem}]({p.name})" for p in paths if p.suffix == ".png"), "", *(f"- {c}" for c in caption), "",
          "| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|",
          *("| " + " | ".join(r) + " |" for r in rows), ""]
    paths.append(write_text(out_dir / "information.md", "\n".join(md)))
    paths.append(write_records(out_dir / "information.csv", COLUMNS,
                               (dict(zip(COLUMNS, r, strict=True)) for r in rows)))
    paths.append(write_sidecar(out_dir, "information", preset, outcomes, notes, paths, scale=scale, caption=caption,
                               table={"columns": list(COLUMNS), "rows": rows}))
    return paths


# INTERNAL UTILITIES -------------------------------------------------------------------------------


def _activation(o: Outcome) -> str:
    return str(o.config.model_kwargs().get("activation", "relu"))


def _save(fig: Figure, out_dir: Path, stem: str) -> list[Path]:
    paths = []
    for fmt in FORMATS:
        path = out_dir / f"{stem}.{fmt}"
        fig.savefig(path, format=fmt, dpi=PNG_DPI, metadata=_METADATA[fmt])
        paths.append(path)
    return paths


def _figure(rows: int, cols: int, title: str, preset, scale) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(3.4 * cols + 1.2, 3.0 * rows + 0.9))
    fig.suptitle(f"Zhang et al. (ICLR 2017), {preset.paper_ref}: {scale_claim(scale, short=True)}\n{title}",
                 fontsize=9)
    axes = np.array(fig.subplots(rows, cols, squeeze=False))
    fig.subplots_adjust(left=0.07, right=0.9, top=1 - 0.75 / (3.0 * rows + 0.9), bottom=0.1, wspace=0.35,
                        hspace=0.45)
    return fig, axes


def _planes(runs, activations, inputs, est: str, preset, scale) -> Figure:
    what = dict(ESTIMATORS)[est]
    fig, axes = _figure(len(activations), len(inputs), f"the information plane ({what}): every layer, every seed, "
                        "coloured by epoch (log)", preset, scale)
    epochs = [e for _, s in runs if s for layer in s["series"].values() for e, _, _ in layer[est]]
    norm = matplotlib.colors.LogNorm(vmin=1, vmax=max(epochs + [2]))
    cmap = matplotlib.colormaps["viridis"]
    for i, act in enumerate(activations):
        for j, inp in enumerate(inputs):
            ax = axes[i, j]
            for o, s in runs:
                if s is None or _activation(o) != act or o.config.corruption != inp:
                    continue
                for layer, by_est in s["series"].items():
                    pts = by_est[est]
                    if not pts:
                        continue
                    xs, ys = [p[1] for p in pts], [p[2] for p in pts]
                    ax.plot(xs, ys, color="#bbbbbb", lw=0.6, zorder=1)
                    ax.scatter(xs, ys, c=[max(p[0], 1) for p in pts], cmap=cmap, norm=norm, s=9, zorder=2)
                    ax.annotate(layer.split(".")[-1], (xs[-1], ys[-1]), fontsize=6, color="#555555")
                if s.get("ceiling"):
                    ax.axvline(s["ceiling"], color="#d62728", lw=0.6, ls=":")
            ax.set_title(f"{act}, {inp}", fontsize=8, loc="left")
            ax.set_xlabel("I(X;T) bits", fontsize=7)
            ax.set_ylabel("I(T;Y) bits", fontsize=7)
            ax.grid(alpha=0.3)
    cax = fig.add_axes((0.92, 0.15, 0.012, 0.6))
    fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), cax=cax, label="epoch")
    return fig


def _compression(runs, activations, inputs, preset, scale) -> Figure:
    fig, axes = _figure(len(activations), len(inputs), "the last hidden layer's I(X;T) against the epoch under each "
                        "estimator (solid: binning 4, dashed: 30, dotted: KDE upper), the training loss (grey, "
                        "right axis) and the epoch of fit (vertical line)", preset, scale)
    styles = {"binned4": "-", "binned30": "--", "kde_upper": ":"}
    for i, act in enumerate(activations):
        for j, inp in enumerate(inputs):
            ax = axes[i, j]
            twin = ax.twinx()
            for o, s in runs:
                if s is None or _activation(o) != act or o.config.corruption != inp:
                    continue
                for est, style in styles.items():
                    pts = s["series"][s["last"]][est]
                    ax.plot([max(p[0], 1) for p in pts], [p[1] for p in pts], ls=style, color=f"C{o.config.seed}",
                            lw=1.0)
                fit = (o.summary or {}).get("fit_epoch")
                if fit:
                    ax.axvline(fit, color=f"C{o.config.seed}", lw=0.6, alpha=0.6)
                metrics = RunRecord(o.run_dir).read_metrics()
                losses = [(m["epoch"], m.get("running_train_loss")) for m in metrics
                          if isinstance(m.get("running_train_loss"), (int, float)) and m.get("epoch")]
                if losses:
                    twin.plot([e for e, _ in losses], [v for _, v in losses], color="#999999", lw=0.6, alpha=0.7)
            ax.set_xscale("log")
            ax.set_title(f"{act}, {inp}", fontsize=8, loc="left")
            ax.set_xlabel("epoch", fontsize=7)
            ax.set_ylabel("I(X;T) bits", fontsize=7)
            twin.set_ylabel("training loss", fontsize=7, color="#777777")
            ax.grid(alpha=0.3)
    return fig


def _row(o: Outcome, s: dict | None) -> list[str]:
    def num(v, fmt="{:.2f}"):
        return "—" if v is None else fmt.format(v)

    falls = {}
    peak = None
    if s is not None:
        for est, _ in ESTIMATORS:
            pts = [(e, a) for e, a, _ in s["series"][s["last"]][est]]
            if pts:
                c = compression(pts)
                falls[est] = c["fall"]
                if est == ESTIMATOR.removesuffix("_i_xt"):
                    peak = c
    fit = (o.summary or {}).get("fit_epoch")
    return [_activation(o), o.config.corruption, str(o.config.seed), f"`{o.config.run_id()}`", status_text(o),
            "—" if fit is None else str(fit), num(s and s.get("ceiling")), num(peak and peak["peak"]),
            "—" if peak is None else str(peak["peak_epoch"]), num(peak and peak["fall"]),
            num(falls.get("binned30")), num(falls.get("kde_upper")), num(s and s.get("knn"))]

