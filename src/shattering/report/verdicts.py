"""Measured verdicts on the claims an artefact shows; Kendall's rank correlation (tau-b, from
:mod:`shattering.analysis`) that several of them rest on (Jiang et al., ICLR 2020, "Fantastic generalization
measures and where to find them", Section 4: a measure is judged by the rank correlation of its values with the
generalization gap over many runs).

A claim is a plain dict ``{"claim", "verdict", "evidence"}``: the claim in words, the verdict measured on the
runs (``holds``, ``holds in part``, ``does not hold``, ``undecided``) and the numbers behind it, so that the
renderers of the memorization, slowdown and measures artefacts write them into their Markdown, sidecar and
caption alike.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..analysis import kendall_tau_b as kendall_tau_b  # the one Kendall's tau (shattering.analysis.ranking)

HOLDS, PARTLY, FAILS, UNDECIDED = "holds", "holds in part", "does not hold", "undecided"


def claim(text: str, verdict: str, evidence: str, where: str = "") -> dict:
    """One claim with its measured verdict and the evidence (numbers) behind it; also in the form of the
    paper's claims (:meth:`shattering.experiments.claims.Claim.assess`: ``id``, ``words``, ``where``,
    ``verdict``, ``text``), which the HTML report's claims box shows."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]
    return {"claim": text, "verdict": verdict, "evidence": evidence,
            "id": slug, "words": text, "where": where, "text": f"{verdict} ({evidence})"}


def tally(results: Sequence[bool | None]) -> tuple[str, str]:
    """The verdict over runs that each hold (True), fail (False) or cannot decide (None), and the count in
    words: ``("holds in part", "5 of 8 runs; 1 undecided")``."""
    decided = [r for r in results if r is not None]
    n_hold, n_undecided = sum(decided), len(results) - len(decided)
    if not decided:
        verdict = UNDECIDED
    elif n_hold == len(decided):
        verdict = HOLDS
    elif n_hold == 0:
        verdict = FAILS
    else:
        verdict = PARTLY
    words = f"{n_hold} of {len(decided)} run(s)" + (f"; {n_undecided} undecided" if n_undecided else "")
    return verdict, words


def claim_lines(claims: Sequence[dict]) -> list[str]:
    """Each claim as one line: ``Claim: ... Measured: holds (evidence).``"""
    return [f"Claim: {c['claim']}. Measured: {c['verdict']} ({c['evidence']})." for c in claims]
