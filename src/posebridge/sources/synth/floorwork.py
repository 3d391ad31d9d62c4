"""Motion kinds beyond upright everyday movement: floor work, martial-arts moves, inversions and
poses drawn at random within the joint limits, so the synthetic benchmark covers more of the
pose space and every body orientation than walking, sitting and gesturing do.

Like the everyday kinds of :mod:`motion`, each kind is a script of key poses (anatomical joint
angles in degrees, clamped to ``body.JOINT_LIMITS`` later by :func:`motion.generate_clip`) joined
by minimum-jerk transitions, plus a whole-body orientation per key (``Clip.tilt``: pitch, roll,
spin in degrees here) for lying, crawling and inverted poses. All of them set
``Clip.floor = "body"``: :func:`motion.perform` rests the lowest landmark of the whole body on
the floor (knees and shins when kneeling, the buttocks when sitting on the floor, the back when
lying, the hands in a handstand), so no body part goes below it, and keeps the supporting points
still (the body rolls over its hands in a cartwheel instead of sliding).

Key poses follow the usual descriptions of the movements (kneeling and floor sitting postures,
the get-up strategies of Schenkman et al. 1996 "Whole-body movements during rising to standing
from sitting"; hands-and-knees crawling as a diagonal-sequence gait, Patrick et al. 2009
"Quadrupedal locomotion in human infants and adults"; front, side, roundhouse and back kicks,
jab, cross, hook and uppercut as taught in martial arts; the overarm throw's wind-up, stride,
trunk rotation, arm acceleration and follow-through as in Fleisig et al. 1996 "Kinematic and
kinetic comparison between baseball pitching and football passing").

Kinds (``ACTIONS``, merged into ``motion.ACTIONS`` by the package's ``__init__``): kneeling,
floor_sitting, lying (lying down and getting up), crawling, kicking, punching, lunging,
throwing, handstand, cartwheel, random_pose.
"""

from __future__ import annotations

import numpy as np

from posebridge.sources.synth import body as body_mod
from posebridge.sources.synth.motion import (NJ, Clip, Style, _gait_phase, _j, _legs_pose, _set, flat_feet,
                                             keyframes, min_jerk, neutral, smooth_noise)

_SIDES = ("l", "r")
_UPRIGHT = (0.0, 0.0, 0.0)


def _other(side: str) -> str:
    return "r" if side == "l" else "l"


def _program(name: str, T: int, fps: float, rng, steps, tempo: float = 1.0, travels: bool = False) -> Clip:
    """A clip from key steps [(pose (J, 3) deg, tilt (3,) deg, seconds to reach it), ...].

    The first step's seconds are ignored (it is where the script starts). A take longer than the
    script holds its last key; a shorter one starts at a random point of it, so the takes of a
    kind cover all of its parts.
    """
    times = np.cumsum([0.0] + [dt / tempo for _, _, dt in steps[1:]])
    poses = np.array([p for p, _, _ in steps])
    tilts = np.array([t for _, t, _ in steps], dtype=float)
    duration = T / fps
    start = rng.uniform(0.0, max(times[-1] - duration, 0.0))
    t = start + np.arange(T) / fps
    angles = keyframes(times, poses, t)
    tilt = np.deg2rad(keyframes(times, tilts, t))
    heading = np.deg2rad(10.0) * smooth_noise(rng, T, fps, (), 0.05)
    return Clip(name, fps, angles, heading, travels, np.zeros(T, bool), tilt=tilt, floor="body")


# --------------------------------------------------------------------------------------------
# Key poses (degrees). Each takes the subject's neutral pose and the generator.


def _guard(P, rng, lead: str) -> None:
    """Fists up in front of the face, elbows in; the lead foot forward, knees soft."""
    _set(P, "shoulder", rng.uniform(35, 55), rng.uniform(10, 25), rng.uniform(25, 45))
    _set(P, "elbow", rng.uniform(110, 135), None, rng.uniform(0, 40))
    _set(P, lead + "hip", rng.uniform(12, 22), None, None)
    _set(P, _other(lead) + "hip", rng.uniform(-12, -4), None, -rng.uniform(15, 30))
    _set(P, "knee", rng.uniform(12, 25))
    P[_j("pelvis"), 2] = (-1 if lead == "l" else 1) * rng.uniform(15, 30)  # side-on stance
    P[_j("thorax_low"), 0] = rng.uniform(0, 8)


def _genuflect(base, rng, side: str):
    """Kneeling on one knee (``side``), the other foot flat in front."""
    P = base.copy()
    front = _other(side)
    _set(P, front + "hip", rng.uniform(80, 95), rng.uniform(0, 10))
    _set(P, front + "knee", rng.uniform(80, 95))
    flat_feet(P, (front,))
    _set(P, side + "hip", rng.uniform(-8, 5), rng.uniform(0, 8))
    _set(P, side + "knee", rng.uniform(95, 110))
    _set(P, side + "ankle", -rng.uniform(10, 25), 0.0)
    _set(P, side + "toe", rng.uniform(50, 65))
    _set(P, front + "shoulder", rng.uniform(30, 50), 10, 20)  # a hand on the front knee
    _set(P, front + "elbow", rng.uniform(40, 70))
    return P


