"""Motion: joint-angle trajectories for several kinds of human movement, and their performance by
a body (forward kinematics, floor contact, root translation, heading).

A motion kind (``ACTIONS``) turns a duration, a frame rate and a subject's :class:`Style` into a
:class:`Clip`: anatomical joint angles over time (``body.JOINTS`` x 3, radians, clamped to the
joint limits), a heading offset, and whether the clip travels (walking, running). Periodic
movements follow normative gait curves (Winter's sagittal-plane joint angles for walking; running
from the same literature) driven by a phase whose rate drifts slowly; discrete actions (sitting
down, squatting, reaching, ...) move between key poses with minimum-jerk transitions. Every take
gets smooth low-frequency noise on every joint, so no two takes are identical.

:func:`perform` then places the clip in the world: the pelvis height comes from the lowest sole
point touching the floor (ballistic arcs bridge flight phases), the horizontal root motion from
keeping the supporting foot still (no foot skating; turning pivots about the stance foot), and
travelling clips follow a closed path (circle, oval, figure eight) sized to the capture volume.
Everything is vectorised over frames.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.ndimage import gaussian_filter1d

from posebridge.data.masks import true_runs
from posebridge.sources.synth import body as body_mod
from posebridge.sources.synth.body import JOINT_INDEX, JOINTS

GRAVITY = 9810.0  # mm / s^2
NJ = len(JOINTS)
_SIDES = ("l", "r")


# --------------------------------------------------------------------------------------------
# Style: how one person moves (sampled per subject, varied slightly per take)


@dataclass(frozen=True)
class Style:
    """A subject's movement style. Angles in degrees, rates as factors of a typical person's."""

    cadence: float = 1.0  # step-rate factor
    stride: float = 1.0  # leg amplitude factor in walking and running
    arm_swing: float = 1.0  # arm-swing amplitude factor
    lean: float = 3.0  # forward trunk lean when upright
    head_forward: float = 5.0  # forward head posture (neck flexion, compensated by the head)
    arm_abduction: float = 8.0  # how far the arms hang away from the body
    elbow: float = 12.0  # elbow flexion at rest
    toe_out: float = 7.0  # external rotation of the legs
    stance_width: float = 3.0  # hip abduction when standing
    energy: float = 1.0  # amplitude factor of gestures, dancing and jumps
    tempo: float = 1.0  # speed factor of discrete actions
    right_handed: bool = True

    def varied(self, rng: np.random.Generator) -> "Style":
        """The same person on another take: every continuous trait jittered a little."""
        changes = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                continue
            if f.name in ("lean", "head_forward", "arm_abduction", "elbow", "toe_out", "stance_width"):
                changes[f.name] = value + rng.normal(0.0, 1.0)
            else:
                changes[f.name] = value * float(np.exp(rng.normal(0.0, 0.04)))
        return replace(self, **changes)


def sample_style(rng: np.random.Generator, height: float = 1750.0) -> Style:
    """A subject's style; taller people step a little slower (cadence ~ 1 / sqrt(leg length))."""
    return Style(
        cadence=float(np.exp(rng.normal(0.0, 0.06)) * np.sqrt(1750.0 / height)),
        stride=float(np.exp(rng.normal(0.0, 0.07))),
        arm_swing=float(np.clip(rng.normal(1.0, 0.25), 0.4, 1.7)),
        lean=float(rng.normal(3.0, 2.0)),
        head_forward=float(rng.normal(5.0, 4.0)),
        arm_abduction=float(rng.normal(8.0, 2.0)),
        elbow=float(np.clip(rng.normal(13.0, 5.0), 3.0, 30.0)),
        toe_out=float(rng.normal(7.0, 3.0)),
        stance_width=float(rng.normal(3.0, 1.5)),
        energy=float(np.exp(rng.normal(0.0, 0.15))),
        tempo=float(np.exp(rng.normal(0.0, 0.1))),
        right_handed=bool(rng.random() < 0.85),
    )


# --------------------------------------------------------------------------------------------
# Clips


@dataclass
class Clip:
    """Joint angles of one take before it is placed in the world.

    angles (T, J, 3) radians (anatomical, clamped); heading (T,) radians added to the yaw;
    travels: the clip moves forward and needs a path; flight (T,) bool: no foot on the floor;
    support (T,) or None: weight of the left foot as the supporting foot (right: 1 - support)
    where the script knows it (gait); None lets the lowest sole point decide.
    tilt (T, 3) radians or None: the whole body's orientation before the heading, as
    (pitch forward, roll to the right, spin about the long axis), see :func:`tilt_rotation`:
    lying (pitch +-90 degrees), handstands (180), cartwheels (roll through 360). None: upright.
    floor: "feet" (only the soles touch the floor) or "body" (any landmark can: floor work,
    lying, hands on the floor); the lowest point of the contact set rests on z = 0.
    anchored: the pelvis keeps its place over the floor instead of the supporting points theirs
    (random poses, whose arbitrary reorientations would roll the body across the room).
    """

    action: str
    fps: float
    angles: np.ndarray
    heading: np.ndarray
    travels: bool
    flight: np.ndarray
    support: np.ndarray | None = None
    tilt: np.ndarray | None = None
    floor: str = "feet"
    anchored: bool = False

    @property
    def frames(self) -> int:
        return self.angles.shape[0]


def _j(name: str) -> int:
    return JOINT_INDEX[name]


def min_jerk(s: np.ndarray) -> np.ndarray:
    """Minimum-jerk profile 10 s^3 - 15 s^4 + 6 s^5 on [0, 1] (clipped outside)."""
    s = np.clip(s, 0.0, 1.0)
    return s * s * s * (10.0 + s * (-15.0 + 6.0 * s))


