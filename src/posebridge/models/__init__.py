"""Models: the VideoPose3D temporal lifter and the separate-head lifter built on it."""

from posebridge.models.lifter import SeparateHeadLifter
from posebridge.models.temporal import TemporalModel, TemporalModelBase, TemporalModelOptimized

__all__ = ["TemporalModel", "TemporalModelBase", "TemporalModelOptimized", "SeparateHeadLifter"]
