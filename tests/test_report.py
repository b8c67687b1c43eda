"""Tests for `shattering/report`: the renderers, the paper's numbers and the HTML page, on synthetic run records
(fast: nothing is trained here; `test_reproduce.py` runs every preset end to end at smoke scale)."""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from shattering.config import RunConfig
from shattering.errors import RecordError
from shattering.executors.outcome import Outcome
from shattering.experiments.presets import FIG1BC_MODELS, PRESETS
from shattering.models import model_info
from shattering.report import paper_numbers as pn
from shattering.report.html import build_report, find_runs
from shattering.report.renderers import RENDERERS, render
from shattering.runs import RunRecord

STEPS_PER_EPOCH = 4
NOTES = ["data set: scikit-learn digits instead of the paper's CIFAR-10", "120 training images (the paper: 50,000)"]


# --------------------------------------------------------------------------------------------------
# Synthetic run records (the files a finished run leaves, with chosen numbers)
# --------------------------------------------------------------------------------------------------


def fake_outcome(out: Path, *, model: str = "mlp-1x512", corruption: str = "true-labels", p: float | None = None,
                 seed: int = 0, status: str = "fit", epochs: int = 5, train_acc: float | None = None,
                 test_acc: float = 0.5, error: str | None = None, **fields) -> Outcome:
    """An :class:`Outcome` whose record on disk holds a config, summary, metrics and steps with the given numbers.

    ``status`` is ``fit``, ``not-fit``, ``diverged`` or ``failed`` (no record at all, ``error`` set).
    """
    cfg = RunConfig(dataset="digits", model=model, corruption=corruption, p=p, seed=seed, data_seed=seed,
                    precision="fp32", device="cpu", out=str(out), **fields)
    run_dir = cfg.run_dir()
    if status == "failed":
        return Outcome(cfg, run_dir, error=error or "synthetic failure")
    final_train = train_acc if train_acc is not None else (1.0 if status == "fit" else 0.8)
    record = RunRecord(run_dir)
    record.create()
    rows, best = [], 0.0
    for e in range(1, epochs + 1):
        acc = 0.1 + (final_train - 0.1) * e / epochs
        test = test_acc * e / epochs if e < epochs else test_acc
        best = max(best, test, test_acc * 1.1 if e == epochs - 1 else 0)  # a peak before the end: shaded area
        loss = math.nan if status == "diverged" and e == epochs else 2.3 * (1 - 0.9 * e / epochs)
        rows.append({"epoch": e, "step": e * STEPS_PER_EPOCH, "lr": 0.01, "train_loss": loss, "train_acc": acc,
                     "train_errors": round((1 - acc) * 120), "test_loss": 2.0, "test_acc": test,
                     "best_test_acc": min(best, 1.0), "seconds": float(e)})
        record.append_metrics(rows[-1])
        record.append_steps([(e * STEPS_PER_EPOCH - 2, e, loss + 0.05, 0.01), (e * STEPS_PER_EPOCH, e, loss, 0.01)])
    fit = status == "fit"
    summary = {
        "status": status, "fit": fit, "message": f"synthetic {status}", "run_id": cfg.run_id(),
        "run_name": run_dir.name, "config": cfg.resolved().hashed_dict(),
        "data": {"name": "digits", "n_train": 120, "n_test": 60, "shape": [1, 8, 8], "classes": 10,
                 "fingerprint": f"fp{cfg.run_id()}"},
        "data_fingerprint": f"fp{cfg.run_id()}", "epochs": epochs, "steps": epochs * STEPS_PER_EPOCH,
        "fit_epoch": epochs if fit else None, "fit_step": epochs * STEPS_PER_EPOCH if fit else None,
        "best_test_acc": rows[-1]["best_test_acc"], "final": rows[-1], "warnings": [],
        "versions": {"shattering": "0.1.0+gtest", "torch": "x"}, "device": "cpu", "precision": "fp32",
        "schedule": {"text": "lr 0.01 constant"},
    }
    record.write_config({"config": cfg.to_dict(), "run_id": cfg.run_id(), "data": summary["data"],
                         "data_fingerprint": summary["data_fingerprint"], "versions": summary["versions"]})
    record.write_summary(summary)
    return Outcome(cfg, run_dir, summary=summary)


