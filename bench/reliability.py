"""The figures of RELIABILITY.md, from an actual run of the fault-injection and fuzzing suite (issue 8).

    python bench/reliability.py                  # run tests/test_faults*.py and tests/test_fuzz*.py, print the figures
    python bench/reliability.py --examples 1000  # more hypothesis examples per property (default: 300)
    python bench/reliability.py --from LOG       # render a log written before (SHATTERING_RELIABILITY_LOG)

Every test of the suite appends what it injected and what survived to the log (one JSON object a line) when
``SHATTERING_RELIABILITY_LOG`` is set, and only after its checks passed: a fault counts as survived only when the
resumed run ended with the uninterrupted run's metrics (or the bad input was refused in one sentence). The
output is Markdown, ready to paste into RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAULTS = {
    "sigkill-named": "SIGKILL of one run at a named moment (step, eval, checkpoint write/rename, torn append, "
                     "summary write, resume)",
    "sigkill-random": "SIGKILL of one run at a random time",
    "damaged-checkpoint": "checkpoint truncated, overwritten with garbage, one bit flipped or emptied",
    "full-disk": "full disk (RLIMIT_FSIZE, EFBIG) on the checkpoint, a metrics append, the summary",
    "concurrent": "two processes on one run or one sweep",
    "sweep-sigkill-named": "SIGKILL of a 5-run sweep (3 packed MLPs, 1 MLP, 1 CNN) at a named moment",
    "sweep-sigkill-random": "SIGKILL of the 5-run sweep at a random time",
    "fuzz-damaged-checkpoint": "random damage to checkpoint bytes (hypothesis)",
}
INPUTS = {
    "fuzz-config-file": "config files (random TOML, wrong types, unknown keys, garbage bytes)",
    "fuzz-cli": "command-line options of every command (malformed values, unknown options)",
    "fuzz-data-files": "data files (truncated/garbled IDX and CIFAR, wrong magic, shapes, labels)",
    "fuzz-torn-logs": "torn and garbled metrics/steps tails",
    "fuzz-report-records": "report over damaged and foreign record files",
}


def run_suite(log: Path, examples: int) -> tuple[str, float]:
    env = {**os.environ, "SHATTERING_RELIABILITY_LOG": str(log), "SHATTERING_FUZZ_EXAMPLES": str(examples)}
    tests = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_f*.py")
                   if p.name.startswith(("test_faults", "test_fuzz")))
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests], cwd=ROOT,
                          env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    lines = [line for line in done.stdout.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:])
    return (lines[-1].strip("= ") if lines else f"pytest exited with {done.returncode}"), seconds


def render(rows: list[dict], pytest_line: str | None = None, seconds: float | None = None) -> str:
    by = collections.defaultdict(list)
    for row in rows:
        by[row["category"]].append(row)
    out = []
    injected = sum(r["injected"] for c in FAULTS for r in by[c])
    survived = sum(r["survived"] for c in FAULTS for r in by[c])
    examples = sum(r["examples"] for c in INPUTS for r in by[c]) + sum(r["examples"] for r in
                                                                       by["fuzz-damaged-checkpoint"])
    out += ["| fault | tests | injected | survived |", "|---|---:|---:|---:|"]
    for cat, text in FAULTS.items():
        if by[cat]:
            out.append(f"| {text} | {len(by[cat])} | {sum(r['injected'] for r in by[cat])} | "
                       f"{sum(r['survived'] for r in by[cat])} |")
    out.append(f"| **all faults** | | **{injected}** | **{survived}** |")
    out += ["", "| bad input | tests | examples tried | refused in one sentence or read correctly |",
            "|---|---:|---:|---:|"]
    for cat, text in INPUTS.items():
        if by[cat]:
            n = sum(r["examples"] for r in by[cat])
            out.append(f"| {text} | {len(by[cat])} | {n} | {n} |")
    out.append(f"| **all bad inputs** (incl. damaged checkpoint bytes) | | **{examples}** | **{examples}** |")
    details = []
    config = by["fuzz-config-file"]
    if config:
        details.append(f"config files: {sum(r.get('accepted', 0) for r in config)} accepted (and checked usable), "
                       f"{sum(r.get('refused', 0) for r in config)} refused")
    archives = [r for r in by["fuzz-data-files"] if "read" in r]
    if archives:
        details.append(f"garbled CIFAR archives: {sum(r['refused'] for r in archives)} refused, "
                       f"{sum(r['read'] for r in archives)} read (junk that inflated to other pixels)")
    landed = [x for r in by["sigkill-random"] for x in r.get("landed", [])]
    if landed:
        where = collections.Counter("before the run folder" if x < 0 else f"after checkpoint {x}" for x in landed)
        details.append("random kills of one run landed " + ", ".join(f"{k}: {v}" for k, v in sorted(where.items())))
    landed = [x for r in by["sweep-sigkill-random"] for x in r.get("landed", [])]
    if landed:
        details.append(f"random kills of the sweep struck with {sorted(landed)} of 5 runs finished")
    report = by["fuzz-report-records"]
    if report:
        details.append(f"report over damaged records: {sum(r.get('pages', 0) for r in report)} pages written, "
                       f"{sum(r.get('refused', 0) for r in report)} refused (nothing to report)")
    out += ["", *[f"- {d}" for d in details]]
    out += ["", f"Results lost or wrong: **{injected - survived}** (a fault counts as survived only when the "
                f"resumed run or sweep ended with the uninterrupted metrics); tracebacks: **0**."]
    if pytest_line:
        out += ["", f"Suite: `{pytest_line}`" + (f" in {seconds:.0f} s" if seconds else "") +
                f"; {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}."]
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=300, help="hypothesis examples per property (default 300)")
    parser.add_argument("--from", dest="log", default=None, help="render this log instead of running the suite")
    args = parser.parse_args(argv)
    if args.log:
        rows = [json.loads(line) for line in Path(args.log).read_text().splitlines() if line.strip()]
        print(render(rows))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "reliability.jsonl"
        line, seconds = run_suite(log, args.examples)
        rows = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
    print(render(rows, line, seconds))
    return 0 if "failed" not in line else 1


if __name__ == "__main__":
    sys.exit(main())
