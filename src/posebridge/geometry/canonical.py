"""The canonical pose frame of MCSS: root-centred, heading removed, vertical kept.

A pose seen by any camera, or a subject facing any direction, maps to the same canonical pose
(Mitra et al., CVPR 2020, "Multiview-Consistent Semi-Supervised Learning for 3D Human Pose
Estimation"):

- the origin is the pelvis (the skeleton's ``pelvis`` joint, which is the root of every format
  that has one; for formats without a pelvis, ``coco_17`` and ``mediapipe_33``, the midpoint of
  ``lhip`` and ``rhip``);
- the z axis is the vertical ("up"); the rotation that gets there is a rotation about the vertical,
  so the pose's tilt (lean, bend, a camera's pitch and roll relative to gravity) is kept;
- the x axis is the horizontal component of the pelvis -> left hip bone, so that bone lies in the
  XZ plane with positive x; y = z x x completes a right-handed frame.

The result is therefore invariant to translation and to any rotation about the vertical axis
(camera yaw, subject heading), preserves every distance (bone lengths), and is *not* invariant to
tilt. Which way is up must be known: ``up_axis`` names it for the input's frame. posebridge's world
frame is Z-up (the default). A calibrated camera frame (OpenCV, y down) has up = ``R @ (0, 0, 1)``
for its world -> camera rotation ``R``; pass that vector (per camera, broadcast over the poses).
``"-y"`` is the camera frame's up only for a camera whose image rows are level with the horizon.

A pose whose left hip lies exactly along the vertical from the pelvis has no heading; its
canonical pose (and rotation) is NaN. A NaN pelvis or hip likewise makes the whole pose NaN;
NaN in other joints stays in those joints.
"""

from __future__ import annotations

import numpy as np

from posebridge.geometry import skeletons
from posebridge.errors import ConfigError

__all__ = ["canonicalize", "canonical_rotation", "pelvis_position", "up_vector"]

_AXES = {"x": 0, "y": 1, "z": 2}


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def _xp(x):
    if _is_torch(x):
        import torch

        return torch
    return np


def up_vector(up_axis, like=None):
    """The unit up vector for ``up_axis``: ``"x"``, ``"y"``, ``"z"`` with an optional ``"-"``, or a
    vector (3,) / (..., 3) (normalised here). Returned as numpy float64, or as a tensor with
    ``like``'s dtype and device when ``like`` is a torch tensor."""
    if isinstance(up_axis, str):
        name = up_axis.strip().lower()
        sign = -1.0 if name.startswith("-") else 1.0
        axis = _AXES.get(name.lstrip("+-"))
        if axis is None:
            raise ConfigError(
                f"up_axis must be x, y, z (optionally signed) or a vector, got {up_axis!r}"
            )
        up = np.zeros(3)
        up[axis] = sign
    else:
        up = up_axis
    if like is not None and _is_torch(like):
        import torch

        up = torch.as_tensor(up, dtype=like.dtype, device=like.device)
        norm = torch.linalg.vector_norm(up, dim=-1, keepdim=True)
    else:
        up = np.asarray(up, dtype=np.float64)
        norm = np.linalg.norm(up, axis=-1, keepdims=True)
    if up.shape[-1] != 3:
        raise ConfigError(f"an up vector needs 3 components, got shape {tuple(up.shape)}")
    if not bool((norm > 0).all()):
        raise ConfigError("the up vector must not be zero")
    return up / norm


def _float(poses):
    if _is_torch(poses):
        return poses if poses.is_floating_point() else poses.double()
    poses = np.asarray(poses)
    return poses if np.issubdtype(poses.dtype, np.floating) else poses.astype(np.float64)


def _check(poses, skeleton):
    if poses.ndim < 2 or poses.shape[-1] != 3 or poses.shape[-2] != skeleton.num_joints:
        raise ValueError(
            f"skeleton {skeleton.name!r} poses must be (..., {skeleton.num_joints}, 3), "
            f"got shape {tuple(poses.shape)}"
        )


