"""The presets beyond the paper's figures: what its runs also show (``memorization``, Arpit et al. 2017;
``slowdown``; ``measures``, Jiang et al. 2020), and which minima networks reach and what they compress: the
``sharpness`` (Keskar et al. 2017; Im et al. 2016), ``landscape`` (Goodfellow et al. 2015; Li et al. 2018) and
``information`` (Shwartz-Ziv and Tishby 2017; Saxe et al. 2018) artefacts, and which examples are memorized
(``memorization-scores``: Feldman and Zhang 2020; Jiang et al. 2021), and the factorial study of what drives
generalization (``factors``). Each is a :class:`~.presets.Preset`
registered into :data:`~.presets.PRESETS` (:mod:`.presets` imports this module last).
"""

from __future__ import annotations

from collections.abc import Sequence

from . import claims as paper_claims
from .presets import (
    FIG1_PAPER,
    FIG1_QUICK,
    FIG1BC_MODELS,
    FIG1BC_P,
    SCALES,
    SMOKE,
    SMOKE_CAVEAT,
    WEIGHT_DECAY,
    Preset,
    corruption_at,
    register_preset,
)

# -- Beyond the paper's figures: what its runs also show (issue 16) -------------------------------------------
# Full evaluation every epoch where the config can thin it out: the memorization curves need every epoch.
_EVERY_EPOCH = {"eval_every": 1}  # the curves are the artefact: every epoch evaluated in full
MEMORIZATION_MODELS = ("alexnet-small", "mlp-1x512")
MEMORIZATION_P = (0.2, 0.4, 0.6, 0.8)

register_preset(Preset(
    name="memorization", kind="figure", paper_ref="Section 2.1 label corruption; Arpit et al. (ICML 2017)",
    title="Memorization under partially corrupted labels: training accuracy on the clean and on the corrupted "
          "examples, and test accuracy, per epoch",
    rows=tuple({"model": m, **corruption_at(p)} for m in MEMORIZATION_MODELS for p in MEMORIZATION_P),
    # Fig. 1b/1c's settings, evaluated every epoch (eval_every is then in the run id: not fig1bc's records).
    scales={
        "smoke": {**SMOKE, "until": "fit", "epochs": 3, **_EVERY_EPOCH},
        "quick": {**FIG1_QUICK, **_EVERY_EPOCH},
        "paper": {**FIG1_PAPER, **_EVERY_EPOCH},
    },
    description="Arpit et al. (2017): networks fit the examples with clean labels first and memorize the "
                "corrupted ones later; test accuracy peaks in between.",
))

# Slowdown against the training-set size: Fig. 1a's 1.5-3.5x is at CIFAR-10's 50,000 images; how does the factor
# grow from a few hundred? Quick: Fig. 1's settings less the size (the n = 500 runs are fig1bc's, reused).
SLOWDOWN_SIZES = (250, 500, 1000, 2000, 4000, 8000)
_SLOWDOWN_LABELS = ("true-labels", "random-labels")


def _sized(sizes: dict[str, Sequence], epochs: dict | None = None) -> tuple[dict, ...]:
    """True and random labels at every size of every model; ``epochs`` raises the budget at the sizes it names."""
    return tuple({"model": m, "train_size": n, "corruption": c, **({"epochs": epochs[n]} if n in (epochs or {})
                                                                    else {})}
                 for m, ns in sizes.items() for n in ns for c in _SLOWDOWN_LABELS)


