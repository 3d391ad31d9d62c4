"""The synthetic body: anthropometry, joint conventions, forward kinematics, skeleton formats."""

import itertools

import numpy as np
import pytest

from posebridge.geometry import skeletons
from posebridge.sources.synth import body as B
from posebridge.sources.synth import motion as M

RIGID = ("h36m_32", "smpl_24", "mpi_inf_3dhp_28", "humaneva_15")
DATASET_FORMATS = ("h36m_32", "smpl_24", "mpi_inf_3dhp_28", "humaneva_15", "coco_19", "coco_17")


def _symmetric_body(height=1750.0):
    factors = {k: 1.0 for k in ("trunk", "leg", "arm", "head", "shoulder_width", "hip_width", "girth",
                                "foot", "hand", "chest")}
    return B.build_body("sym", "male", height, factors)


def _pose(body, angles_deg):
    """Segment poses of one frame from anatomical angles in degrees (root at the origin)."""
    angles = np.deg2rad(np.asarray(angles_deg, dtype=float))[None]
    local = B.local_rotations(angles)
    return B.forward_kinematics(body, np.zeros((1, 3)), local[:, 0], local)


def _landmark(body, pos, rot, name):
    return B.landmarks(body, pos, rot, (name,))[0, 0]


@pytest.fixture(scope="module")
def motions():
    """A few subjects performing a few motions: (body, seg_pos, seg_rot) triples."""
    out = []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        body = B.sample_body(rng, f"s{seed}")
        style = M.sample_style(rng, body.height)
        for action in ("walking", "bending", "reaching", "jumping"):
            clip = M.generate_clip(action, 2.0, 25, style, rng)
            out.append((body,) + M.perform(body, clip, rng))
    return out


def test_stature_matches_the_sampled_height_and_subjects_differ():
    rng = np.random.default_rng(0)
    bodies = [B.sample_body(rng, f"s{i}") for i in range(200)]
    for body in bodies[:20]:
        rest = body.landmark_rest
        floor = rest[[B.LANDMARK_INDEX[n] for n in B.CONTACT_POINTS], 2]
        assert np.allclose(floor, 0.0, atol=1e-9)
        assert rest[B.LANDMARK_INDEX["vertex"], 2] == pytest.approx(body.height, abs=1e-6)
    heights = np.array([b.height for b in bodies])
    assert heights.min() >= 1500 and heights.max() <= 1950
    assert heights.min() < 1580 and heights.max() > 1880  # the range is actually used
    # proportions vary independently of height: leg length / height is not one number
    leg = np.array([b.landmark_rest[B.LANDMARK_INDEX["lhjc"], 2] / b.height for b in bodies])
    assert leg.std() > 0.005
    female = np.array([b.sex == "female" for b in bodies])
    assert 0.3 < female.mean() < 0.7
    assert heights[female].mean() < heights[~female].mean() - 60


def test_rest_pose_forward_kinematics_reproduces_the_rest_landmarks():
    body = B.sample_body(np.random.default_rng(1), "s")
    pos, rot = _pose(body, np.zeros((len(B.JOINTS), 3)))
    rest_pos = pos + [0.0, 0.0, body.rest_joints[0, 2]]
    marks = B.landmarks(body, rest_pos, rot)[0]
    assert np.allclose(marks, body.landmark_rest, atol=1e-9)


def test_local_rotations_are_rotations_and_zero_angles_identity():
    rng = np.random.default_rng(2)
    angles = rng.uniform(-1.5, 1.5, (5, len(B.JOINTS), 3))
    R = B.local_rotations(angles)
    assert np.allclose(R @ np.swapaxes(R, -1, -2), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(R), 1.0)
    assert np.allclose(B.local_rotations(np.zeros((1, len(B.JOINTS), 3))), np.eye(3))


@pytest.mark.parametrize("joint, angle, landmark, axis, sign", [
    ("lhip", 0, "lknee", 0, +1),         # hip flexion: knee forward
    ("lknee", 0, "lankle", 0, -1),       # knee flexion: ankle backward
    ("lshoulder", 0, "lelbow", 0, +1),   # shoulder flexion: elbow forward
    ("lshoulder", 1, "lelbow", 1, +1),   # left shoulder abduction: elbow to the left
    ("rshoulder", 1, "relbow", 1, -1),   # right shoulder abduction: elbow to the right
    ("lelbow", 0, "lwrist", 0, +1),      # elbow flexion: wrist forward
    ("lumbar", 0, "c7", 0, +1),          # trunk flexion: upper back forward
    ("lumbar", 1, "c7", 1, +1),          # lateral bend to the left
    ("lankle", 0, "ltoe_tip", 2, +1),    # dorsiflexion: toes up
    ("lhip", 2, "ltoe_tip", 1, -1),      # left hip internal rotation: toes turn in (to -y)
    ("neck", 2, "nose", 1, +1),          # turning the head left: nose to +y
])
def test_anatomical_angles_move_the_body_as_named(joint, angle, landmark, axis, sign):
    body = _symmetric_body()
    zero = np.zeros((len(B.JOINTS), 3))
    moved = zero.copy()
    moved[B.JOINT_INDEX[joint], angle] = 30.0
    before = _landmark(body, *_pose(body, zero), landmark)
    after = _landmark(body, *_pose(body, moved), landmark)
    assert sign * (after[axis] - before[axis]) > 20.0


