"""Memory probing for the exact kernel interpolation of Eq. (3) in Zhang et al., "Understanding deep learning
requires rethinking generalization" (ICLR 2017, arXiv 1611.03530), Section 5 and Appendix D: the size of an
n x n kernel solve is checked against the memory available *before* anything is computed
(:func:`check_memory`), with one sentence if it does not fit.
"""

from __future__ import annotations

import os

import torch

from ..errors import ShatteringError
from .kernel_evaluator import KERNEL_TILE
from .linear_algebra import DEFAULT_BLOCK, PANEL_ROWS

MEMORY_SLACK = 512 * 2 ** 20  # bytes for the interpreter, torch and the data beyond what is counted


class KernelMemoryError(ShatteringError, MemoryError):
    """The kernel matrix would not fit in the memory available."""


def physical_memory() -> int | None:
    """Bytes of RAM on this machine, or None where the OS does not say."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def available_memory() -> int | None:
    """Bytes that can be allocated now without swapping: ``MemAvailable`` of /proc/meminfo (Linux), else the
    physical memory, else None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return physical_memory()


def memory_needed(n: int, dtype: torch.dtype, *, d: int = 0, block_size: int = DEFAULT_BLOCK,
                  tile: int = KERNEL_TILE, columns: int = 20) -> tuple[int, int]:
    """(bytes of the n x n matrix, bytes of everything else) for a :class:`KernelSolver` of n points in d
    dimensions: the matrix in ``dtype``; the data (float64 and int8), the Cholesky blocks and panel pieces,
    kernel tiles and a few n x ``columns`` float64 vectors of the conjugate-gradient solve."""
    item = torch.finfo(dtype).bits // 8
    b = min(block_size, n)
    tile = min(tile, n)
    factor = 6 * b * b * item + 2 * min(PANEL_ROWS, n) * b * item
    tiles = tile * tile * (8 + 4 + 8)  # float64 tile, int32 gram, one temporary
    data = n * d * (8 + 1)
    vectors = 8 * n * columns * 8
    return n * n * item, max(factor, tiles) + data + vectors + MEMORY_SLACK


def check_memory(n: int, dtype: torch.dtype, *, d: int = 0, block_size: int = DEFAULT_BLOCK,
                 tile: int = KERNEL_TILE, available: int | None = None) -> None:
    """Refuse, before allocating, an n x n kernel matrix that does not fit in the memory available now."""
    matrix, extra = memory_needed(n, dtype, d=d, block_size=block_size, tile=tile)
    have = available_memory() if available is None else available
    if have is not None and matrix + extra > have:
        other = "float32 (half the memory), " if dtype == torch.float64 else ""
        name = str(dtype).replace("torch.", "")
        raise KernelMemoryError(
            f"The {n:,} x {n:,} {name} kernel matrix needs {matrix / 1e9:.1f} GB (plus {extra / 1e9:.1f} GB of "
            f"workspace) but only {have / 1e9:.1f} GB of memory is available; use {other}fewer training points "
            "or a larger machine.")
