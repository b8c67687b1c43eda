"""The one registry of complexity measures (`shattering/measures/registry.py`): a measure registered from outside the
package appears in the run's summary, in `load_runs`, in `shatter measures` and in the measures artefact;
`--measures` chooses what a run computes (not part of its run id; `none` computes nothing); bad input is refused
in one sentence; no other list of the measures' names exists in the source, and docs/measures.md's table is the
registry's. Everything runs on the CPU."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch
from torch import nn

import shattering
from shattering.cli import main
from shattering.cli.measures import shown
from shattering.config import RunConfig
from shattering.errors import ConfigError
from shattering.executors.outcome import Outcome
from shattering.experiments.presets import PRESETS
from shattering.measures import (
    Measure,
    Unmeasurable,
    compute_measures,
    measure_names,
    register_measure,
    selected,
    unregister_measure,
)
from shattering.measures.registry import DOCS_BEGIN, DOCS_END, from_elsewhere, markdown_table, measures
from shattering.report.measures import compared, render_measures
from shattering.runs import load_runs, measure_run, run
from shattering.runs.table import columns

FAST = {"dataset": "digits", "corruption": "random-labels", "train_size": 200, "test_size": 100, "epochs": 3,
        "until": "epochs", "precision": "fp32", "device": "cpu"}
ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "shattering"
CALLS: list[str] = []  # which of the test's measures were computed, in order


def weight_count(m) -> float:
    """The number of trained parameters (Zhang et al. 2017, Section 4: the networks have more than examples)."""
    CALLS.append("weight_count")
    return float(sum(p.numel() for p in m.model.parameters() if p.requires_grad))


def slow_measure(m) -> float:
    CALLS.append("slow_measure")
    return 2.0 * m.value("l2_norm")  # built on a built-in measure


@pytest.fixture
def user_measures():
    """Two measures registered as a user's code would: a cheap one and an expensive (opt-in) one; removed after."""
    CALLS.clear()
    register_measure("weight_count", weight_count, title="number of weights", heading="weights",
                     formula="sum of the sizes of the trained parameters", paper="Zhang et al. 2017, Section 4")
    register_measure("slow_measure", slow_measure, title="twice the l2 norm", formula="2 ||w||_2",
                     paper="a test", cost="expensive")
    try:
        yield
    finally:
        for name in ("weight_count", "slow_measure"):
            unregister_measure(name)


def test_a_measure_registered_outside_appears_in_summary_table_command_and_artefact(tmp_path, capsys,
                                                                                     user_measures):
    assert shattering.measures.register_measure is register_measure
    result = run(**FAST, out=str(tmp_path))
    measures_ = result.summary["measures"]
    expected = float(sum(p.numel() for p in nn.Linear(64, 512).parameters()) + 512 * 10 + 10)
    assert measures_["weight_count"] == expected and measures_["unavailable"] == {}
    assert "slow_measure" not in measures_ and CALLS == ["weight_count"]  # expensive: opt-in
    assert set(measure_names("default")) <= set(measures_)

    table = load_runs(tmp_path)
    assert list(table.columns) == list(columns()) and "measure_weight_count" in table.columns
    assert table.loc[0, "measure_weight_count"] == expected and table["measure_slow_measure"].isna().all()

    assert main(["measures", str(tmp_path), "--measures", "weight_count,slow_measure"]) == 0
    out = capsys.readouterr().out
    header, line = out.splitlines()[:2]
    assert "weights" in header and "slow_measure" in header and "l2" in header
    assert f"{expected:.4g}" in line
    stored = json.loads((result.run_dir / "summary.json").read_text())["measures"]
    assert stored["slow_measure"] == pytest.approx(2 * measures_["l2_norm"])
    assert stored["pac_bayes_sigma"] == measures_["pac_bayes_sigma"]  # the others stay as they were
    assert stored["measures_on"] == measures_["measures_on"]  # no example used now: what the others used
    assert "weight_count" in main_help(capsys) and "slow_measure" in main_help(capsys)

    cfg = RunConfig(**FAST, out=str(tmp_path))
    outcome = Outcome(cfg, result.run_dir, summary=json.loads((result.run_dir / "summary.json").read_text()))
    render_measures(PRESETS["measures"], [outcome], tmp_path / "art", [], scale="smoke")
    assert "number of weights" in (tmp_path / "art" / "measures.md").read_text()
    side = json.loads((tmp_path / "art" / "measures.json").read_text())
    assert {"weight_count", "slow_measure"} <= {r["measure"] for r in side["rank_correlations"]}
    csv_text = (tmp_path / "art" / "measures.csv").read_text()
    assert f"weight_count,{expected:g}" in csv_text


