"""The paper's claims, as data: what each artefact of Zhang et al. (ICLR 2017) says, restated with the paper's
numbers, and how to measure it on the runs behind the artefact.

A :class:`Claim` has an ``id``, the paper's ``words`` (restated, with its numbers), ``where`` in the paper it is
said, and ``measure``: a function of the artefact's items (:class:`RunFacts` of its runs for a trained preset,
the computed rows for a computed one, the result dict for a theory experiment) returning a :class:`Verdict`:
``holds``, ``does not hold at this scale`` or ``not measured (why)``, with the numbers behind it. "Does not
hold at this scale" is an honest result, not a failure: the paper's effects need its data and budgets.

Every threshold a verdict uses is stated in its text (e.g. "training loss below 0.1 x ln K"), so that a reader
can see what "about zero" or "far below chance" meant.

- ``core.py``: :class:`Claim`, :class:`Verdict`, :class:`RunFacts`, the thresholds and the shared helpers;
- ``figures.py``: Figures 1a, 1b/1c and 2b; ``tables.py``: Tables 1 and 4 (CIFAR-10);
- ``imagenet.py``: Table 2 and Figure 2a; ``theory.py``: Table 3 / Section 5 and Theorem 1;
- ``sharpness.py``: beyond the paper, which minima networks reach (Keskar et al. 2017; Im et al. 2016);
- ``memorization_scores.py``: which examples are memorized (Feldman and Zhang 2020; Jiang et al. 2021);
- ``factors.py``: the factorial study (Zhang et al.'s Section 3, Keskar et al., Im et al., Jiang et al.).
"""

from .core import (
    BN_COST_BAND,
    CHANCE_MARGIN,
    EARLY_STOPPING_GAIN,
    FAR_BELOW_CHANCE,
    HOLDS,
    LOSS_FRACTION,
    NOT_AT_SCALE,
    NOT_MEASURED,
    NOT_NEEDED_FACTOR,
    VERDICTS,
    Claim,
    RunFacts,
    Verdict,
    assess_all,
    facts_of,
    judged,
    not_measured,
    steps_below,
)
from .factors import FACTORS_CLAIMS
from .figures import FIG1A_CLAIMS, FIG1BC_CLAIMS, FIG2B_CLAIMS
from .imagenet import FIG2A_CLAIMS, TABLE2_CLAIMS, describe_regularizers
from .information import INFORMATION_CLAIMS
from .landscape import LANDSCAPE_CLAIMS
from .memorization_scores import MEMORIZATION_SCORES_CLAIMS
from .sharpness import SHARPNESS_CLAIMS
from .tables import TABLE1_CLAIMS, TABLE4_CLAIMS
from .theory import TABLE3_CLAIMS, THEOREM1_CLAIM

__all__ = ["BN_COST_BAND", "CHANCE_MARGIN", "Claim", "EARLY_STOPPING_GAIN", "FACTORS_CLAIMS", "FAR_BELOW_CHANCE",
           "FIG1A_CLAIMS",
           "FIG1BC_CLAIMS", "FIG2A_CLAIMS", "FIG2B_CLAIMS", "HOLDS", "INFORMATION_CLAIMS", "LANDSCAPE_CLAIMS",
           "LOSS_FRACTION", "MEMORIZATION_SCORES_CLAIMS", "NOT_AT_SCALE", "NOT_MEASURED", "NOT_NEEDED_FACTOR",
           "RunFacts", "SHARPNESS_CLAIMS",
           "TABLE1_CLAIMS", "TABLE2_CLAIMS", "TABLE3_CLAIMS", "TABLE4_CLAIMS", "THEOREM1_CLAIM", "VERDICTS",
           "Verdict", "assess_all", "describe_regularizers", "facts_of", "judged", "not_measured", "steps_below"]
