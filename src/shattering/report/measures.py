"""Complexity measures against label corruption (Section 2.2 of Zhang et al., ICLR 2017: a measure that explains
generalization must tell true labels from random ones, which the same network fits equally well), with Jiang et
al.'s protocol (ICLR 2020, "Fantastic generalization measures and where to find them"): the Kendall rank
correlation of each measure with test error over many runs, here the runs of the Fig. 1b/1c corruption sweep.

Each run's summary holds ``summary["measures"]`` (norms, spectral products, margins, path norm, a PAC-Bayes
sharpness; a value of None, or a key missing, is shown as "not measured"). The measures compared are the
registry's (:mod:`shattering.measures.registry`: every measure of kind ``number``, a measure registered by the
user's code included, with the expected sign its ``more_complex`` direction gives; a ``flag`` such as
``pac_bayes_sigma_capped`` qualifies another and is not ranked). Writes ``measures.md`` (both tables
and the verdicts), ``measures.csv`` (one row per run and measure), ``measures.png``/``.svg``/``.pdf`` (each
measure against p, one panel per measure) and ``measures.json`` (the sidecar). Only runs that fit are compared
(at 100% training accuracy, test error is the generalization gap); the others are listed, never used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib
from matplotlib.lines import Line2D

from ..executors.outcome import Outcome
from ..experiments.presets import scale_claim
from ..measures import measures as registered_measures
from .common import mean_ci, status_of, write_csv, write_sidecar, write_text
from .figures import MODEL_COLORS, MODEL_MARKERS
from .paper_numbers import MODEL_TITLES
from .plotting import RC, figure, legend_beside, notes_line, save, status_caption
from .verdicts import claim, claim_lines, kendall_tau_b

NOT_MEASURED = "not measured"
PANEL_COLUMNS = 4
AGREE_TAU = 0.5  # |tau| from which a measure is said to track test error
COLUMNS = ("model", "measure", "expected sign", "true labels (p = 0)", "random labels (p = 1)", "random / true",
           "tau with test error, this model", "tau with test error, all models")


def compared() -> dict[str, tuple[str, int]]:
    """Every measure the artefact compares, from the registry as it is now: name -> (title, the sign of its
    expected correlation with test error: +1 where a larger value means a more complex function, a norm or a
    sharpness; -1 where a larger one means a simpler function, a margin or the PAC-Bayes sigma)."""
    return {m.name: (m.title, m.sign) for m in registered_measures() if m.kind == "number"}


def __getattr__(name: str) -> dict[str, tuple[str, int]]:
    """``MEASURES``: :func:`compared`, as the registry is now."""
    if name == "MEASURES":
        return compared()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def measure_value(o: Outcome, name: str) -> float | None:
    """The run's value of measure ``name``; None where it was not measured (or the run did not finish)."""
    value = ((o.summary or {}).get("measures") or {}).get(name)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def side_by_side(outcomes: Sequence[Outcome]) -> list[dict]:
    """Per model and measure: the mean value over the runs that fit on true labels and on random labels."""
    rows = []
    for model in _models(outcomes):
        runs = [o for o in outcomes if o.config.model == model and status_of(o) == "fit"]
        for name in compared():
            means = {}
            for p in (0.0, 1.0):
                values = [v for o in runs if _p(o) == p and (v := measure_value(o, name)) is not None]
                means[p] = mean_ci(values)[0] if values else None
            ratio = means[1.0] / means[0.0] if means[0.0] and means[1.0] is not None else None
            rows.append({"model": model, "measure": name, "true": means[0.0], "random": means[1.0], "ratio": ratio})
    return rows


