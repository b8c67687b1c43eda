"""The cost of shattering's curvature measures against PyHessian's algorithm, each comparison in one process.

    python bench/curvature.py                                # writes this machine's part "curvature" of RESULTS.md
    python bench/curvature.py --examples 2000,inception-small=500
    python bench/curvature.py --quick                        # MLP 1x512 on 64 examples: checks the script (prints)

Per model (``--models``; default the paper's MLP 1x512, small AlexNet and small Inception), on N Fashion-MNIST
training images (``--examples``; shattering's loader, a stratified seeded subset, per-image whitening; random
inputs and labels if the data set cannot be read, and the output says so): the network is built seeded
(``torch.manual_seed(0)``) and trained one epoch by a plain SGD loop (batch 128, momentum 0.9, the model's
learning rate), so the Hessian is not the initialization's; then, in eval mode on all N examples:

1. ``lambda_max`` by shattering: :func:`shattering.measures.curvature.hessian_measures` (no trace, no density) with
   ``HESSIAN_EXAMPLES`` set to N for the call: curvlinops' Hessian operator, scipy's ``eigsh`` for the ``TOP_K``
   largest eigenvalues to relative tolerance ``EIG_TOL``; its facts' seconds and Hessian-vector products, and
   lambda_2 / lambda_max (how fast power iteration can converge).
2. PyHessian's top eigenvalue (Yao et al. 2020, written here from the paper's description): power iteration from
   a seeded ``torch.randn`` start, each product by double backward (the gradient with ``create_graph=True``,
   then the gradient of g . v) accumulated over batches of 250 weighted by their size, v normalized every
   iteration, stopping when |lambda_new - lambda_old| / (|lambda_old| + 1e-6) < 1e-3 or after 100 iterations.
3. Seconds of one Hessian-vector product on all N examples each way (median of 3 after a warm-up): curvlinops'
   operator as shattering uses it (``hessian_operator(...).to_scipy() @ v``) and the double backward of 2; and
   how far apart the two products are. Measured first, so that its warm-ups take the process's first-call costs.
4. One :func:`shattering.measures.sharpness.sharpness_measures` (``SHARPNESS_EXAMPLES`` set to N): its seconds
   and each L-BFGS-B maximization's loss-and-gradient evaluations; with ``--sharpness one``, only Keskar et al.'s
   phi in the full space at eps 1e-3 (one maximization: a big model on many examples takes about 20 s per
   evaluation, and the five maximizations about 76 evaluations).

Without ``--quick`` or ``--no-write`` the table goes into its own marked part (``curvature``) of this machine's
section of RESULTS.md, through bench.py's ``write_part``, with the CPU line and the load average at the start and
end.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# isort: off
import shattering

shattering.set_openmp_wait_policy()  # as a Python program should (shattering._openmp): before anything loads torch

import bench as base  # noqa: E402  bench/bench.py: machine(), machine_slug(), load_average(), write_part(), ...
# isort: on
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import shattering.measures.curvature as curvature  # noqa: E402
import shattering.measures.sharpness as sharpness  # noqa: E402
from shattering.models import build_model, model_info  # noqa: E402

SHAPE, CLASSES = (1, 28, 28), 10
PART = "curvature"
DEFAULT_MODELS = "mlp-1x512,alexnet-small,inception-small"
DEFAULT_EXAMPLES = 2000
TRAIN_BATCH, MOMENTUM = 128, 0.9
POWER_BATCH, POWER_TOL, POWER_MAX_ITER = 250, 1e-3, 100  # PyHessian's batches here, tolerance and iteration cap
SEED = 0
HVP_REPEATS = 3


# --------------------------------------------------------------------------------------------------
# data, network
# --------------------------------------------------------------------------------------------------


def load_examples(n: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """``n`` Fashion-MNIST training images (N x 1 x 28 x 28, as shattering prepares them) and labels, and where they
    came from; seeded random inputs and labels where the data set cannot be read."""
    try:
        data = shattering.load_dataset("fashion-mnist", train_size=n, test_size=1, progress=False)
        return (torch.from_numpy(data.x_train), torch.from_numpy(data.y_train),
                f"Fashion-MNIST ({data.preprocessing['source']}, {data.preprocessing['whitening']} whitening)")
    except (shattering.errors.ShatteringError, OSError) as e:
        g = torch.Generator().manual_seed(SEED)
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        return (torch.randn(n, *SHAPE, generator=g), torch.randint(0, CLASSES, (n,), generator=g),
                f"random inputs and labels (Fashion-MNIST unreadable: {why})")


def trained_model(name: str, x: torch.Tensor, y: torch.Tensor) -> torch.nn.Module:
    """``build_model(name)`` seeded with 0, trained one epoch on ``x``, ``y`` by plain SGD, in eval mode."""
    torch.manual_seed(SEED)
    model = build_model(name, SHAPE, CLASSES)
    opt = torch.optim.SGD(model.parameters(), lr=model_info(name).lr, momentum=MOMENTUM)
    model.train()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(SEED))
    for s in range(0, len(x), TRAIN_BATCH):
        idx = order[s:s + TRAIN_BATCH]
        opt.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    return model.eval()


@contextmanager
def examples_used(n: int):
    """shattering's curvature and sharpness measures on the first ``n`` examples (not their 500) for a while."""
    saved = curvature.HESSIAN_EXAMPLES, sharpness.SHARPNESS_EXAMPLES
    curvature.HESSIAN_EXAMPLES = sharpness.SHARPNESS_EXAMPLES = n
    try:
        yield
    finally:
        curvature.HESSIAN_EXAMPLES, sharpness.SHARPNESS_EXAMPLES = saved


