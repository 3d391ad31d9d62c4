"""Lift a file of 2D keypoints to 3D in every skeleton format a trained model knows.

Input (``.npz``):

- ``keypoints`` (T, 17, 2) or (T, 17, 3): COCO-17 keypoints in pixels (x right, y down), with an
  optional confidence in [0, 1] (missing -> 1; a missed keypoint has confidence 0);
- ``width``, ``height``: the image size in pixels;
- optional ``fx``, ``fy``, ``cx``, ``cy`` (pixels) and ``keypoint_format`` (must be ``coco_17``).

Missing intrinsics: the principal point defaults to the image centre and the focal length to that
of a 55 degree horizontal field of view, f = (width / 2) / tan(27.5 deg) ~ 0.96 x width — between a
Human3.6M camera (~47 deg) and a phone's main camera (~65-70 deg). Only ``fx`` (or only ``fy``)
given: the other equals it.

Output (``.npz``): one (T, J_format, 3) float32 array per format, keyed by the format name, in
millimetres, root-relative (root joint at the origin) in the camera frame (x right, y down, z
forward); ``joint_names_<format>`` (J_format,) str; ``intrinsics`` (4,) fx, fy, cx, cy used; and
``trajectory`` (T, 3) mm, the camera-space position of the root (see ``recover_trajectory``);
with 2D smoothing (``inference.smoothing``) also ``keypoints_2d_smoothed`` (T, 17, 3), the
keypoints the model was given.
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posebridge.errors import DataError

DEFAULT_HORIZONTAL_FOV_DEG = 55.0
KEYPOINT_FORMAT = "coco_17"
NUM_KEYPOINTS = 17


def default_intrinsics(width: float, height: float) -> np.ndarray:
    """(4,) fx, fy, cx, cy px: a 55 degree horizontal field of view, principal point at the centre."""
    f = (width / 2.0) / math.tan(math.radians(DEFAULT_HORIZONTAL_FOV_DEG) / 2.0)
    return np.array([f, f, width / 2.0, height / 2.0], dtype=np.float64)


@dataclass
class KeypointInput:
    """A validated keypoint file."""

    keypoints: np.ndarray  # (T, 17, 3) float32: x px, y px, confidence
    width: int
    height: int
    intrinsics: np.ndarray  # (4,) fx, fy, cx, cy px
    intrinsics_assumed: bool  # True when the file gave no focal length


def _scalar(path, data, key: str) -> float | None:
    if key not in data:
        return None
    value = np.asarray(data[key])
    if value.size != 1 or not np.issubdtype(value.dtype, np.number):
        raise DataError(path, f"'{key}' must be a single number, got an array of shape {value.shape} "
                              f"and dtype {value.dtype}")
    value = float(value.reshape(()))
    if not math.isfinite(value) or value <= 0:
        raise DataError(path, f"'{key}' must be a positive finite number, got {value}")
    return value


def read_keypoints(path: str | os.PathLike) -> KeypointInput:
    """Read and validate a keypoint ``.npz`` (module docstring); bad input raises ``DataError``."""
    path = Path(path)
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise DataError(path, "a single .npy array, not an .npz archive with keys keypoints, width, height")
        with loaded:
            data = {k: loaded[k] for k in loaded.files}
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise DataError(path, f"not a readable .npz file ({err})") from None

    missing = [k for k in ("keypoints", "width", "height") if k not in data]
    if missing:
        raise DataError(path, f"missing key(s) {', '.join(missing)} (found: {', '.join(sorted(data)) or 'none'})")
    if "keypoint_format" in data and str(data["keypoint_format"]) != KEYPOINT_FORMAT:
        raise DataError(path, f"keypoint_format is {str(data['keypoint_format'])!r}; the model takes "
                              f"{KEYPOINT_FORMAT} keypoints")

    keypoints = np.asarray(data["keypoints"])
    if not np.issubdtype(keypoints.dtype, np.number):
        raise DataError(path, f"'keypoints' must be numeric, got dtype {keypoints.dtype}")
    if keypoints.ndim != 3 or keypoints.shape[1] != NUM_KEYPOINTS or keypoints.shape[2] not in (2, 3):
        raise DataError(path, f"'keypoints' must have shape (T, 17, 2) or (T, 17, 3) ({KEYPOINT_FORMAT} "
                              f"pixels [+ confidence]), got {keypoints.shape}")
    if keypoints.shape[0] == 0:
        raise DataError(path, "'keypoints' holds no frames")
    bad = ~np.isfinite(keypoints)
    if bad.any():
        frames = np.flatnonzero(bad.any(axis=(1, 2)))
        raise DataError(path, f"'keypoints' has NaN/inf values in {len(frames)} frame(s) (first: frame "
                              f"{frames[0]}); give a missed keypoint confidence 0 instead")
    keypoints = keypoints.astype(np.float32)
    if keypoints.shape[2] == 2:
        keypoints = np.concatenate([keypoints, np.ones(keypoints.shape[:2] + (1,), np.float32)], axis=2)
    conf = keypoints[..., 2]
    if (conf < 0).any() or (conf > 1).any():
        raise DataError(path, f"confidences must lie in [0, 1], found {conf.min():.3g} .. {conf.max():.3g}")

    width, height = _scalar(path, data, "width"), _scalar(path, data, "height")
    fx, fy, cx, cy = (_scalar(path, data, k) for k in ("fx", "fy", "cx", "cy"))
    default = default_intrinsics(width, height)
    assumed = fx is None and fy is None
    fx = fx if fx is not None else (fy if fy is not None else default[0])
    fy = fy if fy is not None else fx
    intrinsics = np.array([fx, fy, cx if cx is not None else default[2], cy if cy is not None else default[3]])
    return KeypointInput(keypoints, int(round(width)), int(round(height)), intrinsics, assumed)


def _coco_correspondence(formats: list[str]) -> tuple[str, np.ndarray, np.ndarray] | None:
    """A predicted format and index pairs (format joints, coco_17 keypoints) that mark the same
    point (``skeletons.keypoint_correspondence``): the first format that maps exactly onto
    coco_17, else the first with the hinge joints (elbows, wrists, knees, ankles). None when no
    format has them."""
    from posebridge.geometry import skeletons
    from posebridge.errors import ConfigError

    found = []
    for fmt in formats:
        try:
            found.append((fmt, *skeletons.keypoint_correspondence(fmt, KEYPOINT_FORMAT)))
        except ConfigError:
            continue
    return max(found, key=lambda match: len(match[1])) if found else None  # an exact mapping pairs the most


def recover_trajectory(poses: dict[str, np.ndarray], keypoints: np.ndarray,
                       intrinsics: np.ndarray) -> np.ndarray | None:
    """(T, 3) mm camera-space root position that makes the predicted pose project onto the 2D.

    Solves, per frame, the weighted linear least squares of ``losses.recover_translation`` on the
    joints shared with the COCO-17 input (weights = keypoint confidence). Lens distortion is not
    known here and is ignored. Returns None when no predicted format shares enough joints with
    COCO-17. The trajectory is the root of the format used; other formats' roots (pelvis
    definitions) lie centimetres away.
    """
    import torch

    from posebridge.training.losses import recover_translation

    match = _coco_correspondence(list(poses))
    if match is None:
        return None
    fmt, joint_index, coco_index = match
    kp = keypoints[:, coco_index]
    fx, fy, cx, cy = intrinsics
    uv = np.stack([(kp[..., 0] - cx) / fx, (kp[..., 1] - cy) / fy], axis=-1)
    rel = torch.as_tensor(poses[fmt][:, joint_index], dtype=torch.float64)
    with torch.no_grad():
        t = recover_translation(rel, torch.as_tensor(uv, dtype=torch.float64),
                                torch.as_tensor(kp[..., 2], dtype=torch.float64))
    return t.numpy().astype(np.float32)


def predict(model, inputs: KeypointInput, *, flip: bool = True, lift=None,
            trajectory: bool = True, smoothing=None) -> dict[str, np.ndarray]:
    """Lift ``inputs`` with ``model`` (``inference.lift.LiftingModel``); returns the output arrays.

    Keys: every format of ``model.formats`` -> (T, J, 3) float32 mm root-relative camera space,
    ``joint_names_<format>``, ``intrinsics`` and (when recoverable) ``trajectory`` (T, 3) mm.
    ``lift`` defaults to ``inference.lift.lift`` (injectable for tests). ``smoothing``: an
    ``inference.smoothing.Smoothing`` (None: off) applied to the 2D before lifting (then also
    ``keypoints_2d_smoothed``) and/or to the poses and trajectory after, over the frames with a
    detected keypoint.
    """
    from posebridge.geometry import skeletons
    from posebridge.errors import ConfigError

    # both formats have 17 points: without this check h36m_17 models would silently read COCO
    if getattr(model, "keypoint_format", KEYPOINT_FORMAT) != KEYPOINT_FORMAT:
        raise ConfigError(f"the model takes {model.keypoint_format} keypoints; predict reads "
                          f"{KEYPOINT_FORMAT} keypoint files")
    if lift is None:
        from posebridge.inference.lift import lift
    from posebridge.inference import smoothing as smoothing_

    keypoints = inputs.keypoints
    out: dict[str, np.ndarray] = {}
    if smoothing is not None and smoothing.before:
        keypoints = out["keypoints_2d_smoothed"] = smoothing_.smooth_keypoints(keypoints, smoothing)
    predicted = lift(model, keypoints, inputs.width, inputs.height, flip=flip, intrinsics=inputs.intrinsics)
    seen = (keypoints[..., 2] > 0).any(axis=1)  # frames with the person: 3D smoothing stays inside them
    poses = {}
    for fmt in model.formats:
        skeleton = skeletons.get(fmt)
        pose = np.asarray(predicted[fmt], dtype=np.float64)
        pose = pose - pose[:, skeleton.root:skeleton.root + 1]
        if smoothing is not None and smoothing.after:
            pose = smoothing_.smooth_poses(pose, seen, smoothing)
        poses[fmt] = pose
        out[fmt] = pose.astype(np.float32)
        out[f"joint_names_{fmt}"] = np.array(skeleton.joint_names, dtype=str)
    out["intrinsics"] = inputs.intrinsics.astype(np.float64)
    if trajectory:
        root = recover_trajectory(poses, keypoints, inputs.intrinsics)
        if root is not None:
            out["trajectory"] = (smoothing_.smooth_poses(root, seen, smoothing)
                                 if smoothing is not None and smoothing.after else root)
    return out


def write_prediction(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Write the output npz atomically (plain arrays: loadable with allow_pickle=False)."""
    from posebridge.atomic import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


