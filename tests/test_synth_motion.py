"""Motion kinds and their performance: limits, floor contact, no foot skating, timing, determinism."""

import numpy as np
import pytest

from posebridge.sources.synth import body as B
from posebridge.sources.synth import motion as M

FPS = 30


@pytest.fixture(scope="module")
def subject():
    rng = np.random.default_rng(11)
    body = B.sample_body(rng, "s")
    return body, M.sample_style(rng, body.height)


@pytest.fixture(scope="module")
def performed(subject):
    body, style = subject
    out = {}
    for k, action in enumerate(M.ACTIONS):
        rng = np.random.default_rng(100 + k)
        clip = M.generate_clip(action, 5.0, FPS, style, rng)
        out[action] = (clip,) + M.perform(body, clip, rng, centre=(500.0, -300.0), radius=1500.0)
    return out


def test_at_least_six_motion_kinds():
    assert len(M.ACTIONS) >= 6
    for required in ("walking", "running", "sitting", "squatting", "bending", "reaching", "dancing", "turning"):
        assert required in M.ACTIONS


def test_min_jerk_and_keyframes():
    s = np.linspace(0, 1, 11)
    m = M.min_jerk(s)
    assert m[0] == 0 and m[-1] == 1 and np.all(np.diff(m) >= 0)
    assert M.min_jerk(np.array([0.5]))[0] == pytest.approx(0.5)
    # zero velocity at both ends (smooth starts and stops)
    assert (M.min_jerk(np.array([1e-3]))[0]) < 1e-7
    values = np.array([[0.0], [10.0], [10.0], [-5.0]])
    out = M.keyframes(np.array([0.0, 1.0, 2.0, 3.0]), values, np.array([-1.0, 0.0, 0.5, 1.0, 1.5, 3.0, 4.0]))
    assert np.allclose(out[:, 0], [0.0, 0.0, 5.0, 10.0, 10.0, -5.0, -5.0])


def test_smooth_noise_has_unit_variance_and_is_smooth():
    n = M.smooth_noise(np.random.default_rng(0), 20000, 50.0, (3,), 0.5)
    assert np.allclose(n.std(axis=0), 1.0, atol=0.15)
    lag1 = np.mean(n[1:] * n[:-1]) / np.mean(n * n)
    assert lag1 > 0.98  # strongly correlated from frame to frame at 50 fps


def test_joint_limits_are_respected(performed):
    lo, hi = B.JOINT_LIMITS[..., 0], B.JOINT_LIMITS[..., 1]
    for action, (clip, _, _) in performed.items():
        assert clip.angles.shape == (clip.frames, len(B.JOINTS), 3)
        assert np.isfinite(clip.angles).all()
        assert np.all(clip.angles >= lo - 1e-9) and np.all(clip.angles <= hi + 1e-9), action


def test_feet_on_the_floor(performed, subject):
    body = subject[0]
    for action, (clip, pos, rot) in performed.items():
        # floor work rests any part of the body on the floor (motion.BODY_CONTACT_POINTS)
        points = B.CONTACT_POINTS if clip.floor == "feet" else B.LANDMARKS
        soles = B.landmarks(body, pos, rot, points)[..., 2]
        lowest = soles.min(axis=1)
        assert lowest.min() > -1e-6, action  # never below the floor
        grounded = ~clip.flight
        assert np.abs(lowest[grounded]).max() < 1e-6, action  # touching it unless in flight
    clip, pos, rot = performed["jumping"]
    soles = B.landmarks(body, pos, rot, B.CONTACT_POINTS)[..., 2]
    assert clip.flight.any() and soles.min(axis=1).max() > 80.0  # jumps leave the floor


def test_supporting_foot_does_not_slide(performed, subject):
    body = subject[0]
    for action in ("walking", "sitting", "bending", "reaching", "gesturing"):
        clip, pos, rot = performed[action]
        soles = B.landmarks(body, pos, rot, B.CONTACT_POINTS)
        k = soles[..., 2].argmin(axis=1)
        t = np.arange(clip.frames - 1)
        slide = np.linalg.norm(soles[t + 1, k[:-1], :2] - soles[t, k[:-1], :2], axis=-1) * FPS  # mm/s
        assert np.median(slide) < 25.0, (action, np.median(slide))