def caption_text(art: Path, stem: str) -> str:
    """A figure's caption (its provenance), as the sidecar and the Markdown hold it (they must agree)."""
    lines = sidecar(art / f"{stem}.json")["caption"]
    md = (art / f"{stem}.md").read_text()
    assert all(line in md for line in lines)
    return "\n".join(lines)


def figure_texts(svg_path: Path) -> str:
    """Every text drawn in a figure (the SVG keeps text as text)."""
    return html.unescape(" ".join(re.findall(r"<text[^>]*>(.*?)</text>", svg_path.read_text(), re.S)))


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def sidecar(path: Path) -> dict:
    return json.loads(path.read_text())


# --------------------------------------------------------------------------------------------------
# The paper's numbers
# --------------------------------------------------------------------------------------------------


def test_table1_has_all_19_rows_with_tags():
    assert len(pn.TABLE1) == 19
    assert sum(r.random_labels for r in pn.TABLE1) == 5
    assert {r.tag for r in pn.TABLE1} <= set(pn.TRUST)
    assert pn.table1_row("inception-small", True, True, False).test_acc == 89.05
    assert pn.table1_row("mlp-1x512", False, False, True).train_acc == 99.34
    assert pn.table1_row("mlp-1x512", True, False, False) is None  # not in the paper


def test_table1_params_are_the_models_counts():
    for row in pn.TABLE1:
        assert row.params == model_info(row.model).paper_params
    assert pn.table1_row("inception-small-nobn", False, False, False).params == 1_649_402


def test_table4_and_figure_numbers():
    assert [r.train_acc for r in pn.TABLE4] == [100.0, 99.93, 99.28, None, 100.0, 99.21]
    assert pn.table4_row("alexnet-small", "weight decay").text == "fails to converge"
    assert {m: a.value for m, a in pn.FIG1C_P0.items()} == {"inception-small": 0.14, "alexnet-small": 0.24,
                                                            "mlp-1x512": 0.49}
    assert pn.FIG1C_P1.value == 0.90 and pn.FIG1C_P1.tag == "V"
    assert (pn.FIG1B_P1.low, pn.FIG1B_P1.high) == (1.5, 3.5)


def test_every_preset_has_a_renderer():
    assert set(RENDERERS) == set(PRESETS)


# --------------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------------


def test_fig1bc_means_only_runs_that_fit(tmp_path):
    runs = tmp_path / "runs"
    outcomes = []
    for model in FIG1BC_MODELS:
        outcomes.append(fake_outcome(runs, model=model, corruption="partial-labels", p=0.0, epochs=4,
                                     test_acc=0.8))
        outcomes.append(fake_outcome(runs, model=model, corruption="partial-labels", p=1.0, epochs=8,
                                     test_acc=0.1))
    # MLP at p = 0.5: two seeds fit, one did not (its test accuracy must not enter the mean), one failed
    mlp = [fake_outcome(runs, model="mlp-1x512", corruption="partial-labels", p=0.5, seed=s, epochs=6,
                        test_acc=0.4 + 0.1 * s) for s in (0, 1)]
    unfit = fake_outcome(runs, model="mlp-1x512", corruption="partial-labels", p=0.5, seed=2, epochs=10,
                         status="not-fit", test_acc=0.95)
    failed = fake_outcome(runs, model="mlp-1x512", corruption="partial-labels", p=0.5, seed=3, status="failed",
                          error="disk on fire")
    outcomes += [*mlp, unfit, failed]
    paths = render(PRESETS["fig1bc"], outcomes, tmp_path / "art", NOTES)
    assert sorted(p.name for p in paths) == ["fig1bc.csv", "fig1bc.json", "fig1bc.md", "fig1bc.pdf", "fig1bc.png",
                                             "fig1bc.svg"]

    side = sidecar(tmp_path / "art" / "fig1bc.json")
    point = next(s for s in side["series"] if s["model"] == "mlp-1x512" and s["p"] == 0.5)
    assert point["n_runs"] == 4 and point["n_fit"] == 2
    assert point["test_error_mean"] == pytest.approx(1 - 0.45)  # seeds 0 and 1 only
    assert point["relative_time_mean"] == pytest.approx(6 / 4)
    slow = next(s for s in side["series"] if s["model"] == "alexnet-small" and s["p"] == 1.0)
    assert slow["relative_time_mean"] == pytest.approx(2.0)

    rows = read_csv(tmp_path / "art" / "fig1bc.csv")
    row = next(r for r in rows if r["run_id"] == unfit.config.run_id())
    assert row["status"] == "not-fit" and row["in_mean"] == "False" and row["relative_time"] == ""
    assert float(row["relative_time_lower_bound"]) == pytest.approx(10 / 4)
    assert next(r for r in rows if r["run_id"] == failed.config.run_id())["status"] == "failed"

    statuses = {r["run_id"]: r["status"] for r in side["runs"]}
    assert statuses[failed.config.run_id()] == "failed"
    assert next(r for r in side["runs"] if r["status"] == "failed")["error"] == "disk on fire"
    assert side["notes"][:2] == NOTES

    svg = (tmp_path / "art" / "fig1bc.svg").read_text()
    for text in ("did not fit", "chance", "Figures 1b and 1c", "label corruption p"):
        assert text in svg, text
    caption = caption_text(tmp_path / "art", "fig1bc")
    for text in ("disk on fire", "scikit-learn digits"):  # provenance: in the caption, not in the figure
        assert text in caption and text not in svg, text
    render(PRESETS["fig1bc"], outcomes, tmp_path / "with", NOTES, provenance=True)  # the option puts it back
    drawn = (tmp_path / "with" / "fig1bc.svg").read_text()
    assert "disk on fire" in drawn and "scikit-learn digits" in drawn


