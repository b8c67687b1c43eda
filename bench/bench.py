"""Speed of shattering against a textbook PyTorch loop and against itself, each comparison in one process (issues
6 and 15).

    python bench/bench.py                 # everything; writes this machine's section of bench/RESULTS.md
    python bench/bench.py --quick         # tiny sizes, one repeat: a smoke test of the script (prints only)
    python bench/bench.py --only peak,train,profile,layouts,kernels,sweep,eval,eval-epoch,concurrent,sweep-workers

What is measured (each figure the median of several repeats, the baseline in the same process):

- ``peak``: the machine's matmul peak, fp32 and bf16 (torch.mm on 4096x4096; bf16 on 512x512 where the CPU has no
  bf16 instructions and torch emulates it at about 1 GFLOP/s).
- ``train``: training images/s of each paper model on CIFAR-shaped inputs (3x28x28, 10 classes): a textbook
  loop (torch DataLoader over a TensorDataset, fp32, NCHW, an MLP as nn.Sequential of nn.Linear: what a
  researcher writes) against shattering's trainer step (data as one
  tensor, batches by index, bf16 autocast where native, channels_last); achieved GFLOP/s from the exact
  operation count of one training step (torch.utils.flop_counter) beside the measured peak.
- ``profile``: where the small Inception's training step spends its time (torch.profiler, self CPU time of
  the top operators and by kind of operator).
- ``layouts``: the small Inception's training images/s in bf16 and fp32, channels_last and NCHW (fp32 alone where
  bf16 is emulated: there and in ``kernels`` and ``sweep`` bf16 is not timed, it is not shattering's default).
- ``kernels``: the first layer of 6 packed MLP 1x512 runs on one shared batch (fwd + bwd, 128 x 784 -> 512 -> 10):
  six separate ``mm`` (six runs), one batched ``bmm`` and one wide ``mm`` (B x D) @ (D x 6*512): the choice of
  ``shattering.train.packed.shared_input_kernel``.
- ``sweep``: the Fig. 1b/1c label-corruption sweep of MLP 1x512 (6 levels, one seed) run one after another
  against packed into one model, on 10,000 Fashion-MNIST images (the default precision, and fp32 where that is
  bf16) and the bundled digits.
- ``eval``: the share of evaluation in a whole run: the README's main job (``--until fit``) through
  ``shattering.run``, its summary's eval_seconds / seconds.
- ``eval-epoch``: seconds of whole-training-set evaluation per epoch as a share of the epoch, per model.
- ``concurrent``: two README main jobs started together as two processes against one alone (each one's wall
  time), and the two together with the cores split between them.
- ``kernel-products``: the exact kernel of Section 5 on 5,000 Fashion-MNIST images (784 raw pixels, MNIST's size:
  ``shatter kernel --dataset mnist``'s 5,000 points): the 5,000 x 5,000 Gaussian kernel filled by each exact
  product of pixel codes (int8 ``torch._int_mm``, float32 in blocks, float64) and by the one
  ``shattering.theory.kernel_evaluator.pixel_product`` chooses on this machine.
- ``sweep-workers``: a 6-level x 3-seed MLP 1x512 digits sweep through ``shatter sweep`` as the CLI runs it
  against the same configs with ``--pack 1 --local-workers 1``, one at a time (all as subprocesses).

Every part records the CPU model, its bf16/AMX flags, torch version and the load average at its start and
end, and is written to its own marked part of the machine's section of RESULTS.md (one section per kind of
machine, keyed by a slug of the CPU model); other parts and machines are left as they are.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# isort: off
import shattering  # first, as a user's program imports it: it decides OpenMP's wait policy before torch loads
# isort: on
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

from shattering.config import RunConfig
from shattering.data.dataset import ImageData
from shattering.devices import cpu_has_native_bf16, resolve_precision
from shattering.executors.sweep import run_sweep
from shattering.executors.wait_policy import measure_wait_policy
from shattering.models import MODELS, build_model, model_info
from shattering.runs import RunRecord
from shattering.train.evaluate import predict
from shattering.train.in_memory import InMemoryTrainer

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
SHAPE = (3, 28, 28)  # the paper's CIFAR-10 input after the centre crop
CLASSES = 10
BATCH = 128


CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
EMULATED_BF16_SIZE = 512  # a bf16 mm where the CPU has no bf16 instructions: 1 GFLOP/s (4096x4096 would take minutes)


def cpu_flags() -> list[str]:
    """Which of the vector and bf16/AMX flags (:data:`CPU_FLAGS`) /proc/cpuinfo lists."""
    try:
        words = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return []
    return [f for f in CPU_FLAGS if f in words]


def machine() -> dict:
    model = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        found = re.search(r"Model name:\s*(.+)", out)
        model = found.group(1).strip() if found else model
    except (OSError, subprocess.SubprocessError):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    info = {"cpu": model, "cores": os.cpu_count(), "threads": torch.get_num_threads(), "memory_gib": round(mem, 1),
            "torch": torch.__version__, "python": platform.python_version(), "native_bf16": cpu_has_native_bf16(),
            "flags": cpu_flags(), "openmp_wait": shattering._openmp.WAIT_WHY}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def machine_slug(info: dict) -> str:
    """The key of a kind of machine in RESULTS.md: its CPU model (and GPU), lower case, words joined by '-'
    ("AMD EPYC" -> "amd-epyc"), without the (R)/(TM)/CPU/@ frequency noise of model names. An x86 CPU without
    AVX-512 gets its widest vector extension too ("amd-epyc-avx2"): the same model name has come both with
    AVX-512 bf16 and with AVX2 only, where bf16 is emulated and fp32 is the default."""
    name = re.sub(r"\((r|tm)\)|\bcpu\b|@.*$|\bprocessor\b", " ", info["cpu"].lower())
    flags = info.get("flags", [])
    if "avx2" in flags and "avx512f" not in flags:
        name += " avx2"
    if info.get("gpu"):
        name += " " + info["gpu"].lower()
    return "-".join(re.findall(r"[a-z0-9]+", name)) or "unknown"


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def median_time(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# --------------------------------------------------------------------------------------------------
# peak
# --------------------------------------------------------------------------------------------------


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 is worth timing on ``device``: a GPU, or a CPU with bf16 instructions (elsewhere torch emulates
    it, at about 1 GFLOP/s on a 2-core AVX2 AMD EPYC, and shattering's default precision is fp32)."""
    return device.type != "cpu" or cpu_has_native_bf16()