def test_same_anatomical_angles_on_both_sides_give_a_mirror_symmetric_pose():
    body = _symmetric_body()
    rng = np.random.default_rng(3)
    angles = np.zeros((len(B.JOINTS), 3))
    for joint in B.JOINTS:
        if joint.startswith("l") and joint != "lumbar":
            angles[B.JOINT_INDEX[joint]] = rng.uniform(-25, 25, 3)
            angles[B.JOINT_INDEX["r" + joint[1:]]] = angles[B.JOINT_INDEX[joint]]
    angles[:, :] = np.rad2deg(B.clamp_angles(np.deg2rad(angles)))
    angles[[B.JOINT_INDEX[j] for j in ("pelvis", "lumbar", "thorax_low", "thorax_up", "neck", "head")], 0] = 10.0
    marks = B.landmarks(body, *_pose(body, angles))[0]
    for name in B.LANDMARKS:
        if name.startswith("l") and "r" + name[1:] in B.LANDMARK_INDEX and name not in ("lumbar", "l5s1", "l3"):
            a, b = marks[B.LANDMARK_INDEX[name]], marks[B.LANDMARK_INDEX["r" + name[1:]]]
            assert np.allclose(a, b * [1, -1, 1], atol=1e-6), name


def test_level_ankle_makes_the_sole_level():
    body = _symmetric_body()
    rng = np.random.default_rng(4)
    for _ in range(10):
        angles = np.zeros((len(B.JOINTS), 3))
        angles[B.JOINT_INDEX["pelvis"]] = rng.uniform(-15, 30, 3)
        for s in "lr":
            angles[B.JOINT_INDEX[s + "hip"]] = rng.uniform([-10, -10, -20], [90, 25, 20])
            angles[B.JOINT_INDEX[s + "knee"], 0] = rng.uniform(0, 100)
        rad = np.deg2rad(angles)[None]
        for s in "lr":
            dorsi, inversion = B.level_ankle(rad, s)
            rad[0, B.JOINT_INDEX[s + "ankle"], 0], rad[0, B.JOINT_INDEX[s + "ankle"], 1] = dorsi[0], inversion[0]
        local = B.local_rotations(rad)
        pos, rot = B.forward_kinematics(body, np.zeros((1, 3)), local[:, 0], local)
        for s in "lr":
            foot = rot[0, B.SEGMENT_INDEX[s + "foot"]]
            assert np.allclose(foot[:, 2], [0, 0, 1], atol=1e-9)


def test_same_named_joints_differ_between_formats_by_1_to_6_cm(motions):
    """Hips, shoulders, neck/thorax and head of different formats are different points."""
    checked = 0
    for name in ("lhip", "rhip", "lshoulder", "rshoulder", "neck", "thorax", "head", "pelvis", "headtop"):
        have = [f for f in DATASET_FORMATS if name in skeletons.get(f).joint_names]
        for f1, f2 in itertools.combinations(have, 2):
            d = np.concatenate([
                np.linalg.norm(B.format_joints(b, f1, p, r)[:, skeletons.get(f1).index(name)]
                               - B.format_joints(b, f2, p, r)[:, skeletons.get(f2).index(name)], axis=-1)
                for b, p, r in motions])
            assert 10.0 <= np.median(d) <= 60.0, (name, f1, f2, np.median(d))
            assert d.min() > 0.5, (name, f1, f2)
            checked += 1
    assert checked > 40


def test_formats_have_joints_others_lack_at_anatomical_places():
    body = B.sample_body(np.random.default_rng(5), "s")
    pos, rot = B.rest_pose(body)
    h36m = B.format_joints(body, "h36m_32", pos, rot)[0]
    J = skeletons.get("h36m_32").index
    assert h36m[J("ltoe_end"), 0] > h36m[J("lankle"), 0] + 0.05 * body.height  # toes in front
    assert h36m[J("lhand_end"), 2] < h36m[J("lwrist"), 2] - 0.05 * body.height  # fingers below
    smpl = B.format_joints(body, "smpl_24", pos, rot)[0]
    S = skeletons.get("smpl_24").index
    assert smpl[S("lcollar"), 1] > 0 and smpl[S("lcollar"), 1] < smpl[S("lshoulder"), 1]
    coco = B.format_joints(body, "coco_17", pos, rot)[0]
    C = skeletons.get("coco_17").index
    assert coco[C("nose"), 0] > coco[C("lear"), 0] + 0.04 * body.height  # the face looks forward
    assert coco[C("leye"), 1] > 0 > coco[C("reye"), 1]
    # derived formats are exact subsets
    assert np.array_equal(B.format_joints(body, "h36m_17", pos, rot), skeletons.convert(
        B.format_joints(body, "h36m_32", pos, rot), "h36m_32", "h36m_17"))


@pytest.mark.parametrize("fmt", RIGID)
def test_rigid_formats_keep_bone_lengths_and_follow_their_definitions(fmt, motions):
    definition = B.format_definition(fmt)
    for body, pos, rot in motions:
        joints = B.format_joints(body, fmt, pos, rot)
        bones = np.array(definition.skeleton.bones)
        lengths = np.linalg.norm(joints[:, bones[:, 1]] - joints[:, bones[:, 0]], axis=-1)
        assert np.abs(lengths - lengths[0]).max() < 1e-3  # mm
        targets = B._targets(body, definition, pos, rot)
        off = np.linalg.norm(joints - targets, axis=-1)
        assert np.percentile(off, 95) < 30.0 and np.median(off) < 8.0


def test_body_segments_are_rigid(motions):
    """Landmarks of one segment keep their distances over time (bones do not stretch)."""
    for body, pos, rot in motions:
        marks = B.landmarks(body, pos, rot)
        for a, b in (("lhjc", "lknee"), ("lknee", "lankle"), ("lgh", "lelbow"), ("lelbow", "lwrist"),
                     ("c1", "vertex"), ("lheel", "lball")):
            d = np.linalg.norm(marks[:, B.LANDMARK_INDEX[a]] - marks[:, B.LANDMARK_INDEX[b]], axis=-1)
            assert np.ptp(d) < 1e-6