def test_fig1bc_without_a_reference_says_so(tmp_path):
    outcomes = [fake_outcome(tmp_path / "runs", corruption="partial-labels", p=p, status="not-fit")
                for p in (0.0, 1.0)]
    render(PRESETS["fig1bc"], outcomes, tmp_path / "art", NOTES)
    side = sidecar(tmp_path / "art" / "fig1bc.json")
    assert all(s["relative_time_mean"] is None for s in side["series"])
    assert any("No run at p = 0 fit for MLP 1x512" in n for n in side["notes"])
    assert "no run at p = 0 fit" in (tmp_path / "art" / "fig1bc.svg").read_text()
    assert "No run at p = 0 fit for MLP 1x512" in caption_text(tmp_path / "art", "fig1bc")


def test_fig1a_curves_from_steps_and_unfit_marked(tmp_path):
    runs = tmp_path / "runs"
    outcomes = [fake_outcome(runs, model="inception-small", corruption=c, seed=s)
                for c in ("true-labels", "random-labels") for s in (0, 1)]
    outcomes.append(fake_outcome(runs, model="inception-small", corruption="gaussian", status="not-fit"))
    outcomes.append(fake_outcome(runs, model="inception-small", corruption="random-pixels", status="diverged"))
    render(PRESETS["fig1a"], outcomes, tmp_path / "art", NOTES)
    rows = read_csv(tmp_path / "art" / "fig1a.csv")
    assert {r["source"] for r in rows} == {"steps.csv"}
    assert len([r for r in rows if r["setting"] == "true-labels"]) == 2 * 2 * 5
    svg = (tmp_path / "art" / "fig1a.svg").read_text()
    for text in ("true labels (2/2 fit)", "gaussian (0/1 fit)", "did not fit", "diverged",
                 "95% confidence band", "Figure 1a"):
        assert text in svg, text


def test_fig2b_shades_best_and_marks_unfit(tmp_path):
    runs = tmp_path / "runs"
    outcomes = [fake_outcome(runs, model="inception-small", epochs=6, test_acc=0.7),
                fake_outcome(runs, model="inception-small-nobn", epochs=6, test_acc=0.6, status="not-fit")]
    render(PRESETS["fig2b"], outcomes, tmp_path / "art", NOTES)
    rows = read_csv(tmp_path / "art" / "fig2b.csv")
    assert {"train_acc", "test_acc", "best_test_acc", "step"} <= set(rows[0])
    assert any(float(r["best_test_acc"]) > float(r["test_acc"]) for r in rows)
    svg = (tmp_path / "art" / "fig2b.svg").read_text()
    assert "Inception: fit (1 run)" in svg
    assert "Inception w/o BatchNorm, seed 0: did not fit: 80.00%" in svg


