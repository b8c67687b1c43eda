"""Tests for `shatter reproduce` and `shatter report` end to end: every preset at smoke scale (the bundled
digits, two or three epochs), through the command line, once per module; then re-running, a failed run,
and the HTML page in a browser."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import time
from pathlib import Path

import pytest

from shattering.cli import main
from shattering.errors import ConfigError
from shattering.experiments.presets import PRESETS

from .test_report import chromium_check, needs_chromium

pytestmark = pytest.mark.slow

# What `shatter reproduce fig1` + the other presets must leave, per preset folder under OUT/artefacts/.
EXPECTED = {
    "fig1a": ("fig1a.png", "fig1a.svg", "fig1a.pdf", "fig1a.md", "fig1a.csv", "fig1a.json"),
    "fig1bc": ("fig1bc.png", "fig1bc.svg", "fig1bc.pdf", "fig1bc.md", "fig1bc.csv", "fig1bc.json"),
    "fig2b": ("fig2b.png", "fig2b.svg", "fig2b.pdf", "fig2b.md", "fig2b.csv", "fig2b.json"),
    "table1": ("table1.md", "table1.csv", "table1.json"),
    "table4": ("table4.md", "table4.csv", "table4.json"),
}
COMMANDS = ("fig1", "fig2b", "table1", "table4", "table3")  # fig1 = fig1a + fig1bc, as the done-when runs it
THEORY = (("minnorm", "--train-size", "50"), ("kernel", "--train-size", "100"))  # their --out JSON: in the report


def shatter(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(list(argv))
    return rc, out.getvalue()


def reproduce_args(name: str, out: Path) -> list[str]:
    return ["reproduce", name, "--scale", "smoke", "--out", str(out), "--quiet", "--device", "cpu"]


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    """Every preset reproduced at smoke scale into one folder: ``(out, {command: (rc, stdout, seconds)})``."""
    root = tmp_path_factory.mktemp("reproduce")
    out = root / "runs"
    results = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SHATTERING_NO_DOWNLOAD", "1")
        mp.setenv("SHATTERING_DATA", str(root / "data-cache"))
        for name in COMMANDS:
            t0 = time.perf_counter()
            rc, text = shatter(*reproduce_args(name, out))
            results[name] = (rc, text, time.perf_counter() - t0)
        for command, *args in THEORY:
            rc, text = shatter(command, "--dataset", "digits", *args, "--out", str(out / "theory"))
            assert rc == 0, text
    print({name: f"{r[2]:.1f} s" for name, r in results.items()})  # seconds per preset at smoke scale (-s)
    return out, results


def snapshot(out: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every file under ``out``: modification time, and content for artefacts (run records: mtime only)."""
    files = {}
    for path in sorted(out.rglob("*")):
        if path.is_file():
            rel = path.relative_to(out).as_posix()
            files[rel] = (path.stat().st_mtime_ns, path.read_bytes() if rel.startswith("artefacts/") else None)
    return files


def test_every_preset_reproduces_at_smoke_scale(reproduced):
    out, results = reproduced
    for rc, text, _ in results.values():
        assert rc == 0, text
        assert "artefacts" in text and "shatter report" in text
    for preset, names in EXPECTED.items():
        folder = out / "artefacts" / preset
        for name in names:
            assert (folder / name).stat().st_size > 0, folder / name
        side = json.loads((folder / f"{preset}.json").read_text())
        assert len(side["runs"]) == len(PRESETS[preset].rows)
        assert all(r["data_fingerprint"] and r["version"] for r in side["runs"])
    assert (out / "artefacts" / "fig1a" / "fig1a.png").read_bytes().startswith(b"\x89PNG")
    assert b"<svg" in (out / "artefacts" / "fig1bc" / "fig1bc.svg").read_bytes()


def test_tables_show_the_papers_numbers_beside_ours_and_the_notes(reproduced):
    out, _ = reproduced
    table1 = (out / "artefacts" / "table1" / "table1.md").read_text()
    notes = PRESETS["table1"].notes("smoke")
    assert notes and all(n in table1 for n in notes)
    assert table1.index(notes[0]) < table1.index("| model |")
    for paper in ("89.05 [S]", "85.75 [S]", "9.78 [S]", "10.12 [S]", "76.07 [S]", "99.34 [S]", "1,649,402 [A]",
                  "1,387,786 [A]", "1,735,178 [A]", "1,209,866 [A]"):
        assert paper in table1, paper
    assert table1.count("\n| ") == 1 + 19  # header + the paper's 19 rows
    table4 = (out / "artefacts" / "table4" / "table4.md").read_text()
    assert "fails to converge [S]" in table4 and "99.93 [S]" in table4 and "99.21 [S]" in table4
    header = (out / "artefacts" / "table1" / "table1.csv").read_text().splitlines()[0]
    assert "train_acc_ours,train_acc_paper" in header


