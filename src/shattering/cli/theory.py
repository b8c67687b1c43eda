"""``shatter expressivity | minnorm | kernel | rademacher``: the paper's theory (Sections 2.2, 4 and 5), run and
verified. Each handler only parses options and calls one experiment of :mod:`shattering.experiments`; bad values
raise :class:`~shattering.errors.ConfigError` there (one sentence on stderr, exit status 2).

The options speak the vocabulary of ``shatter run``: ``--dataset``, ``--data-dir``, ``--train-size``,
``--test-size``, ``--corruption`` / ``--p`` (label sets named as the corruptions of
:mod:`shattering.corruptions`), ``--seed`` (the algorithm's randomness), ``--data-seed`` (the subset and the
corruption draw), ``--json`` and ``--out DIR`` (the result as ``DIR/<command>.json``).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..files import atomic_write_json, folder_problem, json_text
from ..formatting import pct, plural, sci
from ..validation import check_int, check_probability


def _check_p(p):
    return None if p is None else check_probability(p)


def _check_seed(seed, name: str = "seed"):
    return check_int(seed, name, minimum=0)  # numpy's generators refuse negative seeds (a traceback otherwise)


def register(sub) -> None:
    """Add the theory commands to the ``shatter`` sub-command parser."""
    _add_expressivity(sub)
    _add_minnorm(sub)
    _add_kernel(sub)
    _add_rademacher(sub)


def _add_data_options(p, *, dataset: str, train_size: int, test_size: int | None, test_help: str | None = None,
                      seed_help: str) -> None:
    """The options every theory command shares with ``shatter run``: data, sizes, seeds and output."""
    p.add_argument("--dataset", default=dataset, help=f"data set (default: {dataset})")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="folder with the data set's files (default: the cache and the usual places)")
    p.add_argument("--train-size", type=int, default=train_size, help=f"training points (default: {train_size})")
    p.add_argument("--test-size", type=int, default=test_size,
                   help=test_help or "test images (default: the whole test set)")
    p.add_argument("--seed", type=int, default=0, help=f"{seed_help} (default: 0)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the subsets and of the corruption draw "
                                                            "(independent of --seed; default: 0)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--out", default=None, metavar="DIR", help="also write the result to DIR/<command>.json "
                                                              "(default: no file)")


def _add_corruption(p, default: str = "true-labels", *, several: bool = False) -> None:
    what = "comma-separated label sets solved with one factorization" if several else "label set"
    p.add_argument("--corruption", default=default, help=f"{what}: true-labels, partial-labels (with --p) or "
                                                         f"random-labels (default: {default})")
    p.add_argument("--p", type=float, default=None, help="corruption probability of partial-labels")


def _out_file(args, command: str) -> Path | None:
    """``--out DIR``'s file for ``command``, its folder made now (before any work)."""
    if args.out is None:
        return None
    folder = Path(args.out).expanduser()
    problem = folder_problem(folder)
    if problem:
        raise ConfigError(problem)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"Could not create the --out folder {folder} ({exc.strerror or exc}).") from None
    return folder / f"{command}.json"


def _emit(args, path: Path | None, result: dict) -> bool:
    """Write ``result`` to ``path`` (``--out``) and print it as JSON with ``--json``; True if printed."""
    if path is not None:
        atomic_write_json(path, result)
    if args.json:
        print(json_text(result, sort_keys=False), end="")
    return args.json


# --------------------------------------------------------------------------------------------------
# shatter expressivity (Theorem 1)
# --------------------------------------------------------------------------------------------------


