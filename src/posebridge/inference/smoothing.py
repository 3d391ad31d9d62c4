"""Temporal smoothing of keypoint sequences: the 2D before lifting and/or the 3D after.

Monocular pose estimates jitter from frame to frame: the 2D detector's errors are nearly
independent per frame, and the lifter passes part of them on. A Savitzky-Golay filter (a
least-squares polynomial fitted in a sliding window, Savitzky & Golay 1964, Anal. Chem. 36(8))
removes the high-frequency part while keeping the low-order motion: a polynomial of degree
``order`` passes through unchanged, so steady movement is not flattened the way a moving average
flattens it. The filter is ``scipy.signal.savgol_filter``; it is offline (it looks
``window // 2`` frames ahead), which suits ``posebridge infer`` and ``predict`` that see the
whole sequence. (The One-Euro filter, Casiez et al. CHI 2012, is the causal alternative; the
only PyPI package of it filters one scalar per call in Python and is not maintained alongside
scipy, so posebridge does not depend on it.)

Missing values are never smoothed into present ones: the filter runs separately over each run of
consecutive valid frames (a 2D keypoint with confidence > 0, a 3D frame with the person), and a
run shorter than the window is filtered with the longest odd window it holds (left as it is when
that is not above ``order``). Off by default; ``Smoothing.parse`` reads the command-line options.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posebridge.data.masks import true_runs
from posebridge.errors import ConfigError

STAGES = ("2d", "3d", "both")
DEFAULT_WINDOW = 9  # frames: ~0.3 s at 30 frames/s (the measurements in the README)
DEFAULT_ORDER = 2


@dataclass(frozen=True)
class Smoothing:
    """Where and how to smooth. ``stage``: '2d' (keypoints before lifting), '3d' (poses and the
    root trajectory after) or 'both'; ``window``: odd number of frames; ``order``: polynomial
    degree, below ``window``."""

    stage: str
    window: int = DEFAULT_WINDOW
    order: int = DEFAULT_ORDER

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ConfigError(f"smoothing stage must be one of {', '.join(STAGES)}, got {self.stage!r}")
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 3 \
                or self.window % 2 == 0:
            raise ConfigError(f"--smooth-window must be an odd number of frames >= 3, got {self.window!r}")
        if isinstance(self.order, bool) or not isinstance(self.order, int) or not 0 <= self.order < self.window:
            raise ConfigError(f"--smooth-order must be an integer in 0..{self.window - 1}, got {self.order!r}")

    @property
    def before(self) -> bool:
        """Smooth the 2D keypoints before lifting."""
        return self.stage in ("2d", "both")

    @property
    def after(self) -> bool:
        """Smooth the 3D poses (and trajectory) after lifting."""
        return self.stage in ("3d", "both")

    @classmethod
    def parse(cls, stage: str | None, window: int = DEFAULT_WINDOW, order: int = DEFAULT_ORDER) -> "Smoothing | None":
        """The smoothing of the command-line options; None when ``stage`` is None or 'none'."""
        if stage is None or stage == "none":
            return None
        return cls(stage, window, order)


def smooth_runs(values: np.ndarray, valid: np.ndarray, window: int, order: int) -> np.ndarray:
    """Savitzky-Golay filter ``values`` (T, ...) along time within each run of ``valid`` (T,) frames.

    Returns a float copy; frames outside the runs keep their values. A run shorter than
    ``window`` uses the longest odd window that fits, and is kept as is when that is <= ``order``.
    """
    from scipy.signal import savgol_filter

    out = np.array(values, dtype=np.float64, copy=True)
    for start, stop in true_runs(np.asarray(valid, dtype=bool)):
        length = stop - start
        fit = min(window, length if length % 2 else length - 1)
        if fit <= order:
            continue
        out[start:stop] = savgol_filter(out[start:stop], fit, order, axis=0, mode="interp")
    return out


def smooth_keypoints(keypoints: np.ndarray, smoothing: Smoothing) -> np.ndarray:
    """(T, K, 3) px + confidence -> the same with x, y smoothed per keypoint over the frames where
    it was detected (confidence > 0); confidences unchanged. float32."""
    keypoints = np.asarray(keypoints)
    out = np.array(keypoints, dtype=np.float32, copy=True)
    for k in range(keypoints.shape[1]):
        seen = keypoints[:, k, 2] > 0
        out[:, k, :2] = smooth_runs(keypoints[:, k, :2], seen, smoothing.window, smoothing.order)
    return out


def smooth_poses(poses: np.ndarray, valid: np.ndarray, smoothing: Smoothing) -> np.ndarray:
    """(T, J, 3) mm poses (or a (T, 3) trajectory) smoothed over the ``valid`` (T,) frames whose
    values are all finite; same dtype as given."""
    poses = np.asarray(poses)
    finite = np.isfinite(poses.reshape(len(poses), -1)).all(axis=1)
    return smooth_runs(poses, np.asarray(valid, bool) & finite, smoothing.window,
                       smoothing.order).astype(poses.dtype)
