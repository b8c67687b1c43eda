"""One preset per artefact of the paper: a grid of runs (data), at three scales, and the function that
turns the runs' records into the figure or table; or, for an artefact that trains nothing (Table 3, kernels),
the function that computes its rows.

Scales:

- ``smoke``: seconds; the bundled digits, tiny budgets. What the tests run; the numbers mean nothing.
- ``quick``: a whole artefact in at most about 30 minutes on a 2-core CPU: Fashion-MNIST (installed offline;
  CIFAR-10 is the paper's data, pass ``--dataset cifar10`` where it is present), small training sets and
  budgets, all stated in the output.
- ``paper``: the paper's data (CIFAR-10, all 50,000 images) and schedule (lr x0.95 per epoch); meant for a
  GPU.

A preset's grid is a list of rows (model, corruption, regularizers); the scale adds the data set, sizes and
budget; ``seeds`` repeats every row with seeds 0..N-1 (training and corruption seed alike). A preset whose grid
itself changes with the scale (``slowdown``: the training-set sizes) gives it per scale in ``scale_rows``.

Beyond the paper's figures: ``memorization`` (Arpit et al. 2017), ``slowdown`` (Fig. 1a's slowdown against the
number of training images) and ``measures`` (complexity measures, Jiang et al. 2020) take Fig. 1b/1c's settings,
so that they reuse its runs; ``sharpness`` (Keskar et al. 2017; Im et al. 2016) trains small and large batches,
SGD and Adam; ``landscape`` and ``information`` follow. These are defined in :mod:`.presets_beyond`.

The ImageNet presets (``table2``, ``fig2a``; Appendix B) need the images (an image folder, ``--data-dir``;
see :mod:`shattering.data.image_folder`): ``smoke`` and ``quick`` train the small AlexNet at a low resolution on
whatever folder is given (a tiny generated one in the tests), ``paper`` trains Inception V3 at 299x299 (a GPU,
or several with torchrun; see docs/scaling.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..config import RunConfig
from ..data.catalogue import DATASETS, dataset_info
from ..data.user_data import dataset_key
from ..errors import ConfigError
from ..validation import must_be
from . import claims as paper_claims
from . import table3
from .claims import Claim

SCALES = ("smoke", "quick", "paper")
# What a scale's artefact may claim, in its title and heading: only the paper scale reproduces the paper.
SMOKE_CAVEAT = "checks the machinery; the numbers mean nothing"
SCALE_CLAIMS = {"smoke": f"smoke: machinery check ({SMOKE_CAVEAT})", "quick": "at a reduced scale",
                "paper": "reproduced"}
PAPER_DATASET = "cifar10"
# The weight-decay coefficient of Table 1 / Table 4 ("the default coefficient", value not given) [I].
WEIGHT_DECAY = 5e-4
FIG1A_SETTINGS = ("true-labels", "random-labels", "shuffled-pixels", "random-pixels", "gaussian")
FIG1BC_MODELS = ("inception-small", "alexnet-small", "mlp-1x512")
FIG1BC_P = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class Preset:
    """A paper artefact: ``rows`` (what varies), ``scales`` (what every run gets at each scale).

    A computed preset (``compute`` set; ``rows`` and ``scales`` empty) trains nothing: ``compute(scale, dataset,
    out_dir)`` returns its rows (reusing those of an identical earlier request in ``out_dir``), which its
    renderer draws as a trained preset's outcomes are drawn.

    ``claims``: the paper's claims the artefact tests, as :class:`~shattering.experiments.claims.Claim` objects (an
    id, the paper's words with its numbers, where it says so, and ``measure``: a function of the runs'
    :class:`~shattering.experiments.claims.RunFacts`, or of a computed preset's rows, returning a verdict:
    "holds", "does not hold at this scale" or "not measured (why)", with its numbers). A new artefact lists its
    own; :func:`shattering.report.renderers.render` measures them after drawing and writes every verdict into the
    artefact's Markdown (a "Claims of the paper" section), its JSON sidecar (``claims``) and so into the HTML
    report. Nothing else is needed: a renderer does not see the claims.
    """

    name: str
    title: str
    paper_ref: str
    kind: str  # "figure" or "table"
    rows: tuple[dict, ...]
    scales: dict[str, dict]
    description: str = ""
    # Per-model settings at a scale, on top of the scale's: {scale: {model: {field: value}}}.
    model_scales: dict[str, dict[str, dict]] = field(default_factory=dict)
    paper_dataset: str = PAPER_DATASET  # the data the paper ran this artefact on
    paper_model: str | None = None  # the paper's model where a scale may swap it (ImageNet presets)
    compute: Callable[[str, str | None, Path], list[dict]] | None = None  # a computed artefact's rows
    claims: tuple[Claim, ...] = ()  # the paper's claims this artefact tests (experiments/claims/)
    # A grid of its own at a scale, in place of ``rows`` (the slowdown's training-set sizes grow with the scale).
    scale_rows: dict[str, tuple[dict, ...]] = field(default_factory=dict)

    @property
    def computed(self) -> bool:
        """True for an artefact computed directly (no training runs)."""
        return self.compute is not None

    def configs(self, scale: str = "quick", *, dataset: str | None = None, seeds: int = 1, out: str = "runs",
                base: RunConfig | None = None, seed: int = 0, data_seed: int = 0, models: Sequence | None = None,
                **overrides) -> list[RunConfig]:
        """Every run of this preset at ``scale`` (one per row and seed).

        ``models`` (names, ``package.module:factory`` paths or factories) replaces the preset's models: every
        distinct row of its grid runs once for each of them (``shatter reproduce fig1bc --models mlp-1x512,
        mypkg.nets:resnet18`` draws both curves).

        A run's settings, from the bottom: ``base`` (a config file's settings, every field), the scale's, the
        model's at that scale, the row's, then the repeat's seeds (repeat i of ``seeds`` takes ``seed + i`` and
        ``data_seed + i``) and ``out``, then ``overrides`` (options given on the command line) on top.
        ``dataset`` swaps the scale's data set (dropping what belongs to the scale's data only).
        """
        if self.computed:
            raise ConfigError(f"Preset {self.name!r} is computed, not trained: it has no runs to sweep; "
                              f"`shatter reproduce {self.name}` computes and draws it.")
        settings = self.scale_settings(scale, dataset)
        if not isinstance(seeds, int) or seeds < 1:
            raise ConfigError(must_be("seeds", "a positive integer", seeds, of="Preset.configs"))
        under = _under(base)
        configs = []
        for row in self.rows_for(models, scale):
            per_model = self.model_scales.get(scale, {}).get(row.get("model"), {})
            for i in range(seeds):
                offset = row.get("seed_offset", 0)  # a row's second network of the same setting: another seed
                values = {**under, **settings, **per_model, **row, "seed": seed + i + offset,
                          "data_seed": data_seed + i, "out": out, **overrides}
                values.pop("note", None)
                values.pop("seed_offset", None)
                configs.append(RunConfig.from_dict(values, where=f"preset {self.name}"))
        return configs

    def rows_for(self, models: Sequence | None = None, scale: str | None = None) -> tuple[dict, ...]:
        """The grid's rows (at ``scale``, where the preset has a grid of its own for it), with ``models`` in place
        of the preset's own (each distinct row once per model)."""
        rows = self.scale_rows.get(scale or "", self.rows)
        if models is None:
            return rows
        if isinstance(models, str) or not models:
            raise ConfigError(must_be("models", "a non-empty list of models", models, of="Preset.configs"))
        templates: list[dict] = []
        for row in rows:
            template = {k: v for k, v in row.items() if k != "model"}
            if template not in templates:
                templates.append(template)
        return tuple({**template, "model": model} for model in models for template in templates)

    def scale_settings(self, scale: str, dataset: str | None = None) -> dict:
        if scale not in SCALES:
            raise ConfigError(f"Unknown scale {scale!r}; choose one of {', '.join(SCALES)}.")
        base = dict(self.scales[scale])
        if dataset is not None:
            dataset = dataset_key(dataset)  # the user's data (a path, ArrayData) by its catalogue name
            dataset_info(dataset)  # raises for unknown names
            base["dataset"] = dataset
            if dataset != "cifar10" and base.get("lr_decay") == 0.95 and scale == "paper":
                base.pop("lr_decay")  # the paper's schedule belongs to the paper's data
            if dataset_info(dataset).kind != "image-folder":  # settings of streamed image folders only
                for key in ("image_size", "workers"):
                    base.pop(key, None)
        return base

    def notes(self, scale: str, dataset: str | None = None, *, base: RunConfig | None = None,
              models: Sequence | None = None, **overrides) -> list[str]:
        """Where this run of the preset differs from the paper (shown beside every figure and table); ``base``
        and ``overrides`` as for :meth:`configs`; a computed preset's rows carry their own notes."""
        if self.computed:
            return []
        settings = self.scale_settings(scale, dataset)
        shared = {**_under(base), **settings, **overrides}  # what every run of the preset shares
        paper = DATASETS[self.paper_dataset]
        notes = []
        if shared["dataset"] != self.paper_dataset:
            paper_title = "CIFAR-10" if self.paper_dataset == "cifar10" else paper.title
            notes.append(f"data set: {dataset_info(shared['dataset']).title} instead of the paper's {paper_title}")
        if self.paper_model and shared.get("model", self.paper_model) != self.paper_model:
            size = f" at {shared['image_size']}x{shared['image_size']} pixels" if shared.get("image_size") else ""
            notes.append(f"model: {shared['model']}{size} instead of the paper's {self.paper_model}")
        if models is not None:
            own = list(dict.fromkeys(row["model"] for row in self.rows if "model" in row))
            names = [RunConfig(model=m).model for m in models]  # a factory object is named as its runs are
            notes.append(f"models: {', '.join(names)} (the paper's: {', '.join(own)})")
        if shared.get("train_size"):
            sizes = {m: o["train_size"] for m, o in self.model_scales.get(scale, {}).items()
                     if "train_size" in o and "train_size" not in overrides}
            extra = "".join(f", {n} for {m}" for m, n in sizes.items())
            notes.append(f"{shared['train_size']} training images{extra} (the paper: {paper.n_train:,})")
        if shared.get("test_size"):
            notes.append(f"{shared['test_size']} test images (the paper: {paper.n_test:,})")
        notes.append(self.schedule_note(scale, dataset, base=base, models=models, **overrides))
        noted = ("note", "dataset", "train_size", "test_size")  # the lines above say these
        changed = ", ".join(f"{key.replace('_', '-')} {shared[key]}" for key in settings
                            if key not in noted and shared[key] != settings[key])
        if scale != "paper":
            notes.append(f"scale '{scale}': {self.scales[scale].get('note', 'reduced budget')}"
                         + (f"; changed from the scale's: {changed}" if changed else ""))
        elif changed:
            notes.append(f"changed from the paper's setting: {changed}")
        return notes


    def schedule_note(self, scale: str, dataset: str | None = None, *, base: RunConfig | None = None,
                      models: Sequence | None = None, **overrides) -> str:
        """Each model's learning-rate schedule in this run of the preset (models sharing one are named together),
        beside the paper's (Section 2.1: lr 0.1 for the small Inception, 0.01 for AlexNet and the MLPs, x0.95 per
        epoch): ``learning rate: 0.1 x0.95 per epoch for inception-small; 0.01 constant for mlp-1x512 (...)``."""
        groups: dict[tuple[float, float, str], list[str]] = {}
        for cfg in self.configs(scale, dataset=dataset, base=base, models=models, **overrides):
            resolved = cfg.resolved()
            names = groups.setdefault((resolved.lr, resolved.lr_decay, resolved.optimizer), [])
            if resolved.model not in names:
                names.append(resolved.model)
        parts = [f"{lr:g} {'constant' if decay == 1 else f'x{decay:g} per epoch'}"
                 f"{'' if optimizer == 'sgd' else f' ({optimizer})'} for {', '.join(names)}"
                 for (lr, decay, optimizer), names in groups.items()]
        paper = ("the paper: 0.1 for the small Inception, 0.01 for AlexNet and the MLPs, x0.95 per epoch on CIFAR-10"
                 if self.paper_dataset == PAPER_DATASET else
                 f"the paper gives no schedule for {DATASETS[self.paper_dataset].title}")
        return "learning rate: " + "; ".join(parts) + f" ({paper})"