def _add_expressivity(sub) -> None:
    p = sub.add_parser(
        "expressivity", help="Theorem 1: a two-layer ReLU net with 2n+d weights that fits any labels of n points",
        description="Build Theorem 1's network c(x) = sum_j w_j max(<a,x> - b_j, 0) (Section 4) on n training "
                    "images, check that it reproduces every label, and measure its conditioning.")
    _add_data_options(p, dataset="fashion-mnist", train_size=5000, test_size=None,
                      seed_help="seed of the random directions tried for a")
    _add_corruption(p)
    p.add_argument("--depth", type=int, default=2, help="also build Appendix C's depth-k net (default: 2, Theorem 1)")
    p.add_argument("--candidates", type=int, default=64, help="random directions tried for a (default: 64)")
    p.add_argument("--offset", type=float, default=0.1,
                   help="b_i = x_{i-1} + offset (x_i - x_{i-1}), in (0, 0.5]; 0.5 is the midpoint (default: 0.1)")
    p.add_argument("--method", default="auto", help="auto, triangular (forward substitution) or recurrence")
    p.set_defaults(func=_cmd_expressivity)


def _cmd_expressivity(args) -> int:
    from ..experiments.expressivity import expressivity  # here: `shatter --help` loads no torch

    out = _out_file(args, "expressivity")
    r = expressivity(args.dataset, args.train_size, corruption=args.corruption, p=_check_p(args.p),
                     depth=args.depth, seed=_check_seed(args.seed), data_seed=_check_seed(args.data_seed, "data_seed"),
                     test_size=args.test_size, candidates=args.candidates, offset=args.offset, method=args.method,
                     data_dir=args.data_dir)
    if _emit(args, out, r):
        return 0
    n, d, k, w = r["n"], r["d"], r["classes"], r["weights"]
    one, sc, fit = r["one_per_class"], r["scalar"], r["fit"]
    noise = f", label noise {100 * r['label_noise']:.1f}%" if r["corruption"] != "true-labels" else ""
    print(f"Theorem 1 on {r['dataset']}: n = {n} points in d = {d} dimensions, {r['corruption'].replace('-', ' ')}"
          f"{noise}, {k} classes")
    print(f"  weights:       2n + d = {w['theorem_1']:,} (one output, fitted to the class index; predict by rounding)")
    print(f"                 nK + n + d = {w['one_per_class']:,} (one output per class, argmax: a and b shared, "
          f"w is n x K)")
    print(f"  max error:     {sci(sc['max_error'])} (class index), {sci(one['max_error'])} (one-hot), float64")
    print(f"  train acc:     {pct(sc['train_accuracy'])} (class index), {pct(one['train_accuracy'])} (one-hot)")
    print(f"  test acc:      {pct(sc['test_accuracy'])} (class index), {pct(one['test_accuracy'])} (one-hot) "
          f"on {r['n_test']:,} test images, chance {100 / k:.0f}%")
    print(f"  min gap:       min_i (x_i - b_i) = {sci(fit['min_gap'])}; projection gaps / range = "
          f"{sci(fit['relative_gap'])} (best of {fit['candidates']} directions)")
    cond = f"  conditioning:  cond_1(A) ~ {sci(r['cond_1'])} (b at offset {fit['offset']:g})"
    if "midpoint" in r:
        cond += f"; midpoints: {sci(r['midpoint']['cond_1'])}, max error {sci(r['midpoint']['max_error'])}"
    print(cond)
    agree = f", recurrence agrees to {sci(r['solver_agreement'])}" if "solver_agreement" in r else ""
    print(f"  solver:        {fit['method']}{agree}")
    if "deep" in r:
        dp = r["deep"]
        print(f"  depth {dp['depth']}:       {dp['num_weights']:,} free weights (= nK + n + d) + "
              f"{dp['fixed_connections']:,} fixed +-1 connections, width {dp['widths'][0]}-{dp['widths'][1]}; "
              f"max error {sci(dp['max_error'])}, train acc {pct(dp['train_accuracy'])}, "
              f"test acc {pct(dp['test_accuracy'])}")
    for claim in r.get("claims", []):
        print(f"  Theorem 1:     {claim['verdict']}: {claim['text']}")
    print(f"  time:          {fit['seconds']:.2f} s to fit, {r['seconds']:.1f} s in all")
    return 0


# --------------------------------------------------------------------------------------------------
# shatter minnorm (Section 5)
# --------------------------------------------------------------------------------------------------


INTERPOLATES = 1e-3  # a relative residual ||Xw - y|| / ||y|| at or below this interpolates the targets


