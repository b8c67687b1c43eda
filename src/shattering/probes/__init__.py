"""Probes: a public way to look at a run while it trains.

A probe is called at the end of the epochs it asks for, by the single-run trainer, by the packed trainer (for
each member, with the member's network as a separate module) and under torchrun (process 0 only), with a
:class:`RunState`: the run's config, its network, the epoch, the data, the epoch's numbers and the run's
record folder. What it writes goes under ``<run>/probes/<probe name>/``, one file per epoch, written atomically
(:meth:`RunState.write_bytes`), so a run killed and resumed writes the same files an uninterrupted run writes: the
epochs after the checkpoint are trained again, deterministically, and their files written again. A probe must
not draw from the run's random generators or change its network (the built-in ones evaluate in eval mode
under ``torch.no_grad`` and put the network back in the mode it was in).

Which epochs: ``every=K`` (0, K, 2K, ...), ``log=N`` (epoch 0 and about N epochs spaced evenly in log scale over
the budget, for trajectories whose early epochs move most), ``epochs=1/5/10`` (those), and always the epoch the
run ends at (fit, budget or divergence). A probe is named on the command line as ``--probe
NAME[:KEY=VALUE...]`` (repeatable: ``--probe snapshots:log=12 --probe activations:every=5:examples=500``), in
TOML as ``probes = ["snapshots:log=12"]`` and in Python as ``probes=[...]`` of those strings.

Built-in probes: ``snapshots`` (the network's weights), ``activations`` (every layer's representation of a fixed,
seeded sample of training examples), ``information`` (each layer's mutual information with the input and the
labels: the information plane) and ``tensorboard`` (the epoch's numbers as TensorBoard scalars).
:func:`register_probe` adds one (a subclass of :class:`Probe`). A probe may also act after every training step
(:meth:`Probe.on_step_end`): the core lease of :mod:`shattering.lease` reaches the loop that way.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .._lazy import lazy_import
from ..errors import ConfigError
from ..files import atomic_write_bytes

torch = lazy_import("torch")  # imported when a probe runs: the config reads this module, and loads no torch
nn = lazy_import("torch.nn")

PROBES_FOLDER = "probes"
SCHEDULE_KEYS = ("every", "log", "epochs")


@dataclass
class RunState:
    """What a probe sees at the end of an epoch. ``epoch``: epochs done (0: the network as initialized);
    ``metrics``: the epoch's evaluation (:func:`shattering.train.evaluate.metrics_from_predictions`) where it ran,
    else None; ``running``: the running training accuracy and loss of the epoch (empty at epoch 0); ``status``:
    None while the run goes on, else how it ended (``fit``, ``not-fit``, ``diverged``, ...); ``folder``: the run's
    record folder; ``data``: its :class:`~shattering.data.dataset.LabelledSplits` (labels as trained)."""

    config: Any
    model: nn.Module
    epoch: int
    data: Any
    folder: Path
    metrics: dict | None
    running: dict
    status: str | None
    device: torch.device

    def output(self, probe: str) -> Path:
        """The folder of ``probe``'s files in this run's record (made on first use)."""
        path = self.folder / PROBES_FOLDER / probe
        path.mkdir(parents=True, exist_ok=True)
        return path

    def epoch_file(self, probe: str, suffix: str) -> Path:
        """``<run>/probes/<probe>/epoch-0007<suffix>``: the file of this epoch."""
        return self.output(probe) / f"epoch-{self.epoch:04d}{suffix}"

    def write_bytes(self, probe: str, suffix: str, data: bytes) -> Path:
        """Write this epoch's file of ``probe`` atomically (a reader never sees half of it); its path."""
        path = self.epoch_file(probe, suffix)
        atomic_write_bytes(path, data)
        return path