def main_help(capsys) -> str:
    with pytest.raises(SystemExit):
        main(["measures", "--help"])
    return capsys.readouterr().out


def test_measures_none_computes_nothing_and_is_not_in_the_run_id(tmp_path, user_measures):
    assert RunConfig(**FAST, measures="none").run_id() == RunConfig(**FAST).run_id()
    result = run(**FAST, out=str(tmp_path), measures="none")
    assert result.summary["measures"] == {} and result.summary["measures_seconds"] == 0.0
    assert "measures_error" not in result.summary and CALLS == []
    assert json.loads((result.run_dir / "config.json").read_text())["config"]["measures"] == "none"
    assert load_runs(tmp_path)["measure_l2_norm"].isna().all()
    again = run(**FAST, out=str(tmp_path))  # the same run: reused, whatever it measured
    assert again.reused and again.summary["measures"] == {}
    cheap = measure_run(result.run_dir, measures="cheap")["measures"]  # added afterwards
    assert set(cheap) >= {"l2_norm", "margin_p10", "weight_count"} and "pac_bayes_sigma" not in cheap
    assert CALLS == ["weight_count"]


def test_the_selection_words_and_names():
    tiers = {m.name: m.cost for m in measures()}
    assert measure_names("none") == () and measure_names("all") == tuple(tiers)
    assert set(measure_names("cheap")) == {n for n, c in tiers.items() if c == "cheap"}
    assert "pac_bayes_sigma" in measure_names("default") and "pac_bayes_sigma" not in measure_names("cheap")
    assert measure_names(" margin_p10 , l2_norm") == ("l2_norm", "margin_p10")  # the registry's order
    assert measure_names("cheap,pac_bayes_sigma") == (*measure_names("cheap"), "pac_bayes_sigma")
    assert measure_names(None) == measure_names("default") == measure_names(RunConfig().measures)
    with pytest.raises(ConfigError) as err:
        selected("l2_norm,margin_p1")
    text = str(err.value)
    assert "Unknown measure 'margin_p1'" in text and "did you mean 'margin_p10'?" in text and "\n" not in text
    assert text.count(". ") == 0 and "path_l2" in text  # one sentence, listing the known names


def test_a_bad_selection_is_refused_before_anything_is_trained(tmp_path):
    with pytest.raises(ConfigError, match=r"^The run setting 'measures' \(--measures\) must be default, cheap, all, "
                                          r"none or measure names separated by commas; got 'l2 norm!' instead\.$"):
        RunConfig(measures="l2 norm!")
    with pytest.raises(ConfigError, match=r"Unknown measure 'l2_nrm' .*did you mean 'l2_norm'"):
        run(**FAST, out=str(tmp_path), measures="l2_nrm")
    assert not any(tmp_path.iterdir())
    assert main(["run", "--dataset", "digits", "--measures", "nothing_like_it", "--out", str(tmp_path)]) == 2