def _compared(a: float, b: float) -> str:
    """How ``a`` compares with ``b``, in words that are true of the measured numbers."""
    return "larger than" if a > b else "smaller than" if a < b else "equal to"


def _add_minnorm(sub) -> None:
    p = sub.add_parser(
        "minnorm", help="Section 5: SGD on over-parameterized least squares converges to pinv(X) y",
        description="Run SGD from w = 0 and from a random start on least squares with d > n; compare with the "
                    "minimum-norm solution pinv(X) y (Section 5, Eq. 3).")
    _add_data_options(p, dataset="fashion-mnist", train_size=100, test_size=None,
                      test_help="test images (default: the whole test set; synthetic: 1000)",
                      seed_help="seed of the SGD order, the random start and the random features")
    p.add_argument("--features", default="raw", help="raw (pixels) or random (random Fourier features)")
    p.add_argument("--width", type=int, default=None, help="random features (default 20n) or synthetic d (5n)")
    _add_corruption(p)
    p.add_argument("--epochs", type=int, default=300, help="SGD epochs (default: 300)")
    p.add_argument("--lr", type=float, default=None, help="step size (default: 1 / max_i ||x_i||^2)")
    p.add_argument("--batch-size", type=int, default=1, help="examples per step (default: 1)")
    p.set_defaults(func=_cmd_minnorm)


def _cmd_minnorm(args) -> int:
    from ..experiments.min_norm import min_norm_experiment  # here: `shatter --help` loads no torch

    out = _out_file(args, "minnorm")
    r = min_norm_experiment(args.dataset, args.train_size, features=args.features, width=args.width,
                            corruption=args.corruption, p=_check_p(args.p), epochs=args.epochs, lr=args.lr,
                            batch_size=args.batch_size, seed=_check_seed(args.seed),
                            data_seed=_check_seed(args.data_seed, "data_seed"), test_size=args.test_size,
                            data_dir=args.data_dir)
    if _emit(args, out, r):
        return 0
    z, rs, mn = r["from_zero"], r["from_random_start"], r["min_norm"]
    print(f"Minimum norm on {r['dataset']} ({r['features']}): n = {r['n']}, d = {r['d']}, rank {r['rank']}, "
          f"{r['corruption'].replace('-', ' ')}, one-hot targets; cond(X) = {r['singular_values']['cond']:.1f}")
    print(f"  SGD:            {plural(r['epochs_run'], 'epoch')}, batch {r['batch_size']}, lr {r['lr']:.3g}")
    print("  from w = 0:     epoch  ||w - w*||/||w*||  ||Xw - y||/||y||")
    for e, dist, res in zip(z["trace"]["epochs"], z["trace"]["distance"], z["trace"]["residual"], strict=True):
        print(f"                  {e:>5}  {dist:>17.3e}  {res:>16.3e}")
    print(f"  ||w*||:         {mn['norm']:.4g} (pinv(X) y); SGD from 0 ends at {z['norm']:.4g}")
    print(f"  random start:   ||w0|| = {rs['init_norm']:.4g}; SGD ends at residual {rs['residual']:.2e} "
          f"({'interpolates' if rs['residual'] <= INTERPOLATES else 'does not interpolate yet'}) with norm "
          f"{rs['norm']:.4g}, {_compared(rs['norm'], mn['norm'])} ||w*|| = {mn['norm']:.4g}")
    print(f"                  predicted limit w* + (I - pinv(X) X) w0 has norm {rs['predicted_norm']:.4g}; "
          f"distance to it {rs['distance_to_predicted_limit']:.2e}")
    if mn["test_accuracy"] is not None:
        print(f"  test acc:       {pct(z['test_accuracy'])} (from 0), {pct(rs['test_accuracy'])} (random start)")
    print(f"  time:           {r['seconds']:.1f} s")
    return 0


# --------------------------------------------------------------------------------------------------
# shatter kernel (Eq. 3, Table 3)
# --------------------------------------------------------------------------------------------------