class Probe:
    """A look at a run during training. Subclasses set ``name``, may set ``defaults`` (their schedule and
    options when the user names none) and override :meth:`on_epoch_end` and/or :meth:`on_step_end`.
    ``options``: the ``KEY=VALUE`` pairs the user gave besides the schedule (strings)."""

    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, str]] = {"every": "1"}
    options_taken: ClassVar[tuple[str, ...]] = ()  # option keys besides the schedule's

    def __init__(self, **options: str):
        unknown = sorted(set(options) - set(SCHEDULE_KEYS) - set(self.options_taken))
        if unknown:
            raise ConfigError(f"The probe {self.name!r} takes {', '.join(SCHEDULE_KEYS + self.options_taken)}; got "
                              f"{', '.join(unknown)}.")
        given = {k: v for k, v in options.items() if k in SCHEDULE_KEYS}
        if len(given) > 1:
            raise ConfigError(f"The probe {self.name!r} takes one schedule (every=, log= or epochs=); got "
                              f"{', '.join(given)}.")
        self.schedule = given or {k: v for k, v in self.defaults.items() if k in SCHEDULE_KEYS}
        self.options = {k: v for k, v in {**self.defaults, **options}.items() if k not in SCHEDULE_KEYS}
        _check_schedule(self.name, self.schedule)

    def epochs(self, budget: int) -> set[int]:
        """The epochs (0 = before training) this probe is called at within a budget of ``budget`` epochs, besides
        the one the run ends at."""
        (key, value), = self.schedule.items() if self.schedule else (("epochs", ""),)
        if key == "every":
            return set(range(0, budget + 1, int(value)))
        if key == "log":
            n = int(value)
            return {0} | {int(round(x)) for x in np.geomspace(1, budget, n)} if budget >= 1 else {0}
        return {int(e) for e in value.split("/") if e}

    def wants(self, epoch: int, budget: int, ended: bool) -> bool:
        return ended or epoch in self.epochs(budget)

    def on_epoch_end(self, state: RunState) -> None:
        """Look at the run after an epoch it asked for (see the module docstring for what it may not do)."""

    def on_step_end(self) -> None:
        """Act after each training step (cheap: it runs in the step loop)."""

    def on_resume(self, state: RunState) -> None:
        """The run resumes after epoch ``state.epoch`` (its files of later epochs will be written again)."""

    def close(self) -> None:
        """The run's training ended (normally or not)."""


def _check_schedule(name: str, schedule: dict[str, str]) -> None:
    for key, value in schedule.items():
        parts = value.split("/") if key == "epochs" else [value]
        if not all(p.isdigit() for p in parts) or (key != "epochs" and int(value) < 1):
            raise ConfigError(f"The probe {name!r} takes {key}= as "
                              + ("epochs separated by '/' (epochs=1/5/10)" if key == "epochs"
                                 else "a positive whole number") + f"; got {key}={value!r}.")


PROBES: dict[str, type[Probe]] = {}


def register_probe(cls: type[Probe]) -> type[Probe]:
    """Make the :class:`Probe` subclass ``cls`` selectable by its ``name`` (usable as a class decorator). A name
    already taken is refused."""
    if not (isinstance(cls, type) and issubclass(cls, Probe)) or not cls.name or not cls.name.isidentifier():
        raise ConfigError("register_probe takes a subclass of shattering.Probe whose 'name' is a Python name; got "
                          f"{cls!r}.")
    if cls.name in PROBES and PROBES[cls.name] is not cls:
        raise ConfigError(f"A probe named {cls.name!r} is registered already; choose another name.")
    PROBES[cls.name] = cls
    return cls


def parse_probe(spec: str) -> tuple[str, dict[str, str]]:
    """``"NAME[:KEY=VALUE...]"`` as (name, options)."""
    name, *pairs = str(spec).strip().split(":")
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"A probe is NAME[:KEY=VALUE...] (snapshots:log=12); got {spec!r}.")
        options[key.strip()] = value.strip()
    return name.strip(), options


def build_probes(specs: Sequence[str]) -> list[Probe]:
    """The probes ``specs`` name (``"NAME[:KEY=VALUE...]"`` each); an unknown name or option refused in one
    sentence."""
    out = []
    for spec in specs:
        name, options = parse_probe(spec)
        if name not in PROBES:
            raise ConfigError(f"Unknown probe {name!r}; the probes are {', '.join(sorted(PROBES))} (or register "
                              "your own with shattering.register_probe).")
        out.append(PROBES[name](**options))
    return out


class ProbeSet:
    """The probes of one run and when to call them; what both trainers hold."""

    def __init__(self, probes: Sequence[Probe], budget: int):
        self.probes, self.budget = list(probes), budget
        self.step_hooks: list[Callable[[], None]] = [p.on_step_end for p in self.probes
                                                     if type(p).on_step_end is not Probe.on_step_end]

    def wanted(self, epoch: int, ended: bool) -> list[Probe]:
        return [p for p in self.probes if type(p).on_epoch_end is not Probe.on_epoch_end
                and p.wants(epoch, self.budget, ended)]

    def epoch_end(self, state: Callable[[], RunState], epoch: int, ended: bool) -> None:
        """Call the probes that want ``epoch``; ``state`` builds the :class:`RunState` (only where one does)."""
        wanted = self.wanted(epoch, ended)
        if not wanted:
            return
        built = state()
        for probe in wanted:
            probe.on_epoch_end(built)

    def resume(self, state: RunState) -> None:
        for probe in self.probes:
            probe.on_resume(state)

    def close(self) -> None:
        for probe in self.probes:
            probe.close()


