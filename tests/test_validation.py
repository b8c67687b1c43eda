"""The one message form of a refused value (`shattering/validation.py`): scikit-learn's "The 'x' parameter of f
must be ...; got ... instead.", for the check_* gates, a run's settings and the data and model catalogues."""

from __future__ import annotations

import re

import numpy as np
import pytest

from shattering.config import RunConfig
from shattering.corruptions import check_p
from shattering.data import DatasetInfo, load_dataset, register_dataset
from shattering.errors import ConfigError
from shattering.models import build_model, register_model
from shattering.validation import (
    check_choice,
    check_choices,
    check_float,
    check_int,
    check_labels,
    check_matrix,
    check_probability,
    check_targets,
    must_be,
)

FORM = re.compile(r"^(\S+: )?The ('[^']+' parameter( of \w+)?|run setting '[^']+' \(--[\w-]+\)) must be .+; got .+ "
                  r"instead\.$")


def test_must_be_words_the_one_form():
    assert must_be("n_train", "at most 1437", 5000, of="kernel_experiment") == (
        "The 'n_train' parameter of kernel_experiment must be at most 1437; got 5000 instead.")
    assert must_be("kernel", "one of gaussian, laplacian", "poly") == (
        "The 'kernel' parameter must be one of gaussian, laplacian; got 'poly' instead.")
    assert must_be("X", "a 2-D array", None, shown="shape (3,)") == (
        "The 'X' parameter must be a 2-D array; got shape (3,) instead.")


@pytest.mark.parametrize("call, expected", [
    (lambda: check_int(3.5, "n"), "The 'n' parameter must be an integer; got 3.5 instead."),
    (lambda: check_int("x", "n", of="f"), "The 'n' parameter of f must be an integer; got 'x' instead."),
    (lambda: check_int(0, "n"), "The 'n' parameter must be a positive integer; got 0 instead."),
    (lambda: check_int(1, "n", minimum=2), "The 'n' parameter must be an integer of at least 2; got 1 instead."),
    (lambda: check_int(9, "n", maximum=8), "The 'n' parameter must be at most 8; got 9 instead."),
    (lambda: check_float("a", "ridge"), "The 'ridge' parameter must be a number; got 'a' instead."),
    (lambda: check_float(0.0, "tol", low=0.0, low_open=True),
     "The 'tol' parameter must be a number in (0, inf); got 0.0 instead."),
    (lambda: check_probability(1.5), "The 'p' parameter must be a number in [0, 1]; got 1.5 instead."),
    (lambda: check_choice("sift", "features", ("rgb", "gabor"), of="kernel_experiment"),
     "The 'features' parameter of kernel_experiment must be one of rgb, gabor; got 'sift' instead."),
    (lambda: check_choices("", "labels", ("true", "random")),
     "The 'labels' parameter must be a list of one or more names among true, random; got nothing instead."),
    (lambda: check_choices("true,bogus", "labels", ("true", "random")),
     "The 'labels' parameter must be a list of names among true, random; got 'bogus' instead."),
    (lambda: check_choices("true,true", "labels", ("true", "random")),
     "The 'labels' parameter must be a list of distinct values; got true,true instead."),
    (lambda: check_matrix(np.zeros(3)), "The 'X' parameter must be a 2-D array of shape (n_samples, n_features) "
                                        "(reshape with x.reshape(len(x), -1)); got shape (3,) instead."),
    (lambda: check_matrix([[np.nan]]), "The 'X' parameter must be finite (remove or impute NaN and infinite "
                                       "values first); got NaN or infinite values instead."),
    (lambda: check_targets(np.zeros(2), 3), "The 'y' parameter must be of shape (3,) or (3, k) to match the 3 "
                                            "points; got shape (2,) instead."),
    (lambda: check_labels(np.array([0, 5]), 2, 3), "The 'y' parameter must be integer class labels in [0, 3); got "
                                                   "dtype int64 with values in [0, 5] instead."),
])
def test_every_check_words_its_refusal_in_the_one_form(call, expected):
    with pytest.raises(ConfigError) as info:
        call()
    assert str(info.value) == expected and FORM.match(str(info.value))


@pytest.mark.parametrize("call", [
    lambda: RunConfig(lr=-1.0), lambda: RunConfig(model="resnet"), lambda: RunConfig(epochs=2.5),
    lambda: RunConfig.from_dict({"seed": -1}, where="run.toml"), lambda: check_p("partial-labels", 2.0),
    lambda: check_p("true-labels", 0.5), lambda: load_dataset("digits", train_size=5000),
    lambda: load_dataset("digits", crop=9), lambda: build_model("mlp-1x512", (1, 0, 8), 10),
    lambda: register_model(" x", lambda *a, **k: None, lr=0.1), lambda: register_model("x", 3, lr=0.1),
    lambda: register_dataset(DatasetInfo("odd", "", (1, 1, 1), ("a",), 1, 1, kind="hdf5")),
])
def test_settings_and_catalogues_refuse_in_the_same_form(call):
    with pytest.raises(ConfigError) as info:
        call()
    assert FORM.match(str(info.value)), str(info.value)


def test_a_run_setting_names_its_flag_not_an_internal_class():
    with pytest.raises(ConfigError, match=r"^The run setting 'lr' \(--lr\) must be positive and at most 3\.4e38 "
                                          r"\(float32\); got -1\.0 instead\.$"):
        RunConfig(lr=-1.0)
