"""Figures, tables and an HTML page from run records: one renderer per preset (the paper's artefacts).

- :data:`RENDERERS` (``renderers.py``): preset name -> ``render(preset, outcomes, out_dir, notes)``, which
  writes the artefact (PNG + SVG + CSV for a figure, Markdown + CSV for a table, and a JSON sidecar naming
  every run behind it) and returns the paths.
- :func:`build_report` (``html.py``): every artefact and run record under a folder, as one self-contained
  HTML page (``shatter report DIR``).
- ``paper_numbers.py``: the paper's Table 1, Table 4 and Figure 1 values, with trust tags.

Matplotlib is imported only when something is drawn, so ``shatter --help`` stays fast.
"""

from __future__ import annotations

_LAZY = {
    "RENDERERS": "renderers", "render": "renderers", "artefact_dir": "renderers", "ARTEFACTS_DIR": "renderers",
    "build_report": "html", "write_report": "html",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])
