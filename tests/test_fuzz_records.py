"""Property-based fuzzing of the run records as they are read back: checkpoints damaged anywhere (cut, bytes
overwritten, bytes appended) are always detected by their SHA-256 and never loaded as something else; torn or
garbled log tails are never read as rows; and `shatter report` over folders of damaged or foreign record files
never crashes and never shows a damaged record as a result.
"""

from __future__ import annotations

import json
import os

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shattering.report.html import find_runs
from shattering.runs import CHECKPOINT_MAGIC, RunRecord

from .test_faults import tally
from .test_fuzz_cli import call
from .test_fuzz_data import Folder

EXAMPLES = int(os.environ.get("SHATTERING_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STATE = {"epoch": 3, "steps": 39, "model": {"w": torch.arange(64, dtype=torch.float32).reshape(8, 8)},
         "generator": torch.Generator().manual_seed(0).get_state(), "last": {"train_acc": 0.5}}


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    return a == b


@st.composite
def damage(draw, data: bytes) -> bytes:
    kind = draw(st.sampled_from(["cut", "overwrite", "append", "header"]))
    if kind == "cut":
        return data[: draw(st.integers(0, len(data) - 1))]
    if kind == "append":
        return data + draw(st.binary(min_size=1, max_size=32))
    if kind == "header":  # inside the magic line or the hex digest
        where = draw(st.integers(0, len(CHECKPOINT_MAGIC) + 64))
    else:
        where = draw(st.integers(0, len(data) - 1))
    junk = draw(st.binary(min_size=1, max_size=16).filter(lambda j: j != data[where:where + len(j)]))
    return (data[:where] + junk + data[where + len(junk):])[: max(len(data), where + len(junk))]


def test_damaged_checkpoints_are_always_detected():
    """Damage to the newest checkpoint: the previous one is loaded and the damage named; damage to both: no
    state, two notes. Never an exception, never a state other than the one saved."""
    with Folder() as folder:
        record = RunRecord(folder)
        record.save_checkpoint({**STATE, "epoch": 2})
        record.save_checkpoint(STATE)
        good, prev = record.checkpoint_path.read_bytes(), record.prev_checkpoint_path.read_bytes()
    seen = {"examples": 0, "detected": 0}

    @FUZZ
    @given(st.data(), st.booleans())
    def one(data, both):
        bad = data.draw(damage(good), label="checkpoint.pt")
        with Folder() as folder:
            record = RunRecord(folder)
            record.checkpoint_path.write_bytes(bad)
            record.prev_checkpoint_path.write_bytes(data.draw(damage(prev), label="prev") if both else prev)
            state, notes = record.load_checkpoint()
        assert notes and notes[0].startswith("checkpoint.pt is damaged"), notes
        if both:
            assert state is None and notes[1].startswith("checkpoint.prev.pt is damaged"), notes
        else:
            assert state is not None and state["epoch"] == 2 and len(notes) == 1
        seen["examples"] += 1
        seen["detected"] += 1 + both

    one()
    tally("fuzz-damaged-checkpoint", examples=seen["examples"], injected=seen["detected"],
          survived=seen["detected"])


def test_the_byte_after_the_digest_is_part_of_the_header():
    """Found by the fuzzer above: a checkpoint whose newline after the digest was overwritten still loaded."""
    with Folder() as folder:
        record = RunRecord(folder)
        record.save_checkpoint(STATE)
        data = bytearray(record.checkpoint_path.read_bytes())
        data[len(CHECKPOINT_MAGIC) + 64] = 0
        record.checkpoint_path.write_bytes(bytes(data))
        state, notes = record.load_checkpoint()
    assert state is None and notes == ["checkpoint.pt is damaged (no valid header)"]


def test_a_crash_between_the_two_renames_leaves_no_temporary_behind():
    """Found by the SIGKILL sweep test: killed after checkpoint.prev.pt became a link to checkpoint.pt and before
    the new checkpoint replaced it, the next save's rename() was a no-op and left .checkpoint.prev.tmp."""
    with Folder() as folder:
        record = RunRecord(folder)
        record.save_checkpoint({**STATE, "epoch": 2})
        record.prev_checkpoint_path.unlink(missing_ok=True)
        os.link(record.checkpoint_path, record.prev_checkpoint_path)  # the state that crash leaves
        record.save_checkpoint(STATE)
        assert sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp")) == []
        state, notes = record.load_checkpoint()
        assert notes == [] and _same(state, STATE)
        record.checkpoint_path.unlink()
        state, _ = record.load_checkpoint()
        assert state["epoch"] == 2


def test_torn_and_garbled_log_tails_are_never_read_as_rows():
    rows = [{"epoch": e, "step": 13 * e, "train_acc": e / 10, "train_loss": 2.0 / e} for e in range(1, 5)]
    steps = [(3 * i, 1 + i // 5, 1.0 / (i + 1), 0.01) for i in range(1, 12)]
    with Folder() as folder:
        record = RunRecord(folder)
        for row in rows:
            record.append_metrics(row)
        record.append_steps(steps)
        metrics_text, steps_text = record.metrics_path.read_bytes(), record.steps_path.read_bytes()
        good_steps = record.read_steps()
    seen = {"examples": 0}

    @FUZZ
    @given(st.integers(0, len(metrics_text)), st.binary(max_size=40), st.integers(0, len(steps_text)))
    def one(cut, tail, cut_steps):
        complete = metrics_text[:cut].count(b"\n")
        whole = max(steps_text[:cut_steps].count(b"\n") - 1, 0)
        with Folder() as folder:
            record = RunRecord(folder)
            # a crash: a torn last line, never read
            record.metrics_path.write_bytes(metrics_text[:cut])
            record.steps_path.write_bytes(steps_text[:cut_steps])
            assert record.read_metrics() == rows[:complete]
            assert record.read_steps() == good_steps[:whole]
            # damage after it (not what a crash writes): never an exception; the whole rows first, and nothing
            # read past them that is not shaped like a row
            record.metrics_path.write_bytes(metrics_text[:cut] + tail)
            record.steps_path.write_bytes(steps_text[:cut_steps] + tail)
            read, read_steps = record.read_metrics(), record.read_steps()
        assert read[:complete] == rows[:complete] and len(read) <= complete + 1
        assert all(type(r["epoch"]) is int for r in read)
        assert read_steps[:whole] == good_steps[:whole]
        seen["examples"] += 1

    one()
    tally("fuzz-torn-logs", examples=seen["examples"])


# --------------------------------------------------------------------------------------------------
# shatter report over damaged and foreign records
# --------------------------------------------------------------------------------------------------

json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                                     st.text(max_size=8)),
                           lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                           max_leaves=6)
SUMMARY_KEYS = ["status", "run_id", "config", "final", "versions", "data_fingerprint", "epochs", "fit_epoch",
                "message", "run_name"]
summaries = st.one_of(
    st.dictionaries(st.sampled_from(SUMMARY_KEYS), json_values, max_size=8),
    st.fixed_dictionaries({"status": st.sampled_from(["fit", "not-fit", "diverged", "unfinished", "FIT"])},
                          optional={k: json_values for k in SUMMARY_KEYS[1:]}),
)
files = {
    "summary.json": st.one_of(summaries.map(lambda d: json.dumps(d).encode()), st.binary(max_size=40)),
    "config.json": st.one_of(st.fixed_dictionaries({"run_id": json_values}, optional={
        "config": json_values, "versions": json_values, "data_fingerprint": json_values}).map(
        lambda d: json.dumps(d).encode()), st.binary(max_size=40)),
    "metrics.jsonl": st.lists(json_values.map(json.dumps), max_size=3).map(lambda rows: "\n".join(rows).encode()),
    "checkpoint.pt": st.binary(max_size=40),
}


SIDECAR_KEYS = ["preset", "artefact", "title", "paper_ref", "notes", "files", "table", "runs", "code_versions",
                "status_counts"]
sidecars = st.fixed_dictionaries({"shattering_artefact": st.just(1)}, optional={
    **{k: json_values for k in SIDECAR_KEYS},
    "table": st.fixed_dictionaries({"columns": json_values, "rows": json_values}),
    "runs": st.lists(st.dictionaries(st.sampled_from(["run_name", "run_id", "status", "seed", "data_fingerprint",
                                                      "version", "error", "status_text"]), json_values), max_size=2),
})


def test_report_over_damaged_and_foreign_records():
    seen = {"examples": 0, "pages": 0, "refused": 0}

    @FUZZ
    @given(st.lists(st.fixed_dictionaries({}, optional=files), min_size=1, max_size=3), st.lists(sidecars, max_size=2))
    def one(folders, artefacts):
        with Folder() as root:
            for i, sidecar in enumerate(artefacts):
                (root / "artefacts" / f"a{i}").mkdir(parents=True)
                (root / "artefacts" / f"a{i}" / f"a{i}.json").write_text(json.dumps(sidecar))
            for i, content in enumerate(folders):
                run = root / f"digits_mlp-1x512_true-labels_{i:012x}"
                run.mkdir()
                for name, data in content.items():
                    (run / name).write_bytes(data)
            code, _, err = call(["report", str(root)])
            assert code in (0, 2), (code, err)
            if code == 2:
                assert err.startswith("shatter: error: ") and err.count("\n") == 1, err
            else:
                for row in find_runs(root):  # a record that is not a whole summary is never a result
                    if RunRecord(root / row["folder"]).read_summary() is None:
                        assert row["status"] in ("unfinished", "damaged"), row
            seen["pages" if code == 0 else "refused"] += 1
        seen["examples"] += 1

    one()
    tally("fuzz-report-records", **seen)


def test_log_tails_that_were_misread_before(tmp_path):
    """Found by the fuzzing above: a steps.csv line torn inside its last number ("0.01" cut to "0.0") was read as
    a row with another learning rate; a byte that is not UTF-8 raised UnicodeDecodeError; a line "{}" or "[1]"
    was read as a metrics row (and kept by the resume's truncation)."""
    record = RunRecord(tmp_path)
    record.steps_path.write_text("step,epoch,loss,lr\n3,1,0.5,0.01\n6,1,0.4,0.0")
    assert record.read_steps() == [{"step": 3, "epoch": 1, "loss": 0.5, "lr": 0.01}]
    for tail in (b"\x80\n", b"{}\n", b"[1]\n", b'{"epoch": 2}'):
        record.metrics_path.write_bytes(b'{"epoch": 1}\n' + tail)
        assert record.read_metrics() == [{"epoch": 1}]