def _kneel_upright(base, rng):
    P = base.copy()
    _set(P, "hip", rng.uniform(-5, 10), rng.uniform(2, 10))
    _set(P, "knee", rng.uniform(95, 112))
    if rng.random() < 0.5:  # toes tucked under, or the insteps on the floor
        _set(P, "ankle", -rng.uniform(10, 25), 0.0)
        _set(P, "toe", rng.uniform(50, 65))
    else:
        _set(P, "ankle", -rng.uniform(40, 50), 0.0)
    _set(P, "shoulder", rng.uniform(-10, 40), rng.uniform(5, 30), rng.uniform(0, 40))
    _set(P, "elbow", rng.uniform(10, 90))
    return P


def _kneel_sit(base, rng):
    """Sitting back on the heels (seiza), hands on the thighs."""
    P = base.copy()
    tilt = rng.uniform(0, 15)
    P[_j("pelvis"), 0] = tilt
    _set(P, "hip", tilt + rng.uniform(70, 85), rng.uniform(3, 12))
    _set(P, "knee", rng.uniform(140, 150))
    _set(P, "ankle", -rng.uniform(40, 50), 0.0)
    P[_j("lumbar"), 0] = -0.6 * tilt
    _set(P, "shoulder", rng.uniform(15, 35), rng.uniform(5, 15), rng.uniform(20, 40))
    _set(P, "elbow", rng.uniform(40, 70))
    return P


def _all_fours(base, rng):
    """On hands and knees: thighs and arms roughly vertical, the back horizontal."""
    P = base.copy()
    _set(P, "hip", rng.uniform(80, 100), rng.uniform(0, 10))
    _set(P, "knee", rng.uniform(85, 105))
    _set(P, "ankle", -rng.uniform(30, 50), 0.0)
    _set(P, "shoulder", rng.uniform(75, 95), rng.uniform(0, 12), rng.uniform(0, 20))
    _set(P, "elbow", rng.uniform(0, 15))
    _set(P, "wrist", -rng.uniform(50, 70))
    P[_j("neck"), 0] = -rng.uniform(15, 35)  # looking ahead
    P[_j("lumbar"), 0] = rng.uniform(-15, 10)
    return P


def _lying(base, rng, face_down: bool):
    """Lying on the front or the back: arms by the sides, overhead or bent; legs straight or bent."""
    P = base.copy()
    _set(P, "ankle", -rng.uniform(25, 45), 0.0)
    arms = rng.integers(3)
    for s in _SIDES:
        if arms == 0:
            _set(P, s + "shoulder", rng.uniform(-5, 10), rng.uniform(5, 20), 0)
        elif arms == 1:
            _set(P, s + "shoulder", rng.uniform(150, 178), rng.uniform(0, 25), 0)
        else:
            _set(P, s + "shoulder", rng.uniform(40, 90), rng.uniform(40, 80), rng.uniform(-40, 40))
            _set(P, s + "elbow", rng.uniform(60, 120))
    if face_down:
        P[_j("neck"), 2] = rng.choice([-1, 1]) * rng.uniform(30, 45)  # head turned to a side
        P[_j("neck"), 0] = -rng.uniform(0, 20)
    elif rng.random() < 0.5:  # knees up, feet flat on the floor
        _set(P, "hip", rng.uniform(40, 65))
        _set(P, "knee", rng.uniform(80, 110))
        _set(P, "ankle", rng.uniform(-10, 10))
    return P


def _side_lying(base, rng):
    P = base.copy()
    _set(P, "hip", rng.uniform(20, 60), rng.uniform(0, 10))
    _set(P, "knee", rng.uniform(30, 80))
    _set(P, "shoulder", rng.uniform(50, 100), rng.uniform(0, 20), rng.uniform(0, 30))
    _set(P, "elbow", rng.uniform(30, 100))
    P[_j("neck"), 1] = rng.uniform(-15, 15)
    return P


