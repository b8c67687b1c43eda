"""One vocabulary of flags (issue 12): every subcommand's parser, walked from `build_parser()`, spells a shared
concept one way, and the options that are settings of a run are generated from RunConfig's declarations; then
what `sweep` / `reproduce` do with `--config` and the run options (nothing is trained here)."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from shattering.cli import build_parser
from shattering.cli.presets import preset_request
from shattering.config import RunConfig, field_choices
from shattering.data import DATASETS
from shattering.errors import ConfigError
from shattering.experiments.presets import PRESETS

# Every command there is, by what it does; a new command must be placed here.
DATA_READERS = ("run", "data show", "sweep", "reproduce")
THEORY = ("expressivity", "minnorm", "kernel", "rademacher")
OTHERS = ("data list", "data fetch", "presets", "report", "runs", "measures", "landscape", "tune")
BUILT_IN_DATASETS = ("digits", "mnist1d", "mnist", "fashion-mnist", "cifar10", "cifar100", "imagenet")
SHARED_DATA = {"--dataset", "--data-dir", "--train-size", "--test-size", "--seed", "--data-seed"}
OUT = {"run", "sweep", "reproduce", "report", "landscape", *THEORY}
JSON = {"run", "sweep", "reproduce", "data list", "data show", "presets", "runs", "measures", "landscape", "tune",
        *THEORY}
CONFIG = {"run", "sweep", "reproduce"}
# Other spellings of shared concepts: sizes, label sets, where output goes.
FORBIDDEN = {"--n", "--n-train", "--n-test", "--output", "--labels", "-o", "--name", "--size"}
FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}


def commands(parser: argparse.ArgumentParser | None = None, prefix: tuple[str, ...] = ()) -> dict:
    """Every leaf command ("data show", "run", ...) and its parser, recursively through sub-commands."""
    parser = parser or build_parser()
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                path = (*prefix, name)
                found.update(commands(sub, path) or {" ".join(path): sub})
    return found


def flags(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {option: action for action in parser._actions for option in action.option_strings}


COMMANDS = commands()


def expectation_problems(name: str) -> list[str]:
    """What command ``name`` lacks of the shared vocabulary, or spells another way."""
    have = flags(COMMANDS[name])
    problems = []
    wanted = {*(SHARED_DATA if name in (*DATA_READERS, *THEORY) else ()), *(("--out",) if name in OUT else ()),
              *(("--json",) if name in JSON else ()), *(("--config",) if name in CONFIG else ())}
    problems += [f"{name}: no {flag}" for flag in sorted(wanted - have)]
    problems += [f"{name}: spells a shared concept {flag}" for flag in sorted(have & FORBIDDEN)]
    for flag, action in options(COMMANDS[name]).items():  # a shared flag means the shared setting
        if flag in SHARED_DATA and action.dest != flag[2:].replace("-", "_"):
            problems.append(f"{name}: {flag} sets {action.dest}")
    return problems


def test_every_command_is_placed():
    assert set(COMMANDS) == {*DATA_READERS, *THEORY, *OTHERS}


@pytest.mark.parametrize("name", [*DATA_READERS, *OTHERS])
def test_commands_speak_one_vocabulary(name):
    assert expectation_problems(name) == []


def test_theory_commands_speak_one_vocabulary():
    assert [p for name in THEORY for p in expectation_problems(name)] == []


def test_data_fetch_names_the_data_set_and_folder_as_every_command():
    have = options(COMMANDS["data fetch"])
    assert {"--dataset", "--data-dir"} <= set(have) and have["--dataset"].required


@pytest.mark.parametrize("name", [*DATA_READERS, "data fetch"])
def test_run_settings_are_generated_from_the_config_declarations(name):
    """Where an option is a setting of a run, its help, type and choices are the field's declaration."""
    generated = 0
    for flag, action in options(COMMANDS[name]).items():
        field = FIELDS.get(action.dest)
        if field is None or flag != "--" + field.name.replace("_", "-"):
            continue
        generated += 1
        assert action.help.startswith(field.metadata["help"]), (name, flag)
        if field_choices(field) and not isinstance(action, argparse.BooleanOptionalAction):
            assert tuple(action.choices) == field_choices(field), (name, flag)
        assert action.default is argparse.SUPPRESS, (name, flag)  # the config applies the default
    assert generated >= (2 if name == "data fetch" else len(SHARED_DATA))
    dataset = options(COMMANDS[name])["--dataset"]  # a name or a path: the config checks it, the help lists names
    assert dataset.choices is None and all(n in dataset.help for n in BUILT_IN_DATASETS), (name, dataset.help)
    assert set(BUILT_IN_DATASETS) <= set(DATASETS)
    assert "path of an .npz file" in dataset.help


def test_data_show_takes_every_data_setting_run_takes():
    data_fields = {"--" + f.name.replace("_", "-") for f in FIELDS.values() if f.metadata["section"] == "data"}
    assert data_fields <= flags(COMMANDS["data show"]) and data_fields <= flags(COMMANDS["run"])
    assert "the data do not depend on it" in options(COMMANDS["data show"])["--seed"].help


