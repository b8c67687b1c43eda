"""Tests for `shattering/train/packed.py` and `shattering/executors/packing.py`: K runs packed into one model
are exactly K separate runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from shattering.config import RunConfig
from shattering.executors import packing
from shattering.executors.packing import packed_groups
from shattering.executors.sweep import run_sweep
from shattering.models import build_model
from shattering.runs import RunRecord, trainer_class
from shattering.train import packed as packed_module
from shattering.train.in_memory import InMemoryTrainer
from shattering.train.packed import PackedMLP, train_pack
from shattering.train.stream import StreamTrainer

TIMING = {"seconds", "eval_seconds", "epoch_seconds"}
P_LEVELS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def _sweep(out, **kw) -> list[RunConfig]:
    base = {"dataset": "digits", "model": "mlp-1x512", "train_size": 300, "test_size": 100, "lr": 0.1,
            "precision": "fp32", "corruption": "partial-labels", "device": "cpu", "out": str(out)} | kw
    return [RunConfig(**base, p=p) for p in P_LEVELS]


def _records(outcomes):
    out = []
    for o in outcomes:
        rec = RunRecord(o.run_dir)
        metrics = [{k: v for k, v in r.items() if k not in TIMING} for r in rec.read_metrics()]
        out.append((o.summary["status"], o.summary["fit_epoch"], metrics, rec.read_steps()))
    return out


def assert_same_runs(a, b):
    """Same statuses, fit epochs, accuracies and error counts; losses equal up to float32 rounding (a batched
    matrix product may round differently for another number of packed models and small batches)."""
    for (sa, fa, ma, ta), (sb, fb, mb, tb) in zip(_records(a), _records(b), strict=True):
        assert (sa, fa, len(ma), len(ta)) == (sb, fb, len(mb), len(tb))
        for ra, rb in zip(ma, mb, strict=True):
            assert ra.keys() == rb.keys()
            for key, va in ra.items():
                if isinstance(va, float) and "loss" in key:
                    assert va == pytest.approx(rb[key], rel=1e-4, abs=1e-6), key
                else:
                    assert va == rb[key], key
        for ra, rb in zip(ta, tb, strict=True):
            assert ra["step"] == rb["step"] and ra["loss"] == pytest.approx(rb["loss"], rel=1e-4, abs=1e-6)


@pytest.fixture
def wide_steps(monkeypatch):
    """Counts the pack's training steps (autograd on) and evaluation batches that took the wide first layer
    (one shared batch), and the training steps that took the batched one (one batch per member)."""
    calls = {"train": 0, "eval": 0, "batched train": 0}
    wide, forward = packed_module.wide_first_layer, PackedMLP.forward

    def counted_wide(weights, biases, x):
        calls["train" if torch.is_grad_enabled() else "eval"] += 1
        return wide(weights, biases, x)

    def counted_forward(self, x):
        calls["batched train"] += x.dim() == 3 and torch.is_grad_enabled()
        return forward(self, x)

    monkeypatch.setattr(packed_module, "wide_first_layer", counted_wide)
    monkeypatch.setattr(PackedMLP, "forward", counted_forward)
    return calls


def test_packed_sweep_equals_separate_runs_bit_for_bit(tmp_path, wide_steps):
    """The six corruption levels of one seed see the same images in the same order, so the pack trains them
    with the wide first layer ((B, D) @ (D, 6*512), one product): still the separate runs bit for bit in fp32
    on this CPU (each output element is the same dot product over the same D inputs, and the weight gradient's
    the same sum over the batch)."""
    separate = run_sweep(_sweep(tmp_path / "a"), progress=False, pack=1)
    packed = run_sweep(_sweep(tmp_path / "b"), progress=False)
    assert wide_steps["train"] > 0 and wide_steps["eval"] > 0 and wide_steps["batched train"] == 0
    assert [o.summary.get("packed", {}).get("members") for o in packed] == [6] * 6
    assert all("packed" not in o.summary for o in separate)
    fit_epochs = {o.summary["fit_epoch"] for o in separate}
    # every run fits, at different epochs: members leave the pack one by one
    assert all(o.summary["status"] == "fit" for o in separate) and len(fit_epochs) > 1
    assert _records(separate) == _records(packed)  # at the paper's batch size, bit for bit on this CPU


def test_a_pack_of_other_seeds_and_levels_equals_separate_runs(tmp_path, wide_steps):
    """Members that differ in seed AND corruption level draw other batch orders: the pack takes the batched
    path (one ``baddbmm`` per layer; evaluation, the same images for all, stays wide) and still equals the
    separate runs in fp32 (bit for bit on this CPU; float rounding at most, in general, with equal fit
    epochs). The check is per epoch: once the members still training share a seed, the wide path takes over."""
    cfgs = [c.replace(seed=s) for c, s in zip(_sweep(tmp_path / "a"), (0, 1, 2, 3, 4, 5), strict=True)]
    separate = run_sweep(cfgs, progress=False, pack=1)
    packed = run_sweep([c.replace(out=str(tmp_path / "b")) for c in cfgs], progress=False)
    assert [o.summary.get("packed", {}).get("members") for o in packed] == [6] * 6
    # batched while seeds differ; wide only once the members left share one seed (or one is left)
    assert wide_steps["batched train"] > wide_steps["train"] and wide_steps["eval"] > 0
    assert_same_runs(separate, packed)
    assert _records(separate) == _records(packed)


def test_a_shared_batch_takes_either_kernel_to_the_same_numbers():
    """The wide first layer and the batched one are one function: logits and gradients equal up to float32
    rounding, for a pack of three and of one."""
    torch.manual_seed(0)
    for k in (3, 1):
        members = [build_model("mlp-3x512", (1, 8, 8), 10) for _ in range(k)]
        x = torch.randn(20, 64)
        wide, batched = PackedMLP(members), PackedMLP(members)
        out_wide = wide(x)
        out_batched = batched(x.unsqueeze(0).expand(k, -1, -1))
        assert out_wide.shape == (k, 20, 10)
        torch.testing.assert_close(out_wide, out_batched)
        out_wide.square().sum().backward()
        out_batched.square().sum().backward()
        for a, b in zip(list(wide.parameters()), list(batched.parameters()), strict=True):
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-5)


def test_members_of_a_pack_share_one_copy_of_the_images(tmp_path, monkeypatch):
    """Each member keeps its own labels, but the training and test images are one tensor for the whole pack
    (the same storage), not one copy per member."""
    seen = []

    def capture(members, progress=False, hooks=()):
        seen.extend(members)
        yield from train_pack(members, progress, hooks)

    monkeypatch.setattr(packing, "train_pack", capture)
    cfgs = _sweep(tmp_path, until="epochs", epochs=1)[:3]
    assert all(o.ok for o in packing.run_packed_group(cfgs))
    assert len(seen) == 3
    for key in ("x_train", "x_test"):
        assert len({m.tensors[key].data_ptr() for m in seen}) == 1, key
    labels = {m.tensors["y_train"].data_ptr() for m in seen}
    assert len(labels) == 3  # labels stay per member
    assert not torch.equal(seen[0].tensors["y_train"], seen[2].tensors["y_train"])


def test_a_packed_member_records_its_share_of_the_packs_time(tmp_path):
    cfgs = _sweep(tmp_path, until="epochs", epochs=3)[:3]
    outcomes = run_sweep(cfgs, progress=False)
    packs = [o.summary["packed"] for o in outcomes]
    assert [p["members"] for p in packs] == [3, 3, 3]
    for o in outcomes:  # three members alive every epoch: each books a third of each epoch
        assert 0 < o.summary["seconds"] < o.summary["packed"]["pack_seconds"]
        assert o.seconds == o.summary["seconds"]
        assert RunRecord(o.run_dir).read_metrics()[-1]["seconds"] == pytest.approx(o.summary["seconds"])
    # the shares add up to the pack's epochs, which its wall time (checkpoints included) covers
    assert sum(o.summary["seconds"] for o in outcomes) <= max(p["pack_seconds"] for p in packs)


def test_grouping_rule():
    cfgs = _sweep("x") + [RunConfig(dataset="digits", model="alexnet-small", corruption="random-labels", seed=s)
                          for s in range(2)]
    assert [len(g) for g in packed_groups(cfgs)] == [6, 1, 1]  # MLPs packed, CNNs one after another
    assert [len(g) for g in packed_groups(cfgs, pack=4)] == [4, 2, 1, 1]
    assert [len(g) for g in packed_groups(cfgs, pack=1)] == [1] * 8
    mixed = _sweep("x") + _sweep("x", lr=0.05)
    assert [len(g) for g in packed_groups(mixed)] == [6, 6]  # another schedule: another pack
    seeds = [c.replace(seed=s) for s in range(3) for c in _sweep("x")]  # 6 levels x 3 seeds: a pack per seed
    assert [{c.seed for c in g} for g in packed_groups(seeds)] == [{0}, {1}, {2}]
    assert [len(g) for g in packed_groups(seeds)] == [6, 6, 6]
    one_level = [_sweep("x")[0].replace(seed=s) for s in range(3)]  # one run per seed: the seeds share a pack
    assert [len(g) for g in packed_groups(one_level)] == [3]
    pixels = [RunConfig(dataset="digits", model="mlp-1x512", corruption="gaussian", seed=s) for s in range(3)]
    assert [len(g) for g in packed_groups(pixels)] == [1, 1, 1]  # other images: not packable


def test_packed_checkpoint_resumes_as_a_separate_run(tmp_path):
    # every epoch evaluated: the last epoch of the 3-epoch budget is always evaluated, so the 6-epoch runs
    # must evaluate it too for their rows to match
    cfgs = _sweep(tmp_path, until="epochs", epochs=6, log_every=2, eval_every=1)
    short = [c.replace(epochs=3) for c in cfgs]
    run_sweep(short, progress=False)  # packed, 3 epochs
    reference = run_sweep(_sweep(tmp_path / "ref", until="epochs", epochs=6, log_every=2, eval_every=1),
                          progress=False, pack=1)
    for cfg_short, cfg, ref in zip(short, cfgs, reference, strict=True):  # continue each from the packed
        src, dst = RunRecord(cfg_short.run_dir()), RunRecord(cfg.run_dir())  # checkpoint, alone
        dst.create()
        for name in ("checkpoint.pt", "metrics.jsonl", "steps.csv"):
            if (src.dir / name).exists():
                (dst.dir / name).write_bytes((src.dir / name).read_bytes())
        (dst.dir / "config.json").write_bytes((ref.run_dir / "config.json").read_bytes())  # a record's own
    resumed = run_sweep(cfgs, progress=False, pack=1)
    assert all(len(o.summary["resumes"]) == 1 and not o.damage for o in resumed)  # resumed, not trained again
    assert_same_runs(resumed, reference)


def test_a_lone_run_and_a_pack_member_write_one_checkpoint_format(tmp_path):
    """A single run is not a pack of one (train/trainer.py says why), but both write the same checkpoint
    (train/checkpoint.py): the same keys, in the same order, of the same kinds."""
    members = _sweep(tmp_path / "packed", epochs=1, until="epochs")[:2]
    alone = _sweep(tmp_path / "alone", epochs=1, until="epochs")[0]
    packed = run_sweep(members, progress=False)
    lone = run_sweep([alone], progress=False)
    assert all("packed" in o.summary for o in packed) and "packed" not in lone[0].summary
    member_state, notes = RunRecord(packed[0].run_dir).load_checkpoint()
    lone_state, lone_notes = RunRecord(lone[0].run_dir).load_checkpoint()
    assert notes == lone_notes == []
    assert list(member_state) == list(lone_state)
    assert {k: type(v) for k, v in member_state.items()} == {k: type(v) for k, v in lone_state.items()}
    assert member_state["model"].keys() == lone_state["model"].keys()
    assert member_state["optimizer"]["param_groups"] == lone_state["optimizer"]["param_groups"]


def test_the_runs_layer_picks_the_trainer_by_where_the_data_live():
    assert trainer_class(RunConfig(dataset="digits")) is InMemoryTrainer
    assert trainer_class(RunConfig(dataset="imagenet")) is StreamTrainer


@pytest.mark.slow
def test_sigkill_a_packed_sweep_then_resume(tmp_path):
    script = (f"from shattering.config import RunConfig\nfrom shattering.executors.sweep import run_sweep\n"
              f"run_sweep([RunConfig(dataset='digits', model='mlp-1x512', corruption='partial-labels', p=p, "
              f"batch_size=8, until='epochs', epochs=25, precision='fp32', device='cpu', "
              f"out={str(tmp_path / 'b')!r}) "
              f"for p in {P_LEVELS!r}], progress=False)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        rows = [len(p.read_text().splitlines()) for p in (tmp_path / "b").glob("*/metrics.jsonl")]
        if len(rows) == 6 and min(rows) >= 5:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not list((tmp_path / "b").glob("*/summary.json"))
    cfgs = [RunConfig(dataset="digits", model="mlp-1x512", corruption="partial-labels", p=p, batch_size=8,
                      until="epochs", epochs=25, precision="fp32", device="cpu", out=str(tmp_path / d))
            for d in "ab" for p in P_LEVELS]
    reference = run_sweep(cfgs[:6], progress=False)  # packed, never interrupted
    resumed = run_sweep(cfgs[6:], progress=False)
    assert_same_runs(resumed, reference)
    assert all(len(o.summary["resumes"]) == 1 for o in resumed)


def test_the_batched_layer_has_baddbmms_derivatives_in_the_weights_layout():
    """``batched_linear`` against plain ``torch.baddbmm`` under autograd (an independent derivative): the same
    forward bit for bit, the same first and second derivatives (float64 gradcheck), forward mode and vmap (what
    curvature operators and the loss landscape use), autocast bf16 alike; the weight gradient is contiguous,
    and a member's weight gradient in a pack of three is a pack of one's bit for bit (10-class output layer)."""
    from torch.func import grad, jvp, vmap

    from shattering.models.batched_linear import batched_linear

    def plain(x, w, b):
        return torch.baddbmm(b, x, w.transpose(1, 2))

    torch.manual_seed(0)
    x, w, b = (torch.randn(*s, dtype=torch.float64, requires_grad=True) for s in ((3, 5, 7), (3, 4, 7), (3, 1, 4)))
    assert torch.autograd.gradcheck(batched_linear, (x, w, b)) and torch.autograd.gradgradcheck(batched_linear,
                                                                                                (x, w, b))
    assert torch.autograd.gradcheck(batched_linear, (x, w, b), check_forward_ad=True, check_backward_ad=False)
    v = torch.randn_like(w)
    hvp = [jvp(grad(lambda w_, f=f: f(x, w_, b).pow(3).sum()), (w,), (v,))[1] for f in (batched_linear, plain)]
    torch.testing.assert_close(hvp[0], hvp[1], rtol=1e-12, atol=1e-12)
    ws = torch.randn(2, 3, 4, 7, dtype=torch.float64)
    torch.testing.assert_close(vmap(lambda w_: batched_linear(x, w_, b))(ws), vmap(lambda w_: plain(x, w_, b))(ws))
    xs, ws1, bs = torch.randn(3, 128, 512), torch.randn(3, 10, 512), torch.randn(3, 1, 10)
    assert torch.equal(batched_linear(xs, ws1, bs), plain(xs, ws1, bs))
    for f in (batched_linear, plain):  # autocast: bf16 products, float32 gradients
        with torch.autocast("cpu", dtype=torch.bfloat16):
            w16 = ws1.clone().requires_grad_()
            out = f(xs, w16, bs)
        out.float().square().sum().backward()
        assert out.dtype == torch.bfloat16 and w16.grad.dtype == torch.float32
        if f is batched_linear:
            first = (out, w16.grad)
    assert torch.equal(first[0], out) and torch.equal(first[1], w16.grad)
    g = torch.randn(3, 128, 10)
    pack = ws1.clone().requires_grad_()
    (batched_linear(xs, pack, bs) * g).sum().backward()
    assert pack.grad.is_contiguous()
    for k in range(3):
        alone = ws1[k:k + 1].clone().requires_grad_()
        (batched_linear(xs[k:k + 1], alone, bs[k:k + 1]) * g[k:k + 1]).sum().backward()
        assert torch.equal(alone.grad[0], pack.grad[k])
