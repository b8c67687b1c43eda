"""One preset per figure and table of the paper (grids of runs at three scales)."""

from .presets import PRESETS, SCALES, Preset, get_preset

__all__ = ["PRESETS", "SCALES", "Preset", "get_preset"]