def _floor_sit(base, rng, kind: str):
    """Sitting on the floor: legs out (long sitting), knees up, or cross-legged."""
    P = base.copy()
    pelvis = -rng.uniform(0, 15)
    P[_j("pelvis"), 0] = pelvis
    P[_j("lumbar"), 0] = rng.uniform(0, 15)
    if kind == "long":
        _set(P, "hip", pelvis + rng.uniform(85, 95), rng.uniform(0, 15), rng.uniform(-15, 5))
        _set(P, "knee", rng.uniform(0, 20))
        _set(P, "ankle", -rng.uniform(10, 30), 0.0)
        _set(P, "shoulder", -rng.uniform(35, 55), rng.uniform(5, 15), 0)  # leaning on the hands
        _set(P, "elbow", rng.uniform(0, 10))
        _set(P, "wrist", -rng.uniform(55, 70))
    elif kind == "knees_up":
        _legs_pose(P, pelvis, rng.uniform(40, 60), rng.uniform(90, 115))
        _set(P, "shoulder", rng.uniform(35, 60), rng.uniform(10, 20), rng.uniform(20, 40))  # arms round the knees
        _set(P, "elbow", rng.uniform(70, 100))
    else:
        _set(P, "hip", pelvis + rng.uniform(65, 85), rng.uniform(38, 50), -rng.uniform(30, 40))
        _set(P, "knee", rng.uniform(125, 145))
        _set(P, "ankle", rng.uniform(-20, 10), rng.uniform(10, 25))
        _set(P, "shoulder", rng.uniform(20, 40), rng.uniform(15, 30), rng.uniform(10, 30))
        _set(P, "elbow", rng.uniform(30, 60))
    return P


def _deep_squat(base, rng):
    P = base.copy()
    _legs_pose(P, rng.uniform(20, 30), rng.uniform(95, 105), rng.uniform(120, 135))
    _set(P, "hip", abd=rng.uniform(10, 20), rot=-rng.uniform(5, 15))
    _set(P, "shoulder", rng.uniform(40, 80), 10, 0)
    _set(P, "elbow", rng.uniform(10, 60))
    return P


# --------------------------------------------------------------------------------------------
# Motion kinds


def kneeling(T, fps, st: Style, rng) -> Clip:
    """Going down on one knee, then both, kneeling upright or sitting back on the heels with the
    arms busy, and getting up again over one knee."""
    base = neutral(st)
    steps = [(base, _UPRIGHT, 0.0)]
    while sum(s[2] for s in steps) < 2.0 * T / fps:
        side = rng.choice(_SIDES)
        down = [(base, rng.uniform(0.5, 1.5)), (_genuflect(base, rng, side), rng.uniform(1.0, 1.5))]
        for _ in range(int(rng.integers(1, 4))):
            down.append((_kneel_upright(base, rng) if rng.random() < 0.5 else _kneel_sit(base, rng),
                         rng.uniform(0.8, 1.5)))
            down.append((down[-1][0], rng.uniform(0.3, 1.5)))
        down += [(_genuflect(base, rng, rng.choice(_SIDES)), rng.uniform(0.8, 1.3)), (base, rng.uniform(1.0, 1.5))]
        steps += [(P, _UPRIGHT, dt) for P, dt in down]
    return _program("kneeling", T, fps, rng, steps, st.tempo)


def floor_sitting(T, fps, st: Style, rng) -> Clip:
    """Squatting down to sit on the floor, changing between long sitting, knees up and
    cross-legged, and getting up through a squat."""
    base = neutral(st)
    steps = [(base, _UPRIGHT, 0.0), (base, _UPRIGHT, rng.uniform(0.3, 1.0)),
             (_deep_squat(base, rng), _UPRIGHT, rng.uniform(1.0, 1.5)),
             (_floor_sit(base, rng, "knees_up"), _UPRIGHT, rng.uniform(0.8, 1.2))]
    for kind in rng.permutation(["long", "knees_up", "cross", "long"])[:3]:
        P = _floor_sit(base, rng, str(kind))
        steps += [(P, _UPRIGHT, rng.uniform(1.0, 1.6)), (P, _UPRIGHT, rng.uniform(0.5, 2.0))]
    steps += [(_floor_sit(base, rng, "knees_up"), _UPRIGHT, rng.uniform(0.8, 1.2)),
              (_deep_squat(base, rng), _UPRIGHT, rng.uniform(1.0, 1.5)), (base, _UPRIGHT, rng.uniform(1.0, 1.5))]
    return _program("floor_sitting", T, fps, rng, steps, st.tempo)


