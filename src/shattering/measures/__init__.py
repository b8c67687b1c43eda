"""Complexity measures of trained networks (Zhang et al., ICLR 2017, Section 5: which "characterization of
complexity" separates the networks that fit true labels from those that fit random ones?): norms, spectral and
path norms, margins and PAC-Bayes flatness, after Neyshabur et al. 2015 and 2017, Bartlett, Foster and Telgarsky
2017 and Jiang et al. 2020. Every run computes those its setting ``measures`` selects when it ends
(``summary["measures"]``); :func:`shattering.runs.measure_run` computes them for a finished run from its
checkpoint.

- :mod:`~shattering.measures.registry`: the one registry (:class:`Measure`, :func:`register_measure`), from
  which everything that lists measures is generated;
- :mod:`~shattering.measures.layers`: the weighted layers as linear maps (batch norm folded; a convolution's
  operator norm by power iteration);
- :mod:`~shattering.measures.norms`, :mod:`~shattering.measures.margins`, :mod:`~shattering.measures.flatness`:
  the maths; :mod:`~shattering.measures.builtin`: the built-in measures' records;
  :mod:`~shattering.measures.compute`: the selected ones for one run.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports
from . import builtin as builtin  # registers the built-in measures, in the order tables show them
from .compute import MAX_EXAMPLES as MAX_EXAMPLES
from .compute import compute_measures as compute_measures
from .compute import measures_of as measures_of
from .compute import merge_measures as merge_measures
from .compute import with_measures as with_measures
from .registry import Measure as Measure
from .registry import MeasureInput as MeasureInput
from .registry import get_measure as get_measure
from .registry import measure_names as measure_names
from .registry import measures as measures
from .registry import register_measure as register_measure
from .registry import selected as selected
from .registry import unregister_measure as unregister_measure

lazy_exports(__name__, {".layers": ("Unmeasurable",)})  # imported when first used: layers imports torch
if TYPE_CHECKING:
    from .layers import Unmeasurable as Unmeasurable