def _under(base: RunConfig | None) -> dict:
    """A config file's settings as the bottom layer of a preset's runs (the repeats number their own seeds)."""
    if base is None:
        return {}
    return {k: v for k, v in base.to_dict().items() if k not in ("seed", "data_seed", "out")}


def _rows(*rows: dict) -> tuple[dict, ...]:
    return tuple(rows)


def corruption_at(p: float) -> dict:
    """Label corruption p as a run config: p = 0 is the true labels and p = 1 the random labels (the very runs
    of Fig. 1a, shared), anything between is partially corrupted."""
    if p == 0:
        return {"corruption": "true-labels"}
    if p == 1:
        return {"corruption": "random-labels"}
    return {"corruption": "partial-labels", "p": p}


# Fig. 1a and 1b/1c share their settings, so that the Inception runs on true and random labels serve both.
# Quick: 500 training and 500 test images, what 23 runs (9 of the small Inception, about 1 GFLOP per training
# image) afford in 30 minutes on 2 cores (the per-run timings behind it: bench/RESULTS.md, "Figures moved from
# the code").
FIG1_QUICK = {"dataset": "fashion-mnist", "train_size": 500, "test_size": 500, "epochs": 150, "until": "fit",
               "log_every": 2, "note": "500 Fashion-MNIST training images, 500 test images, stop at 100% training "
                                       "accuracy or 150 epochs"}
