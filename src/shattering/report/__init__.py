"""Figures, tables and an HTML page from run records: one renderer per preset (the paper's artefacts).

- ``renderers.py``: :data:`RENDERERS`, preset name -> ``render(preset, outcomes, out_dir, notes)``, which
  writes the artefact (PNG at 200 dpi + SVG + PDF + CSV + a Markdown caption for a figure, Markdown + CSV for
  a table, and a JSON sidecar naming every run behind it) and returns the paths;
- ``figures.py`` (Figures 1a, 1b/1c), ``batchnorm.py`` (Figure 2b), ``imagenet.py`` (Table 2, Figure 2a),
  ``tables.py`` (Tables 1 and 4), ``table3.py``, ``memorization.py``, ``slowdown.py`` and ``measures.py``, drawn
  with the shared helpers of ``plotting.py`` and ``common.py``: each aggregates the runs into named rows
  (dataclasses or dicts) first, then draws or formats those;
- ``html.py``: :func:`build_report`, every artefact, theory result (``theory_results.py``) and run record
  (with its learning curves, ``run_curves.py``) under a folder as one self-contained HTML page (``shatter
  report DIR``);
- ``paper_numbers.py``: the paper's Table 1, Table 2, Table 4 and Figure 1 values, with trust tags.

Import the module you need (``from shattering.report.renderers import render``): this package imports
nothing itself, so that matplotlib is loaded only when something is drawn and ``shatter --help`` stays fast.
"""