# The convolutional models up to 500 images at quick: AlexNet fit random labels at 1,000 images in 88 epochs, at
# 500 in 107 (true labels: 94); larger sets do not fit the quick budget on 2 cores (timings: bench/RESULTS.md,
# "Figures moved from the code").
_SLOWDOWN_QUICK_SIZES = {"mlp-1x512": SLOWDOWN_SIZES, "alexnet-small": (250, 500), "inception-small": (250, 500)}
# Measured: the MLP at 8,000 images reached 99.98% on random labels in 150 epochs and fit at epoch 246:
# 300 epochs from 4,000 images.
_SLOWDOWN_QUICK_EPOCHS = {4000: 300, 8000: 300}
register_preset(Preset(
    name="slowdown", kind="figure", paper_ref="Section 2.1, Figure 1a (slowdown against n)",
    title="Convergence slowdown against training-set size: steps to fit random labels over steps to fit true "
          "labels",
    rows=_sized(_SLOWDOWN_QUICK_SIZES, _SLOWDOWN_QUICK_EPOCHS),
    scale_rows={
        "smoke": _sized({"mlp-1x512": (60, 120, 240)}),
        "quick": _sized(_SLOWDOWN_QUICK_SIZES, _SLOWDOWN_QUICK_EPOCHS),
        "paper": _sized({m: (1000, 2000, 5000, 10000, 25000, None) for m in FIG1BC_MODELS}),
    },
    scales={
        "smoke": {**SMOKE, "until": "fit", "epochs": 30, "note": "the bundled digits, 60-240 training images, "
                  f"at most 30 epochs; {SMOKE_CAVEAT}"},
        "quick": {**{k: v for k, v in FIG1_QUICK.items() if k != "train_size"},
                  "note": "250-8,000 Fashion-MNIST training images (AlexNet and the small Inception up to 500), "
                          "500 test images, stop at 100% training accuracy or 150 epochs (300 from 4,000 "
                          "images)"},
        "paper": {**FIG1_PAPER, "note": "the paper's setting at 1,000-50,000 CIFAR-10 images (50,000: Fig. 1a's "
                                         "own runs)"},
    },
    description="The paper's 1.5-3.5x (Fig. 1a) is measured at 50,000 CIFAR-10 images; this draws the factor "
                "against n.",
))

register_preset(Preset(
    name="measures", kind="table", paper_ref="Section 2.2; Jiang et al. (ICLR 2020)",
    title="Complexity measures on true and random labels, and their rank correlation with test error over the "
          "label-corruption sweep",
    rows=tuple({"model": m, **corruption_at(p)} for m in FIG1BC_MODELS for p in FIG1BC_P),
    # Fig. 1b/1c's grid and settings: the very runs of fig1bc (reused where they exist).
    scales={
        "smoke": {**SMOKE, "until": "fit", "epochs": 3},
        "quick": FIG1_QUICK,
        "paper": FIG1_PAPER,
    },
    description="A measure that explains generalization must grow with test error: Kendall's tau over the runs "
                "of the sweep that fit (Jiang et al. 2020's protocol).",
))


# -- Which minima: sharpness and curvature against batch size, optimizer and labels (Keskar et al. 2017) -----------
# Small and large batch per scale: Keskar et al.'s large batch is 10% of the training set (5,000 of CIFAR-10's
# 50,000) against a small one of 128-256; at quick's 2,000 images 10% is 200, against a small batch of 32.
SHARPNESS_BATCHES = {"smoke": (10, 20), "quick": (32, 200), "paper": (128, 5000)}
SHARPNESS_MEASURES = "default,hessian,sharpness"  # every run measures its curvature and sharpness when it ends
# Quick trains the paper's two MLPs: the curvature and sharpness of one AlexNet run on 500 images take about 6
# minutes on a 2-core CPU (a Hessian-vector product 2.0 s, one loss and gradient 1.0 s), the small Inception's
# about an hour (21 s and 7 s), measured: bench/RESULTS.md. `--models` adds them.
_SHARPNESS_MODELS = {"smoke": ("mlp-1x512",), "quick": ("mlp-1x512", "mlp-3x512"), "paper": FIG1BC_MODELS}


def _sharpness_rows(scale: str) -> tuple[dict, ...]:
    """Per model: SGD and Adam with the small and the large batch on true labels, and SGD with the small batch on
    random labels."""
    small, large = SHARPNESS_BATCHES[scale]
    grid = ({"optimizer": "sgd", "batch_size": small}, {"optimizer": "sgd", "batch_size": large},
            {"optimizer": "adam", "batch_size": small}, {"optimizer": "adam", "batch_size": large},
            {"optimizer": "sgd", "batch_size": small, "corruption": "random-labels"})
    return tuple({"model": m, "corruption": "true-labels", **row} for m in _SHARPNESS_MODELS[scale] for row in grid)