# --------------------------------------------------------------------------------------------------
# sweep / reproduce: --config under the preset, run options over it, seeds numbering the repeats
# --------------------------------------------------------------------------------------------------


def preset_configs(*argv: str) -> list[RunConfig]:
    args = build_parser().parse_args(list(argv))
    return PRESETS[args.preset].configs(args.scale, **preset_request(args))


def old_configs(preset: str, scale: str, seeds: int = 1, out: str = "runs") -> list[RunConfig]:
    """The grid as it was built before --config and the run options: rows x seeds, seed = data seed = i."""
    p = PRESETS[preset]
    configs = []
    for row in p.rows:
        per_model = p.model_scales.get(scale, {}).get(row.get("model"), {})
        for i in range(seeds):
            values = {**p.scales[scale], **per_model, **row, "seed": i, "data_seed": i, "out": out}
            values.pop("note", None)
            configs.append(RunConfig.from_dict(values))
    return configs


@pytest.mark.parametrize("command", ["sweep", "reproduce"])
def test_no_options_leave_every_run_id_as_before(command):
    for preset, scale in (("table1", "smoke"), ("fig1bc", "quick"), ("table4", "paper")):
        mine = preset_configs(command, preset, "--scale", scale, "--seeds", "2")
        assert [c.run_id() for c in mine] == [c.run_id() for c in old_configs(preset, scale, 2)]
        assert mine == old_configs(preset, scale, 2)


def test_config_file_applies_under_the_preset_and_options_over_both(tmp_path):
    path = tmp_path / "base.toml"
    path.write_text('model = "mlp-3x512"\nweight_decay = 0.001\nlog_every = 7\neval_batch_size = 64\n'
                    'data_dir = "/from/file"\ntrain_size = 90\nseed = 10\nout = "from-file"\n')
    configs = preset_configs("sweep", "table1", "--scale", "smoke", "--config", str(path), "--seeds", "2")
    rows = PRESETS["table1"].rows
    assert len(configs) == 2 * len(rows)
    for row, pair in zip(rows, (configs[i:i + 2] for i in range(0, len(configs), 2)), strict=True):
        for i, cfg in enumerate(pair):
            assert cfg.model == row["model"]  # the grid wins
            assert cfg.weight_decay == row.get("weight_decay", 0.001)  # the file's where the row sets none
            assert cfg.log_every == 1 and cfg.train_size == 120  # the smoke scale wins
            assert cfg.eval_batch_size == 64 and cfg.data_dir == "/from/file"  # the preset sets none: the file's
            assert (cfg.seed, cfg.data_seed, cfg.out) == (10 + i, i, "from-file")  # the file's seed numbers repeats
    given = preset_configs("sweep", "table1", "--scale", "smoke", "--config", str(path), "--train-size", "30",
                           "--data-dir", "/given", "--seed", "3", "--data-seed", "5", "--out", "given")
    assert {(c.train_size, c.data_dir, c.seed, c.data_seed, c.out) for c in given} == {(30, "/given", 3, 5, "given")}
    assert {c.eval_batch_size for c in given} == {64}


def test_repeats_count_from_the_seeds_given():
    configs = preset_configs("reproduce", "fig1a", "--scale", "smoke", "--seeds", "3", "--seed", "5",
                             "--data-seed", "9")
    per_row = len(PRESETS["fig1a"].rows)
    assert len({c.run_id() for c in configs}) == 3 * per_row
    assert [(c.seed, c.data_seed) for c in configs[:3]] == [(5, 9), (6, 10), (7, 11)]


def test_run_options_win_over_the_preset_and_the_notes_say_so():
    configs = preset_configs("sweep", "fig1a", "--scale", "quick", "--train-size", "40", "--test-size", "30",
                             "--device", "cpu", "--precision", "fp32", "--dataset", "digits")
    assert {(c.dataset, c.train_size, c.test_size, c.device, c.precision) for c in configs} == {
        ("digits", 40, 30, "cpu", "fp32")}
    notes = PRESETS["fig1a"].notes("quick", "digits", train_size=40, test_size=30, epochs=3)
    assert "40 training images (the paper: 50,000)" in notes and "30 test images (the paper: 10,000)" in notes
    assert any("changed from the scale's: epochs 3" in n for n in notes)
    assert PRESETS["fig1a"].notes("paper", epochs=3)[-1] == "changed from the paper's setting: epochs 3"
    assert PRESETS["table1"].notes("smoke", base=RunConfig()) == PRESETS["table1"].notes("smoke")


def test_a_bad_setting_in_the_file_is_refused_naming_the_preset(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('model = "inception-v3"\naux_logits = true\n')  # fine alone; fig1a's grid sets other models
    with pytest.raises(ConfigError, match="preset fig1a: --aux-logits applies to inception-v3 only"):
        preset_configs("sweep", "fig1a", "--scale", "smoke", "--config", str(path))
