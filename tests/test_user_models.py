"""Randomization tests on the researcher's own model (`--model package.module:factory`, `shattering.run(model=
...)`, `register_model`) and on today's built-in networks (ResNet-18, Wide ResNets, a small ViT)."""

from __future__ import annotations

import json
import re
import textwrap

import pytest
import torch

import shattering
from shattering.cli import main
from shattering.config import RunConfig
from shattering.errors import ConfigError
from shattering.models import MODELS, build_model, model_info, paper_param_count

NETS = textwrap.dedent("""
    from torch import nn


    def tiny(input_shape, num_classes, dropout=0.0, width=256):
        c, h, w = input_shape
        return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, width), nn.ReLU(), nn.Linear(width, num_classes))


    def narrow(input_shape, num_classes, dropout=0.0):
        return tiny(input_shape, num_classes, dropout, width=8)


    def wrong_output(input_shape, num_classes, dropout=0.0):
        c, h, w = input_shape
        return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, num_classes + 1))


    def raises(input_shape, num_classes, dropout=0.0):
        raise RuntimeError("no such layer")


    def not_a_module(input_shape, num_classes, dropout=0.0):
        return "a string"


    def plain(input_shape, num_classes):  # the documented contract: two arguments, nothing else
        c, h, w = input_shape
        return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, 256), nn.ReLU(), nn.Linear(256, num_classes))


    def formatted(input_shape, num_classes, width: int = 8):
        name = "width %d" % width  # fails for text, as a user's code would
        return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[0] * input_shape[1] * input_shape[2], width),
                             nn.ReLU(), nn.Linear(width, num_classes))


    NOT_CALLABLE = 3
""")


@pytest.fixture()
def nets(tmp_path, monkeypatch):
    """A module of the user's own, ``usernets``, importable as the command line would find it."""
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "usernets.py").write_text(NETS)
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    import sys

    sys.modules.pop("usernets", None)


FAST = ["--dataset", "digits", "--corruption", "random-labels", "--until", "fit", "--lr", "0.1", "--quiet"]