FIG1_PAPER = {"dataset": "cifar10", "epochs": 150, "until": "fit", "log_every": 20, "lr_decay": 0.95,
               "note": "the paper's setting"}
SMOKE = {"dataset": "digits", "train_size": 120, "test_size": 60, "epochs": 2, "until": "epochs", "log_every": 1,
          "note": f"a few seconds per run on the bundled digits; {SMOKE_CAVEAT}"}

PRESETS: dict[str, Preset] = {}


def register_preset(preset: Preset) -> Preset:
    PRESETS[preset.name] = preset
    return preset


register_preset(Preset(
    name="fig1a", kind="figure", paper_ref="Section 2.1, Figure 1a",
    title="Fitting random labels and random pixels: training loss against steps (small Inception)",
    rows=_rows(*({"model": "inception-small", "corruption": c} for c in FIG1A_SETTINGS)),
    claims=paper_claims.FIG1A_CLAIMS,
    scales={
        "smoke": SMOKE,
        "quick": FIG1_QUICK,
        "paper": FIG1_PAPER,
    },
))

register_preset(Preset(
    name="fig1bc", kind="figure", paper_ref="Section 2.1, Figures 1b and 1c",
    title="Label corruption: time to fit relative to true labels (b) and test error at fit (c)",
    rows=_rows(*({"model": m, **corruption_at(p)} for m in FIG1BC_MODELS for p in FIG1BC_P)),
    claims=paper_claims.FIG1BC_CLAIMS,
    scales={
        "smoke": {**SMOKE, "until": "fit", "epochs": 3},
        "quick": FIG1_QUICK,
        "paper": FIG1_PAPER,
    },
    # At this size the small Inception fits random labels about as fast as true ones (epoch 20-22 both, at 500
    # and at 1,000 images): the paper's slowdown needs its 50,000 images; the figure shows what was measured.
))

