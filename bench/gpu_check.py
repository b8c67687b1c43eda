"""The GPU check of issue 6: correctness, throughput and a wall-time estimate on one CUDA card, in minutes.

    bash bench/gpu_check.sh            # on a CUDA machine: about 5 minutes; writes gpu_check.json
    python bench/gpu_check.py --device cpu --tiny   # checks the script itself on a CPU (seconds)

1. Correctness: random labels on a subset are fit (100% training accuracy, honest summary) by an MLP and by
   the small Inception, through the real ``shattering.run``.
2. Training images/s of each paper model alone (bf16 autocast where the card has it, channels_last), and of
   6 MLP 1x512 runs packed into one model, on CIFAR-shaped inputs (3x28x28, batch 128).
3. An estimate of the wall time of the paper-scale Fig. 1 sweep (Fig. 1a: 5 Inception runs; Fig. 1b/1c:
   Inception, AlexNet and MLP 1x512 at 6 corruption levels: 23 runs) from the measured throughput, with the
   epoch counts it assumes stated beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import shattering  # noqa: E402
from shattering.models import MODELS  # noqa: E402

BATCH = 128
SHAPE = (3, 28, 28)
# Epochs to 100% training accuracy assumed for the paper-scale estimate (CIFAR-10, lr x0.95 per epoch):
# docs/measurements.md: a public reproduction's Fig. 1a Inception random-label run took 65 epochs (lr 0.1, x0.95
# per epoch, CIFAR-10, 100% training accuracy); true labels fit in about 20 [I].
EPOCHS_TO_FIT = {"true": 20, "random": 65}


def train_images_per_s(model: str, device: str, steps: int, packed: int = 1) -> float:
    """Images/s of shattering's training epoch (packed: in all, over the pack) on synthetic CIFAR-shaped data."""
    from shattering.config import RunConfig
    from shattering.data.dataset import ImageData
    from shattering.runs import RunRecord
    from shattering.train.in_memory import InMemoryTrainer
    from shattering.train.packed import PackedMLP, open_member, train_epoch

    n = BATCH * steps
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, *SHAPE, generator=g).numpy()
    y = torch.randint(0, 10, (n,), generator=g).numpy()
    data = ImageData(name="digits", class_names=tuple(map(str, range(10))), x_train=x, y_train=y, x_test=x[:BATCH],
                     y_test=y[:BATCH], y_train_original=y, y_test_original=y[:BATCH], train_changed=y != y,
                     test_changed=y[:BATCH] != y[:BATCH], preprocessing={})
    with tempfile.TemporaryDirectory() as tmp:
        cfgs = [RunConfig(dataset="digits", model=model, device=device, seed=s, log_every=10**9).resolved()
                for s in range(packed)]
        if packed == 1:
            trainer = InMemoryTrainer(cfgs[0], data, RunRecord(tmp), progress=False)
            run = lambda: trainer._train_epoch(cfgs[0].lr)  # noqa: E731
        else:
            records = [RunRecord(Path(tmp) / str(i)) for i in range(packed)]
            for record in records:
                record.create()  # what the sweep's lock does before a member is opened
            members = [open_member(c, data, r) for c, r in zip(cfgs, records, strict=True)]
            pack = PackedMLP([m.model for m in members]).to(device)
            opt = torch.optim.SGD(list(pack.parameters()), lr=0.01, momentum=0.9)
            xs = members[0].tensors["x_train"].flatten(1)
            run = lambda: train_epoch(pack, opt, members, xs, 0.01)  # noqa: E731
        run()  # warm-up (kernel selection, allocations)
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        sync()
        t0 = time.perf_counter()
        run()
        sync()
        return n * packed / (time.perf_counter() - t0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: check the script, not the card")
    parser.add_argument("--out", default=os.environ.get("OUT", "."))
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: run with --device cpu --tiny to check the script", file=sys.stderr)
        return 2
    os.environ.setdefault("SHATTERING_DATA", tempfile.mkdtemp())
    report: dict = {"torch": torch.__version__, "device": args.device}
    if args.device == "cuda":
        report["gpu"] = torch.cuda.get_device_name(0)
        torch.backends.cudnn.benchmark = True
    print(json.dumps(report), flush=True)

    # 1. correctness: random labels are fit
    checks = []
    with tempfile.TemporaryDirectory() as out:
        for model, size in (("mlp-1x512", 300), ("inception-small", 200 if args.tiny else 1000)):
            t0 = time.perf_counter()
            result = shattering.run(dataset="digits", model=model, corruption="random-labels", train_size=size,
                                    lr=0.1 if model.startswith("mlp") else None, epochs=300, device=args.device,
                                    out=out)
            checks.append({"model": model, "train_size": size, "status": result.status,
                           "fit_epoch": result.summary["fit_epoch"], "train_acc": result.train_acc,
                           "test_acc": result.test_acc, "seconds": time.perf_counter() - t0,
                           "precision": result.summary["precision"]})
            print(f"check {model:<16} random labels on {size} digits: {result.message}", flush=True)
    report["checks"] = checks

    # 2. throughput
    steps = 4 if args.tiny else 60
    speed = {}
    for model in (m.name for m in MODELS.values() if m.paper_params):  # the paper's models
        steps_m = 2 if args.tiny and model.startswith("inception") else steps
        speed[model] = train_images_per_s(model, args.device, steps_m)
        print(f"train {model:<22} {speed[model]:10.0f} images/s alone", flush=True)
    speed["mlp-1x512 packed x6"] = train_images_per_s("mlp-1x512", args.device, steps, packed=6)
    print(f"train mlp-1x512 x6 packed    {speed['mlp-1x512 packed x6']:10.0f} images/s in all", flush=True)
    report["images_per_s"] = speed

    # 3. the paper-scale Fig. 1 sweep (CIFAR-10: 50,000 training images; evaluation of 60,000 images per epoch,
    # forward only: about a third of a training image each)
    per_epoch = 50000 + 60000 / 3
    runs = [("inception-small", "true")] + [("inception-small", "random")] * 4  # Fig. 1a: true + 4 random inputs
    for model in ("inception-small", "alexnet-small", "mlp-1x512"):
        runs += [(model, "true")] + [(model, "random")] * 5  # p = 0 fits like true labels; p > 0 like random
    total = sum(EPOCHS_TO_FIT[kind] * per_epoch / speed[model] for model, kind in runs)
    packed_mlp = sum(EPOCHS_TO_FIT[kind] * per_epoch for model, kind in runs if model.startswith("mlp"))
    total_packed = total - sum(EPOCHS_TO_FIT[k] * per_epoch / speed[m] for m, k in runs if m.startswith("mlp")) \
        + packed_mlp / speed["mlp-1x512 packed x6"]
    report["fig1_estimate"] = {"runs": len(runs), "epochs_assumed": EPOCHS_TO_FIT, "seconds": total,
                               "seconds_mlp_packed": total_packed}
    print(f"estimate: paper-scale Fig. 1 ({len(runs)} runs, {EPOCHS_TO_FIT} epochs to fit assumed): "
          f"{total / 60:.1f} min one after another, {total_packed / 60:.1f} min with the MLP runs packed", flush=True)
    path = Path(args.out) / "gpu_check.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")
    return 0 if all(c["status"] == "fit" for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