def test_a_model_by_import_path_fits_random_labels_from_the_command_line(nets, tmp_path, capsys):
    rc = main(["run", "--model", "usernets:tiny", *FAST, "--out", str(tmp_path / "runs"), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert rc == 0 and summary["fit"] and summary["status"] == "fit"
    (record,) = (tmp_path / "runs").iterdir()
    assert record.name.startswith("digits_usernets-tiny_random-labels_")  # no ':' in a folder name
    config = json.loads((record / "config.json").read_text())["config"]
    assert config["model"] == "usernets:tiny" and config["model_args"] is None
    assert len(config["model_digest"]) == 16  # the record stores the path, the arguments and the digest


def test_the_same_model_from_python_is_the_same_run(nets, tmp_path):
    import usernets

    out = str(tmp_path / "runs")
    by_path = shattering.run(model="usernets:tiny", dataset="digits", corruption="random-labels", lr=0.1, out=out)
    by_object = shattering.run(model=usernets.tiny, dataset="digits", corruption="random-labels", lr=0.1, out=out)
    assert by_path.fit and by_object.run_dir == by_path.run_dir  # the object runs under its import path
    assert len(list((tmp_path / "runs").iterdir())) == 1


def test_a_model_defined_in_the_notebook_runs_under_a_local_name(tmp_path):
    def net(shape, k, dropout=0.0):
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(shape[0] * shape[1] * shape[2], k))

    cfg = RunConfig(model=net, dataset="digits")
    assert cfg.model == "local:test_a_model_defined_in_the_notebook_runs_under_a_local_name.<locals>.net"
    result = shattering.run(model=net, dataset="digits", epochs=2, out=str(tmp_path))
    assert result.summary["epochs"] == 2 and result.run_dir.name.startswith("digits_local-test_a_model")


def test_run_identity_covers_the_path_the_arguments_and_the_architecture(nets):
    tiny = RunConfig(model="usernets:tiny", dataset="digits")
    assert tiny.run_id() == RunConfig(model="usernets:tiny", dataset="digits").run_id()
    wider = RunConfig(model="usernets:tiny", dataset="digits", model_args={"width": 512})
    narrow = RunConfig(model="usernets:narrow", dataset="digits")
    assert len({tiny.run_id(), wider.run_id(), narrow.run_id()}) == 3
    assert tiny.resolved().model_digest != wider.resolved().model_digest != narrow.resolved().model_digest
    assert wider.model_args == '{"width":512}' and wider.model_kwargs() == {"width": 512}
    # the command line's --model-arg KEY=VALUE, a TOML table and a dict are one setting
    assert RunConfig(model="usernets:tiny", model_args=["width=512"]).model_args == wider.model_args
    # a built-in model's run id does not change: no digest for it
    assert RunConfig(dataset="digits").resolved().model_digest is None


def test_model_args_reach_the_factory(nets, tmp_path):
    result = shattering.run(model="usernets:tiny", model_args={"width": 16}, dataset="digits", epochs=1,
                            out=str(tmp_path))
    config = json.loads((result.run_dir / "config.json").read_text())["config"]
    assert config["model_args"] == '{"width":16}'
    built = build_model("usernets:tiny", (1, 8, 8), 10, width=16)
    assert built[1].out_features == 16


@pytest.mark.parametrize("model, message", [
    ("nomodule_here:net", r"Model 'nomodule_here:net': module 'nomodule_here' could not be imported "
                          r"\(ModuleNotFoundError.*\); make it importable"),
    ("usernets:missing", r"module 'usernets' has no attribute 'missing'; name a function or class"),
    ("usernets:NOT_CALLABLE", r"Model 'usernets:NOT_CALLABLE' is a int, not a factory"),
    ("usernets:raises", r"could not be built for inputs \[1, 8, 8\] and 10 classes \(RuntimeError: no such layer\)"),
    ("usernets:not_a_module", r"factory returned a str, not an nn.Module"),
    ("usernets:wrong_output", r"returned \[2, 11\] for a batch of 2 inputs of shape \[1, 8, 8\]; it must return "
                              r"logits of shape \[2, 10\]"),
    ("no-such-model", r"The run setting 'model' \(--model\) must be one of inception-small, .*, or "
                      r"package.module:factory for a model of your own; got 'no-such-model' instead"),
])
def test_bad_models_get_one_sentence_exit_2_and_leave_no_folder(nets, tmp_path, capsys, model, message):
    out = tmp_path / "runs"
    rc = main(["run", "--model", model, *FAST, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("shatter: error: ")
    assert re.search(message, err), err
    assert not out.exists()  # refused before any record folder was made
    with pytest.raises(ConfigError, match=message):  # the same sentence from Python
        shattering.run(model=model, dataset="digits", out=str(out))
    assert not out.exists()


@pytest.mark.parametrize("bad, message", [
    (["width"], r"run setting 'model_args' \(--model-arg\) must be KEY=VALUE"),
    ({"1x": 2}, r"run setting 'model_args' \(--model-arg\) must be a table of keyword arguments"),
    ("{not json", r"run setting 'model_args' \(--model-arg\) must be a JSON object"),
])
def test_bad_model_args_get_one_sentence(bad, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig(model_args=bad)


def test_model_args_the_factory_does_not_take_are_refused_when_the_config_is_made(nets):
    with pytest.raises(ConfigError, match=r"run setting 'model_args' \(--model-arg\) must be keyword arguments that "
                                          r"the factory of model 'mlp-1x512' takes"):
        RunConfig(model="mlp-1x512", model_args={"A": False})
    with pytest.raises(ConfigError, match="factory of model 'usernets:tiny' takes"):
        RunConfig(model="usernets:tiny", model_args={"depth": 3})
    assert RunConfig(model="usernets:tiny", model_args={"width": 3}).model_kwargs() == {"width": 3}


def test_a_plain_two_argument_factory_trains_from_the_command_line_and_python(nets, tmp_path, capsys):
    rc = main(["run", "--model", "usernets:plain", *FAST, "--out", str(tmp_path / "cli")])
    assert rc == 0 and ": FIT (100.0% training accuracy)" in capsys.readouterr().out
    assert shattering.run(model="usernets:plain", dataset="digits", corruption="random-labels", lr=0.1,
                          out=str(tmp_path / "py")).fit
    assert build_model("usernets:plain", (1, 8, 8), 10)[1].out_features == 256


def test_a_dropout_a_factory_cannot_take_is_refused_in_one_sentence(nets, tmp_path, capsys):
    rc = main(["run", "--model", "usernets:plain", *FAST, "--dropout", "0.5", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert ("Model 'usernets:plain''s factory takes no 'dropout' argument, so a dropout of 0.5 cannot be applied to "
            "it; add a dropout keyword to the factory") in err
    with pytest.raises(ConfigError, match="takes no 'dropout' argument"):
        build_model("usernets:plain", (1, 8, 8), 10, dropout=0.5)


def test_a_model_argument_of_the_wrong_kind_is_refused_naming_it(nets, tmp_path, capsys):
    rc = main(["run", "--model", "usernets:formatted", "--model-arg", "width=abc", *FAST, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "TypeError" not in err
    assert ("The model argument width='abc' is text, but the factory of model 'usernets:formatted' takes an integer "
            "for 'width'; give one (--model-arg width=8).") in err
    assert RunConfig(model="usernets:formatted", model_args={"width": 16}).model_kwargs() == {"width": 16}


def test_a_registered_model_goes_wherever_a_built_in_goes(tmp_path):
    name = "test-registered-mlp"
    if name not in MODELS:
        shattering.register_model(name, lambda shape, k, dropout=0.0: torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(shape[0] * shape[1] * shape[2], 128), torch.nn.ReLU(),
            torch.nn.Linear(128, k)), lr=0.1)
    assert model_info(name).lr == 0.1 and not model_info(name).packable  # never packed unless declared
    result = shattering.run(model=name, dataset="digits", corruption="random-labels", out=str(tmp_path))
    assert result.fit and RunConfig(model=name).resolved().model_digest  # a user's model: the digest is in the id


def test_a_user_model_draws_its_curve_in_fig1bc(nets, tmp_path, capsys):
    out = tmp_path / "runs"
    rc = main(["reproduce", "fig1bc", "--scale", "smoke", "--models", "mlp-1x512,usernets:tiny", "--out", str(out),
               "--quiet", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert rc == 0 and not result["failed"]
    models = {o["run"].split()[1] for o in result["outcomes"]}
    assert models == {"mlp-1x512", "usernets:tiny"}
    rows = (out / "artefacts" / "fig1bc" / "fig1bc.csv").read_text()
    assert "usernets:tiny" in rows and "mlp-1x512" in rows
    sidecar = json.loads((out / "artefacts" / "fig1bc" / "fig1bc.json").read_text())
    assert any("models: mlp-1x512, usernets:tiny" in note for note in sidecar["notes"])


# --------------------------------------------------------------------------------------------------
# Today's networks, built in
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, count", [("wrn-28-1", 369_498), ("resnet18", 11_173_962), ("wrn-28-10", 36_479_194),
                                         ("vit-tiny", 1_806_538)])
def test_parameter_counts_at_cifar_size(name, count):
    """WRN-28-1 has the 369,498 parameters of the paper's first author's demo (32x32x3, 10 classes)."""
    assert paper_param_count(build_model(name, (3, 32, 32), 10)) == count


@pytest.mark.parametrize("name", ["resnet18", "wrn-28-1", "vit-tiny"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 28, 28), (1, 1, 40), (2, 9, 13)])
def test_todays_networks_take_any_input_shape(name, shape):
    model = build_model(name, shape, 7).eval()
    assert model(torch.randn(2, *shape)).shape == (2, 7)


@pytest.mark.slow
@pytest.mark.parametrize("name, n", [("resnet18", 40), ("wrn-28-1", 100), ("wrn-28-10", 40), ("vit-tiny", 100)])
def test_todays_networks_fit_random_labels_on_a_small_subset(name, n, tmp_path, monkeypatch):
    monkeypatch.delenv("SHATTERING_CHECKPOINT_EVERY_S")  # the default: no checkpoint after each of these short epochs
    result = shattering.run(model=name, dataset="digits", corruption="random-labels", train_size=n, test_size=20,
                            epochs=200, out=str(tmp_path))
    assert result.fit and result.train_acc == 1.0, result.message
