"""The "Claims of the paper" section every artefact carries: each claim its preset tests (Zhang et al., ICLR
2017; :mod:`shattering.experiments.claims`), its verdict on the runs behind the artefact and the numbers behind
the verdict, added to the artefact's Markdown and to its JSON sidecar (``claims``), which the HTML report shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..experiments.claims import assess_all, facts_of
from ..files import json_text, read_json
from .common import write_text

HEADING = "## Claims of the paper"


def measure_claims(preset, items: Sequence) -> list[dict]:
    """Every claim of ``preset`` measured on ``items``: a trained preset's outcomes (read as run facts, with the
    step logs when a claim reads the loss curve) or a computed preset's rows."""
    if not preset.claims:
        return []
    if not preset.computed:
        items = facts_of(items, curves=any(c.curves for c in preset.claims))
    return assess_all(preset.claims, items)


def markdown_lines(claims: Sequence[dict], scale: str | None = None) -> list[str]:
    """The Markdown section: one bullet per claim, its verdict first, then the paper's words and the numbers."""
    lines = [HEADING, "", "Each claim the artefact tests, restated with the paper's numbers, and what these runs show "
             "(\"does not hold at this scale\" is a result: the paper's effects may need its data and budget)."
             + (" At the smoke scale the runs check the machinery: the verdicts mean nothing." if scale == "smoke"
                else ""), ""]
    for c in claims:
        lines.append(f"- **{c['verdict']}**: {c['words']} ({c['where']}; `{c['id']}`)  ")
        lines.append(f"  measured: {c['text']}")
    return [*lines, ""]


def attach_claims(paths: Sequence[Path], claims: Sequence[dict], scale: str | None = None) -> None:
    """Add the claims to the Markdown files and the sidecars among ``paths`` (rewritten whole: byte-stable)."""
    if not claims:
        return
    for path in map(Path, paths):
        if path.suffix == ".md" and path.is_file():
            text = path.read_text().split("\n" + HEADING + "\n")[0].rstrip("\n")
            write_text(path, text + "\n\n" + "\n".join(markdown_lines(claims, scale)))
        elif path.suffix == ".json" and path.is_file():
            data = read_json(path)
            if isinstance(data, dict) and "shattering_artefact" in data:
                write_text(path, json_text({**data, "claims": list(claims)}, strict=True))
