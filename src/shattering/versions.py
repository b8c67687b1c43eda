"""What a run record was made with: this code's version (with its git commit when run from a checkout) and
the versions of the libraries that compute the results. Every ``config.json`` and ``summary.json`` holds
them, so that a number of Section 2 (Table 1, Figure 1) can be traced to the code that produced it.
"""

from __future__ import annotations

import platform
import subprocess
from functools import lru_cache
from pathlib import Path

import numpy as np

from ._version import __version__


@lru_cache(maxsize=1)
def code_version() -> str:
    """``__version__``, plus ``+g<commit>`` when the package runs from a git checkout."""
    version = __version__
    try:
        out = subprocess.run(["git", "-C", str(Path(__file__).parent), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5)
        if out.returncode == 0 and out.stdout.strip():
            version += f"+g{out.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    return version


def versions() -> dict:
    """The versions a record states: shattering, torch, numpy and Python."""
    import torch  # here: a reused record's provenance reads code_version() without torch

    return {"shattering": code_version(), "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}