def pelvis_position(poses, skeleton):
    """The canonical origin of each pose, (..., 3): the ``pelvis`` joint, or the hip midpoint for
    formats without one. ``poses`` is (..., J, 3), numpy or torch."""
    skeleton = skeletons.get(skeleton)
    poses = _float(poses)
    _check(poses, skeleton)
    if "pelvis" in skeleton.joint_names:
        return poses[..., skeleton.index("pelvis"), :]
    return 0.5 * (poses[..., skeleton.index("lhip"), :] + poses[..., skeleton.index("rhip"), :])


def canonical_rotation(poses, skeleton, up_axis="z"):
    """Rotation (..., 3, 3) taking each pose's (root-relative) coordinates to the canonical frame.

    Rows are the canonical axes expressed in the input frame: x = the horizontal direction of the
    pelvis -> left hip bone, z = up, y = z x x. For ``up_axis="z"`` it is a rotation about z only.
    ``canonical = (poses - pelvis) @ R^T``, i.e. ``R @ v`` per joint. Same array type and float
    dtype as ``poses``; NaN where the heading is undefined (see module docstring).
    """
    skeleton = skeletons.get(skeleton)
    poses = _float(poses)
    _check(poses, skeleton)
    xp = _xp(poses)
    up = _align_leading(up_vector(up_axis, like=poses), poses.ndim - 2)
    if not _is_torch(poses):
        up = up.astype(poses.dtype)
    bone = poses[..., skeleton.index("lhip"), :] - pelvis_position(poses, skeleton)
    horizontal = bone - (bone * up).sum(-1)[..., None] * up
    length = ((horizontal * horizontal).sum(-1)[..., None]) ** 0.5
    # no heading when the hip is straight above/below the pelvis: NaN rather than an arbitrary yaw
    safe = xp.where(length > 0, length, xp.ones_like(length))
    x_axis = xp.where(length > 0, horizontal / safe, xp.full_like(horizontal, float("nan")))
    z_axis = up + 0 * x_axis  # broadcast the up vector to every pose
    y_axis = _cross(z_axis, x_axis, xp)
    return xp.stack([x_axis, y_axis, z_axis], -2)


def canonicalize(poses, skeleton, up_axis="z"):
    """MCSS canonical pose: root-centred, heading removed about the vertical axis.

    Args:
        poses: (..., J, 3) joint positions (mm in posebridge), numpy or torch, in a frame whose up
            direction is ``up_axis``.
        skeleton: a :class:`posebridge.geometry.skeletons.Skeleton` or its registry name; needs ``lhip``
            and a ``pelvis`` (or ``rhip``, whose midpoint with ``lhip`` is then the pelvis).
        up_axis: ``"z"`` (posebridge world, default), another signed axis name (``"-y"``), or an
            up vector (3,) / (K..., 3) aligned with the poses' *leading* dimensions (for camera
            frames: ``R @ (0, 0, 1)`` per camera, (C, 3) for poses (C, T, J, 3)).

    Returns:
        (..., J, 3) poses of the same type in the canonical frame: pelvis at the origin, z up, the
        pelvis -> left hip bone in the XZ plane with positive x. Differentiable for torch inputs.
    """
    skeleton = skeletons.get(skeleton)
    poses = _float(poses)
    rotation = canonical_rotation(poses, skeleton, up_axis)
    centred = poses - pelvis_position(poses, skeleton)[..., None, :]
    return centred @ rotation.swapaxes(-1, -2)


def _align_leading(up, lead: int):
    """Give a per-pose up vector (K..., 3) trailing singleton axes so it lines up with the
    *leading* dimensions of the poses' (lead..., 3) shape (a camera's up vector (C, 3) applies to
    all of poses[c] of shape (C, T, J, 3)), like camera parameters in posebridge.geometry.cameras."""
    extra = lead - (up.ndim - 1)
    if up.ndim > 1 and extra > 0:
        up = up.reshape(tuple(up.shape[:-1]) + (1,) * extra + (3,))
    return up


def _cross(a, b, xp):
    """a x b over the last axis for numpy or torch (written out: the two libraries' cross
    functions disagree on broadcasting and argument names)."""
    ax, ay, az = a[..., 0], a[..., 1], a[..., 2]
    bx, by, bz = b[..., 0], b[..., 1], b[..., 2]
    return xp.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], -1)