register_preset(Preset(
    name="sharpness", kind="table", paper_ref="Section 5's open question; Keskar et al. (ICLR 2017), Im et al. (2016)",
    title="Which minima: sharpness and Hessian curvature of small- and large-batch, SGD and Adam solutions on true "
          "labels, and of random-label solutions",
    rows=_sharpness_rows("quick"),
    scale_rows={scale: _sharpness_rows(scale) for scale in SCALES},
    scales={
        "smoke": {**SMOKE, "measures": SHARPNESS_MEASURES,
                  "note": f"the bundled digits, 200 training images, batches 10 and 20, 2 epochs; {SMOKE_CAVEAT}"},
        "quick": {"dataset": "fashion-mnist", "train_size": 2000, "test_size": 1000, "epochs": 300, "until": "fit",
                  "measures": SHARPNESS_MEASURES,
                  "note": "2,000 Fashion-MNIST training images, 1,000 test images, batches 32 and 200 (10%), stop "
                          "at 100% training accuracy or 300 epochs; the MLPs only (AlexNet and the small "
                          "Inception with --models)"},
        "paper": {"dataset": "cifar10", "epochs": 150, "until": "fit", "measures": SHARPNESS_MEASURES,
                  "note": "CIFAR-10, batches 128 and 5,000 (10%, as Keskar et al.), stop at 100% training accuracy "
                          "or 150 epochs"},
    },
    claims=paper_claims.SHARPNESS_CLAIMS,
    description="Sharpness (Keskar et al.'s Metric 2.1 and the adaptive worst case), the Hessian's top eigenvalues, "
                "trace and spectral density of each run, measured when it ends; the learning rate is each "
                "optimizer's default for the model (SGD: the paper's; Adam: 0.001) at both batch sizes.",
))


# -- Loss landscapes: lines from initialization, barriers between solutions, planes (Li et al. 2018) ---------------
# Per model: two seeds and Adam on true labels, and random labels; every run keeps snapshots for its trajectory.
# Fig. 1's quick settings, so that the true- and random-label runs of seed 0 are fig1bc's own (reused).
LANDSCAPE_ROWS = ({"corruption": "true-labels"}, {"corruption": "true-labels", "seed_offset": 1},
                  {"corruption": "true-labels", "optimizer": "adam"}, {"corruption": "random-labels"})
# What each scale evaluates: examples of every slice, and the plane's grid per model (odd: the solution at its
# centre; the paper scale Li et al.'s 51 x 51). At quick the small Inception's plane is 9 x 9: it evaluates about
# 275 images a second on a 2-core CPU, so one point on 250 images takes about a second (bench/RESULTS.md).
LANDSCAPE_SLICES = {
    "smoke": {"examples": 60, "plane_examples": 60, "grid": {}, "default_grid": 5},
    "quick": {"examples": 250, "plane_examples": 250, "grid": {"inception-small": 9, "alexnet-small": 13},
              "default_grid": 21},
    "paper": {"examples": 1000, "plane_examples": 1000, "grid": {}, "default_grid": 51},
}
_SNAPSHOTS = {"probes": "snapshots:log=12"}

register_preset(Preset(
    name="landscape", kind="figure",
    paper_ref="Section 5's open question; Goodfellow et al. (ICLR 2015), Im et al. (2016), Li et al. (NeurIPS 2018)",
    title="Loss landscapes: the line from initialization, the barriers between two seeds and between SGD and Adam "
          "solutions, and filter-normalized planes of true- and random-label solutions on one colour scale",
    rows=tuple({"model": m, **row} for m in FIG1BC_MODELS for row in LANDSCAPE_ROWS),
    scale_rows={"smoke": tuple({"model": "mlp-1x512", **row} for row in LANDSCAPE_ROWS)},
    scales={
        "smoke": {**SMOKE, "until": "fit", "epochs": 3, **_SNAPSHOTS,
                  "note": f"the bundled digits, the MLP only, 3 epochs, planes of 5 x 5 on 60 images; {SMOKE_CAVEAT}"},
        "quick": {**FIG1_QUICK, **_SNAPSHOTS,
                  "note": "500 Fashion-MNIST training images, 500 test images, stop at 100% training accuracy or "
                          "150 epochs; every slice on 250 training (and test) images, planes of 21 x 21 (AlexNet "
                          "13 x 13, the small Inception 9 x 9)"},
        "paper": {**FIG1_PAPER, **_SNAPSHOTS},
    },
    claims=paper_claims.LANDSCAPE_CLAIMS,
    description="Every slice on fixed seeded subsets with the labels each run trained on, in eval mode; batch "
                "norm's running statistics recomputed at every point between two solutions.",
))


