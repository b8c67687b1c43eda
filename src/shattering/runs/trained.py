"""The trained network of a finished run, read back from its record: :func:`read_checkpoint` (the checkpoint's
contents, its checksum verified) and :func:`load_model` (the network rebuilt from the run's config and loaded
with the checkpoint's weights, in eval mode), for analysing a run of Section 2.1 of Zhang et al. (ICLR 2017) after
it ended.

A checkpoint is not a bare ``torch.save`` file: its first two lines are a magic line and the SHA-256 of the rest
(:mod:`shattering.runs.record`), so ``torch.load`` alone cannot read it; :func:`read_checkpoint` can.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import RunConfig
from ..data.dataset import LabelledSplits
from ..devices import resolve_device
from ..errors import RecordError
from ..train.data import make_data
from ..train.trainer import init_model
from .record import RunRecord


def read_checkpoint(path: str | Path) -> dict:
    """The contents of a run's checkpoint: ``path`` is a run's folder (its newest intact checkpoint) or a
    checkpoint file. A dict with ``model`` (the network's ``state_dict``), ``optimizer``, ``epoch``, ``steps``
    and the run's counters and random states. A damaged file (its checksum does not match) is refused.

    >>> state = read_checkpoint("runs/digits_mlp-1x512_random-labels_14bc62e7640d")  # doctest: +SKIP
    >>> state["epoch"], sorted(state["model"])[:2]  # doctest: +SKIP
    """
    path = Path(path).expanduser()
    if path.is_dir():
        record = RunRecord(path)
        state, notes = record.load_checkpoint()
        if state is None:
            raise RecordError(f"{path} holds no intact checkpoint" + (f" ({'; '.join(notes)})" if notes else
                              " (none was kept: the run was made with keep_checkpoints 'none', or never started)")
                              + f"; {RETRAIN}")
        return state
    state, status = RunRecord._read_checkpoint(path)
    if state is None:
        raise RecordError(f"{path} is not a readable checkpoint ({status}); pass a run's folder or its "
                          "checkpoint.pt.")
    return state


RETRAIN = "train the run again with --rerun (rerun=True) to have its network"


@dataclass(frozen=True)
class TrainedRun:
    """A finished run read back: its folder, resolved config, summary, checkpoint and trained network."""

    run_dir: Path
    config: RunConfig
    summary: dict
    state: dict
    model: torch.nn.Module

    def data(self) -> LabelledSplits:
        """The data the run trained on, rebuilt from its config (the same fingerprint)."""
        return make_data(self.config, labels_dir=self.run_dir)


def trained_run(run_dir: str | Path, *, device: str | None = None) -> TrainedRun:
    """The finished run in ``run_dir`` with its network loaded from the checkpoint of its last epoch (see
    :func:`load_model`); ``device``: where to put it (default: the run's own device setting)."""
    record = RunRecord(Path(run_dir).expanduser())
    written = record.read_config()
    if written is None or not isinstance(written.get("config"), dict):
        damage = record.damage()
        raise RecordError(f"{record.dir} is no run record (it has no readable config.json"
                          + (f": {'; '.join(damage)}" if damage else "") + "); pass the folder of one run.")
    summary = record.summary_file()
    damage = record.damage(summary)
    if damage:
        raise RecordError(f"The record in {record.dir} is damaged ({'; '.join(damage)}); run its command again to "
                          "repair it (the damaged record is moved aside and the run trains again).")
    if summary is None:
        raise RecordError(f"The run in {record.dir} has not finished (no summary.json); run its command again to "
                          "finish it.")
    state, notes = record.load_checkpoint()
    if state is None:
        raise RecordError(f"The run in {record.dir} has no intact checkpoint" + (
            f" ({'; '.join(notes)})" if notes else " (it was made with keep_checkpoints 'none')") + f"; {RETRAIN}.")
    if state.get("epoch") != summary.get("epochs"):
        raise RecordError(f"The newest intact checkpoint in {record.dir} is of epoch {state.get('epoch')}, not of "
                          f"the run's last epoch {summary.get('epochs')}" + (f" ({'; '.join(notes)})" if notes
                          else "") + f"; {RETRAIN}.")
    cfg = RunConfig.from_dict(written["config"])
    if device is not None:
        cfg = cfg.replace(device=device)
    cfg = cfg.resolved()
    model = init_model(cfg, _Shape(written))
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as exc:  # a record edited by hand, or written by other code
        raise RecordError(f"The checkpoint in {record.dir} does not hold the network its config.json builds "
                          f"({type(exc).__name__}); {RETRAIN}.") from None
    model = model.to(resolve_device(cfg.device)).eval()
    return TrainedRun(record.dir, cfg, summary, state, model)


def load_model(run_dir: str | Path, *, device: str | None = None) -> torch.nn.Module:
    """The trained network of the finished run in ``run_dir``, in eval mode: built from the run's config (its
    model, input shape and classes) and loaded with the weights of its last epoch's checkpoint. ``device``: where
    to put it (default: the run's own device setting). A run that has not finished, kept no checkpoint, or whose
    record is damaged is refused in one sentence.

    >>> net = load_model("runs/digits_mlp-1x512_random-labels_14bc62e7640d")  # doctest: +SKIP
    >>> net(torch.zeros(1, 1, 8, 8)).shape  # doctest: +SKIP
    torch.Size([1, 10])
    """
    return trained_run(run_dir, device=device).model


def solution_distance(run_a: str | Path, run_b: str | Path) -> dict:
    """How far apart the trained networks of two finished runs of one architecture are (Im, Tao and Branson 2016:
    do different optimizers reach different minima?): ``distance`` = ||theta_a - theta_b||_2 over every trainable
    parameter, and ``travel_a``, ``travel_b`` = ||theta - theta_0|| of each from its own initialization (rebuilt
    from its seed), so that ``distance`` can be read against how far each moved. Two networks of different shapes
    are refused in one sentence."""
    a, b = trained_run(run_a, device="cpu"), trained_run(run_b, device="cpu")
    named_a, named_b = dict(a.model.named_parameters()), dict(b.model.named_parameters())
    if {k: tuple(p.shape) for k, p in named_a.items()} != {k: tuple(p.shape) for k, p in named_b.items()}:
        raise RecordError(f"The runs in {a.run_dir} and {b.run_dir} train networks of different shapes "
                          f"({a.config.model} and {b.config.model}); compare two runs of one architecture.")

    def flat(model: torch.nn.Module) -> torch.Tensor:
        return torch.cat([p.detach().double().reshape(-1) for p in model.parameters() if p.requires_grad])

    theta_a, theta_b = flat(a.model), flat(b.model)
    init_a, init_b = (flat(init_model(t.config, _Shape(RunRecord(t.run_dir).read_config()))) for t in (a, b))
    return {"distance": float((theta_a - theta_b).norm()), "travel_a": float((theta_a - init_a).norm()),
            "travel_b": float((theta_b - init_b).norm()), "same_init": bool(torch.equal(init_a, init_b))}


@dataclass(frozen=True)
class _Shape:
    """What :func:`~shattering.train.trainer.init_model` asks of the data (input shape, classes), read from the
    record's description of them instead of loading the data."""

    shape: tuple[int, ...]
    num_classes: int

    def __init__(self, written: dict):
        data = written.get("data") if isinstance(written.get("data"), dict) else {}
        try:
            object.__setattr__(self, "shape", tuple(int(s) for s in data["shape"]))
            object.__setattr__(self, "num_classes", int(data["classes"]))
        except (KeyError, TypeError, ValueError):
            raise RecordError("config.json does not describe the run's data (shape, classes); "
                              f"{RETRAIN}.") from None
