"""Training as the paper does (Section 2.1, Appendix A): the loop, augmentation, measurement, precision."""

from .loop import RunResult, make_data, run

__all__ = ["RunResult", "make_data", "run"]
