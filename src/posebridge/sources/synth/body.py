"""The synthetic body: a kinematic tree of rigid segments, per-subject anthropometry, anatomical
landmarks, and the joints of every skeleton format defined from those landmarks.

Frames and units: millimetres; body frame x forward, y left, z up (the world frame is Z up too).
In the rest pose every segment frame is aligned with the body frame: standing upright, arms
hanging straight down with the palms facing the thighs, feet pointing forward, soles on z = 0.

The nominal geometry below is written as rest positions in fractions of stature (floor = 0, vertex
= 1), from the usual anthropometric proportions (Drillis & Contini; Winter, "Biomechanics and
Motor Control of Human Movement"). A subject scales each segment separately (trunk, leg, arm,
head, shoulder and hip breadth, girth) and is then scaled uniformly to its sampled stature.

Skeleton formats are *defined* from the landmarks, the way each real dataset defines its joints:
H36M's motion-capture hips sit wider and lower than the anatomical hip joint centres, SMPL's
pelvis sits above the hip line, 3DHP's neck is higher than H36M's thorax, COCO keypoints are the
surface points an annotator clicks (eyes, ears, the top of the shoulder, the side of the hip), ...
Same-named joints of two formats therefore differ by about 1-6 cm. Formats whose real data come
from a fitted kinematic skeleton (H36M, 3DHP, SMPL, HumanEva) are made rigid: each joint is placed
at its bone's constant rest length from its parent, pointing at its landmark target, so their
bone lengths are exactly constant over time. COCO-style keypoint formats follow the landmarks
directly (triangulated or clicked points have no rigid bones).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posebridge.geometry import skeletons

# --------------------------------------------------------------------------------------------
# Kinematic tree. Segment i rotates about its proximal joint, JOINTS[i]; the pelvis is the root.
# (segment, parent segment, proximal joint, scale keys for the segment's x, y, z extents)
_SEGMENT_TABLE = [
    ("pelvis", None, "pelvis", ("girth", "hip_width", "trunk")),
    ("lumbar", "pelvis", "lumbar", ("girth", "chest", "trunk")),
    ("thorax_low", "lumbar", "thorax_low", ("girth", "chest", "trunk")),
    ("thorax_up", "thorax_low", "thorax_up", ("girth", "chest", "trunk")),
    ("neck", "thorax_up", "neck", ("girth", "girth", "trunk")),
    ("head", "neck", "head", ("head", "head", "head")),
    ("lclavicle", "thorax_up", "lclavicle", ("girth", "shoulder_width", "trunk")),
    ("lupperarm", "lclavicle", "lshoulder", ("girth", "girth", "arm")),
    ("lforearm", "lupperarm", "lelbow", ("girth", "girth", "arm")),
    ("lhand", "lforearm", "lwrist", ("hand", "hand", "hand")),
    ("rclavicle", "thorax_up", "rclavicle", ("girth", "shoulder_width", "trunk")),
    ("rupperarm", "rclavicle", "rshoulder", ("girth", "girth", "arm")),
    ("rforearm", "rupperarm", "relbow", ("girth", "girth", "arm")),
    ("rhand", "rforearm", "rwrist", ("hand", "hand", "hand")),
    ("lthigh", "pelvis", "lhip", ("girth", "girth", "leg")),
    ("lshank", "lthigh", "lknee", ("girth", "girth", "leg")),
    ("lfoot", "lshank", "lankle", ("foot", "foot", "foot")),
    ("ltoes", "lfoot", "ltoe", ("foot", "foot", "foot")),
    ("rthigh", "pelvis", "rhip", ("girth", "girth", "leg")),
    ("rshank", "rthigh", "rknee", ("girth", "girth", "leg")),
    ("rfoot", "rshank", "rankle", ("foot", "foot", "foot")),
    ("rtoes", "rfoot", "rtoe", ("foot", "foot", "foot")),
]
SEGMENTS: tuple[str, ...] = tuple(s[0] for s in _SEGMENT_TABLE)
"""Segment names in topological order (parents first)."""
JOINTS: tuple[str, ...] = tuple(s[2] for s in _SEGMENT_TABLE)
"""The joint at the proximal end of each segment; ``angles[..., i, :]`` drive JOINTS[i]."""
PARENTS: tuple[int, ...] = tuple(-1 if s[1] is None else SEGMENTS.index(s[1]) for s in _SEGMENT_TABLE)
SEGMENT_INDEX = {name: i for i, name in enumerate(SEGMENTS)}
JOINT_INDEX = {name: i for i, name in enumerate(JOINTS)}

# --------------------------------------------------------------------------------------------
# Landmarks: name -> (segment, nominal rest position (x, y, z) in fractions of stature).
# Left and centre points only; every "l..." point gets its "r..." mirror (y negated).
# The joint centre that starts a segment is listed on its parent (it moves rigidly with both).
_LANDMARK_TABLE = {
    # pelvis: origin = midpoint of the hip joint centres (hjc)
    "pelvis": ("pelvis", (0.0, 0.0, 0.520)),
    "lhjc": ("pelvis", (0.0, 0.050, 0.520)),
    "lasis": ("pelvis", (0.052, 0.063, 0.567)),
    "lpsis": ("pelvis", (-0.058, 0.024, 0.575)),
    "liliac": ("pelvis", (-0.010, 0.086, 0.602)),
    "sacrum": ("pelvis", (-0.062, 0.0, 0.548)),
    "pubis": ("pelvis", (0.040, 0.0, 0.497)),
    "l5s1": ("pelvis", (-0.030, 0.0, 0.575)),
    "lcoco_hip": ("pelvis", (0.0, 0.068, 0.538)),  # where annotators click "hip": side, above hjc
    "lpano_hip": ("pelvis", (0.0, 0.064, 0.530)),  # the same, triangulated from many views: deeper
    # lumbar spine
    "l3": ("lumbar", (-0.028, 0.0, 0.622)),
    "navel": ("lumbar", (0.058, 0.0, 0.600)),
    "t12": ("lumbar", (-0.028, 0.0, 0.670)),
    # thorax
    "xiphoid": ("thorax_low", (0.068, 0.0, 0.712)),
    "t6": ("thorax_low", (-0.040, 0.0, 0.750)),
    "sternum": ("thorax_up", (0.072, 0.0, 0.765)),
    "jugular": ("thorax_up", (0.045, 0.0, 0.816)),
    "c7": ("thorax_up", (-0.032, 0.0, 0.832)),
    "c7_spinous": ("thorax_up", (-0.078, 0.0, 0.842)),
    "lsc": ("thorax_up", (0.038, 0.012, 0.812)),  # sternoclavicular joint
    # neck and head
    "neck_mid": ("neck", (-0.008, 0.0, 0.868)),
    "throat": ("neck", (0.030, 0.0, 0.860)),
    "c1": ("neck", (-0.015, 0.0, 0.905)),  # atlanto-occipital joint
    "head_centre": ("head", (-0.004, 0.0, 0.948)),
    "vertex": ("head", (-0.005, 0.0, 1.000)),
    "lear": ("head", (-0.008, 0.043, 0.925)),  # tragion
    "leye": ("head", (0.045, 0.018, 0.936)),
    "leye_inner": ("head", (0.044, 0.010, 0.936)),
    "leye_outer": ("head", (0.040, 0.027, 0.937)),
    "nose": ("head", (0.062, 0.0, 0.905)),  # tip
    "lmouth": ("head", (0.048, 0.012, 0.887)),
    "chin": ("head", (0.045, 0.0, 0.870)),
    "forehead": ("head", (0.052, 0.0, 0.965)),
    "occiput": ("head", (-0.058, 0.0, 0.950)),
    # shoulder girdle and arm (rest: hanging, palm facing the thigh, thumb forward)
    "lacromion": ("lclavicle", (-0.010, 0.115, 0.823)),
    "lgh": ("lclavicle", (-0.012, 0.100, 0.803)),  # glenohumeral joint centre
    "lcoco_shoulder": ("lclavicle", (-0.018, 0.106, 0.821)),  # top-lateral of the shoulder
    "lpano_shoulder": ("lclavicle", (-0.017, 0.102, 0.812)),  # the same, triangulated: deeper
    "ldeltoid": ("lupperarm", (-0.010, 0.123, 0.790)),
    "lelbow": ("lupperarm", (-0.014, 0.100, 0.633)),
    "llat_epicondyle": ("lupperarm", (-0.014, 0.122, 0.633)),
    "lmed_epicondyle": ("lupperarm", (-0.014, 0.074, 0.635)),
    "lwrist": ("lforearm", (-0.010, 0.100, 0.490)),
    "lradial_styloid": ("lforearm", (0.007, 0.100, 0.492)),
    "lulnar_styloid": ("lforearm", (-0.026, 0.100, 0.494)),
    "lhand_centre": ("lhand", (-0.008, 0.100, 0.458)),
    "lmcp": ("lhand", (-0.008, 0.100, 0.435)),  # third knuckle
    "lindex_mcp": ("lhand", (0.012, 0.099, 0.438)),
    "lpinky_mcp": ("lhand", (-0.026, 0.101, 0.443)),
    "lfingertip": ("lhand", (-0.006, 0.100, 0.383)),
    "lthumb_cmc": ("lhand", (0.010, 0.097, 0.478)),
    "lthumb_tip": ("lhand", (0.030, 0.094, 0.423)),
    # leg and foot
    "lgtroch": ("lthigh", (-0.005, 0.093, 0.515)),
    "lknee": ("lthigh", (0.010, 0.048, 0.285)),
    "llat_femoral": ("lthigh", (0.008, 0.075, 0.287)),
    "lmed_femoral": ("lthigh", (0.008, 0.021, 0.287)),
    "lpatella": ("lthigh", (0.045, 0.048, 0.292)),
    "lankle": ("lshank", (0.0, 0.047, 0.045)),
    "llat_malleolus": ("lshank", (-0.005, 0.066, 0.043)),
    "lmed_malleolus": ("lshank", (0.005, 0.028, 0.049)),
    "lheel": ("lfoot", (-0.030, 0.047, 0.0)),  # sole under the heel
    "lheel_back": ("lfoot", (-0.040, 0.047, 0.020)),
    "lball": ("lfoot", (0.074, 0.049, 0.0)),  # sole under the metatarsal heads
    "lmtp": ("lfoot", (0.074, 0.049, 0.010)),  # metatarsophalangeal joint (toes' origin)
    "lmtp1": ("lfoot", (0.080, 0.028, 0.010)),
    "lmtp5": ("lfoot", (0.062, 0.073, 0.009)),
    "ltoe_tip": ("ltoes", (0.117, 0.042, 0.006)),
    "ltoe_sole": ("ltoes", (0.105, 0.044, 0.0)),
}

# segment -> the landmark that is its proximal joint centre
_ORIGIN_LANDMARK = {
    "pelvis": "pelvis", "lumbar": "l5s1", "thorax_low": "t12", "thorax_up": "t6", "neck": "c7",
    "head": "c1", "lclavicle": "lsc", "lupperarm": "lgh", "lforearm": "lelbow", "lhand": "lwrist",
    "lthigh": "lhjc", "lshank": "lknee", "lfoot": "lankle", "ltoes": "lmtp",
}

CONTACT_POINTS = ("lheel", "lball", "ltoe_sole", "rheel", "rball", "rtoe_sole")
"""Sole points that can touch the floor."""


_CENTRE_NAMES = {"lumbar", "l5s1", "l3"}  # centre names that happen to start with "l"


def _mirror_name(name: str) -> str:
    """``l<x>`` <-> ``r<x>`` for sided names; centre names are their own mirror."""
    if name in _CENTRE_NAMES or len(name) < 2 or name[0] not in "lr":
        return name
    return ("r" if name[0] == "l" else "l") + name[1:]


for _n in list(_ORIGIN_LANDMARK):
    if _mirror_name(_n) != _n:
        _ORIGIN_LANDMARK[_mirror_name(_n)] = _mirror_name(_ORIGIN_LANDMARK[_n])


def _with_mirrors(table: dict) -> dict:
    out = {}
    for name, (segment, pos) in table.items():
        out[name] = (segment, pos)
        mirrored = _mirror_name(name)
        if mirrored != name:
            out[mirrored] = (_mirror_name(segment), (pos[0], -pos[1], pos[2]))
    return out


_LANDMARKS = _with_mirrors(_LANDMARK_TABLE)
LANDMARKS: tuple[str, ...] = tuple(_LANDMARKS)
LANDMARK_INDEX = {name: i for i, name in enumerate(LANDMARKS)}

# --------------------------------------------------------------------------------------------
# Joint angles. Each joint has three anatomical angles (degrees in tables, radians in arrays);
# its local rotation is R_axis0(s0 a0) @ R_axis1(s1 a1) @ R_axis2(s2 a2). Signs are for the left
# side; mirroring about the sagittal plane flips the sign of rotations about x and z.
# kind -> (angle names, axes, left signs, limits in degrees)
_JOINT_KINDS = {
    "spine": (("flexion", "bend_left", "turn_left"), "yxz", (1, -1, 1), None),
    "hip": (("flexion", "abduction", "internal"), "yxz", (-1, 1, -1), ((-25, 130), (-30, 50), (-40, 45))),
    "knee": (("flexion", "-", "-"), "yxz", (1, 1, -1), ((0, 150), (0, 0), (0, 0))),
    "ankle": (("dorsiflexion", "inversion", "adduction"), "yxz", (-1, -1, -1),
              ((-50, 30), (-20, 30), (-20, 25))),
    "toe": (("extension", "-", "-"), "yxz", (-1, 1, 1), ((-30, 70), (0, 0), (0, 0))),
    "clavicle": (("elevation", "protraction", "-"), "xzy", (1, -1, 1), ((-10, 35), (-20, 30), (0, 0))),
    "shoulder": (("flexion", "abduction", "internal"), "yxz", (-1, 1, -1), ((-60, 180), (-40, 180), (-80, 90))),
    "elbow": (("flexion", "-", "pronation"), "yxz", (-1, 1, -1), ((0, 150), (0, 0), (-80, 90))),
    "wrist": (("flexion", "radial_deviation", "-"), "xyz", (-1, -1, 1), ((-70, 80), (-25, 35), (0, 0))),
}
_SPINE_LIMITS = {
    "pelvis": ((-40, 80), (-20, 20), (-45, 45)),  # relative to the heading frame
    "lumbar": ((-25, 50), (-25, 25), (-12, 12)),
    "thorax_low": ((-15, 30), (-15, 15), (-20, 20)),
    "thorax_up": ((-10, 25), (-12, 12), (-20, 20)),
    "neck": ((-40, 45), (-25, 25), (-45, 45)),
    "head": ((-25, 25), (-15, 15), (-35, 35)),
}


def _joint_kind(joint: str) -> str:
    if joint in _SPINE_LIMITS:
        return "spine"
    return joint[1:]


def _axis_tables():
    axes = np.zeros((len(JOINTS), 3), dtype=np.int64)
    signs = np.zeros((len(JOINTS), 3))
    limits = np.zeros((len(JOINTS), 3, 2))
    for i, joint in enumerate(JOINTS):
        kind = _joint_kind(joint)
        _, axis_letters, left_signs, kind_limits = _JOINT_KINDS[kind]
        axes[i] = ["xyz".index(a) for a in axis_letters]
        s = np.array(left_signs, dtype=float)
        if joint.startswith("r"):
            s = np.where(axes[i] == 1, s, -s)  # mirror: rotations about x and z change sign
        signs[i] = s
        limits[i] = _SPINE_LIMITS[joint] if kind == "spine" else kind_limits
    return axes, signs, np.deg2rad(limits)


JOINT_AXES, JOINT_SIGNS, JOINT_LIMITS = _axis_tables()
"""(J, 3) axis index per angle, (J, 3) sign per angle, (J, 3, 2) limits in radians."""


def clamp_angles(angles: np.ndarray) -> np.ndarray:
    """Clip anatomical angles (..., J, 3) in radians to the joint limits."""
    return np.clip(angles, JOINT_LIMITS[..., 0], JOINT_LIMITS[..., 1])


def axis_rotation(axis: int, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) about world axis 0/1/2 by ``angle`` (...) radians."""
    c, s = np.cos(angle), np.sin(angle)
    R = np.zeros(np.shape(angle) + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    R[..., axis, axis] = 1.0
    R[..., i, i] = c
    R[..., j, j] = c
    R[..., i, j] = -s
    R[..., j, i] = s
    return R


def joint_rotation(angles: np.ndarray, joint: int) -> np.ndarray:
    """Local rotation (..., 3, 3) of one joint from its anatomical angles (..., 3) radians."""
    R = None
    for k in range(3):
        Rk = axis_rotation(int(JOINT_AXES[joint, k]), angles[..., k] * JOINT_SIGNS[joint, k])
        R = Rk if R is None else R @ Rk
    return R


def level_ankle(angles: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
    """Ankle dorsiflexion and inversion (radians) that make the sole level with the floor, given
    the pelvis, hip and knee angles in ``angles`` (..., J, 3) radians (heading frame).

    The sole is level when the foot's z axis is vertical: with u = world up in the shank frame,
    R_y(a) R_x(b) e_z = u gives b = -asin(u_y), a = atan2(u_x, u_z).
    """
    shank = (joint_rotation(angles[..., 0, :], 0)
             @ joint_rotation(angles[..., JOINTS.index(side + "hip"), :], JOINTS.index(side + "hip"))
             @ joint_rotation(angles[..., JOINTS.index(side + "knee"), :], JOINTS.index(side + "knee")))
    u = shank[..., 2, :]  # rows of R^T e_z = third row of R
    pitch = np.arctan2(u[..., 0], u[..., 2])
    roll = -np.arcsin(np.clip(u[..., 1], -1.0, 1.0))
    j = JOINTS.index(side + "ankle")
    return pitch / JOINT_SIGNS[j, 0], roll / JOINT_SIGNS[j, 1]


def local_rotations(angles: np.ndarray) -> np.ndarray:
    """Anatomical angles (T, J, 3) radians -> local joint rotations (T, J, 3, 3)."""
    signed = angles * JOINT_SIGNS
    out = None
    for k in range(3):
        R = np.empty(angles.shape[:-1] + (3, 3))
        for axis in range(3):  # group joints by the axis of their k-th angle
            cols = JOINT_AXES[:, k] == axis
            if cols.any():
                R[..., cols, :, :] = axis_rotation(axis, signed[..., cols, k])
        out = R if out is None else out @ R
    return out


# --------------------------------------------------------------------------------------------
# Subjects


@dataclass(frozen=True)
class Body:
    """One subject's body: rest geometry in millimetres.

    Attributes:
        subject: identifier.
        sex: "female" or "male".
        height: stature (mm), vertex to sole.
        factors: the segment scale factors drawn for this subject (proportions and build).
        joint_offsets: (S, 3) rest position of each segment's proximal joint relative to its
            parent's (the root's is its rest position above the floor).
        landmark_local: (M, 3) each landmark relative to its segment's proximal joint.
        landmark_rest: (M, 3) landmarks in the rest pose (floor z = 0).
    """

    subject: str
    sex: str
    height: float
    factors: dict
    joint_offsets: np.ndarray
    landmark_local: np.ndarray
    landmark_rest: np.ndarray

    @property
    def rest_joints(self) -> np.ndarray:
        """(S, 3) segment origins in the rest pose."""
        return self.landmark_rest[[LANDMARK_INDEX[_ORIGIN_LANDMARK[s]] for s in SEGMENTS]]


LANDMARK_SEGMENT = np.array([SEGMENT_INDEX[_LANDMARKS[n][0]] for n in LANDMARKS])
_NOMINAL = np.array([_LANDMARKS[n][1] for n in LANDMARKS])
_ORIGIN = np.array([LANDMARK_INDEX[_ORIGIN_LANDMARK[s]] for s in SEGMENTS])
_SCALE_KEYS = [s[3] for s in _SEGMENT_TABLE]


def _truncated_normal(rng, mean, sd, lo, hi):
    for _ in range(100):
        v = rng.normal(mean, sd)
        if lo <= v <= hi:
            return float(v)
    return float(np.clip(mean, lo, hi))


def sample_body(rng: np.random.Generator, subject: str, sex: str | None = None,
                height: float | None = None) -> Body:
    """Draw a subject: sex, stature (about 1.50-1.95 m) and proportions."""
    if sex is None:
        sex = "female" if rng.random() < 0.5 else "male"
    if height is None:
        height = (_truncated_normal(rng, 1630, 70, 1500, 1800) if sex == "female"
                  else _truncated_normal(rng, 1765, 75, 1600, 1950))
    female = sex == "female"

    def factor(sd, female_mean=1.0):
        return (female_mean if female else 1.0) * float(np.exp(rng.normal(0.0, sd)))

    f = {
        "trunk": factor(0.025),
        "leg": factor(0.025),
        "arm": factor(0.025, 0.985),
        "head": factor(0.03) * (1750.0 / height) ** 0.35,  # short people: relatively larger heads
        "shoulder_width": factor(0.04, 0.93),
        "hip_width": factor(0.04, 1.07),
        "girth": factor(0.07, 0.96),
        "foot": factor(0.04, 0.95),
        "hand": factor(0.04, 0.94),
    }
    f["chest"] = float(np.sqrt(f["girth"] * f["shoulder_width"]))
    return build_body(subject, sex, height, f)


def build_body(subject: str, sex: str, height: float, factors: dict) -> Body:
    """Rest geometry from segment scale factors, scaled uniformly to ``height`` (mm)."""
    scales = np.array([[factors[k] for k in keys] for keys in _SCALE_KEYS])  # (S, 3)
    origin_nominal = _NOMINAL[_ORIGIN]
    offsets = np.zeros((len(SEGMENTS), 3))
    origin = np.zeros((len(SEGMENTS), 3))
    for s, p in enumerate(PARENTS):
        if p < 0:
            offsets[s] = origin_nominal[s]
            origin[s] = origin_nominal[s]
        else:  # the child's joint is a point of the parent segment: scaled with the parent
            offsets[s] = scales[p] * (origin_nominal[s] - origin_nominal[p])
            origin[s] = origin[p] + offsets[s]
    seg = LANDMARK_SEGMENT
    local = scales[seg] * (_NOMINAL - origin_nominal[seg])
    rest = origin[seg] + local
    floor = rest[[LANDMARK_INDEX[n] for n in CONTACT_POINTS], 2].min()
    k = height / (rest[LANDMARK_INDEX["vertex"], 2] - floor)
    offsets = offsets * k
    offsets[0, 2] -= floor * k
    rest = (rest - [0.0, 0.0, floor]) * k
    return Body(subject=subject, sex=sex, height=float(height), factors=dict(factors),
                joint_offsets=offsets, landmark_local=local * k, landmark_rest=rest)


# --------------------------------------------------------------------------------------------
# Kinematics


def forward_kinematics(body: Body, root_position: np.ndarray, root_rotation: np.ndarray,
                       local: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Segment poses over time.

    root_position (T, 3) mm: where the pelvis origin is; root_rotation (T, 3, 3): the pelvis
    frame's orientation in the world (heading and pelvis angles combined); local (T, S, 3, 3):
    joint rotations (the root's entry is ignored). Returns segment origins (T, S, 3) and world
    rotations (T, S, 3, 3).
    """
    T = root_position.shape[0]
    pos = np.empty((T, len(SEGMENTS), 3))
    rot = np.empty((T, len(SEGMENTS), 3, 3))
    pos[:, 0] = root_position
    rot[:, 0] = root_rotation
    for s in range(1, len(SEGMENTS)):
        p = PARENTS[s]
        pos[:, s] = pos[:, p] + rot[:, p] @ body.joint_offsets[s]
        rot[:, s] = rot[:, p] @ local[:, s]
    return pos, rot


def _rotate(R: np.ndarray, v: np.ndarray) -> np.ndarray:
    """R (..., M, 3, 3) applied to v (M, 3): elementwise, faster than stacks of tiny matmuls."""
    return (R * v[:, None, :]).sum(axis=-1)


def landmarks(body: Body, seg_pos: np.ndarray, seg_rot: np.ndarray,
              names: tuple[str, ...] | None = None) -> np.ndarray:
    """World positions (T, M, 3) of landmarks (all, or ``names``) from segment poses."""
    idx = np.arange(len(LANDMARKS)) if names is None else np.array([LANDMARK_INDEX[n] for n in names])
    seg = LANDMARK_SEGMENT[idx]
    return seg_pos[:, seg] + _rotate(seg_rot[:, seg], body.landmark_local[idx])


# --------------------------------------------------------------------------------------------
# Skeleton formats defined from landmarks


@dataclass(frozen=True)
class Target:
    """A format joint's anatomical definition: the mean of ``landmarks`` plus ``offset``
    (fractions of stature, rest body frame) carried by ``segment`` (default: the first
    landmark's segment)."""

    landmarks: tuple[str, ...]
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    segment: str | None = None
    same_as: str | None = None  # a duplicate of another joint of the format (H36M's raw skeleton)

    def mirrored(self) -> "Target":
        return Target(tuple(_mirror_name(n) for n in self.landmarks),
                      (self.offset[0], -self.offset[1], self.offset[2]),
                      None if self.segment is None else _mirror_name(self.segment), self.same_as)


def _t(*names, off=(0.0, 0.0, 0.0), segment=None, same_as=None) -> Target:
    return Target(tuple(names), tuple(float(v) for v in off), segment, same_as)


def _on_landmarks(*joints: str) -> dict[str, Target]:
    """Joints that sit exactly on the landmark of the same name."""
    return {joint: _t(joint) for joint in joints}


# Left and centre joints only; "l..." joints are mirrored to "r...". Offsets are relative to
# the landmark mean, in fractions of stature (0.01 is 17.5 mm for a 1.75 m subject).
_FORMAT_TABLE = {
    # Human3.6M: Vicon skeleton. Hips wide and low, pelvis on the hip line, "spine" mid-trunk,
    # "neck" = thorax at shoulder height, "head" inside the face near the mouth, headtop short
    # of the vertex; 16/24 (clavicles) coincide with the thorax as in the raw data.
    "h36m_32": (True, {
        "pelvis": _t("lhjc", "rhjc", off=(0.0, 0.0, 0.004)),
        "lhip": _t("lhjc", off=(0.0, 0.020, -0.006), segment="lthigh"),
        "lknee": _t("lknee", off=(0.0, 0.006, 0.0)),
        "lankle": _t("lankle", off=(-0.002, 0.002, -0.004)),
        "ltoe": _t("lmtp", off=(0.0, 0.0, 0.004)),
        "ltoe_end": _t("ltoe_tip", off=(-0.005, 0.0, 0.005)),
        "spine0": _t("lhjc", "rhjc", off=(0.0, 0.0, 0.004), same_as="pelvis"),
        "spine": _t("t12", off=(0.022, 0.0, -0.017)),
        "neck": _t("c7", off=(0.020, 0.0, -0.020)),
        "head": _t("nose", off=(-0.042, 0.0, -0.010)),
        "headtop": _t("vertex", off=(0.010, 0.0, -0.022)),
        "lclavicle": _t("c7", off=(0.020, 0.0, -0.020), same_as="neck"),
        "lshoulder": _t("lgh", off=(0.0, 0.008, 0.010), segment="lupperarm"),
        "lelbow": _t("lelbow", off=(0.0, 0.004, 0.002)),
        "lwrist": _t("lwrist", off=(0.0, 0.0, 0.003)),
        "lthumb": _t("lthumb_cmc"),
        "lthumb_end": _t("lthumb_tip"),
        "lhand": _t("lmcp"),
        "lhand_end": _t("lfingertip"),
    }),
    # SMPL (3DPW): joints regressed from the mesh. Pelvis above the hip line, hips narrower and
    # higher than H36M's, neck at the base of the neck, head near the skull base.
    "smpl_24": (True, {
        "pelvis": _t("lhjc", "rhjc", off=(-0.006, 0.0, 0.030)),
        "lhip": _t("lhjc", off=(0.002, -0.003, 0.006), segment="lthigh"),
        "spine1": _t("l3", off=(0.012, 0.0, -0.008)),
        "lknee": _t("lknee", off=(-0.004, 0.0, 0.004)),
        "spine2": _t("t12", off=(0.008, 0.0, 0.025), segment="thorax_low"),
        "lankle": _t("lankle", off=(0.003, 0.0, 0.002)),
        "spine3": _t("t6", off=(0.018, 0.0, -0.022)),
        "lfoot": _t("lmtp", off=(0.0, -0.004, 0.008)),
        "neck": _t("c7", off=(0.008, 0.0, 0.003)),
        "lcollar": _t("lsc", off=(-0.020, 0.012, 0.012)),
        "head": _t("c1", off=(0.020, 0.0, -0.005), segment="head"),
        "lshoulder": _t("lgh", off=(-0.004, -0.010, -0.002), segment="lupperarm"),
        "lelbow": _t("lelbow", off=(-0.003, -0.002, 0.0)),
        "lwrist": _t("lwrist", off=(0.002, 0.0, -0.004)),
        "lhand": _t("lmcp", off=(0.0, 0.0, 0.010)),
    }),
    # MPI-INF-3DHP: markerless (Captury) skeleton with a five-joint spine; its neck sits high in
    # the neck, its head between the ears and the eyes.
    "mpi_inf_3dhp_28": (True, {
        "thorax": _t("t6", off=(0.015, 0.0, 0.035), segment="thorax_up"),
        "spine4": _t("c7", off=(0.012, 0.0, -0.018)),
        "spine2": _t("t12", off=(0.004, 0.0, 0.020), segment="thorax_low"),
        "spine": _t("l3", off=(0.010, 0.0, -0.015)),
        "pelvis": _t("lhjc", "rhjc", off=(-0.010, 0.0, 0.010)),
        "neck": _t("neck_mid", off=(0.003, 0.0, -0.030)),
        "head": _t("head_centre", off=(0.022, 0.0, -0.033)),
        "headtop": _t("vertex", off=(0.002, 0.0, -0.005)),
        "lclavicle": _t("lsc", off=(-0.010, 0.020, 0.010)),
        "lshoulder": _t("lgh", off=(0.006, 0.0, 0.004), segment="lupperarm"),
        "lelbow": _t("lelbow", off=(0.003, 0.0, -0.003)),
        "lwrist": _t("lwrist", off=(0.0, 0.003, 0.0)),
        "lhand": _t("lmcp", off=(0.0, 0.0, -0.005)),
        "lhip": _t("lhjc", off=(0.006, 0.006, -0.002), segment="lthigh"),
        "lknee": _t("lknee", off=(0.004, 0.002, -0.003)),
        "lankle": _t("lankle", off=(0.0, 0.004, 0.0)),
        "lfoot": _t("lmtp", off=(-0.004, 0.0, 0.004)),
        "ltoe": _t("ltoe_tip", off=(-0.008, 0.0, 0.0)),
    }),
    # HumanEva: Vicon virtual markers; shoulders high (near the acromion), head at ear level.
    "humaneva_15": (True, {
        "pelvis": _t("lhjc", "rhjc", off=(0.008, 0.0, 0.010)),
        "thorax": _t("c7", off=(0.017, 0.0, -0.037)),
        "lshoulder": _t("lgh", off=(0.004, 0.002, 0.022), segment="lupperarm"),
        "lelbow": _t("lelbow", off=(0.0, 0.002, 0.004)),
        "lwrist": _t("lwrist", off=(-0.003, 0.0, 0.002)),
        "lhip": _t("lhjc", off=(0.004, 0.013, -0.008), segment="lthigh"),
        "lknee": _t("lknee", off=(0.0, 0.004, -0.004)),
        "lankle": _t("lankle", off=(-0.004, 0.0, 0.0)),
        "head": _t("head_centre", off=(0.010, 0.0, -0.036)),
    }),
    # COCO keypoints (2D detectors): the surface points an annotator clicks in one image.
    "coco_17": (False, {
        **_on_landmarks("nose", "leye", "lear", "lwrist"),
        "lshoulder": _t("lcoco_shoulder"),
        "lelbow": _t("lelbow", off=(0.0, 0.006, 0.0)),
        "lhip": _t("lcoco_hip"),
        "lknee": _t("lknee", off=(0.004, 0.0, 0.002)),
        "lankle": _t("lankle", off=(0.002, 0.0, -0.006)),
    }),
    # CMU Panoptic: COCO-style 2D keypoints triangulated from hundreds of views, so shoulders,
    # hips and limb joints sit deeper than a single view's surface point; the neck and pelvis are
    # the labels' midpoints of the (surface) shoulders and hips.
    "coco_19": (False, {
        **_on_landmarks("nose", "leye", "lear"),
        "neck": _t("lcoco_shoulder", "rcoco_shoulder"),
        "pelvis": _t("lcoco_hip", "rcoco_hip"),
        "lshoulder": _t("lpano_shoulder"),
        "lelbow": _t("lelbow", off=(0.0, 0.003, 0.0)),
        "lwrist": _t("lwrist", off=(0.0, 0.0, 0.002)),
        "lhip": _t("lpano_hip"),
        "lknee": _t("lknee", off=(0.002, 0.0, 0.0)),
        "lankle": _t("lankle", off=(0.0, 0.0, -0.004)),
    }),
    # MediaPipe / BlazePose landmarks: surface points like COCO's plus face, hand and foot points.
    "mediapipe_33": (False, {
        **_on_landmarks("nose", "leye_inner", "leye", "leye_outer", "lear", "lmouth", "lwrist", "lankle"),
        "lshoulder": _t("lcoco_shoulder", off=(0.007, -0.002, -0.002)),
        "lelbow": _t("lelbow", off=(0.0, 0.006, 0.0)),
        "lpinky": _t("lpinky_mcp"),
        "lindex": _t("lindex_mcp"),
        "lthumb": _t("lthumb_tip"),
        "lhip": _t("lcoco_hip", off=(0.006, -0.006, -0.004)),
        "lknee": _t("lknee", off=(0.004, 0.0, 0.0)),
        "lheel": _t("lheel_back"),
        "lfoot_index": _t("ltoe_tip"),
    }),
}

GENERATED_FORMATS: tuple[str, ...] = tuple(_FORMAT_TABLE)
"""Formats the body defines directly (h36m_17 and mpi_inf_3dhp_17 follow by exact mappings)."""
DERIVED_FORMATS = {"h36m_17": "h36m_32", "mpi_inf_3dhp_17": "mpi_inf_3dhp_28"}
ALL_FORMATS: tuple[str, ...] = GENERATED_FORMATS + tuple(DERIVED_FORMATS)


@dataclass(frozen=True)
class FormatDefinition:
    """A skeleton format compiled against the landmark table.

    weights (J, M): landmark weights of each joint's target; offsets (J, 3) fractions of stature;
    offset_segment (J,): segment carrying each offset; rigid: whether the joints are placed at
    constant bone lengths along the registry's kinematic tree.
    """

    name: str
    skeleton: skeletons.Skeleton
    weights: np.ndarray
    offsets: np.ndarray
    offset_segment: np.ndarray
    rigid: bool
    order: tuple[int, ...]  # joints in topological order (root first)
    alias: np.ndarray  # (J,) index of the joint each one duplicates, -1 for none


def _compile(name: str) -> FormatDefinition:
    rigid, table = _FORMAT_TABLE[name]
    full = {}
    for joint, target in table.items():
        full[joint] = target
        mirrored = _mirror_name(joint) if joint.startswith("l") else joint
        if mirrored != joint and mirrored not in table:
            full[mirrored] = target.mirrored()
    skeleton = skeletons.get(name)
    missing = set(skeleton.joint_names) - set(full)
    if missing:
        raise ValueError(f"format {name} lacks definitions for {sorted(missing)}")
    J = skeleton.num_joints
    weights = np.zeros((J, len(LANDMARKS)))
    offsets = np.zeros((J, 3))
    seg = np.zeros(J, dtype=np.int64)
    for j, joint in enumerate(skeleton.joint_names):
        target = full[joint]
        for n in target.landmarks:
            weights[j, LANDMARK_INDEX[n]] += 1.0 / len(target.landmarks)
        offsets[j] = target.offset
        seg[j] = SEGMENT_INDEX[target.segment or _LANDMARKS[target.landmarks[0]][0]]
    alias = np.array([skeleton.index(full[n].same_as) if full[n].same_as else -1
                      for n in skeleton.joint_names])
    depth = np.zeros(J, dtype=np.int64)
    for j in range(J):
        k = j
        while skeleton.parents[k] >= 0:
            k = skeleton.parents[k]
            depth[j] += 1
    order = tuple(int(j) for j in np.argsort(depth, kind="stable"))
    return FormatDefinition(name, skeleton, weights, offsets, seg, rigid, order, alias)


_COMPILED: dict[str, FormatDefinition] = {}


def format_definition(name: str) -> FormatDefinition:
    """The compiled definition of a generated format (see ``GENERATED_FORMATS``)."""
    if name not in _COMPILED:
        _COMPILED[name] = _compile(name)
    return _COMPILED[name]


def _targets(body: Body, fmt: FormatDefinition, seg_pos, seg_rot) -> np.ndarray:
    # each joint averages at most a few landmarks: gather them instead of a dense product
    K = int((fmt.weights > 0).sum(axis=1).max())
    idx = np.argsort(-fmt.weights, axis=1, kind="stable")[:, :K]  # (J, K)
    w = np.take_along_axis(fmt.weights, idx, axis=1)
    seg = LANDMARK_SEGMENT[idx]
    out = _rotate(seg_rot[:, fmt.offset_segment], fmt.offsets * body.height)
    for k in range(K):
        out += w[:, k, None] * (seg_pos[:, seg[:, k]] + _rotate(seg_rot[:, seg[:, k]], body.landmark_local[idx[:, k]]))
    return out


def rest_pose(body: Body) -> tuple[np.ndarray, np.ndarray]:
    """Segment origins (1, S, 3) and rotations (1, S, 3, 3) of the rest pose."""
    rot = np.broadcast_to(np.eye(3), (1, len(SEGMENTS), 3, 3))
    return body.rest_joints[None], rot


def all_format_joints(body: Body, seg_pos: np.ndarray, seg_rot: np.ndarray) -> dict[str, np.ndarray]:
    """Joints of every format in ``ALL_FORMATS`` (each generated format computed once)."""
    out = {name: format_joints(body, name, seg_pos, seg_rot) for name in GENERATED_FORMATS}
    for name, source in DERIVED_FORMATS.items():
        out[name] = skeletons.convert(out[source], source, name)
    return {name: out[name] for name in ALL_FORMATS}


def format_joints(body: Body, name: str, seg_pos: np.ndarray, seg_rot: np.ndarray) -> np.ndarray:
    """Joints (T, J, 3) mm of skeleton format ``name`` (any of ``ALL_FORMATS``) from segment poses."""
    if name in DERIVED_FORMATS:
        return skeletons.convert(format_joints(body, DERIVED_FORMATS[name], seg_pos, seg_rot),
                                 DERIVED_FORMATS[name], name)
    fmt = format_definition(name)
    targets = _targets(body, fmt, seg_pos, seg_rot)
    if not fmt.rigid:
        return targets
    # duplicated joints (H36M's raw skeleton repeats the pelvis and the thorax) are fitted as one
    parents = np.array(fmt.skeleton.parents)
    dup = fmt.alias >= 0
    parents = np.where((parents >= 0) & dup[np.maximum(parents, 0)], fmt.alias[np.maximum(parents, 0)], parents)
    parents[dup] = -2  # left out of the fit
    order = [j for j in fmt.order if not dup[j]]
    rest = _targets(body, fmt, *rest_pose(body))[0]
    out = fit_rigid(targets, rest, parents, order)
    out[:, dup] = out[:, fmt.alias[dup]]
    return out


def fit_rigid(targets: np.ndarray, rest: np.ndarray, parents, order, iterations: int = 8) -> np.ndarray:
    """A skeleton with the bone lengths of ``rest`` (J, 3) that follows ``targets`` (T, J, 3).

    Like a motion-capture skeleton fitted to markers: bone-length constraints are projected a few
    times from the targets (each bone's error shared by its two joints, so a residual spreads
    along the chain instead of piling up at the hands), then one pass from the root outwards
    places every joint at its exact bone length, aimed where the relaxation put it.
    """
    parents = np.asarray(parents)  # -1: root; -2: not part of the fit (left as the target)
    child = np.flatnonzero(parents >= 0)
    parent = parents[child]
    length = np.linalg.norm(rest[child] - rest[parent], axis=-1)
    # each bone's correction pulls its parent and pushes its child, averaged over the bones
    # meeting at a joint; (J, T, 3) layout keeps every joint's block contiguous
    share = 1.0 / np.maximum(np.bincount(np.concatenate([child, parent]), minlength=len(parents)), 1)
    x = np.ascontiguousarray(targets.transpose(1, 0, 2))
    for _ in range(iterations):
        d = x[child] - x[parent]
        n = np.sqrt((d * d).sum(axis=-1, keepdims=True))
        corr = 0.5 * (1.0 - length[:, None, None] / np.maximum(n, 1e-9)) * d  # (B, T, 3)
        for b, (c, p) in enumerate(zip(child, parent)):
            x[c] -= share[c] * corr[b]
            x[p] += share[p] * corr[b]
    x = x.transpose(1, 0, 2)
    out = x.copy()
    for j in order:
        p = parents[j]
        if p < 0:
            out[:, j] = x[:, j]
            continue
        d = x[:, j] - out[:, p]
        n = np.linalg.norm(d, axis=-1, keepdims=True)
        out[:, j] = out[:, p] + d * (np.linalg.norm(rest[j] - rest[p]) / np.maximum(n, 1e-9))
    return out
