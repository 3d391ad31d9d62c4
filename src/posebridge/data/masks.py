"""Frame masks: the runs of consecutive frames a (T,) bool mask marks (frames with a detection,
feet planted, a body in flight)."""

from __future__ import annotations

import numpy as np

__all__ = ["true_runs"]


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of every run of True in a 1-D mask, in order.

    >>> true_runs(np.array([True, True, False, True]))
    [(0, 2), (3, 4)]
    """
    edges = np.diff(np.concatenate([[0], np.asarray(mask, dtype=np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))
