"""Skeleton formats: joint names, kinematic tree, drawing edges and left/right mirror, in one registry.

Every array of joints in posebridge carries the name of its skeleton format; ``get(name)`` turns
that name into a :class:`Skeleton`. Joint names are lowercase with left/right given by an ``l`` /
``r`` prefix (``lhip``, ``rshoulder``), so the mirror permutation is found by name.

Formats (joint orders as in the reference datasets):

=================== ===== =============================================================
name                joints source
=================== ===== =============================================================
``h36m_17``         17    Human3.6M, the usual 17-joint subset of the 32 raw joints
``h36m_32``         32    Human3.6M raw motion-capture skeleton (incl. end sites)
``smpl_24``         24    SMPL body model joints (3DPW)
``mpi_inf_3dhp_17`` 17    MPI-INF-3DHP test set / MuPoTS
``mpi_inf_3dhp_28`` 28    MPI-INF-3DHP training annotations
``coco_17``         17    COCO keypoints (2D detectors)
``coco_19``         19    CMU Panoptic (COCO-19)
``humaneva_15``     15    HumanEva-I in the VideoPose3D layout
``mediapipe_33``    33    MediaPipe / BlazePose landmarks
=================== ===== =============================================================

The same joint name in two formats is generally *not* the same point (hip centres, necks and heads
differ by centimetres between datasets). :func:`mapping` / :func:`convert` therefore only exist for
pairs of formats whose joints truly coincide (one format is a subset of the other's annotation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from posebridge.errors import ConfigError

__all__ = [
    "Skeleton",
    "get",
    "names",
    "register",
    "register_mapping",
    "mapping",
    "convert",
    "mirror_by_name",
    "HINGE_JOINTS",
    "keypoint_correspondence",
]


def mirror_by_name(joint_names: Sequence[str]) -> tuple[int, ...]:
    """The left/right permutation implied by names: ``l<x>`` <-> ``r<x>``, every other joint fixed.

    A name that starts with ``l`` or ``r`` but has no counterpart (``rear`` without ``lear``) is
    treated as a centre joint.
    """
    index = {n: i for i, n in enumerate(joint_names)}
    mirror = list(range(len(joint_names)))
    for i, n in enumerate(joint_names):
        if len(n) > 1 and n[0] in "lr":
            other = ("r" if n[0] == "l" else "l") + n[1:]
            j = index.get(other)
            if j is not None:
                mirror[i] = j
    return tuple(mirror)


@dataclass(frozen=True)
class Skeleton:
    """One skeleton format.

    Attributes:
        name: registry name (``h36m_17``).
        joint_names: lowercase joint names, ``l``/``r`` prefixed for sided joints.
        parents: parent index of every joint, -1 for the root.
        edges: pairs of joint indices to draw (parent-child pairs unless the format has its own
            drawing convention, e.g. COCO's face and torso lines).
        mirror: left/right permutation; ``mirror[i]`` is the joint that joint ``i`` becomes after a
            horizontal flip (centre joints map to themselves).
        root: index of the root joint (``parents[root] == -1``).
    """

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    edges: tuple[tuple[int, int], ...]
    mirror: tuple[int, ...]
    root: int
    _index: dict = field(default=None, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self):
        # normalise containers to tuples of ints (frozen: use object.__setattr__)
        set_ = object.__setattr__
        set_(self, "joint_names", tuple(str(n) for n in self.joint_names))
        set_(self, "parents", tuple(int(p) for p in self.parents))
        set_(self, "edges", tuple((int(a), int(b)) for a, b in self.edges))
        set_(self, "mirror", tuple(int(m) for m in self.mirror))
        set_(self, "root", int(self.root))
        self._validate()
        set_(self, "_index", {n: i for i, n in enumerate(self.joint_names)})

    def _validate(self):
        J = len(self.joint_names)
        where = f"skeleton {self.name!r}"
        if J == 0:
            raise ConfigError(f"{where}: no joints")
        if len(set(self.joint_names)) != J:
            dup = sorted({n for n in self.joint_names if self.joint_names.count(n) > 1})
            raise ConfigError(f"{where}: duplicate joint names {dup}")
        if len(self.parents) != J or len(self.mirror) != J:
            raise ConfigError(
                f"{where}: {J} joint names but {len(self.parents)} parents and "
                f"{len(self.mirror)} mirror entries"
            )
        if not 0 <= self.root < J or self.parents[self.root] != -1:
            raise ConfigError(f"{where}: root {self.root} must be a joint whose parent is -1")
        for i, p in enumerate(self.parents):
            if i != self.root and not 0 <= p < J:
                raise ConfigError(f"{where}: joint {i} has invalid parent {p}")
        # every joint must reach the root without a cycle
        for i in range(J):
            seen, k = set(), i
            while k != self.root:
                if k in seen:
                    raise ConfigError(f"{where}: the parents of joint {i} form a cycle")
                seen.add(k)
                k = self.parents[k]
        if sorted(self.mirror) != list(range(J)):
            raise ConfigError(f"{where}: mirror is not a permutation")
        if any(self.mirror[self.mirror[i]] != i for i in range(J)):
            raise ConfigError(f"{where}: mirror is not an involution")
        for a, b in self.edges:
            if not (0 <= a < J and 0 <= b < J) or a == b:
                raise ConfigError(f"{where}: invalid edge ({a}, {b})")

    # ------------------------------------------------------------------ queries

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def index(self, name: str) -> int:
        """Index of a joint by name; unknown names raise ConfigError listing the joints."""
        try:
            return self._index[name]
        except KeyError:
            raise ConfigError(
                f"skeleton {self.name!r} has no joint {name!r}; joints: {', '.join(self.joint_names)}"
            ) from None

    @property
    def left(self) -> tuple[int, ...]:
        """Indices of the left joints (those whose mirror is another joint and is named ``l...``),
        ascending; ``right[k]`` is the mirror of ``left[k]``."""
        return tuple(
            i for i, m in enumerate(self.mirror) if m != i and self.joint_names[i].startswith("l")
        )

    @property
    def right(self) -> tuple[int, ...]:
        """Mirrors of :attr:`left`, in the same (paired) order."""
        return tuple(self.mirror[i] for i in self.left)

    @property
    def centre(self) -> tuple[int, ...]:
        """Indices of the joints that map to themselves under the mirror."""
        return tuple(i for i, m in enumerate(self.mirror) if m == i)

    @property
    def bones(self) -> tuple[tuple[int, int], ...]:
        """(parent, child) pairs of the kinematic tree, in child order (root excluded)."""
        return tuple((p, i) for i, p in enumerate(self.parents) if p >= 0)

    # ------------------------------------------------------------------ operations

    def flip(self, joints):
        """Mirror poses horizontally: negate x and swap left/right joints.

        ``joints`` is (..., J, C) with C >= 2 (x, y[, z or confidence, ...]), numpy or torch; only
        channel 0 is negated, so coordinates must be centred on the mirror plane (camera space,
        VideoPose3D-normalised screen coordinates, or a world frame mirrored about x = 0).
        Returns a new array of the same type; the input is not modified.
        """
        if joints.shape[-2] != self.num_joints:
            raise ValueError(
                f"skeleton {self.name!r} has {self.num_joints} joints, got array of shape "
                f"{tuple(joints.shape)}"
            )
        perm = list(self.mirror)
        if _is_torch(joints):
            import torch

            out = joints[..., torch.as_tensor(perm, device=joints.device), :].clone()
        else:
            out = np.array(joints[..., perm, :], copy=True)
        out[..., 0] = -out[..., 0]
        return out


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


# ---------------------------------------------------------------------- registry

_REGISTRY: dict[str, Skeleton] = {}
_MAPPINGS: dict[tuple[str, str], tuple[int, ...]] = {}


def register(skeleton: Skeleton, *, replace: bool = False) -> Skeleton:
    """Add a skeleton format to the registry. Re-registering a name raises ConfigError unless the
    skeleton is identical or ``replace`` is true."""
    if not isinstance(skeleton, Skeleton):
        raise TypeError(f"register() takes a Skeleton, got {type(skeleton).__name__}")
    old = _REGISTRY.get(skeleton.name)
    if old is not None and old != skeleton and not replace:
        raise ConfigError(f"skeleton format {skeleton.name!r} is already registered")
    _REGISTRY[skeleton.name] = skeleton
    return skeleton


def names() -> list[str]:
    """Names of all registered skeleton formats, sorted."""
    return sorted(_REGISTRY)


def get(name) -> Skeleton:
    """The registered skeleton called ``name`` (a Skeleton passes through unchanged)."""
    if isinstance(name, Skeleton):
        return name
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown skeleton format {name!r}; known formats: {', '.join(names())}"
        ) from None


def register_mapping(src, dst, indices: Sequence[int], *, replace: bool = False) -> None:
    """Declare that joint ``k`` of ``dst`` is exactly joint ``indices[k]`` of ``src``."""
    s, d = get(src), get(dst)
    idx = tuple(int(i) for i in indices)
    if len(idx) != d.num_joints:
        raise ConfigError(
            f"mapping {s.name} -> {d.name}: {len(idx)} indices for {d.num_joints} joints"
        )
    if any(not 0 <= i < s.num_joints for i in idx):
        raise ConfigError(f"mapping {s.name} -> {d.name}: index out of range")
    key = (s.name, d.name)
    if key in _MAPPINGS and _MAPPINGS[key] != idx and not replace:
        raise ConfigError(f"mapping {s.name} -> {d.name} is already registered")
    _MAPPINGS[key] = idx


def mapping(src, dst) -> np.ndarray:
    """Indices into ``src``'s joints that give ``dst``'s joints exactly (int64 array, length
    ``get(dst).num_joints``). Identity when ``src == dst``; ConfigError when the two formats have
    no exact correspondence (same-named joints of different datasets are different points)."""
    s, d = get(src), get(dst)
    if s.name == d.name:
        return np.arange(s.num_joints, dtype=np.int64)
    try:
        return np.asarray(_MAPPINGS[(s.name, d.name)], dtype=np.int64)
    except KeyError:
        known = ", ".join(f"{a}->{b}" for a, b in sorted(_MAPPINGS))
        raise ConfigError(
            f"no exact joint mapping from {s.name} to {d.name}; exact mappings exist for: {known}"
        ) from None


def convert(joints, src, dst):
    """Select ``dst``'s joints from ``joints`` (..., J_src, C) in format ``src`` (numpy or torch)."""
    s = get(src)
    if joints.shape[-2] != s.num_joints:
        raise ValueError(
            f"skeleton {s.name!r} has {s.num_joints} joints, got array of shape "
            f"{tuple(joints.shape)}"
        )
    idx = mapping(s, dst)
    if _is_torch(joints):
        import torch

        return joints[..., torch.as_tensor(idx, device=joints.device), :]
    return joints[..., idx, :]


# ---------------------------------------------------------------------- built-in formats


def _make(name, joint_names, parents, root, edges=None, doc=None) -> Skeleton:
    joint_names = tuple(joint_names)
    parents = tuple(parents)
    if edges is None:
        edges = tuple((p, i) for i, p in enumerate(parents) if p >= 0)
    return register(
        Skeleton(
            name=name,
            joint_names=joint_names,
            parents=parents,
            edges=tuple(edges),
            mirror=mirror_by_name(joint_names),
            root=root,
        )
    )


# Human3.6M, 17 joints. Joint 8 is the thorax and joint 9 the nose in H36M terms; posebridge calls
# them neck and head (the names used throughout the literature for this layout).
H36M_17 = _make(
    "h36m_17",
    ["pelvis", "rhip", "rknee", "rankle", "lhip", "lknee", "lankle", "spine", "neck", "head",
     "headtop", "lshoulder", "lelbow", "lwrist", "rshoulder", "relbow", "rwrist"],
    [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15],
    root=0,
)

# Human3.6M raw 32-joint motion-capture skeleton. End sites ("Site" in H36M's metadata) are named
# after their parent with an ``_end`` suffix. Joints 20-23 per side are H36M's HandThumb, its end
# site, Wrist_End (towards the fingers) and its end site.
H36M_32 = _make(
    "h36m_32",
    ["pelvis", "rhip", "rknee", "rankle", "rtoe", "rtoe_end",
     "lhip", "lknee", "lankle", "ltoe", "ltoe_end",
     "spine0", "spine", "neck", "head", "headtop",
     "lclavicle", "lshoulder", "lelbow", "lwrist", "lthumb", "lthumb_end", "lhand", "lhand_end",
     "rclavicle", "rshoulder", "relbow", "rwrist", "rthumb", "rthumb_end", "rhand", "rhand_end"],
    [-1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 0, 11, 12, 13, 14, 12, 16, 17, 18, 19, 20, 19, 22, 12,
     24, 25, 26, 27, 28, 27, 30],
    root=0,
)

# SMPL body joints (kinematic tree of the SMPL model). lfoot / rfoot are the toe joints.
SMPL_24 = _make(
    "smpl_24",
    ["pelvis", "lhip", "rhip", "spine1", "lknee", "rknee", "spine2", "lankle", "rankle", "spine3",
     "lfoot", "rfoot", "neck", "lcollar", "rcollar", "head", "lshoulder", "rshoulder", "lelbow",
     "relbow", "lwrist", "rwrist", "lhand", "rhand"],
    [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21],
    root=0,
)

# MPI-INF-3DHP test set (and MuPoTS) 17 joints; the pelvis (14) is the root.
MPI_INF_3DHP_17 = _make(
    "mpi_inf_3dhp_17",
    ["headtop", "neck", "rshoulder", "relbow", "rwrist", "lshoulder", "lelbow", "lwrist", "rhip",
     "rknee", "rankle", "lhip", "lknee", "lankle", "pelvis", "spine", "head"],
    [16, 15, 1, 2, 3, 1, 5, 6, 14, 8, 9, 14, 11, 12, -1, 14, 1],
    root=14,
)

# MPI-INF-3DHP training annotations, 28 joints; parents are the dataset's own (mpii_get_joints,
# "O1" parents): the thorax (spine3) hangs off spine2, the neck off spine4, clavicles off the neck.
MPI_INF_3DHP_28 = _make(
    "mpi_inf_3dhp_28",
    ["thorax", "spine4", "spine2", "spine", "pelvis", "neck", "head", "headtop",
     "lclavicle", "lshoulder", "lelbow", "lwrist", "lhand",
     "rclavicle", "rshoulder", "relbow", "rwrist", "rhand",
     "lhip", "lknee", "lankle", "lfoot", "ltoe",
     "rhip", "rknee", "rankle", "rfoot", "rtoe"],
    [2, 0, 3, 4, -1, 1, 5, 6, 5, 8, 9, 10, 11, 5, 13, 14, 15, 16, 4, 18, 19, 20, 21, 4, 23, 24,
     25, 26],
    root=4,
)

# COCO keypoints. COCO has no pelvis: the tree is rooted at the left hip (index 11); the right hip
# and the left shoulder hang off it, the right shoulder off the left shoulder and the face off the
# left shoulder. Edges are COCO's own drawing skeleton (face, torso and limb lines).
COCO_17 = _make(
    "coco_17",
    ["nose", "leye", "reye", "lear", "rear", "lshoulder", "rshoulder", "lelbow", "relbow",
     "lwrist", "rwrist", "lhip", "rhip", "lknee", "rknee", "lankle", "rankle"],
    [5, 0, 0, 1, 2, 11, 5, 5, 6, 7, 8, -1, 11, 11, 12, 13, 14],
    root=11,
    edges=[(15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
           (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6)],
)

# CMU Panoptic COCO-19; rooted at the pelvis (index 2).
COCO_19 = _make(
    "coco_19",
    ["neck", "nose", "pelvis", "lshoulder", "lelbow", "lwrist", "lhip", "lknee", "lankle",
     "rshoulder", "relbow", "rwrist", "rhip", "rknee", "rankle", "leye", "lear", "reye", "rear"],
    [2, 0, -1, 0, 3, 4, 2, 6, 7, 0, 9, 10, 2, 12, 13, 1, 15, 1, 17],
    root=2,
)

# HumanEva-I, 15 joints in VideoPose3D's layout.
HUMANEVA_15 = _make(
    "humaneva_15",
    ["pelvis", "thorax", "lshoulder", "lelbow", "lwrist", "rshoulder", "relbow", "rwrist",
     "lhip", "lknee", "lankle", "rhip", "rknee", "rankle", "head"],
    [-1, 0, 1, 2, 3, 1, 5, 6, 0, 8, 9, 0, 11, 12, 1],
    root=0,
)

# MediaPipe / BlazePose 33 landmarks (left_eye_inner -> leye_inner, mouth_left -> lmouth,
# left_foot_index -> lfoot_index, ...). No pelvis: rooted at the left hip (index 23) like coco_17.
# Edges are MediaPipe's POSE_CONNECTIONS.
MEDIAPIPE_33 = _make(
    "mediapipe_33",
    ["nose", "leye_inner", "leye", "leye_outer", "reye_inner", "reye", "reye_outer", "lear",
     "rear", "lmouth", "rmouth", "lshoulder", "rshoulder", "lelbow", "relbow", "lwrist", "rwrist",
     "lpinky", "rpinky", "lindex", "rindex", "lthumb", "rthumb", "lhip", "rhip", "lknee", "rknee",
     "lankle", "rankle", "lheel", "rheel", "lfoot_index", "rfoot_index"],
    [11, 0, 1, 2, 0, 4, 5, 3, 6, 0, 0, 23, 11, 11, 12, 13, 14, 15, 16, 15, 16, 15, 16, -1, 23,
     23, 24, 25, 26, 27, 28, 27, 28],
    root=23,
    edges=[(0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12),
           (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16),
           (16, 18), (16, 20), (16, 22), (18, 20), (11, 23), (12, 24), (23, 24), (23, 25),
           (24, 26), (25, 27), (26, 28), (27, 29), (28, 30), (29, 31), (30, 32), (27, 31),
           (28, 32)],
)

# Exact mappings: the destination is a subset of the source's annotation.
register_mapping("h36m_32", "h36m_17", [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27])
register_mapping(
    "mpi_inf_3dhp_28", "mpi_inf_3dhp_17",
    [7, 5, 14, 15, 16, 9, 10, 11, 23, 24, 25, 18, 19, 20, 4, 3, 6],
)
register_mapping(
    "mediapipe_33", "coco_17",
    [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28],
)


# ------------------------------------------------------------------ keypoints and joints at one point

HINGE_JOINTS = ("lelbow", "relbow", "lwrist", "rwrist", "lknee", "rknee", "lankle", "rankle")
"""Joints that every format and the COCO keypoints place at the same point to within a
centimetre: elbows, wrists, knees and ankles are hinges with a well-defined centre, whereas the
shoulders, hips and head of joint-centre formats lie several centimetres from the surface points
a keypoint detector marks under the same names."""


def keypoint_correspondence(fmt, keypoint_format) -> tuple[np.ndarray, np.ndarray]:
    """(joints of ``fmt``, keypoints of ``keypoint_format``) index pairs that mark the same point:
    every keypoint when ``fmt`` maps exactly onto ``keypoint_format`` (``mapping``), else the
    ``HINGE_JOINTS``; ConfigError when either format lacks one of them."""
    skeleton, keypoints = get(fmt), get(keypoint_format)
    try:
        return mapping(skeleton.name, keypoints.name), np.arange(keypoints.num_joints, dtype=np.int64)
    except ConfigError:
        pass
    missing = [n for n in HINGE_JOINTS if n not in skeleton.joint_names or n not in keypoints.joint_names]
    if missing:
        raise ConfigError(f"format {skeleton.name} or keypoint format {keypoints.name} lacks joint(s) "
                          f"{', '.join(missing)} to compare in 2D")
    return (np.array([skeleton.index(n) for n in HINGE_JOINTS], dtype=np.int64),
            np.array([keypoints.index(n) for n in HINGE_JOINTS], dtype=np.int64))
