"""Floor work, martial arts, inversions and random poses: joint limits, floor contact, every body
orientation, determinism."""

import numpy as np
import pytest

from posebridge.sources.synth import body as B
from posebridge.sources.synth import floorwork as F
from posebridge.sources.synth import motion as M

FPS = 30.0


@pytest.fixture(scope="module")
def subject():
    """A tall subject (floor work puts the most length on the floor) and their style."""
    rng = np.random.default_rng(3)
    body = B.sample_body(rng, "s", sex="male", height=1850.0)
    return body, M.sample_style(rng, body.height)


def _two_takes(body, style, k, action):
    takes = []
    for take in range(2):
        rng = np.random.default_rng([k, take])
        clip = M.generate_clip(action, 8.0, FPS, style.varied(rng), rng)
        pos, rot = M.perform(body, clip, rng, centre=(0.0, 0.0), radius=1500.0)
        takes.append((clip, pos, rot, B.landmarks(body, pos, rot)))
    return takes


@pytest.fixture(scope="module")
def performed(subject):
    """Two 8 s takes of every new kind: (clip, segment positions, rotations, landmarks)."""
    return {action: _two_takes(*subject, k, action) for k, action in enumerate(F.ACTIONS)}


def test_new_kinds_join_the_motion_registry():
    for action in ("kneeling", "floor_sitting", "lying", "crawling", "kicking", "punching", "lunging",
                   "throwing", "handstand", "cartwheel", "random_pose"):
        assert M.ACTIONS[action] is F.ACTIONS[action]
    assert {"walking", "jumping"} <= set(M.ACTIONS)


def test_joint_limits_are_respected(performed):
    lo, hi = B.JOINT_LIMITS[..., 0], B.JOINT_LIMITS[..., 1]
    for action, takes in performed.items():
        for clip, *_ in takes:
            assert clip.angles.shape == (clip.frames, len(B.JOINTS), 3) and np.isfinite(clip.angles).all()
            assert np.all(clip.angles >= lo - 1e-9) and np.all(clip.angles <= hi + 1e-9), action


def test_no_body_part_below_the_floor_and_the_lowest_touches_it(performed):
    for action, takes in performed.items():
        for clip, pos, rot, marks in takes:
            assert clip.floor == "body"
            lowest = marks[..., 2].min(axis=1)
            assert lowest.min() > -1e-6, action
            assert np.abs(lowest).max() < 1e-6, action  # floor work has no flight phases


def test_floor_work_reaches_the_floor(performed, subject):
    body = subject[0]
    idx = B.LANDMARK_INDEX
    pelvis = {a: np.concatenate([p[:, 0, 2] for _, p, _, _ in t]) for a, t in performed.items()}
    # sitting on the floor and lying bring the pelvis down to a buttock's height over it
    assert pelvis["floor_sitting"].min() < 0.15 * body.height
    assert pelvis["lying"].min() < 0.15 * body.height
    # kneeling: a knee on the floor at some time
    marks = np.concatenate([m for *_, m in performed["kneeling"]])
    knees = marks[:, [idx["ltibial_tuberosity"], idx["rtibial_tuberosity"], idx["lknee"], idx["rknee"]], 2]
    assert knees.min() < 0.04 * body.height


def _up_vectors(takes):
    """(N, 3) unit vectors from the pelvis to the neck over all frames of the takes."""
    out = []
    for _, pos, _, _ in takes:
        v = pos[:, B.SEGMENT_INDEX["neck"]] - pos[:, 0]
        out.append(v / np.linalg.norm(v, axis=1, keepdims=True))
    return np.concatenate(out)


