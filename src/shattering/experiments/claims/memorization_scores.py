"""The claims of the ``memorization-scores`` artefact, measured on the subset studies its renderer trained and kept
in each run's record (:func:`shattering.experiments.memorization_scores.stored_study`):

- the summary this project started from, which Feldman and Zhang (NeurIPS 2020) later measured: examples with
  corrupted labels are memorized (score near 1), clean examples are learned from patterns (score near 0), except
  a long tail of atypical ones;
- Jiang, Zhang, Talwar and Mozer (ICML 2021): the lowest consistency scores single out the mislabeled examples
  (precision and recall of the corrupted examples among the lowest scores, against the known mask);
- Feldman and Zhang: highly memorized examples are atypical (their figures show it by images; here measured by
  how many of an example's nearest training images share its label, a measure no network enters).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .core import Claim, RunFacts, Verdict, judged, not_measured

MEMORIZED = 0.5  # "near 1": the median memorization of the corrupted examples at least this
LEARNED = 0.1  # "near 0": the median memorization of the clean examples at most this
TAIL = 0.5  # a clean example with memorization at least this is in the long tail (its share is shown)
PRECISION = 0.75  # "single out": at least this share of the lowest scores (as many as there are corrupted) corrupted
TOP_SHARE = 0.05  # "highly memorized": the top 5% of the clean examples by memorization
ATYPICAL_MARGIN = 0.1  # "atypical": their mean neighbour agreement at least this far below the other examples'
_NEVER = "the artefact's renderer trains them: shatter reproduce memorization-scores"


def _study(f: RunFacts):
    from ..memorization_scores import stored_study  # here: it loads torch, and the claims are read without it

    if f.run_dir is None or f.summary is None:
        return None
    return stored_study(f.run_dir)


def _label(f: RunFacts) -> str:
    c = f.config
    return f"{c.model} " + (f"p = {c.p:g}" if c.corruption == "partial-labels" else c.corruption)


def _studies(facts: Sequence[RunFacts], corrupted: bool) -> list[tuple[str, object]]:
    """(label, study) of the runs with (``corrupted``) or without partially corrupted labels that have a study."""
    out = []
    for f in sorted(facts, key=lambda f: (f.config.model, f.config.p or 0.0, f.config.seed)):
        if (f.config.corruption == "partial-labels") != corrupted or (not corrupted and
                                                                        f.config.corruption != "true-labels"):
            continue
        study = _study(f)
        if study is not None:
            out.append((_label(f), study))
    return out


def corrupted_memorized(facts: Sequence[RunFacts]) -> Verdict:
    found, ok, numbers = [], [], {}
    for label, study in _studies(facts, corrupted=True):
        mem, bad = study.memorization.mem, study.corrupted
        clean_med, bad_med = float(np.nanmedian(mem[~bad])), float(np.nanmedian(mem[bad]))
        tail = float(np.nanmean(mem[~bad] >= TAIL))
        ok.append(bad_med >= MEMORIZED and clean_med <= LEARNED)
        found.append(f"{label}: median memorization {bad_med:.2f} of the corrupted examples, {clean_med:.2f} of the "
                     f"clean ones; {100 * tail:.1f}% of the clean ones at {TAIL:g} or more ({len(study.masks)} "
                     "networks)")
        numbers[label] = {"corrupted_median": bad_med, "clean_median": clean_med, "clean_tail_share": tail,
                          "corrupted_mean": float(np.nanmean(mem[bad])), "clean_mean": float(np.nanmean(mem[~bad]))}
    if not ok:
        return not_measured(f"no subset study of a partially corrupted run ({_NEVER})")
    return judged(all(ok), f"the median memorization of the corrupted examples at least {MEMORIZED:g} and of the "
                  f"clean ones at most {LEARNED:g} in {sum(ok)} of {len(ok)} runs: " + "; ".join(found), **numbers)


def lowest_c_scores_mislabeled(facts: Sequence[RunFacts]) -> Verdict:
    from ...influence import lowest_scores_precision_recall

    found, ok, numbers = [], [], {}
    for label, study in _studies(facts, corrupted=True):
        bad = study.corrupted
        if not bad.any():
            continue
        got = lowest_scores_precision_recall(study.c_score.c, bad, int(bad.sum()))
        share = float(bad.mean())
        ok.append(got.precision >= PRECISION)
        found.append(f"{label}: precision {got.precision:.2f} and recall {got.recall:.2f} among the {int(bad.sum())} "
                     f"lowest C-scores (the corrupted share, a random pick's precision: {share:.2f})")
        numbers[label] = {"precision": got.precision, "recall": got.recall, "corrupted_share": share}
    if not ok:
        return not_measured(f"no subset study of a partially corrupted run ({_NEVER})")
    return judged(all(ok), f"at least {PRECISION:g} of the lowest C-scores (as many as there are corrupted examples) "
                  f"are of corrupted examples in {sum(ok)} of {len(ok)} runs: " + "; ".join(found), **numbers)


def memorized_atypical(facts: Sequence[RunFacts]) -> Verdict:
    found, ok, numbers = [], [], {}
    for label, study in _studies(facts, corrupted=False):
        mem, agree = study.memorization.mem, study.neighbours_agree
        known = ~np.isnan(mem)
        top = max(1, int(round(TOP_SHARE * known.sum())))
        order = np.argsort(np.where(known, -mem, np.inf), kind="stable")
        high, rest = order[:top], order[top:known.sum()]
        a, b = float(agree[high].mean()), float(agree[rest].mean())
        ok.append(b - a >= ATYPICAL_MARGIN)
        found.append(f"{label}: the {top} most memorized examples (memorization {float(mem[high].min()):.2f} or more) "
                     f"have {a:.2f} of their {study.facts['neighbours']} nearest training images in their class, "
                     f"the others {b:.2f}")
        numbers[label] = {"top_agreement": a, "rest_agreement": b, "top": top}
    if not ok:
        return not_measured(f"no subset study of a true-label run ({_NEVER})")
    return judged(all(ok), f"the top {100 * TOP_SHARE:g}% most memorized examples of true-label runs at least "
                  f"{ATYPICAL_MARGIN:g} less often among neighbours of their class than the others in {sum(ok)} of "
                  f"{len(ok)} runs: " + "; ".join(found), **numbers)


MEMORIZATION_SCORES_CLAIMS = (
    Claim("seed-corrupted-memorized", "Examples with corrupted labels are memorized (memorization near 1) and clean "
          "examples are learned from patterns (near 0), except a long tail of atypical ones.",
          "the seed summary; Feldman and Zhang 2020", corrupted_memorized),
    Claim("jiang-lowest-c-mislabeled", "The lowest C-scores single out the mislabeled examples.",
          "Jiang et al. 2021", lowest_c_scores_mislabeled),
    Claim("feldman-memorized-atypical", "Highly memorized examples are atypical: unlike the other examples of their "
          "class (shown by their images).", "Feldman and Zhang 2020 (their images of memorized examples)",
          memorized_atypical),
)
