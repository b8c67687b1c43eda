"""Where a training step's time goes, and whether compiling it pays: shattering's trainer epoch against the
textbook loop, the same batch size and data shape, in one process (issue 32).

    python bench/step_profile.py                     # writes this machine's part "step-profile" of RESULTS.md
    python bench/step_profile.py --models mlp-1x512 --no-write

Per paper model, on CIFAR-shaped random inputs (3x28x28, 10 classes, batches of 128, as ``bench.py --only train``):

1. images/s (the median of 7 rounds, each loop one epoch in turn) of the textbook loop (DataLoader over a
   TensorDataset, fp32, NCHW; an MLP as ``nn.Sequential`` of ``nn.Linear``: ``bench.textbook_model``), of
   shattering's epoch (``InMemoryTrainer._train_epoch``) in fp32 and in the precision shattering picks here, and
   of that epoch with ``compile on`` (``torch.compile`` of the model: forward and backward); the compiled one's
   first epoch less a median epoch is its compile time;
2. torch.profiler over one epoch of each eager loop: microseconds per step in the operators of each kind (matrix
   products and convolutions, the optimizer, dtype casts, indexing, the loss, the rest), and the step's wall time
   less all operator time (Python and dispatch outside the operators);
3. Python's cProfile of one shattering epoch of the MLP 1x512 and the small AlexNet: the functions of shattering
   (and torch's Python) with the most time of their own, per step.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shattering  # noqa: E402  first: it decides OpenMP's wait policy before torch loads

shattering.set_openmp_wait_policy()

import bench as base  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from shattering.devices import resolve_precision  # noqa: E402
from shattering.models import MODELS  # noqa: E402

PART = "step-profile"
STEPS = {"mlp-1x512": 40, "mlp-3x512": 40, "alexnet-small": 8}  # others (the Inceptions): 6
PYTHON_PROFILED = ("mlp-1x512", "alexnet-small")
ROUNDS = 7
KINDS = (("products", ("mm", "addmm", "bmm", "baddbmm", "linear", "convolution", "conv", "mkldnn")),
         ("optimizer", ("sgd", "_foreach", "add_", "mul_", "lerp", "addcmul")),
         ("casts", ("to", "_to_copy", "copy_", "contiguous", "clone")),
         ("indexing", ("index", "gather", "scatter", "take", "randperm", "slice", "select")),
         ("loss", ("cross_entropy", "log_softmax", "nll_loss", "softmax")))


def kind_of(name: str) -> str:
    op = name.removeprefix("aten::").removeprefix("mkldnn::").lower()
    for kind, words in KINDS:
        if any(op == w or op.startswith(w) or w in op for w in words):
            return kind
    return "other"


def textbook(model_name: str, steps: int):
    n = base.BATCH * steps
    loader = DataLoader(TensorDataset(torch.randn(n, *base.SHAPE), torch.randint(0, base.CLASSES, (n,))),
                        batch_size=base.BATCH, shuffle=True)
    torch.manual_seed(0)
    model = base.textbook_model(model_name)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def epoch():
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()

    return epoch


def ours(model_name: str, steps: int, precision: str, tmp: str, compile: str = "off"):
    trainer, cfg = base._trainer(model_name, torch.device("cpu"), base.BATCH * steps, precision, tmp, compile)
    return lambda: trainer._train_epoch(cfg.lr)


def interleaved_medians(loops: dict, rounds: int) -> dict:
    """Seconds per epoch of each loop, the median of ``rounds`` rounds that run every loop once in turn (after a
    warm-up epoch each), so that a burst of other work on the machine hits every loop alike."""
    for epoch in loops.values():
        epoch()
    times: dict = {how: [] for how in loops}
    for _ in range(rounds):
        for how, epoch in loops.items():
            t0 = time.perf_counter()
            epoch()
            times[how].append(time.perf_counter() - t0)
    return {how: statistics.median(t) for how, t in times.items()}


def first_epoch_seconds(epoch) -> float:
    t0 = time.perf_counter()
    epoch()
    return time.perf_counter() - t0


def op_profile(epoch, steps: int) -> dict:
    """Microseconds per step by kind of operator (self CPU time), the wall time per step, and what is outside
    every operator (wall less the sum of self times)."""
    epoch()  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        epoch()
        wall = time.perf_counter() - t0
    by_kind: dict[str, float] = {}
    for event in prof.key_averages():
        by_kind[kind_of(event.key)] = by_kind.get(kind_of(event.key), 0.0) + event.self_cpu_time_total
    per_step = {k: v / steps for k, v in by_kind.items()}
    ops = sum(per_step.values())
    return {"wall_us": 1e6 * wall / steps, "ops_us": ops, "outside_us": 1e6 * wall / steps - ops, **per_step}


def python_profile(epoch, steps: int, top: int = 8) -> list[tuple[str, float]]:
    epoch()
    prof = cProfile.Profile()
    prof.enable()
    epoch()
    prof.disable()
    stats = pstats.Stats(prof, stream=io.StringIO())
    rows = []
    for (file, line, name), (_, _, tottime, _, _) in stats.stats.items():
        if "shattering" in file or "torch" in file:
            short = file.split("site-packages/")[-1].split("src/")[-1]
            rows.append((f"{short}:{line} {name}", 1e6 * tottime / steps))
    return sorted(rows, key=lambda r: -r[1])[:top]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(m.name for m in MODELS.values() if m.paper_params))
    parser.add_argument("--no-compile", action="store_true", help="leave out the compiled epochs")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args(argv)
    info, date, slug, before = base.start_part()
    auto = resolve_precision("auto", "cpu")
    rows, pythons = [], {}
    for name in [m for m in args.models.split(",") if m]:
        steps = STEPS.get(name, 6)
        with tempfile.TemporaryDirectory() as tmp:
            loops = {"textbook fp32": textbook(name, steps), "shattering fp32": ours(name, steps, "fp32", tmp)}
            if auto != "fp32":
                loops[f"shattering {auto}"] = ours(name, steps, auto, tmp)
            compiled = {} if args.no_compile else {f"shattering {auto} compiled": ours(name, steps, auto, tmp, "on")}
            first = {how: first_epoch_seconds(epoch) for how, epoch in compiled.items()}
            medians = interleaved_medians({**loops, **compiled}, ROUNDS)
            for how, epoch in {**loops, **compiled}.items():
                seconds = medians[how]
                row = {"model": name, "how": how, "img_s": base.BATCH * steps / seconds}
                row |= {"compile_s": first[how] - seconds} if how in first else op_profile(epoch, steps)
                rows.append(row)
                print(json.dumps(rows[-1]), flush=True)
            if name in PYTHON_PROFILED:
                pythons[name] = python_profile(loops["shattering fp32"], steps)
    body = render(rows, pythons, info, before, date, argv)
    return base.finish_part(slug, info["cpu"], PART, body, write=not args.no_write)


def render(rows: list[dict], pythons: dict, info: dict, before: float, date: str, argv) -> list[str]:
    kinds = ["products", "optimizer", "casts", "indexing", "loss", "other"]
    measured = base.measured_line(info, (before, base.load_average()), date).removesuffix(
        "; each figure the median of repeats.") + "."
    command = "python bench/step_profile.py " + " ".join(sys.argv[1:] if argv is None else argv)
    textbook_speed = {r["model"]: r["img_s"] for r in rows if r["how"] == "textbook fp32"}
    body = ["### Where a training step's time goes: shattering against the textbook loop, eager and compiled", "",
            measured, "",
            f"`{command.strip()}`: CIFAR-shaped random inputs, batches of {base.BATCH}; images/s the median "
            f"of {ROUNDS} interleaved rounds of one epoch each, in one process (ratio: against the textbook loop of "
            "the same model); then one epoch of each "
            "eager loop under torch.profiler: microseconds per step of operator self time by kind, and the step's "
            "wall time less all operator time (Python and dispatch outside the operators; the profiler's own cost "
            "included, so the wall times here are above 1e6 x batch / images/s). Compiled: `compile on` "
            "(torch.compile of the model, default mode); compile s: its first epoch less a median one.", "",
            "| model | loop | images/s | ratio | compile s | wall us/step | " + " | ".join(kinds)
            + " | outside the operators |",
            "|---|---|---|---|---|---|" + "---|" * len(kinds) + "---|"]
    for r in rows:
        ratio = r["img_s"] / textbook_speed[r["model"]]
        if "compile_s" in r:
            cells = f"{r['compile_s']:.1f} | - | " + " | ".join("-" for _ in kinds) + " | -"
        else:
            cells = f"- | {r['wall_us']:.0f} | " + " | ".join(f"{r.get(k, 0.0):.0f}" for k in kinds) \
                + f" | {r['outside_us']:.0f}"
        body.append(f"| {r['model']} | {r['how']} | {r['img_s']:.0f} | {ratio:.2f}x | {cells} |")
    for name, top in pythons.items():
        body += ["", f"cProfile of one shattering fp32 epoch of {name}, own time per step (us), the largest:", "",
                 *(f"- `{where}`: {us:.0f}" for where, us in top)]
    return body


if __name__ == "__main__":
    sys.exit(main())