def lying(T, fps, st: Style, rng) -> Clip:
    """Lying down and getting up: down over the knees and hands onto the front, rolling over the
    side onto the back, sitting up and rising through a squat; or the same path in reverse."""
    base = neutral(st)
    # (pose, whole-body orientation (pitch, roll, spin), stay a while): face down is pitch +90;
    # the roll onto the back is a half turn about the long axis, after which the person faces
    # the other way (sitting up from the back is then pitch 90 -> 0 again)
    keys = [(base, _UPRIGHT, False), (_genuflect(base, rng, rng.choice(_SIDES)), _UPRIGHT, False),
            (_kneel_upright(base, rng), _UPRIGHT, False), (_all_fours(base, rng), (80, 0, 0), True),
            (_lying(base, rng, True), (90, 0, 0), True), (_side_lying(base, rng), (90, 0, 90), True),
            (_lying(base, rng, False), (90, 0, 180), True), (_floor_sit(base, rng, "long"), (0, 0, 180), True),
            (_floor_sit(base, rng, "knees_up"), (0, 0, 180), False), (_deep_squat(base, rng), (0, 0, 180), False),
            (base, (0, 0, 180), False)]
    moves = [1.2, 0.9, 1.2, 1.3, 1.0, 1.0, 1.3, 1.0, 1.3, 1.3]  # seconds between consecutive keys
    if rng.random() < 0.5:  # reverse: sit down, lie back, roll onto the front, up over the knees
        keys, moves = keys[::-1], moves[::-1]
    steps = [(keys[0][0], keys[0][1], 0.0)]
    for (P, tilt, stay), dt in zip(keys[1:], moves):
        steps.append((P, tilt, dt * rng.uniform(0.8, 1.3)))
        if stay:
            steps.append((P, tilt, rng.uniform(0.3, 1.5)))
    return _program("lying", T, fps, rng, steps, st.tempo)


def crawling(T, fps, st: Style, rng) -> Clip:
    """Crawling on hands and knees in the diagonal sequence (a knee moves with the opposite
    hand), ~0.5-0.8 strides/s; the swinging knee lifts by swinging wide, the hand by bending
    the elbow."""
    base = _all_fours(neutral(st), rng)
    phase = _gait_phase(rng, T, fps, rng.uniform(0.5, 0.8) * st.cadence)
    A = np.repeat(base[None], T, axis=0)
    amp = rng.uniform(12, 20)
    for s, ph in (("l", phase), ("r", phase + 0.5)):
        p = np.mod(ph, 1.0)
        swing = np.clip((p - 0.6) / 0.4, 0.0, 1.0)  # stance 60 % of the stride, then swing
        sweep = np.where(p < 0.6, 1.0 - 2.0 * p / 0.6, -1.0 + 2.0 * min_jerk(swing))  # +1 forward
        lift = np.sin(np.pi * swing) ** 2
        A[:, _j(s + "hip"), 0] = base[_j(s + "hip"), 0] + amp * sweep
        A[:, _j(s + "hip"), 1] = base[_j(s + "hip"), 1] + 25.0 * lift
        A[:, _j(s + "knee"), 0] = base[_j(s + "knee"), 0] + 10.0 * lift
        arm = _other(s)  # the opposite hand moves with this knee
        A[:, _j(arm + "shoulder"), 0] = base[_j(arm + "shoulder"), 0] + 0.8 * amp * sweep
        A[:, _j(arm + "elbow"), 0] = base[_j(arm + "elbow"), 0] + 40.0 * lift
        A[:, _j("pelvis"), 1] += (4.0 if s == "l" else -4.0) * lift  # weight over the stance side
    tilt = np.zeros((T, 3))
    tilt[:, 0] = np.deg2rad(80.0 + 3.0 * smooth_noise(rng, T, fps, (), 0.2))
    return Clip("crawling", fps, A, np.zeros(T), True, np.zeros(T, bool), tilt=tilt, floor="body")


def _kick(base, rng, lead: str, kind: str):
    """Chamber and extension poses of one kick with the rear leg; the lead leg supports."""
    leg, support = _other(lead), lead
    chamber, out = base.copy(), base.copy()
    for P in (chamber, out):
        _set(P, support + "hip", rng.uniform(5, 15), None, None)
        _set(P, support + "knee", rng.uniform(10, 25))
        flat_feet(P, (support,))
        _set(P, "shoulder", rng.uniform(30, 55), rng.uniform(15, 35), 30)
        _set(P, "elbow", rng.uniform(90, 130))
    sign = 1.0 if leg == "l" else -1.0
    if kind == "front":
        _set(chamber, leg + "hip", rng.uniform(95, 120), 5, 0)
        _set(chamber, leg + "knee", rng.uniform(100, 125))
        _set(out, leg + "hip", rng.uniform(75, 110), 5, 0)
        _set(out, leg + "knee", rng.uniform(0, 12))
        out[_j("lumbar"), 0] = -rng.uniform(5, 15)
    elif kind in ("side", "roundhouse"):
        _set(chamber, leg + "hip", rng.uniform(60, 85), rng.uniform(35, 50), rng.uniform(20, 40))
        _set(chamber, leg + "knee", rng.uniform(110, 135))
        _set(out, leg + "hip", rng.uniform(25, 60) if kind == "side" else rng.uniform(55, 80),
             rng.uniform(40, 50), rng.uniform(20, 45))
        _set(out, leg + "knee", rng.uniform(0, 12))
        for P in (chamber, out):  # the trunk leans away from the kicking leg
            P[_j("pelvis"), 1] = -sign * rng.uniform(10, 20)
            P[_j("lumbar"), 1] = -sign * rng.uniform(10, 25)
            P[_j("pelvis"), 2] = sign * rng.uniform(10, 40)
    else:  # back kick: the heel straight back, the trunk forward
        _set(chamber, leg + "hip", rng.uniform(60, 90), 5, 0)
        _set(chamber, leg + "knee", rng.uniform(110, 130))
        _set(out, leg + "hip", -rng.uniform(15, 25), 5, 0)
        _set(out, leg + "knee", rng.uniform(5, 25))
        for P in (chamber, out):
            P[_j("pelvis"), 0] = rng.uniform(25, 45)
            P[_j("neck"), 2] = sign * rng.uniform(25, 45)  # looking over the shoulder
    _set(out, leg + "ankle", -rng.uniform(20, 45))
    return chamber, out


