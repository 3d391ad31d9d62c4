"""Predicted 3D joints -> a BVH motion file (Biovision Hierarchy) that Blender, MotionBuilder and
game engines import.

BVH stores a rigid skeleton (a rest pose: each joint's offset from its parent) and, per frame, the
root's position and every joint's rotation relative to its parent; a joint's position is its
parent's position plus the parent's accumulated rotation applied to its rest offset (forward
kinematics). Predicted joints are not rigid (bone lengths vary a little from frame to frame), so
the export fits a rigid motion to them (``fit_motion``):

- Hierarchy: the skeleton format's kinematic tree (``geometry.skeletons``), depth first from its
  root. Every joint of the format is a BVH ``JOINT`` (the root the ``ROOT``), so every predicted
  joint has a named counterpart; a joint without children carries an ``End Site`` that continues
  its parent bone by a quarter of that bone's length (a visible bone for the hands, feet, head).
- Rest pose: each bone has the sequence's median length; its direction is that of the *rest
  frame*, the frame whose bone lengths are closest to the medians (sum of absolute differences).
- Rotations: each joint's world rotation aligns its rest-pose child offsets with the observed
  child offsets. With two or more children that are not collinear it is the least-squares
  rotation (Wahba's problem, solved by SVD as in Kabsch's algorithm; the observed and rest offsets
  weigh by their lengths, and each child by the joints of its subtree, which a misplaced child
  moves along with it: a hip's fit favours the torso over the one knee). With one child (or collinear children) the direction to the child fixes
  only two degrees of freedom; the twist about the bone is defined as none relative to the parent:
  the joint's rotation is the parent's followed by the shortest-arc rotation taking the parent-
  rotated rest bone onto the observed bone. A joint without children keeps its parent's rotation.
- Root trajectory: the root's position per frame (the prediction's ``trajectory`` when given,
  else the root stays at the origin).

Axes and units (what Blender's BVH importer expects with its defaults Forward -Z, Up Y, Scale 1):
Y up, X to the camera's right, Z towards the camera (the person faces +Z when facing the camera):
camera space (x right, y down, z forward) rotated 180 degrees about x, ``(x, -y, -z)``. Positions
in metres by default (Blender's unit; ``unit="cm"`` for tools that expect centimetres).
Channels: the root ``Xposition Yposition Zposition Zrotation Xrotation Yrotation``, every other
joint ``Zrotation Xrotation Yrotation``, in degrees; the rotation matrix is ``Rz @ Rx @ Ry``
(the usual BVH reading: the channels' rotations composed in the order listed). Euler angles are
unwrapped frame to frame (no 360-degree jumps in the curves).

Frames without a pose (NaN, e.g. ``posebridge infer`` frames without the person) take the nearest
frame's pose: BVH has no missing frames.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from posebridge.atomic import write_text
from posebridge.geometry import skeletons
from posebridge.interop.motion_csv import absolute_joints

__all__ = ["UNITS", "RigidMotion", "fit_motion", "camera_to_bvh", "write_bvh", "bvh_text", "euler_zxy",
           "rotation_zxy", "fill_missing_frames"]

UNITS = {"m": 0.001, "cm": 0.1, "mm": 1.0}
"""BVH length unit -> its units per millimetre."""

END_SITE_FRACTION = 0.25  # an end site continues its parent bone by this share of the bone
COLLINEAR = 1e-3  # second / first singular value below this: the children fix no twist
TINY_MM = 1e-6  # offsets shorter than this have no direction


@dataclass
class RigidMotion:
    """A rigid skeleton's motion, the content of a BVH file (lengths in mm, camera axes).

    ``skeleton``: the format; ``offsets`` (J, 3) each joint's rest offset from its parent (the
    root's is zero); ``rotations`` (T, J, 3, 3) each joint's world rotation (rest -> frame);
    ``root`` (T, 3) the root's position; ``rest_frame``: the frame the rest directions come from;
    ``observed`` (T, J, 3) the joints it was fitted to (missing frames filled).
    """

    skeleton: skeletons.Skeleton
    offsets: np.ndarray
    rotations: np.ndarray
    root: np.ndarray
    rest_frame: int
    observed: np.ndarray

    def observed_offsets(self) -> np.ndarray:
        """(T, J, 3) each observed joint's offset from its parent in the parent's rotated frame:
        the per-frame offsets that make forward kinematics reproduce ``observed`` exactly."""
        out = np.zeros_like(self.observed)
        for j, p in enumerate(self.skeleton.parents):
            if p >= 0:
                delta = self.observed[:, j] - self.observed[:, p]
                out[:, j] = np.einsum("tji,tj->ti", self.rotations[:, p], delta)
        return out

    def local_rotations(self) -> np.ndarray:
        """(T, J, 3, 3) each joint's rotation relative to its parent's (the root's: world)."""
        local = self.rotations.copy()
        for j, p in enumerate(self.skeleton.parents):
            if p >= 0:
                local[:, j] = np.swapaxes(self.rotations[:, p], -1, -2) @ self.rotations[:, j]
        return local

    def joints(self) -> np.ndarray:
        """(T, J, 3) mm: forward kinematics, the joints the BVH file describes."""
        out = np.empty(self.rotations.shape[:2] + (3,))
        for j in depth_first(self.skeleton):
            p = self.skeleton.parents[j]
            out[:, j] = self.root if p < 0 else out[:, p] + self.rotations[:, p] @ self.offsets[j]
        return out


def depth_first(skeleton: skeletons.Skeleton) -> list[int]:
    """Joint indices from the root, each joint's subtree before its next sibling (BVH order)."""
    children = _children(skeleton)
    order, stack = [], [skeleton.root]
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(children[j]))
    return order


