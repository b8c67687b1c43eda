"""Property-based fuzzing of every `shatter` command's options: malformed values (text where a number belongs,
numbers out of range, NaN and infinities, unknown names, unknown options, bad files) always end in one sentence
on stderr and exit status 2, never a traceback.

Only values that must be refused are drawn, and nothing trains or downloads: `shatter run`, `sweep`,
`reproduce` and `data fetch` run with the functions that would train or download replaced by a tripwire (a
value that slipped through fails the test instead of starting work), and the theory commands start from tiny
problems (20 digits).
"""

from __future__ import annotations

import contextlib
import io
import math
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shattering.models
from shattering.cli import main
from shattering.config import RunConfig
from shattering.corruptions import CORRUPTIONS, PIXEL_UNITS
from shattering.data.catalogue import DATASETS
from shattering.data.preprocess import WHITENINGS
from shattering.experiments.presets import PRESETS, SCALES
from shattering.report.reproduce import GROUPS

from .test_faults import tally

# every name `--model` takes (models built only for some data sets included)
MODELS = shattering.models.model_names()

# 200 in the suite (each example builds the whole parser, about 5 ms); bench/reliability.py sets its own count
EXAMPLES = int(os.environ.get("SHATTERING_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------------------------------
# Values that must be refused
# --------------------------------------------------------------------------------------------------

# Text a shell can pass (no NUL, no lone surrogates: argv comes from the OS as valid strings).
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=16)
F32_MAX = 3.4028234663852886e38  # the largest float32
RESET = ("none", "default", "")  # what an optional number option reads as "back to the default"


def _parses(kind, text: str) -> bool:
    if text.strip().lower() in RESET:
        return True
    try:
        kind(text)
    except (ValueError, OverflowError):
        return False
    return True


NOT_INT = TEXT.filter(lambda t: not _parses(int, t))
NOT_FLOAT = TEXT.filter(lambda t: not _parses(float, t))


def ints(*, below: int | None = None, above: int | None = None):
    """Integers < ``below`` or > ``above`` (as text), or text that is no integer."""
    parts = [NOT_INT]
    if below is not None:
        parts.append(st.integers(max_value=below - 1).map(str))
    if above is not None:
        parts.append(st.integers(min_value=above + 1, max_value=above + 2**80).map(str))
    return st.one_of(*parts)


def floats_outside(ok):
    """Floats (NaN and infinities included) for which ``ok`` is false, as text; or text that is no number."""
    return st.one_of(NOT_FLOAT, st.floats().filter(lambda x: math.isnan(x) or not ok(x)).map(repr))


def not_one_of(names) -> st.SearchStrategy:
    names = set(names)
    return TEXT.filter(lambda t: t not in names)


def bad_list(names) -> st.SearchStrategy:
    """A comma-separated list with at least one item that is not a known name."""
    names = set(names)
    bad = TEXT.filter(lambda t: "," not in t and t.strip() and t.strip() not in names)
    return st.lists(st.one_of(st.sampled_from(sorted(names)), bad), min_size=1, max_size=4).filter(
        lambda items: any(i.strip() not in names for i in items)).map(",".join)


POS_INT = ints(below=1)
NONNEG_INT = ints(below=0)
PROB = floats_outside(lambda x: 0 <= x <= 1)
POS_FLOAT = floats_outside(lambda x: 0 < x < math.inf)
NONNEG_FLOAT = floats_outside(lambda x: 0 <= x < math.inf)
UNIT_OPEN = floats_outside(lambda x: 0 <= x < 1)  # [0, 1)
DATASET = not_one_of(DATASETS)
LABELS = not_one_of(("true-labels", "partial-labels", "random-labels"))

# --------------------------------------------------------------------------------------------------
# The commands: a cheap base command line and, per option, values that must be refused
# --------------------------------------------------------------------------------------------------

RUN_OPTIONS = {
    "--dataset": DATASET, "--train-size": POS_INT, "--test-size": POS_INT, "--data-seed": NONNEG_INT,
    "--crop": NONNEG_INT, "--whitening": not_one_of(WHITENINGS), "--corruption": not_one_of(CORRUPTIONS),
    "--p": PROB, "--pixel-unit": not_one_of(PIXEL_UNITS), "--model": not_one_of(MODELS), "--dropout": UNIT_OPEN,
    "--lr": floats_outside(lambda x: 0 < x <= F32_MAX), "--lr-decay": floats_outside(lambda x: 0 < x <= 1),
    "--momentum": UNIT_OPEN, "--batch-size": POS_INT, "--epochs": POS_INT, "--until": not_one_of(("fit", "epochs")),
    "--seed": ints(below=0, above=2**64 - 1), "--weight-decay": floats_outside(lambda x: 0 <= x <= F32_MAX),
    "--crop-padding": NONNEG_INT, "--max-rotation": NONNEG_FLOAT, "--log-every": POS_INT,
    "--precision": not_one_of(("auto", "fp32", "bf16")), "--device": not_one_of(("auto", "cpu", "cuda")),
    "--eval-batch-size": POS_INT,
}
for _name in ("image_size", "workers"):  # fields being added by other work: fuzz them when they exist
    if any(f.name == _name for f in RunConfig.__dataclass_fields__.values()):
        RUN_OPTIONS["--" + _name.replace("_", "-")] = POS_INT if _name == "image_size" else NONNEG_INT

SWEEP_OPTIONS = {"--scale": not_one_of(SCALES), "--dataset": DATASET, "--seeds": POS_INT, "--pack": POS_INT,
                 "--device": not_one_of(("auto", "cpu", "cuda")), "--precision": not_one_of(("auto", "fp32", "bf16")),
                 "--train-size": POS_INT, "--test-size": POS_INT, "--seed": ints(below=0, above=2**64 - 1),
                 "--data-seed": NONNEG_INT}

COMMANDS = {
    # name: (base command line, {option: values to refuse}, {positional index: values to refuse})
    "run": (["run", "--dataset", "digits", "--train-size", "50", "--epochs", "1", "--quiet"], RUN_OPTIONS, {}),
    "data show": (["data", "show", "--dataset", "digits", "--train-size", "100"], {
        "--dataset": DATASET, "--corruption": not_one_of(CORRUPTIONS), "--p": PROB, "--seed": NONNEG_INT,
        "--data-seed": NONNEG_INT,
        "--train-size": ints(below=1, above=DATASETS["digits"].n_train),
        "--test-size": ints(below=1, above=DATASETS["digits"].n_test), "--crop": ints(below=0, above=8),
        "--whitening": not_one_of(WHITENINGS), "--pixel-unit": not_one_of(PIXEL_UNITS)}, {}),
    "data fetch": (["data", "fetch", "--dataset", "digits"],
                   {"--dataset": st.one_of(DATASET, st.sampled_from(["digits", "mnist1d"]))}, {}),
    "sweep": (["sweep", "fig1a", "--scale", "smoke", "--quiet"], SWEEP_OPTIONS, {1: not_one_of(PRESETS)}),
    "reproduce": (["reproduce", "fig1a", "--scale", "smoke", "--quiet"], SWEEP_OPTIONS,
                  {1: not_one_of((*PRESETS, *GROUPS))}),
    "expressivity": (["expressivity", "--dataset", "digits", "--train-size", "20", "--test-size", "10", "--candidates",
                      "2"], {
        "--dataset": DATASET, "--train-size": POS_INT, "--corruption": LABELS, "--p": PROB, "--depth": ints(below=2),
        "--test-size": POS_INT, "--candidates": POS_INT, "--offset": floats_outside(lambda x: 0 < x <= 0.5),
        "--method": not_one_of(("auto", "triangular", "recurrence")), "--seed": NONNEG_INT,
        "--data-seed": NONNEG_INT}, {}),
    "minnorm": (["minnorm", "--dataset", "digits", "--train-size", "10", "--epochs", "1"], {
        "--dataset": not_one_of((*DATASETS, "synthetic")), "--train-size": POS_INT,
        "--test-size": POS_INT, "--features": not_one_of(("raw", "random")),
        "--width": POS_INT, "--corruption": LABELS, "--p": PROB, "--epochs": NONNEG_INT, "--lr": POS_FLOAT,
        "--batch-size": POS_INT, "--seed": NONNEG_INT, "--data-seed": NONNEG_INT}, {}),
    "kernel": (["kernel", "--dataset", "digits", "--train-size", "20", "--test-size", "10"], {
        "--dataset": DATASET, "--kernel": not_one_of(("gaussian", "laplacian")),
        "--features": not_one_of(("raw", "gabor", "scattering", "random-conv")),
        "--corruption": bad_list(("true-labels", "partial-labels", "random-labels")), "--p": PROB,
        "--train-size": POS_INT, "--test-size": POS_INT,
        "--ridge": NONNEG_FLOAT, "--bandwidth": POS_FLOAT, "--dtype": not_one_of(("float64", "float32")),
        "--block-size": POS_INT, "--whitening": not_one_of((*WHITENINGS, "default")),
        "--filters": (POS_INT, ["--features", "random-conv"]),  # used by random-conv features only
        "--seed": NONNEG_INT, "--data-seed": NONNEG_INT}, {}),
    "rademacher": (["rademacher", "--dataset", "digits", "--train-size", "20", "--draws", "1", "--epochs", "1",
                    "--probes", "network"], {
        "--dataset": DATASET, "--train-size": ints(below=2), "--test-size": POS_INT, "--model": not_one_of(MODELS),
        "--draws": POS_INT, "--probes": bad_list(("network", "kernel", "linear")), "--epochs": POS_INT,
        "--lr": POS_FLOAT, "--seed": NONNEG_INT, "--data-seed": NONNEG_INT}, {}),
    "report": (["report", "does-not-exist"], {}, {}),
    "presets": (["presets"], {}, {}),
    "data list": (["data", "list"], {}, {}),
}


def call(argv: list[str]) -> tuple[object, str, str]:
    """``shatter ARGV`` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def assert_refused(argv: list[str]) -> str:
    code, _, err = call(argv)
    assert code == 2, (argv, code, err)
    assert err.startswith("shatter") and ": error: " in err, (argv, err)
    assert err.count("\n") == 1 and err.endswith("\n") and "Traceback" not in err, (argv, err)
    return err


class WouldStartWork(AssertionError):
    pass


@pytest.fixture
def tripwires(monkeypatch, tmp_path):
    """Replace every function that would train, sweep, compute or download; run in an empty folder."""

    def trip(*args, **kwargs):
        raise WouldStartWork("a malformed value was accepted and work would start")

    monkeypatch.setattr("shattering.executors.outcome.run", trip)
    monkeypatch.setattr("shattering.executors.sweep.run_sweep", trip)
    monkeypatch.setattr("shattering.experiments.table3.compute_table3", trip)
    monkeypatch.setattr("shattering.data.download.download", trip)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("command", [c for c, (_, options, positional) in COMMANDS.items() if options or positional])
def test_malformed_option_values_are_refused_in_one_sentence(tripwires, command):
    base, options, positional = COMMANDS[command]
    choices = [("opt", name) for name in options] + [("pos", index) for index in positional]
    seen = {"examples": 0}

    @FUZZ
    @given(st.data())
    def one(data):
        kind, key = data.draw(st.sampled_from(choices), label="what")
        argv = list(base)
        if kind == "opt":
            values, extra = options[key] if isinstance(options[key], tuple) else (options[key], [])
            argv += [*extra, f"{key}={data.draw(values, label=key)}"]
        else:
            argv[key] = data.draw(positional[key], label="positional")
            if argv[key].startswith("-"):  # a positional that looks like an option: pass it after "--"
                argv = [*argv[:key], *argv[key + 1:], "--", argv[key]]
        assert_refused(argv)
        seen["examples"] += 1

    one()
    tally("fuzz-cli", examples=seen["examples"], command=command)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_unknown_options_and_stray_arguments_are_refused(tripwires, command):
    base = COMMANDS[command][0]
    seen = {"examples": 0}

    @FUZZ
    @given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_0123456789", max_size=10), TEXT, st.booleans())
    def one(name, value, with_value):
        assert_refused([*base, f"--x-{name}" + (f"={value}" if with_value else "")])
        seen["examples"] += 1

    one()
    tally("fuzz-cli", examples=seen["examples"], command=f"{command} (unknown options)")


def test_flags_given_a_value_and_missing_values_are_refused(tripwires):
    cases = [["run", "--random-crop=yes"], ["run", "--json=1"], ["run", "--lr"], ["data", "show"], ["sweep"],
             ["reproduce"], ["report"], ["data", "fetch"], ["data"], [], ["kernel", "--n-train"], ["nonsense"],
             ["run", "--config"], ["data", "show", "--dataset", "digits", "--exclude-true-class=no"],
             ["data", "show", "--dataset"], ["data", "show", "digits"], ["data", "fetch", "--dataset"],
             ["data", "fetch", "cifar10"], ["report", "runs", "--out"], ["report", "runs", "--output", "x.html"],
             ["sweep", "fig1a", "--json=1"], ["reproduce", "fig1a", "--config"], ["sweep", "fig1a", "--seed"]]
    for argv in cases:
        assert_refused(argv)
    tally("fuzz-cli", examples=len(cases), command="flags with values, missing values")


@pytest.mark.parametrize("base", [["run"], ["sweep", "fig1a", "--scale", "smoke"],
                                  ["reproduce", "fig1a", "--scale", "smoke"]], ids=lambda argv: argv[0])
def test_bad_config_files_through_the_command_line(tripwires, tmp_path, base):
    cases = {"missing.toml": None, "folder": "dir", "binary.toml": b"\xff\xfe\x00\x01", "bad.toml": b'model = "mlp\n',
             "unknown.toml": b"learning_rate = 0.1\n", "type.toml": b'epochs = "ten"\n', "run-int.toml": b"run = 3\n"}
    for name, content in cases.items():
        path = tmp_path / name
        if content == "dir":
            path.mkdir()
        elif content is not None:
            path.write_bytes(content)
        err = assert_refused([*base, "--config", str(path), "--quiet"])
        assert name in err
    tally("fuzz-cli", examples=len(cases), command=f"{base[0]} --config (bad files)")


def test_report_on_a_folder_with_nothing_or_a_file(tripwires, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    for target in ("missing", "empty", "file"):
        assert_refused(["report", str(tmp_path / target)])
    tally("fuzz-cli", examples=3, command="report (no records)")


OUT_COMMANDS = {
    "run": ["run", "--dataset", "digits", "--epochs", "1"],
    "sweep": ["sweep", "fig1bc", "--scale", "smoke"],
    "reproduce": ["reproduce", "fig1bc", "--scale", "smoke"],
    "minnorm": ["minnorm", "--dataset", "digits", "--train-size", "20", "--test-size", "10", "--epochs", "1"],
    "kernel": ["kernel", "--dataset", "digits", "--train-size", "20", "--test-size", "10"],
}


@pytest.mark.parametrize("command", list(OUT_COMMANDS))
@pytest.mark.parametrize("where", ["file", "under a file"])
def test_an_out_folder_that_is_a_file_is_refused_before_any_work(tripwires, tmp_path, command, where):
    (tmp_path / "taken").write_text("x")
    out = tmp_path / "taken" if where == "file" else tmp_path / "taken" / "runs"
    err = assert_refused([*OUT_COMMANDS[command], "--out", str(out)])
    expected = "is a file, not a folder" if where == "file" else f"lies under {tmp_path / 'taken'}, which is a file"
    assert f"--out {out} {expected}" in err and "permissions" not in err, err


def test_a_report_out_that_is_a_folder_or_under_a_file_is_refused(tripwires, tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "taken").write_text("x")
    err = assert_refused(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "runs")])
    assert "is a folder; give the name of a file to write" in err
    err = assert_refused(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "taken" / "page.html")])
    assert "lies under a file" in err


def test_a_typo_in_a_config_file_is_answered_with_the_key_it_means(tripwires, tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("learning_rate = 0.1\nepoch = 3\n")
    err = assert_refused(["run", "--config", str(path)])
    assert "(did you mean 'lr' for 'learning_rate', 'epochs' for 'epoch'?)." in err and "known keys" not in err
    path.write_text("zzz_qqq = 1\n")
    assert "known keys: alpha, aux_logits," in assert_refused(["run", "--config", str(path)])


def test_help_texts_show_no_doubled_percent_signs():
    for argv in (["run", "--help"], ["sweep", "--help"], ["reproduce", "--help"]):
        code, out, _ = call(argv)
        assert code == 0 and "%%" not in out
        assert "100% training accuracy" in out or argv[0] != "run"
