"""The theory commands' results in the HTML page: the JSON that ``shatter expressivity``, ``minnorm``, ``kernel``
and ``rademacher`` write with ``--out DIR`` (Theorem 1 of Section 4, the minimum-norm solutions and kernel
interpolation of Section 5, the Rademacher complexity of Section 2.2 of Zhang et al., ICLR 2017).

Each result shows its numbers (the scalar fields) as a table, and every longer field (lists, nested objects)
folded in a ``<details>``, so that the page stays narrow.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path
from typing import NamedTuple

from ..files import read_json

THEORY_RESULTS = {
    "expressivity": "Section 4, Theorem 1: a two-layer ReLU network of 2n + d weights fits any labels",
    "minnorm": "Section 5: the minimum-norm solution of least squares",
    "kernel": "Section 5, Appendix D: kernel interpolation (Eq. 3)",
    "rademacher": "Section 2.2: empirical Rademacher complexity",
}
MAX_FOLDED_CHARS = 4000  # a folded field longer than this is cut (the JSON file holds it whole)


class TheoryResult(NamedTuple):
    """A theory command's result found under the report's folder: its file, the command and the JSON object."""

    path: Path
    command: str
    result: dict


def find_theory_results(root: Path) -> list[TheoryResult]:
    """Every theory result under ``root`` (``<command>.json`` holding a JSON object), sorted by path."""
    found = []
    for command in THEORY_RESULTS:
        for path in root.rglob(f"{command}.json"):
            data = read_json(path)
            if isinstance(data, dict) and "shattering_artefact" not in data:
                found.append(TheoryResult(path, command, data))
    return sorted(found, key=lambda item: item.path.as_posix())


def theory_html(root: Path, path: Path, command: str, result: dict) -> str:
    """One section: the result's scalar fields as a table, its longer fields folded."""
    scalars, folded = [], []
    listed = result.get("claims")
    claims = [c for c in listed if isinstance(c, dict)] if isinstance(listed, list) else []
    verdicts = ('<div class="claims"><strong>Claims of the paper:</strong><ul>' + "".join(
        f'<li><span class="verdict">{escape(str(c.get("verdict", "")))}</span>: {escape(str(c.get("words", "")))} '
        f'({escape(str(c.get("where", "")))})<br>measured: {escape(str(c.get("text", "")))}</li>' for c in claims)
        + "</ul></div>") if claims else ""
    for key, value in result.items():
        if key == "claims" and claims:
            continue
        if value is None or isinstance(value, (str, int, float, bool)):
            scalars.append(f"<tr><th>{escape(str(key))}</th><td>{escape(_scalar(value))}</td></tr>")
        else:
            text = json.dumps(value, indent=1, default=str)
            if len(text) > MAX_FOLDED_CHARS:
                text = text[:MAX_FOLDED_CHARS] + f"\n... ({len(text):,} characters; the whole field is in the file)"
            folded.append(f"<details><summary><code>{escape(str(key))}</code></summary>"
                          f'<pre class="folded">{escape(text)}</pre></details>')
    anchor = f"theory-{escape(command)}-{len(path.parts)}-{escape(path.parent.name)}"
    return (f'<section class="artefact" id="{anchor}"><h2>Theory: <code>shatter {escape(command)}</code></h2>'
            f'<p class="ref">{escape(THEORY_RESULTS[command])} &middot; {escape(path.relative_to(root).as_posix())}'
            f'</p>{verdicts}<table class="result kv"><tbody>{"".join(scalars)}</tbody></table>{"".join(folded)}'
            '</section>')


def _scalar(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    return "—" if value is None else str(value)