def _children(skeleton: skeletons.Skeleton) -> list[list[int]]:
    children = [[] for _ in skeleton.joint_names]
    for j, p in enumerate(skeleton.parents):
        if p >= 0:
            children[p].append(j)
    return children


def _subtree_sizes(skeleton: skeletons.Skeleton) -> np.ndarray:
    """(J,) joints in each joint's subtree, itself included."""
    sizes = np.ones(skeleton.num_joints)
    for j in reversed(depth_first(skeleton)):
        if skeleton.parents[j] >= 0:
            sizes[skeleton.parents[j]] += sizes[j]
    return sizes


def fill_missing_frames(joints: np.ndarray) -> np.ndarray:
    """(T, J, 3) with NaN frames -> every frame set, a missing frame taking the nearest set one's
    pose (the earlier one on ties). Raises ValueError when no frame is set."""
    valid = np.isfinite(joints).all(axis=(1, 2))
    if not valid.any():
        raise ValueError("no frame has a complete pose")
    index = np.flatnonzero(valid)
    t = np.arange(len(joints))
    right = np.clip(np.searchsorted(index, t), 0, len(index) - 1)
    left = np.clip(right - 1, 0, len(index) - 1)
    nearest = np.where(np.abs(index[left] - t) <= np.abs(index[right] - t), index[left], index[right])
    return joints[nearest]


def _rest_offsets(joints: np.ndarray, skeleton: skeletons.Skeleton) -> tuple[np.ndarray, int]:
    """(J, 3) rest offsets (median lengths, the rest frame's directions) and the rest frame."""
    parents = np.array(skeleton.parents)
    child = np.flatnonzero(parents >= 0)
    bones = joints[:, child] - joints[:, parents[child]]  # (T, B, 3)
    lengths = np.linalg.norm(bones, axis=-1)
    median = np.median(lengths, axis=0)
    rest = int(np.argmin(np.abs(lengths - median).sum(axis=1)))
    direction = bones[rest] / np.maximum(lengths[rest], TINY_MM)[:, None]
    # a bone of no length in the rest frame: its mean direction over the sequence
    mean = bones.mean(axis=0)
    short = lengths[rest] < TINY_MM
    direction[short] = mean[short] / np.maximum(np.linalg.norm(mean[short], axis=-1), TINY_MM)[:, None]
    offsets = np.zeros((skeleton.num_joints, 3))
    offsets[child] = direction * median[:, None]
    return offsets, rest


def _shortest_arc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations taking the directions of ``a`` onto those of ``b`` (T, 3) by the
    smallest angle (identity where either has no length; half a turn about an axis perpendicular
    to ``a`` where they are opposite)."""
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    ok = (na > TINY_MM) & (nb > TINY_MM)
    u = np.where(ok[:, None], a / np.maximum(na, TINY_MM)[:, None], [1.0, 0.0, 0.0])
    v = np.where(ok[:, None], b / np.maximum(nb, TINY_MM)[:, None], [1.0, 0.0, 0.0])
    axis = np.cross(u, v)
    s, c = np.linalg.norm(axis, axis=-1), np.einsum("ti,ti->t", u, v)
    # opposite directions: any axis perpendicular to u
    helper = np.where(np.abs(u[:, :1]) < 0.9, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
    perpendicular = np.cross(u, helper)
    axis = np.where((s < 1e-12)[:, None] & (c < 0)[:, None], perpendicular, axis)
    axis = axis / np.maximum(np.linalg.norm(axis, axis=-1), 1e-300)[:, None]
    angle = np.arctan2(s, c)
    return _axis_angle(axis, angle)


def _axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues' formula: (T, 3) unit axes and (T,) angles -> (T, 3, 3)."""
    K = np.zeros(axis.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2], K[..., 1, 2] = -axis[..., 2], axis[..., 1], -axis[..., 0]
    K = K - np.swapaxes(K, -1, -2)
    s, c = np.sin(angle)[..., None, None], np.cos(angle)[..., None, None]
    return np.eye(3) + s * K + (1 - c) * (K @ K)


