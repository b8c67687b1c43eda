"""Shared fixtures: no test downloads anything or touches the user's cache."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
# For processes a module-scoped fixture starts before the per-test ones below (the fault suite's zygote): never the
# user's tuning cache or core leases, and sweeps in one process.
os.environ["SHATTERING_CACHE_DIR"] = tempfile.mkdtemp(prefix="shattering-test-cache-")
os.environ["SHATTERING_SWEEP_WORKERS"] = "1"
os.environ["SHATTERING_CHECKPOINT_EVERY_S"] = "0"  # a checkpoint every epoch: what the fault tests kill between


@pytest.fixture(autouse=True)
def _isolated_data(tmp_path, monkeypatch):
    monkeypatch.setenv("SHATTERING_NO_DOWNLOAD", "1")
    monkeypatch.setenv("SHATTERING_DATA", str(tmp_path / "data-cache"))
    monkeypatch.setenv("SHATTERING_CACHE_DIR", str(tmp_path / "user-cache"))  # tuning cache and core leases
    monkeypatch.setenv("SHATTERING_SWEEP_WORKERS", "1")  # sweeps in-process (tests/test_tuning.py spawns workers)
    monkeypatch.setenv("SHATTERING_CHECKPOINT_EVERY_S", "0")  # tests/test_checkpoint_interval.py sets its own


def have_fashion_mnist() -> bool:
    return (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file()


needs_fashion = pytest.mark.skipif(not have_fashion_mnist(),
                                   reason="Debian's dataset-fashion-mnist is not installed (CI installs it)")