def test_walking_speed_and_cadence(performed, subject):
    body = subject[0]
    clip, pos, rot = performed["walking"]
    pelvis = pos[:, 0, :2]
    speed = np.linalg.norm(np.diff(pelvis, axis=0), axis=1).mean() * FPS
    assert 800.0 < speed < 1800.0  # mm/s
    heel = B.landmarks(body, pos, rot, ("lheel",))[:, 0, 2]
    spectrum = np.abs(np.fft.rfft(heel - heel.mean()))
    freq = np.fft.rfftfreq(len(heel), 1.0 / FPS)
    assert 0.7 < freq[spectrum.argmax()] < 1.2  # strides per second
    run_clip, run_pos, _ = performed["running"]
    run_speed = np.linalg.norm(np.diff(run_pos[:, 0, :2], axis=0), axis=1).mean() * FPS
    assert run_speed > 1.3 * speed


def test_motion_is_smooth_and_stays_in_the_capture_volume(performed, subject):
    body = subject[0]
    for action, (clip, pos, rot) in performed.items():
        marks = B.landmarks(body, pos, rot)
        step = np.linalg.norm(np.diff(marks, axis=0), axis=-1).max()
        assert step < 16000.0 / FPS, action  # no landmark faster than 16 m/s (a jump's arm swing)
        r = np.linalg.norm(pos[:, 0, :2] - [500.0, -300.0], axis=1)
        assert r.max() < 1500.0 + 400.0, action
    # discrete actions change posture (sitting lowers the pelvis a lot)
    _, pos, _ = performed["sitting"]
    assert np.ptp(pos[:, 0, 2]) > 0.15 * body.height


def test_takes_are_deterministic_and_vary(subject):
    body, style = subject

    def take(seed):
        rng = np.random.default_rng(seed)
        clip = M.generate_clip("gesturing", 2.0, FPS, style.varied(rng), rng)
        return M.perform(body, clip, rng)[0]

    assert np.array_equal(take(5), take(5))
    assert not np.allclose(take(5), take(6))


def test_style_variation_between_subjects():
    rng = np.random.default_rng(0)
    styles = [M.sample_style(rng, 1750.0) for _ in range(50)]
    assert np.std([s.cadence for s in styles]) > 0.03
    assert np.std([s.arm_swing for s in styles]) > 0.1
    assert any(not s.right_handed for s in styles)


def test_variation_widens_the_deviation_from_the_script(subject, monkeypatch):
    _, style = subject
    def clip(variation):
        return M.generate_clip("walking", 4.0, FPS, style, np.random.default_rng(5), variation=variation).angles
    with monkeypatch.context() as m:  # no deviation at all: the motion kind's script
        m.setattr(M, "_NOISE_SD", np.zeros_like(M._NOISE_SD))
        m.setattr(M, "_WIDE_SD", np.zeros_like(M._WIDE_SD))
        script = clip(0.0)
    angles = {v: clip(v) for v in (0.0, 0.5, 1.0)}
    names = ("lumbar", "thorax_up", "lshoulder", "relbow", "lhip", "rknee")
    joints = [B.JOINT_INDEX[n] for n in names]
    limits = B.JOINT_LIMITS[joints]
    free = np.ones(angles[0.0][:, joints].shape, bool)
    for a in angles.values():  # entries no clamp touched: the deviation is exactly linear in the sd
        free &= (a[:, joints] > limits[..., 0] + 1e-9) & (a[:, joints] < limits[..., 1] - 1e-9)
    assert free.mean() > 0.5
    sd = {v: M._NOISE_SD[joints] + v * (M._WIDE_SD[joints] - M._NOISE_SD[joints]) for v in angles}
    unit = (angles[0.0][:, joints] - script[:, joints]) / np.deg2rad(sd[0.0])
    for v in (0.5, 1.0):
        dev = (angles[v][:, joints] - script[:, joints]) / np.deg2rad(sd[v])
        np.testing.assert_allclose(dev[free], unit[free], atol=1e-9)
    spread = {v: np.degrees(np.abs(angles[v][:, joints] - script[:, joints]).mean((0, 2))) for v in angles}
    assert (spread[1.0][:4] > 8 * spread[0.0][:4]).all()  # trunk and arms: tens of degrees, not a few
    assert (spread[1.0][4:] > 3 * spread[0.0][4:]).all()  # hips and knees: several times more