def _wahba(rest: np.ndarray, observed: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least-squares rotations R (T, 3, 3) with R @ rest_c ~ observed_c for children c:
    rest (C, 3), observed (T, C, 3), weights (C,). Also returns whether the children fix R (not
    collinear)."""
    B = np.einsum("c,tci,cj->tij", weights, observed, rest)
    U, S, Vt = np.linalg.svd(B)
    d = np.sign(np.linalg.det(U @ Vt))
    D = np.ones(S.shape)
    D[:, 2] = np.where(d == 0, 1.0, d)
    R = (U * D[:, None, :]) @ Vt
    determined = S[:, 1] > COLLINEAR * np.maximum(S[:, 0], TINY_MM)
    return R, determined


def fit_motion(joints: np.ndarray, fmt, root_trajectory: np.ndarray | None = None) -> RigidMotion:
    """Fit a rigid BVH motion (module docstring) to ``joints`` (T, J, 3) mm of format ``fmt``.

    ``joints`` may be root-relative (then ``root_trajectory`` (T, 3) mm places the root) or
    absolute (``root_trajectory`` None: the root follows the joints' root). Frames with NaN take
    the nearest complete frame (``fill_missing_frames``). Coordinates are kept as given (the
    axis change to BVH's is ``camera_to_bvh``'s, applied when writing).
    """
    skeleton = skeletons.get(fmt)
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (skeleton.num_joints, 3) or len(joints) == 0:
        raise ValueError(f"{skeleton.name} joints must be (T > 0, {skeleton.num_joints}, 3), got {joints.shape}")
    joints = fill_missing_frames(absolute_joints(joints, skeleton, root_trajectory))
    offsets, rest = _rest_offsets(joints, skeleton)
    T, J = joints.shape[:2]
    rotations = np.empty((T, J, 3, 3))
    children = _children(skeleton)
    sizes = _subtree_sizes(skeleton)
    for j in depth_first(skeleton):
        p = skeleton.parents[j]
        parent = np.broadcast_to(np.eye(3), (T, 3, 3)) if p < 0 else rotations[:, p]
        kids = children[j]
        if not kids:
            rotations[:, j] = parent
            continue
        observed = joints[:, kids] - joints[:, j:j + 1]  # (T, C, 3)
        # single child or collinear children: the twist is none relative to the parent
        main = kids[int(np.argmax(np.linalg.norm(offsets[kids], axis=-1)))]
        swing = _shortest_arc(parent @ offsets[main], joints[:, main] - joints[:, j])
        rotations[:, j] = swing @ parent
        if len(kids) > 1:
            R, determined = _wahba(offsets[kids], observed, sizes[kids])
            rotations[determined, j] = R[determined]
    return RigidMotion(skeleton, offsets, rotations, joints[:, skeleton.root].copy(), rest, joints)


def camera_to_bvh(points: np.ndarray, unit: str = "m") -> np.ndarray:
    """(..., 3) camera-space mm (x right, y down, z forward) -> BVH axes (Y up, Z towards the
    camera) in ``unit``."""
    scale = UNITS[unit]
    return np.asarray(points, dtype=np.float64) * np.array([scale, -scale, -scale])


def euler_zxy(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations -> (..., 3) degrees (z, x, y) with R = Rz @ Rx @ Ry (x in [-90, 90])."""
    sx = np.clip(R[..., 2, 1], -1.0, 1.0)
    x = np.arcsin(sx)
    gimbal = np.abs(sx) > 1 - 1e-12
    z = np.where(gimbal, np.arctan2(R[..., 1, 0], R[..., 0, 0]), np.arctan2(-R[..., 0, 1], R[..., 1, 1]))
    y = np.where(gimbal, 0.0, np.arctan2(-R[..., 2, 0], R[..., 2, 2]))
    return np.degrees(np.stack([z, x, y], axis=-1))


def rotation_zxy(angles: np.ndarray) -> np.ndarray:
    """(..., 3) degrees (z, x, y) -> (..., 3, 3) = Rz @ Rx @ Ry (the inverse of ``euler_zxy``)."""
    z, x, y = np.moveaxis(np.radians(angles), -1, 0)
    axes = np.eye(3)
    return (_axis_angle(np.broadcast_to(axes[2], z.shape + (3,)), z)
            @ _axis_angle(np.broadcast_to(axes[0], x.shape + (3,)), x)
            @ _axis_angle(np.broadcast_to(axes[1], y.shape + (3,)), y))


def _unwrap_euler(angles: np.ndarray) -> np.ndarray:
    """(T, J, 3) zxy degrees -> the same rotations, each frame's angles the equivalent triple
    closest to the previous frame's: (z, x, y) or (z + 180, 180 - x, y + 180), shifted by whole
    turns."""
    out = angles.copy()
    for t in range(1, len(angles)):
        z, x, y = np.moveaxis(angles[t], -1, 0)
        candidates = np.stack([angles[t], np.stack([z + 180, 180 - x, y + 180], axis=-1)])  # (2, J, 3)
        candidates = candidates - 360 * np.round((candidates - out[t - 1]) / 360)
        distance = np.abs(candidates - out[t - 1]).sum(axis=-1)  # (2, J)
        out[t] = np.take_along_axis(candidates, np.argmin(distance, axis=0)[None, :, None], axis=0)[0]
    return out


def bvh_text(motion: RigidMotion, fps: float, unit: str = "m", joint_positions: bool = False) -> str:
    """The BVH file of ``motion`` (module docstring: axes, units, channels) at ``fps``.

    ``joint_positions``: every joint also gets position channels (``Xposition Yposition
    Zposition`` before its rotation, the per-frame offset from its parent, which replaces the
    rest ``OFFSET`` as in Blender's and bvhio's reading): the file then reproduces the observed
    joints exactly, bone lengths varying as they do; rotations stay the fitted ones."""
    if unit not in UNITS:
        raise ValueError(f"BVH unit must be one of {', '.join(UNITS)}, got {unit!r}")
    if not fps > 0:
        raise ValueError(f"frames per second must be positive, got {fps}")
    skeleton, children = motion.skeleton, _children(motion.skeleton)
    # the axis change (a rotation, flip of y and z) conjugates every rotation
    flip = np.diag([1.0, -1.0, -1.0])
    local = flip @ motion.local_rotations() @ flip
    offsets = camera_to_bvh(motion.offsets, unit)
    lines = ["HIERARCHY"]

    def joint(j: int, depth: int) -> None:
        pad = "  " * depth
        is_root = skeleton.parents[j] < 0
        lines.append(f"{pad}{'ROOT' if is_root else 'JOINT'} {skeleton.joint_names[j]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {_numbers(offsets[j])}")
        lines.append(f"{pad}  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation"
                     if is_root or joint_positions else f"{pad}  CHANNELS 3 Zrotation Xrotation Yrotation")
        for c in children[j]:
            joint(c, depth + 1)
        if not children[j]:
            end = offsets[j] * END_SITE_FRACTION
            lines.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET {_numbers(end)}", f"{pad}  }}"])
        lines.append(f"{pad}}}")

    joint(skeleton.root, 0)
    order = depth_first(skeleton)
    angles = _unwrap_euler(euler_zxy(local[:, order]))  # (T, J, 3) in file order
    positions = camera_to_bvh(motion.observed_offsets()[:, order], unit)
    positions[:, 0] = camera_to_bvh(motion.root, unit)
    # each joint's channels in file order: position (the root's; every joint's with joint_positions), rotation
    values = np.concatenate([np.concatenate([positions[:, k], angles[:, k]], axis=1) if k == 0 or joint_positions
                             else angles[:, k] for k in range(len(order))], axis=1)
    lines += ["MOTION", f"Frames: {len(values)}", f"Frame Time: {1.0 / fps:.8f}"]
    lines += [_numbers(row) for row in values]
    return "\n".join(lines) + "\n"


def _numbers(values) -> str:
    rounded = np.round(np.asarray(values, dtype=np.float64).ravel(), 6) + 0.0  # + 0.0: no "-0.000000"
    return " ".join(f"{v:.6f}" for v in rounded)


def write_bvh(path: str | os.PathLike, joints: np.ndarray, fmt, *, fps: float,
              root_trajectory: np.ndarray | None = None, unit: str = "m", joint_positions: bool = False) -> RigidMotion:
    """Fit (``fit_motion``) and write ``joints`` (T, J, 3) camera-space mm of format ``fmt`` as a
    BVH file at ``path`` (atomically); returns the fitted motion (the file describes its
    ``joints()``, or its ``observed`` joints with ``joint_positions``: see ``bvh_text``), camera mm."""
    motion = fit_motion(joints, fmt, root_trajectory)
    write_text(path, bvh_text(motion, fps, unit, joint_positions))
    return motion
