"""The experiments: one preset per figure and table of the paper (grids of runs at three scales, or rows
computed directly, as Table 3's kernels), and the theory experiments that run :mod:`shattering.theory` on a data
set and report the result as a JSON-ready dict (``shatter expressivity | minnorm | kernel | rademacher``)."""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

# each name imported when first used (shattering._lazy): the presets load no torch, the theory experiments do
__all__ = lazy_exports(__name__, {
    ".expressivity": ("expressivity",),
    ".kernel_interpolation": ("kernel_experiment",),
    ".min_norm": ("min_norm_experiment",),
    ".presets": ("PRESETS", "SCALES", "Preset", "get_preset"),
    ".rademacher": ("rademacher_probe",),
    ".sample": ("Sample", "load_sample"),
    ".table3": ("PAPER_TABLE3", "compute_table3"),
})

if TYPE_CHECKING:
    from .expressivity import expressivity as expressivity
    from .kernel_interpolation import kernel_experiment as kernel_experiment
    from .min_norm import min_norm_experiment as min_norm_experiment
    from .presets import PRESETS as PRESETS
    from .presets import SCALES as SCALES
    from .presets import Preset as Preset
    from .presets import get_preset as get_preset
    from .rademacher import rademacher_probe as rademacher_probe
    from .sample import Sample as Sample
    from .sample import load_sample as load_sample
    from .table3 import PAPER_TABLE3 as PAPER_TABLE3
    from .table3 import compute_table3 as compute_table3
