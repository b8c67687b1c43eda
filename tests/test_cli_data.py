"""`shatter data ...`: the done-when checks of the data-layer issue, through the command line."""

from __future__ import annotations

import json

import pytest

from shattering.cli import main

from .conftest import needs_fashion


def _show(capsys, *args) -> dict:
    assert main(["data", "show", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@needs_fashion
def test_fashion_mnist_partial_labels_half(capsys):
    args = ["--dataset", "fashion-mnist", "--corruption", "partial-labels", "--p", "0.5", "--data-seed", "1"]
    first = _show(capsys, *args)
    assert first["n_train"] == 60000 and 0.44 <= first["label_noise"] <= 0.46
    for key in ("n_test", "shape", "classes", "corruption", "p", "seed", "corrupted_fraction", "fingerprint"):
        assert key in first
    assert _show(capsys, *args)["fingerprint"] == first["fingerprint"]
    args[-1] = "2"
    assert _show(capsys, *args)["fingerprint"] != first["fingerprint"]


def test_digits_show_json_fields(capsys):
    info = _show(capsys, "--dataset", "digits", "--corruption", "random-labels", "--train-size", "500")
    assert info["n_train"] == 500 and info["shape"] == [1, 8, 8] and info["classes"] == 10
    assert info["p"] == 1.0 and 0.85 < info["label_noise"] < 0.95


def test_data_list(capsys):
    assert main(["data", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["digits"]["available"] and not rows["cifar10"]["available"]


def test_bad_inputs_exit_2_with_one_sentence(capsys):
    library = (["data", "show", "--dataset", "digits", "--corruption", "partial-labels", "--p", "1.5"],
               ["data", "show", "--dataset", "digits", "--corruption", "partial-labels"],
               ["data", "fetch", "--dataset", "digits"])
    parser = (["data", "show", "--dataset", "nope"], ["data", "show", "digits"], ["data", "show"],
              ["data", "fetch", "digits"])
    for argv in library:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("shatter: error:") and err.count("\n") == 1 and "Traceback" not in err
    for argv in parser:  # refused by the parser, before any data is read
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2, argv
        err = capsys.readouterr().err
        assert err.startswith(f"shatter data {argv[1]}: error:") and err.count("\n") == 1 and "Traceback" not in err

def test_show_takes_the_data_options_of_run_and_its_seed_changes_nothing(capsys):
    """`data show` reads the data as `run` does: --data-seed draws the subsets and the corruption; --seed (the
    training seed) is accepted and leaves the data as they are."""
    args = ["--dataset", "digits", "--corruption", "partial-labels", "--p", "0.5", "--train-size", "300"]
    first = _show(capsys, *args)
    assert _show(capsys, *args, "--seed", "7")["fingerprint"] == first["fingerprint"]
    assert _show(capsys, *args, "--data-seed", "3")["fingerprint"] != first["fingerprint"]
    assert _show(capsys, *args, "--data-seed", "0")["fingerprint"] == first["fingerprint"]
    assert first == _show(capsys, *args, "--test-size", "360")  # digits has 360 test images: the same data
