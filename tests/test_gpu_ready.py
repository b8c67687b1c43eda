"""Tests for running on GPUs this CPU machine does not have (issue 15): the CUDA paths are exercised with faked
device counts and random states, a mocked Ray, and a faked /dev/shm, so each fix is checked without a GPU."""

from __future__ import annotations

import pytest
import torch

import shattering
from shattering.config import RunConfig
from shattering.runs.record import RunRecord
from shattering.train.in_memory import InMemoryTrainer

TINY = dict(dataset="digits", model="mlp-1x512", train_size=64, test_size=32, epochs=1, until="epochs",
            precision="fp32", device="cpu")


def _trainer(tmp_path) -> InMemoryTrainer:
    cfg = RunConfig(**TINY, out=str(tmp_path)).resolved()
    return InMemoryTrainer(cfg, shattering.make_data(cfg), RunRecord(cfg.run_dir()), False)


class FakeCuda:
    """``n`` visible GPUs, each with its own random state (a tensor holding its index)."""

    def __init__(self, monkeypatch, n: int):
        self.n, self.states, self.set_calls = n, {i: torch.tensor([i], dtype=torch.uint8) for i in range(n)}, []
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
        monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [self.states[i] for i in range(n)])
        monkeypatch.setattr(torch.cuda, "get_rng_state", self.get_rng_state)
        monkeypatch.setattr(torch.cuda, "set_rng_state", self.set_rng_state)
        monkeypatch.setattr(torch.cuda, "set_rng_state_all", self.set_rng_state_all)

    @staticmethod
    def index(device) -> int:
        device = torch.device("cuda", device) if isinstance(device, int) else torch.device(device)
        return device.index if device.index is not None else 0

    def get_rng_state(self, device="cuda"):
        return self.states[self.index(device)]

    def set_rng_state(self, state, device="cuda"):
        i = self.index(device)
        if i >= self.n:
            raise IndexError(f"no GPU {i}")
        self.set_calls.append(i)
        self.states[i] = state

    def set_rng_state_all(self, states):
        for i, state in enumerate(states):  # what torch does: one state per index
            self.set_rng_state(state, i)


# -- 1. resume restores the run's own GPU's random state -----------------------------------------------


def test_a_checkpoint_keeps_the_random_state_of_the_runs_gpu_only(tmp_path, monkeypatch):
    trainer = _trainer(tmp_path)
    cuda = FakeCuda(monkeypatch, 8)
    trainer.device = torch.device("cuda", 3)
    state = trainer.state()
    assert torch.equal(state["cuda_rng"], cuda.states[3])  # one state, not the node's eight


def test_resume_on_fewer_gpus_restores_the_runs_gpu_from_an_old_checkpoint(tmp_path, monkeypatch):
    trainer = _trainer(tmp_path)
    state = trainer.state()
    eight = [torch.tensor([10 + i], dtype=torch.uint8) for i in range(8)]  # written on an 8-GPU node
    cuda = FakeCuda(monkeypatch, 2)
    trainer.device = torch.device("cuda", 1)
    trainer.restore({**state, "cuda_rng": eight})
    assert cuda.set_calls == [1] and torch.equal(cuda.states[1], eight[1])


def test_an_old_checkpoint_without_the_runs_gpu_is_skipped_with_a_note(tmp_path, monkeypatch):
    trainer = _trainer(tmp_path)
    state = trainer.state()
    cuda = FakeCuda(monkeypatch, 4)
    trainer.device = torch.device("cuda", 3)
    trainer.restore({**state, "cuda_rng": [torch.tensor([7], dtype=torch.uint8)]})  # one GPU then
    assert cuda.set_calls == [] and any("GPU 3" in w for w in trainer.book.warnings)


def test_a_new_checkpoint_restores_its_one_state(tmp_path, monkeypatch):
    trainer = _trainer(tmp_path)
    cuda = FakeCuda(monkeypatch, 2)
    trainer.device = torch.device("cuda", 1)
    state = trainer.state()
    cuda.states[1] = torch.tensor([99], dtype=torch.uint8)
    trainer.restore(state)
    assert cuda.set_calls == [1] and torch.equal(cuda.states[1], torch.tensor([1], dtype=torch.uint8))


def test_a_run_forks_the_random_state_of_its_own_gpu(monkeypatch):
    from shattering.runs.lifecycle import forked_gpus

    FakeCuda(monkeypatch, 4)  # GPU 0 is current
    dist = type("Dist", (), {"device": torch.device("cuda", 2)})()
    assert forked_gpus(RunConfig(**TINY | {"device": "cuda"}), dist) == [2]
    assert forked_gpus(RunConfig(**TINY | {"device": "auto"}), None) == [0]
    assert forked_gpus(RunConfig(**TINY), None) == []  # device="cpu"