def test_figures_are_byte_stable(tmp_path):
    outcomes = [fake_outcome(tmp_path / "runs", corruption="partial-labels", p=p) for p in (0.0, 0.5)]
    first = {p.name: p.read_bytes() for p in render(PRESETS["fig1bc"], outcomes, tmp_path / "a", NOTES)}
    second = {p.name: p.read_bytes() for p in render(PRESETS["fig1bc"], outcomes, tmp_path / "a", NOTES)}
    assert first == second
    assert b"<dc:date>" not in first["fig1bc.svg"]
    assert b"Software" not in first["fig1bc.png"]


# --------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------


def test_table1_puts_the_papers_numbers_beside_ours(tmp_path):
    runs = tmp_path / "runs"
    outcomes = [
        fake_outcome(runs, model="mlp-1x512", weight_decay=5e-4, test_acc=0.5),
        fake_outcome(runs, model="mlp-1x512", test_acc=0.51),
        fake_outcome(runs, model="mlp-1x512", corruption="random-labels", status="not-fit", train_acc=0.987,
                     test_acc=0.1),
        fake_outcome(runs, model="inception-small-nobn", status="diverged"),
        fake_outcome(runs, model="alexnet-small", random_crop=True, status="failed", error="no data"),
    ]
    paths = render(PRESETS["table1"], outcomes, tmp_path / "art", NOTES)
    assert sorted(p.name for p in paths) == ["table1.csv", "table1.json", "table1.md"]
    md = (tmp_path / "art" / "table1.md").read_text()
    assert md.index(NOTES[0]) < md.index("| model |")  # notes above the table
    assert "| MLP 1x512 | 38,410 | 1,209,866 [A] | no | yes (0.0005) | true | 100.00 | 99.80 [S] | 50.00 | " \
           "50.39 [S] | fit |" in md
    assert "did not fit: 98.70%" in md and "99.34 [S]" in md and "10.61 [S]" in md
    assert "diverged" in md and "failed: no data" in md

    rows = read_csv(tmp_path / "art" / "table1.csv")
    rand = next(r for r in rows if r["labels"] == "random")
    assert float(rand["train_acc_ours"]) == pytest.approx(98.7) and rand["train_acc_paper"] == "99.34"
    assert rand["status"] == "did not fit: 98.70%"
    assert next(r for r in rows if r["model"] == "alexnet-small")["params_ours"] == ""


def test_table1_mean_over_seeds_excludes_unfit(tmp_path):
    runs = tmp_path / "runs"
    outcomes = [fake_outcome(runs, test_acc=0.5, seed=0), fake_outcome(runs, test_acc=0.6, seed=1),
                fake_outcome(runs, test_acc=0.2, seed=2, status="not-fit")]
    render(PRESETS["table1"], outcomes, tmp_path / "art", NOTES)
    row = read_csv(tmp_path / "art" / "table1.csv")[0]
    assert float(row["test_acc_ours"]) == pytest.approx(55.0)
    assert row["status"] == "fit 2/3; seed 2 did not fit: 80.00%" and row["n_fit"] == "2"


def test_table4_rows_and_fails_to_converge(tmp_path):
    runs = tmp_path / "runs"
    outcomes = [fake_outcome(runs, model="alexnet-small", corruption="random-labels", weight_decay=5e-4,
                             status="not-fit", train_acc=0.2),
                fake_outcome(runs, model="inception-small", corruption="random-labels", flip_rotate=True,
                             lr_decay=0.999)]
    render(PRESETS["table4"], outcomes, tmp_path / "art", NOTES)
    md = (tmp_path / "art" / "table4.md").read_text()
    assert "fails to converge [S]" in md and "did not fit: 20.00%" in md and "99.28 [S]" in md
    assert "augmentation" in md


# --------------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------------