def _bytes_of(save: Callable[[io.BytesIO], None]) -> bytes:
    buf = io.BytesIO()
    save(buf)
    return buf.getvalue()


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """``arrays`` as the bytes of an .npz file (``np.load`` reads it) that depend on the arrays alone: numpy's
    own ``savez`` stamps each member with the time of writing, so a resumed run's file would differ from an
    uninterrupted run's in those bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
            z.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue())
    return buf.getvalue()


class _EvalMode:
    """The network in eval mode, without gradients, for the block; its mode restored after."""

    def __init__(self, model: nn.Module):
        self.model, self.was = model, model.training

    def __enter__(self):
        self.grad = torch.is_grad_enabled()
        torch.set_grad_enabled(False)
        self.model.eval()
        return self.model

    def __exit__(self, *exc):
        self.model.train(self.was)
        torch.set_grad_enabled(self.grad)


@register_probe
class Snapshots(Probe):
    """The network's parameters and buffers (its ``state_dict``, on the CPU) at the chosen epochs, as
    ``probes/snapshots/epoch-0007.pt`` (``torch.load`` it): trajectories, and the end points of loss landscapes
    (Goodfellow, Vinyals and Saxe, ICLR 2015; Li et al., NeurIPS 2018). Default: ``log=12``."""

    name = "snapshots"
    defaults = {"log": "12"}

    def on_epoch_end(self, state: RunState) -> None:
        weights = {k: v.detach().to("cpu", copy=True) for k, v in state.model.state_dict().items()}
        state.write_bytes(self.name, ".pt", _bytes_of(lambda buf: torch.save(weights, buf)))


def activation_sample(n_train: int, examples: int, seed: int = 0) -> torch.Tensor:
    """The training examples the ``activations`` probe uses: the first ``examples`` of a permutation drawn with
    ``seed`` (a generator of its own: the run's random state is not touched), in increasing order."""
    order = torch.randperm(n_train, generator=torch.Generator().manual_seed(seed))
    return order[:min(examples, n_train)].sort().values


def sampled(probe: Probe, state: RunState) -> tuple[torch.Tensor, torch.Tensor]:
    """The indices and images (float32, on the run's device) of the probe's seeded sample of training examples
    (:func:`activation_sample`, options ``examples`` and ``seed``); a data set streamed from disk is refused."""
    data = state.data
    if not hasattr(data, "x_train"):
        raise ConfigError(f"The probe {probe.name!r} needs a data set held in memory; {state.config.dataset} is "
                          "streamed from disk.")
    idx = activation_sample(len(data.y_train), int(probe.options["examples"]), int(probe.options["seed"]))
    return idx, torch.from_numpy(np.ascontiguousarray(data.x_train[idx.numpy()])).to(state.device, torch.float32)


@register_probe
class Activations(Probe):
    """Every layer's representation of a fixed, seeded sample of training examples, in eval mode and fp32, as
    ``probes/activations/epoch-0007.npz``: each layer's representation (:func:`layer_outputs`), named by the layer,
    and ``output`` (the logits); with ``indices`` (the examples' positions in the training set), ``labels`` (as
    trained) and ``true_labels``. What information-plane estimators take (Shwartz-Ziv and Tishby 2017; Saxe et
    al., ICLR 2018). Options: ``examples`` (default 1000), ``seed`` (of the sample, default 0). Default schedule:
    ``log=20``. Data sets streamed from disk (ImageNet) are not held in memory: refused there."""

    name = "activations"
    defaults = {"log": "20", "examples": "1000", "seed": "0"}
    options_taken = ("examples", "seed")

    def __init__(self, **options: str):
        super().__init__(**options)
        for key in self.options_taken:
            if not self.options[key].isdigit() or (key == "examples" and int(self.options[key]) < 1):
                raise ConfigError(f"The probe 'activations' takes {key}= as a whole number"
                                  f"{' of at least 1' if key == 'examples' else ''}; got {self.options[key]!r}.")

    def on_epoch_end(self, state: RunState) -> None:
        data = state.data
        idx, x = sampled(self, state)
        seen: dict[str, list[torch.Tensor]] = {}
        with _EvalMode(state.model) as model:
            for start in range(0, len(x), 256):
                for name, value in layer_outputs(model, x[start:start + 256]).items():
                    seen.setdefault(name, []).append(value.detach().float().cpu().flatten(1))
        arrays = {("output" if name == "output" else f"layer:{name}"): torch.cat(v).numpy()
                  for name, v in seen.items()}
        arrays["indices"] = idx.numpy()
        arrays["labels"] = np.asarray(data.y_train)[idx.numpy()]
        arrays["true_labels"] = np.asarray(data.y_train_original)[idx.numpy()]
        state.write_bytes(self.name, ".npz", npz_bytes(arrays))


def layer_outputs(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each layer's representation of ``x`` and the ``output``: the model's own ``representations(x)`` where it
    has one (the built-in MLPs, whose layers are products), else for each weighted layer (``nn.Linear``,
    ``nn.Conv*``) but the first its input (the representation the layers below made, after their activation and
    pooling), by the layer's name, caught by forward hooks."""
    if callable(getattr(model, "representations", None)):
        return dict(model.representations(x))
    layers = [(name, m) for name, m in model.named_modules()
              if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))]
    seen: dict[str, torch.Tensor] = {}
    handles = [m.register_forward_pre_hook(lambda module, inputs, name=name: seen.setdefault(name, inputs[0]))
               for name, m in layers[1:]]
    try:
        out = model(x)
    finally:
        for h in handles:
            h.remove()
    return {**seen, "output": out[0] if isinstance(out, tuple) else out}