def kicking(T, fps, st: Style, rng) -> Clip:
    """Martial-arts kicks (front, side, roundhouse, back) from a guard stance, either leg."""
    base = neutral(st)
    steps = [(base, _UPRIGHT, 0.0)]
    while sum(s[2] for s in steps) < 2.0 * T / fps:
        lead = rng.choice(_SIDES)
        stance = base.copy()
        _guard(stance, rng, lead)
        flat_feet(stance)
        chamber, out = _kick(base, rng, lead, rng.choice(["front", "side", "roundhouse", "back"]))
        for P, dt in ((stance, rng.uniform(0.4, 1.0)), (stance, rng.uniform(0.2, 0.8)), (chamber, rng.uniform(0.18, 0.3)),
                      (out, rng.uniform(0.15, 0.25)), (out, rng.uniform(0.05, 0.3)), (chamber, rng.uniform(0.15, 0.25)),
                      (stance, rng.uniform(0.25, 0.4))):
            steps.append((P, _UPRIGHT, dt / st.energy ** 0.5))
    return _program("kicking", T, fps, rng, steps, st.tempo)


def _punch(P, rng, lead: str, kind: str) -> None:
    """One punch of ``P`` (a guard pose): jab (lead hand), cross (rear hand, hips turned),
    hook (elbow out, bent arm) or uppercut (from below, knees dipping)."""
    arm = lead if kind == "jab" else _other(lead) if kind == "cross" else rng.choice(_SIDES)
    sign = 1.0 if arm == "l" else -1.0
    if kind in ("jab", "cross"):
        _set(P, arm + "shoulder", rng.uniform(80, 100), rng.uniform(0, 15), rng.uniform(40, 70))
        _set(P, arm + "elbow", rng.uniform(0, 15), None, rng.uniform(40, 80))
    elif kind == "hook":
        _set(P, arm + "shoulder", rng.uniform(60, 85), rng.uniform(70, 90), rng.uniform(20, 50))
        _set(P, arm + "elbow", rng.uniform(80, 100))
    else:
        _set(P, arm + "shoulder", rng.uniform(50, 80), rng.uniform(5, 20), rng.uniform(0, 30))
        _set(P, arm + "elbow", rng.uniform(80, 105), None, -rng.uniform(20, 60))
        _set(P, "knee", rng.uniform(25, 40))
    turn = (0.5 if kind == "jab" else 1.0) * rng.uniform(15, 30)
    P[_j("thorax_low"), 2] = -sign * turn
    P[_j("lumbar"), 2] = -sign * 0.4 * turn
    P[_j("pelvis"), 2] += -sign * (0.0 if kind == "jab" else turn)


def punching(T, fps, st: Style, rng) -> Clip:
    """Boxing: combinations of jabs, crosses, hooks and uppercuts from a guard, with footwork."""
    base = neutral(st)
    lead = "l" if st.right_handed else "r"
    guard = base.copy()
    _guard(guard, rng, lead)
    flat_feet(guard)
    steps = [(guard, _UPRIGHT, 0.0)]
    while sum(s[2] for s in steps) < 2.0 * T / fps:
        for _ in range(int(rng.integers(1, 5))):
            P = guard.copy()
            _punch(P, rng, lead, rng.choice(["jab", "cross", "hook", "uppercut"], p=[0.35, 0.3, 0.2, 0.15]))
            flat_feet(P)
            steps += [(P, _UPRIGHT, rng.uniform(0.12, 0.22)), (guard, _UPRIGHT, rng.uniform(0.15, 0.3))]
        steps.append((guard, _UPRIGHT, rng.uniform(0.3, 1.5)))
    clip = _program("punching", T, fps, rng, steps, st.tempo)
    clip.heading = np.deg2rad(30.0) * smooth_noise(rng, T, fps, (), 0.15)  # circling the opponent
    return clip


