"""Speed of shattering against a textbook PyTorch loop, measured in one process (issue 6).

    python bench/bench.py                 # everything; writes bench/RESULTS.md (its "speed" section)
    python bench/bench.py --quick         # fewer/lighter repeats (a smoke test of the script itself)
    python bench/bench.py --only peak,train,sweep,eval

What is measured (each figure the median of several repeats, the baseline in the same process):

- ``peak``: the machine's matmul peak, fp32 and bf16 (torch.mm on 4096x4096).
- ``train``: training images/s of each paper model on CIFAR-shaped inputs (3x28x28, 10 classes): a textbook
  loop (torch DataLoader over a TensorDataset, fp32, NCHW) against shattering's trainer step (data as one
  tensor, batches by index, bf16 autocast where native, channels_last); achieved GFLOP/s from the exact
  operation count of one training step (torch.utils.flop_counter) beside the measured peak.
- ``sweep``: the Fig. 1b/1c label-corruption sweep of MLP 1x512 (6 levels) run one after another against
  packed into one model.
- ``eval``: seconds of whole-training-set evaluation per epoch as a share of the epoch.
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

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

import shattering
from shattering.config import RunConfig
from shattering.data.dataset import ImageData
from shattering.devices import cpu_has_native_bf16, resolve_precision
from shattering.executors.sweep import run_sweep
from shattering.models import MODELS, build_model
from shattering.runs import RunRecord
from shattering.train.evaluate import predict
from shattering.train.in_memory import InMemoryTrainer

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
SHAPE = (3, 28, 28)  # the paper's CIFAR-10 input after the centre crop
CLASSES = 10
BATCH = 128


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
            "torch": torch.__version__, "python": platform.python_version(), "native_bf16": cpu_has_native_bf16()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


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


def matmul_peak(device: torch.device, repeats: int, size: int = 4096) -> dict:
    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a = torch.randn(size, size, device=device).to(dtype)
        b = torch.randn(size, size, device=device).to(dtype)
        seconds = median_time(lambda a=a, b=b: torch.mm(a, b), repeats)
        out[name] = 2 * size**3 / seconds / 1e9
    return out


# --------------------------------------------------------------------------------------------------
# training throughput
# --------------------------------------------------------------------------------------------------


def step_flops(model_name: str, precision: str) -> float:
    """FLOPs of one training step (forward + backward) per image, counted exactly on one batch."""
    model = build_model(model_name, SHAPE, CLASSES)
    x, y = torch.randn(BATCH, *SHAPE), torch.randint(0, CLASSES, (BATCH,))
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops() / BATCH


def textbook_images_per_s(model_name: str, device: torch.device, steps: int, repeats: int) -> float:
    """torch DataLoader over a TensorDataset, fp32, NCHW, plain loop: what most re-implementations do."""
    n = BATCH * steps
    data = TensorDataset(torch.randn(n, *SHAPE), torch.randint(0, CLASSES, (n,)))
    loader = DataLoader(data, batch_size=BATCH, shuffle=True)
    torch.manual_seed(0)
    model = build_model(model_name, SHAPE, CLASSES).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def epoch():
        model.train()
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()

    return n / median_time(epoch, repeats)


def _trainer(model_name: str, device: torch.device, n: int, precision: str, tmp: str):
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
                    log_every=10**9).resolved()
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
                     "share_of_peak": ours * flops / 1e9 / peak_ours, "precision": precision})
        print(f"train {name:<22} textbook {base:9.1f} img/s  ours {ours:9.1f} img/s  x{ours / base:4.2f}  "
              f"{ours * flops / 1e9:6.1f} GFLOP/s ({100 * ours * flops / 1e9 / peak_ours:4.1f}% of {precision} peak)",
              flush=True)
    return rows


# --------------------------------------------------------------------------------------------------
# packed sweep
# --------------------------------------------------------------------------------------------------


def _sweep(base: dict, pack: int | None) -> None:
    """The six corruption levels of ``base`` as one sweep, in a fresh folder."""
    with tempfile.TemporaryDirectory() as out:
        cfgs = [RunConfig(**base, p=p, out=out) for p in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)]
        outcomes = run_sweep(cfgs, progress=False, pack=pack)
        assert all(o.ok for o in outcomes), [o.error for o in outcomes]


def bench_sweep(quick: bool) -> list[dict]:
    """Fig. 1b/1c's 6 corruption levels of MLP 1x512: one after another vs packed into one model, on the
    bundled digits (small inputs: per-step overhead dominates) and on Fashion-MNIST (784 inputs: the matmuls
    dominate), in the default precision and in fp32."""
    cases = [("digits", None, 5 if quick else 20, "auto")]
    try:
        shattering.load_dataset("fashion-mnist")
        size = 2000 if quick else 10000
        epochs = 2 if quick else 5
        cases += [("fashion-mnist", size, epochs, "auto"), ("fashion-mnist", size, epochs, "fp32")]
    except shattering.errors.ShatteringError:
        pass
    rows = []
    for dataset, train_size, epochs, precision in cases:
        row = {"dataset": dataset, "train_size": train_size or "all", "epochs": epochs,
               "precision": resolve_precision(precision, "cpu")}
        shattering.load_dataset(dataset)  # the file read is not what we time
        base = {"dataset": dataset, "model": "mlp-1x512", "corruption": "partial-labels", "train_size": train_size,
                "test_size": 1000 if train_size else None, "until": "epochs", "epochs": epochs,
                "precision": precision}
        for label, pack in (("one after another", 1), ("packed", None)):
            _sweep(base | {"epochs": 1}, pack)  # warm-up: the first calls of each kernel are not what we time
            row[label] = median_time(lambda base=base, pack=pack: _sweep(base, pack), 1 if quick else 3, warmup=0)
        row["speedup"] = row["one after another"] / row["packed"]
        rows.append(row)
        print(f"sweep MLP 1x512 x 6 levels ({dataset}, {train_size or 'all'} images, {epochs} epochs, "
              f"{row['precision']}): {row['one after another']:.1f} s one after another, {row['packed']:.1f} s "
              f"packed, x{row['speedup']:.2f}", flush=True)
    return rows


# --------------------------------------------------------------------------------------------------
# evaluation share
# --------------------------------------------------------------------------------------------------


def bench_eval(device: torch.device, quick: bool) -> list[dict]:
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
        print(f"eval {model:<16} {n} images: training epoch {train_s:.2f} s, re-evaluating the training set "
              f"{eval_train_s:.2f} s ({100 * rows[-1]['share_train_eval']:.1f}% of the epoch), test set "
              f"{eval_test_s:.2f} s", flush=True)
    return rows


# --------------------------------------------------------------------------------------------------
# RESULTS.md
# --------------------------------------------------------------------------------------------------


def render(results: dict) -> str:
    m = results["machine"]
    lines = ["<!-- speed:start -->", "## Speed (bench/bench.py)", "",
             f"Machine: {m['cpu']}, {m['cores']} cores ({m['threads']} torch threads), {m['memory_gib']} GiB; "
             f"torch {m['torch']}, Python {m['python']}; native bf16: {m['native_bf16']}"
             + (f"; GPU {m['gpu']}" if m.get("gpu") else "") + f". Measured {results['date']}; each figure the "
             "median of several repeats, the baseline in the same process.", ""]
    if "peak" in results:
        p = results["peak"]
        lines += [f"Matmul peak (torch.mm 4096x4096): fp32 {p['fp32']:.0f} GFLOP/s, bf16 {p['bf16']:.0f} GFLOP/s.", ""]
    if "train" in results:
        lines += ["### Training images/s (3x28x28 inputs, batch 128)", "",
                  "| model | GFLOP/image | textbook loop (fp32, NCHW, DataLoader) | shattering | speed-up | "
                  "shattering GFLOP/s | share of peak |", "|---|---|---|---|---|---|---|"]
        for r in results["train"]:
            lines.append(f"| {r['model']} | {r['gflop_per_image']:.3f} | {r['textbook_img_s']:.0f} | "
                         f"{r['ours_img_s']:.0f} ({r['precision']}) | {r['speedup']:.2f}x | {r['ours_gflops']:.0f} | "
                         f"{100 * r['share_of_peak']:.0f}% |")
        lines.append("")
    if "sweep" in results:
        lines += ["### Fig. 1b/1c sweep of MLP 1x512, 6 corruption levels: one after another vs packed", "",
                  "| data | training images | epochs | precision | one after another s | packed s | speed-up |",
                  "|---|---|---|---|---|---|---|"]
        for r in results["sweep"]:
            lines.append(f"| {r['dataset']} | {r['train_size']} | {r['epochs']} | {r['precision']} | "
                         f"{r['one after another']:.1f} | {r['packed']:.1f} | **{r['speedup']:.2f}x** |")
        lines.append("")
    if "eval" in results:
        lines += ["### Evaluation share of an epoch (eval mode, no autograd, batches of 1024)", "",
                  "An epoch = one training pass + re-evaluating the whole training set + a test set a fifth its size.",
                  "", "| model | training images | training pass s | training-set evaluation s (share) | "
                  "test-set evaluation s | all evaluation share |", "|---|---|---|---|---|---|"]
        for r in results["eval"]:
            lines.append(f"| {r['model']} | {r['train_size']} | {r['train_s']:.2f} | {r['eval_train_s']:.2f} "
                         f"({100 * r['share_train_eval']:.1f}%) | {r['eval_test_s']:.2f} | "
                         f"{100 * r['share_all_eval']:.1f}% |")
        lines.append("")
    lines.append("<!-- speed:end -->")
    return "\n".join(lines) + "\n"


def write_results(section: str, marker: str = "speed") -> None:
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    if start in text and end in text:
        text = text[: text.index(start)] + section.rstrip("\n") + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text if text.endswith("\n") else text + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few repeats, small sizes: checks the script")
    parser.add_argument("--only", default="peak,train,sweep,eval")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    parts = set(args.only.split(","))
    results = {"machine": machine(), "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(results["machine"]), flush=True)
    results["peak"] = matmul_peak(device, 3 if args.quick else 10)
    print(f"peak fp32 {results['peak']['fp32']:.0f} GFLOP/s, bf16 {results['peak']['bf16']:.0f} GFLOP/s", flush=True)
    if "train" in parts:
        results["train"] = bench_train(device, args.quick, results["peak"])
    if "sweep" in parts:
        results["sweep"] = bench_sweep(args.quick)
    if "eval" in parts:
        results["eval"] = bench_eval(device, args.quick)
    if not args.no_write:
        write_results(render(results))
        print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