def rank_correlations(outcomes: Sequence[Outcome]) -> list[dict]:
    """Per measure: Kendall's tau-b of the measure with test error over the sweep's runs that fit, for each model
    and pooled over every model (Jiang et al. 2020), with the number of runs each rests on."""
    fitted = [o for o in outcomes if status_of(o) == "fit"]
    rows = []
    for name, (_, sign) in compared().items():
        row = {"measure": name, "sign": sign, "per_model": {}}
        for group, runs in [*((m, [o for o in fitted if o.config.model == m]) for m in _models(outcomes)),
                            ("all", fitted)]:
            pairs = [(v, 1 - o.summary["final"]["test_acc"]) for o in runs if (v := measure_value(o, name)) is not None]
            tau = kendall_tau_b([a for a, _ in pairs], [b for _, b in pairs])
            entry = {"tau": tau, "n": len(pairs)}
            if group == "all":
                row["pooled"] = entry
            else:
                row["per_model"][group] = entry
        rows.append(row)
    return rows


def measures_claims(taus: Sequence[dict]) -> list[dict]:
    """Per measure measured on any run: whether it ranks the runs as test error does, in its expected direction
    (pooled tau times the expected sign at least :data:`AGREE_TAU`)."""
    claims, titles = [], {name: title for name, (title, _) in compared().items()}
    for row in taus:
        tau, n = row["pooled"]["tau"], row["pooled"]["n"]
        if n == 0:
            continue
        title = titles.get(row["measure"], row["measure"])
        word = "grows" if row["sign"] > 0 else "falls"
        verdict = "undecided" if tau is None else "holds" if tau * row["sign"] >= AGREE_TAU else "does not hold"
        evidence = (f"pooled tau = {tau:+.2f} over {n} runs that fit" if tau is not None
                    else f"{n} run(s): no ranking (constant values)")
        claims.append(claim(f"the {title} {word} with test error (|tau| >= {AGREE_TAU:g} in the expected direction)",
                            verdict, evidence, "Jiang et al. 2020, Section 4 (Kendall's rank correlation)"))
    return claims