def _precisions(device: torch.device) -> tuple[str, ...]:
    """The precisions a comparison times: bf16 and fp32, or fp32 alone where bf16 is emulated (:func:`native_bf16`)."""
    return ("bf16", "fp32") if native_bf16(device) else ("fp32",)


def matmul_peak(device: torch.device, repeats: int, size: int = 4096) -> dict:
    """GFLOP/s of torch.mm, fp32 and bf16 (bf16 on a small matrix where the CPU only emulates it: ``bf16_size``)."""
    out = {"size": size, "bf16_size": size if native_bf16(device) else EMULATED_BF16_SIZE}
    for name, dtype, n in (("fp32", torch.float32, size), ("bf16", torch.bfloat16, out["bf16_size"])):
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        seconds = median_time(lambda a=a, b=b: torch.mm(a, b), repeats)
        out[name] = 2 * n**3 / seconds / 1e9
    return out


# --------------------------------------------------------------------------------------------------
# training throughput
# --------------------------------------------------------------------------------------------------


def step_flops(model_name: str, precision: str, shape: tuple[int, ...] = SHAPE) -> float:
    """FLOPs of one training step (forward + backward; no gradient of the input) per image, counted exactly on
    one batch."""
    model = build_model(model_name, shape, CLASSES)
    x, y = torch.randn(BATCH, *shape), torch.randint(0, CLASSES, (BATCH,))
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops() / BATCH


def textbook_model(model_name: str) -> torch.nn.Module:
    """The model as a textbook loop would write it: shattering's for the convolutional nets (plain modules), and
    for an MLP ``nn.Sequential(Flatten, Linear, ReLU, ..., Linear)`` with the same layers (shattering's MLP applies
    them as batched products, so that a run alone equals a member of a pack bit for bit)."""
    model = build_model(model_name, SHAPE, CLASSES)
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if model_info(model_name).convolutional or not layers:
        return model
    body = [part for layer in layers[:-1] for part in (layer, torch.nn.ReLU())]
    return torch.nn.Sequential(torch.nn.Flatten(), *body, layers[-1])


def textbook_images_per_s(model_name: str, device: torch.device, steps: int, repeats: int) -> float:
    """torch DataLoader over a TensorDataset, fp32, NCHW, plain loop: what most re-implementations do."""
    n = BATCH * steps
    data = TensorDataset(torch.randn(n, *SHAPE), torch.randint(0, CLASSES, (n,)))
    loader = DataLoader(data, batch_size=BATCH, shuffle=True)
    torch.manual_seed(0)
    model = textbook_model(model_name).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def epoch():
        model.train()
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()

    return n / median_time(epoch, repeats)


def _trainer(model_name: str, device: torch.device, n: int, precision: str, tmp: str, compile: str = "off"):
    """shattering's real trainer (`InMemoryTrainer`) on an in-memory CIFAR-shaped data set of ``n`` images."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, *SHAPE, generator=g).numpy()
    y = torch.randint(0, CLASSES, (n,), generator=g).numpy()
    m = max(1, n // 5)  # a test set a fifth of the training set (CIFAR-10: 10,000 / 50,000)
    xt, yt = x[:m], y[:m]
    data = ImageData(name="digits", class_names=tuple(map(str, range(CLASSES))), x_train=x, y_train=y, x_test=xt,
                     y_test=yt, y_train_original=y, y_test_original=yt, train_changed=y != y,
                     test_changed=yt != yt, preprocessing={})
    cfg = RunConfig(dataset="digits", model=model_name, precision=precision, device=device.type,
                    log_every=10**9, compile=compile).resolved()
    return InMemoryTrainer(cfg, data, RunRecord(tmp), progress=False), cfg


def trainer_images_per_s(model_name: str, device: torch.device, steps: int, repeats: int,
                         precision: str) -> float:
    """shattering's training epoch (the real `Trainer._train_epoch`) on an in-memory CIFAR-shaped set."""
    n = BATCH * steps
    with tempfile.TemporaryDirectory() as tmp:
        trainer, cfg = _trainer(model_name, device, n, precision, tmp)
        return n / median_time(lambda: trainer._train_epoch(cfg.lr), repeats)


def bench_train(device: torch.device, quick: bool, peak: dict) -> list[dict]:
    rows = []
    precision = resolve_precision("auto", device.type)
    for name in (m.name for m in MODELS.values() if m.paper_params):  # the paper's models
        heavy = name.startswith("inception") or name.startswith("alexnet")
        steps = (2 if quick else 6) if heavy else (5 if quick else 40)
        repeats = 1 if quick else 3
        flops = step_flops(name, precision)
        base = textbook_images_per_s(name, device, steps, repeats)
        ours = trainer_images_per_s(name, device, steps, repeats, precision)
        peak_ours = peak["bf16" if precision == "bf16" else "fp32"]
        rows.append({"model": name, "gflop_per_image": flops / 1e9, "textbook_img_s": base, "ours_img_s": ours,
                     "speedup": ours / base, "ours_gflops": ours * flops / 1e9,
                     "share_of_peak": ours * flops / 1e9 / peak_ours, "precision": precision,
                     # the most any step could gain over the textbook loop: all of the peak against its GFLOP/s
                     "textbook_share": base * flops / 1e9 / peak["fp32"], "ceiling": peak_ours / (base * flops / 1e9)})
        print(f"train {name:<22} textbook {base:9.1f} img/s  ours {ours:9.1f} img/s  x{ours / base:4.2f}  "
              f"{ours * flops / 1e9:6.1f} GFLOP/s ({100 * ours * flops / 1e9 / peak_ours:4.1f}% of {precision} peak)",
              flush=True)
    return rows


# --------------------------------------------------------------------------------------------------
# packed sweep
# --------------------------------------------------------------------------------------------------


def _sweep(base: dict, pack: int | None, workers: int | None = 1) -> None:
    """The six corruption levels of ``base`` as one sweep, in a fresh folder; ``workers``: the local executor's
    worker processes (1: in this process; None: as many as it measures worthwhile)."""
    with tempfile.TemporaryDirectory() as out:
        cfgs = [RunConfig(**base, p=p, out=out) for p in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)]
        outcomes = run_sweep(cfgs, progress=False, pack=pack, local_workers=workers)
        assert all(o.ok for o in outcomes), [o.error for o in outcomes]


