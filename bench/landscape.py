"""Loss-landscape planes: shattering's batched evaluation against a one-point-at-a-time loop written as the
reference implementation (tomgoldstein/loss-landscape) evaluates, each comparison in one process.

    python bench/landscape.py                    # writes this machine's part "landscape" of RESULTS.md
    python bench/landscape.py --quick            # MLP 1x512, a 5 x 5 grid on 100 images: checks the script

Per model, on N Fashion-MNIST training images (shattering's loader; per-image whitening), the network built seeded
(``torch.manual_seed(0)``) in eval mode, two filter-normalized directions (:mod:`shattering.landscape.directions`)
and a G x G grid over [-1, 1]^2:

- the reference loop: for each grid point, write theta + a d1 + b d2 into the network's parameters, then evaluate
  the loss over the images in batches of 128 (a DataLoader over a TensorDataset, the loss summed with ``.item()``
  per batch), then the next point;
- shattering: :func:`shattering.landscape.evaluate.evaluate_affine` (the points in chunks through
  ``torch.func.functional_call`` under ``vmap``, the first weighted layer computed three times per data batch
  instead of once per point).

Reported: seconds and points per second of each, the speed-up, the largest difference of the two loss grids, and
the time a 51 x 51 plane on 1,000 images would take at the measured rate. The grids per model are chosen so that
the reference loop takes about a minute (``--grid``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shattering  # noqa: E402  first: it decides OpenMP's wait policy before torch loads

shattering.set_openmp_wait_policy()

import bench as base  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from shattering.landscape.directions import random_direction, weights_of  # noqa: E402
from shattering.landscape.evaluate import evaluate_affine  # noqa: E402
from shattering.landscape.slices import grid_coefficients  # noqa: E402
from shattering.models import build_model  # noqa: E402

PART = "landscape"
DEFAULT_GRIDS = "mlp-1x512=51,alexnet-small=11,inception-small=5"
DEFAULT_EXAMPLES = 1000
REFERENCE_BATCH = 128


def load_examples(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    data = shattering.load_dataset("fashion-mnist", train_size=n, test_size=1)
    return torch.from_numpy(np.ascontiguousarray(data.x_train)).float(), torch.from_numpy(data.y_train).long()


def reference_plane(model: nn.Module, theta: dict, d1: dict, d2: dict, coef: torch.Tensor, x, y) -> np.ndarray:
    """One point at a time, as the reference implementation does it: set the weights, evaluate, next point."""
    loader = DataLoader(TensorDataset(x, y), batch_size=REFERENCE_BATCH, shuffle=False)
    params = {k: p for k, p in model.named_parameters() if k in theta}
    out = []
    with torch.no_grad():
        for a, b in coef.tolist():
            for k, p in params.items():
                p.copy_(theta[k] + a * d1[k] + b * d2[k])
            total = 0.0
            for xb, yb in loader:
                total += nn.functional.cross_entropy(model(xb), yb, reduction="sum").item()
            out.append(total / len(x))
        for k, p in params.items():
            p.copy_(theta[k])
    return np.array(out)


def bench_model(name: str, grid: int, n: int) -> dict:
    x, y = load_examples(n)
    torch.manual_seed(0)
    model = build_model(name, tuple(x.shape[1:]), 10).eval()
    theta = weights_of(model)
    d1, d2 = random_direction(theta, 0), random_direction(theta, 1)
    axis = np.linspace(-1, 1, grid)
    coef = grid_coefficients(axis, axis)
    t0 = time.perf_counter()
    ref = reference_plane(model, theta, d1, d2, coef, x, y)
    ref_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours, _ = evaluate_affine(model, theta, [d1, d2], coef, x, y)
    ours_s = time.perf_counter() - t0
    points = len(coef)
    return {"model": name, "grid": grid, "points": points, "examples": len(x), "reference_s": ref_s,
            "shattering_s": ours_s, "speedup": ref_s / ours_s, "max_diff": float(np.abs(ref - ours).max()),
            "plane_51_s": ours_s / points * 51 * 51 * 1000 / len(x)}


def render(rows: list[dict], info: dict, load: tuple[float, float], date: str, command: str) -> list[str]:
    measured = base.measured_line(info, load, date).removesuffix("; each figure the median of repeats.") + "."
    lines = ["### Loss-landscape planes: batched against one point at a time", "", measured, "",
             f"`{command}`: the network at its seeded initialization, two filter-normalized directions, a G x G "
             "grid over [-1, 1]^2 on N Fashion-MNIST images; the reference loop sets the weights and evaluates one "
             f"point at a time (DataLoader batches of {REFERENCE_BATCH}); shattering's `evaluate_affine` chunks the "
             "points through `functional_call` under `vmap` with the first weighted layer shared. The last column "
             "is the time of a 51 x 51 plane on 1,000 images at shattering's measured rate.", "",
             "| model | grid | examples | reference s | shattering s | speed-up | largest loss difference | "
             "51 x 51 plane on 1,000 images |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['grid']} x {r['grid']} | {r['examples']} | {r['reference_s']:.2f} | "
                     f"{r['shattering_s']:.2f} | {r['speedup']:.2f}x | {r['max_diff']:.1e} | "
                     f"{r['plane_51_s'] / 60:.1f} min |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", default=DEFAULT_GRIDS, help="model=G pairs (default %(default)s)")
    parser.add_argument("--examples", type=int, default=DEFAULT_EXAMPLES, help="images (default %(default)s)")
    parser.add_argument("--quick", action="store_true", help="MLP 1x512, 5 x 5 on 100 images; prints only")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args(argv)
    grids = {"mlp-1x512": 5} if args.quick else {k: int(v) for k, v in (p.split("=") for p in args.grid.split(","))}
    n = 100 if args.quick else args.examples
    info, date, slug, before = base.start_part()
    rows = []
    for name, grid in grids.items():
        rows.append(bench_model(name, grid, n))
        print(json.dumps(rows[-1]), flush=True)
    body = render(rows, info, (before, base.load_average()), date,
                  ("python bench/landscape.py " + " ".join(sys.argv[1:] if argv is None else argv)).strip())
    print("\n" + "\n".join(body), flush=True)
    if args.quick or args.no_write:
        return 0
    text = base.RESULTS.read_text() if base.RESULTS.exists() else "# Benchmark results\n"
    title = info["cpu"] + (" (AVX2, no AVX-512)" if slug.endswith("-avx2") else "")
    base.RESULTS.write_text(base.write_part(text, slug, title, PART, body).rstrip("\n") + "\n")
    print(f"wrote {base.RESULTS} (section speed-{slug}, part {PART})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
