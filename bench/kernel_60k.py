"""Exact kernel interpolation of the full Fashion-MNIST training set on this machine (issue 5).

    python bench/kernel_60k.py                          # n = 60,000; true then random labels; block 4096
    python bench/kernel_60k.py --n 20000                # the same pipeline at n = 20,000 (a few minutes)
    python bench/kernel_60k.py --labels true,random --block 4096 --tol 1e-7 --budget 720

One process, in order: the machine's float32 matmul peak (median of torch.mm 4096 x 4096 timings); the
memory check (refused in one sentence before any work if the matrix does not fit); the Gaussian kernel of the
raw pixels in [0, 1] (default bandwidth: a quarter of the median pairwise distance) built tile by tile into
one float32 n x n buffer; the blocked
in-place Cholesky factorization; then each label set in turn, solved with that one factor and refined by
conjugate gradients with float64 kernel products until max |K alpha - Y| <= tol (the residual is recomputed
explicitly at the end; a label set that did not get there within --max-steps or --budget is reported as
such); finally the 10,000 test images are predicted for every label set at once.

Prints a report and writes it to bench/RESULTS.md between ``<!-- kernel-<n/1000>k:start -->`` and
``<!-- kernel-<n/1000>k:end -->`` (other sections are left alone; --no-write prints only).
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

from bench import RESULTS, write_results  # noqa: E402  (bench/bench.py: one writer of RESULTS.md sections)

from shattering.data import dataset_info  # noqa: E402
from shattering.errors import ShatteringError  # noqa: E402
from shattering.experiments.sample import load_sample  # noqa: E402
from shattering.theory import kernel_solver, memory  # noqa: E402
from shattering.theory.fixed_point import FixedPointUpper  # noqa: E402
from shattering.theory.linear_algebra import KernelFactorizationError  # noqa: E402
from shattering.validation import check_choices, check_float, check_int, one_hot  # noqa: E402

TIME_TARGET = 12 * 60  # seconds, the target for n = 60,000
MEMORY_TARGET = 20 * 2 ** 30  # bytes


def machine() -> dict:
    model = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    total = memory.physical_memory()
    return {"cpu": model, "cores": os.cpu_count(), "ram_gib": None if total is None else total / 2 ** 30,
            "torch": torch.__version__, "threads": torch.get_num_threads(), "numpy": np.__version__}


def matmul_peak(repeats: int = 5, size: int = 4096) -> float:
    """Median float32 GFLOP/s of torch.mm on size x size matrices."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        rates.append(2 * size ** 3 / (time.perf_counter() - t) / 1e9)
    return statistics.median(rates)