def bench_sweep(quick: bool, peak: dict) -> list[dict]:
    """Fig. 1b/1c's 6 corruption levels of MLP 1x512: one after another vs packed into one model, on the
    bundled digits (small inputs: per-step overhead dominates) and on Fashion-MNIST (784 inputs: the matmuls
    dominate), in the default precision and in fp32. ``ceiling``: the most any way of training the six runs could
    gain over one after another, were their training steps' FLOPs done at the matmul peak and evaluation free."""
    cases = [("digits", None, 5 if quick else 20, "auto")]
    try:
        shattering.load_dataset("fashion-mnist")
        size = 2000 if quick else 10000
        epochs = 2 if quick else 5
        cases += [("fashion-mnist", size, epochs, "auto")]
        if resolve_precision("auto", "cpu") != "fp32":  # else "auto" is fp32 already
            cases.append(("fashion-mnist", size, epochs, "fp32"))
    except shattering.errors.ShatteringError:
        pass
    rows = []
    for dataset, train_size, epochs, precision in cases:
        row = {"dataset": dataset, "train_size": train_size or "all", "epochs": epochs,
               "precision": resolve_precision(precision, "cpu")}
        data = shattering.load_dataset(dataset)  # the file read is not what we time
        base = {"dataset": dataset, "model": "mlp-1x512", "corruption": "partial-labels", "train_size": train_size,
                "test_size": 1000 if train_size else None, "until": "epochs", "epochs": epochs,
                "precision": precision}
        for label, pack, workers in (("one after another", 1, 1), ("packed", None, 1), ("default", None, None)):
            _sweep(base | {"epochs": 1}, pack, workers)  # warm-up: the first calls of each kernel are not timed
            row[label] = median_time(lambda base=base, pack=pack, w=workers: _sweep(base, pack, w),
                                     1 if quick else 3, warmup=0)
        row["speedup"] = row["one after another"] / row["packed"]
        n_train = min(train_size or data.n_train, data.n_train)
        train_flops = 6 * epochs * n_train * step_flops("mlp-1x512", row["precision"], tuple(data.shape))
        row["train_gflop"] = train_flops / 1e9
        row["ceiling"] = row["one after another"] * peak["bf16" if row["precision"] == "bf16" else "fp32"] * 1e9 \
            / train_flops
        row["speedup_default"] = row["one after another"] / row["default"]
        rows.append(row)
        print(f"sweep MLP 1x512 x 6 levels ({dataset}, {train_size or 'all'} images, {epochs} epochs, "
              f"{row['precision']}): {row['one after another']:.1f} s one after another, {row['packed']:.1f} s "
              f"packed, x{row['speedup']:.2f}; as a sweep runs by default (workers and packs) {row['default']:.1f} s, "
              f"x{row['speedup_default']:.2f}", flush=True)
    return rows


# --------------------------------------------------------------------------------------------------
# evaluation share
# --------------------------------------------------------------------------------------------------


def bench_eval_epoch(device: torch.device, quick: bool) -> list[dict]:
    """Whole-training-set evaluation (eval mode, no autograd, large batches) as a share of the epoch: one
    training epoch, then the training set and a test set a fifth its size re-evaluated (shattering's
    `measure`)."""
    precision = resolve_precision("auto", device.type)
    rows = []
    for model, n in (("mlp-1x512", 20480), ("alexnet-small", 2048), ("inception-small", 1024)):
        n = n // (4 if quick else 1)
        with tempfile.TemporaryDirectory() as tmp:
            trainer, cfg = _trainer(model, device, n, precision, tmp)
            t = trainer.tensors
            repeats = 1 if quick else 3
            train_s = median_time(lambda trainer=trainer, cfg=cfg: trainer._train_epoch(cfg.lr), repeats)
            eval_train_s = median_time(lambda t=t, trainer=trainer, cfg=cfg: predict(
                trainer.net, t["x_train"], t["y_train"], cfg.eval_batch_size, precision), repeats)
            eval_test_s = median_time(lambda t=t, trainer=trainer, cfg=cfg: predict(
                trainer.net, t["x_test"], t["y_test"], cfg.eval_batch_size, precision), repeats)
        epoch = train_s + eval_train_s + eval_test_s
        rows.append({"model": model, "train_size": n, "test_size": n // 5, "train_s": train_s,
                     "eval_train_s": eval_train_s, "eval_test_s": eval_test_s, "epoch_s": epoch,
                     "share_train_eval": eval_train_s / epoch, "share_all_eval": (eval_train_s + eval_test_s) / epoch})
        print(f"eval-epoch {model:<16} {n} images: training epoch {train_s:.2f} s, re-evaluating the training set "
              f"{eval_train_s:.2f} s ({100 * rows[-1]['share_train_eval']:.1f}% of the epoch), test set "
              f"{eval_test_s:.2f} s", flush=True)
    return rows


# --------------------------------------------------------------------------------------------------
# where the Inception step's time goes
# --------------------------------------------------------------------------------------------------

OP_KINDS = (("convolution", ("conv",)), ("batch norm", ("batch_norm",)), ("matmul", ("mm", "linear", "matmul")),
            ("copies and layout", ("copy", "contiguous", "clone", "_to_copy", "cat", "index", "empty", "fill")),
            ("pooling", ("pool",)), ("activation", ("relu", "threshold")),
            ("loss", ("cross_entropy", "log_softmax", "nll")))


def op_kind(name: str) -> str:
    low = name.lower()
    return next((kind for kind, keys in OP_KINDS if any(k in low for k in keys)), "other (optimizer, elementwise)")


def bench_profile(device: torch.device, quick: bool, top: int = 12) -> dict:
    """torch.profiler over shattering's training epoch of the small Inception (CIFAR-shaped, batch 128): the
    operators with the most self CPU time, and the total by kind of operator, as shares of the profiled time."""
    from torch.profiler import ProfilerActivity, profile

    precision = resolve_precision("auto", device.type)
    steps = 1 if quick else 4
    with tempfile.TemporaryDirectory() as tmp:
        trainer, cfg = _trainer("inception-small", device, BATCH * steps, precision, tmp)
        trainer._train_epoch(cfg.lr)  # warm-up: oneDNN picks and caches its kernels on the first calls
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        t0 = time.perf_counter()
        with profile(activities=activities) as prof:
            trainer._train_epoch(cfg.lr)
        wall = time.perf_counter() - t0
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    ops = [{"op": e.key, "calls_per_step": e.count / steps, "ms_per_step": e.self_cpu_time_total / 1e3 / steps,
            "share": e.self_cpu_time_total / total} for e in events[:top]]
    kinds: dict[str, float] = {}
    for e in events:
        kinds[op_kind(e.key)] = kinds.get(op_kind(e.key), 0.0) + e.self_cpu_time_total / total
    out = {"model": "inception-small", "precision": precision, "steps": steps, "step_ms": 1e3 * wall / steps,
           "ops": ops, "kinds": dict(sorted(kinds.items(), key=lambda kv: -kv[1]))}
    print(f"profile inception-small ({precision}): {out['step_ms']:.0f} ms per step under the profiler; "
          + ", ".join(f"{k} {100 * v:.0f}%" for k, v in out["kinds"].items()), flush=True)
    return out


