"""Figures fit for a paper (issue 14, items 2 and 7): what each scale may claim in titles and headings, PNG at
200 dpi or more plus SVG and PDF, the provenance in the sidecar and the Markdown but not in the image, model
names as the paper spells them, every series of Fig. 1c visible, legends off the data."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from shattering.experiments.presets import FIG1BC_MODELS, PRESETS, SMOKE_CAVEAT, scale_claim
from shattering.report import figures, plotting
from shattering.report.paper_numbers import MODEL_TITLES
from shattering.report.renderers import render

from .test_report import NOTES, caption_text, fake_outcome, figure_texts

FIGURES = ("fig1a", "fig1bc", "fig2b")


def outcomes_for(preset: str, runs):
    model = "inception-small" if preset in ("fig1a", "fig2b") else "mlp-1x512"
    if preset == "fig1bc":
        return [fake_outcome(runs, model=m, corruption="partial-labels", p=p, test_acc=0.5)
                for m in FIG1BC_MODELS for p in (0.0, 1.0)]
    if preset == "fig2b":
        return [fake_outcome(runs, model=m) for m in ("inception-small", "inception-small-nobn")]
    return [fake_outcome(runs, model=model, corruption=c, status=st)
            for c, st in (("true-labels", "fit"), ("random-labels", "not-fit"))]


@pytest.fixture
def drawn(tmp_path, monkeypatch):
    """Render a figure and keep the matplotlib Figure it saved: ``draw(preset, **kw) -> (folder, Figure)``."""
    saved = {}
    original = plotting.save

    def keep(fig, out_dir, stem, *args):
        saved[stem] = fig
        return original(fig, out_dir, stem, *args)

    monkeypatch.setattr(figures, "save", keep)
    monkeypatch.setattr(plotting, "save", keep)  # Figures 2a and 2b: plotting.render_step_curves

    made = {}

    def draw(preset: str, **kw):
        art = tmp_path / f"art-{preset}-{len(saved)}-{len(made)}"
        if preset not in made:  # one set of records per preset (writing them again would append to them)
            made[preset] = outcomes_for(preset, tmp_path / "runs" / preset)
        render(PRESETS[preset], made[preset], art, NOTES, **kw)
        return art, saved[preset]
    return draw


@pytest.mark.parametrize("preset", FIGURES)
def test_png_at_200_dpi_and_svg_and_pdf(drawn, preset):
    art, _ = drawn(preset, scale="smoke")
    png = (art / f"{preset}.png").read_bytes()
    with Image.open(io.BytesIO(png)) as im:
        assert min(im.info["dpi"]) >= 199.5 and im.width >= 1400
    assert (art / f"{preset}.pdf").read_bytes().startswith(b"%PDF")
    assert b"<svg" in (art / f"{preset}.svg").read_bytes()
    side = json.loads((art / f"{preset}.json").read_text())
    assert {f"{preset}.{ext}" for ext in ("png", "svg", "pdf", "md", "csv")} <= set(side["files"])
    again, _ = drawn(preset, scale="smoke")  # byte-stable in every format (no dates in the metadata)
    for ext in ("png", "svg", "pdf", "md"):
        assert (again / f"{preset}.{ext}").read_bytes() == (art / f"{preset}.{ext}").read_bytes(), ext


@pytest.mark.parametrize("preset", FIGURES)
def test_provenance_in_sidecar_and_markdown_not_in_the_image(drawn, preset):
    art, fig = drawn(preset, scale="smoke")
    caption = caption_text(art, preset).splitlines()
    assert caption and any(NOTES[0] in line for line in caption)
    texts = " ".join(t.get_text() for t in fig.findobj(match=lambda a: hasattr(a, "get_text")))
    svg = figure_texts(art / f"{preset}.svg")
    for line in caption:
        assert line not in texts and line not in svg, line
    assert NOTES[0] not in svg and f"{preset}.json" not in svg
    md = (art / f"{preset}.md").read_text()
    assert "![" in md and f"({preset}.png)" in md
    back, fig_back = drawn(preset, scale="smoke", provenance=True)  # the option puts it back into the image
    assert NOTES[0] in figure_texts(back / f"{preset}.svg")
    assert any(NOTES[0] in t.get_text() for t in fig_back.texts)


@pytest.mark.parametrize("scale", ["smoke", "quick", "paper", None])
def test_titles_and_headings_claim_only_what_the_scale_can(drawn, tmp_path, scale):
    art, fig = drawn("fig1a", scale=scale)
    title = fig.texts[0].get_text()
    heading = (art / "fig1a.md").read_text().splitlines()[0]
    side = json.loads((art / "fig1a.json").read_text())
    assert side["scale"] == scale and side["claim"] == scale_claim(scale)
    render(PRESETS["table1"], [fake_outcome(tmp_path / "runs")], tmp_path / f"t-{scale}", NOTES, scale=scale)
    table_heading = (tmp_path / f"t-{scale}" / "table1.md").read_text().splitlines()[0]
    for text in (title, heading, table_heading):
        assert ("reproduced" in text) == (scale == "paper"), text
        assert ("smoke: machinery check" in text) == (scale == "smoke"), text
        assert ("at a reduced scale" in text) == (scale == "quick"), text
    if scale == "smoke":
        assert SMOKE_CAVEAT in " ".join(t.get_text() for t in fig.texts)
        assert SMOKE_CAVEAT in table_heading and SMOKE_CAVEAT in side["claim"]


def test_smoke_notes_say_the_numbers_mean_nothing():
    for name, preset in PRESETS.items():
        if not preset.computed:
            assert any(SMOKE_CAVEAT in n for n in preset.notes("smoke")), name


def test_model_names_as_the_paper_spells_them(drawn):
    assert MODEL_TITLES["alexnet-small"] == "AlexNet" and MODEL_TITLES["inception-small"] == "Inception"
    art, _ = drawn("fig1bc", scale="smoke")
    svg = figure_texts(art / "fig1bc.svg")
    assert "AlexNet" in svg and "Alexnet" not in svg and "Inception" in svg


def test_fig1c_shows_every_series_where_they_coincide(drawn):
    """Inception and AlexNet at the same test error: their points sit apart in p, with their own markers."""
    _, fig = drawn("fig1bc", scale="smoke")
    axc = fig.axes[1]
    points = {}
    for line in axc.get_lines():
        xs, ys = line.get_xdata(), line.get_ydata()
        if line.get_marker() in figures.MODEL_MARKERS.values() and len(xs):
            points.setdefault(line.get_marker(), []).extend(zip(xs, ys, strict=True))
    assert len(points) == len(FIG1BC_MODELS)  # one marker per model
    size_px = 5 * fig.dpi / 72  # the markers' size (ms=5 points)
    coords = {m: [tuple(axc.transData.transform(p)) for p in pts] for m, pts in points.items()}
    for a in coords:
        for b in coords:
            if a < b:
                for pa in coords[a]:
                    for pb in coords[b]:
                        assert abs(pa[0] - pb[0]) >= size_px or abs(pa[1] - pb[1]) >= size_px, (a, b)


@pytest.mark.parametrize("preset", ["fig1a", "fig2b"])
def test_legends_sit_off_the_data_and_inside_the_figure(drawn, preset):
    _, fig = drawn(preset, scale="smoke")
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # a canvas that can measure text

    renderer = FigureCanvasAgg(fig).get_renderer()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent(renderer)
    axes = ax.get_window_extent(renderer)
    assert legend.x0 >= axes.x1  # right of the axes: covers no curve
    assert legend.x1 <= fig.bbox.x1 + 0.5  # and not cut off by the figure's edge