def test_html_lists_artefacts_runs_and_unfinished(tmp_path):
    runs = tmp_path / "runs"
    outcomes = [fake_outcome(runs, corruption="partial-labels", p=p) for p in (0.0, 0.5)]
    outcomes.append(fake_outcome(runs, corruption="partial-labels", p=1.0, status="failed", error="out of memory"))
    render(PRESETS["fig1bc"], outcomes, runs / "artefacts" / "fig1bc", NOTES)
    render(PRESETS["table1"], outcomes[:1], runs / "artefacts" / "table1", NOTES)
    # an unfinished run: a record with a checkpoint, no summary
    cfg = RunConfig(dataset="digits", corruption="random-labels", out=str(runs), precision="fp32")
    RunRecord(cfg.run_dir()).create()
    (cfg.run_dir() / "checkpoint.pt").write_bytes(b"partial")
    (cfg.run_dir() / "config.json").write_text(json.dumps({"run_id": cfg.run_id(), "config": {"model": "x"}}))

    page = build_report(runs)
    assert page.count("<img src=\"data:image/png;base64,") == 1
    assert "src=\"http" not in page and "href=\"http" not in page and "<script" not in page
    assert html.escape(NOTES[0]) in page and "out of memory" in page
    assert "unfinished" in page and cfg.run_dir().name in page
    statuses = {r["run_name"]: r["status"] for r in find_runs(runs)}
    assert statuses[cfg.run_dir().name] == "unfinished"
    assert sum(s == "fit" for s in statuses.values()) == 2
    assert build_report(runs) == page  # byte-stable


# --------------------------------------------------------------------------------------------------
# The page in a real browser (headless Chromium; Debian's `chromium` package)
# --------------------------------------------------------------------------------------------------

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed "
                                    "(apt-get install -y chromium); the HTML page is not checked in a browser")

# Injected into a copy of the page (its hash is added to the page's Content-Security-Policy, which otherwise
# forbids scripts): after load, a marker says whether every image decoded and whether anything failed.
CHECK_SCRIPT = """
(function () {
  var problems = [];
  window.addEventListener('error', function (e) { problems.push('js: ' + e.message); });
  document.addEventListener('securitypolicyviolation', function (e) { problems.push('csp: ' + e.blockedURI); });
  window.addEventListener('load', function () {
    var imgs = document.images;
    for (var i = 0; i < imgs.length; i++) {
      if (!imgs[i].complete || imgs[i].naturalWidth === 0) { problems.push('image ' + i + ' did not decode'); }
    }
    var marker = document.createElement('div');
    marker.id = 'shattering-check';
    var width = ' width=' + document.documentElement.scrollWidth + '/' + window.innerWidth;
    marker.textContent = (problems.length ? 'PROBLEMS: ' + problems.join('; ') : 'OK images=' + imgs.length) + width;
    document.body.appendChild(marker);
  });
})();
"""


WINDOW = 1400  # the page must fit a window this wide: no horizontal scrolling


def chromium_check(page: Path, tmp_path: Path) -> str:
    """Load ``page`` in headless Chromium in a window :data:`WINDOW` pixels wide and return the marker's text
    (``OK images=N`` or ``PROBLEMS: ...``); fails when the page is wider than the window (scrolls sideways)."""
    text, width, window = _chromium_marker(page, tmp_path)
    assert window == WINDOW, f"Chromium's window is {window} px wide, not {WINDOW}"
    assert width <= WINDOW, f"the page is {width} px wide: it scrolls sideways in a {WINDOW} px window"
    return text


def _chromium_marker(page: Path, tmp_path: Path) -> tuple[str, int, int]:
    """The marker's text, the page's scroll width and the window's inner width."""
    text = page.read_text()
    digest = base64.b64encode(hashlib.sha256(CHECK_SCRIPT.encode()).digest()).decode()
    assert "default-src 'none'" in text  # the page forbids every external load; keep that, allow our script
    text = text.replace("default-src 'none';", f"default-src 'none'; script-src 'sha256-{digest}';", 1)
    text = text.replace("</head>", f"<script>{CHECK_SCRIPT}</script>\n</head>", 1)  # first: sees everything
    probe = tmp_path / "probe.html"
    probe.write_text(text)
    profile = tmp_path / "chromium-profile"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
           "--no-default-browser-check", f"--user-data-dir={profile}", "--virtual-time-budget=10000",
           f"--window-size={WINDOW},1000", "--hide-scrollbars", "--dump-dom", probe.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    match = re.search(r'<div id="shattering-check">([^<]*)</div>', done.stdout)
    assert match, f"the check script did not run; Chromium said: {done.stderr[-2000:]}"
    found = re.fullmatch(r"(.*) width=(\d+)/(\d+)", match.group(1))
    assert found, match.group(1)
    return found.group(1), int(found.group(2)), int(found.group(3))