def bench_layouts(device: torch.device, quick: bool, model_name: str = "inception-small") -> list[dict]:
    """Training images/s of the small Inception in bf16 and fp32, channels_last and NCHW: the same step as
    shattering's (one tensor of images, batches by index, SGD with momentum), only precision and layout vary."""
    steps, repeats = (2, 1) if quick else (6, 3)
    n = BATCH * steps
    g = torch.Generator().manual_seed(0)
    x_all = torch.randn(n, *SHAPE, generator=g).to(device)
    y_all = torch.randint(0, CLASSES, (n,), generator=g).to(device)
    rows = []
    for precision in _precisions(device):
        for layout, fmt in (("channels_last", torch.channels_last), ("NCHW", torch.contiguous_format)):
            torch.manual_seed(0)
            model = build_model(model_name, SHAPE, CLASSES).to(device, memory_format=fmt)
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            x = x_all.contiguous(memory_format=fmt)

            def epoch(model=model, opt=opt, x=x, bf16=precision == "bf16"):
                model.train()
                for i in range(0, n, BATCH):
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                        loss = F.cross_entropy(model(x[i:i + BATCH]).float(), y_all[i:i + BATCH])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()

            rows.append({"model": model_name, "precision": precision, "layout": layout,
                         "img_s": n / median_time(epoch, repeats)})
            print(f"layouts {model_name} {precision} {layout}: {rows[-1]['img_s']:.0f} img/s", flush=True)
    return rows


# --------------------------------------------------------------------------------------------------
# the packed first layer on one shared batch: six mm, one bmm, one wide mm
# --------------------------------------------------------------------------------------------------


def bench_kernels(quick: bool, k: int = 6, batch: int = BATCH, d: int = 784, hidden: int = 512) -> list[dict]:
    """One fwd + bwd of ``k`` MLP 1x512 runs on one shared batch (Fashion-MNIST-sized, 10 classes), three ways:
    six separate runs' ``F.linear`` (what one after another computes), the batch repeated through ``baddbmm``
    ("batched"), and the packed module's wide first layer (one (B, D) @ (D, k*512) product, "wide")."""
    from shattering.train.packed import PackedMLP, packed_forward

    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, d, generator=g)
    members = [build_model("mlp-1x512", (1, 28, 28), CLASSES) for _ in range(k)]
    packed = PackedMLP(members)
    repeats = 5 if quick else 50
    rows = []
    for precision in _precisions(torch.device("cpu")):
        def step(fn, bf16=precision == "bf16"):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = fn()
            out.float().sum().backward()

        def separate():
            return torch.stack([m(x) for m in members])

        def batched():
            return packed_forward(list(packed.weights), list(packed.biases), x.unsqueeze(0).expand(k, -1, -1))

        def wide():
            return packed_forward(list(packed.weights), list(packed.biases), x)  # (B, D): the wide first layer

        row = {"precision": precision, "members": k, "batch": batch}
        for name, fn in (("separate", separate), ("batched", batched), ("wide", wide)):
            row[name] = 1e3 * median_time(lambda fn=fn: step(fn), repeats, warmup=3)
        rows.append(row)
        print(f"kernels {k} members, {batch} x {d} -> {hidden} -> {CLASSES}, {precision}: six mm "
              f"{row['separate']:.2f} ms, batched {row['batched']:.2f} ms, wide {row['wide']:.2f} ms", flush=True)
    return rows


# --------------------------------------------------------------------------------------------------
# subprocesses: the README main job, alone and two at once; a sweep through the CLI
# --------------------------------------------------------------------------------------------------

MAIN_JOB = ["--dataset", "digits", "--model", "mlp-1x512", "--corruption", "random-labels", "--until", "fit"]
QUICK_JOB = ["--dataset", "digits", "--model", "mlp-1x512", "--corruption", "random-labels", "--until", "epochs",
             "--epochs", "2"]


def bench_kernel_products(quick: bool) -> dict:
    """The 5,000-point kernel filled by each exact product of pixel codes, and the product chosen here (median of
    repeats, each in this process)."""
    from shattering.data.dataset import load_dataset
    from shattering.theory.kernel_evaluator import PRODUCTS, KernelEvaluator, pixel_product

    n = 500 if quick else 5000
    data = load_dataset("fashion-mnist", train_size=n, whitening="none", progress=False)
    x = torch.from_numpy(data.x_train.reshape(n, -1)).double()  # raw pixels / 255: the exact path
    out = torch.empty((n, n), dtype=torch.float64)
    seconds = {}
    for product in PRODUCTS:
        evaluator = KernelEvaluator(x, "gaussian", 10.0, product=product)
        seconds[product] = median_time(lambda e=evaluator: e.fill(out), 1 if quick else 3, warmup=0)
    pixel_product.cache_clear()
    choice = pixel_product()
    return {"n": n, "d": x.shape[1], "seconds": seconds, "chosen": choice["product"],
            "tile_seconds": choice["seconds"], "choice_source": choice["source"]}


