"""shattering: the randomization tests of Zhang et al., "Understanding deep learning requires rethinking
generalization" (ICLR 2017), and everything else that paper does, run and verified.

>>> import shattering
>>> result = shattering.run(dataset="digits", model="mlp-1x512", corruption="random-labels")  # doctest: +SKIP
>>> print(result.message)  # doctest: +SKIP

``import shattering`` is light and changes nothing: each name below imports its module (and torch, scikit-learn)
when first used, and the environment is left as it is. OpenMP's wait policy, which torch's OpenMP runtime reads
once as it loads, is decided where a process starts: by the ``shatter`` command and by the worker processes a
sweep starts. A Python program that wants the same decision calls :func:`set_openmp_wait_policy` before it
imports torch (:mod:`shattering._openmp`).
"""

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
from ._version import __version__ as __version__

# name -> the module that defines it, imported when the name is first used (shattering._lazy)
__all__ = ["__version__", *lazy_exports(__name__, {
    "._openmp": ("set_openmp_wait_policy",),
    ".config": ("RunConfig",),
    ".corruptions": ("CORRUPTIONS", "randomize"),
    ".data": ("ArrayData", "load_dataset"),
    ".experiments.memorization_scores": ("subset_study",),
    ".measures": ("Measure", "register_measure", "unregister_measure"),
    ".models": ("MODELS", "build_model", "paper_param_count", "register_model"),
    ".optimizers": ("OPTIMIZERS",),
    ".probes": ("Probe", "RunState", "load_activations", "register_probe"),
    ".report.reproduce": ("reproduce",),
    ".runs": ("RunResult", "load_curves", "load_model", "load_runs", "measure_run", "read_checkpoint", "run"),
    ".train.data": ("make_data",),
})]

if TYPE_CHECKING:  # what type checkers and editors see
    from ._openmp import set_openmp_wait_policy as set_openmp_wait_policy
    from .config import RunConfig as RunConfig
    from .corruptions import CORRUPTIONS as CORRUPTIONS
    from .corruptions import randomize as randomize
    from .data import ArrayData as ArrayData
    from .data import load_dataset as load_dataset
    from .experiments.memorization_scores import subset_study as subset_study
    from .measures import Measure as Measure
    from .measures import register_measure as register_measure
    from .measures import unregister_measure as unregister_measure
    from .models import MODELS as MODELS
    from .models import build_model as build_model
    from .models import paper_param_count as paper_param_count
    from .models import register_model as register_model
    from .optimizers import OPTIMIZERS as OPTIMIZERS
    from .probes import Probe as Probe
    from .probes import RunState as RunState
    from .probes import load_activations as load_activations
    from .probes import register_probe as register_probe
    from .report.reproduce import reproduce as reproduce
    from .runs import RunResult as RunResult
    from .runs import load_curves as load_curves
    from .runs import load_model as load_model
    from .runs import load_runs as load_runs
    from .runs import measure_run as measure_run
    from .runs import read_checkpoint as read_checkpoint
    from .runs import run as run
    from .train.data import make_data as make_data
