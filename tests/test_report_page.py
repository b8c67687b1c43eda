"""The report page a researcher would send a colleague (issue 14, item 6): a title from the artefacts (or
``--title``), Table 3 and the theory results, an "All runs" table with the schedule, weight decay and
augmentation and every run's learning curves one click away, what each scale may claim; fast (synthetic
records; `test_reproduce.py` renders the page of every smoke artefact in Chromium)."""

from __future__ import annotations

import contextlib
import io
import json
import re

from shattering.cli import main
from shattering.experiments.presets import PRESETS, SMOKE_CAVEAT
from shattering.report.html import build_report, default_title, find_artefacts, find_runs
from shattering.report.renderers import render
from shattering.report.table3 import render_table3

from .test_report import NOTES, chromium_check, fake_outcome, needs_chromium

TABLE3_ROW = {"row": "mnist-raw", "scale": "smoke", "paper_dataset": "mnist", "dataset": "digits",
              "features": "raw pixels", "ridge": 0.0, "n_train": 100, "n_test": 50, "train_error": 0.0,
              "test_error": 0.12, "paper_test_error": 0.012, "norm": 33.0, "paper_norm": 221.0,
              "random_train_error": 0.0, "random_test_error": 0.9, "random_norm": 90.0,
              "note": "MNIST is not on this machine; ran on digits instead: not comparable", "paper_note": None}


def folder(tmp_path):
    """Runs with a schedule, weight decay and augmentation; fig1a and table1 at smoke scale; Table 3; a theory
    result."""
    runs = tmp_path / "runs"
    outcomes = [fake_outcome(runs, model="inception-small", lr=0.05, lr_decay=0.95),
                fake_outcome(runs, model="inception-small", corruption="random-labels", weight_decay=5e-4,
                             random_crop=True, status="not-fit"),
                fake_outcome(runs, model="inception-small", corruption="gaussian", flip_rotate=True, epochs=3)]
    render(PRESETS["fig1a"], outcomes, runs / "artefacts" / "fig1a", NOTES, scale="smoke")
    render(PRESETS["table1"], outcomes, runs / "artefacts" / "table1", NOTES, scale="smoke")
    render_table3(PRESETS["table3"], [TABLE3_ROW], runs / "artefacts" / "table3", [])
    (runs / "theory").mkdir()
    (runs / "theory" / "minnorm.json").write_text(json.dumps({"dataset": "digits", "n": 50, "norm": 11.84,
                                                              "trace": {"distance": [1.0, 0.5, 0.25]}}))
    return runs, outcomes


def test_page_title_from_the_artefacts_or_given(tmp_path):
    runs, _ = folder(tmp_path)
    page = build_report(runs)
    title = re.search(r"<title>(.*)</title>", page).group(1)
    assert title == "Zhang et al. (ICLR 2017): Figure 1a, Table 1, Table 3 (smoke: machinery check)"
    assert f"<h1>{title}</h1>" in page and runs.name not in title
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["report", str(runs), "--title", "Memorization on digits", "--out",
                     str(tmp_path / "p.html")]) == 0
    given = (tmp_path / "p.html").read_text()
    assert "<title>Memorization on digits</title>" in given and "<h1>Memorization on digits</h1>" in given
    assert "1 theory result(s)" in out.getvalue()
    assert default_title([], find_runs(runs)).startswith("3 run(s): inception-small on digits")


def test_table3_and_theory_results_are_on_the_page(tmp_path):
    runs, _ = folder(tmp_path)
    assert [d["preset"] for _, d in find_artefacts(runs)] == ["fig1a", "table1", "table3"]
    page = build_report(runs)
    assert 'id="artefact-table3-table3"' in page and "paper test err" in page and "12.0%" in page
    assert "not comparable" in page
    assert "Theory: <code>shatter minnorm</code>" in page and "11.84" in page
    assert "<details><summary><code>trace</code></summary>" in page  # a long field, folded


def test_all_runs_show_schedule_weight_decay_augmentation_and_curves(tmp_path):
    runs, outcomes = folder(tmp_path)
    page = build_report(runs)
    section = page[page.index('<section id="runs">'):]
    head = re.search(r"<thead><tr>(.*?)</tr></thead>", section).group(1)
    for column in ("lr", "lr decay", "weight decay", "augmentation", "train acc", "test acc"):
        assert f"<th>{column}</th>" in head, column
    rows = re.findall(r'<tr id="run-[^"]*" class="[^"]*"[^>]*>(.*?)</tr>', section)
    assert len(rows) == len(outcomes)
    cells = [re.findall(r"<td>(.*?)</td>", row) for row in rows]
    by_run = {c[1]: c for c in cells}
    first, second, third = (by_run[o.run_dir.name] for o in outcomes)
    assert first[7:11] == ["0.05", "0.95", "0", "none"]
    assert second[9:11] == ["0.0005", "random crop"]
    assert third[10] == "flip + rotate"
    # every run: a folded row with its long fields and its learning curves (an inline SVG, one per run)
    assert section.count('<tr class="more">') == len(outcomes)
    assert section.count('<svg class="curves"') == len(outcomes)
    assert section.count("<polyline") == 4 * len(outcomes)  # train and test accuracy, train and test loss
    for o in outcomes:
        assert o.config.run_id() in section and o.summary["data_fingerprint"] in section
    assert "lr 0.01 constant" in section  # the schedule line of the record


def test_smoke_artefacts_say_they_check_the_machinery(tmp_path):
    runs, _ = folder(tmp_path)
    page = build_report(runs)
    assert page.count(f'<p class="claim smoke">smoke: machinery check ({SMOKE_CAVEAT})</p>') == 3
    assert "reproduced" not in re.sub(r"reproduced exactly", "", page.split('<section id="runs">')[0])
    assert "<figcaption>fig1a.png<ul><li>Differs from the paper" in page  # the caption: under the figure here


@needs_chromium
def test_page_with_curves_fits_1400_pixels(tmp_path):
    runs, _ = folder(tmp_path)
    page = runs / "report.html"
    page.write_text(build_report(runs).replace("<details>", "<details open>"))  # curves open: the widest
    assert chromium_check(page, tmp_path) == "OK images=1"
