"""The configuration of one randomization-test run, its defaults, validation and canonical hash.

Every field has a unit and a meaning (``help``), a type and a constraint. Fields left at ``None`` take the
data set's or the model's default when the config is resolved (:meth:`RunConfig.resolved`): the initial
learning rate is the paper's for the model (Section 2.1: 0.1 for the Inceptions, 0.01 otherwise), the
learning-rate decay and epoch budget are the data set's (the paper's x0.95 per epoch on CIFAR; constant
elsewhere, where the paper's schedule stalls), crop and whitening are the data set's preprocessing.
A run's id hashes its resolved config, less the fields that do not change results (paths, device, speed).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

from .corruptions import CORRUPTIONS, PIXEL_UNITS, check_p
from .data.catalogue import DATASETS, dataset_info
from .data.preprocess import WHITENINGS
from .data.user_data import dataset_key, dataset_label
from .devices import default_eval_batch_size, resolve_precision
from .errors import ConfigError, ShatteringError
from .files import folder_problem
from .models import (
    MODELS,
    architecture_digest,
    is_builtin,
    is_import_path,
    model_info,
    model_name_for,
    model_names,
)
from .models.arguments import canonical_model_args, model_args_problems
from .optimizers import OPTIMIZERS, SETTING_FIELDS, default_lr, unused_settings
from .probes import canonical_probes
from .tuning import COMPILE_MODES, LAYOUTS, check_threads
from .validation import setting_must_be

UNTIL = ("fit", "epochs")
PRECISIONS = ("auto", "fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")


def _f(default, help: str, *, check=None, hashed: bool = True, choices=None, section: str = "run",
       id_when_set: bool = False, default_help: str | None = None, flag: str | None = None,
       repeat: str | None = None):
    """A field. ``help``: what it is (the option's help, without its default); ``default_help``: its default
    in words, where ``None`` means more than the value; ``section``: the group of options it is listed in
    (data, model, training, regularizers, execution). ``id_when_set``: the field enters the run id only when it
    differs from its default, so a field added after records exist leaves the ids (and folders) of every
    earlier run unchanged. ``flag``: how the command line spells it (default: ``--field-name``; "" for a field
    that is filled in, never typed). ``repeat``: the flag is repeatable, its values a list (the metavar)."""
    return field(default=default, metadata={"help": help, "check": check, "hashed": hashed, "choices": choices,
                                             "section": section, "id_when_set": id_when_set,
                                             "default_help": default_help, "flag": flag, "repeat": repeat})


_positive = (lambda x: x > 0, "positive")
_nonnegative = (lambda x: x >= 0, "zero or positive")
# torch.manual_seed takes [0, 2**64); numpy's SeedSequence (the data seed) any integer >= 0.
_seed = (lambda x: 0 <= x < 2**64, "an integer in [0, 2**64 - 1]")
# Learning rate and weight decay enter float32 arithmetic: beyond float32's largest value the optimizer fails.
_FLOAT32_MAX = 3.4028234663852886e38
_positive_f32 = (lambda x: 0 < x <= _FLOAT32_MAX, "positive and at most 3.4e38 (float32)")
_nonnegative_f32 = (lambda x: 0 <= x <= _FLOAT32_MAX, "zero or positive and at most 3.4e38 (float32)")
_unit_interval = (lambda x: 0 <= x < 1, "in [0, 1)")


@dataclass(frozen=True)
class RunConfig:
    """One run: a paper model trained with the paper's procedure on a (randomized) data set."""

    # -- data ------------------------------------------------------------------------------------------
    # A name, or the user's own data: the path of an .npz file or image folder (kept absolute), or a
    # shattering.ArrayData (kept as the name it is registered under); data/user_data.py.
    dataset: str = _f("digits", f"data set: a name ({', '.join(DATASETS)}) or the path of an .npz file "
                                "(x_train, y_train, x_test, y_test) or of an image folder (train/<class>/<image>, "
                                "test/<class>/<image>)",
                      check=(lambda x: x in DATASETS, f"a data set name ({', '.join(DATASETS)}) or the path of an "
                                                      ".npz file or image folder"), section="data")
    train_size: int | None = _f(None, "training examples to use (a stratified subset)", default_help="all",
                                check=_positive, section="data")
    test_size: int | None = _f(None, "test examples to use (a stratified subset)", default_help="all",
                               check=_positive, section="data")
    data_seed: int = _f(0, "seed of the corruption and of the subsets (independent of --seed)", check=_nonnegative,
                        section="data")
    crop: int | None = _f(None, "centre crop size in pixels (0: none)", default_help="the data set's, 28 for CIFAR",
                          check=_nonnegative, section="data")
    whitening: str | None = _f(None, "per-image | per-channel | none", default_help="the data set's",
                               choices=WHITENINGS, section="data")
    corruption: str = _f("true-labels", "randomization of Section 2.1", choices=CORRUPTIONS, section="data")
    p: float | None = _f(None, "corruption probability: share of labels redrawn / images randomized",
                         default_help="1 for random-labels and the pixel corruptions; partial-labels needs it",
                         section="data")
    exclude_true_class: bool = _f(False, "redraw a corrupted label among the other classes only (noise = p)",
                                  section="data")
    corrupt_test_labels: bool = _f(False, "corrupt the test labels too (test accuracy is always also "
                                          "reported against the clean labels)", section="data")
    pixel_unit: str = _f("position", "what a pixel permutation moves: spatial positions (channels together) "
                                     "or single values", choices=PIXEL_UNITS, section="data")
    data_dir: str | None = _f(None, "folder holding the data set's files", default_help="cache, system, download",
                              hashed=False, section="data")
    image_size: int | None = _f(None, "side in pixels of the square images a streamed image-folder data set "
                                      "(imagenet) is resized and cropped to",
                                default_help="the data set's, 299 as Inception V3", check=_positive, section="data",
                                id_when_set=True)
    data_digest: str | None = _f(None, "digest of the arrays of a data set given by path or arrays; the data "
                                       "must match it", default_help="filled in from the data", section="data",
                                 id_when_set=True)
    # -- model -----------------------------------------------------------------------------------------
    model: str = _f("mlp-1x512", "architecture: a built-in name (" + ", ".join(model_names()) + ") or "
                                 "package.module:factory for your own (called as factory(input_shape, num_classes, "
                                 "**model_args), with dropout=... where it takes one; returns an nn.Module)",
                      section="model")
    model_args: str | None = _f(None, "keyword argument of the model's factory, KEY=VALUE (repeatable; TOML: "
                                      "model_args = {key = value})", section="model", id_when_set=True,
                                flag="--model-arg", repeat="KEY=VALUE")
    model_digest: str | None = _f(None, "SHA-256 prefix of a user model's parameter names and shapes (filled in "
                                        "when the config is resolved, so different models never share a record)",
                                  section="model", id_when_set=True, flag="")
    dropout: float = _f(0.0, "dropout probability before the output layer (the paper: off)",
                        check=(lambda x: 0 <= x < 1, "in [0, 1)"), section="model")
    aux_logits: bool = _f(False, "inception-v3 only: train its auxiliary classifier too (loss + 0.4 x its loss; "
                                    "images of at least 299 pixels, 75 without it)",
                          section="model", id_when_set=True)
    # -- optimization (Section 2.1: SGD, momentum 0.9, lr x0.95 per epoch, batch 128) -----------------------
    lr: float | None = _f(None, "initial learning rate",
                          default_help="the optimizer's: for sgd and nesterov the paper's, 0.1 Inception / 0.01 "
                                       "others; 1e-3 adam, adamw, rmsprop; 1e-2 adagrad; 1.0 adadelta",
                          check=_positive_f32, section="training")
    lr_decay: float | None = _f(None, "learning rate multiplier per epoch",
                                default_help="the data set's; the paper's 0.95 on CIFAR, 1.0 elsewhere",
                                check=(lambda x: 0 < x <= 1, "in (0, 1]"), section="training")
    optimizer: str = _f("sgd", "the optimizer: sgd (the paper's), nesterov, adam, adamw, rmsprop, "
                               "adagrad, adadelta; in the run id when not sgd", choices=tuple(OPTIMIZERS),
                        section="training", id_when_set=True)
    momentum: float = _f(0.9, "momentum of sgd and nesterov", check=(lambda x: 0 <= x < 1, "in [0, 1)"),
                         section="training")
    beta1: float = _f(0.9, "adam and adamw: decay of the gradient's running mean", check=_unit_interval,
                      section="training", id_when_set=True)
    beta2: float = _f(0.999, "adam and adamw: decay of the squared gradient's running mean", check=_unit_interval,
                      section="training", id_when_set=True)
    eps: float | None = _f(None, "the denominator's epsilon of adam, adamw, rmsprop, adagrad and adadelta",
                           default_help="the optimizer's: 1e-8 adam, adamw, rmsprop; 1e-10 adagrad; 1e-6 adadelta",
                           check=_positive_f32, section="training", id_when_set=True)
    alpha: float = _f(0.99, "rmsprop: decay of the squared gradient's running mean", check=_unit_interval,
                      section="training", id_when_set=True)
    rho: float = _f(0.9, "adadelta: decay of the running means", check=_unit_interval, section="training",
                    id_when_set=True)
    batch_size: int = _f(128, "examples per SGD step", check=_positive, section="training")
    epochs: int | None = _f(None, "epoch budget", default_help="the data set's", check=_positive, section="training")
    until: str = _f("fit", "fit: stop at 100%% training accuracy or at the budget; epochs: train the whole budget",
                    choices=UNTIL, section="training")
    seed: int = _f(0, "seed of the initialization, batch order and augmentation", check=_seed, section="training")
    # -- explicit regularizers (Section 3; all off by default) ---------------------------------------------
    weight_decay: float = _f(0.0, "L2 coefficient on the weights (not biases or batch-norm offsets)",
                             check=_nonnegative_f32, section="regularizers")
    random_crop: bool = _f(False, "random crop: CIFAR takes a random crop of the full 32x32 image (centre crop "
                                  "at test); other data is padded by --crop-padding and cropped; imagenet takes "
                                  "a random resized crop plus a left-right flip (Table 2's data augmentation)",
                           section="regularizers")
    crop_padding: int = _f(2, "padding for the pad-and-crop random crop", check=_nonnegative,
                           section="regularizers")
    flip_rotate: bool = _f(False, "random left-right flip plus a random rotation (Appendix E)",
                           section="regularizers")
    max_rotation: float = _f(25.0, "largest rotation in degrees for --flip-rotate", check=_nonnegative,
                             section="regularizers")
    # -- measurement and execution ------------------------------------------------------------------------
    log_every: int = _f(10, "record the training loss every this many steps", check=_positive,
                        section="execution")
    eval_every: int = _f(20, "evaluate the whole training and test sets in eval mode every this many epochs (and "
                             "at the budget's last epoch, and at every epoch a fit probe cannot rule out fit: "
                             "the fit epoch is the one evaluating every epoch finds; in the run id when not "
                             "the default, since the curves a record holds depend on it)", check=_positive,
                         section="execution", id_when_set=True)
    precision: str = _f("auto", "auto: bf16 autocast where the processor has native bf16, else fp32",
                        choices=PRECISIONS, section="execution")
    device: str = _f("auto", "auto takes a GPU when present", choices=DEVICES, hashed=False, section="execution")
    eval_batch_size: int | None = _f(None, "examples per evaluation batch",
                                     default_help="1024; on a CPU 256 for convolutional models, measured faster",
                                     check=_positive, hashed=False, section="execution")
    workers: int | None = _f(None, "processes that decode images of a streamed data set (imagenet)",
                             default_help="min(8, CPU count)", check=_nonnegative, hashed=False, section="execution")
    layout: str = _f("auto", "memory format of a convolutional net's tensors; auto: the faster on this machine, "
                             "measured once and cached (not in the run id: it changes only how float sums are "
                             "ordered)", choices=LAYOUTS, hashed=False, section="execution")
    threads: str = _f("auto", "CPU threads of the training process (N or auto: the fastest count measured once "
                              "and cached, within the cores other shattering processes leave free; not in the "
                              "run id)",
                      check=(check_threads, "auto or a positive whole number"), hashed=False, section="execution")
    compile: str = _f("off", "torch.compile the training step: on, off, or auto: where it measured faster here over "
                             "the run's step budget, its compile time included (not in the run id)",
                      choices=COMPILE_MODES, hashed=False, section="execution")
    measures: str = _f("default", "complexity measures the run computes when it ends: default (every measure but "
                                  "the expensive ones), cheap, all, none, or measure names separated by commas "
                                  "(`shatter measures --help` lists them; not in the run id)",
                       check=(lambda x: re.fullmatch(r"\s*[a-z][a-z0-9_]*(\s*,\s*[a-z][a-z0-9_]*)*\s*", x) is not None,
                              "default, cheap, all, none or measure names separated by commas"),
                       hashed=False, section="execution")
    sync_bn: bool = _f(False, "under torchrun: batch-norm statistics over the whole global batch (SyncBatchNorm) "
                              "instead of each process's shard", section="execution", id_when_set=True)
    probes: str | None = _f(None, "a probe called during training, NAME[:KEY=VALUE...] (repeatable; TOML: probes = "
                                  "[...]): snapshots, activations, tensorboard or one registered; what it writes goes "
                                  "in the record's probes/ folder (not in the run id)",
                            hashed=False, section="execution", flag="--probe", repeat="NAME[:KEY=VALUE]")
    out: str = _f("runs", "folder that holds one record folder per run", hashed=False, section="execution")

    # ------------------------------------------------------------------------------------------------
    def __post_init__(self):
        try:  # the user's data (a path, ArrayData) is registered and named by its catalogue name
            object.__setattr__(self, "dataset", dataset_key(self.dataset))
        except ShatteringError as exc:
            raise ConfigError(str(exc)) from None
        if not isinstance(self.model, str):  # a factory or ModelInfo object: the name it runs under
            object.__setattr__(self, "model", model_name_for(self.model))
        object.__setattr__(self, "model_args", canonical_model_args(self.model_args))
        object.__setattr__(self, "probes", canonical_probes(self.probes))
        if isinstance(self.threads, int) and not isinstance(self.threads, bool):  # TOML: threads = 2
            object.__setattr__(self, "threads", str(self.threads))
        problems = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            problem = _check_field(f, value)
            if problem:
                problems.append(problem)
        if not problems:
            try:
                check_p(self.corruption, self.p)
            except ConfigError as exc:
                problems.append(str(exc))
            if self.model not in MODELS and not is_import_path(self.model):
                problems.append(setting_must_be("model", f"one of {', '.join(model_names())}, or "
                                                "package.module:factory for a model of your own", self.model))
            else:
                try:
                    info = model_info(self.model)  # a registered name, or an import path that must import
                except ConfigError as exc:
                    problems.append(str(exc))
                else:
                    problems += model_args_problems(self.model, info.factory, self.model_kwargs(), self.dropout)
            problems += _streaming_problems(self)
            problems += _optimizer_problems(self)
            out = folder_problem(self.out)  # refused now, before a sweep reports each of its runs failing
            problems += [out] if out else []
            problems += _digest_problems(self)
        if problems:
            raise ConfigError(" ".join(problems))

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "config") -> RunConfig:
        """Build from a mapping (a TOML table, JSON); names may use '-' or '_'; unknown keys are refused."""
        known = {f.name for f in dataclasses.fields(cls)}
        clean, unknown = {}, []
        for key, value in values.items():
            name = str(key).replace("-", "_")
            (clean.__setitem__(name, value) if name in known else unknown.append(str(key)))
        if unknown:
            raise ConfigError(unknown_keys(unknown, known, where))
        if where == "config":
            return cls(**clean)
        try:
            return cls(**clean)
        except ConfigError as exc:  # say where the bad value was written
            raise ConfigError(f"{where}: {exc}") from None

    @classmethod
    def from_toml(cls, path: str | Path) -> RunConfig:
        path = Path(path)
        try:
            values = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"Config file {path} does not exist.") from None
        except OSError as exc:  # a folder, no permission, ...
            raise ConfigError(f"Could not read config file {path} ({exc.strerror or exc}).") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Config file {path} is not valid TOML ({exc}).") from None
        if "run" in values:  # the settings in a [run] table, and nothing beside it that would be ignored
            others = sorted(k for k in values if k != "run")
            if not isinstance(values["run"], dict) or others:
                raise ConfigError(f"Config file {path} must hold its settings either at the top or in one [run] "
                                  f"table; got 'run' = {type(values['run']).__name__}"
                                  + (f" beside {', '.join(repr(k) for k in others)}." if others else "."))
            values = values["run"]
        return cls.from_dict(values, where=str(path))

    def replace(self, **changes) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # -- defaults ------------------------------------------------------------------------------------
    def resolved(self) -> RunConfig:
        """Fill every ``None`` default from the model and data set, and resolve ``precision``."""
        info = dataset_info(self.dataset)
        r = self.replace(
            image_size=self.image_size if self.image_size is not None else info.extra.get("image_size"),
            data_digest=self.data_digest or info.extra.get("digest"),
            lr=self.lr if self.lr is not None else default_lr(self.optimizer, model_info(self.model).lr),
            lr_decay=self.lr_decay if self.lr_decay is not None else info.default_lr_decay(self.model),
            epochs=self.epochs if self.epochs is not None else info.epochs,
            crop=self.crop if self.crop is not None else (info.crop or 0),
            whitening=self.whitening if self.whitening is not None else info.whitening,
            p=check_p(self.corruption, self.p),
            precision=resolve_precision(self.precision, self.device),
            eval_batch_size=self.eval_batch_size or default_eval_batch_size(self.model, self.device),
        )
        if r.model_digest is None and (r.model_args or not is_builtin(r.model)):  # builds the model once: a bad
            # factory or output shape is refused here, before any record exists
            r = r.replace(model_digest=architecture_digest(r.model, r.input_shape(), info.num_classes,
                                                           r.model_kwargs()))
        return r

    def model_kwargs(self) -> dict[str, Any]:
        """The keyword arguments a user model's factory gets (``model_args`` as a dict)."""
        return json.loads(self.model_args) if self.model_args else {}

    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images the model sees: the data set's, centre-cropped (or resized, image folders)."""
        r = self.resolved() if self.crop is None else self
        info = dataset_info(self.dataset)
        if info.kind == "image-folder":
            return (info.shape[0], r.image_size, r.image_size)
        side = r.crop
        return (info.shape[0], side, side) if side else tuple(info.shape)

    def known_train_size(self) -> int | None:
        """The training images of the run before its data loads: ``train_size``, else the catalogue's size (None
        where the data set's size is known only once it loads)."""
        try:
            return self.train_size or dataset_info(self.dataset).n_train
        except ShatteringError:
            return None

    def step_batch(self, n_train: int | None = None) -> int:
        """The examples of one training step: ``batch_size``, or the whole training set where it is smaller
        (``n_train``: its size where the data is loaded; else :meth:`known_train_size`)."""
        n = n_train if n_train is not None else self.known_train_size()
        return min(self.batch_size, int(n)) if n else self.batch_size

    def hashed_dict(self) -> dict[str, Any]:
        """The fields that define the run's results (the resolved config minus paths and devices)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata.get("hashed", True)}

    def run_id(self) -> str:
        """12 hex digits of SHA-256 over the canonical JSON of the resolved, hashed fields (fields marked
        ``id_when_set`` only when they differ from their default)."""
        r = self.resolved()
        values = {f.name: getattr(r, f.name) for f in dataclasses.fields(r) if f.metadata.get("hashed", True)
                  and not (f.metadata.get("id_when_set") and getattr(r, f.name) == f.default)}
        values["dataset"] = dataset_label(r.dataset)  # a path's label (data_digest covers its contents), not where
        # the file lies; a name is its own label
        canon = json.dumps(values, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:12]

    def run_name(self) -> str:
        """Readable folder name: data set, model, corruption and p, then the run id."""
        r = self.resolved()
        corr = r.corruption if r.corruption in ("true-labels", "random-labels") else f"{r.corruption}-p{r.p:g}"
        model = re.sub(r"[^A-Za-z0-9._-]+", "-", r.model)  # package.module:factory -> package.module-factory
        return f"{dataset_label(r.dataset)}_{model}_{corr}_{self.run_id()}"

    def run_dir(self) -> Path:
        return Path(os.path.expanduser(self.out)) / self.run_name()


# What other tools call some settings: an unknown key among these is answered with the name here.
ALIASES = {"learning_rate": "lr", "lr0": "lr", "decay": "lr_decay", "gamma": "lr_decay", "n_epochs": "epochs",
           "num_epochs": "epochs", "max_epochs": "epochs", "batch": "batch_size", "bs": "batch_size",
           "wd": "weight_decay", "l2": "weight_decay", "label_noise": "p", "corrupt_prob": "p", "data": "dataset",
           "arch": "model", "architecture": "model", "augment": "random_crop", "output": "out", "out_dir": "out"}


def unknown_keys(unknown: list[str], known: set[str], where: str) -> str:
    """The one sentence refusing unknown keys: each with the known key it most likely means, else every known key."""
    guesses = {}
    for key in unknown:
        name = key.replace("-", "_").lower()
        near = [ALIASES[name]] if name in ALIASES else difflib.get_close_matches(name, known, 1, 0.6)
        if near:
            guesses[key] = near[0]
    text = f"Unknown key(s) {', '.join(repr(k) for k in sorted(unknown))} in {where}"
    if len(guesses) == len(unknown):
        return text + " (did you mean " + ", ".join(f"{v!r} for {k!r}" if len(unknown) > 1 else repr(v)
                                                      for k, v in guesses.items()) + "?)."
    return text + f"; known keys: {', '.join(sorted(known))}."


def _streaming_problems(cfg: RunConfig) -> list[str]:
    """Settings that only some data sets or models take (streamed image folders, Inception V3)."""
    problems = []
    streamed = dataset_info(cfg.dataset).kind == "image-folder"
    if cfg.image_size is not None and not streamed:
        problems.append(f"--image-size applies to image-folder data sets (imagenet); {cfg.dataset} is resized "
                        "by --crop.")
    if cfg.aux_logits and cfg.model != "inception-v3":
        problems.append(f"--aux-logits applies to inception-v3 only; got model {cfg.model}.")
    side = cfg.image_size or dataset_info(cfg.dataset).extra.get("image_size")
    from .models.inception_v3 import MIN_SIZE_AUX  # here: that module imports torch, and `shatter --help` this one

    if cfg.aux_logits and streamed and side is not None and side < MIN_SIZE_AUX:
        problems.append(f"--aux-logits needs images of at least {MIN_SIZE_AUX} pixels (Inception V3's auxiliary "
                        f"classifier); got --image-size {side}: raise it, or leave --aux-logits out (75 pixels "
                        "suffice without it).")
    if streamed:
        if cfg.corruption not in ("true-labels", "partial-labels", "random-labels"):
            problems.append(f"{cfg.dataset} is streamed from disk and takes label corruptions only (true-labels, "
                            f"partial-labels, random-labels); got {cfg.corruption}.")
        if cfg.flip_rotate:
            problems.append(f"--flip-rotate is not available for {cfg.dataset}; its augmentation is --random-crop "
                            "(random resized crop plus a left-right flip).")
        if cfg.whitening == "per-channel":
            problems.append(f"{cfg.dataset} takes --whitening per-image or none (per-channel statistics of a "
                            "streamed data set are not computed).")
        if cfg.crop:
            problems.append(f"--crop does not apply to {cfg.dataset}; set the image side with --image-size.")
    return problems


def _optimizer_problems(cfg: RunConfig) -> list[str]:
    """A setting of another optimizer than the run's, changed from its default: it would be ignored."""
    defaults = {f.name: f.default for f in dataclasses.fields(cfg) if f.name in SETTING_FIELDS}
    unused = unused_settings(cfg.optimizer, {f: getattr(cfg, f) for f in SETTING_FIELDS}, defaults)
    if not unused:
        return []
    reads = OPTIMIZERS[cfg.optimizer].settings
    return [f"--{', --'.join(unused)} {'does' if len(unused) == 1 else 'do'} not apply to optimizer {cfg.optimizer}, "
            f"which reads {', '.join('--' + r for r in reads) or 'no other setting'}: leave "
            f"{'it' if len(unused) == 1 else 'them'} out or choose an optimizer that reads "
            f"{'it' if len(unused) == 1 else 'them'}."]


