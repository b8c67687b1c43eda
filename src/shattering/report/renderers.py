"""One renderer per preset: ``RENDERERS[preset.name](preset, outcomes, out_dir, notes)`` writes the artefact's
files into ``out_dir`` and returns their paths; ``shatter reproduce`` calls it after the sweep, into
``<out>/artefacts/<preset>/``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import ConfigError
from ..executors.outcome import Outcome
from .batchnorm import render_fig2b as render_fig2b
from .claims import attach_claims, measure_claims
from .factors import render_factors as render_factors
from .figures import render_fig1a as render_fig1a
from .figures import render_fig1bc as render_fig1bc
from .imagenet import render_fig2a as render_fig2a
from .imagenet import render_table2 as render_table2
from .information import render_information as render_information
from .landscape import render_landscape as render_landscape
from .measures import render_measures as render_measures
from .memorization import render_memorization as render_memorization
from .memorization_scores import render_memorization_scores as render_memorization_scores
from .sharpness import render_sharpness as render_sharpness
from .slowdown import render_slowdown as render_slowdown
from .table3 import render_table3 as render_table3
from .tables import render_table1 as render_table1
from .tables import render_table4 as render_table4

Renderer = Callable[..., list[Path]]  # (preset, outcomes, out_dir, notes, *, scale, provenance)

RENDERERS: dict[str, Renderer] = {
    "fig1a": render_fig1a,
    "fig1bc": render_fig1bc,
    "fig2b": render_fig2b,
    "table1": render_table1,
    "table4": render_table4,
    "table2": render_table2,
    "fig2a": render_fig2a,
    "table3": render_table3,  # computed rows (kernels), not run outcomes
    "memorization": render_memorization,
    "slowdown": render_slowdown,
    "measures": render_measures,
    "sharpness": render_sharpness,
    "landscape": render_landscape,
    "information": render_information,
    "memorization-scores": render_memorization_scores,
    "factors": render_factors,
}

ARTEFACTS_DIR = "artefacts"


def artefact_dir(out: str | Path, preset_name: str) -> Path:
    """Where ``shatter reproduce`` writes a preset's files: ``<out>/artefacts/<preset>/``."""
    return Path(out).expanduser() / ARTEFACTS_DIR / preset_name


def render(preset, outcomes: Sequence[Outcome], out_dir: str | Path, notes: Sequence[str], *,
           scale: str | None = None, provenance: bool = False) -> list[Path]:
    """Draw ``preset``'s artefact from the outcomes of its runs into ``out_dir``; return the files written.

    ``scale`` (``smoke``, ``quick``, ``paper``) says what the artefact may claim in its title and heading (only
    ``paper`` says "reproduced"); ``provenance=True`` draws a figure's caption into its image too (it is always
    in the sidecar, the Markdown and the HTML page). The preset's claims of the paper are then measured on the
    outcomes (or a computed preset's rows) and their verdicts written into the Markdown and the sidecar."""
    try:
        renderer = RENDERERS[preset.name]
    except KeyError:
        raise ConfigError(f"No renderer for preset {preset.name!r}; renderers exist for "
                          f"{', '.join(RENDERERS)}.") from None
    paths = renderer(preset, list(outcomes), Path(out_dir), list(notes), scale=scale, provenance=provenance)
    attach_claims(paths, measure_claims(preset, list(outcomes)), scale)
    return paths
