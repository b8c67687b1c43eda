"""One preset per artefact of the paper: a grid of runs (data), at three scales, and the function that
turns the runs' records into the figure or table.

Scales:

- ``smoke``: seconds; the bundled digits, tiny budgets. What the tests run; the numbers mean nothing.
- ``quick``: a whole artefact in at most about 30 minutes on a 2-core CPU: Fashion-MNIST (installed offline;
  CIFAR-10 is the paper's data, pass ``--dataset cifar10`` where it is present), small training sets and
  budgets, all stated in the output.
- ``paper``: the paper's data (CIFAR-10, all 50,000 images) and schedule (lr x0.95 per epoch); meant for a
  GPU.

A preset's grid is a list of rows (model, corruption, regularizers); the scale adds the data set, sizes and
budget; ``seeds`` repeats every row with seeds 0..N-1 (training and corruption seed alike).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..config import RunConfig
from ..data.registry import DATASETS
from ..errors import ConfigError

SCALES = ("smoke", "quick", "paper")
PAPER_DATASET = "cifar10"
# The weight-decay coefficient of Table 1 / Table 4 ("the default coefficient", value not given) [I].
WEIGHT_DECAY = 5e-4
FIG1A_SETTINGS = ("true-labels", "random-labels", "shuffled-pixels", "random-pixels", "gaussian")
FIG1BC_MODELS = ("inception-small", "alexnet-small", "mlp-1x512")
FIG1BC_P = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class Preset:
    """A paper artefact: ``rows`` (what varies), ``scales`` (what every run gets at each scale)."""

    name: str
    title: str
    paper_ref: str
    kind: str  # "figure" or "table"
    rows: tuple[dict, ...]
    scales: dict[str, dict]
    description: str = ""
    row_scales: dict[str, Callable[[dict, str], dict]] = field(default_factory=dict)

    def configs(self, scale: str = "quick", *, dataset: str | None = None, seeds: int = 1, out: str = "runs",
                **overrides) -> list[RunConfig]:
        """Every run of this preset at ``scale`` (one per row and seed)."""
        base = self.scale_settings(scale, dataset)
        if not isinstance(seeds, int) or seeds < 1:
            raise ConfigError(f"seeds must be a positive integer; got {seeds!r}.")
        configs = []
        for row in self.rows:
            for seed in range(seeds):
                values = {**base, **row, "seed": seed, "data_seed": seed, "out": out, **overrides}
                values.pop("note", None)
                configs.append(RunConfig.from_dict(values, where=f"preset {self.name}"))
        return configs

    def scale_settings(self, scale: str, dataset: str | None = None) -> dict:
        if scale not in SCALES:
            raise ConfigError(f"Unknown scale {scale!r}; choose one of {', '.join(SCALES)}.")
        base = dict(self.scales[scale])
        if dataset is not None:
            if dataset not in DATASETS:
                raise ConfigError(f"Unknown data set {dataset!r}; known data sets: {', '.join(DATASETS)}.")
            base["dataset"] = dataset
            if dataset != "cifar10" and base.get("lr_decay") == 0.95 and scale == "paper":
                base.pop("lr_decay")  # the paper's schedule belongs to the paper's data
        return base

    def notes(self, scale: str, dataset: str | None = None) -> list[str]:
        """Where this run of the preset differs from the paper (shown beside every figure and table)."""
        base = self.scale_settings(scale, dataset)
        notes = []
        if base["dataset"] != PAPER_DATASET:
            notes.append(f"data set: {DATASETS[base['dataset']].title} instead of the paper's CIFAR-10")
        if base.get("train_size"):
            notes.append(f"{base['train_size']} training images (the paper: 50,000)")
        if base.get("test_size"):
            notes.append(f"{base['test_size']} test images (the paper: 10,000)")
        if scale != "paper":
            notes.append(f"scale '{scale}': {self.scales[scale].get('note', 'reduced budget')}")
        return notes


def _rows(*rows: dict) -> tuple[dict, ...]:
    return tuple(rows)


_SMOKE = {"dataset": "digits", "train_size": 120, "test_size": 60, "epochs": 2, "until": "epochs", "log_every": 1,
          "note": "a few seconds on the bundled digits; checks the machinery, not the science"}

PRESETS: dict[str, Preset] = {}


def _register(preset: Preset) -> Preset:
    PRESETS[preset.name] = preset
    return preset


_register(Preset(
    name="fig1a", kind="figure", paper_ref="Section 2.1, Figure 1a",
    title="Fitting random labels and random pixels: training loss against steps (small Inception)",
    rows=_rows(*({"model": "inception-small", "corruption": c} for c in FIG1A_SETTINGS)),
    scales={
        "smoke": _SMOKE,
        "quick": {"dataset": "fashion-mnist", "train_size": 1000, "test_size": 1000, "epochs": 60,
                  "until": "fit", "log_every": 2,
                  "note": "1,000 Fashion-MNIST images, constant learning rate, stop at 100% or 60 epochs"},
        "paper": {"dataset": "cifar10", "epochs": 100, "until": "fit", "log_every": 20, "lr_decay": 0.95,
                  "note": "the paper's setting"},
    },
))

_register(Preset(
    name="fig1bc", kind="figure", paper_ref="Section 2.1, Figures 1b and 1c",
    title="Label corruption: time to fit relative to true labels (b) and test error at fit (c)",
    rows=_rows(*({"model": m, "corruption": "partial-labels", "p": p} for m in FIG1BC_MODELS for p in FIG1BC_P)),
    scales={
        "smoke": {**_SMOKE, "until": "fit", "epochs": 3},
        "quick": {"dataset": "fashion-mnist", "train_size": 500, "test_size": 1000, "epochs": 150, "until": "fit",
                  "note": "500 Fashion-MNIST images, constant learning rate, stop at 100% or 150 epochs"},
        "paper": {"dataset": "cifar10", "epochs": 150, "until": "fit", "lr_decay": 0.95, "note": "the paper's setting"},
    },
))

_register(Preset(
    name="fig2b", kind="figure", paper_ref="Section 3.1, Figure 2b",
    title="Implicit regularization: Inception with and without batch normalization, accuracy against steps",
    rows=_rows({"model": "inception-small"}, {"model": "inception-small-nobn"}),
    scales={
        "smoke": _SMOKE,
        "quick": {"dataset": "fashion-mnist", "train_size": 2000, "test_size": 1000, "epochs": 25,
                  "until": "epochs", "note": "2,000 Fashion-MNIST images, 25 epochs"},
        "paper": {"dataset": "cifar10", "epochs": 100, "until": "epochs", "lr_decay": 0.95,
                  "note": "the paper's setting"},
    },
))


def _table1_rows() -> tuple[dict, ...]:
    rows = []
    for model, crops in (("inception-small", (True, False)), ("inception-small-nobn", (False,)),
                         ("alexnet-small", (True, False)), ("mlp-3x512", (False,)), ("mlp-1x512", (False,))):
        for crop in crops:
            for wd in (True, False):
                rows.append({"model": model, "random_crop": crop, "weight_decay": WEIGHT_DECAY if wd else 0.0})
        rows.append({"model": model, "corruption": "random-labels"})
    return tuple(rows)


_register(Preset(
    name="table1", kind="table", paper_ref="Section 3, Table 1",
    title="Training and test accuracy with and without random crop and weight decay, and random labels",
    rows=_table1_rows(),
    scales={
        "smoke": _SMOKE,
        "quick": {"dataset": "fashion-mnist", "train_size": 500, "test_size": 1000, "epochs": 60, "until": "fit",
                  "note": "500 Fashion-MNIST images, constant learning rate, stop at 100% or 60 epochs"},
        "paper": {"dataset": "cifar10", "epochs": 150, "until": "fit", "lr_decay": 0.95, "note": "the paper's setting"},
    },
))

_register(Preset(
    name="table4", kind="table", paper_ref="Appendix E, Table 4",
    title="Fitting random labels with explicit regularization (training accuracy)",
    rows=_rows(
        *({"model": m, "corruption": "random-labels", "weight_decay": WEIGHT_DECAY}
          for m in ("inception-small", "alexnet-small", "mlp-3x512", "mlp-1x512")),
        {"model": "inception-small", "corruption": "random-labels", "random_crop": True, "lr_decay": 0.999},
        {"model": "inception-small", "corruption": "random-labels", "flip_rotate": True, "lr_decay": 0.999},
    ),
    scales={
        "smoke": _SMOKE,
        "quick": {"dataset": "fashion-mnist", "train_size": 500, "test_size": 500, "epochs": 100, "until": "fit",
                  "note": "500 Fashion-MNIST images, stop at 100% or 100 epochs"},
        "paper": {"dataset": "cifar10", "epochs": 300, "until": "fit", "lr_decay": 0.95,
                  "note": "the paper's setting; augmentation rows use lr decay 0.999 and a longer budget"},
    },
    description="Augmentation rows use the slower learning-rate decay (0.999) the appendix describes.",
))


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"Unknown preset {name!r}; known presets: {', '.join(PRESETS)}.") from None
