"""`shatter reproduce table3`: Table 3 computed from kernels, drawn beside the paper's numbers, and reused."""

from __future__ import annotations

import pytest

from shattering.cli import main
from shattering.errors import ConfigError
from shattering.experiments import table3
from shattering.experiments.presets import PRESETS, get_preset


def test_reproduce_table3_smoke_then_reuse(tmp_path, capsys, monkeypatch):
    out = tmp_path / "runs"
    assert main(["reproduce", "table3", "--scale", "smoke", "--out", str(out), "--quiet"]) == 0
    folder = out / "artefacts" / "table3"
    md = (folder / "table3.md").read_text()
    assert "1.2%" in md and "46" in md  # the paper's numbers beside ours
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def boom(*args, **kwargs):
        raise AssertionError("recomputed a finished table")

    monkeypatch.setattr(table3, "compute_table3", boom)
    assert main(["reproduce", "table3", "--scale", "smoke", "--out", str(out), "--quiet"]) == 0
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    capsys.readouterr()


def test_table3_is_a_computed_preset_of_the_registry(capsys):
    preset = get_preset("table3")
    assert preset is PRESETS["table3"] and preset.computed and preset.kind == "table" and not preset.rows
    assert preset.paper_ref == "Section 5, Appendix D, Table 3" and preset.notes("smoke") == []
    with pytest.raises(ConfigError, match="computed, not trained"):
        preset.configs("smoke")
    assert main(["sweep", "table3", "--scale", "smoke", "--quiet"]) == 2  # nothing to sweep: one sentence
    assert "reproduce table3" in capsys.readouterr().err
    assert not any(p.computed for name, p in PRESETS.items() if name != "table3")


def test_unknown_preset_lists_table3(capsys):
    assert main(["reproduce", "table9", "--scale", "smoke"]) == 2
    assert "table3" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["presets"])
def test_presets_lists_every_artefact(capsys, name):
    assert main([name]) == 0
    out = capsys.readouterr().out
    for artefact in ("fig1a", "fig1bc", "fig2b", "table1", "table3", "table4"):
        assert artefact in out