@dataclass
class Prediction:
    """A prediction file (``write_prediction``'s or ``posebridge infer``'s ``_3d.npz``) as read back."""

    poses: dict[str, np.ndarray]  # format -> (T, J, 3) float64 mm, root-relative camera space, NaN = no pose
    trajectory: np.ndarray | None  # (T, 3) float64 mm camera-space root, or None
    fps: float | None  # frames per second when the file records it (infer's files do)


def read_prediction(path: str | os.PathLike) -> Prediction:
    """Read a prediction ``.npz``: every key named after a skeleton format whose array is
    (T, J_format, 3), the optional ``trajectory`` and ``fps``; bad input raises ``DataError``."""
    from posebridge.geometry import skeletons

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as loaded:
            data = {k: loaded[k] for k in loaded.files}
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (OSError, ValueError, AttributeError, zipfile.BadZipFile, EOFError) as err:
        raise DataError(path, f"not a readable prediction .npz file ({err})") from None
    poses = {}
    for name in skeletons.names():
        if name not in data:
            continue
        pose = np.asarray(data[name])
        J = skeletons.get(name).num_joints
        if pose.ndim != 3 or pose.shape[1:] != (J, 3) or not np.issubdtype(pose.dtype, np.floating):
            raise DataError(path, f"'{name}' must be a float (T, {J}, 3) array, got {pose.dtype} {pose.shape}")
        poses[name] = pose.astype(np.float64)
    if not poses:
        raise DataError(path, f"no skeleton format's poses in it (keys: {', '.join(sorted(data)) or 'none'}; "
                              f"formats: {', '.join(skeletons.names())})")
    lengths = {len(p) for p in poses.values()}
    if len(lengths) != 1:
        raise DataError(path, f"the formats' poses have different frame counts {sorted(lengths)}")
    T = lengths.pop()
    trajectory = None
    if "trajectory" in data:
        trajectory = np.asarray(data["trajectory"])
        if trajectory.shape != (T, 3) or not np.issubdtype(trajectory.dtype, np.floating):
            raise DataError(path, f"'trajectory' must be a float ({T}, 3) array, got {trajectory.dtype} {trajectory.shape}")
        trajectory = trajectory.astype(np.float64)
    fps = _scalar(path, data, "fps")
    return Prediction(poses, trajectory, fps)