# -- The information plane: does a network take longer to compress noise than signal? -----------------------------
# Saxe et al.'s 1024-20-20-20 MLP with tanh and with ReLU on true labels, random labels, random pixels and Gaussian
# inputs, three seeds each, every run to fit, the information probe at log-spaced epochs on the whole sample.
INFORMATION_INPUTS = ("true-labels", "random-labels", "random-pixels", "gaussian")
INFORMATION_ACTIVATIONS = ("tanh", "relu")
INFORMATION_SEEDS = 3
# Saxe et al.'s 4 bins and Shwartz-Ziv and Tishby's 30. At the quick scale 20 log-spaced epochs of the 1,500-epoch
# budget (0, 1, 2, 3, 5, 7, 10, 15, 22, 32, 47, 69, ...: 11 to 19 of them before the runs fit) on 600 training images
# keep the probe under a tenth of the training time, with the verdicts of 1,000 images (bench/information.py;
# docs/information.md, "What the probe costs"); the paper scale, not measured so, keeps 30 epochs on 1,000 images.
INFORMATION_PROBE = "information:log=20:examples=600:bins=4+30"
INFORMATION_PROBE_PAPER = "information:log=30:examples=1000:bins=4+30"


def _information_rows(seeds: int) -> tuple[dict, ...]:
    return tuple({"model": "mlp-saxe", "model_args": {"activation": a}, "corruption": c, "seed_offset": s}
                 for a in INFORMATION_ACTIVATIONS for c in INFORMATION_INPUTS for s in range(seeds))


register_preset(Preset(
    name="information", kind="figure",
    paper_ref="the seed's hypothesis; Shwartz-Ziv and Tishby (2017), Saxe et al. (ICLR 2018)",
    title="The information plane of an MLP with tanh and with ReLU on true labels, random labels, random pixels and "
          "Gaussian inputs: does a network take longer to compress noise than signal?",
    rows=_information_rows(INFORMATION_SEEDS),
    scale_rows={"smoke": tuple({"model": "mlp-saxe", "model_args": {"activation": a}, "corruption": c}
                               for a in INFORMATION_ACTIVATIONS for c in ("true-labels", "random-labels"))},
    scales={
        "smoke": {**SMOKE, "probes": "information:every=1:examples=120:bins=4+30", "epochs": 3,
                  "note": f"the bundled digits, 120 training images, 3 epochs, true and random labels; {SMOKE_CAVEAT}"},
        "quick": {"dataset": "digits", "test_size": 360, "epochs": 1500, "until": "fit", "probes": INFORMATION_PROBE,
                  "note": "the bundled digits (1,437 training images, 360 test images), every run until 100% "
                          "training accuracy (at most 1,500 epochs), 3 seeds, the information probe at 20 "
                          "log-spaced epochs on 600 training images"},
        "paper": {"dataset": "mnist", "epochs": 3000, "until": "fit", "probes": INFORMATION_PROBE_PAPER,
                  "note": "MNIST as Saxe et al., every run until 100% training accuracy"},
    },
    paper_dataset="mnist",
    claims=paper_claims.INFORMATION_CLAIMS,
    description="Saxe et al.'s network (1024-20-20-20; not the paper's MLP): the 512-unit layers of the paper's MLPs "
                "sit at the binning estimator's ceiling log2 N from the first epoch. Values in bits; binning at 4 "
                "and 30 bins over each layer's own range, the Kolchinsky-Tracey bounds at noise variance 0.1, a "
                "k-nearest-neighbour I(T;Y).",
))


# -- Which examples are memorized: per-example memorization and consistency scores ---------------------------------
# Per run (true labels, p = 0.2 and 0.4), K networks on random 70% subsets of its training set (Feldman and Zhang
# 2020; Jiang et al. 2021), trained by the renderer into the run's record. networks: K; group: networks per pack
# and per kept file (the unit a stopped study resumes from).
MEMORIZATION_SCORES_P = (0.0, 0.2, 0.4)
MEMORIZATION_SCORES_STUDY = {
    "smoke": {"networks": 8, "group": 8},
    "quick": {"networks": 100, "group": 10},
    "paper": {"networks": 2000, "group": 10},
}

