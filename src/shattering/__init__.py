"""shattering: the randomization tests of Zhang et al., "Understanding deep learning requires rethinking
generalization" (ICLR 2017), and everything else that paper does, run and verified.

>>> import shattering
>>> result = shattering.run(dataset="digits", model="mlp-1x512", corruption="random-labels")  # doctest: +SKIP
>>> print(result.message)  # doctest: +SKIP
"""

from . import _openmp  # noqa: F401  (first: sets OMP_WAIT_POLICY before torch loads)
from ._version import __version__ as __version__
from .config import RunConfig as RunConfig
from .corruptions import CORRUPTIONS as CORRUPTIONS
from .corruptions import randomize as randomize
from .data import ArrayData as ArrayData
from .data import load_dataset as load_dataset
from .models import MODELS as MODELS
from .models import build_model as build_model
from .models import paper_param_count as paper_param_count
from .models import register_model as register_model
from .report.reproduce import reproduce as reproduce
from .runs import RunResult as RunResult
from .runs import load_curves as load_curves
from .runs import load_model as load_model
from .runs import load_runs as load_runs
from .runs import measure_run as measure_run
from .runs import read_checkpoint as read_checkpoint
from .runs import run as run
from .train.data import make_data as make_data