def lunging(T, fps, st: Style, rng) -> Clip:
    """Lunges: a long step forward (or back) down until the rear knee nears the floor, or to the
    side with one knee bent, and back up."""
    base = neutral(st)
    steps = [(base, _UPRIGHT, 0.0)]
    while sum(s[2] for s in steps) < 2.0 * T / fps:
        side, P = rng.choice(_SIDES), base.copy()
        if rng.random() < 0.65:
            P[_j("pelvis"), 0] = rng.uniform(0, 10)
            _set(P, side + "hip", rng.uniform(80, 100), rng.uniform(0, 8))
            _set(P, side + "knee", rng.uniform(80, 100))
            flat_feet(P, (side,))
            _set(P, _other(side) + "hip", -rng.uniform(5, 20), rng.uniform(0, 8))
            _set(P, _other(side) + "knee", rng.uniform(75, 100))
            _set(P, _other(side) + "ankle", rng.uniform(-10, 15), 0.0)
            _set(P, _other(side) + "toe", rng.uniform(50, 65))
        else:
            P[_j("pelvis"), 0] = rng.uniform(15, 35)
            _set(P, side + "hip", rng.uniform(45, 70), rng.uniform(30, 45), -rng.uniform(10, 25))
            _set(P, side + "knee", rng.uniform(70, 100))
            _set(P, _other(side) + "hip", rng.uniform(15, 35), rng.uniform(30, 45))
            _set(P, _other(side) + "knee", rng.uniform(0, 8))
            flat_feet(P)
        _set(P, "shoulder", rng.uniform(-10, 90), rng.uniform(5, 30), rng.uniform(0, 40))
        _set(P, "elbow", rng.uniform(0, 100))
        steps += [(base, _UPRIGHT, rng.uniform(0.5, 1.5)), (P, _UPRIGHT, rng.uniform(0.7, 1.1)),
                  (P, _UPRIGHT, rng.uniform(0.2, 1.0)), (base, _UPRIGHT, rng.uniform(0.7, 1.1))]
    return _program("lunging", T, fps, rng, steps, st.tempo)


def _twist(P, amount: float) -> None:
    """Turn the trunk by ``amount`` degrees (positive: the right shoulder forward), shared by the
    pelvis, lumbar and lower and upper thorax as a whole-body rotation spreads."""
    for joint, share in (("pelvis", 0.35), ("lumbar", 0.2), ("thorax_low", 0.25), ("thorax_up", 0.2)):
        P[_j(joint), 2] += share * amount


def throwing(T, fps, st: Style, rng) -> Clip:
    """Overarm throws: the wind-up (weight back, trunk turned away, the throwing arm cocked behind
    the head, the other arm pointing ahead), a stride onto the front leg, the trunk turning through
    and bending forward as the arm whips over and across the body, the follow-through, and back;
    sometimes with the other arm, sometimes side-arm or underarm."""
    base = neutral(st)
    steps = [(base, _UPRIGHT, 0.0)]
    while sum(s[2] for s in steps) < 2.0 * T / fps:
        arm = ("r" if st.right_handed else "l") if rng.random() < 0.75 else rng.choice(_SIDES)
        front, sign = _other(arm), (1.0 if arm == "r" else -1.0)  # step with the other leg
        style = rng.choice(["overarm", "sidearm", "underarm"], p=[0.6, 0.25, 0.15])
        cock = base.copy()  # wind-up: trunk turned away, weight on the rear leg
        _twist(cock, -sign * rng.uniform(30, 60))
        cock[_j("lumbar"), 1] = sign * rng.uniform(0, 15)  # leaning back over the rear leg
        _set(cock, front + "hip", rng.uniform(10, 45), rng.uniform(0, 10))  # front knee lifting
        _set(cock, front + "knee", rng.uniform(20, 70))
        _set(cock, arm + "knee", rng.uniform(10, 30))
        if style == "underarm":
            _set(cock, arm + "shoulder", -rng.uniform(20, 50), rng.uniform(10, 30), 0.0)
            _set(cock, arm + "elbow", rng.uniform(10, 40))
        else:
            _set(cock, arm + "shoulder", rng.uniform(-10, 30), rng.uniform(70, 100) if style == "overarm"
                 else rng.uniform(60, 90), -rng.uniform(40, 80))
            _set(cock, arm + "elbow", rng.uniform(70, 110))
        _set(cock, front + "shoulder", rng.uniform(50, 100), rng.uniform(10, 40), 0.0)  # aiming arm
        _set(cock, front + "elbow", rng.uniform(10, 60))
        release = base.copy()  # stride down, trunk turned through, the arm forward and high
        _twist(release, sign * rng.uniform(20, 45))
        release[_j("lumbar"), 0] = rng.uniform(10, 25)
        release[_j("thorax_low"), 0] = rng.uniform(5, 15)
        _set(release, front + "hip", rng.uniform(35, 60), rng.uniform(0, 10))
        _set(release, front + "knee", rng.uniform(25, 50))
        # the rear leg nearly straight, so both feet reach the floor (a bent one would lift the front foot)
        _set(release, arm + "hip", -rng.uniform(5, 20), rng.uniform(0, 10))
        _set(release, arm + "knee", rng.uniform(5, 20))
        flat_feet(release, (front,))
        raise_ = {"overarm": (110, 160), "sidearm": (60, 90), "underarm": (30, 70)}[style]
        _set(release, arm + "shoulder", rng.uniform(*raise_), rng.uniform(20, 60) if style != "underarm"
             else rng.uniform(0, 20), rng.uniform(0, 40))
        _set(release, arm + "elbow", rng.uniform(5, 35))
        _set(release, front + "shoulder", rng.uniform(-10, 30), rng.uniform(10, 40), 0.0)  # pulled in
        _set(release, front + "elbow", rng.uniform(60, 110))
        follow = release.copy()  # follow-through: bent over the front leg, the arm across the body
        _twist(follow, sign * rng.uniform(10, 30))
        follow[_j("lumbar"), 0] += rng.uniform(5, 20)
        follow[_j("thorax_low"), 0] += rng.uniform(5, 15)
        _set(follow, arm + "shoulder", rng.uniform(40, 90), -rng.uniform(0, 20), rng.uniform(20, 60))
        _set(follow, arm + "elbow", rng.uniform(20, 70))
        _set(follow, arm + "hip", -rng.uniform(10, 25), rng.uniform(0, 10))
        _set(follow, arm + "knee", rng.uniform(10, 30))
        _set(follow, arm + "ankle", rng.uniform(-10, 20), 0.0)
        _set(follow, arm + "toe", rng.uniform(30, 60))  # rear heel up
        flat_feet(follow, (front,))
        steps += [(base, _UPRIGHT, rng.uniform(0.4, 1.2)), (cock, _UPRIGHT, rng.uniform(0.5, 1.0)),
                  (release, _UPRIGHT, rng.uniform(0.15, 0.3)), (follow, _UPRIGHT, rng.uniform(0.2, 0.4)),
                  (follow, _UPRIGHT, rng.uniform(0.1, 0.6))]
    return _program("throwing", T, fps, rng, steps, st.tempo)