def _shatter(args: list[str], threads: int | None = None, env_extra: dict | None = None) -> subprocess.Popen:
    """``shatter ARGS`` as a child process of this interpreter (this checkout's package first on the path);
    ``env_extra``: variables to set (a value of None removes the variable)."""
    env = dict(os.environ)
    for key, value in (env_extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    env["PYTHONPATH"] = os.pathsep.join([str(Path(shattering.__file__).resolve().parents[1]),
                                         env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return subprocess.Popen([sys.executable, "-m", "shattering", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _wait(procs: list[subprocess.Popen], t0: float) -> list[float]:
    """Each process's wall time from ``t0`` (all started at ``t0``); a failing one stops the bench."""
    times = [0.0] * len(procs)
    pending = dict(enumerate(procs))
    while pending:
        for i, proc in list(pending.items()):
            if proc.poll() is not None:
                times[i] = time.perf_counter() - t0
                if proc.returncode != 0:
                    raise RuntimeError(f"shatter {proc.args[3:]} failed: {proc.stderr.read()[-2000:]}")
                del pending[i]
        time.sleep(0.01)
    return times


def _jobs(n: int, job: list[str], threads: int | None = None) -> list[float]:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        return _wait([_shatter(["run", *job, "--quiet", "--out", str(Path(out) / str(i))], threads)
                      for i in range(n)], t0)


def bench_eval_run(quick: bool) -> dict:
    """The README's main job through ``shattering.run``: evaluation's share of the whole run, read from its
    summary (eval_seconds / seconds; how often a run evaluates is the trainer's business)."""
    job = {"dataset": "digits", "model": "mlp-1x512", "corruption": "random-labels"}
    job |= {"until": "epochs", "epochs": 2} if quick else {"until": "fit"}
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        result = shattering.run(**job, out=out)
        wall = time.perf_counter() - t0
    s = result.summary
    row = {"job": job, "status": s["status"], "epochs": s["epochs"], "wall_s": wall,
           "seconds": s["seconds"], "train_seconds": s.get("train_seconds"), "eval_seconds": s["eval_seconds"],
           "share": s["eval_seconds"] / s["seconds"] if s["seconds"] else float("nan")}
    print(f"eval README main job: {row['status']}, {row['seconds']:.1f} s of training and evaluation, "
          f"{row['eval_seconds']:.1f} s evaluating ({100 * row['share']:.1f}%)", flush=True)
    return row


def bench_concurrent(quick: bool) -> dict:
    """Two README main jobs started together as two processes against one alone: each one's wall time
    (process start, data and training), with each process's default threads and with the cores split."""
    job = QUICK_JOB if quick else MAIN_JOB
    cores = os.cpu_count() or 1
    half = max(1, cores // 2)
    row = {"job": "shatter run " + " ".join(job), "cores": cores, "half": half,
           "alone_s": statistics.median(_jobs(1, job)[0] for _ in range(1 if quick else 3)),
           "alone_half_s": _jobs(1, job, threads=half)[0],
           "together_s": _jobs(2, job), "together_half_s": _jobs(2, job, threads=half)}
    print(f"concurrent: alone {row['alone_s']:.1f} s ({half} threads: {row['alone_half_s']:.1f} s); two together "
          f"{' and '.join(f'{t:.1f}' for t in row['together_s'])} s, {half} threads each "
          f"{' and '.join(f'{t:.1f}' for t in row['together_half_s'])} s", flush=True)
    return row


FASHION_JOB = ["--dataset", "fashion-mnist", "--model", "mlp-1x512", "--corruption", "random-labels", "--train-size",
               "10000", "--test-size", "1000", "--until", "epochs", "--epochs", "20"]
OWN_POLICY = {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": None, "SHATTERING_SET_OMP_WAIT": None}


def _timed_jobs(job: list[str], env_extra: dict, delays: tuple[float, ...]) -> list[dict]:
    """``shatter run JOB --json`` started at each of ``delays`` (seconds after the first): each one's wall time
    from its own start, its training seconds and its lease's changes (from the summary)."""
    with tempfile.TemporaryDirectory() as out:
        procs, t0 = [], time.perf_counter()
        for i, delay in enumerate(delays):
            time.sleep(max(0.0, t0 + delay - time.perf_counter()))
            procs.append(_shatter(["run", *job, "--quiet", "--out", str(Path(out) / str(i))], env_extra=env_extra))
        walls = [w - d for w, d in zip(_wait(procs, t0), delays, strict=True)]
        rows = []
        for i, wall in enumerate(walls):
            summary = json.loads(next((Path(out) / str(i)).rglob("summary.json")).read_text())
            execution = summary.get("execution", {})
            rows.append({"wall_s": wall, "seconds": summary["seconds"], "threads": execution.get("threads"),
                         "openmp_wait": execution.get("openmp_wait"),
                         "changes": execution.get("lease", {}).get("changes", [])})
        return rows


def bench_wait_policy(quick: bool) -> dict:
    """OpenMP's wait policy for a process that starts alone, spinning (libgomp's default; one that starts while
    another holds the cores sleeps, and a holder gives it a core) against ``OMP_WAIT_POLICY=PASSIVE`` for every
    process: one Fashion-MNIST MLP job alone, and two of them, the second started 3 s after the first. Then what
    ``shatter tune --wait-policy`` measures and chooses on this machine (the README's digits job), so the two
    jobs' verdicts can be compared."""
    job = QUICK_JOB if quick else FASHION_JOB
    repeats = 1 if quick else 3
    row = {"job": "shatter run " + " ".join(job)}
    rule = OWN_POLICY | {"SHATTERING_OPENMP_WAIT": "rule"}  # the measured choice ignored: spinning alone
    for label, env in (("spin", rule), ("PASSIVE", rule | {"OMP_WAIT_POLICY": "PASSIVE"})):
        _timed_jobs(job, env, (0.0,))  # the tuning measurement of this policy is not what we time
        alone = [_timed_jobs(job, env, (0.0,))[0] for _ in range(repeats)]
        row[label] = {"alone_wall_s": statistics.median(r["wall_s"] for r in alone),
                      "alone_seconds": statistics.median(r["seconds"] for r in alone),
                      "alone_threads": alone[0]["threads"], "openmp_wait": alone[0]["openmp_wait"],
                      "staggered": _timed_jobs(job, env, (0.0, 3.0))}
        x = row[label]
        print(f"wait-policy {label}: alone {x['alone_wall_s']:.1f} s wall ({x['alone_seconds']:.1f} s training, "
              f"{x['alone_threads']} threads); two, the second 3 s later: "
              + " and ".join(f"{r['wall_s']:.1f} s" for r in x["staggered"]), flush=True)
    if not quick:
        chosen = measure_wait_policy()
        row["chosen"] = {k: chosen[k] for k in ("policy", "why", "timings", "job")}
        print(f"wait-policy chosen by `shatter tune --wait-policy`: {chosen['why']}", flush=True)
    return row


def bench_eval_quick(quick: bool) -> list[dict]:
    """Evaluation's share of short ``--until fit`` runs: Fig. 1a's quick scale (500 Fashion-MNIST training
    images, 500 test images, up to 150 epochs), true and random labels, each paper model; read from each
    run's summary (eval_seconds / seconds, full passes, fit probes)."""
    try:
        shattering.load_dataset("fashion-mnist")
    except shattering.errors.ShatteringError:
        return []
    models = ("mlp-1x512",) if quick else ("mlp-1x512", "alexnet-small", "inception-small")
    rows = []
    for model in models:
        for corruption in ("true-labels", "random-labels"):
            with tempfile.TemporaryDirectory() as out:
                result = shattering.run(dataset="fashion-mnist", model=model, corruption=corruption,
                                        train_size=200 if quick else 500, test_size=500, epochs=150, until="fit",
                                        out=out)
            s = result.summary
            ev = s["evaluation"]
            row = {"model": model, "corruption": corruption, "status": s["status"], "epochs": s["epochs"],
                   "passes": ev["passes"], "fit_probes": ev["fit_probes"], "seconds": s["seconds"],
                   "eval_seconds": s["eval_seconds"], "share": s["eval_seconds"] / s["seconds"]}
            rows.append(row)
            print(f"eval-quick {model} {corruption}: {row['status']} after {row['epochs']} epochs, "
                  f"{row['passes']} full passes, evaluation {100 * row['share']:.1f}% of {row['seconds']:.1f} s",
                  flush=True)
    return rows


def bench_sweep_workers(quick: bool) -> dict:
    """6 corruption levels x 3 seeds of MLP 1x512 (Fig. 1b/1c's grid, ``--scale quick``: 500 Fashion-MNIST
    images, until fit; ``--scale smoke`` with ``--quick``) through
    ``shatter sweep`` as the CLI runs it by default (measured workers x threads, packs per seed), against the
    same 18 configs with ``--pack 1 --local-workers 1`` (one run at a time, in one process), and with ``--pack 1``
    alone (the workers without packing): all as subprocesses, wall time from start to exit."""
    # quick scale: 500 Fashion-MNIST images a run, until fit (smoke's few epochs measure process start-up)
    args = ["sweep", "fig1bc", "--scale", "smoke" if quick else "quick", "--models", "mlp-1x512", "--seeds", "3",
            "--quiet"]
    row = {"command": "shatter " + " ".join(args)}
    for label, extra in (("default", []), ("pack 1", ["--pack", "1", "--local-workers", "1"]),
                         ("workers, pack 1", ["--pack", "1"])):
        times = []
        for _ in range(1 if quick else 3):
            with tempfile.TemporaryDirectory() as out:
                t0 = time.perf_counter()
                times += _wait([_shatter([*args, *extra, "--out", out])], t0)
                if label == "default":  # how the CLI ran it: its workers and measured pack size
                    summary = json.loads(next(Path(out).rglob("summary.json")).read_text())
                    row["plan"] = summary["execution"]["sweep"]
        row[label] = statistics.median(times)
    row["speedup"] = row["pack 1"] / row["default"]
    print(f"sweep-workers {row['command']}: {row['default']:.1f} s as the CLI runs it, {row['pack 1']:.1f} s with "
          f"--pack 1 --local-workers 1 (one at a time), x{row['speedup']:.2f}; workers without packing "
          f"{row['workers, pack 1']:.1f} s", flush=True)
    return row


# --------------------------------------------------------------------------------------------------
# RESULTS.md
# --------------------------------------------------------------------------------------------------


def measured_line(m: dict, load: tuple[float, float], date: str) -> str:
    flags = ", ".join(m["flags"]) or "none of " + ", ".join(CPU_FLAGS)
    return (f"Measured {date} on {m['cpu']}, {m['cores']} cores ({m['threads']} torch threads), {m['memory_gib']} "
            f"GiB, CPU flags: {flags}; torch {m['torch']}, Python {m['python']}"
            + (f"; GPU {m['gpu']}" if m.get("gpu") else "")
            + (f"; OpenMP wait: {m['openmp_wait']}" if m.get("openmp_wait") else "")
            + f". Load average {load[0]} at the start, {load[1]} at the end; each figure the median of repeats.")


def render_part(name: str, r, m: dict, load: tuple[float, float], date: str) -> list[str]:
    """The Markdown of one part of the bench (its heading, how it was measured, its table)."""
    lines = []
    if name == "peak":
        bf16 = (f"bf16 {r['bf16']:.0f} GFLOP/s" if r["bf16_size"] == r["size"] else
                f"bf16 {r['bf16']:.1f} GFLOP/s on {r['bf16_size']}x{r['bf16_size']} (no bf16 instructions: torch "
                "emulates it, and shattering's default precision here is fp32)")
        lines += ["### Matmul peak", "", measured_line(m, load, date), "",
                  f"torch.mm {r['size']}x{r['size']}: fp32 {r['fp32']:.0f} GFLOP/s, {bf16}."]
    elif name == "train":
        lines += ["### Training images/s (3x28x28 inputs, batch 128)", "", measured_line(m, load, date), "",
                  "Ceiling: the most any training step could gain over the textbook loop, were its FLOPs done at "
                  "this machine's matmul peak in shattering's precision (that peak over the textbook loop's GFLOP/s).",
                  "", "| model | GFLOP/image | textbook loop (fp32, NCHW, DataLoader) | textbook share of the fp32 "
                  "peak | shattering | speed-up | shattering GFLOP/s | share of peak | ceiling |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for row in r:
            textbook = f"{100 * row['textbook_share']:.0f}%" if "textbook_share" in row else "-"
            ceiling = f"{row['ceiling']:.1f}x" if "ceiling" in row else "-"
            lines.append(f"| {row['model']} | {row['gflop_per_image']:.3f} | {row['textbook_img_s']:.0f} | "
                         f"{textbook} | {row['ours_img_s']:.0f} ({row['precision']}) | {row['speedup']:.2f}x | "
                         f"{row['ours_gflops']:.0f} | {100 * row['share_of_peak']:.0f}% | {ceiling} |")
    elif name == "profile":
        lines += [f"### Where the small Inception's training step goes ({r['precision']}, torch.profiler)", "",
                  measured_line(m, load, date), "",
                  f"{r['steps']} training steps of batch 128 (3x28x28) after a warm-up: {r['step_ms']:.0f} ms per step "
                  "under the profiler. Self CPU time by kind of operator: "
                  + ", ".join(f"{k} {100 * v:.1f}%" for k, v in r["kinds"].items()) + ".", "",
                  "| operator | calls per step | self ms per step | share |", "|---|---|---|---|"]
        for op in r["ops"]:
            lines.append(f"| `{op['op']}` | {op['calls_per_step']:.0f} | {op['ms_per_step']:.1f} | "
                         f"{100 * op['share']:.1f}% |")
    elif name == "layouts":
        lines += ["### Small Inception training images/s by precision and memory layout", "",
                  measured_line(m, load, date), "", "| precision | channels_last | NCHW |", "|---|---|---|"]
        for precision in ("bf16", "fp32"):
            by = {row["layout"]: row["img_s"] for row in r if row["precision"] == precision}
            lines.append(f"| {precision} | {by['channels_last']:.0f} | {by['NCHW']:.0f} |" if by else
                         f"| {precision} | not measured: emulated on this CPU | |")
    elif name == "kernels":
        lines += ["### Packed first layer on one shared batch: six mm, one bmm, one wide mm", "",
                  measured_line(m, load, date), "",
                  "One fwd + bwd of 6 MLP 1x512 runs on one batch of 128 x 784 (-> 512 -> 10): six separate runs' "
                  "products, the batch repeated through one `baddbmm` per layer (batched), and the first layer as "
                  "one (128 x 784) @ (784 x 3072) product (wide; `shared_input_kernel`'s choice).", "",
                  "| precision | six mm ms | batched ms | wide ms |", "|---|---|---|---|"]
        for row in r:
            lines.append(f"| {row['precision']} | {row['separate']:.2f} | {row['batched']:.2f} | {row['wide']:.2f} |")
    elif name == "sweep":
        lines += ["### Fig. 1b/1c sweep of MLP 1x512, 6 corruption levels: one after another vs packed", "",
                  measured_line(m, load, date), "",
                  "One seed: the six runs see the same batches, so the pack takes the wide first layer.", "",
                  "One after another and packed: in one process (`local_workers=1`); default: as `run_sweep` runs it "
                  "(its measured worker processes, each taking packs).", "",
                  "Ceiling: the most any way of training the six runs could gain over one after another, were the "
                  "training steps' FLOPs (counted exactly, no input gradient) done at this machine's matmul peak in "
                  "the run's precision and evaluation free.", "",
                  "| data | training images | epochs | precision | one after another s | packed s | speed-up | "
                  "default s | speed-up | training GFLOP | ceiling |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in r:
            ceiling = (f"{row['train_gflop']:.0f} | {row['ceiling']:.1f}x" if "ceiling" in row else "- | -")
            lines.append(f"| {row['dataset']} | {row['train_size']} | {row['epochs']} | {row['precision']} | "
                         f"{row['one after another']:.1f} | {row['packed']:.1f} | **{row['speedup']:.2f}x** | "
                         f"{row['default']:.1f} | **{row['speedup_default']:.2f}x** | {ceiling} |")
    elif name == "eval":
        lines += ["### Evaluation's share of a whole run (the README main job)", "", measured_line(m, load, date), "",
                  f"`shattering.run({', '.join(f'{k}={v!r}' for k, v in r['job'].items())})`: {r['status']} after "
                  f"{r['epochs']} epochs, {r['seconds']:.1f} s of training and evaluation ({r['wall_s']:.1f} s wall "
                  f"with data and records), of which evaluation **{r['eval_seconds']:.1f} s ({100 * r['share']:.1f}%)**"
                  " (the summary's eval_seconds / seconds)."]
    elif name == "eval-epoch":
        lines += ["### Evaluation share of an epoch (eval mode, no autograd)", "", measured_line(m, load, date), "",
                  "An epoch = one training pass + re-evaluating the whole training set + a test set a fifth its size.",
                  "", "| model | training images | training pass s | training-set evaluation s (share) | "
                  "test-set evaluation s | all evaluation share |", "|---|---|---|---|---|---|"]
        for row in r:
            lines.append(f"| {row['model']} | {row['train_size']} | {row['train_s']:.2f} | {row['eval_train_s']:.2f} "
                         f"({100 * row['share_train_eval']:.1f}%) | {row['eval_test_s']:.2f} | "
                         f"{100 * row['share_all_eval']:.1f}% |")
    elif name == "concurrent":
        lines += ["### Two README main jobs at once", "", measured_line(m, load, date), "",
                  f"`{r['job']}`, each in its own process (wall time: start, data, training, records).", "",
                  "| | wall s |", "|---|---|",
                  f"| one alone | {r['alone_s']:.1f} |",
                  f"| one alone, {r['half']} threads | {r['alone_half_s']:.1f} |",
                  f"| two together, each | {' and '.join(f'{t:.1f}' for t in r['together_s'])} |",
                  f"| two together, {r['half']} threads each | "
                  f"{' and '.join(f'{t:.1f}' for t in r['together_half_s'])} |"]
    elif name == "wait-policy":
        lines += ["### OpenMP's wait policy: spinning alone against PASSIVE everywhere", "",
                  measured_line(m, load, date), "",
                  f"`{r['job']}`, each in its own process; wall time from its start (torch import, data, tuning "
                  "from the cache, training, records) and the summary's training seconds.", "",
                  "| policy | alone: wall s (training s, threads) | two, the second 3 s later: wall s each | "
                  "the lease's changes |", "|---|---|---|---|"]
        for label in ("spin", "PASSIVE"):
            x = r.get(label) or r["shattering"]  # "shattering": the label of results measured before 2026-12-03
            label = label if label in r else "shattering's rule"
            changes = "; ".join(f"run {i + 1} at {c['after_s']:.1f} s: {c['threads']} thread(s), {c['why']}"
                                for i, one in enumerate(x["staggered"]) for c in one["changes"]) or "none"
            walls = " and ".join(f"{o['wall_s']:.1f}" for o in x["staggered"])
            lines.append(f"| {label} ({x['openmp_wait']}) | {x['alone_wall_s']:.1f} ({x['alone_seconds']:.1f}, "
                         f"{x['alone_threads']}) | {walls} | {changes} |")
        if r.get("chosen"):
            lines += ["", f"`shatter tune --wait-policy` on this machine (`shatter run {' '.join(r['chosen']['job'])}`,"
                          f" training seconds): **{r['chosen']['policy']}**, {r['chosen']['why']}."]
    elif name == "eval-quick":
        lines += ["### Evaluation's share of short runs to fit (500 Fashion-MNIST images)", "",
                  measured_line(m, load, date), "",
                  "`shattering.run(dataset='fashion-mnist', train_size=500, test_size=500, epochs=150, until='fit')`"
                  " per model and labels; the summary's eval_seconds / seconds.", "",
                  "| model | labels | status | epochs | full passes | fit probes | run s | evaluation share |",
                  "|---|---|---|---|---|---|---|---|"]
        for row in r:
            lines.append(f"| {row['model']} | {row['corruption']} | {row['status']} | {row['epochs']} | "
                         f"{row['passes']} | {row['fit_probes']} | {row['seconds']:.1f} | "
                         f"**{100 * row['share']:.1f}%** |")
    elif name == "kernel-products":
        best = min(r["seconds"], key=r["seconds"].get)
        lines += [f"### The exact kernel of {r['n']:,} points ({r['d']} raw pixels): which product of pixel codes",
                  "", measured_line(m, load, date), "",
                  "Seconds to fill the Gaussian kernel matrix (`KernelEvaluator.fill`, float64 values, exact integer "
                  "squared distances) by each exact product of the pixel codes; the product `pixel_product` chose "
                  f"on this machine from its own 512 x 512 x 784 tile timing: **{r['chosen']}** "
                  f"({r['choice_source']}; tile ms: "
                  + ", ".join(f"{k} {1000 * v:.1f}" for k, v in r["tile_seconds"].items()) + ").", "",
                  "| product | fill s | against int8 (the path before the measured choice) |", "|---|---|---|"]
        for product, sec in r["seconds"].items():
            mark = "**" if product == best else ""
            lines.append(f"| {product}{' (chosen)' if product == r['chosen'] else ''} | {mark}{sec:.2f}{mark} | "
                         f"{r['seconds']['int8'] / sec:.2f}x |" if "int8" in r["seconds"] else
                         f"| {product} | {sec:.2f} | - |")
    elif name == "sweep-workers":
        lines += ["### A 6-level x 3-seed MLP sweep through the CLI", "", measured_line(m, load, date), "",
                  f"`{r['command']}` (18 runs) as the CLI runs it by default: **{r['default']:.1f} s**; the same "
                  f"with `--pack 1 --local-workers 1` (one run at a time): {r['pack 1']:.1f} s; "
                  f"**{r['speedup']:.2f}x**; "
                  f"the workers without packing (`--pack 1`): {r['workers, pack 1']:.1f} s. Wall time of the "
                  "subprocess, start to exit."]
        plan = r.get("plan") or {}
        if plan:
            lines += ["", f"The CLI's plan: {plan.get('why', '')}."
                      + (f" Pack size: {plan['pack']['why']}." if plan.get("pack") else "")]
    return lines


def _markers(key: str) -> tuple[str, str]:
    return f"<!-- {key}:start -->", f"<!-- {key}:end -->"


def start_part() -> tuple[dict, str, str, float]:
    """What a script that writes a part of RESULTS.md records first: the machine (printed as one JSON line), the
    date, the machine's section slug and the load average at the start."""
    info = machine()
    slug = machine_slug(info)
    print(json.dumps(info | {"slug": slug}), flush=True)
    return info, time.strftime("%Y-%m-%d"), slug, load_average()


def finish_part(slug: str, title: str, part: str, body: list[str], write: bool) -> int:
    """Print ``body``; with ``write``, write it as part ``part`` of machine ``slug``'s section of RESULTS.md
    (:func:`write_part`) and say so. Returns 0, a script's exit status."""
    print("\n".join(body))
    if write:
        text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
        RESULTS.write_text(write_part(text, slug, title, part, body).rstrip("\n") + "\n")
        print(f"wrote {RESULTS} (section speed-{slug}, part {part})")
    return 0


def write_part(text: str, slug: str, title: str, part: str, body: list[str]) -> str:
    """``text`` (RESULTS.md) with part ``part`` of machine ``slug``'s section replaced by ``body`` (or added at the
    end of that section; the section added at the end of the file, headed ``title``, when new)."""
    m_start, m_end = _markers(f"speed-{slug}")
    p_start, p_end = _markers(f"speed-{slug}-{part}")
    block = "\n".join([p_start, *body, p_end])
    if m_start not in text or m_end not in text:
        text = text.rstrip("\n") + f"\n\n{m_start}\n## Speed on {title} (bench/bench.py)\n\n{m_end}\n"
    if p_start in text and p_end in text:
        return text[:text.index(p_start)] + block + text[text.index(p_end) + len(p_end):]
    at = text.index(m_end)
    return text[:at] + block + "\n\n" + text[at:]


PARTS = ("peak", "train", "profile", "layouts", "kernels", "sweep", "eval", "eval-epoch", "eval-quick", "concurrent",
         "wait-policy", "sweep-workers", "kernel-products")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="one repeat, tiny sizes: checks the script (prints only unless --write)")
    parser.add_argument("--only", default=",".join(PARTS), help="comma-separated parts: " + ", ".join(PARTS))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument("--write", action="store_true", help="write RESULTS.md even with --quick")
    args = parser.parse_args(argv)
    parts = [p for p in args.only.split(",") if p]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)} in --only; choose from {', '.join(PARTS)}")
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    info, date = machine(), time.strftime("%Y-%m-%d")
    slug = machine_slug(info)
    print(json.dumps(info | {"slug": slug}), flush=True)
    quick = args.quick
    peak = None
    measured: list[tuple[str, object, tuple[float, float]]] = []
    for part in PARTS:
        if part not in parts and not (part == "peak" and {"train", "sweep"} & set(parts)):
            continue
        before = load_average()
        if part == "peak":
            peak = result = matmul_peak(device, 3 if quick else 10)
            print(f"peak fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.1f} GFLOP/s "
                  f"({peak['bf16_size']}x{peak['bf16_size']})", flush=True)
        elif part == "train":
            result = bench_train(device, quick, peak)
        elif part == "profile":
            result = bench_profile(device, quick)
        elif part == "layouts":
            result = bench_layouts(device, quick)
        elif part == "kernels":
            result = bench_kernels(quick)
        elif part == "sweep":
            result = bench_sweep(quick, peak)
        elif part == "eval":
            result = bench_eval_run(quick)
        elif part == "eval-epoch":
            result = bench_eval_epoch(device, quick)
        elif part == "eval-quick":
            result = bench_eval_quick(quick)
        elif part == "concurrent":
            result = bench_concurrent(quick)
        elif part == "wait-policy":
            result = bench_wait_policy(quick)
        elif part == "kernel-products":
            result = bench_kernel_products(quick)
        else:
            result = bench_sweep_workers(quick)
        measured.append((part, result, (before, load_average())))
    if args.no_write or (quick and not args.write):
        return 0
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    title = info["cpu"] + (" (AVX2, no AVX-512)" if slug.endswith("-avx2") else "") \
        + (f" + {info['gpu']}" if info.get("gpu") else "")
    for part, result, load in measured:
        text = write_part(text, slug, title, part, render_part(part, result, info, load, date))
    RESULTS.write_text(text if text.endswith("\n") else text + "\n")
    print(f"wrote {RESULTS} (section speed-{slug})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