register_preset(Preset(
    name="fig2b", kind="figure", paper_ref="Section 3.1, Figure 2b",
    title="Implicit regularization: Inception with and without batch normalization, accuracy against steps",
    rows=_rows({"model": "inception-small"}, {"model": "inception-small-nobn"}),
    claims=paper_claims.FIG2B_CLAIMS,
    scales={  # the best test accuracy so far (early stopping's reach) needs every epoch evaluated
        "smoke": {**SMOKE, "eval_every": 1},
        "quick": {"dataset": "fashion-mnist", "train_size": 2000, "test_size": 1000, "epochs": 25,
                  "until": "epochs", "eval_every": 1, "note": "2,000 Fashion-MNIST images, 25 epochs"},
        "paper": {"dataset": "cifar10", "epochs": 100, "until": "epochs", "lr_decay": 0.95, "eval_every": 1,
                  "note": "the paper's setting"},
    },
))


def _table1_rows() -> tuple[dict, ...]:
    """Table 1's grid. True-label rows train for the whole budget (``until="epochs"``): the paper reports their
    accuracy after its schedule, and the summary still records the epoch they first fit (``fit_epoch``);
    random-label rows stop at fit (``until`` of the scale), as the paper trains random labels to fit."""
    rows = []
    for model, crops in (("inception-small", (True, False)), ("inception-small-nobn", (False,)),
                         ("alexnet-small", (True, False)), ("mlp-3x512", (False,)), ("mlp-1x512", (False,))):
        for crop in crops:
            for wd in (True, False):
                rows.append({"model": model, "random_crop": crop, "weight_decay": WEIGHT_DECAY if wd else 0.0,
                             "until": "epochs"})
        rows.append({"model": model, "corruption": "random-labels"})
    return tuple(rows)