def peak_rss() -> int:
    """Peak resident memory of this process in bytes (VmHWM, else ru_maxrss)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def log(start: float, message: str) -> None:
    print(f"[{time.perf_counter() - start:7.1f} s] {message}", flush=True)


def run(args) -> dict:
    start = time.perf_counter()
    info = {"machine": machine(), "load_start": os.getloadavg(), "n": args.n, "block": args.block, "tol": args.tol,
            "date": datetime.datetime.now().isoformat(timespec="minutes")}
    n = check_int(args.n, "n", maximum=dataset_info("fashion-mnist").n_train)
    check_int(args.block, "block")
    check_float(args.tol, "tol", low=0.0)
    check_int(args.max_steps, "max_steps", minimum=0)
    if args.budget is not None:
        check_float(args.budget, "budget", low=0.0, low_open=True)
    memory.check_memory(n, torch.float32, d=784, block_size=args.block)  # one sentence, before any work
    matrix, extra = memory.memory_needed(n, torch.float32, d=784, block_size=args.block)
    stored = FixedPointUpper.nbytes(n)
    log(start, f"{info['machine']['cpu']}, {info['machine']['cores']} cores, {info['machine']['ram_gib']:.1f} GiB; "
               f"load average {info['load_start'][0]:.2f}; the matrix needs {matrix / 1e9:.1f} GB + "
               f"{extra / 1e9:.1f} GB (+ {stored / 1e9:.1f} GB to keep the kernel for fast refinement), "
               f"{memory.available_memory() / 1e9:.1f} GB available")
    info["peak_gflops"] = matmul_peak()
    log(start, f"float32 matmul peak (torch.mm 4096, median): {info['peak_gflops']:.0f} GFLOP/s")

    sample = load_sample("fashion-mnist", n, None, whitening="none")  # pixels / 255: "no preprocessing"
    x, x_test, y_test = sample.flat("train"), sample.flat("test"), sample.data.y_test
    label_sets = {name: sample.labels(f"{name}-labels", None, args.seed) for name in args.labels}
    log(start, f"Fashion-MNIST: {len(x):,} train / {len(x_test):,} test, d = {x.shape[1]}, pixels in "
               f"[{x.min():g}, {x.max():g}]")

    last = [0.0]
    marks = {"solver": time.perf_counter()}

    def progress(phase, done, total):
        now = time.perf_counter()
        marks[phase] = now
        if phase == "kernel" or done == total or now - last[0] > 60:
            last[0] = now
            log(start, f"{phase}: {done:,} / {total:,}")

    try:
        solver = kernel_solver.KernelSolver(x, "gaussian", None, dtype="float32", block_size=args.block, seed=args.seed,
                                      stored_products=args.stored, progress=progress)
    except KernelFactorizationError as exc:  # measured and reported like a result
        now = time.perf_counter()
        info.update(failed=str(exc), kernel_s=marks.get("kernel", now) - marks["solver"],
                    factor_s=now - marks.get("kernel", now), total_s=now - start, peak_rss=peak_rss(),
                    load_end=os.getloadavg())
        log(start, f"FAILED after {info['factor_s']:.0f} s of factorization: {exc}")
        return info
    info["solver"] = solver.describe()
    info["peak_gflops_after"] = matmul_peak()  # the load may change: measured before and after the factorization
    log(start, f"float32 matmul peak again: {info['peak_gflops_after']:.0f} GFLOP/s")
    sec = solver.seconds
    log(start, f"kernel {sec['kernel']:.1f} s ({solver.evaluator.mode}, sigma = {solver.bandwidth:.4g}); "
               f"factorization {sec['factorization']:.1f} s = {info['solver']['factorization_gflops']:.0f} GFLOP/s; "
               f"refinement products: {solver.products}; rows factored with a diagonal shift (float32 pivots not "
               f"positive): {info['solver']['shifted_rows']:,} (largest shift {info['solver']['largest_shift']:g})")

    alphas, rows = [], []
    for name, y in label_sets.items():
        target = torch.from_numpy(one_hot(y, sample.num_classes))
        budget = None if args.budget is None else max(0.0, args.budget - (time.perf_counter() - start))
        alpha, sol = solver.solve(target, tol=args.tol, max_steps=args.max_steps, max_seconds=budget)
        fitted = sol["system_product"]
        diff = fitted - target
        row = {"labels": name, "label_noise": float((y != sample.data.y_train).mean()),
               "solve_s": sol["seconds"]["solve"], "refine_s": sol["seconds"]["refinement"],
               "steps": sol["refinement_steps"], "products": sol["products"],
               "stored_products": sol["stored_products"], "converged": sol["converged"],
               "final_check": sol["final_check"], "storage_bound": sol["storage_bound"],
               "history": [h["max_residual"] for h in sol["history"]],
               "train_error": float((fitted.argmax(1).numpy() != y).mean()), "max_residual": float(diff.abs().max()),
               "norm": math.sqrt(max(float((alpha * fitted).sum()), 0.0))}
        rows.append(row)
        alphas.append(alpha)
        log(start, f"{name} labels: solve {row['solve_s']:.1f} s, refinement {row['refine_s']:.1f} s "
                   f"({row['steps']} steps; kernel products: {row['stored_products']} stored, {row['products']} "
                   f"float64); max |K alpha - Y| "
                   f"{row['max_residual']:.1e} ({'reached' if row['converged'] else 'did NOT reach'} {args.tol:g}); "
                   f"training error {100 * row['train_error']:.2f}%; checked on the {row['final_check']}")
        log(start, "  residual history: " + " ".join(f"{h:.1e}" for h in row["history"]))

    t0 = time.perf_counter()  # every label set once more against the kernel recomputed in float64, in one pass
    stacked = torch.cat(alphas, dim=1)
    exact = solver.system_product(stacked, exact=True)
    info["check_s"] = time.perf_counter() - t0
    for i, (row, y) in enumerate(zip(rows, label_sets.values(), strict=True)):
        cols = slice(i * sample.num_classes, (i + 1) * sample.num_classes)
        target = torch.from_numpy(one_hot(y, sample.num_classes))
        row["max_residual_float64"] = float((exact[:, cols] - target).abs().max())
        row["train_error_float64"] = float((exact[:, cols].argmax(1).numpy() != y).mean())
    log(start, f"float64 check of every label set (kernel recomputed, one pass): {info['check_s']:.1f} s; max "
               "|K alpha - Y| " + ", ".join(f"{r['labels']} {r['max_residual_float64']:.1e}" for r in rows))

    t0 = time.perf_counter()
    scores = solver.predict(x_test, torch.cat(alphas, dim=1))
    info["predict_s"] = time.perf_counter() - t0
    for i, row in enumerate(rows):
        cols = slice(i * sample.num_classes, (i + 1) * sample.num_classes)
        row["test_error"] = float((scores[:, cols].argmax(1).numpy() != y_test).mean())
    info["rows"] = rows
    info["total_s"] = time.perf_counter() - start
    info["peak_rss"] = peak_rss()
    info["load_end"] = os.getloadavg()
    log(start, f"prediction of {len(x_test):,} test images: {info['predict_s']:.1f} s; test errors "
               + ", ".join(f"{r['labels']} {100 * r['test_error']:.1f}%" for r in rows))
    log(start, f"total {info['total_s']:.0f} s, peak memory {info['peak_rss'] / 2 ** 30:.2f} GiB")
    return info


def render_failure(info: dict) -> str:
    n, m = info["n"], info["machine"]
    tag = f"kernel-{round(n / 1000)}k"
    return "\n".join([
        f"<!-- {tag}:start -->",
        f"## Exact kernel interpolation, n = {n:,} (bench/kernel_60k.py): factorization failed",
        "", f"`python bench/kernel_60k.py --n {n} --block {info['block']}` on {info['date']}: {m['cpu']}, "
        f"{m['cores']} cores, {m['ram_gib']:.1f} GiB RAM, torch {m['torch']}; load average "
        f"{info['load_start'][0]:.2f} at the start, {info['load_end'][0]:.2f} at the end; float32 matmul peak "
        f"{info['peak_gflops']:.0f} GFLOP/s.", "",
        f"Kernel matrix (float32, {n * n * 4 / 1e9:.1f} GB) built in {info['kernel_s']:.1f} s; the in-place float32 "
        f"Cholesky stopped after {info['factor_s']:.0f} s: {info['failed']} Peak memory "
        f"{info['peak_rss'] / 2 ** 30:.2f} GiB, {info['total_s']:.0f} s in all.", f"<!-- {tag}:end -->"]) + "\n"


def render(info: dict) -> str:
    if "failed" in info:
        return render_failure(info)
    n, m, s = info["n"], info["machine"], info["solver"]
    sec = s["seconds"]
    peak = max(info["peak_gflops"], info["peak_gflops_after"])
    tag = f"kernel-{round(n / 1000)}k"
    flops = n ** 3 / 3
    lines = [f"<!-- {tag}:start -->", f"## Exact kernel interpolation, n = {n:,} (bench/kernel_60k.py)", "",
             f"`python bench/kernel_60k.py --n {n} --labels {','.join(r['labels'] for r in info['rows'])} "
             f"--block {info['block']} --tol {info['tol']:g}` on {info['date']}: {m['cpu']}, {m['cores']} cores, "
             f"{m['ram_gib']:.1f} GiB RAM, torch {m['torch']} ({m['threads']} threads). Load average "
             f"{info['load_start'][0]:.2f} at the start, {info['load_end'][0]:.2f} at the end (other jobs on the "
             "same cores make every time pessimistic).", "",
             f"Fashion-MNIST, raw pixels in [0, 1], Gaussian kernel, sigma = {s['bandwidth']:.4g} "
             f"({s['bandwidth_rule']}); "
             f"kernel values in float64 ({s['kernel_arithmetic']}), stored in one float32 {n:,} x {n:,} buffer "
             f"({n * n * 4 / 1e9:.1f} GB), factored in place by a blocked Cholesky (block {info['block']}); every "
             "label set solved with that one factorization and refined by conjugate gradients preconditioned by it "
             f"until max |K alpha - Y| <= {info['tol']:g}. Refinement products: {s['refinement_products']}"
             + (" (K above the diagonal kept in 48-bit fixed point beside the factor, "
                f"{FixedPointUpper.nbytes(n) / 1e9:.1f} GB more)" if "48" in s["refinement_products"] else "")
             + "; each label set's final residual is proven below the tolerance from the stored kernel plus the "
             "worst error its storage can cause (2^-46 per entry times ||alpha||_1), or recomputed from the kernel "
             "in float64 where that bound is not enough; then every label set is checked once more against the "
             "kernel recomputed in float64 (one pass for all of them). "
             + (f"The float32 pivots of {s['shifted_rows']:,} rows were not positive: their diagonal blocks were "
                f"factored with up to {s['largest_shift']:g} added to the diagonal (the factor is a preconditioner; "
                "the refinement still solves K alpha = Y)." if s["shifted_rows"] else
                "Every float32 pivot was positive (no diagonal shift)."), "",
             "| phase | seconds | |", "|---|---|---|",
             f"| kernel matrix | {sec['kernel']:.1f} | |",
             f"| factorization | {sec['factorization']:.1f} | {s['factorization_gflops']:.0f} GFLOP/s (n^3/3 = "
             f"{flops / 1e12:.1f} TFLOP), {100 * s['factorization_gflops'] / peak:.0f}% of the float32 matmul peak "
             f"measured in the same process ({info['peak_gflops']:.0f} GFLOP/s before, "
             f"{info['peak_gflops_after']:.0f} after) |"]
    for r in info["rows"]:
        lines.append(f"| {r['labels']} labels: solve with the factor | {r['solve_s']:.1f} | |")
        lines.append(f"| {r['labels']} labels: refinement | {r['refine_s']:.1f} | {r['steps']} CG steps; "
                     f"kernel products: {r['stored_products']} from the stored kernel, {r['products']} recomputed "
                     f"in float64; final residual checked on the {r['final_check']} |")
    target = n == 60000
    total_ok = ("within" if info["total_s"] <= TIME_TARGET else "over") + " the 12-minute target" if target else ""
    mem_ok = ", " + ("within" if info["peak_rss"] <= MEMORY_TARGET else "over") + " the 20 GiB target" if target else ""
    lines += [f"| float64 check of all {len(info['rows'])} label sets (kernel recomputed) | {info['check_s']:.1f} | "
              "an independent check, not needed for the answer |",
              f"| prediction ({len(info['rows'])} label sets, test set) | {info['predict_s']:.1f} | |",
              f"| **total** (with data loading and the peak measurements) | **{info['total_s']:.0f}** | {total_ok} |",
              "", f"Peak memory (VmHWM): **{info['peak_rss'] / 2 ** 30:.2f} GiB**{mem_ok}.", "",
              "| labels | label noise | training error | max \\|K alpha - Y\\| (float64 kernel) | reached tol | "
              "test error | "
              "norm sqrt(tr(alpha^T K alpha)) | residual after the solve, then each CG step |",
              "|---|---|---|---|---|---|---|---|"]
    for r in info["rows"]:
        hist = " ".join(f"{h:.0e}" for h in r["history"])
        lines.append(f"| {r['labels']} | {100 * r['label_noise']:.1f}% | {100 * r['train_error_float64']:.2f}% | "
                     f"{r['max_residual_float64']:.1e} | {'yes' if r['converged'] else '**no**'} | "
                     f"{100 * r['test_error']:.1f}% | {r['norm']:.0f} | {hist} |")
    lines.append(f"<!-- {tag}:end -->")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=60000, help="training images (default: 60000, all)")
    parser.add_argument("--labels", default="true,random", help="label sets in order (default: true,random)")
    parser.add_argument("--block", type=int, default=4096, help="Cholesky block size (default: 4096)")
    parser.add_argument("--tol", type=float, default=kernel_solver.REFINE_TOL["float32"],
                        help="refine until max |K alpha - Y| <= tol (default: %(default)g)")
    parser.add_argument("--max-steps", type=int, default=kernel_solver.REFINE_STEPS["float32"],
                        help="most CG steps per label set (default: %(default)s)")
    parser.add_argument("--budget", type=float, default=None,
                        help="stop refining once this many seconds have passed since the start (default: none)")
    parser.add_argument("--stored", choices=("auto", "yes", "no"), default="auto",
                        help="keep the kernel in 48-bit fixed point for the refinement (n^2 bytes more): auto (if "
                             "memory allows), yes or no (recompute it for every product)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random labels and the bandwidth sample")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args(argv)
    try:
        args.labels = check_choices(args.labels, "labels", ("true", "random"))
        args.stored = {"auto": None, "yes": True, "no": False}[args.stored]
        info = run(args)
    except ShatteringError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    section = render(info)
    print()
    print(section)
    if not args.no_write:
        write_results(section, f"kernel-{round(info['n'] / 1000)}k")
        print(f"wrote {RESULTS}")
    return 1 if "failed" in info else 0


if __name__ == "__main__":
    sys.exit(main())
