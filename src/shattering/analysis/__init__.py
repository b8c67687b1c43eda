"""What a grid of trained networks says, on a table of runs with one column per hyper-parameter axis: which factor
drives the test error or the gap (:mod:`.effects`: an analysis of variance by statsmodels, with effect sizes), and
how well each complexity measure ranks the gap (:mod:`.ranking`: Kendall's tau-a and tau-b, Jiang et al.'s
granulated tau and conditional mutual information, ICLR 2020, and Dziugaite et al.'s worst case over
environments, NeurIPS 2020). Nothing here trains or loads a network.
"""

from .effects import FactorEffects as FactorEffects
from .effects import factor_effects as factor_effects
from .ranking import ConditionalInformation as ConditionalInformation
from .ranking import GranulatedTau as GranulatedTau
from .ranking import SignError as SignError
from .ranking import conditional_mutual_information as conditional_mutual_information
from .ranking import granulated_kendall as granulated_kendall
from .ranking import kendall_tau_a as kendall_tau_a
from .ranking import kendall_tau_b as kendall_tau_b
from .ranking import worst_sign_error as worst_sign_error