register_preset(Preset(
    name="table1", kind="table", paper_ref="Section 3, Table 1",
    title="Training and test accuracy with and without random crop and weight decay, and random labels",
    rows=_table1_rows(), claims=paper_claims.TABLE1_CLAIMS,
    scales={
        "smoke": SMOKE,
        "quick": {"dataset": "fashion-mnist", "train_size": 500, "test_size": 1000, "epochs": 60, "until": "fit",
                  "note": "500 Fashion-MNIST images, 60 epochs (random labels: stop at 100%)"},
        "paper": {"dataset": "cifar10", "epochs": 150, "until": "fit", "lr_decay": 0.95,
                  "note": "the paper's setting (true labels: the whole 150 epochs; random labels: stop at 100%)"},
    },
))

register_preset(Preset(
    name="table4", kind="table", paper_ref="Appendix E, Table 4",
    title="Fitting random labels with explicit regularization (training accuracy)",
    claims=paper_claims.TABLE4_CLAIMS,
    rows=_rows(
        *({"model": m, "corruption": "random-labels", "weight_decay": WEIGHT_DECAY}
          for m in ("inception-small", "alexnet-small", "mlp-3x512", "mlp-1x512")),
        {"model": "inception-small", "corruption": "random-labels", "random_crop": True, "lr_decay": 0.999},
        {"model": "inception-small", "corruption": "random-labels", "flip_rotate": True, "lr_decay": 0.999},
    ),
    scales={
        "smoke": SMOKE,
        "quick": {"dataset": "fashion-mnist", "train_size": 500, "test_size": 500, "epochs": 100, "until": "fit",
                  "note": "500 Fashion-MNIST images, stop at 100% or 100 epochs"},
        "paper": {"dataset": "cifar10", "epochs": 300, "until": "fit", "lr_decay": 0.95,
                  "note": "the paper's setting; augmentation rows use lr decay 0.999 and a longer budget"},
    },
    description="Augmentation rows use the slower learning-rate decay (0.999) the appendix describes.",
))


# -- ImageNet (Appendix B): Table 2 and Figure 2a -------------------------------------------------------
# The paper gives no values for these; the TensorFlow Inception V3 defaults of the time [I]:
TABLE2_WEIGHT_DECAY = 4e-5  # TF-slim inception_v3_arg_scope(weight_decay=0.00004)
TABLE2_DROPOUT = 0.2  # TF-slim inception_v3(dropout_keep_prob=0.8)
# (data augmentation, dropout, weight decay) of Table 2's true-label rows, then of its random-label rows.
TABLE2_TRUE = ((True, True, True), (True, False, False), (False, False, True), (False, False, False))
TABLE2_RANDOM = ((False, True, True), (False, False, True), (False, False, False))


def _imagenet_row(aug: bool, dropout: bool, wd: bool, corruption: str = "true-labels") -> dict:
    return {"corruption": corruption, "random_crop": aug, "dropout": TABLE2_DROPOUT if dropout else 0.0,
            "weight_decay": TABLE2_WEIGHT_DECAY if wd else 0.0}


