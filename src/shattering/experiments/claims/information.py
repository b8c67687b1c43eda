"""The claims of the ``information`` artefact, read on the ``information`` probe's files of each run (the last
hidden layer's I(X;T), in bits, against the epoch):

- Shwartz-Ziv and Tishby (2017): a compression phase (I(X;T) falling) follows the fitting phase (tanh);
- Saxe et al. (ICLR 2018): ReLU networks do not compress under binning;
- the hypothesis of the summary this project started from: compressing noise takes a network longer than
  compressing a strong signal (the epoch at which the last hidden layer's I(X;T) peaks, compression's start, on
  random labels and random pixels against true labels).

Compression of one run: the peak of I(X;T) over the probed epochs minus its value at the last one. Every verdict
names the estimator it used and says where another estimator disagrees.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from .core import Claim, RunFacts, Verdict, judged, not_measured

# The claims' estimator: binning at 4 bins (Saxe et al.'s bins of width 0.5 over tanh's [-1, 1]; at 30 bins, Shwartz-
# Ziv and Tishby's, a 20-unit layer gives nearly every one of 600 or 1,000 examples a pattern of its own: I(X;T)
# sits within 0.06 bit of log2 N).
ESTIMATOR = "binned4_i_xt"
OTHERS = ("binned30_i_xt", "kde_i_xt_upper")  # and the ones each verdict is checked against
# "Compresses": I(X;T) of the last hidden layer falls at least this many bits from its peak by the end.
COMPRESSION_BITS = 0.1


def trajectory(f: RunFacts, estimator: str = ESTIMATOR) -> list[tuple[int, float]] | None:
    """(epoch, I(X;T)) of the run's last hidden layer under ``estimator`` (None: no probe files)."""
    from ...probes import load_information  # here: the claims are read without the probes' dependencies

    if f.run_dir is None or f.summary is None:
        return None
    info = load_information(f.run_dir)
    if not info:
        return None
    layers = sorted({name for layers in info.values() for name in layers}, key=_layer_order)
    last = layers[-1]
    points = [(epoch, layers_[last].get(estimator)) for epoch, layers_ in sorted(info.items()) if last in layers_]
    points = [(e, float(v)) for e, v in points if isinstance(v, (int, float))]
    return points or None


def _layer_order(name: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in name.replace(".", " ").split())


def compression(points: Sequence[tuple[int, float]]) -> dict:
    """The peak of I(X;T), its epoch, the last value and the fall from the peak (bits)."""
    epoch, peak = max(points, key=lambda p: p[1])
    return {"peak_epoch": epoch, "peak": peak, "last": points[-1][1], "fall": peak - points[-1][1]}


def _group(facts: Sequence[RunFacts], activation: str, corruption: str) -> list[RunFacts]:
    return [f for f in facts if f.config.model_kwargs().get("activation", "relu") == activation
            and f.config.corruption == corruption and f.summary is not None]


def _falls(facts: Sequence[RunFacts], activation: str, estimator: str = ESTIMATOR) -> list[float]:
    runs = [trajectory(f, estimator) for f in _group(facts, activation, "true-labels")]
    return [compression(p)["fall"] for p in runs if p]


def _other_estimators(facts: Sequence[RunFacts], activation: str, rule) -> str:
    said = []
    for est in OTHERS:
        falls = _falls(facts, activation, est)
        if falls:
            said.append(f"{est}: {'agrees' if rule(falls) == rule(_falls(facts, activation)) else 'disagrees'} "
                        f"(falls {', '.join(f'{v:.2f}' for v in falls)})")
    return "; ".join(said)


def tanh_compresses(facts: Sequence[RunFacts]) -> Verdict:
    falls = _falls(facts, "tanh")
    if not falls:
        return not_measured("no tanh run on true labels with the information probe's files")

    def rule(values):
        return all(v >= COMPRESSION_BITS for v in values)

    return judged(rule(falls), f"the tanh network's last hidden layer loses at least {COMPRESSION_BITS:g} bit of "
                  f"I(X;T) from its peak by the end ({ESTIMATOR}) in {sum(v >= COMPRESSION_BITS for v in falls)} of "
                  f"{len(falls)} seeds: falls {', '.join(f'{v:.2f}' for v in falls)} bits; other estimators: "
                  f"{_other_estimators(facts, 'tanh', rule) or 'none recorded'}", falls=falls)