@needs_chromium
def test_html_page_loads_in_chromium(tmp_path):
    runs = tmp_path / "runs"
    outcomes = [fake_outcome(runs, corruption="partial-labels", p=p) for p in (0.0, 1.0)]
    render(PRESETS["fig1bc"], outcomes, runs / "artefacts" / "fig1bc", NOTES)
    render(PRESETS["table1"], outcomes[:1], runs / "artefacts" / "table1", NOTES)
    page = runs / "report.html"
    page.write_text(build_report(runs))
    assert chromium_check(page, tmp_path) == "OK images=1"


@needs_chromium
def test_chromium_check_sees_a_page_wider_than_the_window(tmp_path):
    """The overflow check itself: a page with a 2,000-pixel table is caught."""
    page = tmp_path / "wide.html"
    page.write_text(build_report(_one_run_folder(tmp_path)).replace("</body>", '<table style="width:2000px">'
                                                                                "<tr><td>x</td></tr></table></body>"))
    _, width, window = _chromium_marker(page, tmp_path)
    assert window == WINDOW and width >= 2000
    with pytest.raises(AssertionError, match="scrolls sideways"):
        chromium_check(page, tmp_path)


def _one_run_folder(tmp_path: Path) -> Path:
    runs = tmp_path / "one"
    fake_outcome(runs)
    return runs


# --------------------------------------------------------------------------------------------------
# Honesty: every kind of run shown as what it is; every artefact names the runs behind it
# --------------------------------------------------------------------------------------------------


def _unfinished(out: Path, seed: int, how: str) -> Path:
    """A run record without a (whole) summary: interrupted, a summary cut off, or one never renamed in."""
    cfg = RunConfig(dataset="digits", corruption="random-labels", seed=seed, out=str(out), precision="fp32")
    record = RunRecord(cfg.run_dir())
    record.create()
    record.write_config({"run_id": cfg.run_id(), "config": cfg.to_dict(), "data_fingerprint": "fpX",
                         "versions": {"shattering": "0.1.0+gtest"}})
    record.append_metrics({"epoch": 1, "step": 4, "train_acc": 1.0, "test_acc": 0.99, "train_loss": 0.01})
    (record.dir / "checkpoint.pt").write_bytes(b"SHATTERING-CHECKPOINT-1\n")
    if how == "cut":  # a summary.json that is not a whole JSON object (written by something that is not us)
        record.summary_path.write_text('{"status": "fit", "final": {"train_acc": 1.0')
    elif how == "temporary":  # killed between writing the summary's temporary file and renaming it
        (record.dir / ".summary.json.abc123.tmp").write_text(json.dumps({"status": "fit", "final": {}}))
    elif how == "foreign":  # a JSON object with a status but nothing else a summary holds
        record.summary_path.write_text(json.dumps({"status": "fit", "final": {"train_acc": 1.0}}))
    return record.dir