# --------------------------------------------------------------------------------------------------
# PyHessian's power iteration (Yao et al. 2020), double-backward Hessian-vector products
# --------------------------------------------------------------------------------------------------


def double_backward_hvp(model, params, x, y, v, batch: int = POWER_BATCH) -> list[torch.Tensor]:
    """H v of the mean cross-entropy on ``x``, ``y``: per batch the gradient g with ``create_graph=True`` and the
    gradient of g . v (``grad_outputs=v``), weighted by the batch's size, divided by the examples."""
    total = [torch.zeros_like(p) for p in params]
    for s in range(0, len(x), batch):
        xb, yb = x[s:s + batch], y[s:s + batch]
        grads = torch.autograd.grad(F.cross_entropy(model(xb), yb), params, create_graph=True)
        hv = torch.autograd.grad(grads, params, grad_outputs=v)
        for t, h in zip(total, hv, strict=True):
            t.add_(h.detach(), alpha=len(xb))
    return [t / len(x) for t in total]


def _dot(a, b) -> float:
    return float(sum((u * w).sum() for u, w in zip(a, b, strict=True)))


def _normalized(v):
    norm = _dot(v, v) ** 0.5 + 1e-6  # as PyHessian
    return [w / norm for w in v]


def power_iteration(model, x, y) -> dict:
    """PyHessian's top eigenvalue: ``value``, ``products`` (= iterations), ``seconds``, ``converged``."""
    start = time.perf_counter()
    params = [p for p in model.parameters() if p.requires_grad]
    g = torch.Generator().manual_seed(SEED)
    v = _normalized([torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params])
    value, converged, products = None, False, 0
    for _ in range(POWER_MAX_ITER):
        hv = double_backward_hvp(model, params, x, y, v)
        products += 1
        new = _dot(hv, v)
        v = _normalized(hv)
        if value is not None and abs(new - value) / (abs(value) + 1e-6) < POWER_TOL:
            value, converged = new, True
            break
        value = new
    return {"value": value, "products": products, "converged": converged, "seconds": time.perf_counter() - start}


# --------------------------------------------------------------------------------------------------
# one model
# --------------------------------------------------------------------------------------------------


def one_hvp_seconds(model, x, y) -> dict:
    """Median seconds of one H v on all of ``x`` each way, and ||H v (curvlinops) - H v (double backward)|| /
    ||H v (curvlinops)|| for the same v."""
    params = [p for p in model.parameters() if p.requires_grad]
    op = curvature.hessian_operator(model, x, y).to_scipy()
    v = np.random.default_rng(SEED).standard_normal(op.shape[0]).astype(op.dtype)
    vt, i = [], 0
    for p in params:
        vt.append(torch.from_numpy(v[i:i + p.numel()]).view_as(p))
        i += p.numel()
    ours = np.asarray(op @ v, dtype=np.float64)
    theirs = torch.cat([h.reshape(-1) for h in double_backward_hvp(model, params, x, y, vt)]).double().numpy()
    return {"curvlinops": base.median_time(lambda: op @ v, HVP_REPEATS, warmup=0),  # warmed up above
            "double_backward": base.median_time(lambda: double_backward_hvp(model, params, x, y, vt), HVP_REPEATS,
                                                warmup=0),
            "difference": float(np.linalg.norm(ours - theirs) / max(np.linalg.norm(ours), 1e-30))}


