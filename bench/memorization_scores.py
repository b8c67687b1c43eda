"""The cost of subset training (the ``memorization-scores`` artefact's networks): K MLPs packed against the same K
trained one after another, in one process, and the issue's target, 200 packed MLPs.

    python bench/memorization_scores.py                    # writes this machine's part "memorization-scores"
    python bench/memorization_scores.py --no-write         # prints only
    python bench/memorization_scores.py --compare 4 --networks 20 --no-write   # a quick check of the script

The artefact's quick setting (MLP 1x512 on 2,000 Fashion-MNIST training images, 500 test images, the data set's
schedule, each network on a seeded 70% subset until it classifies its subset correctly or 200 epochs), on labels
partially corrupted at ``--p`` (default 0.4, the artefact's hardest run; 0 for true labels):

1. ``--compare`` networks (default 10) packed (one :class:`~shattering.train.packed.PackedMLP`, each member its
   own batch) and the same networks (same subsets, seeds, schedule, precision) one after another as plain
   modules: the seconds of each, and how far apart their results are (the share of examples on which the two
   disagree about being classified correctly; bf16 rounds differently in a batched product);
2. ``--networks`` networks (default 200) packed in groups of ``--group`` (default 10): the seconds, and how many
   fit their subset.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shattering  # noqa: E402  first: it decides OpenMP's wait policy before torch loads

shattering.set_openmp_wait_policy()

import bench as base  # noqa: E402
import numpy as np  # noqa: E402

from shattering.config import RunConfig  # noqa: E402
from shattering.experiments.presets import PRESETS  # noqa: E402
from shattering.influence import subset_masks  # noqa: E402
from shattering.train.data import make_data  # noqa: E402
from shattering.train.subsets import member_seeds, train_subsets  # noqa: E402

PART = "memorization-scores"


def config(p: float) -> RunConfig:
    quick = {k: v for k, v in PRESETS["memorization-scores"].scales["quick"].items() if k != "note"}
    labels = {"corruption": "partial-labels", "p": p} if 0 < p < 1 else \
        {"corruption": "true-labels" if p == 0 else "random-labels"}
    return RunConfig(model="mlp-1x512", **quick, **labels).resolved()


def trained(cfg: RunConfig, data, masks, seeds, packed: bool, group: int) -> dict:
    t0 = time.perf_counter()
    parts = [train_subsets(cfg, data, masks[s:s + group], seeds[s:s + group], packed=packed)
             for s in range(0, len(masks), group)]
    seconds = time.perf_counter() - t0
    fit = np.concatenate([r.fit_epoch for r in parts])
    return {"seconds": seconds, "fit": int((fit > 0).sum()), "epochs": int(np.concatenate([r.epochs for r in parts])
                                                                         .max()),
            "correct": np.concatenate([r.train_correct for r in parts]),
            "test_acc": float(np.concatenate([r.test_correct for r in parts]).mean())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--p", type=float, default=0.4, help="label corruption (default %(default)s)")
    parser.add_argument("--compare", type=int, default=10, help="networks packed and one after another")
    parser.add_argument("--networks", type=int, default=200, help="networks of the target, packed")
    parser.add_argument("--group", type=int, default=10, help="networks per pack (the artefact's)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args(argv)
    info, date, slug, before = base.start_part()
    cfg = config(args.p)
    data = make_data(cfg)
    n = len(data.y_train)
    masks = subset_masks(n, max(args.compare, args.networks), 0.7, seed=0)
    seeds = member_seeds(cfg.seed, 0, len(masks))
    packed = trained(cfg, data, masks[:args.compare], seeds[:args.compare], True, args.compare)
    alone = trained(cfg, data, masks[:args.compare], seeds[:args.compare], False, 1)
    differ = float((packed["correct"] != alone["correct"]).mean())
    print(f"{args.compare} networks: packed {packed['seconds']:.1f} s, one after another {alone['seconds']:.1f} s, "
          f"{alone['seconds'] / packed['seconds']:.2f}x; correctness differs on {100 * differ:.2f}% of "
          "(network, example) pairs", flush=True)
    target = trained(cfg, data, masks[:args.networks], seeds[:args.networks], True, args.group)
    print(f"{args.networks} networks packed in groups of {args.group}: {target['seconds']:.1f} s, "
          f"{target['fit']} fit", flush=True)
    labels = cfg.corruption if cfg.corruption != "partial-labels" else f"labels corrupted at p = {cfg.p:g}"
    measured = base.measured_line(info, (before, base.load_average()), date).removesuffix(
        "; each figure the median of repeats.") + "."
    command = "python bench/memorization_scores.py " + " ".join(sys.argv[1:] if argv is None else argv)
    body = ["### Subset training: packed MLPs against one after another", "", measured, "",
            f"`{command.strip()}`: MLP 1x512 on {n:,} Fashion-MNIST training images ({labels}), each network on a "
            f"seeded 70% subset, lr {cfg.lr:g} x{cfg.lr_decay:g} per epoch, batch {cfg.batch_size}, precision "
            f"{cfg.precision}, until it classifies its subset correctly or {cfg.epochs} epochs; one run each. "
            "Packed: one PackedMLP, each member its own batch; one after another: each network a plain module "
            "with the same subset, seed and schedule.", "",
            "| networks | how | seconds | per network s | fit | most epochs | mean test acc | against packed |",
            "|---|---|---|---|---|---|---|---|",
            f"| {args.compare} | packed | {packed['seconds']:.1f} | {packed['seconds'] / args.compare:.2f} | "
            f"{packed['fit']} | {packed['epochs']} | {100 * packed['test_acc']:.2f}% | 1.00x |",
            f"| {args.compare} | one after another | {alone['seconds']:.1f} | {alone['seconds'] / args.compare:.2f} | "
            f"{alone['fit']} | {alone['epochs']} | {100 * alone['test_acc']:.2f}% | "
            f"{alone['seconds'] / packed['seconds']:.2f}x slower (correctness differs on {100 * differ:.2f}% of the "
            "pairs) |",
            f"| {args.networks} | packed, groups of {args.group} | {target['seconds']:.1f} | "
            f"{target['seconds'] / args.networks:.2f} | {target['fit']} | {target['epochs']} | "
            f"{100 * target['test_acc']:.2f}% | {target['seconds'] / 60:.1f} min in all |"]
    return base.finish_part(slug, info["cpu"], PART, body, write=not args.no_write)


if __name__ == "__main__":
    sys.exit(main())