def test_report_shows_every_run_as_what_it_is_and_averages_only_fits(tmp_path):
    runs = tmp_path / "runs"
    outcomes = [fake_outcome(runs, model="inception-small", seed=s, epochs=6, test_acc=0.6 + 0.1 * s)
                for s in (0, 1)]
    outcomes += [fake_outcome(runs, model="inception-small", seed=2, status="not-fit", test_acc=0.99),
                 fake_outcome(runs, model="inception-small", seed=3, status="diverged", test_acc=0.98),
                 fake_outcome(runs, model="inception-small", seed=4, status="failed", error="disk full")]
    unfinished = [_unfinished(runs, 10 + i, how) for i, how in enumerate(("killed", "cut", "temporary", "foreign"))]
    for name in ("table1", "fig2b", "fig1a"):
        render(PRESETS[name], outcomes, runs / "artefacts" / name, NOTES)

    # the table: the mean is over the two runs that fit (60% and 70%), never the 99% and 98% of the others
    row = read_csv(runs / "artefacts" / "table1" / "table1.csv")[0]
    assert float(row["test_acc_ours"]) == pytest.approx(65.0) and row["n_fit"] == "2" and row["n_runs"] == "5"
    assert "seed 2 did not fit" in row["status"] and "seed 3 diverged" in row["status"]
    assert "seed 4 failed: disk full" in row["status"]
    svg = (runs / "artefacts" / "fig2b" / "fig2b.svg").read_text()
    assert "Inception: fit (2 runs)" in svg and "seed 3: diverged" in svg and "seed 2: did not fit" in svg

    statuses = {r["run_name"]: r["status"] for r in find_runs(runs)}
    expected = {o.run_dir.name: o.status for o in outcomes if o.summary} | {
        d.name: "damaged" if how in ("cut", "foreign") else "unfinished"
        for d, how in zip(unfinished, ("killed", "cut", "temporary", "foreign"), strict=True)}
    assert statuses == expected  # the failed run left no record; killed: unfinished; a summary not whole: damaged
    page = build_report(runs)
    for name, status in expected.items():  # each row carries its status badge, and a title saying what it is
        assert re.search(rf'<tr[^>]* class="{status}"[^>]*><td><span class="badge {status}">[^<]*</span></td>'
                         rf"<td>{re.escape(name)}</td>", page), name
    assert "All runs found (8: damaged 2, diverged 1, fit 2, did not fit 1, unfinished 2)" in page
    assert "2 unfinished run(s)" in page and "2 damaged run(s)" in page and "Not a result" in page


@pytest.mark.parametrize("preset", [name for name in RENDERERS if not PRESETS[name].computed])  # trained presets
def test_every_artefact_names_the_runs_behind_it(tmp_path, preset, monkeypatch):
    """Sidecar: every run with its config hash, data fingerprint and code version; CSV and Markdown: the config
    hash of every run; figure captions and tables: where the rest is, and the code version."""
    if preset == "memorization-scores":  # its subset networks would train for the fake runs' 1,000 epochs of
        # digits: the study fails at once here (tests/test_memorization_scores.py trains it end to end)
        def no_study(*args, **kwargs):
            raise RecordError("no subset study in this test")

        monkeypatch.setattr("shattering.experiments.memorization_scores.subset_study", no_study)
    runs = tmp_path / "runs"
    model = "inception-small" if preset in ("fig1a", "fig2b") else "mlp-1x512"
    corruption = {"fig1bc": "partial-labels", "table4": "random-labels"}.get(preset, "true-labels")
    p = 0.0 if preset == "fig1bc" else None
    outcomes = [fake_outcome(runs, model=model, corruption=corruption, p=p, seed=s, status=st)
                for s, st in enumerate(("fit", "fit", "not-fit", "diverged", "failed"))]
    paths = render(PRESETS[preset], outcomes, tmp_path / "art", NOTES)
    side = sidecar(tmp_path / "art" / f"{preset}.json")
    assert [r["run_id"] for r in side["runs"]] == [o.config.run_id() for o in outcomes]
    for entry, o in zip(side["runs"], outcomes, strict=True):
        assert entry["status"] == o.status
        if o.summary is not None:
            assert entry["data_fingerprint"] == o.summary["data_fingerprint"] and entry["version"] == "0.1.0+gtest"
        else:
            assert entry["error"] == "synthetic failure"
    assert side["code_versions"] == ["0.1.0+gtest"]
    (csv_path,) = [p for p in paths if p.suffix == ".csv"]
    text = csv_path.read_text()
    shown = outcomes if preset in ("table1", "table4", "fig1bc") else [o for o in outcomes if o.summary]
    assert all(o.config.run_id() in text for o in shown)  # fig1a/fig2b: curves of runs that have records
    for path in paths:
        if path.suffix == ".md":
            body = path.read_text()
            assert f"{preset}.json" in body and "0.1.0+gtest" in body, path.name
            if PRESETS[preset].kind == "table":
                assert all(o.config.run_id() in body for o in outcomes)
        if path.suffix == ".svg":  # the figure's provenance is its caption (sidecar, Markdown), not its image
            assert f"{preset}.json" in caption_text(path.parent, preset) and "0.1.0+gtest" in caption_text(
                path.parent, preset)
            assert "0.1.0+gtest" not in figure_texts(path), path.name