def _arms_overhead(P, rng, abduction: float = 0.0) -> None:
    _set(P, "shoulder", rng.uniform(165, 180) if abduction == 0.0 else rng.uniform(0, 20),
         abduction or rng.uniform(0, 15), 0)
    _set(P, "elbow", rng.uniform(0, 10))
    _set(P, "clavicle", rng.uniform(15, 30), 0)


def handstand(T, fps, st: Style, rng) -> Clip:
    """Kicking up into a handstand (hands down, one leg swinging over), holding it with the legs
    together, split or tucked, and stepping down the same way."""
    base = neutral(st)
    steps = [(base, _UPRIGHT, 0.0)]
    while sum(s[2] for s in steps) < 2.0 * T / fps:
        kick_leg = rng.choice(_SIDES)
        reach = base.copy()
        _arms_overhead(reach, rng)
        _set(reach, "wrist", -rng.uniform(50, 70))
        # hands on the floor in front: the trunk pitched past horizontal, the support leg piked
        # under it, the kicking leg trailing up behind
        _set(reach, _other(kick_leg) + "hip", rng.uniform(100, 125))
        _set(reach, _other(kick_leg) + "knee", rng.uniform(5, 30))
        _set(reach, kick_leg + "hip", rng.uniform(-20, 10))
        hold = base.copy()
        _arms_overhead(hold, rng)
        _set(hold, "wrist", -rng.uniform(55, 70))
        hold[_j("neck"), 0] = -rng.uniform(10, 30)
        legs = rng.integers(3)
        if legs == 1:  # split
            _set(hold, kick_leg + "hip", -rng.uniform(10, 25))
            _set(hold, _other(kick_leg) + "hip", rng.uniform(30, 60))
        elif legs == 2:  # tucked
            _set(hold, "hip", rng.uniform(70, 110))
            _set(hold, "knee", rng.uniform(100, 140))
        _set(hold, "ankle", -rng.uniform(20, 45))
        sway = rng.uniform(-8, 8)
        up = [(base, _UPRIGHT, rng.uniform(0.6, 1.5)), (reach, (rng.uniform(110, 130), 0, 0), rng.uniform(0.8, 1.2)),
              (hold, (180 + sway, rng.uniform(-5, 5), 0), rng.uniform(0.6, 0.9)),
              (hold, (180 - sway, rng.uniform(-5, 5), 0), rng.uniform(0.5, 2.0)),
              (reach, (rng.uniform(110, 130), 0, 0), rng.uniform(0.6, 0.9)), (base, _UPRIGHT, rng.uniform(0.8, 1.2))]
        steps += up
    return _program("handstand", T, fps, rng, steps, st.tempo)


