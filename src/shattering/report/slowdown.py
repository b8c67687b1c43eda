"""Convergence slowdown against the training-set size (Section 2.1, Figure 1a of Zhang et al., ICLR 2017): the
steps to fit random labels over the steps to fit the true labels, for each model at each number of training
images n. The paper measures 1.5-3.5x at one n, CIFAR-10's 50,000 images; this draws where that factor appears.

Writes ``slowdown.png``, ``.svg``, ``.pdf``, ``.md`` (the figure, the table, the verdicts), ``slowdown.csv``
(one row per model and n) and ``slowdown.json`` (the sidecar). Steps to fit are means over the runs that fit;
where no random-label run fit, the steps it ran over the true labels' steps is a lower bound, drawn hollow.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..executors.outcome import Outcome
from .common import mean_ci, status_of, write_records, write_sidecar, write_text
from .figures import MODEL_COLORS, MODEL_MARKERS
from .paper_numbers import FIG1B_P1, MODEL_TITLES
from .plotting import RC, figure, legend_beside, notes_line, save, status_caption
from .verdicts import FAILS, HOLDS, PARTLY, UNDECIDED, claim, claim_lines, kendall_tau_b

WHERE = "Zhang et al. 2017, Section 2.2 and Fig. 1a (1.5-3.5x on CIFAR-10)"

PAPER_N = 50_000  # CIFAR-10's training images: where the paper's 1.5-3.5x was measured
COLUMNS = ("model", "n", "steps to fit, true labels", "steps to fit, random labels", "slowdown (random / true)",
           "runs (true; random)")
CSV_COLUMNS = ("model", "n", "true_steps", "random_steps", "slowdown", "slowdown_lower_bound", "n_true", "n_true_fit",
               "n_random", "n_random_fit", "run_ids")


def slowdown_points(outcomes: Sequence[Outcome]) -> list[dict]:
    """One point per (model, n), a dict: the mean steps to fit true and random labels (``true_steps``,
    ``random_steps``) and their ratio (``slowdown``; ``lower_bound`` where no random-label run fit: the most
    steps run over the true labels' steps), with the run counts, in the order of the models' first runs and
    of n."""
    groups: dict[tuple, dict[str, list[Outcome]]] = {}
    for o in outcomes:
        label = "random" if o.config.corruption == "random-labels" else "true" if (
            o.config.corruption == "true-labels") else None
        if label is not None:
            groups.setdefault((o.config.model, _n(o)), {"true": [], "random": []})[label].append(o)
    models = list(dict.fromkeys(m for m, _ in groups))
    points = []
    for model in models:
        for n in sorted(n for m, n in groups if m == model and n is not None):
            runs = groups[(model, n)]
            steps = {k: _fit_steps(v) for k, v in runs.items()}
            true = mean_ci(steps["true"]).mean if steps["true"] else None
            random = mean_ci(steps["random"]).mean if steps["random"] else None
            ran = [o.summary["steps"] for o in runs["random"] if o.summary is not None and status_of(o) == "not-fit"]
            slowdown = random / true if random and true else None
            bound = max(ran) / true if slowdown is None and ran and true else None
            points.append({"model": model, "n": n, "true_steps": true, "random_steps": random, "slowdown": slowdown,
                           "lower_bound": bound, "n_true": len(runs["true"]), "n_true_fit": len(steps["true"]),
                           "n_random": len(runs["random"]), "n_random_fit": len(steps["random"]),
                           "run_ids": " ".join(o.config.run_id() for o in runs["true"] + runs["random"])})
    return points


def slowdown_claims(points: Sequence[dict]) -> list[dict]:
    """Whether the slowdown grows with n (Kendall's tau of slowdown against n, per model), and at which n it
    first reaches the paper's lower end (1.5x)."""
    taus, reached = [], []
    for model in dict.fromkeys(p["model"] for p in points):
        mine = [p for p in points if p["model"] == model and p["slowdown"] is not None]
        title = MODEL_TITLES.get(model, model)
        tau = kendall_tau_b([p["n"] for p in mine], [p["slowdown"] for p in mine]) if len(mine) >= 3 else None
        taus.append((title, tau))
        first = next((p["n"] for p in mine if p["slowdown"] >= FIG1B_P1.low), None)
        most = max(mine, key=lambda p: p["slowdown"], default=None)
        reached.append(f"{title}: " + (f"from n = {first:,}" if first is not None else
                                       f"not at any n measured (at most {most['slowdown']:.2f}x, n = {most['n']:,})"
                                       if most else "no point"))
    decided = [t for _, t in taus if t is not None]
    verdict = (UNDECIDED if not decided else HOLDS if all(t > 0 for t in decided)
               else FAILS if all(t <= 0 for t in decided) else PARTLY)
    evidence = "; ".join(f"{m}: tau = {t:+.2f}" if t is not None else f"{m}: fewer than 3 sizes fit" for m, t in taus)
    hits = sum(1 for r in reached if "from n" in r)
    judged = sum(1 for r in reached if not r.endswith("no point"))  # models with a slowdown measured at some n
    reach_verdict = UNDECIDED if not judged else HOLDS if hits == judged else FAILS if not hits else PARTLY
    return [claim("the slowdown grows with the number of training images (Kendall's tau of slowdown against n > 0)",
                  verdict, evidence or "no model has a slowdown", WHERE),
            claim(f"the slowdown reaches the paper's {FIG1B_P1.low:g}-{FIG1B_P1.high:g}x (Fig. 1a, at n = "
                  f"{PAPER_N:,}) within the sizes measured", reach_verdict, "; ".join(reached) or "no point",
                  WHERE)]


def render_slowdown(preset, outcomes: Sequence[Outcome], out_dir: Path, notes: Sequence[str], *,
                    scale: str | None = None, provenance: bool = False) -> list[Path]:
    """The slowdown figure (against n, log axis) and table."""
    out_dir = Path(out_dir)
    points = slowdown_points(outcomes)
    claims = slowdown_claims(points)
    display = [[_display(p)[c] for c in COLUMNS] for p in points]
    caption = [*notes_line(notes),
               "Filled markers: mean steps to fit random labels over mean steps to fit true labels, runs that fit "
               "only. Hollow: no random-label run fit; steps run over the true labels' steps, a lower bound. "
               f"Grey band: the paper's {FIG1B_P1.low:g}-{FIG1B_P1.high:g}x at n = {PAPER_N:,} (CIFAR-10) "
               f"[{FIG1B_P1.tag}].", *claim_lines(claims), *status_caption(outcomes, _label, "slowdown")]
    with matplotlib.rc_context(RC):
        fig, (ax,) = figure(1, preset, caption, panel_w=5.6, scale=scale, provenance=provenance, legend_w=2.6)
        _draw(ax, points)
        paths = save(fig, out_dir, "slowdown", preset, caption, scale)
    md = out_dir / "slowdown.md"
    table = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    table += ["| " + " | ".join(str(c) for c in row) + " |" for row in display]
    write_text(md, md.read_text() + "\n" + "\n".join(table) + "\n")
    paths.append(write_records(out_dir / "slowdown.csv", CSV_COLUMNS,
                               ({**p, "slowdown_lower_bound": p["lower_bound"]} for p in points)))
    paths.append(write_sidecar(out_dir, "slowdown", preset, outcomes, notes, paths, scale=scale, caption=caption,
                               table={"columns": list(COLUMNS), "rows": display}, claims=claims,
                               series=points, paper={"n": PAPER_N, "low": FIG1B_P1.low, "high": FIG1B_P1.high,
                                                     "tag": FIG1B_P1.tag, "source": FIG1B_P1.source}))
    return paths


# INTERNAL UTILITIES -------------------------------------------------------------------------------


def _draw(ax, points: Sequence[dict]) -> None:
    """Per model, the slowdown against n (filled) and the lower bounds (hollow); the paper's range at CIFAR-10's
    n as a grey band; 1x dotted."""
    models = list(dict.fromkeys(p["model"] for p in points))
    for model in models:
        color, marker = MODEL_COLORS.get(model, "#555555"), MODEL_MARKERS.get(model, "o")
        mine = [p for p in points if p["model"] == model]
        fit = [p for p in mine if p["slowdown"] is not None]
        if fit:
            ax.plot([p["n"] for p in fit], [p["slowdown"] for p in fit], color=color, marker=marker, ms=5, lw=1.5,
                    mec="white", mew=0.6)
        bounds = [p for p in mine if p["lower_bound"] is not None]
        if bounds:
            ax.plot([p["n"] for p in bounds], [p["lower_bound"] for p in bounds], ls="none", marker="^", ms=6,
                    mfc="none", mec=color, mew=1.3)
    ax.errorbar([PAPER_N], [FIG1B_P1.value], yerr=[[FIG1B_P1.value - FIG1B_P1.low],
                                                  [FIG1B_P1.high - FIG1B_P1.value]],
                fmt="none", ecolor="#999999", elinewidth=7, alpha=0.35)
    ax.axhline(1.0, color="#888888", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("training images n (log scale)")
    ax.set_ylabel("steps to fit: random labels / true labels")
    ax.set_ylim(bottom=0)
    ax.set_title("convergence slowdown against n", loc="left")
    ax.grid(alpha=0.3, which="both")
    handles = [Line2D([], [], color=MODEL_COLORS.get(m, "#555555"), marker=MODEL_MARKERS.get(m, "o"), lw=1.5,
                      ms=5, label=MODEL_TITLES.get(m, m)) for m in models]
    handles += [Line2D([], [], ls="none", marker="^", mfc="none", mec="#333333",
                       label="random labels did not fit (lower bound)"),
                Patch(color="#999999", alpha=0.35,
                      label=f"paper: {FIG1B_P1.low:g}-{FIG1B_P1.high:g}x at n = {PAPER_N:,} [{FIG1B_P1.tag}]")]
    legend_beside(ax, handles)


def _n(o: Outcome) -> int | None:
    """The run's number of training images: as recorded, else as configured."""
    data = (o.summary or {}).get("data") or {}
    n = data.get("n_train")
    return n if isinstance(n, int) and not isinstance(n, bool) else o.config.train_size


def _fit_steps(runs: Sequence[Outcome]) -> list[float]:
    return [float(o.summary["fit_step"]) for o in runs if status_of(o) == "fit" and o.summary.get("fit_step")]


def _display(p: dict) -> dict:
    """A point's row of the table, column by column (:data:`COLUMNS`)."""
    def steps(value, n_fit, n_all) -> str:
        return f"{value:,.0f}" if value is not None else f"none fit ({n_fit}/{n_all})"

    ratio = (f"{p['slowdown']:.2f}x" if p["slowdown"] is not None
             else f"> {p['lower_bound']:.2f}x (random labels did not fit)" if p["lower_bound"] is not None else "—")
    return {"model": MODEL_TITLES.get(p["model"], p["model"]), "n": f"{p['n']:,}",
            "steps to fit, true labels": steps(p["true_steps"], p["n_true_fit"], p["n_true"]),
            "steps to fit, random labels": steps(p["random_steps"], p["n_random_fit"], p["n_random"]),
            "slowdown (random / true)": ratio,
            "runs (true; random)": f"fit {p['n_true_fit']}/{p['n_true']}; fit {p['n_random_fit']}/{p['n_random']}"}


def _label(o: Outcome) -> str:
    return f"{MODEL_TITLES.get(o.config.model, o.config.model)} n = {_n(o)} {o.config.corruption}"