def test_every_artefact_states_the_verdict_of_each_claim_it_tests(reproduced):
    out, _ = reproduced
    sidecars = {name: out / "artefacts" / name / f"{name}.json" for name in EXPECTED}
    sidecars["table3"] = out / "artefacts" / "table3" / "table3.artefact.json"
    for name, path in sidecars.items():
        claims = json.loads(path.read_text())["claims"]
        assert [c["id"] for c in claims] == [c.id for c in PRESETS[name].claims], name
        md = path.with_name(f"{name}.md").read_text()
        assert all(c["verdict"] in ("holds", "does not hold at this scale", "not measured") for c in claims)
        assert all(f"**{c['verdict']}**: {c['words']}" in md and c["text"] in md for c in claims), name


def test_runs_that_did_not_fit_are_marked(reproduced):
    out, _ = reproduced
    for preset in EXPECTED:
        side = json.loads((out / "artefacts" / preset / f"{preset}.json").read_text())
        unfit = [r for r in side["runs"] if r["status"] == "not-fit"]
        if not unfit:
            continue
        text = next((out / "artefacts" / preset / n) for n in EXPECTED[preset] if n.endswith((".md", ".svg")))
        assert "did not fit" in text.read_text(), preset
        assert all(r["status_text"].startswith("did not fit: ") for r in unfit)


def test_rerun_trains_nothing_and_rewrites_identical_bytes(reproduced, monkeypatch):
    out, _ = reproduced
    before = snapshot(out)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished reproduce must not train again")

    monkeypatch.setattr("shattering.executors.outcome.run", no_training)
    for name in COMMANDS:
        rc, text = shatter(*reproduce_args(name, out))
        assert rc == 0, text
    after = snapshot(out)
    assert after.keys() == before.keys()  # no new checkpoints, metrics or artefacts
    for rel, (mtime, content) in before.items():
        if content is None:
            assert after[rel][0] == mtime, f"{rel} was rewritten"  # run records untouched
        else:
            assert after[rel][1] == content, f"{rel} changed"  # artefacts: the same bytes


@pytest.mark.parametrize("quiet", [False, True])
def test_json_prints_every_run_and_artefact_and_nothing_else(reproduced, monkeypatch, quiet):
    out, _ = reproduced
    monkeypatch.setattr("shattering.executors.outcome.run", lambda *a, **k: pytest.fail("finished runs must be read"))
    argv = reproduce_args("fig2b", out)
    rc, text = shatter(*(argv if quiet else [a for a in argv if a != "--quiet"]), "--json")
    assert rc == 0
    result = json.loads(text)  # the whole of stdout
    configs = PRESETS["fig2b"].configs("smoke", out=str(out), device="cpu")
    assert [o["run_id"] for o in result["outcomes"]] == [c.run_id() for c in configs]
    for o, cfg in zip(result["outcomes"], configs, strict=True):
        assert o["run_dir"] == str(cfg.run_dir()) and o["done_before"] and o["error"] is None
        summary = json.loads((cfg.run_dir() / "summary.json").read_text())
        assert (o["status"], o["fit"], o["fit_epoch"], o["epochs"]) == (
            summary["status"], summary["fit"], summary["fit_epoch"], summary["epochs"])
        assert (o["train_acc"], o["test_acc"]) == (summary["final"]["train_acc"], summary["final"]["test_acc"])
    assert result["failed"] == 0 and result["render_errors"] == {} and result["skipped"] == {}
    assert sorted(Path(p).name for p in result["artefacts"]["fig2b"]) == sorted(EXPECTED["fig2b"])
    rc, text = shatter("sweep", *argv[1:], "--json")
    assert rc == 0
    swept = json.loads(text)
    assert swept == {"outcomes": result["outcomes"], "failed": 0}


