"""Which examples are memorized: the ``memorization-scores`` artefact. For each run (true labels, and labels
partially corrupted at p = 0.2 and 0.4), K networks of its configuration trained on random 70% subsets of its
training set (:mod:`shattering.experiments.memorization_scores`), and per training example Feldman and Zhang's
memorization (NeurIPS 2020) and Jiang et al.'s consistency score (ICML 2021), set against the examples whose label
the run corrupted.

Writes ``memorization-scores.png``/``.svg``/``.pdf`` (per run: histograms of memorization of the clean and the
corrupted examples, and the C-score against memorization), ``memorization-scores-examples.png`` (per run the most
and the least memorized images with their labels), ``memorization-scores.md`` (figures, table, claims),
``memorization-scores.csv`` (one row per run), ``memorization-scores-RUNID.csv`` (one row per training example: the
study's table) and the sidecar. A run whose study could not be trained says why, in the caption.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.patches import Patch

from ..executors.outcome import Outcome
from .common import write_records, write_sidecar, write_text
from .paper_numbers import MODEL_TITLES
from .plotting import RC, figure, legend_beside, notes_line, save, status_caption

CLEAN, CORRUPTED = "#1f77b4", "#d62728"
SHOWN = 8  # images shown per run, most and least memorized each
TABLE_COLUMNS = ("model", "labels", "run id", "networks (fit, diverged)", "subset networks' test acc",
                 "full run's test acc", "memorization clean: mean, median", "corrupted: mean, median",
                 "clean at 0.5 or more", "lowest C-scores: precision, recall", "seconds")


def _labels(o: Outcome) -> str:
    c = o.config
    return f"p = {c.p:g}" if c.corruption == "partial-labels" else c.corruption


def render_memorization_scores(preset, outcomes: Sequence[Outcome], out_dir: Path, notes: Sequence[str], *,
                               scale: str | None = None, provenance: bool = False) -> list[Path]:
    """Train (or read back) each run's subset study, draw the histograms, the C-score against memorization and the
    images, and write the tables and the sidecar."""
    from ..experiments.memorization_scores import subset_study
    from ..experiments.presets import scale_claim
    from ..experiments.presets_beyond import MEMORIZATION_SCORES_STUDY

    out_dir = Path(out_dir)
    settings = MEMORIZATION_SCORES_STUDY.get(scale or "", MEMORIZATION_SCORES_STUDY["quick"])
    done = sorted((o for o in outcomes if o.summary is not None),
                  key=lambda o: (o.config.model, o.config.p or 0.0, o.config.seed))
    studies, problems, rows = [], [], []
    for o in done:
        try:
            print(f"memorization scores of {o.config.model} {_labels(o)}: {settings['networks']} subset networks",
                  file=sys.stderr, flush=True)
            studies.append((o, subset_study(o.run_dir, networks=settings["networks"], group=settings["group"],
                                            progress=True)))
            rows.append(_row(o, studies[-1][1]))
        except Exception as exc:  # noqa: BLE001 -- one run's study failing is said in the caption, not fatal
            problems.append(f"{o.config.model} {_labels(o)}: {type(exc).__name__}: {exc}")
            rows.append([MODEL_TITLES.get(o.config.model, o.config.model), _labels(o), f"`{o.config.run_id()}`",
                         *["not computed"] * (len(TABLE_COLUMNS) - 3)])
    first = studies[0][1].facts if studies else {"networks": settings["networks"], "fraction": 0.7}
    caption = [*notes_line(notes),
               f"Per run, {first['networks']} networks of its configuration, each trained on a seeded random "
               f"{100 * first['fraction']:g}% of its training set (the labels as the run's corruption made them) "
               "until it classifies that subset correctly or the run's epoch budget ends. Memorization of example i "
               "(Feldman and Zhang 2020): accuracy on i of the networks that trained on it minus that of the "
               "networks that did not; C-score (Jiang et al. 2021): accuracy on i of the networks that did not. "
               "Red: examples whose label the run corrupted.",
               *([f"Every network of {', '.join(_labels(o) for o, s in studies if _all_in(s))} classified every "
                  "example it trained on (p_in = 1): there memorization = 1 - C-score, the two scores say the same."]
                 if any(_all_in(s) for _, s in studies) else []),
               *(["not computed: " + "; ".join(problems)] if problems else []),
               *status_caption(outcomes, lambda o: f"{o.config.model} {_labels(o)}", "memorization-scores")]
    paths: list[Path] = []
    with matplotlib.rc_context(RC):
        fig, axes = figure(2, preset, caption, panel_w=4.4, panel_h=3.0, scale=scale, provenance=provenance,
                           legend_w=2.0, nrows=max(1, len(studies)))
        for i, (o, s) in enumerate(studies):
            _histogram(axes[2 * i], o, s)
            _scatter(axes[2 * i + 1], o, s)
        if not studies:
            for ax in axes:
                ax.text(0.5, 0.5, "no study", ha="center", va="center", transform=ax.transAxes)
        legend_beside(axes[1], [Patch(color=CLEAN, label="clean label"), Patch(color=CORRUPTED,
                                                                                label="corrupted label")])
        paths += save(fig, out_dir, "memorization-scores", None, caption, scale)
        if studies:
            fig, axes = figure(2 * SHOWN, preset, caption, panel_w=0.95, panel_h=1.25, scale=scale,
                               provenance=provenance, nrows=len(studies))
            for i, (o, s) in enumerate(studies):
                _images(axes[2 * SHOWN * i:2 * SHOWN * (i + 1)], o, s)
            paths += save(fig, out_dir, "memorization-scores-examples", None, caption, scale)
    for o, s in studies:
        table = s.table()
        paths.append(write_records(out_dir / f"memorization-scores-{o.config.run_id()}.csv", list(table.columns),
                                   table.to_dict("records")))
    figures = [p for p in paths if p.suffix == ".png"]
    md = [f"# Zhang et al. (ICLR 2017), {preset.paper_ref}: {scale_claim(scale)}", "", f"**{preset.title}**", "",
          *(f"![{p.stem}]({p.name})" for p in figures), "", *(f"- {c}" for c in caption), "",
          "| " + " | ".join(TABLE_COLUMNS) + " |", "|" + "|".join("---" for _ in TABLE_COLUMNS) + "|",
          *("| " + " | ".join(r) + " |" for r in rows), ""]
    paths.append(write_text(out_dir / "memorization-scores.md", "\n".join(md)))
    paths.append(write_records(out_dir / "memorization-scores.csv", TABLE_COLUMNS,
                               (dict(zip(TABLE_COLUMNS, r, strict=True)) for r in rows)))
    paths.append(write_sidecar(out_dir, "memorization-scores", preset, outcomes, notes, paths, scale=scale,
                               caption=caption, table={"columns": list(TABLE_COLUMNS), "rows": rows},
                               studies=[{"run_id": o.config.run_id(), **{k: v for k, v in s.facts.items()
                                                                          if k != "folder"}} for o, s in studies]))
    return paths


def _all_in(s) -> bool:
    """Whether every network got every example it trained on right (p_in = 1 wherever defined)."""
    p_in = s.memorization.p_in
    return bool(np.all(p_in[~np.isnan(p_in)] == 1.0))


def _row(o: Outcome, s) -> list[str]:
    from ..influence import lowest_scores_precision_recall

    mem, bad = s.memorization.mem, s.corrupted
    acc = s.test_accuracy
    full = ((o.summary or {}).get("final") or {}).get("test_acc")

    def stats(values) -> str:
        return "—" if not len(values) else f"{np.nanmean(values):.3f}, {np.nanmedian(values):.3f}"

    pr = lowest_scores_precision_recall(s.c_score.c, bad, int(bad.sum())) if bad.any() else None
    return [MODEL_TITLES.get(o.config.model, o.config.model), _labels(o), f"`{o.config.run_id()}`",
            f"{len(s.masks)} ({s.facts['fit']}, {s.facts['diverged']})",
            f"{100 * acc.mean():.2f}% ± {100 * acc.std():.2f}", "—" if full is None else f"{100 * full:.2f}%",
            stats(mem[~bad]), stats(mem[bad]), f"{100 * np.nanmean(mem[~bad] >= 0.5):.1f}%",
            "—" if pr is None else f"{pr.precision:.2f}, {pr.recall:.2f}", f"{s.facts['training_seconds']:.0f}"]


def _title(o: Outcome) -> str:
    return f"{MODEL_TITLES.get(o.config.model, o.config.model)}, {_labels(o)}"


def _histogram(ax, o: Outcome, s) -> None:
    mem, bad = s.memorization.mem, s.corrupted
    bins = np.linspace(-1.0, 1.0, 41)
    ax.hist([mem[~bad & ~np.isnan(mem)], mem[bad & ~np.isnan(mem)]], bins=bins, color=[CLEAN, CORRUPTED],
            stacked=False, label=["clean", "corrupted"])
    ax.set_yscale("log")
    ax.set_xlabel("memorization estimate")
    ax.set_ylabel("training examples")
    ax.set_title(f"{_title(o)}: memorization", loc="left", fontsize=9)
    ax.grid(alpha=0.3)


def _scatter(ax, o: Outcome, s) -> None:
    mem, c, bad = s.memorization.mem, s.c_score.c, s.corrupted
    rng = np.random.default_rng(0)  # a little jitter: the scores take few values with K networks
    jitter = 0.01 * rng.standard_normal((2, len(mem)))
    for mask, color in ((~bad, CLEAN), (bad, CORRUPTED)):
        ax.scatter(c[mask] + jitter[0, mask], mem[mask] + jitter[1, mask], s=4, alpha=0.4, color=color,
                   linewidths=0)
    ax.set_xlabel("C-score (held-out accuracy)")
    ax.set_ylabel("memorization")
    ax.set_title(f"{_title(o)}: C-score against memorization", loc="left", fontsize=9)
    ax.grid(alpha=0.3)


def _images(axes, o: Outcome, s) -> None:
    """The SHOWN most memorized examples (the lowest C-score breaking ties), then the SHOWN least: the highest
    C-score (predicted by the networks that never saw them), the memorization nearest 0 breaking ties; each with
    the label trained on and, where corrupted, the original."""
    mem, c = s.memorization.mem, s.c_score.c
    known = np.flatnonzero(~np.isnan(mem) & ~np.isnan(c))
    most = known[np.lexsort((c[known], -mem[known]))][:SHOWN]
    least = known[np.lexsort((np.abs(mem[known]), -c[known]))][:SHOWN]
    names = s.data.class_names
    for ax, i, kind in zip(axes, [*most, *least], ["most"] * len(most) + ["least"] * len(least), strict=False):
        image = np.asarray(s.data.x_train[i], dtype=np.float64)
        image = (image - image.min()) / max(image.max() - image.min(), 1e-12)
        ax.imshow(image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0), cmap="gray")
        label = names[s.labels[i]] if s.labels[i] < len(names) else str(s.labels[i])
        was = "" if not s.corrupted[i] else f"\n(was {names[s.original[i]]})"
        ax.set_title(f"{kind} {mem[i]:.2f}\n{label}{was}", fontsize=6,
                     color=CORRUPTED if s.corrupted[i] else "black")
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(most) + len(least):]:
        ax.axis("off")
    if len(axes):
        axes[0].set_ylabel(_labels(o), fontsize=7)
