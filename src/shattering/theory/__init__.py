"""The theory of Zhang et al., "Understanding deep learning requires rethinking generalization" (ICLR 2017):
the mathematics only. Nothing here loads a data set or trains a model; the experiments that run these on data
and report them are :mod:`shattering.experiments` (``shatter expressivity | minnorm | kernel | rademacher``,
``shatter reproduce table3``).

- Section 4, Theorem 1 and Appendix C (:mod:`.relu_interpolation`): a two-layer ReLU network with 2n + d
  weights that reproduces any targets on n distinct points, and its depth-k variant.
- Section 5 (:mod:`.min_norm`): SGD on over-parameterized least squares converges to the minimum-norm
  interpolant pinv(X) y.
- Section 5, Eq. (3) and Table 3: exact kernel interpolation. The kernels and the bandwidth heuristic
  (:mod:`.kernel_functions`), kernel matrices and products tile by tile, exact on 8-bit pixels
  (:mod:`.kernel_evaluator`), the blocked in-place Cholesky and triangular solves (:mod:`.linear_algebra`),
  the 48-bit fixed-point storage of the kernel (:mod:`.fixed_point`), the memory check (:mod:`.memory`), and
  the solver that factors once and solves every label set (:mod:`.kernel_solver`); fixed feature maps
  (wavelet, scattering, random-conv: :mod:`.features`).
- Section 2.2, Eq. (1) (:mod:`.rademacher`): random signs and the correlation of the Rademacher complexity.
"""

from .features import FEATURES as FEATURES
from .features import compute_features as compute_features
from .features import random_conv_features as random_conv_features
from .features import wavelet_transform as wavelet_transform
from .fixed_point import FixedPointUpper as FixedPointUpper
from .kernel_evaluator import KernelEvaluator as KernelEvaluator
from .kernel_evaluator import kernel_matrix as kernel_matrix
from .kernel_evaluator import kernel_product as kernel_product
from .kernel_functions import KERNELS as KERNELS
from .kernel_functions import default_bandwidth as default_bandwidth
from .kernel_functions import median_bandwidth as median_bandwidth
from .kernel_solver import KernelSolver as KernelSolver
from .kernel_solver import LabelSetResult as LabelSetResult
from .kernel_solver import fit_label_sets as fit_label_sets
from .linear_algebra import KernelFactorizationError as KernelFactorizationError
from .linear_algebra import blocked_cholesky_ as blocked_cholesky_
from .linear_algebra import solve_lower_ as solve_lower_
from .linear_algebra import solve_lower_transpose_ as solve_lower_transpose_
from .memory import KernelMemoryError as KernelMemoryError
from .memory import check_memory as check_memory
from .min_norm import min_norm_solution as min_norm_solution
from .min_norm import null_space_component as null_space_component
from .min_norm import random_fourier_features as random_fourier_features
from .min_norm import sgd_least_squares as sgd_least_squares
from .rademacher import correlation as correlation
from .rademacher import random_signs as random_signs
from .relu_interpolation import DeepReLUInterpolant as DeepReLUInterpolant
from .relu_interpolation import ReLUInterpolant as ReLUInterpolant
from .relu_interpolation import fit_relu_interpolant as fit_relu_interpolant