def test_every_body_orientation(performed):
    up = {a: _up_vectors(t) for a, t in performed.items()}
    assert (np.abs(up["lying"][:, 2]) < 0.3).mean() > 0.2  # lying: the trunk horizontal
    assert up["handstand"][:, 2].min() < -0.9  # upside down
    assert up["cartwheel"][:, 2].min() < -0.8
    assert (np.abs(up["crawling"][:, 2]) < 0.5).mean() > 0.9
    # random poses: the trunk's direction spread over the whole sphere, below the horizon too
    r = up["random_pose"]
    assert (r[:, 2] < -0.3).mean() > 0.05 and (np.abs(r[:, 2]) < 0.3).mean() > 0.1
    octants = {tuple(s) for s in np.sign(r).astype(int)}
    assert len(octants) == 8


def _yaw(a, b):
    """(T,) heading (degrees) of the horizontal line from landmarks a to b (T, 3)."""
    d = b - a
    return np.degrees(np.arctan2(d[:, 1], d[:, 0]))


def test_throwing_turns_the_trunk_through_and_raises_the_arm(performed, subject):
    idx = B.LANDMARK_INDEX
    height = subject[0].height
    for clip, pos, rot, marks in performed["throwing"]:
        shoulders = _yaw(marks[:, idx["racromion"]], marks[:, idx["lacromion"]])
        hips = _yaw(marks[:, idx["rasis"]], marks[:, idx["lasis"]])
        twist = (shoulders - hips + 180.0) % 360.0 - 180.0
        assert np.ptp(twist) > 30.0  # shoulders turned away, then through past the hips
        shoulder = marks[:, [idx["lacromion"], idx["racromion"]], 2].max(axis=1)
        wrists = marks[:, [idx["lwrist"], idx["rwrist"]], 2].max(axis=1)
        assert (wrists > shoulder + 0.05 * height).any()  # a hand above the shoulders at some time
        heels = marks[:, [idx["lheel"], idx["rheel"]], :2]
        assert np.linalg.norm(heels[:, 0] - heels[:, 1], axis=1).max() > 0.3 * height  # the stride


def test_random_poses_cover_the_joint_ranges(subject):
    body, style = subject
    clip = M.generate_clip("random_pose", 120.0, 10.0, style, np.random.default_rng(1))
    lo, hi = B.JOINT_LIMITS[..., 0], B.JOINT_LIMITS[..., 1]
    free = hi > lo
    span = (clip.angles.max(axis=0) - clip.angles.min(axis=0))[free] / (hi - lo)[free]
    assert np.median(span) > 0.7  # most degrees of freedom swept over most of their range


def test_travelling_and_take_volume(performed):
    for action, takes in performed.items():
        for clip, pos, _, _ in takes:
            r = np.linalg.norm(pos[:, 0, :2], axis=1)
            assert r.max() < 1500.0 + 400.0, action
    # crawling moves forward; the others stay near one spot
    for clip, pos, _, _ in performed["crawling"]:
        assert clip.travels and np.linalg.norm(np.diff(pos[:, 0, :2], axis=0), axis=1).sum() > 800.0


def test_takes_are_deterministic_and_vary(subject):
    body, style = subject

    def take(action, seed):
        rng = np.random.default_rng(seed)
        clip = M.generate_clip(action, 3.0, FPS, style, rng)
        return M.perform(body, clip, rng)[0]

    for action in F.ACTIONS:
        assert np.array_equal(take(action, 5), take(action, 5)), action
        assert not np.allclose(take(action, 5), take(action, 6)), action


def test_tilt_rotation_conventions():
    deg = np.deg2rad
    R = M.tilt_rotation(np.array([[deg(90), 0, 0], [deg(-90), 0, 0], [deg(180), 0, 0], [deg(90), 0, deg(180)]]))
    up, front = R[..., :, 2], R[..., :, 0]
    assert np.allclose(front[0], [0, 0, -1], atol=1e-9)  # pitch +90: face down
    assert np.allclose(front[1], [0, 0, 1], atol=1e-9)  # pitch -90: face up
    assert np.allclose(up[2], [0, 0, -1], atol=1e-9)  # pitch 180: upside down
    assert np.allclose(front[3], [0, 0, 1], atol=1e-9)  # face down then half a spin: face up
