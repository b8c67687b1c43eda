"""Tests for `shattering/optimizers.py`: one factory builds every optimizer, each update is the textbook formula
(written out here in numpy, independently of torch), a pack of any optimizer is exactly its separate runs, and a
run names the optimizer it trained with."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import shattering
from shattering.cli import main
from shattering.config import RunConfig
from shattering.errors import ConfigError
from shattering.executors.packing import pack_key, packed_groups
from shattering.executors.sweep import run_sweep
from shattering.optimizers import OPTIMIZERS, build_optimizer, param_groups
from shattering.runs import RunRecord, load_runs

LR, WD, STEPS = 0.05, 0.1, 4


def reference(name: str, theta: np.ndarray, grads: list[np.ndarray], decay: bool) -> np.ndarray:
    """``theta`` after one update per gradient in ``grads``, by the formulas of the module docstring, float64."""
    info = OPTIMIZERS[name]
    wd = WD if decay else 0.0
    eps = info.eps
    b1, b2, mu, alpha, rho = 0.9, 0.999, 0.9, 0.99, 0.9
    m = np.zeros_like(theta)
    s = np.zeros_like(theta)
    u = np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        g = g + wd * theta if name != "adamw" else g
        if name in ("sgd", "nesterov"):
            m = g if t == 1 else mu * m + g
            theta = theta - LR * ((g + mu * m) if name == "nesterov" else m)
        elif name in ("adam", "adamw"):
            if name == "adamw":
                theta = theta * (1 - LR * wd)
            m = b1 * m + (1 - b1) * g
            s = b2 * s + (1 - b2) * g * g
            mhat, shat = m / (1 - b1 ** t), s / (1 - b2 ** t)
            theta = theta - LR * mhat / (np.sqrt(shat) + eps)
        elif name == "rmsprop":
            s = alpha * s + (1 - alpha) * g * g
            theta = theta - LR * g / (np.sqrt(s) + eps)
        elif name == "adagrad":
            s = s + g * g
            theta = theta - LR * g / (np.sqrt(s) + eps)
        elif name == "adadelta":
            s = rho * s + (1 - rho) * g * g
            d = np.sqrt(u + eps) / np.sqrt(s + eps) * g
            u = rho * u + (1 - rho) * d * d
            theta = theta - LR * d
    return theta


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_each_optimizer_is_its_textbook_update(name):
    rng = np.random.default_rng(0)
    w0, b0 = rng.normal(size=(3, 4)), rng.normal(size=4)
    gw = [rng.normal(size=(3, 4)) for _ in range(STEPS)]
    gb = [rng.normal(size=4) for _ in range(STEPS)]
    w = torch.tensor(w0, requires_grad=True)
    b = torch.tensor(b0, requires_grad=True)
    opt = build_optimizer(name, param_groups([w], [b], WD), lr=LR, device=torch.device("cpu"))
    for gwi, gbi in zip(gw, gb, strict=True):
        w.grad, b.grad = torch.tensor(gwi), torch.tensor(gbi)
        opt.step()
    np.testing.assert_allclose(w.detach().numpy(), reference(name, w0, gw, decay=True), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b.detach().numpy(), reference(name, b0, gb, decay=False), rtol=1e-10, atol=1e-12)


def _pack(out, optimizer: str, **kw) -> list[RunConfig]:
    base = {"dataset": "digits", "model": "mlp-1x512", "train_size": 200, "test_size": 100, "epochs": 3,
            "until": "epochs", "eval_every": 1, "log_every": 2, "precision": "fp32", "device": "cpu",
            "corruption": "partial-labels", "optimizer": optimizer, "out": str(out)} | kw
    return [RunConfig(**base, p=p, seed=s) for p, s in ((0.0, 0), (0.5, 1), (1.0, 2))]


def _records(outcomes) -> list:
    timing = {"seconds", "eval_seconds", "epoch_seconds"}
    return [(o.summary["status"], [{k: v for k, v in r.items() if k not in timing}
                                   for r in RunRecord(o.run_dir).read_metrics()], RunRecord(o.run_dir).read_steps())
            for o in outcomes]


@pytest.mark.parametrize("name", sorted(n for n, o in OPTIMIZERS.items() if o.packable))
def test_a_pack_of_each_optimizer_equals_its_separate_runs_in_fp32(tmp_path, name):
    separate = run_sweep(_pack(tmp_path / "a", name, weight_decay=1e-3), progress=False, pack=1)
    packed = run_sweep(_pack(tmp_path / "b", name, weight_decay=1e-3), progress=False)
    assert [o.summary.get("packed", {}).get("members") for o in packed] == [3] * 3
    assert all(o.ok for o in separate + packed)
    assert _records(separate) == _records(packed)  # bit for bit: every update is element-wise


@pytest.mark.parametrize("name", ["adam", "adagrad"])
def test_a_packed_checkpoint_of_a_stateful_optimizer_resumes_as_a_separate_run(tmp_path, name):
    """Adam's two moments and step count, Adagrad's sum (made when the optimizer is built) go through the
    pack's stacked state into each member's checkpoint and back into a separate run."""
    short = _pack(tmp_path, name, epochs=2)
    full = _pack(tmp_path, name, epochs=4)
    run_sweep(short, progress=False)  # packed, 2 epochs
    reference = run_sweep(_pack(tmp_path / "ref", name, epochs=4), progress=False, pack=1)
    for s, f, ref in zip(short, full, reference, strict=True):  # the packed checkpoint, the full run's config
        src, dst = RunRecord(s.run_dir()), RunRecord(f.run_dir())
        dst.create()
        for file in ("checkpoint.pt", "metrics.jsonl", "steps.csv"):
            (dst.dir / file).write_bytes((src.dir / file).read_bytes())
        (dst.dir / "config.json").write_bytes((ref.run_dir / "config.json").read_bytes())
    resumed = run_sweep(full, progress=False, pack=1)
    assert all(len(o.summary["resumes"]) == 1 for o in resumed)
    assert _records(resumed) == _records(reference)


def test_a_sweep_mixing_optimizers_packs_only_runs_of_one_optimizer(tmp_path):
    configs = _pack(tmp_path, "sgd") + _pack(tmp_path, "adam") + _pack(tmp_path, "adam", beta2=0.99)
    groups = packed_groups(configs)
    assert sorted(len(g) for g in groups) == [3, 3, 3]  # each optimizer (and each setting) apart
    assert all(len({(c.optimizer, c.beta2) for c in g}) == 1 for g in groups)
    assert pack_key(configs[0]) != pack_key(configs[3])


def test_the_paper_s_sgd_keeps_its_run_ids_and_other_optimizers_get_their_own():
    # the id of the README's main job, as every record made before optimizers existed names it; the precision
    # pinned: ``auto`` resolves to bf16 or fp32 by the CPU and enters the id (an AVX2-only CPU computes fp32 ids)
    base = RunConfig(dataset="digits", model="mlp-1x512", corruption="random-labels", precision="bf16")
    assert base.run_id() == "14bc62e7640d" == base.replace(optimizer="sgd").run_id()
    ids = {RunConfig(optimizer=o).run_id() for o in OPTIMIZERS}
    assert len(ids) == len(OPTIMIZERS)
    assert RunConfig(optimizer="adam").resolved().lr == 1e-3  # its documented default
    assert RunConfig(optimizer="adadelta").resolved().lr == 1.0
    assert RunConfig(optimizer="sgd").resolved().lr == 0.01  # the paper's, for the MLP


def test_a_setting_the_optimizer_does_not_read_is_refused():
    with pytest.raises(ConfigError, match="--beta1 does not apply to optimizer sgd, which reads --momentum"):
        RunConfig(beta1=0.5)
    with pytest.raises(ConfigError, match="--momentum does not apply to optimizer adam"):
        RunConfig(optimizer="adam", momentum=0.5)
    with pytest.raises(ConfigError, match="'optimizer'.* must be one of sgd, nesterov, adam"):
        RunConfig(optimizer="lbfgs")


def test_shatter_run_with_adam_trains_records_and_names_it(tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["run", "--dataset", "digits", "--train-size", "200", "--test-size", "100", "--epochs", "3",
                 "--until", "epochs", "--precision", "fp32", "--device", "cpu", "--optimizer", "adam",
                 "--beta2", "0.99", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "adam (beta1 0.9, beta2 0.99, eps 1e-08), lr 0.001" in printed
    (folder,) = out.iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["config"]["optimizer"] == "adam" and summary["schedule"]["optimizer"] == "adam"
    state = shattering.read_checkpoint(folder)
    assert {"exp_avg", "exp_avg_sq", "step"} <= set(next(iter(state["optimizer"]["state"].values())))
    table = load_runs(out)
    assert list(table["optimizer"]) == ["adam"]
    python = shattering.run(dataset="digits", train_size=200, test_size=100, epochs=3, until="epochs",
                            precision="fp32", device="cpu", optimizer="adam", beta2=0.99, out=str(out))
    assert python.reused and python.run_dir == folder  # the command line and Python name one run