def _add_kernel(sub) -> None:
    p = sub.add_parser(
        "kernel", help="Section 5 / Table 3: exact kernel interpolation K alpha = Y of true and random labels",
        description="Solve K alpha = Y exactly (one in-place Cholesky factorization, float64 or float32) for several "
                    "label sets and report training error, residual, test error and the norm sqrt(tr(alpha^T K "
                    "alpha)). The residual is measured in float64 and refined by conjugate gradients preconditioned "
                    "by the factor until max |K alpha - Y| <= tol (a run that did not get there says so); a matrix "
                    "that would not fit in memory is refused before anything is loaded.")
    _add_data_options(p, dataset="fashion-mnist", train_size=5000, test_size=None,
                      seed_help="seed of the random-conv filters and of the bandwidth's sample of points")
    p.add_argument("--kernel", default="gaussian", help="gaussian or laplacian (default: gaussian)")
    p.add_argument("--features", default="raw", help="raw, gabor, scattering or random-conv (default: raw)")
    _add_corruption(p, "true-labels,random-labels", several=True)
    p.add_argument("--ridge", type=float, default=0.0, help="added to the diagonal (default: 0, interpolation)")
    p.add_argument("--bandwidth", type=float, default=None, help="kernel width sigma (default: 0.25 x the median "
                   "pairwise distance on raw pixels, the median on other features)")
    p.add_argument("--dtype", default="float64", help="float64 or float32 factorization (default: float64; float32 "
                                                      "halves the memory and is refined with float64 kernel products)")
    p.add_argument("--block-size", type=int, default=2048, help="Cholesky block size (default: 2048; 4096 for n in "
                                                                 "the tens of thousands)")
    p.add_argument("--tol", type=float, default=None, help="refine until max |K alpha - Y| <= tol (default: 1e-10 in "
                                                           "float64, 1e-7 in float32)")
    p.add_argument("--refine-steps", type=int, default=None, help="most conjugate-gradient refinement steps "
                                                                  "(default: 3 in float64, 50 in float32)")
    p.add_argument("--whitening", default="none", help="pixel preprocessing: none (the paper's), per-image, "
                                                       "per-channel or default (default: none)")
    p.add_argument("--filters", type=int, default=None, help="random-conv filters (default: 1024; paper: 32,000)")
    p.set_defaults(func=_cmd_kernel)


def _cmd_kernel(args) -> int:
    from ..experiments.kernel_interpolation import kernel_experiment  # here: `shatter --help` loads no torch

    if args.filters is not None and args.features != "random-conv":
        raise ConfigError(f"--filters sets the number of random-conv filters; it does nothing with --features "
                          f"{args.features}: drop it or use --features random-conv.")
    options = {"filters": args.filters} if args.filters is not None else {}
    out = _out_file(args, "kernel")
    r = kernel_experiment(args.dataset, kernel=args.kernel, features=args.features, corruption=args.corruption,
                          p=_check_p(args.p), train_size=args.train_size, test_size=args.test_size, ridge=args.ridge,
                          bandwidth=args.bandwidth, dtype=args.dtype, block_size=args.block_size,
                          whitening=args.whitening, seed=_check_seed(args.seed),
                          data_seed=_check_seed(args.data_seed, "data_seed"), data_dir=args.data_dir,
                          feature_options=options, tol=args.tol, max_steps=args.refine_steps)
    if _emit(args, out, r):
        return 0
    sec = r["seconds"]
    print(f"Kernel interpolation on {r['dataset']}: {r['n_train']:,} train / {r['n_test']:,} test, "
          f"{r['description']} (d = {r['dimension']:,}), {r['kernel']} kernel, sigma = {r['bandwidth']:.4g} "
          f"({r['bandwidth_rule']}), ridge {r['ridge']:g}, {r['dtype']}")
    print(f"  {'corruption':<14} {'noise':>6} {'train err':>9} {'max |Ka-Y|':>10} {'interp.':>7} {'test err':>8} "
          f"{'norm':>10}")
    for x in r["results"]:
        print(f"  {x['corruption']:<14} {100 * x['label_noise']:>5.1f}% {100 * x['train_error']:>8.2f}% "
              f"{x['max_residual']:>10.1e} {'yes' if x['interpolates'] else 'NO':>7} "
              f"{pct(x['test_error']):>8} {x['norm']:>10.1f}")
    for x in r["results"]:
        if not x["interpolates"] and r["ridge"] == 0:
            print(f"  warning: the {x['corruption'].replace('-', ' ')} were not interpolated (max residual "
                  f"{x['max_residual']:.1e}, training error {100 * x['train_error']:.2f}%); try float64 or a smaller "
                  "bandwidth.")
    if r["results"]:
        first = r["results"][0]
        history = " ".join(f"{h:.1e}" for h in first["residual_history"])
        state = "reached" if first["refined_to_tolerance"] else "did NOT reach"
        count = first["stored_kernel_products"]
        stored = f"{count} from the stored kernel, " if count else ""
        print(f"  refined:  {first['refinement_steps']} conjugate-gradient steps ({first['products_from']}); kernel "
              f"products: {stored}{first['kernel_products']} float64; max residual {history} ({state} tol "
              f"{first['tol']:g})")
    print(f"  time:     features {sec.get('features', 0):.1f} s, kernel {sec['kernel']:.1f} s "
          f"({r['kernel_arithmetic']}), Cholesky {sec['factorization']:.1f} s, solve {sec.get('solve', 0):.1f} s, "
          f"refinement {sec.get('refinement', 0):.1f} s, prediction {sec.get('predict', 0):.1f} s; "
          f"{r['seconds_total']:.1f} s in all")
    return 0