register_preset(Preset(
    name="memorization-scores", kind="figure",
    paper_ref="the seed's question; Feldman and Zhang (NeurIPS 2020), Jiang et al. (ICML 2021)",
    title="Which examples are memorized: per-example memorization and C-scores of true and partially corrupted "
          "labels, from networks trained on random 70% subsets",
    rows=tuple({"model": "mlp-1x512", **corruption_at(p)} for p in MEMORIZATION_SCORES_P),
    scales={
        "smoke": {**SMOKE, "until": "fit", "epochs": 3,
                  "note": f"the bundled digits, 120 training images, 3 epochs, 8 subset networks; {SMOKE_CAVEAT}"},
        "quick": {"dataset": "fashion-mnist", "train_size": 2000, "test_size": 500, "epochs": 200, "until": "fit",
                  "log_every": 5,
                  "note": "2,000 Fashion-MNIST training images, 500 test images, every network until 100% training "
                          "accuracy on its subset or 200 epochs; 100 subset networks per run"},
        "paper": {"dataset": "cifar10", "epochs": 150, "until": "fit", "lr_decay": 0.95,
                  "note": "CIFAR-10 with the paper's MLP (Feldman and Zhang train ResNets), 2,000 subset networks "
                          "per run"},
    },
    paper_dataset="cifar10",
    claims=paper_claims.MEMORIZATION_SCORES_CLAIMS,
    description="Memorization and C-scores are estimated from the networks' 0/1 correctness on each training "
                "example (with the label trained on); the full run beside them is the run of the same "
                "configuration on the whole training set.",
))


# -- The factorial study: architecture x optimizer x batch size x input x regularization, over seeds ----------------
# Every axis crossed with every other (granulated tau needs runs that differ in one axis only); the input and the
# label noise are one axis, a run taking one randomization. Quick: the paper's two MLPs on Fig. 1's quick data, so
# that the MLP 1x512's SGD, batch-128, no-regularization runs of seed 0 on true labels, p = 0.4 and random labels
# are fig1bc's own (same run ids, reused).
FACTORS_DATA = ({"corruption": "true-labels"}, {"corruption": "partial-labels", "p": 0.4},
                {"corruption": "random-labels"}, {"corruption": "shuffled-pixels"}, {"corruption": "random-pixels"},
                {"corruption": "gaussian"})
FACTORS_GRID = {  # per scale: architectures, (small, large) batch, randomizations, seeds
    "smoke": (("mlp-1x512",), (10, 40), FACTORS_DATA[:1] + FACTORS_DATA[2:3], 1),
    "quick": (("mlp-1x512", "mlp-3x512"), (32, 128), FACTORS_DATA, 2),
    "paper": (FIG1BC_MODELS + ("mlp-3x512",), (128, 5000), FACTORS_DATA, 2),
}
FACTORS_OPTIMIZERS = ("sgd", "adam")


def _factors_rows(scale: str) -> tuple[dict, ...]:
    models, batches, data, seeds = FACTORS_GRID[scale]
    decays = (0.0,) if scale == "smoke" else (0.0, WEIGHT_DECAY)
    return tuple({"model": m, "optimizer": o, "batch_size": b, "weight_decay": wd, **d, "seed_offset": s}
                 for m in models for o in FACTORS_OPTIMIZERS for b in batches for d in data for wd in decays
                 for s in range(seeds))


register_preset(Preset(
    name="factors", kind="table",
    paper_ref="Section 5's open question; Section 3; Keskar et al. (2017), Im et al. (2016), Jiang et al. (2020)",
    title="The factorial study: the effect of the architecture, optimizer, batch size, input and explicit "
          "regularization on the test error and the generalization gap, and which measure ranks the gap",
    rows=_factors_rows("quick"),
    scale_rows={scale: _factors_rows(scale) for scale in SCALES},
    scales={
        "smoke": {**SMOKE, "note": "the bundled digits, 120 training images, 2 epochs; the MLP 1x512, SGD and Adam, "
                                   f"batches 10 and 40, true and random labels, one seed; {SMOKE_CAVEAT}"},
        "quick": {**FIG1_QUICK,
                  "note": "500 Fashion-MNIST training images, 500 test images, stop at 100% training accuracy or "
                          "150 epochs; the full grid: MLP 1x512 and 3x512 x SGD and Adam x batches 32 and 128 x "
                          "six inputs (true, labels p = 0.4, random labels, shuffled pixels, random pixels, "
                          "Gaussian) x weight decay 0 and 5e-4 x 2 seeds (192 runs)"},
        "paper": {**FIG1_PAPER, "note": "CIFAR-10, the paper's models and MLP 3x512, batches 128 and 5,000 (10%, as "
                                        "Keskar et al.), the full grid over 2 seeds"},
    },
    claims=paper_claims.FACTORS_CLAIMS,
    description="Each factor's main effect and two-way interactions on the test error and the gap (an analysis of "
                "variance by statsmodels, partial eta squared); each measure's Kendall tau with the gap, "
                "granulated per axis, its conditional mutual information and worst case over environments. The "
                "learning rate is each optimizer's default for the model (SGD: the paper's; Adam: 0.001).",
))