def one_sharpness(model, x, y) -> dict:
    """Keskar et al.'s phi in the full space at the first eps of ``EPSILONS``, timed: the ``sharpness`` row's
    shape with one maximization."""
    start = time.perf_counter()
    f, theta = sharpness.loss_function(model, x, y)
    eps = sharpness.EPSILONS[0]
    r = sharpness.keskar_sharpness(f, theta, eps)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "examples": len(x), "phi": r["phi"],
            "maximizations": {f"full eps {eps:g}": {"evaluations": r["evaluations"], "seconds": seconds}}}


def bench_model(name: str, n: int, all_sharpness: bool = True) -> dict:
    x, y, source = load_examples(n)
    t0 = time.perf_counter()
    model = trained_model(name, x, y)
    row = {"model": name, "examples": len(x), "data": source, "train_seconds": time.perf_counter() - t0,
           "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad)}
    with examples_used(len(x)):
        row["hvp"] = one_hvp_seconds(model, x, y)  # first: its warm-ups take the process's first-call costs
        hm = curvature.hessian_measures(model, x, y, trace=False, density=False)
        facts, top = hm["facts"], hm["top_eigenvalues"]
        row["shattering"] = {"value": hm["lambda_max"], "products": facts["lambda_max_matvecs"],
                             "seconds": facts["lambda_max_seconds"], "examples": facts["examples"],
                             "top": top}
        row["pyhessian"] = power_iteration(model, x, y)
        a, b = row["shattering"]["value"], row["pyhessian"]["value"]
        row["relative_difference"] = abs(a - b) / max(abs(a), 1e-30)
        if not all_sharpness:
            row["sharpness"] = one_sharpness(model, x, y)
            return row
        t0 = time.perf_counter()
        sm = sharpness.sharpness_measures(model, x, y)
        row["sharpness"] = {"seconds": time.perf_counter() - t0, "examples": sm["facts"]["examples"],
                            "maximizations": {k: {"evaluations": r["evaluations"], "seconds": r["seconds"]}
                                              for k, r in sm["facts"]["maximizations"].items()}}
    return row


# --------------------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------------------

HEADER = ["model", "examples", "parameters", "shattering lambda_max (products, s)", "lambda_2 / lambda_max",
          "PyHessian power iteration (products, s)", "relative difference", "one HVP curvlinops s",
          "one HVP double backward s", "sharpness s", "sharpness evaluations per maximization"]


def table(rows: list[dict]) -> list[str]:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        s, p, h, sh = r["shattering"], r["pyhessian"], r["hvp"], r["sharpness"]
        evaluations = ", ".join(f"{k} {m['evaluations']}" for k, m in sh["maximizations"].items())
        unconverged = "" if p["converged"] else f", not converged in {POWER_MAX_ITER}"
        ratio = f"{s['top'][1] / s['top'][0]:.3f}" if len(s["top"]) > 1 and s["top"][0] else "-"
        lines.append(f"| {r['model']} | {r['examples']} | {r['parameters']:,} | {s['value']:.5g} ({s['products']}, "
                     f"{s['seconds']:.2f}) | {ratio} | {p['value']:.5g} ({p['products']}, "
                     f"{p['seconds']:.2f}{unconverged}) | {r['relative_difference']:.1e} | {h['curvlinops']:.3f} | "
                     f"{h['double_backward']:.3f} | {sh['seconds']:.2f} | {evaluations} |")
    return lines


def render(rows: list[dict], info: dict, load: tuple[float, float], date: str, command: str) -> list[str]:
    measured = base.measured_line(info, load, date).removesuffix("; each figure the median of repeats.") + "."
    sources = sorted({r["data"] for r in rows})
    return ["### Curvature: shattering's lambda_max and sharpness against PyHessian's power iteration", "", measured,
            "",
            f"`{command}`: each network built seeded and trained one epoch by plain SGD (batch {TRAIN_BATCH}, "
            f"momentum {MOMENTUM}, the model's learning rate) on the examples ({'; '.join(sources)}), then measured "
            "in eval mode on all of them. shattering: `hessian_measures` (curvlinops' Hessian operator, scipy "
            f"`eigsh` for the top {len(rows[0]['shattering']['top'])} eigenvalues to relative tolerance "
            f"{curvature.EIG_TOL:g}). PyHessian (Yao et al. "
            f"2020, written here): power iteration from a seeded `torch.randn` start, double-backward products over "
            f"batches of {POWER_BATCH}, stopping at a relative change below {POWER_TOL:g} or {POWER_MAX_ITER} "
            "iterations. Relative difference: |shattering - PyHessian| / |shattering|; power iteration closes the gap "
            "to lambda_max by a factor lambda_2 / lambda_max per product, so where that is near 1 its stopping rule "
            "(a small change, not a small residual) stops short of lambda_max. One HVP: all the examples, "
            f"median of {HVP_REPEATS} after a warm-up. Sharpness: one `sharpness_measures` (Keskar et al.'s phi in "
            "the full space and a random subspace at two eps, and the adaptive sharpness: five L-BFGS-B "
            "maximizations; with `--sharpness one`, the full-space phi at eps 1e-3 alone: the last column names the "
            "maximizations run). One run each, except the HVP.", "", *table(rows)]


def parse_examples(text: str, parser) -> tuple[int, dict[str, int]]:
    """``2000,inception-small=500`` -> (2000, {"inception-small": 500})."""
    default, per = DEFAULT_EXAMPLES, {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, _, value = item.rpartition("=")
        if not value.isdigit() or int(value) < 1:
            parser.error(f"--examples: {item!r} is not a positive count (N or model=N)")
        if name:
            per[name] = int(value)
        else:
            default = int(value)
    return default, per


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated models (default %(default)s)")
    parser.add_argument("--examples", default=str(DEFAULT_EXAMPLES),
                        help="training examples: N, and model=N for one model (e.g. 2000,inception-small=500)")
    parser.add_argument("--quick", action="store_true", help="MLP 1x512 on 64 examples; prints only")
    parser.add_argument("--sharpness", choices=("all", "one"), default="all",
                        help="all: the five maximizations of sharpness_measures; one: Keskar's phi, full space, "
                             "eps 1e-3 (default %(default)s)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args(argv)
    if args.quick:
        models, default, per = ["mlp-1x512"], 64, {}
    else:
        models = [m for m in (s.strip() for s in args.models.split(",")) if m]
        default, per = parse_examples(args.examples, parser)
        unknown = sorted(set(per) - set(models))
        if unknown:
            parser.error(f"--examples names model(s) not in --models: {', '.join(unknown)}")
    # curvlinops' dependencies (linear_operator) decorate with torch.jit.script, deprecated since torch 2.14
    warnings.filterwarnings("ignore", message=r"`torch.jit.script` is deprecated", category=FutureWarning)
    curvature._curvlinops()  # fails here, saying how to install it, before anything is measured
    info, date, slug, before = base.start_part()
    rows = []
    for name in models:
        row = bench_model(name, per.get(name, default), args.sharpness == "all")
        rows.append(row)
        s, p, h = row["shattering"], row["pyhessian"], row["hvp"]
        print(f"{name}: {row['examples']} examples ({row['data']}), {row['parameters']:,} parameters, trained "
              f"{row['train_seconds']:.1f} s; lambda_max shattering {s['value']:.6g} ({s['products']} products, "
              f"{s['seconds']:.2f} s), PyHessian {p['value']:.6g} ({p['products']} products, {p['seconds']:.2f} s), "
              f"relative difference {row['relative_difference']:.1e}; one HVP curvlinops {h['curvlinops']:.3f} s, "
              f"double backward {h['double_backward']:.3f} s (products differ by {h['difference']:.1e}); "
              f"sharpness {row['sharpness']['seconds']:.2f} s", flush=True)
    load = (before, base.load_average())
    command = "python bench/curvature.py " + " ".join(sys.argv[1:] if argv is None else argv)
    body = render(rows, info, load, date, command.strip())
    print("\n" + "\n".join(body), flush=True)
    if args.quick or args.no_write:
        return 0
    text = base.RESULTS.read_text() if base.RESULTS.exists() else "# Benchmark results\n"
    title = info["cpu"] + (" (AVX2, no AVX-512)" if slug.endswith("-avx2") else "") \
        + (f" + {info['gpu']}" if info.get("gpu") else "")
    text = base.write_part(text, slug, title, PART, body)
    base.RESULTS.write_text(text if text.endswith("\n") else text + "\n")
    print(f"wrote {base.RESULTS} (section speed-{slug}, part {PART})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