def _digest_problems(cfg: RunConfig) -> list[str]:
    """A ``data_digest`` that the data set does not have (its files changed since), or one for a built-in data set."""
    if cfg.data_digest is None:
        return []
    digest = dataset_info(cfg.dataset).extra.get("digest")
    if digest is None:
        return [f"--data-digest applies to data sets given by path or arrays; {cfg.dataset} is a built-in one."]
    if digest != cfg.data_digest:
        return [f"The data of {cfg.dataset} have digest {digest}, not the data_digest {cfg.data_digest} the config "
                "names: the files changed since; restore them, or leave data_digest out to run on them as they are."]
    return []


def _type_ok(f: dataclasses.Field, value) -> bool:
    kind = f.type if isinstance(f.type, str) else str(f.type)
    optional = "None" in kind
    if value is None:
        return optional
    if kind.startswith("bool"):
        return isinstance(value, bool)
    if kind.startswith("int"):
        return isinstance(value, int) and not isinstance(value, bool)
    if kind.startswith("float"):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind.startswith("str"):
        return isinstance(value, str)
    return True


def _type_name(f: dataclasses.Field) -> str:
    kind = f.type if isinstance(f.type, str) else str(f.type)
    base = kind.split("|")[0].strip()
    return {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}.get(base, base)


def field_choices(f: dataclasses.Field) -> tuple[str, ...] | None:
    """The values a field takes, when it takes a fixed set: a tuple, or a function of the catalogues (models
    and data sets registered at run time count too)."""
    choices = f.metadata.get("choices")
    return tuple(choices()) if callable(choices) else choices


def _check_field(f: dataclasses.Field, value) -> str | None:
    if not _type_ok(f, value):
        return setting_must_be(f.name, _type_name(f), value)
    if value is None:
        return None
    choices = field_choices(f)
    if choices and value not in choices:
        return setting_must_be(f.name, f"one of {', '.join(choices)}", value)
    if isinstance(value, float) and not math.isfinite(value):
        return setting_must_be(f.name, "a finite number", value)
    check = f.metadata.get("check")
    if check is not None and not check[0](value):
        return setting_must_be(f.name, check[1], value)
    return None
