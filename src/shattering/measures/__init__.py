"""Complexity measures of trained networks (Zhang et al., ICLR 2017, Section 5: which "characterization of
complexity" separates the networks that fit true labels from those that fit random ones?): norms, spectral and
path norms, margins and PAC-Bayes flatness, after Neyshabur et al. 2015 and 2017, Bartlett, Foster and Telgarsky
2017 and Jiang et al. 2020. Every run computes them when it ends (``summary["measures"]``);
:func:`shattering.runs.measure_run` computes them for a finished run from its checkpoint.

- :mod:`~shattering.measures.layers`: the weighted layers as linear maps (batch norm folded; a convolution's
  operator norm by power iteration);
- :mod:`~shattering.measures.norms`, :mod:`~shattering.measures.margins`, :mod:`~shattering.measures.flatness`:
  the measures; :mod:`~shattering.measures.compute`: all of them for one run.
"""

from .compute import MAX_EXAMPLES as MAX_EXAMPLES
from .compute import MEASURE_KEYS as MEASURE_KEYS
from .compute import compute_measures as compute_measures
from .compute import measures_of as measures_of
from .compute import with_measures as with_measures
from .layers import Unmeasurable as Unmeasurable
