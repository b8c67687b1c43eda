"""The theory of Zhang et al., "Understanding deep learning requires rethinking generalization" (ICLR 2017),
run and verified.

- Section 4, Theorem 1 and Appendix C (:mod:`.relu_interpolation`): a two-layer ReLU network with 2n + d
  weights that reproduces any targets on n distinct points, and its depth-k variant.
- Section 5 (:mod:`.min_norm`): SGD on over-parameterized least squares converges to the minimum-norm
  interpolant pinv(X) y.
- Section 5, Eq. (3) and Table 3 (:mod:`.kernels`, :mod:`.features`, :mod:`.table3`): exact kernel
  interpolation of true and random labels, on pixels and on wavelet / random-conv features.
- Section 2.2 (:mod:`.rademacher`): an empirical Rademacher probe.
"""

from .features import FEATURES as FEATURES
from .features import compute_features as compute_features
from .features import random_conv_features as random_conv_features
from .features import wavelet_transform as wavelet_transform
from .kernels import KERNELS as KERNELS
from .kernels import KernelFactorizationError as KernelFactorizationError
from .kernels import KernelSolver as KernelSolver
from .kernels import blocked_cholesky_ as blocked_cholesky_
from .kernels import fit_label_sets as fit_label_sets
from .kernels import kernel_experiment as kernel_experiment
from .kernels import kernel_matrix as kernel_matrix
from .kernels import median_bandwidth as median_bandwidth
from .min_norm import min_norm_experiment as min_norm_experiment
from .min_norm import min_norm_solution as min_norm_solution
from .min_norm import null_space_component as null_space_component
from .min_norm import sgd_least_squares as sgd_least_squares
from .rademacher import rademacher_probe as rademacher_probe
from .relu_interpolation import DeepReLUInterpolant as DeepReLUInterpolant
from .relu_interpolation import ReLUInterpolant as ReLUInterpolant
from .relu_interpolation import expressivity as expressivity
from .relu_interpolation import fit_relu_interpolant as fit_relu_interpolant
from .sample import Sample as Sample
from .sample import load_sample as load_sample
from .table3 import PAPER_TABLE3 as PAPER_TABLE3
from .table3 import compute_table3 as compute_table3
from .table3 import render_table3 as render_table3
