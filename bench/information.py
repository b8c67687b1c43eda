"""The cost of the information plane: runs of the ``information`` artefact's quick setting trained with and
without the ``information`` probe, in one process, and the probe's share of the training time.

    python bench/information.py                 # writes this machine's part "information" of RESULTS.md
    python bench/information.py --no-write      # prints only

Per setting of the artefact (``mlp-saxe`` with tanh and with ReLU on true labels, random labels, random pixels and
Gaussian inputs, the bundled digits, until fit, seed 0, the artefact's probe: 30 log-spaced epochs on 1,000
examples, bins 4 and 30, noise 0.1): the wall time of the run without the probe and with it, each in a fresh
folder, and (with - without) / without; then the same over all settings (the quick artefact runs each of them
for three seeds).
"""

from __future__ import annotations

import argparse
import json
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

PART = "information"
SETTINGS = tuple((a, c) for a in INFORMATION_ACTIVATIONS for c in INFORMATION_INPUTS)


def timed(activation: str, corruption: str, probe: str | None) -> dict:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        run = shattering.run(dataset="digits", test_size=360, model="mlp-saxe", model_args={"activation": activation},
                             corruption=corruption, epochs=1500, until="fit", out=out, measures="none",
                             probes=[probe] if probe else None, progress=False)
        return {"seconds": time.perf_counter() - t0, "fit_epoch": run.summary.get("fit_epoch")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args(argv)
    info, date = base.machine(), time.strftime("%Y-%m-%d")
    slug = base.machine_slug(info)
    before, rows = base.load_average(), []
    timed(*SETTINGS[0], None)  # not counted: the first run measures this machine's step choices and caches them
    for activation, corruption in SETTINGS:
        plain, probed = timed(activation, corruption, None), timed(activation, corruption, INFORMATION_PROBE)
        rows.append({"activation": activation, "corruption": corruption, "fit_epoch": plain["fit_epoch"],
                     "without": plain["seconds"], "with": probed["seconds"],
                     "share": (probed["seconds"] - plain["seconds"]) / plain["seconds"]})
        print(json.dumps(rows[-1]), flush=True)
    without, with_probe = sum(r["without"] for r in rows), sum(r["with"] for r in rows)
    measured = base.measured_line(info, (before, base.load_average()), date).removesuffix(
        "; each figure the median of repeats.") + "."
    body = ["### The information probe's cost", "", measured, "",
            f"`python bench/information.py`: `mlp-saxe` on the bundled digits until fit, without a probe and with "
            f"`{INFORMATION_PROBE}` (the `information` artefact's quick setting), seed 0, one run each in a fresh "
            "folder, after one uncounted run (the first run of a machine measures its step choices); the last row "
            "sums the settings.", "",
            "| activation | labels | fit epoch | without the probe s | with it s | the probe's share |",
            "|---|---|---|---|---|---|",
            *(f"| {r['activation']} | {r['corruption']} | {r['fit_epoch']} | {r['without']:.1f} | {r['with']:.1f} | "
              f"{100 * r['share']:.0f}% |" for r in rows),
            f"| all | | | {without:.1f} | {with_probe:.1f} | {100 * (with_probe - without) / without:.0f}% |"]
    return base.finish_part(slug, info["cpu"], PART, body, write=not args.no_write)


if __name__ == "__main__":
    sys.exit(main())
