"""One run's learning curves as a small inline SVG for the HTML page: training and test accuracy (left panel)
and training and test loss (right panel) per epoch, read from the run's ``metrics.jsonl`` (the epoch-end
evaluation of Section 2.1 of Zhang et al., ICLR 2017: the whole training set in eval mode, at the epochs
evaluated; the others are skipped).

Plain SVG text, no matplotlib: a page of hundreds of runs stays fast to build, small, and byte-stable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

PANEL_W, PANEL_H = 330, 150
PAD_L, PAD_R, PAD_T, PAD_B = 42, 10, 20, 28
COLORS = {"train": "#d62728", "test": "#1f77b4"}


def curves_svg(metrics: Sequence[dict]) -> str:
    """Two panels side by side (accuracy, loss) against epochs; an empty string when no epoch was recorded."""
    rows = [r for r in metrics if isinstance(r, dict) and _finite(r.get("epoch"))
            and r.get("evaluated", True) is not False]  # epochs without a full evaluation hold no accuracy
    if not rows:
        return ""
    epochs = [float(r["epoch"]) for r in rows]
    acc = _panel("accuracy", epochs, {"train": _series(rows, "train_acc"), "test": _series(rows, "test_acc")},
                 lo=0.0, hi=1.0, x0=0)
    losses = {"train": _series(rows, "train_loss"), "test": _series(rows, "test_loss")}
    finite = [v for s in losses.values() for v in s if v is not None]
    hi = max(finite) * 1.05 if finite and max(finite) > 0 else 1.0
    loss = _panel("loss (cross-entropy)", epochs, losses, lo=0.0, hi=min(hi, 50.0), x0=PANEL_W)
    legend = "".join(
        f'<line x1="{2 * PANEL_W - 150 + 70 * i}" y1="8" x2="{2 * PANEL_W - 132 + 70 * i}" y2="8" '
        f'stroke="{COLORS[k]}" stroke-width="2"/><text x="{2 * PANEL_W - 128 + 70 * i}" y="12">{k}</text>'
        for i, k in enumerate(("train", "test")))
    return (f'<svg class="curves" xmlns="http://www.w3.org/2000/svg" width="{2 * PANEL_W}" height="{PANEL_H}" '
            f'viewBox="0 0 {2 * PANEL_W} {PANEL_H}" role="img" aria-label="learning curves per epoch" '
            f'font-family="sans-serif" font-size="10">{acc}{loss}{legend}</svg>')


def _series(rows: Sequence[dict], key: str) -> list[float | None]:
    return [float(r[key]) if _finite(r.get(key)) else None for r in rows]


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _panel(title: str, xs: list[float], series: dict[str, list[float | None]], *, lo: float, hi: float,
           x0: int) -> str:
    w, h = PANEL_W - PAD_L - PAD_R, PANEL_H - PAD_T - PAD_B
    x_lo, x_hi = min(xs), max(xs)
    span = (x_hi - x_lo) or 1.0

    def px(x: float) -> float:
        return x0 + PAD_L + (x - x_lo) / span * w

    def py(y: float) -> float:
        return PAD_T + (1 - (min(max(y, lo), hi) - lo) / ((hi - lo) or 1.0)) * h

    parts = [f'<rect x="{x0 + PAD_L}" y="{PAD_T}" width="{w}" height="{h}" fill="none" stroke="#bbb"/>',
             f'<text x="{x0 + PAD_L}" y="{PAD_T - 6}" font-weight="bold">{escape(title)}</text>',
             f'<text x="{x0 + PAD_L + w / 2:.1f}" y="{PANEL_H - 4}" text-anchor="middle">epoch</text>']
    for frac in (0.0, 0.5, 1.0):
        y = lo + frac * (hi - lo)
        parts.append(f'<text x="{x0 + PAD_L - 4}" y="{py(y) + 3:.1f}" text-anchor="end">{y:.3g}</text>')
    for x in sorted({x_lo, x_hi}):
        parts.append(f'<text x="{px(x):.1f}" y="{PAD_T + h + 12}" text-anchor="middle">{x:g}</text>')
    for name, ys in series.items():
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys, strict=True) if y is not None)
        if points:
            parts.append(f'<polyline fill="none" stroke="{COLORS[name]}" stroke-width="1.6" '
                         f'points="{points}"/>')
            if len(xs) == 1:  # one epoch: a dot, not an invisible line
                parts.append(f'<circle cx="{points.split(",")[0]}" cy="{points.split(",")[1]}" r="2.5" '
                             f'fill="{COLORS[name]}"/>')
    return "".join(parts)
