"""Pseudo-ground-truth for the ACAE: the initial separate-head model's predictions of every joint
of every format on a clean subset of the labeled training data, as in Sárándi et al. (WACV 2023,
"Learning 3D Human Pose Estimation from Dozens of Datasets using a Geometry-Aware Autoencoder to
Bridge Between Skeleton Formats").

The subset: frames whose 2D detections are confident (mean keypoint confidence at least
``min_confidence``), every ``stride``-th such frame, at most ``max_poses`` (an even random draw
beyond that). The model lifts each whole row (temporal context, test-time flip averaging) and the
chosen frames are kept. A fraction ``holdout`` of the takes (whole sequences, so near-identical
neighbouring frames never straddle the split) is marked ``holdout``, to score the fitted ACAE.

Poses are camera-space millimetres of the union of formats. The lifter predicts root-relative
poses; each frame is placed at the ground-truth position of its dataset's own root joint (the
labels exist: these are labeled training frames), so that the ACAE's projected loss sees real
camera rays. All formats of a frame move together, so their relative placement is the model's.

File (``write_pseudo_gt`` / ``read_pseudo_gt``, an .npz of plain arrays): ``points`` (N, J, 3)
float32 mm; ``joint_names`` (J,) ``<format>/<joint>``; ``formats`` (F,) with ``format_start`` /
``format_stop`` (F,) slices; per pose ``dataset``, ``sequence``, ``camera`` (str), ``frame``
(index in its row) and ``holdout`` (bool); ``model`` (the lifter's name).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, fields

import numpy as np

from posebridge.errors import ConfigError, DataError
from posebridge.specs import check_keys

__all__ = ["PseudoGTConfig", "select_frames", "predict_frames", "write_pseudo_gt", "read_pseudo_gt"]


@dataclass(frozen=True)
class PseudoGTConfig:
    """The ``acae: pseudo_gt:`` block of config.yaml."""

    min_confidence: float = 0.5  # mean 2D keypoint confidence a frame needs
    stride: int = 2  # keep every stride-th confident frame of a row
    max_poses: int = 20000  # cap on poses kept (even random draw beyond it)
    holdout: float = 0.2  # fraction of takes held out to score the ACAE
    flip: bool = True  # test-time flip averaging

    @classmethod
    def from_dict(cls, values: dict | None) -> "PseudoGTConfig":
        values = dict(values or {})
        check_keys(values, [f.name for f in fields(cls)], "pseudo_gt")
        config = cls(**values)
        if not 0 <= config.min_confidence <= 1:
            raise ConfigError(f"pseudo_gt: min_confidence must lie in [0, 1], got {config.min_confidence}")
        if int(config.stride) < 1 or int(config.max_poses) < 2:
            raise ConfigError("pseudo_gt: stride must be >= 1 and max_poses >= 2")
        if not 0 < config.holdout < 1:
            raise ConfigError(f"pseudo_gt: holdout must lie in (0, 1), got {config.holdout}")
        return config


def select_frames(data, config: PseudoGTConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The chosen flat frame indices of a ``training.data.LabeledSet`` (sorted) and, per chosen
    frame, whether its take is held out."""
    rng = np.random.default_rng([int(seed), 104729])
    confidence = data.keypoint_confidence().mean(axis=1)
    chosen = []
    for start, frames in zip(data.row_start, data.row_frames):
        local = np.flatnonzero(confidence[start:start + frames] >= config.min_confidence)
        chosen.append(start + local[::int(config.stride)])
    chosen = np.concatenate(chosen) if chosen else np.zeros(0, np.int64)
    if len(chosen) > config.max_poses:
        chosen = np.sort(rng.choice(chosen, size=int(config.max_poses), replace=False))
    # hold out whole takes: the same sequence seen by another camera is the same motion
    frame_row = np.repeat(np.arange(len(data.row_frames)), data.row_frames)
    takes = np.array([f"{data.names[g]}:{s}" for g, s in zip(data.row_group, data.row_sequence)])
    unique = np.unique(takes)
    held = rng.permutation(unique)[:max(1, int(round(config.holdout * len(unique))))]
    if len(held) == len(unique) and len(unique) > 1:
        held = held[:-1]  # keep something to fit on
    holdout = np.isin(takes[frame_row[chosen]], held)
    if holdout.all() or not holdout.any():  # one take only: hold out its last frames instead
        holdout = np.arange(len(chosen)) >= len(chosen) - max(1, int(round(config.holdout * len(chosen))))
    return chosen, holdout


def predict_frames(model, data, chosen: np.ndarray, flip: bool = True) -> np.ndarray:
    """(len(chosen), J_union, 3) float32 camera-space mm: ``model``'s prediction (``inference.
    lift_network_input`` on each whole row) of the chosen flat frames, root-relative to the row's
    own format's root joint, placed at that root's ground-truth position."""
    from posebridge.geometry import skeletons
    from posebridge.inference.lift import lift_network_input
    from posebridge.models.lifter import MM_PER_UNIT

    lifter = model.lifter
    out = np.zeros((len(chosen), lifter.num_joints_out, 3), np.float32)
    frame_row = np.repeat(np.arange(len(data.row_frames)), data.row_frames)
    rows = frame_row[chosen]
    for r in np.unique(rows):
        start, frames, g = data.row_start[r], data.row_frames[r], data.row_group[r]
        sel = np.flatnonzero(rows == r)
        pred = lift_network_input(model, data.inputs[start:start + frames], flip=flip).double().cpu().numpy()
        fmt = data.formats[g]
        root = lifter.slices[fmt].start + skeletons.get(fmt).root
        local = chosen[sel] - start
        pose = pred[local] - pred[local, root:root + 1]
        truth_root = data.targets[g][chosen[sel] - data.group_start[g], skeletons.get(fmt).root]
        out[sel] = ((pose + truth_root[:, None].astype(np.float64)) * MM_PER_UNIT).astype(np.float32)
    return out


MIN_DEPTH_MM = 100.0
"""A pseudo-GT pose keeps its frame only when every joint lies this far in front of the camera: the
ACAE's projected loss divides by depth, and people close to everyday cameras (floor and phone
set-ups of the synthetic benchmark) can reach behind the image plane."""


def in_front(points: np.ndarray, min_depth_mm: float = MIN_DEPTH_MM) -> np.ndarray:
    """(N,) bool: poses (N, J, 3) camera mm whose every joint has z > ``min_depth_mm``."""
    return (points[..., 2] > min_depth_mm).all(axis=1)


def write_pseudo_gt(path, arrays: dict) -> None:
    """Write the pseudo-GT .npz atomically (plain arrays, no pickle)."""
    from posebridge.atomic import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def read_pseudo_gt(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a pseudo-GT file written by ``write_pseudo_gt``; DataError when it is not one."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise DataError(path, "file not found (run posebridge pseudo-gt)") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(path, f"not a readable pseudo-GT .npz, truncated or corrupt ({type(err).__name__}: {err})") from None
    missing = [k for k in ("points", "joint_names", "holdout", "formats") if k not in arrays]
    if missing:
        raise DataError(path, f"not a pseudo-GT file: lacks {', '.join(missing)}")
    if arrays["points"].ndim != 3 or arrays["points"].shape[1] != len(arrays["joint_names"]):
        raise DataError(path, f"points {arrays['points'].shape} do not match {len(arrays['joint_names'])} joint names")
    return arrays