def test_register_measure_refuses_bad_records_in_one_sentence(user_measures):
    good = {"title": "t", "formula": "f", "paper": "p"}
    cases = [
        (("weight_count", weight_count), good, "A measure named 'weight_count' is registered already; choose another"),
        (("l2_norm", weight_count), good, "A measure named 'l2_norm' is registered already"),
        (("all", weight_count), good, "The 'name' parameter of register_measure must be lower-case letters"),
        (("Bad-Name", weight_count), good, "The 'name' parameter of register_measure must be"),
        (("fine", 3.0), good, "The 'compute' parameter of register_measure must be callable"),
        (("fine", weight_count), {**good, "cost": "pricey"},
         "The 'cost' parameter of register_measure must be one of cheap, moderate, expensive; got 'pricey'"),
        (("fine", weight_count), {**good, "more_complex": "up"},
         "The 'more_complex' parameter of register_measure must be one of higher, lower; got 'up'"),
        (("fine", weight_count), {**good, "title": ""}, "The 'title' parameter of register_measure must be a non-emp"),
        (("fine", weight_count), {**good, "needs_data": "yes"}, "The 'needs_data' parameter of register_measure"),
    ]
    for args, kwargs, start in cases:
        with pytest.raises(ConfigError) as err:
            register_measure(*args, **kwargs)
        assert str(err.value).startswith(start) and "\n" not in str(err.value), str(err.value)
    assert "fine" not in measure_names("all")
    with pytest.raises(ConfigError, match="must be a measure registered outside shattering"):
        unregister_measure("l2_norm")


def test_a_measure_that_does_not_apply_is_none_with_its_reason_and_expensive_ones_are_opt_in(user_measures):
    def refuses(m):
        raise Unmeasurable("this network has no such thing")

    register_measure("refuser", refuses, title="refuser", formula="none", paper="a test", more_complex="lower",
                     needs_data=True)
    try:
        net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        x, y = torch.randn(10, 1, 2, 2), torch.randint(0, 3, (10,))
        got = compute_measures(net, net, (1, 2, 2), x, y, measures="refuser,weight_count")
        assert set(got) == {"refuser", "weight_count", "measures_on", "unavailable"}
        assert got["refuser"] is None and got["unavailable"] == {"refuser": "this network has no such thing"}
        streamed = compute_measures(net, net, (1, 2, 2), None, None, measures="refuser")
        assert streamed["unavailable"]["refuser"] == "the training set is streamed from disk, not held"
        assert compute_measures(net, net, (1, 2, 2), x, y, measures="none") == {}
        everything = compute_measures(net, net, (1, 2, 2), x, y, measures="all")
        assert everything["slow_measure"] == pytest.approx(2 * everything["l2_norm"])
        assert "slow_measure" not in compute_measures(net, net, (1, 2, 2), x, y)
        assert compared()["refuser"] == ("refuser", -1) and ("weights", "weight_count") in shown()
        assert from_elsewhere("all") == ("weight_count", "slow_measure", "refuser") and from_elsewhere("cheap") == (
            "weight_count", "refuser")
        assert "| `refuser` | refuser |" in markdown_table()
    finally:
        unregister_measure("refuser")


def test_one_registry_no_list_of_measure_names_elsewhere_in_the_source():
    """Outside the measures' own maths (norms, margins and flatness return their values by name) and their records
    (builtin.py), no source file of shattering names a measure: every list of them is generated."""
    names = set(measure_names("all"))
    names |= {f"measure_{n}" for n in names}
    allowed = {SRC / "measures" / f for f in ("builtin.py", "norms.py", "margins.py", "flatness.py")}
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        if path in allowed:
            continue
        literals = {node.value for node in ast.walk(ast.parse(path.read_text()))
                    if isinstance(node, ast.Constant) and isinstance(node.value, str)}
        if literals & names:
            found[str(path.relative_to(ROOT))] = sorted(literals & names)
    assert found == {}
    assert all(isinstance(m, Measure) for m in measures())
    assert tuple(compared()) == tuple(m.name for m in measures() if m.kind == "number")
    assert columns()[-len(measures()) - 1:] == (*(f"measure_{m.name}" for m in measures()), "measures_seconds")


def test_the_docs_table_is_the_registrys():
    text = (ROOT / "docs" / "measures.md").read_text()
    start, end = text.index(DOCS_BEGIN) + len(DOCS_BEGIN), text.index(DOCS_END)
    builtin = [m for m in measures() if m.builtin]
    assert text[start:end].strip() == markdown_table(builtin).strip(), (
        "docs/measures.md's table differs from the registry: run .venv/bin/python -c \"from "
        "shattering.measures.registry import update_docs_table; update_docs_table('docs/measures.md')\"")