def _wheel_reach(star, rng, lead: str):
    """The star pose bent sideways towards the ``lead`` hand going down to the floor, the lead leg
    drawn in and the trailing leg lifting, so the hands take over from the feet at a quarter turn."""
    P = star.copy()
    sign = 1.0 if lead == "l" else -1.0
    for joint, lo, hi in (("lumbar", 20, 25), ("thorax_low", 12, 15), ("thorax_up", 9, 12)):
        P[_j(joint), 1] = sign * rng.uniform(lo, hi)
    P[_j("pelvis"), 1] = sign * rng.uniform(10, 20)
    _set(P, lead + "hip", rng.uniform(20, 40), rng.uniform(-10, 5))  # the lead leg in a lunge
    _set(P, lead + "knee", rng.uniform(50, 70))
    _set(P, _other(lead) + "hip", rng.uniform(0, 15), 50)
    _set(P, lead + "shoulder", abd=180)
    return P


def cartwheel(T, fps, st: Style, rng) -> Clip:
    """Cartwheel-like inversions: arms and legs spread, the body turns over sideways onto the
    hands into an inverted star (a half wheel) and back down on the same side, each take to its
    own side. (A full wheel rolls the body 4-5 m across the floor, out of a fixed rig's view.)"""
    base = neutral(st)
    steps = [(base, _UPRIGHT, 0.0)]
    direction = rng.choice([-1.0, 1.0])
    while sum(s[2] for s in steps) < 2.0 * T / fps:
        star = base.copy()
        _arms_overhead(star, rng, abduction=rng.uniform(150, 175))
        _set(star, "wrist", 0, -rng.uniform(10, 25))
        _set(star, "hip", rng.uniform(-5, 15), rng.uniform(25, 40))
        _set(star, "knee", rng.uniform(0, 15))
        lead = "r" if direction > 0 else "l"  # rolling to the right puts the right hand down first
        reach = _wheel_reach(star, rng, lead)
        top = (0, direction * rng.uniform(170, 190), 0)
        steps += [(base, _UPRIGHT, rng.uniform(0.6, 1.5)), (star, _UPRIGHT, rng.uniform(0.4, 0.7)),
                  (reach, (0, 80.0 * direction, 0), rng.uniform(0.75, 0.9)), (star, top, rng.uniform(0.6, 0.75)),
                  (star, top, rng.uniform(0.1, 0.6)), (reach, (0, 80.0 * direction, 0), rng.uniform(0.6, 0.75)),
                  (star, _UPRIGHT, rng.uniform(0.75, 0.9))]
    return _program("cartwheel", T, fps, rng, steps, st.tempo)


def _random_orientation(rng, previous: np.ndarray) -> np.ndarray:
    """A whole-body (pitch, roll, spin) in degrees: upright half of the time, else with the body's
    long axis uniform on the sphere; pitch and spin unwrapped to the nearest turn of ``previous``."""
    if rng.random() < 0.5:
        tilt = np.array([rng.normal(0.0, 10.0), rng.normal(0.0, 10.0), rng.uniform(-180, 180)])
    else:  # up = R_y(pitch) R_x(roll) e_z = (cos r sin p, -sin r, cos r cos p)
        x, y, z = rng.normal(size=3)
        tilt = np.array([np.degrees(np.arctan2(x, z)), np.degrees(np.arcsin(-y / np.sqrt(x * x + y * y + z * z))),
                         rng.uniform(-180, 180)])
    for k in (0, 2):
        tilt[k] += 360.0 * np.round((previous[k] - tilt[k]) / 360.0)
    return tilt


def random_pose(T, fps, st: Style, rng) -> Clip:
    """Poses drawn uniformly within every joint's limits, one every 0.6-1.6 s, joined smoothly,
    the whole body in any orientation half of the time, the pelvis over one spot: coverage of the pose space, not a
    movement anyone performs on purpose."""
    limits = np.rad2deg(body_mod.JOINT_LIMITS)
    steps, tilt, t = [], np.zeros(3), 0.0
    while t < T / fps + 1.0:
        P = rng.uniform(limits[..., 0], limits[..., 1])
        P[_j("pelvis")] = rng.uniform(limits[0, :, 0], limits[0, :, 1]) * 0.5
        tilt = _random_orientation(rng, tilt)
        dt = 0.0 if not steps else rng.uniform(0.6, 1.6)
        steps.append((P, tilt, dt))
        t += dt
    clip = _program("random_pose", T, fps, rng, steps, st.tempo)
    clip.anchored = True
    return clip


ACTIONS = {
    "kneeling": kneeling,
    "floor_sitting": floor_sitting,
    "lying": lying,
    "crawling": crawling,
    "kicking": kicking,
    "punching": punching,
    "lunging": lunging,
    "throwing": throwing,
    "handstand": handstand,
    "cartwheel": cartwheel,
    "random_pose": random_pose,
}
"""Floor work, martial arts, inversions and random poses: name -> generator(T, fps, style, rng)."""
