"""Table 3 (Appendix D) of Zhang et al., "Understanding deep learning requires rethinking generalization"
(ICLR 2017), drawn: the kernel-interpolation rows computed by :mod:`shattering.experiments.table3`, beside the
paper's numbers, as ``table3.md``, ``table3.csv`` and ``table3.json`` (the sidecar every artefact has, holding
the table as displayed, so that ``shatter report`` shows it).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from .._version import __version__
from ..experiments.presets import scale_claim
from ..formatting import pct
from .common import write_sidecar, write_text


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


CSV_COLUMNS = ("row", "scale", "paper_dataset", "dataset", "features", "feature_dim", "kernel", "bandwidth",
               "bandwidth_rule", "ridge", "dtype",
               "n_train", "n_test", "train_error", "max_residual", "interpolates", "test_error", "paper_test_error",
               "norm", "paper_norm", "random_train_error", "random_test_error", "random_norm", "random_interpolates",
               "paper_note", "note", "seconds")


SIDECAR = "table3.artefact.json"
COLUMNS = ("row", "data (paper → here)", "features", "ridge", "n train / test", "train err", "test err",
           "paper test err", "norm", "paper norm", "random labels: train err / test err / norm", "note")


def render_table3(preset, rows: Sequence[dict], out_dir: Path, notes: Sequence[str] = (), *, scale: str | None = None,
                  provenance: bool = False) -> list[Path]:
    """Write ``table3.md``, ``table3.csv`` and the sidecar ``table3.artefact.json`` to ``out_dir``: measured
    numbers beside the paper's, with notes.

    The renderer of the ``table3`` preset (the signature every renderer shares, with the computed ``rows`` of
    :func:`shattering.experiments.table3.compute_table3` in place of run outcomes). Each row carries its own
    notes (a substitute data set, a row that did not interpolate), so ``preset`` and ``notes`` add nothing.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out_dir / "table3.csv", out_dir / "table3.md"
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in CSV_COLUMNS})
    scales = sorted({r["scale"] for r in rows})
    scale = scale or (scales[0] if len(scales) == 1 else None)
    columns = list(COLUMNS)
    display = [[_display(r)[c] for c in COLUMNS] for r in rows]
    lines = [
        f"# Table 3: kernel interpolation (Eq. 3), test error ({scale_claim(scale)})",
        "",
        "Zhang et al. (ICLR 2017), Appendix D and Section 5. Measured numbers beside the paper's; random-label",
        "columns solve the same system (same factorization) with random labels. Norm: sqrt(tr(alpha^T K alpha)).",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    lines += ["| " + " | ".join(cells) + " |" for cells in display]
    lines += ["", f"Scale: {', '.join(scales)}. Kernel bandwidth: 0.25 x the median pairwise distance on raw "
              "pixels, the median on transformed features. A row whose data set differs "
              "from the paper's is not comparable to the paper's number (see its note).", ""]
    write_text(md_path, "\n".join(lines))
    paths = [md_path, csv_path]
    notes = [*notes, *dict.fromkeys(f"row {r['row']}: {r['note']}" for r in rows if r.get("note"))]
    # table3.json is the computed rows (experiments.table3's cache): the sidecar takes another name
    paths.append(write_sidecar(out_dir, "table3", preset, [], notes, paths, scale=scale, file_name=SIDECAR,
                               table={"columns": columns, "rows": display}, code_versions=[__version__]))
    return paths


def _display(r: dict) -> dict[str, str]:
    """A computed row as displayed, column by column (:data:`COLUMNS`): errors in percent, norms rounded."""
    data = r["paper_dataset"] if r["dataset"] in ("mnist", "cifar10") else f"{r['paper_dataset']} → {r['dataset']}"
    return {"row": str(r["row"]), "data (paper → here)": data, "features": str(r["features"]),
            "ridge": f"{r['ridge']:g}", "n train / test": f"{r['n_train']} / {r['n_test']}",
            "train err": pct(r["train_error"], 1), "test err": pct(r["test_error"], 1),
            "paper test err": pct(r["paper_test_error"], 1), "norm": _num(r["norm"]),
            "paper norm": _num(r["paper_norm"]),
            "random labels: train err / test err / norm": (f"{pct(r['random_train_error'], 1)} / "
                                                           f"{pct(r['random_test_error'], 1)} / "
                                                           f"{_num(r['random_norm'])}"),
            "note": "; ".join(n for n in (r.get("note"), r.get("paper_note")) if n)}