# Table 2's best test accuracy (early stopping's reach) and Figure 2a's curves need the test accuracy of every
# epoch: these runs evaluate every epoch (eval_every 1; the default skips epochs that cannot have fit).
_IMAGENET_SCALES = {
    "smoke": {"dataset": "imagenet", "model": "alexnet-small", "image_size": 32, "epochs": 2, "until": "epochs",
              "log_every": 1, "workers": 0, "eval_every": 1,
              "note": "seconds on the image folder given by --data-dir (the tests generate a tiny one); the small "
                      "AlexNet at 32x32; " + SMOKE_CAVEAT},
    "quick": {"dataset": "imagenet", "model": "alexnet-small", "image_size": 64, "train_size": 5000,
              "test_size": 1000, "epochs": 15, "until": "epochs", "eval_every": 1,
              "note": "5,000 training images at 64x64, the small AlexNet, 15 epochs"},
    "paper": {"dataset": "imagenet", "model": "inception-v3", "image_size": 299, "epochs": 100, "until": "epochs",
              "eval_every": 1,
              "note": "the paper's model and data; its schedule and batch size are not given (the TF Inception "
                      "package's lr 0.1 x0.94 per epoch [I]); a GPU, or several with torchrun"},
}

register_preset(Preset(
    name="table2", kind="table", paper_ref="Appendix B, Table 2",
    title="ImageNet, Inception V3: top-1 and top-5 accuracy with and without data augmentation, dropout and "
          "weight decay, and random labels (best test accuracy in parentheses)",
    rows=_rows(*(_imagenet_row(*r) for r in TABLE2_TRUE),
               *(_imagenet_row(*r, corruption="random-labels") for r in TABLE2_RANDOM)),
    scales=_IMAGENET_SCALES, paper_dataset="imagenet", paper_model="inception-v3", claims=paper_claims.TABLE2_CLAIMS,
    description=f"Dropout {TABLE2_DROPOUT} and weight decay {TABLE2_WEIGHT_DECAY:g} where on: the TF Inception "
                "V3 defaults [I]. The best test accuracy so far is recorded every epoch (early stopping's reach).",
))

register_preset(Preset(
    name="fig2a", kind="figure", paper_ref="Section 3.1, Figure 2a",
    title="Implicit regularization on ImageNet: Inception V3's training and test accuracy against steps, with "
          "and without data augmentation, dropout and weight decay",
    rows=_rows(*(_imagenet_row(*r) for r in TABLE2_TRUE)),
    scales=_IMAGENET_SCALES, paper_dataset="imagenet", paper_model="inception-v3", claims=paper_claims.FIG2A_CLAIMS,
))


# -- Table 3 (Section 5, Appendix D): kernel interpolation, computed rather than trained ------------------------

register_preset(Preset(
    name="table3", kind="table", paper_ref="Section 5, Appendix D, Table 3",
    title="Kernel interpolation (Eq. 3): test error and norm, true and random labels",
    rows=(), scales={}, paper_dataset="mnist", compute=table3.reproduce_rows, claims=paper_claims.TABLE3_CLAIMS,
    description="Computed from kernels (no training runs); rows on a substitute data set say so.",
))


def scale_claim(scale: str | None, *, short: bool = False) -> str:
    """What an artefact drawn at ``scale`` may say of itself: ``reproduced`` (paper), ``at a reduced scale``
    (quick) or ``smoke: machinery check (...)`` (``short``: without the parenthesis); an artefact of unknown
    scale claims nothing (``drawn from the runs given``)."""
    claim = SCALE_CLAIMS.get(scale or "", "drawn from the runs given")
    return claim.split(" (")[0] if short else claim


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"Unknown preset {name!r}; known presets: {', '.join(PRESETS)}.") from None


# The presets of the second half (which minima, landscapes, the information plane): their own module, registered
# here so that PRESETS holds every preset once this module is imported.
from . import presets_beyond as _presets_beyond  # noqa: E402,F401
