"""Predicted 3D joints -> a CSV table: one row per frame, three columns per joint.

Columns: ``frame`` (index from 0), ``time_s`` (frame / fps), then ``<joint>_x``, ``<joint>_y``,
``<joint>_z`` for every joint of the skeleton format in its order (``geometry.skeletons``).
Coordinates are millimetres in the camera frame (x right, y down, z forward), as in the
prediction files: absolute (root-relative pose + the root's trajectory) when the prediction has a
trajectory, else root-relative. A frame without a pose (NaN) has empty cells.
"""

from __future__ import annotations

import io
import os

import numpy as np

from posebridge.atomic import write_text
from posebridge.geometry import skeletons

__all__ = ["csv_text", "write_csv", "absolute_joints"]


def csv_text(joints: np.ndarray, fmt, fps: float) -> str:
    """The CSV table (module docstring) of ``joints`` (T, J, 3) mm of format ``fmt``."""
    if not fps > 0:
        raise ValueError(f"frames per second must be positive, got {fps}")
    skeleton = skeletons.get(fmt)
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (skeleton.num_joints, 3):
        raise ValueError(f"{skeleton.name} joints must be (T, {skeleton.num_joints}, 3), got {joints.shape}")
    header = ["frame", "time_s"] + [f"{n}_{axis}" for n in skeleton.joint_names for axis in "xyz"]
    out = io.StringIO()
    out.write(",".join(header) + "\n")
    for t, pose in enumerate(joints.reshape(len(joints), -1)):
        cells = ["" if not np.isfinite(v) else f"{v:.3f}" for v in pose]
        out.write(f"{t},{t / fps:.6f}," + ",".join(cells) + "\n")
    return out.getvalue()


def absolute_joints(joints: np.ndarray, fmt, root_trajectory: np.ndarray | None) -> np.ndarray:
    """(T, J, 3) root-relative joints of format ``fmt`` placed on ``root_trajectory`` (T, 3) (the
    root moved there); unchanged when it is None."""
    joints = np.asarray(joints, dtype=np.float64)
    if root_trajectory is None:
        return joints
    root = skeletons.get(fmt).root
    return joints - joints[:, root:root + 1] + np.asarray(root_trajectory, dtype=np.float64)[:, None]


def write_csv(path: str | os.PathLike, joints: np.ndarray, fmt, *, fps: float,
              root_trajectory: np.ndarray | None = None) -> None:
    """Write ``joints`` (T, J, 3) camera-space mm of format ``fmt`` (root-relative when
    ``root_trajectory`` (T, 3) mm is given, which is then added) as CSV at ``path`` (atomically)."""
    write_text(path, csv_text(absolute_joints(joints, fmt, root_trajectory), fmt, fps))
