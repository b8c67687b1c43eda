"""The experiments: one preset per figure and table of the paper (grids of runs at three scales, or rows
computed directly, as Table 3's kernels), and the theory experiments that run :mod:`shattering.theory` on a data
set and report the result as a JSON-ready dict (``shatter expressivity | minnorm | kernel | rademacher``)."""

from .expressivity import expressivity
from .kernel_interpolation import kernel_experiment
from .min_norm import min_norm_experiment
from .presets import PRESETS, SCALES, Preset, get_preset
from .rademacher import rademacher_probe
from .sample import Sample, load_sample
from .table3 import PAPER_TABLE3, compute_table3

__all__ = ["PAPER_TABLE3", "PRESETS", "SCALES", "Preset", "Sample", "compute_table3", "expressivity", "get_preset",
           "kernel_experiment", "load_sample", "min_norm_experiment", "rademacher_probe"]