def load_activations(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of one ``activations`` file: ``layers`` (name -> (examples, features)), ``output``, ``indices``,
    ``labels``, ``true_labels``."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    layers = {k.split(":", 1)[1]: arrays.pop(k) for k in list(arrays) if k.startswith("layer:")}
    return {"layers": layers, **arrays}


@register_probe
class TensorBoard(Probe):
    """The epoch's numbers (training and test accuracy and loss where evaluated, the running ones every epoch)
    as TensorBoard scalars in ``probes/tensorboard/`` (``tensorboard --logdir RUN/probes/tensorboard``), step =
    epoch. A resumed run drops what it wrote after its checkpoint (TensorBoard's ``purge_step``), so the scalars
    are those of an uninterrupted run. Needs the ``tensorboard`` package (``pip install
    'shattering[tensorboard]'``)."""

    name = "tensorboard"
    defaults = {"every": "1"}

    def __init__(self, **options: str):
        super().__init__(**options)
        try:
            from torch.utils.tensorboard import SummaryWriter  # optional: only this probe needs tensorboard
        except ImportError:
            raise ConfigError("The probe 'tensorboard' needs the tensorboard package: pip install "
                              "'shattering[tensorboard]' (or leave the probe out).") from None
        self._writer_class, self._writer, self._purge = SummaryWriter, None, None

    def _open(self, state: RunState):
        if self._writer is None:
            self._writer = self._writer_class(str(state.output(self.name)), purge_step=self._purge)
        return self._writer

    def on_resume(self, state: RunState) -> None:
        self._purge = state.epoch + 1

    def on_epoch_end(self, state: RunState) -> None:
        writer = self._open(state)
        numbers = {**(state.running or {}), **(state.metrics or {})}
        for key, value in sorted(numbers.items()):
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                writer.add_scalar(key, value, state.epoch)
        writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def from_elsewhere(value: Any) -> tuple[str, ...]:
    """The probes of ``probes`` (as a RunConfig holds it) that code in this process registered (not built in): a
    spawned worker process does not have them, so a run that names them trains in this process."""
    names = [parse_probe(spec)[0] for spec in probe_specs(value)]
    return tuple(n for n in names if n in PROBES and not PROBES[n].__module__.startswith("shattering."))


def probe_specs(value: Any) -> list[str]:
    """``probes`` as a RunConfig holds it (canonical JSON of a list of specs, or None) as a list of specs."""
    return json.loads(value) if value else []


def canonical_probes(value: Any) -> str | None:
    """The one stored form of ``probes``: JSON of a list of ``"NAME[:KEY=VALUE...]"`` strings (None: no probe).
    Takes a list (Python, TOML, ``--probe`` repeated), one string, or JSON of a list."""
    if value is None or value == "" or value == [] or value == ():
        return None
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError(f"probes must be a list of NAME[:KEY=VALUE...] strings; got {value!r}.") from None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"probes must be a list of NAME[:KEY=VALUE...] strings; got {value!r}.")
    specs = [v.strip() for v in value]
    build_probes(specs)  # every name and option checked now, before any run starts
    return json.dumps(specs, separators=(",", ":"))


# The information probe: a module of its own (the estimators it calls are a package of their own too).
from .information import INFO_MAX_FEATURES, Information, load_information  # noqa: E402,F401
