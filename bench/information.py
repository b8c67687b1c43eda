"""The cost of the information plane: runs of the ``information`` artefact's quick setting trained with and
without the ``information`` probe, in one process, and the probe's share of the training time.

    python bench/information.py                 # writes this machine's part "information" of RESULTS.md
    python bench/information.py --no-write      # prints only

Per setting of the artefact (``mlp-saxe`` with tanh and with ReLU on true labels, random labels, random pixels and
Gaussian inputs, the bundled digits, until fit, seed 0, the artefact's probe: 20 log-spaced epochs on 600
examples, bins 4 and 30, noise 0.1): the wall time of the run without the probe and with it, each in a fresh
folder, the fastest of two interleaved runs of each (a run's time varies by about 10% on a shared machine), and
(with - without) / without; then the same over all settings (the quick artefact runs each of them for three
seeds).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shattering  # noqa: E402  first: it decides OpenMP's wait policy before torch loads

shattering.set_openmp_wait_policy()

import bench as base  # noqa: E402

from shattering.experiments.presets_beyond import (  # noqa: E402
    INFORMATION_ACTIVATIONS,
    INFORMATION_INPUTS,
    INFORMATION_PROBE,
)
from shattering.probes.information import Information  # noqa: E402

PART = "information"
SETTINGS = tuple((a, c) for a in INFORMATION_ACTIVATIONS for c in INFORMATION_INPUTS)


PROBED: list[float] = []  # the seconds of each call of the probe in this process


def _timed_probe(on_epoch_end):
    def wrapper(self, state):
        t0 = time.perf_counter()
        try:
            return on_epoch_end(self, state)
        finally:
            PROBED.append(time.perf_counter() - t0)
    return wrapper


Information.on_epoch_end = _timed_probe(Information.on_epoch_end)


def timed(activation: str, corruption: str, probe: str | None) -> dict:
    with tempfile.TemporaryDirectory() as out:
        PROBED.clear()
        t0 = time.perf_counter()
        run = shattering.run(dataset="digits", test_size=360, model="mlp-saxe", model_args={"activation": activation},
                             corruption=corruption, epochs=1500, until="fit", out=out, measures="none",
                             probes=[probe] if probe else None, progress=False)
        return {"seconds": time.perf_counter() - t0, "fit_epoch": run.summary.get("fit_epoch"),
                "probe_seconds": sum(PROBED), "probed": len(PROBED)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each setting with and without (default 2)")
    parser.add_argument("--examples", type=int, help="the probe's sample size (default: the artefact's)")
    args = parser.parse_args(argv)
    info, date = base.machine(), time.strftime("%Y-%m-%d")
    slug = base.machine_slug(info)
    probe = INFORMATION_PROBE if args.examples is None else re.sub(r"examples=\d+", f"examples={args.examples}",
                                                                    INFORMATION_PROBE)
    before, rows = base.load_average(), []
    timed(*SETTINGS[0], None)  # not counted: the first run measures this machine's step choices and caches them
    for activation, corruption in SETTINGS:
        plain, probed = [], []
        for _ in range(args.rounds):  # interleaved, the fastest of each kept: a run's time varies by about 10%
            plain.append(timed(activation, corruption, None))
            probed.append(timed(activation, corruption, probe))
        without = min(r["seconds"] for r in plain)
        fastest = min(probed, key=lambda r: r["seconds"])
        rows.append({"activation": activation, "corruption": corruption, "fit_epoch": fastest["fit_epoch"],
                     "without": without, "with": fastest["seconds"], "probed": fastest["probed"],
                     "probe_seconds": min(r["probe_seconds"] for r in probed),
                     "share": (fastest["seconds"] - without) / without})
        rows[-1]["probe_share"] = rows[-1]["probe_seconds"] / without
        print(json.dumps(rows[-1]), flush=True)
    without, with_probe = sum(r["without"] for r in rows), sum(r["with"] for r in rows)
    probe_seconds, probed = sum(r["probe_seconds"] for r in rows), sum(r["probed"] for r in rows)
    measured = base.measured_line(info, (before, base.load_average()), date).removesuffix(
        "; each figure the median of repeats.") + "."
    body = ["### The information probe's cost", "", measured, "",
            f"`python bench/information.py`: `mlp-saxe` on the bundled digits until fit, without a probe and with "
            f"`{probe}` (the `information` artefact's quick setting{'' if probe == INFORMATION_PROBE else ' but for'}"
            f"{'' if probe == INFORMATION_PROBE else ' its sample size'}), seed 0, each in a fresh folder, "
            f"{args.rounds} of each interleaved and the fastest kept, after one uncounted run (the first run of a "
            "machine measures its step choices); the last row sums the settings.", "",
            "Two measures of the probe's share of the training time: the run's wall time with it less without it, "
            "over without it (the runs' own variation included), and the seconds spent inside the probe (timed "
            "around each call) over the run's time without it.", "",
            "| activation | labels | fit epoch | probed epochs | without the probe s | with it s | "
            "share by wall time | in the probe s | share by the probe's time |",
            "|---|---|---|---|---|---|---|---|---|",
            *(f"| {r['activation']} | {r['corruption']} | {r['fit_epoch']} | {r['probed']} | {r['without']:.1f} | "
              f"{r['with']:.1f} | {100 * r['share']:.0f}% | {r['probe_seconds']:.2f} | {100 * r['probe_share']:.1f}% |"
              for r in rows),
            f"| all | | | {probed} | {without:.1f} | {with_probe:.1f} | "
            f"{100 * (with_probe - without) / without:.0f}% | {probe_seconds:.2f} | "
            f"{100 * probe_seconds / without:.1f}% |"]
    return base.finish_part(slug, info["cpu"], PART, body, write=not args.no_write)


if __name__ == "__main__":
    sys.exit(main())
