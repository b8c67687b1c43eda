"""shattering: the randomization tests of Zhang et al., "Understanding deep learning requires rethinking
generalization" (ICLR 2017), and everything else that paper does, run and verified.

>>> import shattering
>>> result = shattering.run(dataset="digits", model="mlp-1x512", corruption="random-labels")  # doctest: +SKIP
>>> print(result.message)  # doctest: +SKIP
"""

__version__ = "0.1.0"

from .config import RunConfig as RunConfig  # noqa: E402
from .corruptions import CORRUPTIONS as CORRUPTIONS  # noqa: E402
from .corruptions import randomize as randomize  # noqa: E402
from .data import load_dataset as load_dataset  # noqa: E402
from .models import MODELS as MODELS  # noqa: E402
from .models import build_model as build_model  # noqa: E402
from .models import paper_param_count as paper_param_count  # noqa: E402
from .train import RunResult as RunResult  # noqa: E402
from .train import make_data as make_data  # noqa: E402
from .train import run as run  # noqa: E402