def keyframes(times: np.ndarray, values: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Minimum-jerk interpolation between key values (K, ...) at increasing ``times`` (K,),
    evaluated at ``t`` (T,); held constant before the first and after the last key."""
    times = np.asarray(times, dtype=float)
    values = np.asarray(values, dtype=float)
    k = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 1)
    k1 = np.minimum(k + 1, len(times) - 1)
    span = np.maximum(times[k1] - times[k], 1e-9)
    s = min_jerk((t - times[k]) / span)
    s = s.reshape(s.shape + (1,) * (values.ndim - 1))
    return values[k] + (values[k1] - values[k]) * s


def smooth_noise(rng: np.random.Generator, T: int, fps: float, shape: tuple, cutoff_hz: float) -> np.ndarray:
    """Gaussian noise (T, *shape) low-passed at about ``cutoff_hz``, unit standard deviation."""
    sigma = max(fps / (2.0 * np.pi * cutoff_hz), 0.5)
    pad = int(4 * sigma) + 1
    white = rng.standard_normal((T + 2 * pad,) + tuple(shape))
    smooth = gaussian_filter1d(white, sigma, axis=0, mode="wrap")[pad:pad + T]
    return smooth * np.sqrt(2.0 * np.sqrt(np.pi) * sigma)  # undo the filter's variance reduction


def _periodic(keys: list[tuple[float, float]]):
    """A smooth periodic curve through (percent of cycle, degrees) keys; call with phase in [0, 1)."""
    x = np.array([k[0] for k in keys], dtype=float) / 100.0
    y = np.array([k[1] for k in keys], dtype=float)
    if x[0] != 0.0 or x[-1] != 1.0:
        raise ValueError("gait curve keys must span 0..100 %")
    y[-1] = y[0]
    spline = CubicSpline(x, y, bc_type="periodic")
    return lambda phase: spline(np.mod(phase, 1.0))


# Sagittal joint angles over one stride from heel strike (degrees): walking after Winter's
# normative data (hip flexion, knee flexion, ankle dorsiflexion), running after the usual
# treadmill-running curves (stance ends at ~38 %, then a flight phase).
WALK = {
    "hip": _periodic([(0, 28), (10, 26), (20, 18), (30, 9), (40, 0), (50, -8), (55, -9), (62, -4),
                      (70, 8), (78, 20), (86, 28), (93, 30), (100, 28)]),
    "knee": _periodic([(0, 4), (7, 12), (14, 17), (22, 13), (32, 6), (40, 4), (48, 7), (55, 18),
                       (62, 38), (68, 55), (73, 61), (80, 54), (88, 33), (95, 10), (100, 4)]),
    "ankle": _periodic([(0, 0), (6, -6), (12, -2), (25, 5), (40, 10), (48, 11), (54, 5), (60, -8),
                        (64, -16), (70, -8), (78, 2), (86, 4), (94, 2), (100, 0)]),
    "toe": _periodic([(0, 5), (10, 2), (30, 0), (45, 4), (52, 18), (58, 35), (63, 38), (68, 15),
                      (76, 4), (90, 6), (100, 5)]),
    "hip_abd": _periodic([(0, 1), (15, -4), (30, -4), (50, -1), (65, 3), (80, 2), (100, 1)]),
}
RUN = {
    "hip": _periodic([(0, 32), (15, 20), (30, 4), (40, -8), (46, -11), (55, -2), (65, 15), (75, 35),
                      (85, 42), (93, 38), (100, 32)]),
    "knee": _periodic([(0, 20), (10, 36), (20, 38), (30, 26), (40, 16), (50, 35), (60, 72), (70, 98),
                       (78, 104), (86, 78), (94, 40), (100, 20)]),
    "ankle": _periodic([(0, 2), (10, 16), (20, 20), (30, 10), (38, -12), (45, -22), (55, -15),
                        (65, -5), (80, 5), (92, 8), (100, 2)]),
    "toe": _periodic([(0, 5), (25, 5), (32, 25), (38, 35), (45, 10), (60, 5), (100, 5)]),
    "hip_abd": _periodic([(0, -2), (20, -5), (40, -1), (60, 3), (80, 2), (100, -2)]),
}
RUN_STANCE = 0.38  # fraction of the stride a foot is on the floor when running


# --------------------------------------------------------------------------------------------
# Poses (degrees, (J, 3)); helpers write both sides with the same anatomical numbers.


def _set(P: np.ndarray, joint: str, flex=None, abd=None, rot=None) -> None:
    """Set angles of ``joint`` ("lhip", "pelvis") or of both sides ("hip") in P (..., J, 3)."""
    names = [joint] if joint in JOINT_INDEX else [s + joint for s in _SIDES]
    for name in names:
        for k, v in enumerate((flex, abd, rot)):
            if v is not None:
                P[..., _j(name), k] = v


def flat_feet(P: np.ndarray, sides=_SIDES) -> np.ndarray:
    """Set the ankles of ``P`` (..., J, 3) degrees so the soles are level with the floor."""
    rad = np.deg2rad(P)
    for s in sides:
        dorsi, inversion = body_mod.level_ankle(rad, s)
        P[..., _j(s + "ankle"), 0] = np.rad2deg(dorsi)
        P[..., _j(s + "ankle"), 1] = np.rad2deg(inversion)
    return P


def neutral(st: Style) -> np.ndarray:
    """Relaxed standing pose for a style (degrees, (J, 3))."""
    P = np.zeros((NJ, 3))
    P[_j("lumbar")] = (0.3 * st.lean, 0, 0)
    P[_j("thorax_low")] = (0.3 * st.lean, 0, 0)
    P[_j("thorax_up")] = (0.4 * st.lean, 0, 0)
    P[_j("neck")] = (st.head_forward, 0, 0)
    P[_j("head")] = (-0.6 * st.head_forward - st.lean, 0, 0)  # eyes level
    _set(P, "clavicle", 0.0, 4.0)
    _set(P, "shoulder", 2.0, st.arm_abduction, 10.0)
    _set(P, "elbow", st.elbow, 0.0, 20.0)
    _set(P, "wrist", 5.0, 5.0)
    _set(P, "hip", 2.0, st.stance_width, -st.toe_out)
    _set(P, "knee", 3.0)
    return flat_feet(P)


def _legs_pose(P, pelvis_tilt, thigh_world, knee, sides=_SIDES):
    """Set pelvis tilt and legs from the thigh's world pitch (forward from vertical) and knee."""
    P[_j("pelvis"), 0] = pelvis_tilt
    for s in sides:
        P[_j(s + "hip"), 0] = pelvis_tilt + thigh_world
        P[_j(s + "knee"), 0] = knee
    return flat_feet(P)


def _time(T: int, fps: float) -> np.ndarray:
    return np.arange(T) / fps


def _timeline(rng, duration: float, segments):
    """Times and poses for a repeated sequence of (pose_fn, seconds_range) steps until
    ``duration`` is covered. pose_fn(rng) returns a (J, 3) pose; each step ends on its pose."""
    times, poses = [0.0], [segments[0][0](rng)]
    t = 0.0
    while t < duration:
        for pose_fn, (lo, hi) in segments[1:]:
            t += float(rng.uniform(lo, hi))
            times.append(t)
            poses.append(pose_fn(rng))
    return np.array(times), np.array(poses)


# --------------------------------------------------------------------------------------------
# Motion kinds


def _gait_phase(rng, T, fps, freq):
    """Stride phase (cycles) with a slowly drifting rate around ``freq`` Hz."""
    rate = freq * (1.0 + 0.04 * smooth_noise(rng, T, fps, (), 0.2))
    return np.cumsum(rate) / fps + rng.random()


def _foot_flat_window(p, start, end, ramp):
    """1 while the stance foot should lie flat (``start``..``end`` of the stride), ramps of
    ``ramp`` on both sides, 0 elsewhere."""
    return min_jerk((p - start + ramp) / ramp) * (1.0 - min_jerk((p - end) / ramp))


def _keep_stance_flat(A, phase_l, start, end, ramp):
    """Blend each ankle towards the angle that levels the sole during mid-stance, so the stance
    foot does not rock (gait curves and this body's proportions never match exactly)."""
    flat = flat_feet(A.copy())
    for s, ph in (("l", phase_l), ("r", phase_l + 0.5)):
        w = _foot_flat_window(np.mod(ph, 1.0), start, end, ramp)[:, None]
        j = _j(s + "ankle")
        A[:, j, :2] += w * (flat[:, j, :2] - A[:, j, :2])


def _left_support(phase_l, stance):
    """Left foot's share of the support over the stride: 1 in left single stance, 0 in right,
    handed over during double support (stance > 0.5) or at the flight phase (running)."""
    p = np.mod(phase_l, 1.0)
    handover = max(stance - 0.5, 0.0)
    if handover == 0.0:
        return (p < 0.5 - 1e-9).astype(float)
    down = 1.0 - min_jerk((p - 0.5) / handover)  # left toe-off
    up = min_jerk(p / handover)  # left heel strike
    return np.where(p < 0.5, up, np.where(p < 0.5 + handover, down, 0.0))


def _arm_swing(A, phase_l, amplitude, elbow_base, elbow_gain):
    """Arms swing opposite to the legs: the left arm is forward when the right heel strikes."""
    for s, ph in (("l", phase_l), ("r", phase_l + 0.5)):
        swing = -np.cos(2 * np.pi * ph)  # -1 at the same-side heel strike (arm back)
        A[:, _j(s + "shoulder"), 0] += 4.0 + amplitude * swing
        A[:, _j(s + "elbow"), 0] = elbow_base + elbow_gain * (0.5 + 0.5 * swing)


def walking(T, fps, st: Style, rng) -> Clip:
    """Walking: ~0.9 strides/s, Winter's joint-angle curves, arm swing, pelvic rotation/obliquity."""
    freq = 0.92 * st.cadence * rng.uniform(0.93, 1.07)
    phase = _gait_phase(rng, T, fps, freq)
    A = np.repeat(neutral(st)[None], T, axis=0)
    amp = st.stride * rng.uniform(0.9, 1.1)
    for s, ph in (("l", phase), ("r", phase + 0.5)):
        A[:, _j(s + "hip"), 0] = 6.0 + 1.15 * amp * (WALK["hip"](ph) - 8.0)  # tilt + thigh pitch
        A[:, _j(s + "hip"), 1] = st.stance_width * 0.3 + WALK["hip_abd"](ph)
        A[:, _j(s + "knee"), 0] = WALK["knee"](ph) * (0.85 + 0.15 * amp)
        A[:, _j(s + "ankle"), 0] = WALK["ankle"](ph)
        A[:, _j(s + "ankle"), 1] = 0.0
        A[:, _j(s + "toe"), 0] = WALK["toe"](ph)
    w = 2 * np.pi * phase
    A[:, _j("pelvis"), 0] = 4.0 + 1.5 * np.cos(2 * w)
    A[:, _j("pelvis"), 1] = -4.0 * amp * np.sin(w + 0.5)  # swing side drops
    A[:, _j("pelvis"), 2] = -5.0 * amp * np.cos(w)  # the leading leg's side forward
    A[:, _j("thorax_low"), 2] = 4.0 * amp * np.cos(w)  # the chest counter-rotates
    A[:, _j("thorax_up"), 2] = 3.0 * amp * np.cos(w)
    A[:, _j("lumbar"), 0] += -2.0 - 1.0 * np.cos(2 * w)
    A[:, _j("neck"), 2] = -1.5 * amp * np.cos(w)
    _keep_stance_flat(A, phase, 0.09, 0.40, 0.06)
    _arm_swing(A, phase, 18.0 * st.arm_swing * amp, st.elbow + 5.0, 12.0 * st.arm_swing)
    return Clip("walking", fps, A, np.zeros(T), True, np.zeros(T, bool), _left_support(phase, 0.53))


def running(T, fps, st: Style, rng) -> Clip:
    """Jogging/running: ~1.4 strides/s, flight phases, forward lean, flexed swinging arms."""
    freq = 1.42 * st.cadence * rng.uniform(0.93, 1.08)
    phase = _gait_phase(rng, T, fps, freq)
    A = np.repeat(neutral(st)[None], T, axis=0)
    amp = st.stride * rng.uniform(0.85, 1.1)
    for s, ph in (("l", phase), ("r", phase + 0.5)):
        A[:, _j(s + "hip"), 0] = 12.0 + 1.2 * amp * (RUN["hip"](ph) - 15.0)
        A[:, _j(s + "hip"), 1] = RUN["hip_abd"](ph)
        A[:, _j(s + "knee"), 0] = RUN["knee"](ph) * (0.8 + 0.2 * amp)
        A[:, _j(s + "ankle"), 0] = RUN["ankle"](ph)
        A[:, _j(s + "ankle"), 1] = 0.0
        A[:, _j(s + "toe"), 0] = RUN["toe"](ph)
    w = 2 * np.pi * phase
    lean = 6.0 + rng.uniform(0, 5)
    A[:, _j("pelvis"), 0] = 8.0 + 2.0 * np.cos(2 * w)
    A[:, _j("pelvis"), 1] = -5.0 * np.sin(w + 0.4)
    A[:, _j("pelvis"), 2] = -7.0 * amp * np.cos(w)
    A[:, _j("lumbar"), 0] = lean * 0.4 - 4.0
    A[:, _j("thorax_low"), 0] = lean * 0.3
    A[:, _j("thorax_low"), 2] = 6.0 * amp * np.cos(w)
    A[:, _j("thorax_up"), 2] = 5.0 * amp * np.cos(w)
    A[:, _j("neck"), 0] = st.head_forward - 2.0
    A[:, _j("head"), 0] = -lean - 0.5 * st.head_forward
    _arm_swing(A, phase, 30.0 * st.arm_swing, 80.0 + rng.uniform(-10, 15), 20.0)
    A[:, _j("lshoulder"), 1] = A[:, _j("rshoulder"), 1] = 12.0
    A[:, _j("lshoulder"), 2] = A[:, _j("rshoulder"), 2] = 25.0
    _keep_stance_flat(A, phase, 0.08, 0.22, 0.05)
    p = np.mod(phase, 1.0)
    flight = ~((p < RUN_STANCE) | ((p >= 0.5) & (p < 0.5 + RUN_STANCE)))
    return Clip("running", fps, A, np.zeros(T), True, flight, _left_support(phase + (0.5 - RUN_STANCE) / 2, 0.5))


def sitting(T, fps, st: Style, rng) -> Clip:
    """Sitting down on a chair, staying seated with small movements, standing up again."""
    base = neutral(st)
    tempo = st.tempo

    def stand(rng):
        return base.copy()

    def seated(rng):
        P = base.copy()
        _legs_pose(P, rng.uniform(-15, -5), rng.uniform(85, 95), rng.uniform(80, 100))
        _set(P, "hip", abd=rng.uniform(4, 12))
        P[_j("lumbar"), 0] = rng.uniform(0, 10)
        P[_j("thorax_low"), 0] = rng.uniform(0, 8)
        P[_j("head"), 2] = rng.uniform(-25, 25)
        for s in _SIDES:  # hands on the thighs or in the lap
            _set(P, s + "shoulder", rng.uniform(15, 35), rng.uniform(5, 15), rng.uniform(20, 40))
            _set(P, s + "elbow", rng.uniform(50, 80), None, rng.uniform(40, 80))
        return flat_feet(P)

    def lowering(rng):  # halfway down: trunk leant forward to bring the weight over the feet
        P = base.copy()
        _legs_pose(P, rng.uniform(30, 45), rng.uniform(20, 35), rng.uniform(50, 65))
        P[_j("lumbar"), 0] = rng.uniform(10, 20)
        P[_j("neck"), 0] = -10
        _set(P, "shoulder", rng.uniform(20, 40), 10)
        _set(P, "elbow", 30)
        return flat_feet(P)

    t = 0.0
    times, poses = [0.0], [stand(rng)]
    while t < T / fps:
        for fn, lo, hi in ((stand, 0.8, 2.0), (lowering, 0.7, 1.0), (seated, 0.6, 0.9),
                           (seated, 1.0, 2.5), (seated, 1.0, 2.5), (lowering, 0.7, 1.0),
                           (stand, 0.6, 0.9)):
            t += rng.uniform(lo, hi) / tempo
            times.append(t)
            poses.append(fn(rng))
    A = keyframes(np.array(times), np.array(poses), _time(T, fps))
    return Clip("sitting", fps, A, np.zeros(T), False, np.zeros(T, bool))


def squatting(T, fps, st: Style, rng) -> Clip:
    """Repeated deep squats (heels may rise when the ankles run out of dorsiflexion)."""
    base = neutral(st)

    def stand(rng):
        return base.copy()

    def squat(rng):
        P = base.copy()
        depth = rng.uniform(0.6, 1.0)
        _legs_pose(P, 10 + 15 * depth, 45 + 55 * depth, 50 + 75 * depth)
        _set(P, "hip", abd=rng.uniform(8, 18), rot=-st.toe_out - rng.uniform(0, 10))
        P[_j("lumbar"), 0] = 10 * depth
        P[_j("thorax_low"), 0] = 5 * depth
        P[_j("neck"), 0] = -10 * depth
        _set(P, "shoulder", rng.uniform(60, 95), rng.uniform(5, 15), 0)
        _set(P, "elbow", rng.uniform(5, 30))
        return flat_feet(P)

    times, poses = _timeline(rng, T / fps, [(stand, None), (stand, (0.5, 1.5)), (squat, (1.0, 1.6)),
                                            (squat, (0.3, 1.2)), (stand, (1.0, 1.5))])
    A = keyframes(times / st.tempo, poses, _time(T, fps))
    return Clip("squatting", fps, A, np.zeros(T), False, np.zeros(T, bool))


def bending(T, fps, st: Style, rng) -> Clip:
    """Bending down to pick something up from the floor and straightening again."""
    base = neutral(st)

    def stand(rng):
        return base.copy()

    def bent(rng):
        P = base.copy()
        tilt = rng.uniform(45, 65)
        _legs_pose(P, tilt, rng.uniform(-2, 8), rng.uniform(8, 25))
        P[_j("lumbar"), 0] = rng.uniform(25, 40)
        P[_j("thorax_low"), 0] = rng.uniform(10, 20)
        P[_j("thorax_up"), 0] = rng.uniform(5, 12)
        P[_j("neck"), 0] = -15
        P[_j("head"), 0] = -10
        arm = "r" if st.right_handed else "l"
        _set(P, "shoulder", rng.uniform(70, 95), 10, 10)
        _set(P, arm + "shoulder", rng.uniform(95, 115))
        _set(P, "elbow", rng.uniform(5, 25))
        P[_j("lumbar"), 2] = rng.uniform(-8, 8)
        return P

    times, poses = _timeline(rng, T / fps, [(stand, None), (stand, (0.6, 1.5)), (bent, (1.0, 1.5)),
                                            (bent, (0.4, 1.0)), (stand, (1.0, 1.5))])
    A = keyframes(times / st.tempo, poses, _time(T, fps))
    return Clip("bending", fps, A, np.zeros(T), False, np.zeros(T, bool))


def reaching(T, fps, st: Style, rng) -> Clip:
    """Reaching to targets high up (on tiptoe), in front and to the side, one arm at a time."""
    base = neutral(st)

    def rest(rng):
        return base.copy()

    def reach(rng):
        P = base.copy()
        side = ("r" if st.right_handed else "l") if rng.random() < 0.7 else ("l" if st.right_handed else "r")
        other = "l" if side == "r" else "r"
        sign = 1.0 if side == "l" else -1.0  # bending/turning towards the reaching side
        kind = rng.choice(["high", "forward", "side", "both_high"])
        if kind in ("high", "both_high"):
            _set(P, side + "shoulder", rng.uniform(150, 172), rng.uniform(5, 25), rng.uniform(-10, 10))
            if kind == "both_high":
                _set(P, other + "shoulder", rng.uniform(145, 170), rng.uniform(5, 25), 0)
                _set(P, other + "elbow", rng.uniform(5, 20))
            P[_j("thorax_up"), 0] = -5
            P[_j("neck"), 0] = -15
            P[_j("head"), 0] = -15
            P[_j("lumbar"), 1] = -sign * rng.uniform(0, 8)
            if rng.random() < 0.6:  # on tiptoe
                _set(P, "ankle", -rng.uniform(20, 30))
                _set(P, "toe", rng.uniform(30, 45))
                return P
        elif kind == "forward":
            _set(P, side + "shoulder", rng.uniform(75, 100), rng.uniform(0, 15), rng.uniform(-10, 20))
            P[_j("pelvis"), 0] = rng.uniform(5, 20)
            P[_j("lumbar"), 0] = rng.uniform(5, 20)
            P[_j("thorax_low"), 2] = sign * rng.uniform(5, 15)
            P[_j("neck"), 0] = -5
        else:
            _set(P, side + "shoulder", rng.uniform(10, 40), rng.uniform(70, 100), rng.uniform(-20, 10))
            P[_j("lumbar"), 1] = sign * rng.uniform(5, 15)
            P[_j("thorax_low"), 1] = sign * rng.uniform(3, 10)
            P[_j("pelvis"), 1] = -sign * rng.uniform(2, 6)
            P[_j("neck"), 2] = sign * rng.uniform(10, 30)
        _set(P, side + "elbow", rng.uniform(3, 20), None, rng.uniform(40, 80))
        _set(P, side + "wrist", rng.uniform(-20, 10))
        _set(P, side + "clavicle", rng.uniform(10, 25), rng.uniform(5, 15))
        return flat_feet(P)

    times, poses = [0.0], [rest(rng)]
    t = 0.0
    while t < T / fps * st.tempo:
        target = reach(rng)
        for pose, dt in ((rest(rng), rng.uniform(0.3, 1.0)), (target, rng.uniform(0.6, 1.0)),
                         (target, rng.uniform(0.3, 0.8)), (rest(rng), rng.uniform(0.6, 1.0))):
            t += dt
            times.append(t)
            poses.append(pose)
    times, poses = np.array(times), np.array(poses)
    A = keyframes(times / st.tempo, poses, _time(T, fps))
    return Clip("reaching", fps, A, np.zeros(T), False, np.zeros(T, bool))


def _gesture_arm(P, rng, side, energy):
    kind = rng.random()
    if kind < 0.55:  # hands in front of the chest, palms in or up
        _set(P, side + "shoulder", rng.uniform(15, 50) * energy, rng.uniform(5, 30), rng.uniform(20, 45))
        _set(P, side + "elbow", rng.uniform(70, 110), None, rng.uniform(-20, 60))
        _set(P, side + "wrist", rng.uniform(-20, 30), rng.uniform(-10, 20))
    elif kind < 0.75:  # pointing
        _set(P, side + "shoulder", rng.uniform(60, 95), rng.uniform(0, 40), rng.uniform(-10, 20))
        _set(P, side + "elbow", rng.uniform(5, 25), None, rng.uniform(40, 80))
    elif kind < 0.85:  # open arms
        _set(P, side + "shoulder", rng.uniform(20, 40), rng.uniform(30, 60) * energy, rng.uniform(-30, 0))
        _set(P, side + "elbow", rng.uniform(30, 60), None, rng.uniform(-60, -20))
    # else: hanging


def gesturing(T, fps, st: Style, rng) -> Clip:
    """Talking with the hands (discussion, directions): arm gestures, nods, weight shifts."""
    base = neutral(st)

    def pose(rng):
        P = base.copy()
        for s in _SIDES:
            if rng.random() < 0.75:
                _gesture_arm(P, rng, s, st.energy)
        P[_j("neck"), 0] += rng.uniform(-8, 8)
        P[_j("neck"), 2] = rng.uniform(-25, 25)
        P[_j("head"), 1] = rng.uniform(-6, 6)
        P[_j("thorax_low"), 2] = rng.uniform(-8, 8)
        shift = rng.uniform(-5, 5)  # weight on one leg
        P[_j("pelvis"), 1] = shift
        _set(P, "lhip", abd=st.stance_width - shift)
        _set(P, "rhip", abd=st.stance_width + shift)
        knee = "lknee" if shift > 0 else "rknee"
        _set(P, knee, abs(shift) * 2)
        return flat_feet(P)

    times, poses = _timeline(rng, T / fps, [(pose, None), (pose, (0.5, 1.4))])
    A = keyframes(times / st.tempo, poses, _time(T, fps))
    t = _time(T, fps)
    gate = np.clip(smooth_noise(rng, T, fps, (), 0.3) - 0.6, 0.0, 1.0)  # nod now and then
    nod = np.sin(2 * np.pi * rng.uniform(1.5, 2.5) * t) * gate
    A[:, _j("head"), 0] += 6.0 * nod
    heading = np.deg2rad(25.0) * smooth_noise(rng, T, fps, (), 0.08)
    return Clip("gesturing", fps, A, heading, False, np.zeros(T, bool))


def waving(T, fps, st: Style, rng) -> Clip:
    """Greeting: raising one arm and waving (2-3 Hz forearm sweeps), then lowering it."""
    base = neutral(st)
    t = _time(T, fps)
    times, raised, sides = [0.0], [0.0], []
    cur = 0.0
    while cur < T / fps:
        cur += rng.uniform(0.5, 1.5)
        times += [cur, cur + rng.uniform(0.4, 0.7)]
        raised += [0.0, 1.0]
        cur = times[-1] + rng.uniform(1.2, 3.0)
        times += [cur, cur + rng.uniform(0.4, 0.7)]
        raised += [1.0, 0.0]
        cur = times[-1]
        sides.append(("r" if st.right_handed else "l") if rng.random() < 0.8 else ("l" if st.right_handed else "r"))
    level = keyframes(np.array(times), np.array(raised), t)
    # which arm waves during each raise (switches while the arm is down)
    wave_index = np.clip(np.searchsorted(np.array(times[1::4]), t, side="right") - 1, 0, len(sides) - 1)
    is_left = np.array([s == "l" for s in sides])[wave_index]
    A = np.repeat(base[None], T, axis=0)
    freq = rng.uniform(2.0, 3.0)
    sweep = np.sin(2 * np.pi * freq * t) * rng.uniform(15, 25) * st.energy
    abd, flex, elbow = rng.uniform(95, 130), rng.uniform(10, 30), rng.uniform(70, 100)
    for s, mask in (("l", is_left), ("r", ~is_left)):
        g = level * mask
        j = _j(s + "shoulder")
        A[:, j, 0] += g * (flex - A[:, j, 0])
        A[:, j, 1] += g * (abd - A[:, j, 1])
        A[:, j, 2] += g * (-60.0 + sweep - A[:, j, 2])  # external rotation puts the forearm up
        j = _j(s + "elbow")
        A[:, j, 0] += g * (elbow + 0.3 * sweep - A[:, j, 0])
        A[:, j, 2] += g * (-40.0 - A[:, j, 2])  # palm forward
        A[:, _j(s + "clavicle"), 0] += g * 15.0
        A[:, _j("neck"), 2] += g * (10.0 if s == "l" else -10.0)
        A[:, _j("lumbar"), 1] += g * (-4.0 if s == "l" else 4.0)
    heading = np.deg2rad(20.0) * smooth_noise(rng, T, fps, (), 0.08)
    return Clip("waving", fps, A, heading, False, np.zeros(T, bool))


def _stepping(A, phase, lift):
    """Alternate stepping on the spot with ``lift`` (T,) in [0, 1] scaling the step height."""
    for s, ph in (("l", phase), ("r", phase + 0.5)):
        p = np.mod(ph, 1.0)
        swing = np.clip((p - 0.5) / 0.5, 0.0, 1.0)  # swing in the second half of each leg's cycle
        bump = np.sin(np.pi * swing) ** 2 * lift
        A[:, _j(s + "hip"), 0] += 30.0 * bump
        A[:, _j(s + "knee"), 0] += 50.0 * bump
        A[:, _j(s + "ankle"), 0] += -10.0 * bump


def turning(T, fps, st: Style, rng) -> Clip:
    """Turning on the spot: stepping around by 90-180 degrees, pausing, turning back."""
    t = _time(T, fps)
    times, yaw = [0.0], [0.0]
    cur = 0.0
    while cur < T / fps:
        cur += rng.uniform(0.3, 1.2)
        times.append(cur)
        yaw.append(yaw[-1])
        cur += rng.uniform(1.2, 2.4) / st.tempo
        times.append(cur)
        yaw.append(yaw[-1] + rng.choice([-1, 1]) * rng.uniform(90, 200))
    heading_deg = keyframes(np.array(times), np.array(yaw), t)
    rate = np.abs(np.gradient(heading_deg, 1.0 / fps))
    lift = np.clip(gaussian_filter1d(rate, fps * 0.15) / 80.0, 0.0, 1.0)
    A = np.repeat(neutral(st)[None], T, axis=0)
    phase = _gait_phase(rng, T, fps, 0.85 * st.cadence)
    _stepping(A, phase, lift)
    A[:, _j("neck"), 2] += np.clip(np.gradient(heading_deg, 1.0 / fps) * 0.15, -30, 30)  # look into the turn
    _arm_swing(A, phase, 8.0 * lift, st.elbow + 5.0, 10.0 * lift)
    return Clip("turning", fps, A, np.deg2rad(heading_deg), False, np.zeros(T, bool))


def dancing(T, fps, st: Style, rng) -> Clip:
    """Dancing to a beat (100-130 bpm): step-touch with knee bounce, hip sway, arm patterns, spins."""
    t = _time(T, fps)
    beat = rng.uniform(100, 130) / 60.0
    phase = t * beat / 2.0 + rng.random()  # one stepping cycle = two beats
    A = np.repeat(neutral(st)[None], T, axis=0)
    e = st.energy
    bounce = 0.5 - 0.5 * np.cos(2 * np.pi * beat * t)
    _set(A, "knee", flex=A[:, _j("lknee"), 0] + 12.0 * e * bounce)
    _set(A, "hip", flex=A[:, _j("lhip"), 0] + 8.0 * e * bounce)
    sway = np.sin(2 * np.pi * phase)
    A[:, _j("pelvis"), 1] = 6.0 * e * sway
    A[:, _j("lhip"), 1] = st.stance_width + 6.0 - 6.0 * e * sway
    A[:, _j("rhip"), 1] = st.stance_width + 6.0 + 6.0 * e * sway
    A[:, _j("lumbar"), 1] = -4.0 * e * sway
    A[:, _j("thorax_low"), 2] = 10.0 * e * np.sin(2 * np.pi * phase + 1.0)
    A[:, _j("neck"), 0] += 5.0 * bounce
    flat_feet(A)
    _stepping(A, phase, np.full(T, 0.5 * e))
    # arm patterns, switched every few bars with smooth blends
    n_patterns = 4
    switch_times = np.cumsum(rng.uniform(2.0, 4.0, int(T / fps / 2) + 2))
    choice = rng.integers(0, n_patterns, len(switch_times) + 1)
    weights = np.zeros((T, n_patterns))
    for k in range(n_patterns):
        key = (choice == k).astype(float)
        weights[:, k] = keyframes(np.concatenate([[0.0], switch_times]), key[:len(switch_times) + 1], t)
    weights /= np.maximum(weights.sum(1, keepdims=True), 1e-6)
    w = 2 * np.pi * phase
    arms = np.zeros((n_patterns, T, 2, 3))  # pattern, time, side, (shoulder flex, abd, elbow)
    arms[0, :, 0] = np.stack([30 + 35 * np.sin(w), 15 + 0 * w, 70 + 20 * np.sin(w)], -1)  # swing
    arms[0, :, 1] = np.stack([30 - 35 * np.sin(w), 15 + 0 * w, 70 - 20 * np.sin(w)], -1)
    up = 0.5 + 0.5 * np.sin(2 * w)
    arms[1, :, 0] = np.stack([30 + 0 * w, 60 + 80 * up, 40 + 40 * up], -1)  # arms up and down
    arms[1, :, 1] = arms[1, :, 0]
    pump = 0.5 + 0.5 * np.sin(2 * np.pi * beat * t)
    arms[2, :, 0] = np.stack([20 + 0 * w, 15 + 0 * w, 90 + 0 * w], -1)  # one fist pumping
    arms[2, :, 1] = np.stack([100 + 50 * pump, 20 + 0 * w, 30 + 40 * pump], -1)
    arms[3, :, :] = np.stack([60 + 0 * w, 10 + 0 * w, 100 + 0 * w], -1)[:, None]  # hands in front
    mix = np.einsum("tk,ktsc->tsc", weights, arms)
    for i, s in enumerate(_SIDES):
        A[:, _j(s + "shoulder"), 0] = mix[:, i, 0] * e
        A[:, _j(s + "shoulder"), 1] = mix[:, i, 1]
        A[:, _j(s + "shoulder"), 2] = 20.0
        A[:, _j(s + "elbow"), 0] = mix[:, i, 2]
    # slow spins and turns
    times, yaw = [0.0], [0.0]
    cur = 0.0
    while cur < T / fps:
        cur += rng.uniform(1.0, 3.0)
        times += [cur, cur + rng.uniform(1.0, 2.5)]
        yaw += [yaw[-1], yaw[-1] + rng.choice([-1, 1]) * rng.uniform(45, 360)]
        cur = times[-1]
    heading = np.deg2rad(keyframes(np.array(times), np.array(yaw), t))
    return Clip("dancing", fps, A, heading, False, np.zeros(T, bool))


def _jump_crouch(base: np.ndarray, rng) -> np.ndarray:
    """The crouch before a jump: knees and hips bent, trunk forward, arms back."""
    P = base.copy()
    _legs_pose(P, rng.uniform(30, 40), rng.uniform(35, 45), rng.uniform(75, 95))
    P[_j("lumbar"), 0] = 10
    P[_j("neck"), 0] = -15
    _set(P, "shoulder", -rng.uniform(30, 50), 10, 0)
    _set(P, "elbow", 15)
    return P


def _jump_takeoff(base: np.ndarray, energy: float, rng) -> np.ndarray:
    """Take-off (and first ground contact): legs extended, on the toes, arms swung up."""
    P = base.copy()
    _legs_pose(P, 5, -8, 5)
    _set(P, "ankle", -rng.uniform(30, 40))
    _set(P, "toe", 30)
    _set(P, "shoulder", rng.uniform(110, 135) * min(energy, 1.1), 15, 0)
    _set(P, "elbow", 15)
    return P


def _jump_airborne(base: np.ndarray, rng) -> np.ndarray:
    """Mid-flight: knees drawn up a little, feet pointed, arms high."""
    P = base.copy()
    _legs_pose(P, 5, rng.uniform(5, 25), rng.uniform(15, 45))
    _set(P, "ankle", -rng.uniform(15, 30))
    _set(P, "shoulder", rng.uniform(110, 140), 20, 0)
    _set(P, "elbow", 20)
    return P


def _jump_landing(base: np.ndarray, rng) -> np.ndarray:
    """Landing: the knees absorb the impact, arms in front."""
    P = base.copy()
    _legs_pose(P, rng.uniform(15, 25), rng.uniform(20, 30), rng.uniform(45, 60))
    _set(P, "shoulder", rng.uniform(80, 110), 20, 0)
    _set(P, "elbow", 25)
    return P


def _jump_keyframes(base: np.ndarray, energy: float, seconds: float, rng):
    """Key times (s), key poses (each (J, 3) degrees like ``base``) and flight spans (start, end) s of whole jumps
    filling ``seconds`` (at least one jump; standing still at the end)."""
    times, poses, flight_spans = [0.0], [base.copy()], []
    cur = 0.0
    while cur < seconds - 2.8 or not flight_spans:
        arms_back = _jump_crouch(base, rng)  # on the way down the arms go back ...
        bottom = _jump_crouch(base, rng)  # ... and already swing forward at the bottom
        arms_back = 0.4 * base + 0.6 * arms_back
        _set(arms_back, "shoulder", flex=-rng.uniform(35, 50))
        _set(bottom, "shoulder", flex=rng.uniform(0, 20))
        steps = [(base.copy(), rng.uniform(0.5, 1.5)), (arms_back, rng.uniform(0.25, 0.35)),
                 (bottom, rng.uniform(0.18, 0.25)), (_jump_takeoff(base, energy, rng), rng.uniform(0.3, 0.38))]
        for P, dt in steps:
            cur += dt
            times.append(cur)
            poses.append(P)
        air = rng.uniform(0.3, 0.45) * min(energy, 1.2)
        flight_spans.append((cur, cur + air))
        times += [cur + 0.45 * air, cur + air]
        poses += [_jump_airborne(base, rng), _jump_takeoff(base, energy, rng)]
        cur += air
        for P, dt in ((_jump_landing(base, rng), rng.uniform(0.15, 0.22)), (base.copy(), rng.uniform(0.6, 0.9))):
            cur += dt
            times.append(cur)
            poses.append(P)
    return times, poses, flight_spans


def jumping(T, fps, st: Style, rng) -> Clip:
    """Countermovement jumps on the spot: crouch with arms back, take off with an arm swing,
    fly (~0.3-0.45 s), land absorbing with the knees, recover."""
    times, poses, flight_spans = _jump_keyframes(neutral(st), st.energy, T / fps, rng)
    t = _time(T, fps)
    A = keyframes(np.array(times), np.array(poses), t)
    flight = np.zeros(T, bool)
    for a, b in flight_spans:
        flight |= (t > a) & (t < b)
    heading = np.deg2rad(15.0) * smooth_noise(rng, T, fps, (), 0.05)
    return Clip("jumping", fps, A, heading, False, flight)


ACTIONS = {
    "walking": walking,
    "running": running,
    "sitting": sitting,
    "squatting": squatting,
    "bending": bending,
    "reaching": reaching,
    "gesturing": gesturing,
    "waving": waving,
    "turning": turning,
    "dancing": dancing,
    "jumping": jumping,
}
"""Motion kinds: name -> generator(T, fps, style, rng) -> Clip."""

# per-joint standard deviation (degrees) of each take's slow random deviation from the script
_NOISE_SD = np.full((NJ, 3), 1.5)
for _name in ("lshoulder", "rshoulder", "lelbow", "relbow"):
    _NOISE_SD[_j(_name)] = 3.0
for _name in ("lwrist", "rwrist", "neck", "head"):
    _NOISE_SD[_j(_name)] = 3.0
for _name in ("lknee", "rknee", "lankle", "rankle", "ltoe", "rtoe"):
    _NOISE_SD[_j(_name)] = 1.0
# ... and at full ``variation``: people who do the motion their own way (a twisted or bent trunk,
# one arm raised while walking, arms across the body in a lunge, a wider or narrower stance);
# the feet keep their scripted contact with the floor (ankles and toes as above)
_WIDE_SD = _NOISE_SD.copy()
for _name in ("lumbar", "thorax_low", "thorax_up", "neck", "head", "lclavicle", "rclavicle",
              "lshoulder", "rshoulder", "lelbow", "relbow", "lwrist", "rwrist"):
    _WIDE_SD[_j(_name)] *= 15.0  # trunk 22 degrees, arms 45
for _name in ("lhip", "rhip", "lknee", "rknee"):
    _WIDE_SD[_j(_name)] *= 6.0  # hips 9 degrees, knees 6


def generate_clip(action: str, seconds: float, fps: float, style: Style,
                  rng: np.random.Generator, variation: float = 0.0) -> Clip:
    """Joint angles of one take of ``action`` (a key of ``ACTIONS``), clamped to joint limits.

    Each take strays slowly (below 0.4 Hz) from its motion kind's script: by a few degrees at
    ``variation`` 0 (``_NOISE_SD``), by tens of degrees in the trunk and arms at 1 (``_WIDE_SD``),
    linearly in between; the random draws do not depend on ``variation``.
    """
    T = max(int(round(seconds * fps)), 2)
    clip = ACTIONS[action](T, float(fps), style, rng)
    script = body_mod.clamp_angles(np.deg2rad(clip.angles))
    sd = _NOISE_SD + variation * (_WIDE_SD - _NOISE_SD)
    noisy = body_mod.clamp_angles(script + np.deg2rad(sd) * smooth_noise(rng, T, fps, (NJ, 3), 0.4))
    # the noise moves the legs; keep each foot's orientation to the floor as scripted
    clip.angles = body_mod.clamp_angles(_keep_feet_attitude(script, noisy))
    return clip


def _keep_feet_attitude(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """``after`` (T, J, 3) radians with its ankles changed so that each foot keeps the attitude to
    the floor it had in ``before`` (a level stance foot stays level when the legs above move)."""
    out = after.copy()
    for s in _SIDES:
        j = _j(s + "ankle")
        for k, (old, new) in enumerate(zip(body_mod.level_ankle(before, s), body_mod.level_ankle(after, s))):
            out[:, j, k] = before[:, j, k] + (new - old)
    return out


# --------------------------------------------------------------------------------------------
# Performance: the clip in the world


def _yaw_matrices(yaw: np.ndarray) -> np.ndarray:
    return body_mod.axis_rotation(2, yaw)


def _plan_path(rng, T, fps, speed, radius):
    """Yaw (T,) radians along a closed path for a walker at ``speed`` mm/s in a disc of ``radius``."""
    kind = rng.choice(["circle", "oval", "figure8"])
    direction = rng.choice([-1.0, 1.0])
    v = max(speed, 1.0)
    if kind == "circle":
        omega = np.full(T, direction * v / (rng.uniform(0.55, 0.85) * radius))
    else:
        r = rng.uniform(0.35, 0.5) * radius
        straight = rng.uniform(0.6, 1.0) * radius / v if kind == "oval" else 0.0
        turn = (np.pi if kind == "oval" else 2 * np.pi) * r / v
        period = straight + turn
        tt = np.mod(np.arange(T) / fps + rng.uniform(0, period), 2 * period)
        in_turn = np.mod(tt, period) >= straight
        sign = np.where((tt < period) | (kind == "oval"), 1.0, -1.0)  # figure eight: alternate
        omega = direction * sign * in_turn * v / r
        omega = gaussian_filter1d(omega, 0.15 * fps, mode="nearest")
    return np.cumsum(omega) / fps


def _absorb_heading(angles: np.ndarray, yaw: np.ndarray, contact_z: np.ndarray, threshold: float) -> np.ndarray:
    """Hip rotations that keep planted feet from spinning while the heading ``yaw`` (T,) turns.

    A foot is planted while its lowest sole point is within ``threshold`` mm of the floor
    (``contact_z`` (T, 6) heights above it, left foot first). While planted, its hip rotates by
    the heading change since touch-down; in the air the rotation eases back to zero.
    """
    if np.ptp(yaw) < 1e-6:
        return angles
    out = angles.copy()
    T = len(yaw)
    t = np.arange(T)
    for side, foot, sign in (("l", slice(0, 3), 1.0), ("r", slice(3, 6), -1.0)):
        planted = contact_z[:, foot].min(axis=1) < threshold
        turn = np.zeros(T)
        runs = true_runs(planted)
        keys_t, keys_v = [], []
        for a, b in runs:
            turn[a:b] = yaw[a:b] - yaw[a]
            keys_t += [a, b - 1]
            keys_v += [0.0, turn[b - 1]]
        if not runs:
            continue
        # in the air: ease from the last planted value back to zero by the next touch-down
        air = ~planted
        if air.any():
            k = np.clip(np.searchsorted(np.array(keys_t), t, side="right") - 1, 0, len(keys_t) - 1)
            nxt = np.minimum(k + 1, len(keys_t) - 1)
            span = np.maximum(np.array(keys_t)[nxt] - np.array(keys_t)[k], 1)
            frac = min_jerk((t - np.array(keys_t)[k]) / span)
            last = np.array(keys_v)[k]
            eased = last * (1.0 - frac)
            eased[t > keys_t[-1]] = keys_v[-1]
            turn[air] = eased[air]
        out[:, _j(side + "hip"), 2] += sign * turn
    out = body_mod.clamp_angles(out)
    return _keep_feet_attitude(angles, out)


def _floor_height(contact: np.ndarray, flight: np.ndarray, fps: float) -> np.ndarray:
    """Root height (T,) putting the lowest sole point on the floor; ballistic arcs in flight."""
    ground = -contact[..., 2].min(axis=1)
    height = ground.copy()
    T = len(ground)
    for a, b in true_runs(flight):
        if a == 0 or b >= T:  # cut by the clip's ends: keep the height at the take-off/landing
            edge = ground[a - 1] if a > 0 else ground[min(b, T - 1)]
            height[a:b] = np.maximum(ground[a:b], edge)
            continue
        t0, t1 = (a - 1) / fps, b / fps
        tt = np.arange(a, b) / fps
        line = ground[a - 1] + (ground[b] - ground[a - 1]) * (tt - t0) / (t1 - t0)
        height[a:b] = np.maximum(line + 0.5 * GRAVITY * (tt - t0) * (t1 - tt), ground[a:b])
    return height


def _support_weights(contact_z: np.ndarray, support: np.ndarray | None, tau: float) -> np.ndarray:
    """(T, 6) weights of the sole points holding the body: a soft minimum by height, within the
    scripted supporting foot when the clip knows it."""
    z = contact_z
    if support is None:
        w = np.exp(-(z - z.min(axis=1, keepdims=True)) / tau)
    else:
        w = np.empty_like(z)
        for foot, share in ((slice(0, 3), support), (slice(3, 6), 1.0 - support)):
            wf = np.exp(-(z[:, foot] - z[:, foot].min(axis=1, keepdims=True)) / tau)
            w[:, foot] = wf * (share / wf.sum(axis=1))[:, None]
    return w / w.sum(axis=1, keepdims=True)


def _root_steps(contact: np.ndarray, weights: np.ndarray, yaw: np.ndarray, flight: np.ndarray,
                fps: float) -> np.ndarray:
    """Horizontal root displacement per frame (T-1, 2) that keeps the supporting points still."""
    p = np.einsum("tij,tkj->tki", _yaw_matrices(yaw)[:, :2, :2], contact[..., :2])
    wbar = 0.5 * (weights[1:] + weights[:-1])[..., None]
    steps = -(wbar * (p[1:] - p[:-1])).sum(axis=1)
    n = len(steps)
    for a, b in true_runs(flight[1:]):  # no support in flight: carry the momentum across
        lo, hi = max(a - 1, 0), min(b, n - 1)
        if a == 0:
            lo = hi
        if b >= n:
            hi = lo
        steps[a:b] = np.linspace(steps[lo], steps[hi], b - a + 2)[1:-1]
    return steps


def perform(body: body_mod.Body, clip: Clip, rng: np.random.Generator,
            centre=(0.0, 0.0), radius: float = 1500.0) -> tuple[np.ndarray, np.ndarray]:
    """Place a clip in the world: segment origins (T, S, 3) mm and rotations (T, S, 3, 3).

    The lowest sole point touches the floor (z = 0) except in flight; the supporting foot does
    not slide or spin; travelling clips follow a closed path and every take stays within
    ``radius`` mm of ``centre`` (the capture volume) as far as its path allows.
    """
    T, fps = clip.frames, clip.fps
    zero = np.zeros((T, 3))
    tau = 0.0005 * body.height
    contact_names = body_mod.CONTACT_POINTS if clip.floor == "feet" else BODY_CONTACT_POINTS
    tilt = None if clip.tilt is None else tilt_rotation(clip.tilt)

    def pose(angles):
        local = body_mod.local_rotations(angles)
        root = local[:, 0] if tilt is None else tilt @ local[:, 0]
        pos, rot = body_mod.forward_kinematics(body, zero, root, local)
        return pos, rot, body_mod.landmarks(body, pos, rot, contact_names)

    pos0, rot0, contact = pose(clip.angles)
    yaw = rng.uniform(-np.pi, np.pi) + clip.heading
    if clip.travels:
        w = _support_weights(contact[..., 2], clip.support, tau)
        steps = _root_steps(contact, w, np.zeros(T), clip.flight, fps)
        speed = float(np.linalg.norm(steps.mean(axis=0)) * fps)
        yaw = yaw + _plan_path(rng, T, fps, speed, radius)

    # planted feet do not spin with the heading: the stance hips turn instead (as far as they can)
    soles = contact[:, :6, 2]
    lifted = soles - soles.min(axis=1, keepdims=True)
    # the pelvis' own rotation (gait) turns the feet too
    turning = yaw + clip.angles[:, 0, 2] * body_mod.JOINT_SIGNS[0, 2]
    angles = clip.angles
    if clip.floor == "feet":  # floor work turns the whole body, not the planted feet
        angles = _absorb_heading(clip.angles, turning, lifted, 0.003 * body.height)
    if angles is not clip.angles:
        pos0, rot0, contact = pose(angles)

    height = _floor_height(contact, clip.flight, fps)
    w = _support_weights(contact[..., 2], clip.support, tau)
    steps = _root_steps(contact, w, yaw, clip.flight, fps) if not clip.anchored else np.zeros((T - 1, 2))
    xy = np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])

    # centre the take's path in the capture volume, with a random offset where room is left
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    half = 0.5 * float(np.linalg.norm(hi - lo))
    room = max(radius - half - 300.0, 0.0)
    offset = room * np.sqrt(rng.random()) * np.array(_unit(rng.uniform(0, 2 * np.pi)))
    xy = xy - 0.5 * (lo + hi) + np.asarray(centre, dtype=float)[:2] + offset

    R_yaw = _yaw_matrices(yaw)
    root = np.concatenate([xy, height[:, None]], axis=1)
    seg_pos = np.einsum("tij,tsj->tsi", R_yaw, pos0) + root[:, None]
    seg_rot = np.einsum("tij,tsjk->tsik", R_yaw, rot0)
    return seg_pos, seg_rot


BODY_CONTACT_POINTS = body_mod.CONTACT_POINTS + tuple(n for n in body_mod.LANDMARKS
                                                     if n not in body_mod.CONTACT_POINTS)
"""Every landmark, the soles first: what can touch the floor in floor work (``Clip.floor``)."""


def tilt_rotation(tilt: np.ndarray) -> np.ndarray:
    """Whole-body orientations (T, 3, 3) = R_y(pitch) R_x(roll) R_z(spin) from ``tilt`` (T, 3)
    radians: pitch +90 degrees lies face down, -90 face up, 180 stands on the head; roll turns
    the body over its right side (a cartwheel); spin turns it about its own long axis."""
    return (body_mod.axis_rotation(1, tilt[:, 0]) @ body_mod.axis_rotation(0, tilt[:, 1])
            @ body_mod.axis_rotation(2, tilt[:, 2]))


def _unit(angle: float) -> tuple[float, float]:
    return float(np.cos(angle)), float(np.sin(angle))