# --------------------------------------------------------------------------------------------------
# shatter rademacher (Section 2.2)
# --------------------------------------------------------------------------------------------------


def _add_rademacher(sub) -> None:
    p = sub.add_parser(
        "rademacher", help="Section 2.2: fit random +-1 labels and report (1/n) sum sigma_i h(x_i)",
        description="An empirical Rademacher probe (Eq. 1): train on random signs sigma and report the "
                    "correlation (1/n) sum sigma_i h(x_i) for a network, a kernel interpolant and a linear model.")
    _add_data_options(p, dataset="digits", train_size=500, test_size=1,
                      test_help="test images loaded with the sample; the probe measures the fit to the training "
                                "sample only and uses none of them (default: 1)",
                      seed_help="seed of the network's initialization and order and of the bandwidth's sample "
                                "(--data-seed draws the subset and the signs sigma)")
    p.add_argument("--model", default="mlp-1x512", help="shattering model for the network probe")
    p.add_argument("--draws", type=int, default=3, help="random sign vectors (default: 3)")
    p.add_argument("--probes", default="network,kernel,linear", help="comma-separated: network, kernel, linear")
    p.add_argument("--epochs", type=int, default=300, help="most epochs per network fit (default: 300)")
    p.add_argument("--lr", type=float, default=0.1, help="network learning rate (default: 0.1)")
    p.set_defaults(func=_cmd_rademacher)


def _cmd_rademacher(args) -> int:
    from ..experiments.rademacher import rademacher_probe  # here: `shatter --help` loads no torch

    out = _out_file(args, "rademacher")
    r = rademacher_probe(args.dataset, args.train_size, model=args.model, draws=args.draws, probes=args.probes,
                         epochs=args.epochs, lr=args.lr, seed=_check_seed(args.seed),
                         data_seed=_check_seed(args.data_seed, "data_seed"), test_size=args.test_size,
                         data_dir=args.data_dir)
    if _emit(args, out, r):
        return 0
    print(f"Rademacher probe on {r['dataset']}: n = {r['n']}, d = {r['d']}, {r['draws']} draws of sigma")
    print("  (1/n) sum sigma_i h(x_i): 1 means the class shatters the sample (R_n = 1, a vacuous bound)")
    for name, s in r["results"].items():
        extra = ""
        if name == "network":
            fits = sum(d["fit"] for d in s["draws"])
            extra = f"; fit {fits}/{len(s['draws'])} draws, epochs {[d['epochs'] for d in s['draws']]}"
        print(f"  {name:<8} {s['mean']:.4f} +- {s['std']:.4f}   {r['probes'][name]}{extra}")
    print(f"  time:    {r['seconds']:.1f} s")
    return 0