def relu_does_not_compress(facts: Sequence[RunFacts]) -> Verdict:
    falls = _falls(facts, "relu")
    if not falls:
        return not_measured("no ReLU run on true labels with the information probe's files")

    def rule(values):
        return all(v < COMPRESSION_BITS for v in values)

    return judged(rule(falls), f"the ReLU network's last hidden layer loses less than {COMPRESSION_BITS:g} bit of "
                  f"I(X;T) from its peak ({ESTIMATOR}) in {sum(v < COMPRESSION_BITS for v in falls)} of {len(falls)} "
                  f"seeds: falls {', '.join(f'{v:.2f}' for v in falls)} bits; other estimators: "
                  f"{_other_estimators(facts, 'relu', rule) or 'none recorded'}", falls=falls)


def _onsets(facts: Sequence[RunFacts], estimator: str) -> tuple[dict, list[bool], list[str], list[str]]:
    """Per activation and noise input: the median epoch at which the last hidden layer's I(X;T) peaks, against
    the true labels'; where every seed of both compresses (a fall of at least :data:`COMPRESSION_BITS`)."""
    numbers, ok, texts, missing = {}, [], [], []
    for activation in ("tanh", "relu"):
        onset = {}
        for corruption in ("true-labels", "random-labels", "random-pixels"):
            runs = [trajectory(f, estimator) for f in _group(facts, activation, corruption)]
            comp = [compression(p) for p in runs if p]
            compressing = [c for c in comp if c["fall"] >= COMPRESSION_BITS]
            if comp and len(compressing) == len(comp):
                onset[corruption] = statistics.median(c["peak_epoch"] for c in compressing)
            elif comp:
                missing.append(f"{activation} {corruption}: {len(compressing)} of {len(comp)} seeds compress")
        if "true-labels" not in onset:
            continue
        for noise in ("random-labels", "random-pixels"):
            if noise in onset:
                ok.append(onset[noise] > onset["true-labels"])
                texts.append(f"{activation}: compression starts at epoch {onset[noise]:g} on {noise} against "
                             f"{onset['true-labels']:g} on true labels (median of the seeds)")
                numbers[f"{activation} {noise}"] = {"onset": onset[noise], "onset_true": onset["true-labels"]}
    return numbers, ok, texts, missing


def noise_compresses_later(facts: Sequence[RunFacts]) -> Verdict:
    numbers, ok, texts, missing = _onsets(facts, ESTIMATOR)
    others = []
    for est in OTHERS:
        _, other_ok, other_texts, _ = _onsets(facts, est)
        others.append(f"{est}: " + (f"later in {sum(other_ok)} of {len(other_ok)} ({'; '.join(other_texts)})"
                                    if other_ok else "no input compresses in every seed"))
    if not ok:
        return not_measured("not measurable at this scale with the claims' estimator: compression (a fall of at "
                            f"least {COMPRESSION_BITS:g} bit of the last hidden layer's I(X;T), {ESTIMATOR}) is not "
                            "seen in every seed of true labels and of a noise input of one activation"
                            + (f" ({'; '.join(missing)})" if missing else "") + "; other estimators: "
                            + "; ".join(others))
    return judged(all(ok), "compression of noise starts later than compression of the true labels' signal in "
                  f"{sum(ok)} of {len(ok)} comparisons ({ESTIMATOR}): " + "; ".join(texts)
                  + "; other estimators: " + "; ".join(others), **numbers)


INFORMATION_CLAIMS = (
    Claim("tishby-compression", "With tanh, a compression phase (I(X;T) of the deep layers falling) follows the "
          "fitting phase.", "Shwartz-Ziv and Tishby 2017", tanh_compresses),
    Claim("saxe-relu", "ReLU networks do not compress under the binning estimator (compression comes with "
          "saturating units).", "Saxe et al. 2018, Section 3", relu_does_not_compress),
    Claim("noise-compresses-later", "Compressing noise takes a network longer than compressing a strong signal "
          "(the hypothesis of the summary this project started from; not a claim of the paper).",
          "the seed's hypothesis", noise_compresses_later),
)
