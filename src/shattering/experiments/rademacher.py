"""The experiment behind ``shatter rademacher``: an empirical Rademacher probe, Section 2.2 of Zhang et al.,
"Understanding deep learning requires rethinking generalization" (ICLR 2017, arXiv 1611.03530).

Eq. 1 and its pieces (the random sign vectors sigma, the correlation) are :mod:`shattering.theory.rademacher`.
The probe trains on ``draws`` random sign vectors and reports (1/n) sum_i sigma_i h(x_i) for

- ``network``: a shattering model (``mlp-1x512`` by default) with two outputs, trained by SGD with cross-entropy
  on the classes (sigma + 1) / 2 until it fits them; h(x) = sign(f_1(x) - f_0(x)) (also reported: the clipped
  margin clip(f_1 - f_0, -1, 1));
- ``kernel``: the Gaussian-kernel interpolant of sigma (Eq. 3), h = clip(K alpha, -1, 1): exactly 1 up to
  the solve's residual;
- ``linear``: least squares on [x, 1], h = sign(<w, x> + c): a class that cannot shatter n > d + 1 points,
  so its correlation stays below 1, which shows the probe can tell the difference.

The sup over H is replaced by what training finds, so each number is a lower bound on R_n(H) for the class.
Training details [I] (not in the paper): SGD, momentum 0.9, constant learning rate ``lr``, batch 64, at most
``epochs`` epochs, stopping at 100% training accuracy; PyTorch's default initialization.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ..models import build_model, check_model
from ..optimizers import build_optimizer
from ..theory.kernel_solver import KernelSolver
from ..theory.rademacher import correlation, random_signs
from ..validation import check_choices, check_float, check_int
from .sample import load_sample

PROBES = ("network", "kernel", "linear")


def fit_network(x: np.ndarray, sigma: np.ndarray, *, model: str = "mlp-1x512", epochs: int = 300, lr: float = 0.1,
                batch_size: int = 64, seed: int = 0) -> tuple[np.ndarray, dict]:
    """Train ``model`` (2 outputs) on the classes (sigma + 1) / 2; return the margins f_1 - f_0 on ``x``.

    ``x`` has shape (n, C, H, W). The global torch RNG is forked, so the caller's random state is untouched.
    """
    inputs = torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32)
    targets = torch.as_tensor((np.asarray(sigma) > 0).astype(np.int64))
    n = len(inputs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        net = build_model(model, tuple(inputs.shape[1:]), 2)
        gen = torch.Generator().manual_seed(int(seed) + 1)
        opt = build_optimizer("sgd", [{"params": list(net.parameters())}], lr=lr, device=torch.device("cpu"))
        loss_fn = torch.nn.CrossEntropyLoss()
        epoch, acc = 0, 0.0
        for epoch in range(1, epochs + 1):  # noqa: B007 (epoch is reported)
            net.train()
            order = torch.randperm(n, generator=gen)
            for start in range(0, n, batch_size):
                idx = order[start:start + batch_size]
                opt.zero_grad(set_to_none=True)
                loss_fn(net(inputs[idx]), targets[idx]).backward()
                opt.step()
            net.eval()
            with torch.no_grad():
                logits = net(inputs)
            acc = float((logits.argmax(1) == targets).float().mean())
            if acc == 1.0:
                break
        margin = (logits[:, 1] - logits[:, 0]).double().numpy()
    return margin, {"epochs": epoch, "train_accuracy": acc, "fit": acc == 1.0}


def rademacher_probe(dataset: str = "digits", train_size: int = 500, *, model: str = "mlp-1x512", draws: int = 3,
                     probes: str | list[str] = "network,kernel,linear", epochs: int = 300, lr: float = 0.1,
                     batch_size: int = 64, seed: int = 0, data_seed: int = 0, test_size: int = 1,
                     data_dir: str | Path | None = None) -> dict:
    """Fit ``draws`` random sign vectors on ``train_size`` training images of ``dataset`` and report the mean
    correlation (1/n) sum sigma_i h(x_i) of each probe (module docstring). ``data_seed`` draws the subset and
    the signs sigma (the probe's random labels), ``seed`` the network's initialization and order and the
    kernel's bandwidth sample. The probe measures the fit to the training sample only: ``test_size`` test
    images are loaded with it and not used. Returns a JSON-ready dict."""
    start = time.perf_counter()
    n = check_int(train_size, "train_size", minimum=2)
    draws = check_int(draws, "draws")
    epochs = check_int(epochs, "epochs")
    batch_size = check_int(batch_size, "batch_size")
    lr = check_float(lr, "lr", low=0.0, low_open=True)
    names = check_choices(probes, "probes", PROBES)
    if "network" in names:
        check_model(model)
    sample = load_sample(dataset, n, test_size, seed=data_seed, data_dir=data_dir)
    images = sample.data.x_train
    x = sample.flat("train")
    solver = KernelSolver(x, "gaussian", None, seed=seed) if "kernel" in names else None
    design = np.hstack([x, np.ones((len(x), 1))])
    per_probe: dict[str, list[dict]] = {name: [] for name in names}
    for draw in range(draws):
        sigma = random_signs(len(x), data_seed, draw)
        if "network" in names:
            margin, info = fit_network(images, sigma, model=model, epochs=epochs, lr=lr, batch_size=batch_size,
                                       seed=seed * 1000 + draw)
            per_probe["network"].append({"correlation": correlation(sigma, np.sign(margin)),
                                         "clipped": correlation(sigma, np.clip(margin, -1, 1)), **info})
        if solver is not None:
            alpha, info = solver.solve(torch.from_numpy(sigma))
            fitted = solver.fitted(alpha).numpy()
            per_probe["kernel"].append({"correlation": correlation(sigma, np.clip(fitted, -1, 1)),
                                        "sign": correlation(sigma, np.sign(fitted)),
                                        "max_residual": float(np.abs(fitted - sigma).max())})
        if "linear" in names:
            w = np.linalg.lstsq(design, sigma, rcond=None)[0]
            out = design @ w
            per_probe["linear"].append({"correlation": correlation(sigma, np.sign(out)),
                                        "clipped": correlation(sigma, np.clip(out, -1, 1))})
    summary = {}
    for name, runs in per_probe.items():
        values = np.array([r["correlation"] for r in runs])
        summary[name] = {"mean": float(values.mean()), "std": float(values.std()), "draws": runs}
    described = {"network": f"{model}, SGD lr {lr:g} momentum 0.9, batch {batch_size}, <= {epochs} epochs",
                 "kernel": ("Gaussian kernel interpolant (sigma = "
                            f"{solver.bandwidth:.4g}, {solver.bandwidth_rule}), h = clip(K alpha, -1, 1)"
                            if solver is not None else ""),
                 "linear": f"least squares on [x, 1] (d + 1 = {design.shape[1]} weights), h = sign"}
    return {"dataset": sample.name, "n": len(x), "d": x.shape[1], "draws": draws, "seed": seed,
            "data_seed": data_seed, "probes": {name: described[name] for name in names}, "results": summary,
            "seconds": time.perf_counter() - start}
