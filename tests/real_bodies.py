"""Upright people in a Z-up world for the converter tests: joints placed by name at a standing
adult's heights, walking a circle so that their feet cover the ground, and the angle between a
stored pose's body axis and +z."""

from __future__ import annotations

import numpy as np

from posebridge.geometry import skeletons

# height above the ground (mm) and sideways offset (mm, + = the person's left) by joint name
_HEIGHT = {"headtop": 1750, "head": 1640, "nose": 1620, "leye": 1650, "reye": 1650, "lear": 1630,
           "rear": 1630, "neck": 1500, "thorax": 1450, "lcollar": 1460, "rcollar": 1460,
           "lclavicle": 1460, "rclavicle": 1460, "spine4": 1350, "spine3": 1350, "spine2": 1200,
           "spine": 1100, "spine1": 1100, "pelvis": 950, "lshoulder": 1450, "rshoulder": 1450,
           "lelbow": 1150, "relbow": 1150, "lwrist": 870, "rwrist": 870, "lhand": 800, "rhand": 800,
           "lhip": 930, "rhip": 930, "lknee": 500, "rknee": 500, "lankle": 80, "rankle": 80,
           "lfoot": 30, "rfoot": 30, "ltoe": 20, "rtoe": 20}
_SIDE = {"l": 1.0, "r": -1.0}
_WIDTH = {"shoulder": 190, "elbow": 220, "wrist": 230, "hand": 235, "hip": 100, "knee": 100,
          "ankle": 100, "foot": 100, "toe": 100, "collar": 80, "clavicle": 80, "eye": 35, "ear": 75}


def standing_pose(skeleton: str) -> np.ndarray:
    """(J, 3) mm: an upright person at the origin facing +y, Z up."""
    out = []
    for name in skeletons.get(skeleton).joint_names:
        side = _SIDE.get(name[0], 0.0) if name[1:] in _WIDTH else 0.0
        out.append([-side * _WIDTH.get(name[1:], 0.0), 0.0, _HEIGHT[name]])  # left = -x when facing +y
    return np.asarray(out, dtype=np.float64)


def walking(skeleton: str, frames: int, seed: int = 0, centre=(0.0, 0.0), radius: float = 1000.0) -> np.ndarray:
    """(T, J, 3) mm Z-up world: the standing pose walking a circle about ``centre`` (heading along
    the path), each joint jittered by a few mm."""
    rng = np.random.default_rng(seed)
    pose = standing_pose(skeleton)
    angle = np.linspace(0.0, 2 * np.pi, frames, endpoint=False) + rng.uniform(0, 2 * np.pi)
    out = np.empty((frames, len(pose), 3))
    for t, a in enumerate(angle):
        heading = a + np.pi  # tangent of the circle
        c, s = np.cos(heading), np.sin(heading)
        turn = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        place = np.array([centre[0] + radius * np.cos(a), centre[1] + radius * np.sin(a), 0.0])
        out[t] = pose @ turn.T + place
    return out + rng.normal(scale=5.0, size=out.shape)


def body_up_degrees(joints: np.ndarray, skeleton: str) -> float:
    """Angle (degrees) between +z and the mean body axis (ankles' midpoint -> first of headtop /
    head / nose / neck) of the finite poses in ``joints`` (..., J, 3)."""
    s = skeletons.get(skeleton)
    head = next(s.index(n) for n in ("headtop", "head", "nose", "neck") if n in s.joint_names)
    joints = np.asarray(joints, dtype=np.float64).reshape(-1, s.num_joints, 3)
    axis = joints[:, head] - joints[:, [s.index("lankle"), s.index("rankle")]].mean(axis=1)
    axis = axis[np.isfinite(axis).all(axis=1)]
    axis = np.mean(axis / np.linalg.norm(axis, axis=1, keepdims=True), axis=0)
    return float(np.degrees(np.arccos(axis[2] / np.linalg.norm(axis))))