def test_a_failed_run_is_reported_and_the_rest_still_render(reproduced, tmp_path, monkeypatch):
    src, _ = reproduced
    out = tmp_path / "runs"
    configs = PRESETS["fig2b"].configs("smoke", out=str(out), device="cpu")
    for cfg in configs:  # the finished runs, copied: nothing trains here
        shutil.copytree(Path(src) / cfg.run_dir().name, cfg.run_dir())
    doomed = configs[1]
    shutil.rmtree(doomed.run_dir())

    def impossible(cfg, **kwargs):
        raise ConfigError(f"impossible config {cfg.model} (made so by the test).")

    monkeypatch.setattr("shattering.executors.outcome.run", impossible)
    rc, text = shatter(*reproduce_args("fig2b", out))
    assert rc == 1
    assert "1 of 2 runs failed" in text and "impossible config inception-small-nobn" in text
    folder = out / "artefacts" / "fig2b"
    assert all((folder / n).stat().st_size > 0 for n in EXPECTED["fig2b"])
    side = json.loads((folder / "fig2b.json").read_text())
    failed = [r for r in side["runs"] if r["status"] == "failed"]
    assert [r["run_id"] for r in failed] == [doomed.run_id()]
    assert "impossible config" in failed[0]["error"]
    assert any("failed: impossible config" in line for line in side["caption"])  # the caption: provenance
    assert "failed: impossible config" in (folder / "fig2b.md").read_text()
    assert "failed: impossible config" not in (folder / "fig2b.svg").read_text()  # kept out of the image
    rc, text = shatter(*reproduce_args("fig2b", out), "--json")
    assert rc == 1
    result = json.loads(text)
    assert result["failed"] == 1 and [o["status"] == "failed" for o in result["outcomes"]] == [False, True]
    assert "impossible config inception-small-nobn" in result["outcomes"][1]["error"]
    assert result["outcomes"][1]["train_acc"] is None and not result["outcomes"][1]["fit"]

    rc, text = shatter("report", str(out))
    assert rc == 0
    page = (out / "report.html").read_text()
    assert "impossible config" in page and 'class="badge failed"' in page


def test_report_page_has_every_artefact_and_run(reproduced, tmp_path):
    out, _ = reproduced
    rc, text = shatter("report", str(out), "--out", str(tmp_path / "page.html"))
    assert rc == 0 and "6 artefact(s), 2 theory result(s)" in text
    page = (tmp_path / "page.html").read_text()
    assert page.count('<img src="data:image/png;base64,') == 3  # fig1a, fig1bc, fig2b
    for preset in (*EXPECTED, "table3"):
        assert f'id="artefact-{preset}-{preset}"' in page
    assert "Theory: <code>shatter minnorm</code>" in page and "Theory: <code>shatter kernel</code>" in page
    title = re.search(r"<title>(.*)</title>", page).group(1)
    assert title.startswith("Zhang et al. (ICLR 2017): Figure 1a, Figures 1b and 1c") and "Table 3" in title
    assert "(smoke: machinery check)" in title and "reproduced" not in title
    n_runs = len({p.parent for p in out.rglob("summary.json")})
    assert page.count('<tr id="run-') == n_runs
    assert page.count('<svg class="curves"') == n_runs  # every run's learning curves, one click away
    assert "src=\"http" not in page and "<link" not in page and "<script" not in page


def test_report_marks_unfinished_runs(reproduced, tmp_path):
    src, _ = reproduced
    out = tmp_path / "runs"
    run = next(p.parent for p in sorted(src.rglob("summary.json")))
    shutil.copytree(run, out / run.name)
    (out / run.name / "summary.json").unlink()  # as if interrupted after its last checkpoint
    rc, text = shatter("report", str(out))
    assert rc == 0 and "1 unfinished" in text
    page = (out / "report.html").read_text()
    assert 'class="unfinished"' in page and "Not a result" in page


@needs_chromium
def test_report_page_loads_in_chromium(reproduced, tmp_path):
    out, _ = reproduced
    rc, _ = shatter("report", str(out), "--out", str(tmp_path / "page.html"))
    assert rc == 0
    assert chromium_check(tmp_path / "page.html", tmp_path) == "OK images=3"  # and no overflow at 1400 px
    opened = tmp_path / "opened.html"  # every run's curves and record unfolded: the page at its widest
    opened.write_text((tmp_path / "page.html").read_text().replace("<details>", "<details open>"))
    assert chromium_check(opened, tmp_path) == "OK images=3"


def test_reproduce_refuses_an_unknown_preset(tmp_path, capsys):
    assert main(["reproduce", "fig9", "--scale", "smoke", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Unknown preset 'fig9'" in err and "fig1" in err


def test_report_refuses_an_empty_folder(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "holds no run records" in capsys.readouterr().err