def render_measures(preset, outcomes: Sequence[Outcome], out_dir: Path, notes: Sequence[str], *,
                    scale: str | None = None, provenance: bool = False) -> list[Path]:
    """The two tables (true against random labels; rank correlations over the sweep) and the figure."""
    out_dir = Path(out_dir)
    measures = compared()
    sides, taus = side_by_side(outcomes), rank_correlations(outcomes)
    claims = measures_claims(taus)
    models = _models(outcomes)
    by_measure = {r["measure"]: r for r in taus}
    columns = COLUMNS
    rows = [(MODEL_TITLES.get(r["model"], r["model"]), measures[r["measure"]][0],
             "+" if measures[r["measure"]][1] > 0 else "-", _value(r["true"]), _value(r["random"]),
             f"{r['ratio']:.3g}" if r["ratio"] is not None else "—",
             _tau(by_measure[r["measure"]]["per_model"][r["model"]]), _tau(by_measure[r["measure"]]["pooled"]))
            for r in sides]
    with matplotlib.rc_context(RC):
        caption = [*notes_line(notes),
                   "Each measure against label corruption p, one line per model: means over the runs that fit at "
                   "each p (runs that did not fit are not drawn). A panel without lines: not measured.",
                   *claim_lines(claims), *status_caption(outcomes, _label, "measures")]
        fig, axes = figure(PANEL_COLUMNS, preset, caption, panel_w=2.9, panel_h=2.3, scale=scale, provenance=provenance,
                           legend_w=2.2, nrows=math.ceil(len(measures) / PANEL_COLUMNS))
        for i, (ax, (name, (title, _))) in enumerate(zip(axes, measures.items(), strict=False)):
            drawn = []
            for model in models:
                pts = []
                for p in sorted({_p(o) for o in outcomes if o.config.model == model}):
                    values = [v for o in outcomes if o.config.model == model and _p(o) == p
                              and status_of(o) == "fit" and (v := measure_value(o, name)) is not None]
                    if values:
                        pts.append((p, mean_ci(values)[0]))
                if pts:
                    ax.plot([p for p, _ in pts], [v for _, v in pts], color=MODEL_COLORS.get(model, "#555555"),
                            marker=MODEL_MARKERS.get(model, "o"), ms=4, lw=1.3)
                    drawn += [v for _, v in pts]
            if not drawn:
                ax.text(0.5, 0.5, NOT_MEASURED, transform=ax.transAxes, ha="center", va="center", color="#777777")
            elif min(drawn) > 0 and max(drawn) > 100 * min(drawn):  # products of norms span decades
                ax.set_yscale("log")
            ax.set_title(title, loc="left", fontsize=8)
            ax.set_xlim(-0.05, 1.05)
            ax.grid(alpha=0.3)
            if i + PANEL_COLUMNS >= len(measures):  # nothing below it
                ax.set_xlabel("label corruption p")
        for ax in axes[len(measures):]:
            ax.set_axis_off()
        handles = [Line2D([], [], color=MODEL_COLORS.get(m, "#555555"), marker=MODEL_MARKERS.get(m, "o"), lw=1.3,
                          ms=4, label=MODEL_TITLES.get(m, m)) for m in models]
        legend_beside(axes[PANEL_COLUMNS - 1], handles)
        paths = save(fig, out_dir, "measures_figure")
    md = [f"# Zhang et al. (ICLR 2017), {preset.paper_ref}: {scale_claim(scale)}", "", f"**{preset.title}**", ""]
    if notes:
        md += ["> **Where this run differs from the paper:**", ">", *(f"> - {n}" for n in notes), ""]
    md += [*_md_table(columns, rows), "",
           "Values: means over the runs that fit at p = 0 and at p = 1. Tau: Kendall's tau-b of the measure with "
           "test error over the runs of the corruption sweep that fit (n: how many), for the model and pooled over "
           "every model (Jiang et al. 2020).", "",
           "Expected sign: + where a larger value should mean a larger test error (norms, sharpness), - where a "
           "larger value should mean a smaller one (margins, the PAC-Bayes sigma). Only runs that fit are used.", "",
           *(f"- {line}" for line in claim_lines(claims)), "", "![measures](measures_figure.png)", "",
           *(f"- {line}" for line in caption), "",
           f"Runs (config hashes): {', '.join(o.config.run_id() for o in outcomes)}.", ""]
    paths.append(write_text(out_dir / "measures.md", "\n".join(md)))
    paths.append(write_csv(out_dir / "measures.csv",
                           ("model", "p", "seed", "run_id", "status", "test_error", "measure", "value"),
                           ((o.config.model, _p(o), o.config.seed, o.config.run_id(), status_of(o),
                             1 - o.summary["final"]["test_acc"] if o.summary and o.summary.get("final") else None,
                             name, measure_value(o, name)) for o in outcomes for name in measures)))
    paths.append(write_sidecar(out_dir, "measures", preset, outcomes, notes, paths, scale=scale, caption=caption,
                               table={"columns": list(columns), "rows": [list(r) for r in rows]},
                               claims=claims, rank_correlations=taus, side_by_side=sides))
    return paths


# INTERNAL UTILITIES -------------------------------------------------------------------------------


def _models(outcomes: Sequence[Outcome]) -> list[str]:
    return list(dict.fromkeys(o.config.model for o in outcomes))


def _p(o: Outcome) -> float:
    return float(o.config.resolved().p)


def _value(v: float | None) -> str:
    return NOT_MEASURED if v is None else f"{v:.4g}"


def _tau(entry: dict) -> str:
    if entry["n"] == 0:
        return NOT_MEASURED
    return f"{entry['tau']:+.2f} (n = {entry['n']})" if entry["tau"] is not None else f"— (n = {entry['n']})"


def _md_table(columns: Sequence[str], rows: Sequence[Sequence]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    return lines + ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]


def _label(o: Outcome) -> str:
    return f"{MODEL_TITLES.get(o.config.model, o.config.model)} p = {_p(o):g}"
