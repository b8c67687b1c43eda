"""The claims of the ``landscape`` artefact, measured on the slices its renderer computed and kept in each run's
record (:func:`shattering.experiments.landscape.stored_slice`):

- Goodfellow, Vinyals and Saxe (ICLR 2015): the training loss decreases monotonically along the straight line
  from the initialization to the solution (no significant barrier);
- Im, Tao and Branson (2016): different optimizers reach different minima, separated by a barrier (here: the
  SGD and Adam solutions from one initialization, against two SGD solutions from two seeds);
- Li et al. (NeurIPS 2018), read on the question Zhang et al. (ICLR 2017) leave: the minimum reached on random
  labels is sharper along random filter-normalized directions than the one reached on true labels (the
  curvature of the plane's two central slices).
"""

from __future__ import annotations

from collections.abc import Sequence

from .core import Claim, RunFacts, Verdict, group_by, judged, not_measured

# "Monotonically": the largest rise of the training loss along [0, 1] at most this fraction of its value at the
# initialization (a flat stretch sampled at 41 points may wobble by rounding).
RISE_FRACTION = 0.01
# "Separated by a barrier": a rise of the training loss above the straight line between the two end losses of
# at least this many nats.
BARRIER = 0.1
# "Sharper": the mean curvature of the two central slices at least this many times the true-label minimum's.
SHARPER_RATIO = 1.2
_NEVER = "the artefact's renderer computes it: shatter reproduce landscape"


def _slice(f: RunFacts, kind: str, other: RunFacts | None = None) -> dict | None:
    from ..landscape import stored_slice  # here: it loads torch, and the claims are read without it

    if f.run_dir is None or f.summary is None:
        return None
    return stored_slice(f.run_dir, kind, None if other is None else other.run_dir)


def _role(f: RunFacts) -> str:
    c = f.config
    if c.corruption == "random-labels":
        return "random"
    return "adam" if c.optimizer != "sgd" else "sgd"


def _by_model(facts: Sequence[RunFacts]) -> dict[str, dict[str, list[RunFacts]]]:
    out: dict[str, dict[str, list[RunFacts]]] = {}
    for model, runs in group_by([f for f in facts if f.summary is not None], lambda f: f.config.model).items():
        roles: dict[str, list[RunFacts]] = {}
        for f in sorted(runs, key=lambda f: f.config.seed):
            roles.setdefault(_role(f), []).append(f)
        out[model] = roles
    return out


def monotone_from_initialization(facts: Sequence[RunFacts]) -> Verdict:
    found, ok, numbers = [], [], {}
    for model, roles in _by_model(facts).items():
        for role in ("sgd", "random"):
            if not roles.get(role):
                continue
            line = _slice(roles[role][0], "line")
            if line is None:
                continue
            start = line["train_loss"][line["alphas"].index(0.0)]
            rise = line["rise"]["rise"]
            if role == "sgd":
                ok.append(rise <= RISE_FRACTION * start)
            label = f"{model} {'true' if role == 'sgd' else 'random'} labels"
            found.append(f"{label}: largest rise {rise:.3g} (loss at the initialization {start:.3g})")
            numbers[label] = {"rise": rise, "initial_loss": start}
    if not ok:
        return not_measured(f"no line from initialization of a true-label run ({_NEVER})")
    return judged(all(ok), f"the training loss never rises by more than {100 * RISE_FRACTION:g}% of its initial value "
                  f"along [0, 1] on true labels in {sum(ok)} of {len(ok)} models (random labels shown beside): "
                  + "; ".join(found), **numbers)


def optimizers_separated_by_a_barrier(facts: Sequence[RunFacts]) -> Verdict:
    found, ok, numbers = [], [], {}
    for model, roles in _by_model(facts).items():
        sgd, adam = roles.get("sgd") or [], roles.get("adam") or []
        if not sgd or not adam:
            continue
        path = _slice(sgd[0], "between", adam[0])
        if path is None:
            continue
        seeds = _slice(sgd[0], "between", sgd[1]) if len(sgd) > 1 else None
        height = path["barrier"]["height"]
        ok.append(height >= BARRIER)
        seed_text = f"; between two SGD seeds {seeds['barrier']['height']:.3g}" if seeds else ""
        found.append(f"{model}: SGD to Adam barrier {height:.3g} at alpha {path['barrier']['alpha']:g}, the "
                     f"solutions {path['distance']:.3g} apart{seed_text}")
        numbers[model] = {"barrier": height, "distance": path["distance"],
                          "seed_barrier": seeds["barrier"]["height"] if seeds else None}
    if not ok:
        return not_measured(f"no path between an SGD and an Adam solution of one model ({_NEVER})")
    return judged(all(ok), f"a barrier of at least {BARRIER:g} (training loss above the straight line between the end "
                  f"losses) between the SGD and Adam solutions in {sum(ok)} of {len(ok)} models: " + "; ".join(found),
                  **numbers)


def random_labels_sharper(facts: Sequence[RunFacts]) -> Verdict:
    found, ok, numbers = [], [], {}
    for model, roles in _by_model(facts).items():
        if not roles.get("sgd") or not roles.get("random"):
            continue
        true, random = _slice(roles["sgd"][0], "plane"), _slice(roles["random"][0], "plane")
        if true is None or random is None:
            continue
        a, b = sum(true["curvature"]) / 2, sum(random["curvature"]) / 2
        ratio = b / a if a > 0 else None
        ok.append(ratio is not None and ratio >= SHARPER_RATIO)
        found.append(f"{model}: mean central curvature {b:.3g} (random) against {a:.3g} (true)"
                     + (f", {ratio:.2f}x" if ratio is not None else ""))
        numbers[model] = {"curvature_true": a, "curvature_random": b, "ratio": ratio}
    if not ok:
        return not_measured(f"no plane of a true- and a random-label run of one model ({_NEVER})")
    return judged(all(ok), f"the random-label minimum at least {SHARPER_RATIO:g}x as curved along random "
                  f"filter-normalized directions in {sum(ok)} of {len(ok)} models: " + "; ".join(found), **numbers)


LANDSCAPE_CLAIMS = (
    Claim("goodfellow-monotone", "The training loss decreases monotonically along the straight line from the "
          "initialization to the solution: no significant barrier.", "Goodfellow et al. 2015, Section 3",
          monotone_from_initialization),
    Claim("im-barrier", "Different optimizers reach different minima, separated by a barrier.",
          "Im, Tao and Branson 2016", optimizers_separated_by_a_barrier),
    Claim("li-random-sharper", "The minimum reached on random labels is sharper along random filter-normalized "
          "directions than the one reached on true labels (Li et al.'s reading of sharpness; the question the "
          "paper leaves).", "Li et al. 2018, Section 6; Zhang et al. 2017, Section 5", random_labels_sharper),
)
